// LineBatch against a fake destination: lines handed on together after the delay, at once past the size bound, on flush.
import { LineBatch } from './line-batch';

class FakeDestination {
  readonly writes: string[] = [];
  flushed = 0;
  flushedSync = 0;
  write(s: string): void {
    this.writes.push(s);
  }
  flush(cb: (err?: Error | null) => void): void {
    this.flushed++;
    cb();
  }
  flushSync(): void {
    this.flushedSync++;
  }
}

afterEach(() => {
  jest.useRealTimers();
});

test('lines logged within the delay are handed on in one write, in order', () => {
  jest.useFakeTimers();
  const dest = new FakeDestination();
  const batch = new LineBatch(dest, { maxDelayMs: 10, maxChars: 1000 });
  batch.write('a\n');
  batch.write('b\n');
  jest.advanceTimersByTime(9);
  expect(dest.writes).toEqual([]);
  batch.write('c\n');
  jest.advanceTimersByTime(1);
  expect(dest.writes).toEqual(['a\nb\nc\n']);
  // The next line starts a new delay.
  batch.write('d\n');
  jest.advanceTimersByTime(10);
  expect(dest.writes).toEqual(['a\nb\nc\n', 'd\n']);
  jest.advanceTimersByTime(100);
  expect(dest.writes).toHaveLength(2);
});

test('past the size bound the lines go at once; flush and flushSync hand on what waits first', () => {
  jest.useFakeTimers();
  const dest = new FakeDestination();
  const batch = new LineBatch(dest, { maxDelayMs: 10, maxChars: 8 });
  batch.write('1234\n');
  expect(dest.writes).toEqual([]);
  batch.write('5678\n');
  expect(dest.writes).toEqual(['1234\n5678\n']);
  batch.write('x\n');
  const done = jest.fn();
  batch.flush(done);
  expect([dest.writes.at(-1), dest.flushed, done.mock.calls.length]).toEqual(['x\n', 1, 1]);
  batch.write('y\n');
  batch.flushSync();
  expect([dest.writes.at(-1), dest.flushedSync]).toEqual(['y\n', 1]);
  // Nothing waits: no empty writes.
  batch.flushSync();
  jest.advanceTimersByTime(100);
  expect(dest.writes).toEqual(['1234\n5678\n', 'x\n', 'y\n']);
});

test('a destination without flush still gets flush callbacks answered', () => {
  const writes: string[] = [];
  const batch = new LineBatch(
    { write: (s: string) => writes.push(s) },
    { maxDelayMs: 10, maxChars: 100 },
  );
  batch.write('z\n');
  const done = jest.fn();
  batch.flush(done);
  batch.flushSync();
  expect([writes, done.mock.calls.length]).toEqual([['z\n'], 1]);
});
