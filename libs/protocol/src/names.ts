// Names on the broker and in URLs: the service-name rule, reserved names, and every queue/exchange name Warren derives.

/** A service's name is its queue's name and its URL segment: `/v1/<name>`. */
export const SERVICE_NAME = /^[a-z][a-z0-9-]{0,62}$/;

/**
 * Names that match the pattern but are not services: gateway routes (`/v1/services`,
 * `/v1/events/...`) and Warren's own components. Everything else Warren reserves contains a dot
 * and fails the pattern already: `amq.*`, `<queue>.dlq`, `<queue>.retry.<ms>.v2`, `warren.*`.
 */
export const RESERVED_NAMES: ReadonlySet<string> = new Set([
  'services',
  'events',
  'gateway',
  'console',
  'warren',
  'heartbeat',
  'registry',
]);

/** Why `name` cannot be a service's name, or undefined when it can. */
export function serviceNameProblem(name: string): 'invalid' | 'reserved' | undefined {
  if (!SERVICE_NAME.test(name)) return 'invalid';
  if (RESERVED_NAMES.has(name)) return 'reserved';
  return undefined;
}

/** The rule in words, for error messages. */
export const SERVICE_NAME_RULE =
  'lower-case letters, digits and "-", starting with a letter, at most 63 characters, not one of ' +
  [...RESERVED_NAMES].join(', ');

/** The fanout exchange every service instance announces itself on. */
export const HEARTBEAT_EXCHANGE = 'warren.heartbeat';
/** AMQP `type` of a heartbeat message. */
export const HEARTBEAT_TYPE = 'warren.heartbeat';
/** RabbitMQ's direct reply-to pseudo-queue. */
export const REPLY_TO = 'amq.rabbitmq.reply-to';
/** `appId` of messages the gateway publishes. */
export const GATEWAY_APP_ID = 'warren-gateway';

/**
 * The retry delay queue for `delayMs`: a quorum queue with that message TTL which dead-letters
 * at-least-once back to `queue`. The `.v2` suffix exists because a queue's arguments cannot be
 * changed: the earlier retry queues (`legacyRetryQueueName`, classic or at-most-once) keep their
 * names and arguments, drain into `queue` by themselves, and can be deleted once empty.
 */
export const retryQueueName = (queue: string, delayMs: number): string =>
  `${queue}.retry.${delayMs}.v2`;
/** The name of a retry queue declared before at-least-once retry queues (see retryQueueName). */
export const legacyRetryQueueName = (queue: string, delayMs: number): string =>
  `${queue}.retry.${delayMs}`;
export const deadLetterQueueName = (queue: string): string => `${queue}.dlq`;
/** One exclusive, auto-delete heartbeat queue per gateway (or console) instance. */
export const registryQueueName = (instanceId: string, prefix = 'warren.gateway.registry'): string =>
  `${prefix}.${instanceId}`;
