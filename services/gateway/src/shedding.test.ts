// CallShedder with a fake clock: no shedding while calls pass through, Little's-law limit under a standing queue, growth back, bounds.
import { CallShedder } from './shedding';

function setup(targetMs = 50, maxLimit = 10_000) {
  let now = 0;
  const shedder = new CallShedder({ targetMs, maxLimit, intervalMs: 100, now: () => now });
  const advance = (ms: number) => (now += ms);
  /** `n` calls that each queued `queueMs` and took `serviceMs` in the service, within one interval. */
  const passThrough = (service: string, n: number, queueMs: number, serviceMs = 1) => {
    for (let i = 0; i < n; i++) {
      expect(shedder.admit(service)).toBe(true);
      shedder.done(service, queueMs + serviceMs + 1, { queueMs, serviceMs });
    }
  };
  return { shedder, advance, passThrough };
}

test('calls that queue less than the target are never shed, however many wait', () => {
  const { shedder, advance, passThrough } = setup();
  for (let i = 0; i < 20; i++) {
    passThrough('echo', 100, 10);
    advance(100);
  }
  for (let i = 0; i < 5000; i++) expect(shedder.admit('echo')).toBe(true);
  expect(shedder.limitOf('echo')).toBe(10_000);
});

test('a standing queue above the target sets the limit by Little: peak rate x (service time + target)', () => {
  const { shedder, advance } = setup(50);
  // 400 replies per 100 ms = 4000/s, the least of them queued 200 ms, 5 ms in the service.
  for (let i = 0; i < 1000; i++) expect(shedder.admit('echo')).toBe(true);
  for (let i = 0; i < 400; i++) shedder.done('echo', 206, { queueMs: 200, serviceMs: 5 });
  advance(100);
  // The interval is over: the next reply revisits the limit.
  shedder.done('echo', 206, { queueMs: 200, serviceMs: 5 });
  // 401 replies in the interval: 4010/s x (5 + 50) ms = 220.55, rounded up.
  const limit = shedder.limitOf('echo');
  expect(limit).toBe(221);
  // 599 still waiting: every new call is shed until they are under the limit.
  expect(shedder.admit('echo')).toBe(false);
  for (let i = 0; i < 599 - limit + 1; i++) shedder.done('echo', 10, undefined);
  expect(shedder.admit('echo')).toBe(true);
});

test('once the queue is gone the limit grows back by a quarter per interval in which it was reached', () => {
  const { shedder, advance, passThrough } = setup(50);
  for (let i = 0; i < 300; i++) shedder.admit('echo');
  for (let i = 0; i < 300; i++) shedder.done('echo', 300, { queueMs: 290, serviceMs: 1 });
  advance(100);
  passThrough('echo', 1, 290);
  const low = shedder.limitOf('echo');
  expect(low).toBeLessThan(10_000);
  // Fill up to the limit, get refused once, answer fast: the next interval grows the limit.
  for (let i = 0; i < low; i++) expect(shedder.admit('echo')).toBe(true);
  expect(shedder.admit('echo')).toBe(false);
  for (let i = 0; i < low; i++) shedder.done('echo', 5, { queueMs: 2, serviceMs: 1 });
  advance(100);
  passThrough('echo', 1, 2);
  expect(shedder.limitOf('echo')).toBe(low + Math.ceil(low / 4));
});

test('services are limited each on their own; replies without timing and timeouts give no sample', () => {
  const { shedder, advance } = setup(50);
  for (let i = 0; i < 100; i++) shedder.admit('slow');
  // A plain AMQP service: its replies carry no timing, so however long they took, no limit.
  for (let i = 0; i < 100; i++) shedder.done('slow', 5000, undefined);
  advance(100);
  shedder.admit('slow');
  shedder.done('slow', 5000, undefined);
  expect(shedder.limitOf('slow')).toBe(10_000);
  expect(shedder.limitOf('echo')).toBe(10_000);
});

test('a service cannot claim more time than the call took; the limit never drops below the floor', () => {
  const { shedder, advance } = setup(50);
  // 100 replies per 100 ms, each claiming 10 s in the service for a call that took 300 ms: counted
  // as 300 ms (queued 300 ms at most), so the limit is 1010/s (101 replies in the interval) x
  // (300 + 50) ms = 353.5, rounded up, not 10 000.
  for (let i = 0; i < 101; i++) shedder.admit('liar');
  for (let i = 0; i < 100; i++) shedder.done('liar', 300, { queueMs: 10_000, serviceMs: 10_000 });
  advance(100);
  shedder.done('liar', 300, { queueMs: 10_000, serviceMs: 10_000 });
  expect(shedder.limitOf('liar')).toBe(354);
  // Real queueing, one reply per interval: the Little figure is tiny, the floor (4) holds.
  for (let round = 0; round < 5; round++) {
    shedder.admit('trickle');
    shedder.done('trickle', 1000, { queueMs: 900, serviceMs: 1 });
    advance(100);
  }
  shedder.admit('trickle');
  shedder.done('trickle', 1000, { queueMs: 900, serviceMs: 1 });
  expect(shedder.limitOf('trickle')).toBe(4);
});

test('off with a target of 0', () => {
  const shedder = new CallShedder({ targetMs: 0, maxLimit: 1 });
  for (let i = 0; i < 10; i++) expect(shedder.admit('echo')).toBe(true);
});

test("no limit is cut while the gateway's own loop is late (its publishes leave late: admission's case)", () => {
  let now = 0;
  let late = true;
  const shedder = new CallShedder({
    targetMs: 50,
    maxLimit: 10_000,
    intervalMs: 100,
    now: () => now,
    gatewayLate: () => late,
  });
  const interval = () => {
    for (let i = 0; i < 400; i++) {
      shedder.admit('echo');
      shedder.done('echo', 206, { queueMs: 200, serviceMs: 5 });
    }
    now += 100;
    shedder.admit('echo');
    shedder.done('echo', 206, { queueMs: 200, serviceMs: 5 });
  };
  interval();
  interval();
  expect(shedder.limitOf('echo')).toBe(10_000);
  // The same replies once the gateway is on time: a queue in the broker, cut by Little.
  late = false;
  interval();
  expect(shedder.limitOf('echo')).toBeLessThan(10_000);
});
