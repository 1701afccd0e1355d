// Connection loss on a private RabbitMQ node: consumers resume by themselves, publishes fail fast meanwhile,
// nothing is lost and nothing is acked twice.
import {
  Broker,
  BrokerUnavailableError,
  Consumer,
  Publisher,
  declareServiceTopology,
} from '@warren/messaging';
import { startPrivateBroker, type PrivateBroker } from '../support/private-broker';
import { eventually, scaled } from '../support/time';
import { memoryLogger } from './helpers';

jest.setTimeout(scaled(180_000));

let node: PrivateBroker;
let broker: Broker;
let publisher: Publisher;
let consumer: Consumer;
const log = memoryLogger('reconnect');
const received = new Map<string, number>();
let reconnects = 0;
const QUEUE = 'reconnect-test';

beforeAll(async () => {
  node = await startPrivateBroker('warren-reconnect');
  broker = await Broker.connect({
    url: node.url,
    logger: log.logger,
    connectionName: 'reconnect.test',
    initialDelayMs: 50,
    maxDelayMs: 500,
    onReconnect: () => reconnects++,
  });
  publisher = await Publisher.create(broker, { logger: log.logger });
  consumer = await Consumer.create(broker, {
    queue: QUEUE,
    prefetch: 20,
    logger: log.logger,
    declare: (ch) =>
      declareServiceTopology(ch, { name: QUEUE, kind: 'durable', retryDelaysMs: [] }),
    onMessage: (d) => {
      const id = d.body.toString();
      // Hold each message briefly so some are unacked when the connection drops.
      setTimeout(() => {
        received.set(id, (received.get(id) ?? 0) + 1);
        d.ack();
      }, 30);
    },
  });
});

afterAll(async () => {
  await consumer?.close();
  await publisher?.close();
  await broker?.close();
  await node?.stop();
});

async function publishRange(from: number, to: number): Promise<void> {
  const all = [];
  for (let i = from; i < to; i++)
    all.push(publisher.send(QUEUE, Buffer.from(`m${i}`), { persistent: true }));
  await Promise.all(all);
}

const missing = (n: number) =>
  Array.from({ length: n }, (_, i) => `m${i}`).filter((id) => !received.has(id));

test('close_all_connections under a running consumer: it reconnects and resumes, nothing lost', async () => {
  // Enough work (~2 s at prefetch 20) that deliveries are in flight when the connection dies.
  await publishRange(0, 1500);
  await eventually(() => received.size >= 50, 20_000, 'first messages');
  await node.ctl('close_all_connections', 'test: connection killed');
  await eventually(
    () => broker.state !== 'connected' || reconnects > 0,
    10_000,
    'disconnect noticed',
  );
  await eventually(() => reconnects >= 1 && consumer.isConsuming, 20_000, 'reconnect');
  await publishRange(1500, 1600);
  await eventually(() => missing(1600).length === 0, 30_000, 'all 1600 messages');
  expect(missing(1600)).toEqual([]);
});

test('broker app stopped: publish fails fast with a typed error; after start the consumer resumes', async () => {
  await node.stopApp();
  await eventually(() => broker.state === 'disconnected', 10_000, 'disconnected state');
  const t0 = Date.now();
  const err = await publisher.send(QUEUE, Buffer.from('during-outage')).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(BrokerUnavailableError);
  expect(Date.now() - t0).toBeLessThan(scaled(1000));
  expect(publisher.isReady).toBe(false);
  expect(consumer.isConsuming).toBe(false);

  const before = reconnects;
  await node.startApp();
  await eventually(
    () => reconnects > before && consumer.isConsuming && publisher.isReady,
    30_000,
    'recovery',
  );
  await publishRange(1600, 1700);
  await eventually(() => missing(1700).length === 0, 30_000, 'all 1700 messages');
  expect(missing(1700)).toEqual([]);
});

test('no delivery was acked twice or on a stale channel (the broker never closed a channel for it)', () => {
  const channelErrors = log
    .lines()
    .filter((l) => typeof l.msg === 'string' && /channel error/.test(l.msg))
    .map((l) => JSON.stringify(l.err));
  expect(channelErrors.filter((e) => /PRECONDITION_FAILED|unknown delivery tag/i.test(e))).toEqual(
    [],
  );
  // Redeliveries after a connection loss are allowed (at-least-once); report how many.
  const duplicates = [...received.values()].filter((n) => n > 1).length;
  process.stdout.write(
    `reconnect test: ${received.size} distinct messages, ${duplicates} redelivered\n`,
  );
  expect(received.size).toBe(1700);
});
