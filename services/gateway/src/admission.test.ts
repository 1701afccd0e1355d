// LoopAdmission's decisions with a fake clock and a fake loop-delay source.
import { LoopAdmission, loopDelayMonitor, type AdmissionInterval } from './admission';

function setup(opts: { targetMs?: number; minLimit?: number; liftAfter?: number } = {}) {
  let t = 0;
  let delayMs = 0;
  let inProgress = 0;
  let closed = false;
  const intervals: AdmissionInterval[] = [];
  const adm = new LoopAdmission(
    {
      targetMs: opts.targetMs ?? 30,
      minLimit: opts.minLimit ?? 8,
      liftAfter: opts.liftAfter ?? 3,
      intervalMs: 100,
      inProgress: () => inProgress,
      now: () => t,
      delay: {
        takeMinMs: () => delayMs,
        close: () => {
          closed = true;
        },
      },
    },
    (i) => intervals.push(i),
  );
  return {
    adm,
    intervals,
    set(v: { delayMs?: number; inProgress?: number }) {
      if (v.delayMs !== undefined) delayMs = v.delayMs;
      if (v.inProgress !== undefined) inProgress = v.inProgress;
    },
    /** Moves to the next interval: the next refuses() rolls it. */
    tick(ms = 100) {
      t += ms;
    },
    /** `n` requests arrive (admitted ones stay in progress); how many were refused. */
    arrive(n: number): number {
      let refused = 0;
      for (let i = 0; i < n; i++) {
        if (adm.refuses()) refused++;
        else inProgress++;
      }
      return refused;
    },
    get inProgress() {
      return inProgress;
    },
    get closed() {
      return closed;
    },
  };
}

test('no limit while the loop keeps up: every request is let in', () => {
  const s = setup();
  for (let i = 0; i < 20; i++) {
    expect(s.arrive(500)).toBe(0);
    s.tick();
  }
  expect(s.adm.currentLimit).toBe(Infinity);
  expect(s.intervals).toEqual([]);
});

test('a late loop limits requests in progress to three quarters of what was in progress', () => {
  const s = setup({ targetMs: 30 });
  s.set({ delayMs: 80, inProgress: 400 });
  s.tick();
  // This arrival rolls the interval: late, 400 in progress -> limit 300, already exceeded.
  expect(s.arrive(1)).toBe(1);
  expect(s.adm.currentLimit).toBe(300);
  s.set({ inProgress: 100 });
  // Under the limit: let in until it is reached, then refused.
  expect(s.arrive(250)).toBe(50);
  expect(s.inProgress).toBe(300);
  s.tick();
  s.arrive(1);
  // Still late: three quarters again (of the limit, which is below what is in progress).
  expect(s.adm.currentLimit).toBe(225);
  expect(s.intervals[0]).toEqual({ delayMs: 80, limit: 225, refused: 51 });
});

test('exactly at the target is not late', () => {
  const s = setup({ targetMs: 30 });
  s.set({ delayMs: 30, inProgress: 400 });
  s.tick();
  expect(s.arrive(100)).toBe(0);
  expect(s.adm.currentLimit).toBe(Infinity);
});

test('the limit does not fall below what the gateway served at the target delay (Little), nor minLimit', () => {
  const s = setup({ targetMs: 50, minLimit: 8 });
  // On time, 1000 requests in 100 ms: 10 000/s served while keeping up.
  s.arrive(1000);
  s.tick();
  s.arrive(1);
  s.set({ delayMs: 200, inProgress: 2000 });
  for (let i = 0; i < 20; i++) {
    s.tick();
    s.arrive(1);
  }
  // 10 000/s x 50 ms = 500 in progress, not fewer however late the loop stays.
  expect(s.adm.currentLimit).toBe(500);

  const quiet = setup({ targetMs: 50, minLimit: 8 });
  quiet.set({ delayMs: 200, inProgress: 20 });
  for (let i = 0; i < 20; i++) {
    quiet.tick();
    quiet.arrive(1);
  }
  expect(quiet.adm.currentLimit).toBe(8);
});

test('on time again: a limit that is reached grows by a quarter per interval', () => {
  const s = setup({ targetMs: 30 });
  s.set({ delayMs: 100, inProgress: 100 });
  s.tick();
  s.arrive(1);
  expect(s.adm.currentLimit).toBe(75);
  s.set({ delayMs: 5 });
  s.tick();
  s.arrive(1); // rolls: on time, but the limit was reached in the last interval (that arrival)
  expect(s.adm.currentLimit).toBe(94);
  s.tick();
  s.arrive(1);
  expect(s.adm.currentLimit).toBe(118);
});

test('on time and not reached for liftAfter intervals: the limit is lifted', () => {
  const s = setup({ targetMs: 30, liftAfter: 3 });
  s.set({ delayMs: 100, inProgress: 100 });
  s.tick();
  s.arrive(1);
  expect(s.adm.currentLimit).toBe(75);
  s.set({ delayMs: 0, inProgress: 0 });
  // The request that rolled into the late interval was refused: the limit was reached, so the
  // first interval on time grows it; the three after it, quiet, lift it.
  s.tick();
  expect(s.adm.refuses()).toBe(false);
  expect(s.adm.currentLimit).toBe(94);
  for (let i = 0; i < 3; i++) {
    expect(s.adm.currentLimit).toBe(94);
    s.tick();
    expect(s.adm.refuses()).toBe(false);
  }
  expect(s.adm.currentLimit).toBe(Infinity);
});

test('an interval with no delay sample changes nothing', () => {
  const s = setup({ targetMs: 30 });
  s.set({ delayMs: 100, inProgress: 100 });
  s.tick();
  s.arrive(1);
  expect(s.adm.currentLimit).toBe(75);
  s.set({ delayMs: NaN });
  for (let i = 0; i < 10; i++) {
    s.tick();
    s.arrive(1);
  }
  expect(s.adm.currentLimit).toBe(75);
});

test('targetMs 0: off, nothing measured, nothing refused', () => {
  const adm = new LoopAdmission({ targetMs: 0, inProgress: () => 1e9 });
  expect(adm.enabled).toBe(false);
  expect(adm.refuses()).toBe(false);
  adm.close();
});

test('close() stops the delay source', () => {
  const s = setup();
  s.adm.close();
  expect(s.closed).toBe(true);
});

test('the perf_hooks monitor reports how late a busy loop runs, and only that', async () => {
  const monitor = loopDelayMonitor(10);
  try {
    await new Promise((r) => setTimeout(r, 100));
    // An idle loop: the timer fires on time (a few ms of jitter at most).
    expect(monitor.takeMinMs()).toBeLessThan(8);
    // Every turn busy for 40 ms: each firing is about 30 ms late.
    for (let i = 0; i < 8; i++) {
      await new Promise((r) => setImmediate(r));
      const until = Date.now() + 40;
      while (Date.now() < until) {
        /* the loop is busy */
      }
    }
    expect(monitor.takeMinMs()).toBeGreaterThan(15);
  } finally {
    monitor.close();
  }
});

test('late tells whether the last interval found the loop late (no sample: unchanged)', () => {
  const s = setup({ targetMs: 30 });
  expect(s.adm.late).toBe(false);
  s.set({ delayMs: 80 });
  s.tick();
  s.arrive(1);
  expect(s.adm.late).toBe(true);
  s.set({ delayMs: NaN });
  s.tick();
  s.arrive(1);
  expect(s.adm.late).toBe(true);
  s.set({ delayMs: 10 });
  s.tick();
  s.arrive(1);
  expect(s.adm.late).toBe(false);
});
