// Calls are never dead-lettered: on a quorum queue, calls that expire behind a backlog are dropped by
// the broker (the queue has no dead-letter target), and the DLQ stays empty.
import { retryQueueName } from '@warren/protocol';
import { defineService, runService } from '@warren/service-kit';
import { uniqueName } from '../support/broker';

import { eventually } from '../support/time';
import { brokerFixture } from './broker-fixture';

jest.setTimeout(60_000);

const f = brokerFixture('calls.test');

test('quorum: calls that expire behind a backlog are dropped, and the DLQ stays empty', async () => {
  const name = uniqueName('callexpiry');
  f.cleanup.push(name, `${name}.dlq`, retryQueueName(name, 1000));
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
    { env: { AMQP_URL: f.url, METRICS_PORT: '0', LOG_LEVEL: 'silent' }, handleSignals: false },
  );
  f.running.push(svc);

  // A backlog of about 1.6 s, then calls that give up after 150 ms, then a last message.
  await Promise.all(
    Array.from({ length: 40 }, (_, i) => f.publisher.send(name, Buffer.from(`work-${i}`))),
  );
  const calls = await Promise.allSettled(
    Array.from({ length: 20 }, (_, i) =>
      f.rpc.call(name, Buffer.from(`call-${i}`), { timeoutMs: 150 }),
    ),
  );
  await f.publisher.send(name, Buffer.from('last'));

  expect(calls.every((c) => c.status === 'rejected')).toBe(true);
  expect(
    calls.map((c) => (c.status === 'rejected' ? (c.reason as { code?: string }).code : 'ok')),
  ).toEqual(Array<string>(20).fill('RPC_TIMEOUT'));
  // Everything ahead of the last message has left the queue: processed, or expired and dropped.
  await eventually(() => handled.includes('last'), 20_000, 'the last message');
  expect(handled.filter((b) => b.startsWith('work-'))).toHaveLength(40);
  expect(handled.filter((b) => b.startsWith('call-'))).toEqual([]);
  expect(await f.depth(name)).toBe(0);
  expect(await f.depth(`${name}.dlq`)).toBe(0);
});
