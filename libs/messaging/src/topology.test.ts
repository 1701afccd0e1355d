// Unit: queue arguments per queue type, and the fallback to a legacy quorum main queue (fake channels).
import type { ChannelModel, Options } from 'amqplib';
import {
  QUORUM_DELIVERY_LIMIT,
  mainQueueOptions,
  resolveServiceTopology,
  retryQueueOptions,
  type QueueSpec,
} from './topology';

const spec = (over: Partial<QueueSpec> = {}): QueueSpec => ({
  name: 'orders',
  kind: 'durable',
  retryDelaysMs: [1000],
  ...over,
});

describe('queue arguments', () => {
  it('a quorum main queue has no dead-letter target (expired calls are dropped) and an unreachable delivery limit', () => {
    expect(mainQueueOptions(spec({ queueType: 'quorum' }))).toEqual({
      durable: true,
      arguments: {
        'x-queue-type': 'quorum',
        'x-delivery-limit': QUORUM_DELIVERY_LIMIT,
        'x-overflow': 'reject-publish',
      },
    });
    expect(mainQueueOptions(spec())).toEqual({ durable: true, arguments: {} });
    expect(mainQueueOptions(spec({ kind: 'plain' }))).toEqual({ durable: false });
  });

  it('a legacy quorum main queue keeps the arguments it was declared with', () => {
    expect(
      mainQueueOptions(spec({ queueType: 'quorum', legacyMainQueue: true, deliveryLimit: 7 }))
        .arguments,
    ).toEqual({
      'x-queue-type': 'quorum',
      'x-delivery-limit': 7,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': 'orders.dlq',
      'x-dead-letter-strategy': 'at-least-once',
      'x-overflow': 'reject-publish',
    });
  });

  it('retry queues are quorum queues dead-lettering at-least-once back to the main queue, whatever its type', () => {
    for (const queueType of ['classic', 'quorum'] as const) {
      expect(retryQueueOptions(spec({ queueType }), 1000)).toEqual({
        durable: true,
        arguments: {
          'x-queue-type': 'quorum',
          'x-message-ttl': 1000,
          'x-dead-letter-exchange': '',
          'x-dead-letter-routing-key': 'orders',
          'x-dead-letter-strategy': 'at-least-once',
          'x-overflow': 'reject-publish',
        },
      });
    }
  });
});

describe('resolveServiceTopology', () => {
  /** A connection whose channels accept a declare only when `accepts` says so (else a 406). */
  function connection(accepts: (options: Options.AssertQueue) => boolean) {
    const declared: Options.AssertQueue[] = [];
    const conn = {
      createChannel: () =>
        Promise.resolve({
          on: () => undefined,
          close: () => Promise.resolve(),
          assertQueue: (_q: string, options: Options.AssertQueue) => {
            declared.push(options);
            return accepts(options)
              ? Promise.resolve({ queue: 'orders', messageCount: 0, consumerCount: 0 })
              : Promise.reject(Object.assign(new Error('PRECONDITION_FAILED'), { code: 406 }));
          },
        }),
    } as unknown as ChannelModel;
    return { conn, declared };
  }
  const isLegacy = (o: Options.AssertQueue) =>
    (o.arguments as Record<string, unknown> | undefined)?.['x-dead-letter-exchange'] === '';

  it('keeps the new arguments when the broker takes them', async () => {
    const { conn, declared } = connection(() => true);
    const s = await resolveServiceTopology(conn, spec({ queueType: 'quorum' }));
    expect(s.legacyMainQueue).toBeUndefined();
    expect(declared).toHaveLength(1);
  });

  it('falls back to the legacy arguments for a queue declared with them', async () => {
    const { conn } = connection(isLegacy);
    const s = await resolveServiceTopology(conn, spec({ queueType: 'quorum' }));
    expect(s.legacyMainQueue).toBe(true);
  });

  it('rejects with the first refusal when neither fits', async () => {
    const { conn } = connection(() => false);
    await expect(resolveServiceTopology(conn, spec({ queueType: 'quorum' }))).rejects.toMatchObject(
      { code: 406 },
    );
  });

  it('does not probe classic or plain queues (their arguments did not change)', async () => {
    const { conn, declared } = connection(() => false);
    await resolveServiceTopology(conn, spec());
    await resolveServiceTopology(conn, spec({ kind: 'plain' }));
    expect(declared).toHaveLength(0);
  });
});
