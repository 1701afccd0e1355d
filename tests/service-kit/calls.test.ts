// Calls are never dead-lettered: on a quorum queue, calls that expire behind a backlog are dropped by
// the broker (the queue has no dead-letter target), and the DLQ stays empty.
import type { ChannelModel } from 'amqplib';
import { Broker, Publisher, RpcClient } from '@warren/messaging';
import { retryQueueName } from '@warren/protocol';
import { defineService, runService, type RunningService } from '@warren/service-kit';
import { testAmqpUrl, uniqueName } from '../support/broker';

import { memoryLogger, rawConnection } from '../messaging/helpers';
import { eventually } from '../support/time';

jest.setTimeout(60_000);

let url: string;
let raw: ChannelModel;
let broker: Broker;
let publisher: Publisher;
let rpc: RpcClient;
const running: RunningService[] = [];
const cleanup: string[] = [];

beforeAll(async () => {
  url = await testAmqpUrl();
  raw = await rawConnection(url);
  const { logger } = memoryLogger();
  broker = await Broker.connect({ url, logger, connectionName: 'calls.test' });
  publisher = await Publisher.create(broker, { logger });
  rpc = await RpcClient.create(broker, { logger });
});

afterAll(async () => {
  for (const s of running) await s.stop();
  const ch = await raw.createChannel();
  for (const q of cleanup) await ch.deleteQueue(q).catch(() => undefined);
  await raw.close();
  await rpc.close();
  await publisher.close();
  await broker.close();
});

async function depth(queue: string): Promise<number> {
  const ch = await raw.createChannel();
  const { messageCount } = await ch.checkQueue(queue);
  await ch.close();
  return messageCount;
}

test('quorum: calls that expire behind a backlog are dropped, and the DLQ stays empty', async () => {
  const name = uniqueName('callexpiry');
  cleanup.push(name, `${name}.dlq`, retryQueueName(name, 1000));
  const handled: string[] = [];
  const svc = await runService(
    defineService({
      name,
      queue: { queueType: 'quorum' },
      prefetch: 1,
      retryDelaysMs: [1000],
      handler: async (body) => {
        handled.push(body.toString());
        await new Promise((r) => setTimeout(r, 40));
      },
    }),
    { env: { AMQP_URL: url, METRICS_PORT: '0', LOG_LEVEL: 'silent' }, handleSignals: false },
  );
  running.push(svc);

  // A backlog of about 1.6 s, then calls that give up after 150 ms, then a last message.
  await Promise.all(
    Array.from({ length: 40 }, (_, i) => publisher.send(name, Buffer.from(`work-${i}`))),
  );
  const calls = await Promise.allSettled(
    Array.from({ length: 20 }, (_, i) =>
      rpc.call(name, Buffer.from(`call-${i}`), { timeoutMs: 150 }),
    ),
  );
  await publisher.send(name, Buffer.from('last'));

  expect(calls.every((c) => c.status === 'rejected')).toBe(true);
  expect(
    calls.map((c) => (c.status === 'rejected' ? (c.reason as { code?: string }).code : 'ok')),
  ).toEqual(Array<string>(20).fill('RPC_TIMEOUT'));
  // Everything ahead of the last message has left the queue: processed, or expired and dropped.
  await eventually(() => handled.includes('last'), 20_000, 'the last message');
  expect(handled.filter((b) => b.startsWith('work-'))).toHaveLength(40);
  expect(handled.filter((b) => b.startsWith('call-'))).toEqual([]);
  expect(await depth(name)).toBe(0);
  expect(await depth(`${name}.dlq`)).toBe(0);
});
