// Lifecycle: readiness from every part, then quiesce in order, one bounded drain, close in reverse order.
import { Writable } from 'node:stream';
import { createLogger } from '@warren/observability';
import { DRAIN_GRACE_MS, Lifecycle } from './lifecycle';

const lines: string[] = [];
const logger = createLogger({
  service: 'test',
  level: 'info',
  destination: new Writable({
    write(chunk: Buffer, _e, cb) {
      lines.push(chunk.toString());
      cb();
    },
  }),
});

afterEach(() => {
  jest.useRealTimers();
  lines.length = 0;
});

it('quiesces in registration order, drains, then closes in reverse order', async () => {
  const calls: string[] = [];
  const life = new Lifecycle(logger);
  for (const name of ['publisher', 'consumer', 'http']) {
    life.add({
      name,
      quiesce: () => void calls.push(`quiesce ${name}`),
      drain: async () => {
        calls.push(`drain ${name}`);
        return true;
      },
      close: async () => void calls.push(`close ${name}`),
    });
  }
  await expect(life.stop(1000)).resolves.toBe(true);
  expect(calls).toEqual([
    'quiesce publisher',
    'quiesce consumer',
    'quiesce http',
    'drain publisher',
    'drain consumer',
    'drain http',
    'close http',
    'close consumer',
    'close publisher',
  ]);
});

it('is ready only while every part is, and never again once stopping', async () => {
  let consuming = true;
  const life = new Lifecycle(logger);
  life.add({ name: 'consumer', isReady: () => consuming });
  life.add({ name: 'no-opinion' });
  expect(life.isReady()).toBe(true);
  consuming = false;
  expect(life.isReady()).toBe(false);
  consuming = true;
  const stopped = life.stop(10);
  expect(life.isReady()).toBe(false);
  await stopped;
  expect(life.isReady()).toBe(false);
});

it('bounds the drain: a drain that never ends gives false after the bound plus the grace, and closing goes on', async () => {
  jest.useFakeTimers();
  const closed: string[] = [];
  const life = new Lifecycle(logger);
  life.add({ name: 'stuck', drain: () => new Promise<boolean>(() => undefined) });
  life.add({
    name: 'fast',
    drain: () => Promise.resolve(true),
    close: () => void closed.push('fast'),
  });
  let result: boolean | undefined;
  void life.stop(1000).then((r) => (result = r));
  await jest.advanceTimersByTimeAsync(1000 + DRAIN_GRACE_MS - 1);
  expect(result).toBeUndefined();
  expect(closed).toEqual([]);
  await jest.advanceTimersByTimeAsync(1);
  expect(result).toBe(false);
  expect(closed).toEqual(['fast']);
});

it('passes the bound to drains and reports a drain that finished late (false)', async () => {
  const bounds: number[] = [];
  const life = new Lifecycle(logger);
  life.add({
    name: 'processor',
    drain: async (timeoutMs) => {
      bounds.push(timeoutMs);
      return false;
    },
  });
  await expect(life.stop(250)).resolves.toBe(false);
  expect(bounds).toEqual([250]);
});

it('a failing step is logged and the stop goes on; stop() is idempotent', async () => {
  const closed: string[] = [];
  const life = new Lifecycle(logger);
  life.add({ name: 'a', close: () => void closed.push('a') });
  life.add({
    name: 'b',
    quiesce: () => {
      throw new Error('quiesce boom');
    },
    close: () => Promise.reject(new Error('close boom')),
  });
  life.add({ name: 'c', close: () => void closed.push('c') });
  const first = life.stop(10);
  expect(life.stop(10)).toBe(first);
  await expect(first).resolves.toBe(true);
  expect(closed).toEqual(['c', 'a']);
  const failures = lines.map((l) => JSON.parse(l) as { part?: string; phase?: string });
  expect(failures.map((f) => `${f.part} ${f.phase}`)).toEqual(['b quiesce', 'b close']);
});
