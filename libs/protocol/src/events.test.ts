import {
  EVENTS_EXCHANGE,
  eventTopicOf,
  topicMatches,
  topicPatternProblem,
  topicProblem,
} from './events';

test.each([
  ['order.created', true],
  ['order', true],
  ['a.b-c.d_e.9', true],
  ['', false],
  ['Order.created', false],
  ['order..created', false],
  ['.order', false],
  ['order.', false],
  ['order.*', false],
  ['order.#', false],
  ['order created', false],
  ['x'.repeat(201), false],
])('topic %p valid: %p', (topic, valid) => {
  expect(topicProblem(topic) === undefined).toBe(valid);
});

test.each([
  ['order.created', true],
  ['order.*', true],
  ['#', true],
  ['*.created', true],
  ['order.#.done', true],
  ['order.*x', false],
  ['order..*', false],
  ['', false],
  ['ORDER.*', false],
])('pattern %p valid: %p', (pattern, valid) => {
  expect(topicPatternProblem(pattern) === undefined).toBe(valid);
});

test.each([
  ['order.created', 'order.created', true],
  ['order.created', 'order.updated', false],
  ['order.*', 'order.created', true],
  ['order.*', 'order', false],
  ['order.*', 'order.created.eu', false],
  ['order.#', 'order', true],
  ['order.#', 'order.created.eu', true],
  ['#', 'anything.at.all', true],
  ['*.created', 'order.created', true],
  ['*.created', 'created', false],
  ['a.#.z', 'a.z', true],
  ['a.#.z', 'a.b.c.z', true],
  ['a.#.z', 'a.b.c', false],
])('%p matches %p: %p (as the topic exchange does)', (pattern, topic, expected) => {
  expect(topicMatches(pattern, topic)).toBe(expected);
});

test('an event topic is the events exchange routing key, else x-event (retry and DLQ copies)', () => {
  expect(eventTopicOf('order.created', '', 'orders')).toBe('order.created');
  expect(eventTopicOf(undefined, EVENTS_EXCHANGE, 'order.created')).toBe('order.created');
  // A direct message (default exchange) is not an event.
  expect(eventTopicOf(undefined, '', 'orders')).toBeUndefined();
  // A header that is not a valid topic does not make one.
  expect(eventTopicOf('Bad Topic', '', 'orders')).toBeUndefined();
  // Through the events exchange the routing key is the topic, whatever a header claims.
  expect(eventTopicOf(42, EVENTS_EXCHANGE, 'order.created')).toBe('order.created');
  expect(eventTopicOf('order.refunded', EVENTS_EXCHANGE, 'order.created')).toBe('order.created');
});
