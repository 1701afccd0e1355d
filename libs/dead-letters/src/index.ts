// Public surface of @warren/dead-letters: the one core behind the dlq CLI and the console's dead-letter actions.
export * from './dead-letters';
