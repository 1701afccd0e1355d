// Queue topology of a service: its queue, the retry delay queues that dead-letter back to it, and its DLQ.
import type { Channel, Options } from 'amqplib';
import { deadLetterQueueName, retryQueueName } from '@warren/protocol';

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
   * Quorum queues only: redeliveries (crash loops) before the broker dead-letters a message to the
   * DLQ. Always set, since RabbitMQ 4 otherwise applies 20 and then drops. Default 20.
   */
  deliveryLimit?: number;
}

export function mainQueueOptions(spec: QueueSpec): Options.AssertQueue {
  if (spec.kind === 'plain') return { durable: false };
  const args: Record<string, unknown> = {};
  if (spec.queueType === 'quorum') {
    args['x-queue-type'] = 'quorum';
    args['x-delivery-limit'] = spec.deliveryLimit ?? 20;
    // Past the delivery limit the broker moves the message to the DLQ, confirmed (at-least-once).
    args['x-dead-letter-exchange'] = '';
    args['x-dead-letter-routing-key'] = deadLetterQueueName(spec.name);
    args['x-dead-letter-strategy'] = 'at-least-once';
    args['x-overflow'] = 'reject-publish';
  }
  if (spec.maxLength !== undefined) {
    args['x-max-length'] = spec.maxLength;
    args['x-overflow'] = spec.overflow ?? 'reject-publish';
  }
  return { durable: true, arguments: args };
}

/** Retry and DLQ queues follow the main queue's type, so they survive the same node losses. */
function sideQueueArgs(spec: QueueSpec): Record<string, unknown> {
  return spec.queueType === 'quorum' ? { 'x-queue-type': 'quorum' } : {};
}

/** Declares everything a service's consumer needs; idempotent, safe on every reconnect. */
export async function declareServiceTopology(channel: Channel, spec: QueueSpec): Promise<void> {
  await channel.assertQueue(spec.name, mainQueueOptions(spec));
  for (const delay of new Set(spec.retryDelaysMs)) {
    await channel.assertQueue(retryQueueName(spec.name, delay), {
      durable: true,
      arguments: {
        ...sideQueueArgs(spec),
        'x-message-ttl': delay,
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': spec.name,
      },
    });
  }
  await channel.assertQueue(deadLetterQueueName(spec.name), {
    durable: true,
    // A quorum DLQ has no dead-letter target of its own: a very high delivery limit keeps RabbitMQ 4's
    // default (20, then drop) from discarding dead letters that were inspected and returned many times.
    arguments:
      spec.queueType === 'quorum'
        ? { ...sideQueueArgs(spec), 'x-delivery-limit': 1_000_000 }
        : sideQueueArgs(spec),
  });
}
