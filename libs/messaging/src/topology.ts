// Queue topology of a service: its queue, the retry delay queues that dead-letter back to it, and its DLQ.
import type { Channel, ChannelModel, Options } from 'amqplib';
import { EVENTS_EXCHANGE, deadLetterQueueName, retryQueueName } from '@warren/protocol';

export type QueueType = 'classic' | 'quorum';

export interface QueueSpec {
  name: string;
  /**
   * 'plain' declares the queue exactly as the pika tutorial does (non-durable, no arguments), for
   * interoperability with existing clients; 'durable' is the default for Warren services.
   */
  kind: 'plain' | 'durable';
  queueType?: QueueType;
  /** Bounded queue: with overflow reject-publish the broker nacks publishes past this length. */
  maxLength?: number;
  overflow?: 'reject-publish' | 'drop-head';
  /** Delays of the retry queues, one queue per distinct delay. */
  retryDelaysMs: readonly number[];
  /**
   * Declare the main queue as Warren did before calls stopped being dead-lettered (`legacy`: a
   * quorum queue with a dead-letter target, see legacyMainQueueArguments). Set by
   * resolveServiceTopology when the broker already holds such a queue.
   */
  legacyMainQueue?: boolean;
  /**
   * Legacy quorum main queues only: the `x-delivery-limit` they were declared with (default 20),
   * so that re-declaring them matches. New queues leave redelivery limits to the service-kit.
   */
  deliveryLimit?: number;
  /** Event subscriptions: topic patterns bound from `warren.events` to the main queue. */
  events?: readonly string[];
}

/**
 * `x-delivery-limit` of a quorum main queue: out of reach on purpose. The queue has no dead-letter
 * target (an expired call must be dropped, not dead-lettered), so a message past the broker's
 * limit would be dropped; the service-kit dead-letters a message redelivered more than
 * `maxRedeliveries` times long before. Set explicitly because RabbitMQ 4 defaults to 20.
 */
export const QUORUM_DELIVERY_LIMIT = 1_000_000;

export function mainQueueOptions(spec: QueueSpec): Options.AssertQueue {
  if (spec.kind === 'plain') return { durable: false };
  const args: Record<string, unknown> = {};
  if (spec.queueType === 'quorum') {
    if (spec.legacyMainQueue) Object.assign(args, legacyMainQueueArguments(spec));
    else {
      args['x-queue-type'] = 'quorum';
      args['x-delivery-limit'] = QUORUM_DELIVERY_LIMIT;
      // A length limit set later by policy refuses publishes (the gateway answers 429) instead of
      // dropping the oldest accepted message (the quorum default).
      args['x-overflow'] = 'reject-publish';
    }
  }
  if (spec.maxLength !== undefined) {
    args['x-max-length'] = spec.maxLength;
    args['x-overflow'] = spec.overflow ?? 'reject-publish';
  }
  return { durable: true, arguments: args };
}

/**
 * The arguments quorum main queues were declared with before: the broker dead-letters past the
 * delivery limit, and also every expired call, to `<queue>.dlq`. Kept only to keep such queues
 * usable (their arguments cannot change); see docs/architecture.md, "Upgrading".
 */
export function legacyMainQueueArguments(spec: QueueSpec): Record<string, unknown> {
  return {
    'x-queue-type': 'quorum',
    'x-delivery-limit': spec.deliveryLimit ?? 20,
    'x-dead-letter-exchange': '',
    'x-dead-letter-routing-key': deadLetterQueueName(spec.name),
    'x-dead-letter-strategy': 'at-least-once',
    'x-overflow': 'reject-publish',
  };
}

/**
 * A retry delay queue: a quorum queue whatever the main queue's type, because only quorum queues
 * dead-letter at-least-once. When the copy's delay is over, the broker moves it to the main queue
 * and removes it here only once the main queue confirmed it: a full (reject-publish) or missing
 * main queue leaves it waiting here, re-sent every `dead_letter_worker_publisher_confirm_timeout`
 * (3 min by default), instead of dropping it. At-least-once requires reject-publish overflow.
 */
export function retryQueueOptions(spec: QueueSpec, delayMs: number): Options.AssertQueue {
  return {
    durable: true,
    arguments: {
      'x-queue-type': 'quorum',
      'x-message-ttl': delayMs,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': spec.name,
      'x-dead-letter-strategy': 'at-least-once',
      'x-overflow': 'reject-publish',
    },
  };
}

export function deadLetterQueueOptions(spec: QueueSpec): Options.AssertQueue {
  return {
    durable: true,
    // A quorum DLQ has no dead-letter target of its own: a very high delivery limit keeps RabbitMQ 4's
    // default (20, then drop) from discarding dead letters that were inspected and returned many times.
    arguments:
      spec.queueType === 'quorum'
        ? { 'x-queue-type': 'quorum', 'x-delivery-limit': QUORUM_DELIVERY_LIMIT }
        : {},
  };
}

/** Declares everything a service's consumer needs; idempotent, safe on every reconnect. */
export async function declareServiceTopology(channel: Channel, spec: QueueSpec): Promise<void> {
  await channel.assertQueue(spec.name, mainQueueOptions(spec));
  for (const delay of new Set(spec.retryDelaysMs)) {
    await channel.assertQueue(retryQueueName(spec.name, delay), retryQueueOptions(spec, delay));
  }
  await channel.assertQueue(deadLetterQueueName(spec.name), deadLetterQueueOptions(spec));
  if (spec.events?.length) {
    await declareEventsExchange(channel);
    // Bindings are added, never removed here: a pattern dropped from a definition stays bound
    // until an operator unbinds it (docs/architecture.md, "Events"); its events are still handled.
    for (const pattern of spec.events) await channel.bindQueue(spec.name, EVENTS_EXCHANGE, pattern);
  }
}

/** The durable topic exchange of events: declared by every process that publishes or subscribes. */
export async function declareEventsExchange(channel: Channel): Promise<void> {
  await channel.assertExchange(EVENTS_EXCHANGE, 'topic', { durable: true });
}

/** Declares `queue` on a channel of its own; a 406 (arguments differ) is returned, not thrown. */
async function tryDeclare(
  connection: ChannelModel,
  queue: string,
  options: Options.AssertQueue,
): Promise<Error | undefined> {
  const channel = await connection.createChannel();
  // A refused declare closes the channel: its error arrives as the rejected operation.
  channel.on('error', () => undefined);
  try {
    await channel.assertQueue(queue, options);
    return undefined;
  } catch (err) {
    if ((err as { code?: unknown }).code === 406 && err instanceof Error) return err;
    throw err;
  } finally {
    await channel.close().catch(() => undefined);
  }
}

/**
 * The spec to declare with, given what the broker holds: a durable quorum main queue declared
 * before calls stopped being dead-lettered cannot take the new arguments (PRECONDITION_FAILED), so
 * it is declared with its old ones (`legacyMainQueue`) and keeps working as before. Any other
 * mismatch rejects with the broker's message. Probes on throwaway channels.
 */
export async function resolveServiceTopology(
  connection: ChannelModel,
  spec: QueueSpec,
): Promise<QueueSpec> {
  if (spec.kind === 'plain' || spec.queueType !== 'quorum' || spec.legacyMainQueue) return spec;
  const refused = await tryDeclare(connection, spec.name, mainQueueOptions(spec));
  if (!refused) return spec;
  const legacy: QueueSpec = { ...spec, legacyMainQueue: true };
  if (await tryDeclare(connection, spec.name, mainQueueOptions(legacy))) throw refused;
  return legacy;
}
