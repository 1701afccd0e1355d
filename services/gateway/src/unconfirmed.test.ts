// UnconfirmedPublishes: a retry of a timed-out publish is held while unknown, deduplicated once delivered, sent when refused or lost.
import type { LateOutcome } from '@warren/messaging';
import { UnconfirmedPublishes, fingerprint } from './unconfirmed';

function deferred(): { promise: Promise<LateOutcome>; settle: (o: LateOutcome) => Promise<void> } {
  let resolve!: (o: LateOutcome) => void;
  const promise = new Promise<LateOutcome>((r) => (resolve = r));
  return {
    promise,
    settle: async (o) => {
      resolve(o);
      await promise;
      await Promise.resolve();
    },
  };
}

const body = Buffer.from('{"n":1}');
const print = fingerprint(body, 'application/json', undefined);

test('empty: every publish is sent, and the fingerprint is never computed', () => {
  const held = new UnconfirmedPublishes();
  const compute = jest.fn(() => print);
  expect(held.check('echo', 'r1', compute)).toEqual({ state: 'send' });
  expect(compute).not.toHaveBeenCalled();
});

test('a retry is held while the outcome is unknown, then deduplicated once the late confirm came', async () => {
  const late: LateOutcome[] = [];
  const held = new UnconfirmedPublishes({ onLate: (o) => late.push(o) });
  const d = deferred();
  held.track('echo', 'r1', print, d.promise);
  expect(held.check('echo', 'r1', () => print)).toEqual({ state: 'pending' });
  // Another service, another request id, or other bytes under the same id: other requests.
  expect(held.check('hello', 'r1', () => print)).toEqual({ state: 'send' });
  expect(held.check('echo', 'r2', () => print)).toEqual({ state: 'send' });
  const other = fingerprint(Buffer.from('{"n":2}'), 'application/json', undefined);
  expect(held.check('echo', 'r1', () => other)).toEqual({ state: 'send' });
  expect(fingerprint(body, 'text/plain', undefined)).not.toBe(print);
  expect(fingerprint(body, 'application/json', 'create')).not.toBe(print);

  await d.settle('confirmed');
  expect(late).toEqual(['confirmed']);
  expect(held.check('echo', 'r1', () => print)).toEqual({
    state: 'delivered',
    messageId: undefined,
  });
});

test.each<LateOutcome>(['refused', 'lost'])(
  'a publish %s after its timeout is forgotten: a retry is sent again',
  async (outcome) => {
    const held = new UnconfirmedPublishes();
    const d = deferred();
    held.track('echo', 'r1', print, d.promise);
    await d.settle(outcome);
    expect(held.check('echo', 'r1', () => print)).toEqual({ state: 'send' });
    expect(held.size).toBe(0);
  },
);

test('a delivered publish tracked with its message id gives it back (the answer names the copy delivered)', async () => {
  const held = new UnconfirmedPublishes();
  const d = deferred();
  held.track('events/order.created', 'r1', print, d.promise, 'm-1');
  await d.settle('confirmed');
  expect(held.check('events/order.created', 'r1', () => print)).toEqual({
    state: 'delivered',
    messageId: 'm-1',
  });
});

test('a delivered publish is remembered for rememberMs, then forgotten', async () => {
  let now = 1000;
  const held = new UnconfirmedPublishes({ rememberMs: 500, now: () => now });
  const d = deferred();
  held.track('echo', 'r1', print, d.promise);
  await d.settle('confirmed');
  now += 499;
  expect(held.check('echo', 'r1', () => print)).toEqual({
    state: 'delivered',
    messageId: undefined,
  });
  now += 1;
  expect(held.check('echo', 'r1', () => print)).toEqual({ state: 'send' });
  expect(held.size).toBe(0);
});

test('bounded: past maxEntries the oldest is dropped', () => {
  const held = new UnconfirmedPublishes({ maxEntries: 3 });
  for (let i = 0; i < 5; i++) held.track('echo', `r${i}`, print, new Promise(() => undefined));
  expect(held.size).toBe(3);
  expect(held.check('echo', 'r0', () => print)).toEqual({ state: 'send' });
  expect(held.check('echo', 'r1', () => print)).toEqual({ state: 'send' });
  expect(held.check('echo', 'r4', () => print)).toEqual({ state: 'pending' });
});

test('a newer timeout under the same key replaces the older; the older late outcome does not touch it', async () => {
  const held = new UnconfirmedPublishes();
  const first = deferred();
  const second = deferred();
  held.track('echo', 'r1', print, first.promise);
  held.track('echo', 'r1', print, second.promise);
  await first.settle('refused');
  expect(held.check('echo', 'r1', () => print)).toEqual({ state: 'pending' });
  await second.settle('confirmed');
  expect(held.check('echo', 'r1', () => print)).toEqual({
    state: 'delivered',
    messageId: undefined,
  });
});

test('retry(): undefined to send, throws the 503 while pending, the delivered copy after; each counted', async () => {
  const counted: string[] = [];
  const held = new UnconfirmedPublishes({ onRetry: (o) => counted.push(o) });
  expect(held.retry('echo', 'r1', () => print)).toBeUndefined();
  const d = deferred();
  held.track('echo', 'r1', print, d.promise, 'm-1');
  expect(() => held.retry('echo', 'r1', () => print)).toThrow(/not yet confirmed/);
  await d.settle('confirmed');
  expect(held.retry('echo', 'r1', () => print)).toEqual({ state: 'delivered', messageId: 'm-1' });
  expect(counted).toEqual(['retry_held', 'retry_deduplicated']);
});
