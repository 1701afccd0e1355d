// Upgrading over queues an earlier Warren declared: a quorum queue with a dead-letter target cannot
// take the new arguments (PRECONDITION_FAILED), so the service keeps it as it is and says so; the old
// retry queues keep their names and drain into the queue by themselves. On such a queue expired calls
// still reach the DLQ, and `dlq replay` leaves them there.
import { Writable } from 'node:stream';
import { legacyMainQueueArguments } from '@warren/messaging';
import { legacyRetryQueueName, retryQueueName } from '@warren/protocol';
import { defineService, runService } from '@warren/service-kit';
import { runCli } from '../../tools/dlq/src/cli';
import { uniqueName } from '../support/broker';

import { eventually } from '../support/time';
import { brokerFixture } from './broker-fixture';

jest.setTimeout(60_000);

const f = brokerFixture('upgrade.test');

function text(): { stream: Writable; out: () => string } {
  const chunks: string[] = [];
  return {
    stream: new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk.toString());
        cb();
      },
    }),
    out: () => chunks.join(''),
  };
}

test('a quorum queue from an earlier Warren keeps working; its expired calls reach the DLQ and are not replayed', async () => {
  const name = uniqueName('upgrade');
  const DELAY = 200;
  const legacyRetry = legacyRetryQueueName(name, DELAY);
  f.cleanup.push(name, `${name}.dlq`, legacyRetry, retryQueueName(name, DELAY));

  // What the earlier version declared: the queue, its DLQ, and a retry queue holding a copy.
  const ch = await f.raw.createConfirmChannel();
  const spec = { name, kind: 'durable' as const, queueType: 'quorum' as const, retryDelaysMs: [] };
  await ch.assertQueue(name, { durable: true, arguments: legacyMainQueueArguments(spec) });
  await ch.assertQueue(`${name}.dlq`, {
    durable: true,
    arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 1_000_000 },
  });
  await ch.assertQueue(legacyRetry, {
    durable: true,
    arguments: {
      'x-queue-type': 'quorum',
      'x-message-ttl': 60_000,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': name,
    },
  });
  ch.sendToQueue(legacyRetry, Buffer.from('retried-before-the-upgrade'), {
    expiration: '300',
    persistent: true,
  });
  await ch.waitForConfirms();

  const handled: string[] = [];
  const log = text();
  const svc = await runService(
    defineService({
      name,
      queue: { queueType: 'quorum' },
      prefetch: 1,
      retryDelaysMs: [DELAY],
      handler: async (body) => {
        handled.push(body.toString());
        await new Promise((r) => setTimeout(r, 30));
      },
    }),
    {
      env: { AMQP_URL: f.url, METRICS_PORT: '0', LOG_LEVEL: 'warn' },
      handleSignals: false,
      logDestination: log.stream,
    },
  );
  f.running.push(svc);
  expect(log.out()).toMatch(/declared by an earlier Warren/);
  // The old retry queue drains into the queue by itself; the new one exists beside it.
  await eventually(() => handled.includes('retried-before-the-upgrade'), 10_000, 'old retry');
  expect((await ch.checkQueue(retryQueueName(name, DELAY))).messageCount).toBe(0);

  // The old arguments still dead-letter a call that expires behind a backlog.
  await Promise.all(
    Array.from({ length: 20 }, (_, i) => f.publisher.send(name, Buffer.from(`work-${i}`))),
  );
  await expect(
    f.rpc.call(name, Buffer.from('late call'), { timeoutMs: 100 }),
  ).rejects.toMatchObject({
    code: 'RPC_TIMEOUT',
  });
  await eventually(
    async () => (await ch.checkQueue(`${name}.dlq`)).messageCount === 1,
    20_000,
    'the expired call in the DLQ',
  );
  expect(handled).not.toContain('late call');

  // dlq replay leaves it there and says why.
  const stdout = text();
  const stderr = text();
  const code = await runCli(['replay', name, '--all'], {
    stdout: stdout.stream,
    stderr: stderr.stream,
    env: { AMQP_URL: f.url },
  });
  expect(code).toBe(0);
  expect(stdout.out()).toBe(
    `replayed 0 dead letters from ${name}.dlq to ${name}; skipped 1 call (never replayed: a call ` +
      `was answered or its caller gave up; an expired message was meant to be dropped); ` +
      `1 left in ${name}.dlq\n`,
  );
  expect((await ch.checkQueue(`${name}.dlq`)).messageCount).toBe(1);
  await ch.close();
});
