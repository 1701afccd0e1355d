// Publisher against the real broker: confirm, unroutable (mandatory), nack (full queue), many in flight.
import type { ChannelModel } from 'amqplib';
import { Broker, Publisher, PublishNackedError, UnroutableError } from '@warren/messaging';
import { testAmqpUrl, uniqueName } from '../support/broker';
import { memoryLogger, rawConnection } from './helpers';

let url: string;
let broker: Broker;
let publisher: Publisher;
let raw: ChannelModel;
const queues: string[] = [];

beforeAll(async () => {
  url = await testAmqpUrl();
  const { logger } = memoryLogger();
  broker = await Broker.connect({ url, logger, connectionName: 'publisher.test' });
  publisher = await Publisher.create(broker, { logger });
  raw = await rawConnection(url);
});

afterAll(async () => {
  const ch = await raw.createChannel();
  for (const q of queues) await ch.deleteQueue(q);
  await raw.close();
  await publisher.close();
  await broker.close();
});

async function queue(args: Record<string, unknown> = {}): Promise<string> {
  const name = uniqueName('pub');
  queues.push(name);
  const ch = await raw.createChannel();
  await ch.assertQueue(name, { durable: true, arguments: args });
  await ch.close();
  return name;
}

test('publish resolves after the broker confirmed, and the bytes and properties arrive unchanged', async () => {
  const q = await queue();
  const body = Buffer.from([0, 1, 2, 255, 0x7b]);
  await publisher.send(q, body, {
    contentType: 'application/octet-stream',
    messageId: 'm-1',
    persistent: true,
  });
  const ch = await raw.createChannel();
  const got = await ch.get(q, { noAck: true });
  await ch.close();
  expect(got).not.toBe(false);
  if (got === false) return;
  expect(got.content.equals(body)).toBe(true);
  expect(got.properties.messageId).toBe('m-1');
  expect(got.properties.contentType).toBe('application/octet-stream');
  expect(got.properties.deliveryMode).toBe(2);
});

test('a mandatory publish nobody can route rejects with UnroutableError', async () => {
  const err = await publisher
    .send(uniqueName('nowhere'), Buffer.from('x'))
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(UnroutableError);
  expect((err as UnroutableError).code).toBe('UNROUTABLE');
});

test('a publish past x-max-length with reject-publish is nacked: PublishNackedError', async () => {
  const q = await queue({ 'x-max-length': 1, 'x-overflow': 'reject-publish' });
  await publisher.send(q, Buffer.from('first'));
  const err = await publisher.send(q, Buffer.from('second')).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(PublishNackedError);
});

test('many publishes in flight at once all confirm, routed and unroutable ones told apart', async () => {
  const q = await queue();
  const results = await Promise.allSettled(
    Array.from({ length: 500 }, (_, i) =>
      i % 50 === 0
        ? publisher.send(`${q}-missing`, Buffer.from(String(i)))
        : publisher.send(q, Buffer.from(String(i))),
    ),
  );
  const rejected = results.filter((r) => r.status === 'rejected');
  expect(rejected).toHaveLength(10);
  for (const r of rejected)
    expect((r as PromiseRejectedResult).reason).toBeInstanceOf(UnroutableError);
  const ch = await raw.createChannel();
  const { messageCount } = await ch.checkQueue(q);
  await ch.close();
  expect(messageCount).toBe(490);
});
