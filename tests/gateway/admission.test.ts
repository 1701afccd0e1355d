// Admission at the door against the real broker: while the gateway's event loop runs late, requests
// past its limit are refused at once (503 overloaded, Retry-After) and never published; every
// admitted one is served; once the loop is on time again, all are let in. Off: nothing refused.
import { defineService, runService, type RunningService } from '@warren/service-kit';
import { expectProblem, metricValue, startTestGateway, type TestGateway } from './helpers';
import { eventually } from '../support/time';

jest.setTimeout(90_000);

const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const name = `admit-${process.pid}`;
let svc: RunningService;
let handled = 0;

beforeAll(async () => {
  svc = await runService(
    defineService({
      name,
      handler: async () => {
        handled++;
        return { ok: true };
      },
    }),
    {
      env: { AMQP_URL, METRICS_PORT: '0', LOG_LEVEL: 'silent' },
      handleSignals: false,
    },
  );
});

afterAll(async () => {
  await svc?.stop();
});

/** Blocks this process's event loop (the gateway's: it runs in this process) 50 ms in every 60. */
function hogLoop(): () => void {
  const timer = setInterval(() => {
    const until = Date.now() + 50;
    while (Date.now() < until) {
      /* busy: every turn of the loop is late */
    }
  }, 60);
  return () => clearInterval(timer);
}

/** `n` calls at once; their answers. */
async function wave(gw: TestGateway, n: number): Promise<Response[]> {
  return Promise.all(
    Array.from({ length: n }, (_, i) =>
      fetch(gw.url(`/v1/${name}?wait=true`), {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': `wave-${i}-${Date.now()}` },
        body: '{}',
      }),
    ),
  );
}

async function ready(gw: TestGateway): Promise<void> {
  await eventually(
    async () => (await wave(gw, 1))[0]!.status === 200,
    15_000,
    'the service answers',
  );
}

test('a late loop: the excess is refused at the door (503 overloaded, Retry-After), never published; on time again, all let in', async () => {
  const gw = await startTestGateway(AMQP_URL, {
    GATEWAY_ADMIT_DELAY_MS: '20',
    GATEWAY_SHED_TARGET_MS: '0',
    GATEWAY_RATE_LIMIT: '100000000',
  });
  try {
    await ready(gw);
    const handledBefore = handled;
    const stop = hogLoop();
    const answers: Response[] = [];
    try {
      for (let i = 0; i < 10; i++) answers.push(...(await wave(gw, 40)));
    } finally {
      stop();
    }
    const ok = answers.filter((r) => r.status === 200);
    const refused = answers.filter((r) => r.status === 503);
    // Every request answered, served or refused: nothing else.
    expect(ok.length + refused.length).toBe(400);
    expect(refused.length).toBeGreaterThan(100);
    expect(ok.length).toBeGreaterThan(0);
    for (const r of refused) {
      expect(r.headers.get('retry-after')).toBe('1');
      expect(r.headers.get('x-request-id')).toMatch(/^wave-/);
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    }
    const p = await expectProblem(refused[0]!, 503);
    expect(p.type).toMatch(/overloaded/);
    expect(p.detail).toMatch(/GATEWAY_ADMIT_DELAY_MS/);
    await Promise.all(refused.slice(1).map((r) => r.arrayBuffer()));
    await Promise.all(ok.map((r) => r.arrayBuffer()));
    // Only the admitted calls reached the service, each once.
    expect(handled - handledBefore).toBe(ok.length);
    expect(
      await metricValue(gw, 'gateway_overload_rejections_total', { reason: 'event_loop' }),
    ).toBe(refused.length);
    expect(
      await metricValue(gw, 'gateway_http_requests_total', {
        method: 'POST',
        route: '/v1/:service',
        status: '503',
      }),
    ).toBe(refused.length);
    expect(gw.logs()).toMatch(/requests refused at the door/);
    // The loop on time again: the limit grows back and is lifted.
    await eventually(
      async () => (await wave(gw, 40)).every((r) => r.status === 200),
      10_000,
      'all calls let in again',
    );
  } finally {
    await gw.stop();
  }
});

test('GATEWAY_ADMIT_DELAY_MS=0: the same late loop refuses nothing', async () => {
  const gw = await startTestGateway(AMQP_URL, {
    GATEWAY_ADMIT_DELAY_MS: '0',
    GATEWAY_SHED_TARGET_MS: '0',
    GATEWAY_RATE_LIMIT: '100000000',
  });
  try {
    await ready(gw);
    const stop = hogLoop();
    const answers: Response[] = [];
    try {
      for (let i = 0; i < 5; i++) answers.push(...(await wave(gw, 40)));
    } finally {
      stop();
    }
    await Promise.all(answers.map((r) => r.arrayBuffer()));
    expect(answers.map((r) => r.status)).toEqual(Array(200).fill(200));
    expect(
      await metricValue(gw, 'gateway_overload_rejections_total', { reason: 'event_loop' }),
    ).toBe(0);
  } finally {
    await gw.stop();
  }
});
