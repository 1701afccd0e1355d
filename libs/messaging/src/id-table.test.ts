// IdTable: the RPC client's pending calls by correlation id (size, take, takeAll; any string is a key).
import { IdTable } from './id-table';

test('counts, finds and takes entries; a taken id is gone', () => {
  const t = new IdTable<{ n: number }>();
  t.set('a', { n: 1 });
  t.set('b', { n: 2 });
  t.set('a', { n: 3 }); // same id again: replaced, not counted twice
  expect(t.size).toBe(2);
  expect(t.get('a')).toEqual({ n: 3 });
  expect(t.take('a')).toEqual({ n: 3 });
  expect(t.take('a')).toBeUndefined();
  expect(t.get('a')).toBeUndefined();
  expect(t.size).toBe(1);
});

test('ids that name Object.prototype members or look like numbers are plain keys', () => {
  const t = new IdTable<string>();
  for (const id of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', '0', '17', '-1'])
    expect(t.get(id)).toBeUndefined();
  t.set('__proto__', 'p');
  t.set('constructor', 'c');
  t.set('17', 'n');
  expect([t.get('__proto__'), t.get('constructor'), t.get('17'), t.size]).toEqual([
    'p',
    'c',
    'n',
    3,
  ]);
  expect(t.take('__proto__')).toBe('p');
  expect(t.size).toBe(2);
});

test('takeAll empties the table and hands every entry over once', () => {
  const t = new IdTable<number>();
  for (let i = 0; i < 1000; i++) t.set(`id-${i}`, i);
  for (let i = 0; i < 1000; i += 2) t.take(`id-${i}`);
  const all = t.takeAll();
  expect(all.sort((a, b) => a - b)).toEqual(Array.from({ length: 500 }, (_, k) => 2 * k + 1));
  expect(t.size).toBe(0);
  expect(t.takeAll()).toEqual([]);
  t.set('again', 1);
  expect(t.size).toBe(1);
});
