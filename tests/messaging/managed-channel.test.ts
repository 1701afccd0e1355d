// ManagedChannel's own paths against the real broker: a consumer the broker cancels, a channel the broker closes, publish() false and drain.
import type { ChannelModel } from 'amqplib';
import {
  Broker,
  BrokerUnavailableError,
  Consumer,
  ManagedChannel,
  Publisher,
  type Delivery,
} from '@warren/messaging';
import { testAmqpUrl, uniqueName } from '../support/broker';

import { memoryLogger, rawConnection } from './helpers';
import { eventually } from '../support/time';

const log = memoryLogger('managed-channel');
let broker: Broker;
let publisher: Publisher;
let raw: ChannelModel;
const queues: string[] = [];

beforeAll(async () => {
  const url = await testAmqpUrl();
  broker = await Broker.connect({
    url,
    logger: log.logger,
    connectionName: 'managed-channel.test',
  });
  publisher = await Publisher.create(broker, { logger: log.logger });
  raw = await rawConnection(url);
});

afterAll(async () => {
  const ch = await raw.createChannel();
  for (const q of queues) await ch.deleteQueue(q).catch(() => undefined);
  await raw.close();
  await publisher.close();
  await broker.close();
});

async function depth(queue: string): Promise<number> {
  const ch = await raw.createChannel();
  const { messageCount } = await ch.checkQueue(queue);
  await ch.close();
  return messageCount;
}

test('the broker cancels a consumer (its queue deleted): reported, the queue declared again, consumed again', async () => {
  const queue = uniqueName('cancel');
  queues.push(queue);
  const received: string[] = [];
  const consumer = await Consumer.create(broker, {
    queue,
    prefetch: 10,
    logger: log.logger,
    declare: async (ch) => void (await ch.assertQueue(queue, { durable: true })),
    onMessage: (d: Delivery) => {
      received.push(d.body.toString());
      d.ack();
    },
  });
  const cancelled: string[] = [];
  consumer.channel.on('cancelled', (q) => cancelled.push(q));
  try {
    await publisher.send(queue, Buffer.from('before'));
    await eventually(() => received.includes('before'), 10_000, 'first message');

    const ch = await raw.createChannel();
    await ch.deleteQueue(queue);
    await ch.close();

    await eventually(() => cancelled.length === 1, 10_000, 'the cancel reported');
    expect(cancelled).toEqual([queue]);
    await eventually(() => consumer.isConsuming, 10_000, 'consuming again');
    // The queue exists again (declared by the reopened channel's setup) and is consumed.
    await publisher.send(queue, Buffer.from('after'));
    await eventually(() => received.includes('after'), 10_000, 'message after the re-declare');
    expect(
      log.lines().some((l) => l.queue === queue && /cancelled by the broker/.test(String(l.msg))),
    ).toBe(true);
  } finally {
    await consumer.close();
  }
});

test('a channel the broker closes (publish to a missing exchange: 404) is reopened and usable at once', async () => {
  const queue = uniqueName('reopen');
  queues.push(queue);
  const ch = await raw.createChannel();
  await ch.assertQueue(queue, { durable: true });
  await ch.close();
  const lost: Error[] = [];
  publisher.channel.on('lost', (e) => lost.push(e));

  const err = await publisher
    .publish(uniqueName('no-such-exchange'), 'x', Buffer.from('lost'))
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(BrokerUnavailableError);
  expect(String((err as Error).message)).toMatch(/404|NOT.FOUND/);
  expect(lost).toHaveLength(1);
  // Sent while the channel reopens: it waits for the new channel (bounded) and is confirmed.
  await publisher.send(queue, Buffer.from('right after'));
  expect(publisher.isReady).toBe(true);
  await eventually(async () => (await depth(queue)) === 1, 5000, 'the message in the queue');
});

test('publish() false: Warren holds the rest until drain, then hands them over in order; all are confirmed', async () => {
  const queue = uniqueName('drain');
  queues.push(queue);
  // A small amqplib buffer (16 frames) and a burst in one tick, before amqplib's muxer runs.
  const channel = new ManagedChannel(broker, {
    name: 'drain-test',
    logger: log.logger,
    confirm: true,
    highWaterMark: 16,
    flowTimeoutMs: 10_000,
  });
  await channel.start();
  try {
    await channel.channel?.assertQueue(queue, { durable: true });
    const n = 500;
    const all = Array.from({ length: n }, (_, i) =>
      channel.publish('', queue, Buffer.from(String(i)), { messageId: String(i) }),
    );
    // Most of the burst waits in Warren's list, not in amqplib's buffer.
    expect(channel.waitingCount).toBeGreaterThan(n / 2);
    await Promise.all(all);
    expect(channel.waitingCount).toBe(0);
    expect(await depth(queue)).toBe(n);
    // In publish order.
    const got: string[] = [];
    const c = await raw.createChannel();
    for (let i = 0; i < 20; i++) {
      const m = await c.get(queue, { noAck: true });
      if (m) got.push(String(m.properties.messageId));
    }
    await c.close();
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
  } finally {
    await channel.close();
  }
});
