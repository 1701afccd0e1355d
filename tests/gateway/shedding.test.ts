// Load shedding against the real broker: calls offered at 3x a slow service's capacity, open loop.
// Shedding on: the excess is refused at once (503 overloaded, Retry-After) and every admitted call
// is answered within its timeout; off: the queue only grows and calls time out (504).
import { defineService, runService, type RunningService } from '@warren/service-kit';
import { expectProblem, metricValue, post, startTestGateway, type TestGateway } from './helpers';
import { eventually } from '../support/time';
// The benchmark's open-loop generator: requests start on schedule whatever the answers.
import { openLoop } from '../../tools/bench/lib/open-loop';

jest.setTimeout(90_000);

const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const name = `slowpoke-${process.pid}`;
let svc: RunningService;

beforeAll(async () => {
  // One message at a time, 20 ms each: about 50 calls/s.
  svc = await runService(
    defineService({
      name,
      handler: async () => {
        await new Promise((r) => setTimeout(r, 20));
        return { ok: true };
      },
    }),
    {
      env: { AMQP_URL, METRICS_PORT: '0', LOG_LEVEL: 'silent', PREFETCH: '1' },
      handleSignals: false,
    },
  );
});

afterAll(async () => {
  await svc?.stop();
});

async function offer(gw: TestGateway) {
  await eventually(
    async () => (await post(gw, `/v1/${name}?wait=true`, '{}')).status === 200,
    15_000,
    'the service answers',
  );
  // 150 calls/s for 4 s, each waiting at most 1.5 s for its reply (then 504).
  return openLoop({
    url: gw.url(`/v1/${name}?wait=true&timeoutMs=1500`),
    rate: 150,
    seconds: 4,
    warmupS: 0,
    body: '{}',
    sockets: 256,
    timeoutMs: 10_000,
  });
}

test('shedding on: the excess is answered 503 overloaded with Retry-After at once; no admitted call times out', async () => {
  const gw = await startTestGateway(AMQP_URL, {
    GATEWAY_SHED_TARGET_MS: '50',
    GATEWAY_RATE_LIMIT: '100000000',
    // Only the mechanism under test: no refusals at the door when this process's loop is late.
    GATEWAY_ADMIT_DELAY_MS: '0',
  });
  try {
    const r = await offer(gw);
    expect(r.sent).toBe(600);
    expect(r.timeout + r.error).toBe(0);
    // Served at about the service's rate; the rest shed, none left to time out (a 504 is "other").
    expect(r.ok).toBeGreaterThan(100);
    expect(r.shed).toBeGreaterThan(200);
    expect(r.shedWithRetryAfter).toBe(r.shed);
    expect(r.otherStatus).toBe(0);
    expect(
      await metricValue(gw, 'gateway_overload_rejections_total', { reason: 'queue_delay' }),
    ).toBe(r.shed);
    const shed = await post(gw, `/v1/${name}?wait=true`, '{}');
    if (shed.status === 503) {
      const p = await expectProblem(shed, 503);
      expect(p.type).toMatch(/overloaded/);
    }
  } finally {
    await gw.stop();
  }
});

test('shedding off: the same load queues without bound and calls time out', async () => {
  const gw = await startTestGateway(AMQP_URL, {
    GATEWAY_SHED_TARGET_MS: '0',
    GATEWAY_RATE_LIMIT: '100000000',
    // Only the mechanism under test: no refusals at the door when this process's loop is late.
    GATEWAY_ADMIT_DELAY_MS: '0',
  });
  try {
    const r = await offer(gw);
    expect(r.shed).toBe(0);
    // 504s: calls that waited behind the growing queue past their 1.5 s.
    expect(r.otherStatus).toBeGreaterThan(100);
  } finally {
    await gw.stop();
    // What is left in the queue after the callers gave up expires (their TTL) or is dropped unrun.
    await eventually(
      async () =>
        ((await svc.registry.getSingleMetric('mq_consumer_in_flight')?.get())?.values[0]?.value ??
          0) === 0,
      30_000,
      'the backlog gone',
    );
  }
});
