// Deadlines bound work: a handler that ignores its deadline keeps its message unacked until it really
// ends, so handlers running at once never outnumber the prefetch (mq_consumer_overdue_handlers and a
// warn line say so). Measured with a counter in the handler and the service's own gauges.
import { Writable } from 'node:stream';
import { retryQueueName } from '@warren/protocol';
import { defineService, runService, type RunningService } from '@warren/service-kit';
import { uniqueName } from '../support/broker';

import { eventually } from '../support/time';
import { brokerFixture } from './broker-fixture';

jest.setTimeout(60_000);

const f = brokerFixture('overdue.test');

async function gauge(svc: RunningService, name: string): Promise<number> {
  return (await svc.registry.getSingleMetric(name)?.get())?.values[0]?.value ?? 0;
}

test('handlers past their deadline keep their prefetch slots: never more running than the prefetch', async () => {
  const name = uniqueName('overdue');
  f.cleanup.push(name, `${name}.dlq`, retryQueueName(name, 1000));
  const PREFETCH = 2;
  const MESSAGES = 8;
  let runningNow = 0;
  let maxRunning = 0;
  let finished = 0;
  const logLines: string[] = [];
  const svc = await runService(
    defineService({
      name,
      prefetch: PREFETCH,
      handlerTimeoutMs: 100,
      maxAttempts: 1,
      retryDelaysMs: [1000],
      // Ignores ctx.signal and runs well past its deadline.
      handler: async () => {
        runningNow++;
        maxRunning = Math.max(maxRunning, runningNow);
        await new Promise((r) => setTimeout(r, 500));
        runningNow--;
        finished++;
      },
    }),
    {
      env: { AMQP_URL: f.url, METRICS_PORT: '0', LOG_LEVEL: 'info' },
      handleSignals: false,
      logDestination: new Writable({
        write(chunk: Buffer, _enc, cb) {
          logLines.push(...chunk.toString().split('\n').filter(Boolean));
          cb();
        },
      }),
    },
  );
  f.running.push(svc);

  await Promise.all(
    Array.from({ length: MESSAGES }, (_, i) => f.publisher.send(name, Buffer.from(`m${i}`))),
  );
  let maxOverdue = 0;
  let maxInFlight = 0;
  await eventually(
    async () => {
      maxOverdue = Math.max(maxOverdue, await gauge(svc, 'mq_consumer_overdue_handlers'));
      maxInFlight = Math.max(maxInFlight, await gauge(svc, 'mq_consumer_in_flight'));
      return finished === MESSAGES;
    },
    30_000,
    'every handler to end',
  );
  // Each attempt timed out (maxAttempts 1: to the DLQ) while its handler ran on.
  await eventually(async () => (await f.depth(`${name}.dlq`)) === MESSAGES, 10_000, 'dead letters');
  expect(maxRunning).toBe(PREFETCH);
  expect(maxInFlight).toBeLessThanOrEqual(PREFETCH);
  expect(maxOverdue).toBeGreaterThan(0);
  expect(maxOverdue).toBeLessThanOrEqual(PREFETCH);
  await eventually(
    async () => (await gauge(svc, 'mq_consumer_overdue_handlers')) === 0,
    5000,
    'no overdue handler',
  );
  const warnings = logLines
    .map((l) => JSON.parse(l) as { level: string; msg: string })
    .filter((l) => l.level === 'warn' && /past its deadline/.test(l.msg));
  expect(warnings.length).toBe(MESSAGES);
});
