import { History } from './history';
import type { Counters } from './stats';

const counters = (success: number, fast: number, inFlight = 0): Counters => ({
  messages: { success, retry: 0, dead_letter: 0, rejected: 0 },
  processing: [
    [0.01, fast],
    [1, success],
    [Infinity, success],
  ],
  queueWait: [],
  inFlight,
  http: {},
  rpc: [],
  pending: 0,
});

test('rates from deltas between scrapes, summed over instances; quantiles over the window', () => {
  const h = new History({ rateWindowMs: 10_000 });
  const depths = new Map([
    ['echo', 7],
    ['echo.dlq', 1],
  ]);
  h.record(
    0,
    [
      { service: 'echo', instanceId: 'a', counters: counters(100, 50) },
      { service: 'echo', instanceId: 'b', counters: counters(1000, 500) },
    ],
    depths,
  );
  // Baseline only: no traffic counted yet.
  expect(h.summaries()[0]?.rate).toBe(0);
  h.record(
    2000,
    [
      { service: 'echo', instanceId: 'a', counters: counters(120, 60, 2) },
      { service: 'echo', instanceId: 'b', counters: counters(1020, 520, 1) },
    ],
    depths,
  );
  const [echo] = h.summaries();
  expect(echo).toMatchObject({
    name: 'echo',
    instances: 2,
    rate: 20, // 40 messages in 2 s
    rates: { success: 20, retry: 0, dead_letter: 0, rejected: 0 },
    inFlight: 3,
    queueDepth: 7,
    dlqDepth: 1,
  });
  // 30 of 40 under 10 ms.
  expect(echo?.processing.p50).toBeCloseTo(0.01 * (20 / 30));
  expect(echo?.processing.p95).toBeGreaterThan(0.01);
});

test('a restarted instance and a failed scrape do not make negative or phantom traffic', () => {
  const h = new History();
  h.record(0, [{ service: 's', instanceId: 'a', counters: counters(500, 0) }], new Map());
  h.record(2000, [{ service: 's', instanceId: 'a', counters: undefined }], new Map());
  expect(h.summaries()[0]).toMatchObject({ instances: 1, rate: 0 });
  // A new instance id (the restart) starts from its own baseline.
  h.record(4000, [{ service: 's', instanceId: 'a2', counters: counters(3, 0) }], new Map());
  expect(h.summaries()[0]?.rate).toBe(0);
  h.record(6000, [{ service: 's', instanceId: 'a2', counters: counters(13, 0) }], new Map());
  expect(h.summaries()[0]?.rate).toBeGreaterThan(0);
  expect(h.stepsOf('s').every((s) => s.messages.success >= 0)).toBe(true);
});

test('keeps steps for the retention only', () => {
  const h = new History({ retentionMs: 10_000 });
  for (let t = 0; t <= 30_000; t += 2000)
    h.record(t, [{ service: 's', instanceId: 'a', counters: counters(t, 0) }], new Map());
  const steps = h.stepsOf('s');
  expect(steps.length).toBeLessThanOrEqual(6);
  expect(steps[0]?.t).toBeGreaterThanOrEqual(20_000);
});
