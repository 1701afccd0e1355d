import { isUtf8 } from 'node:buffer';
import { describeJsonFault, jsonFault } from './json';

const MAX = 128;

function verdict(text: string | Buffer, maxDepth = MAX): string {
  const b = typeof text === 'string' ? Buffer.from(text) : text;
  const f = jsonFault(b, maxDepth);
  return f === undefined ? 'ok' : describeJsonFault(b, f);
}

describe('jsonFault: valid texts', () => {
  it.each([
    '{}',
    '[]',
    '0',
    '-0',
    '1',
    '-12.5e+10',
    '1E-2',
    '0.0e0',
    '123456789012345678901234567890',
    'true',
    'false',
    'null',
    '""',
    '"plain"',
    '"\\" \\\\ \\/ \\b \\f \\n \\r \\t"',
    '"\\u0000\\u00e9\\uD83D\\uDE00\\uFFFF\\uabcd"',
    '"\\uD800"', // a lone surrogate escape: valid JSON text (JSON.parse takes it)
    '"é € 😀 \u007f \u2028"',
    ' \t\r\n{ "a" : [ 1 , 2 , { "b" : null } ] , "c" : "d" } \n',
    '{"a":{"a":{"a":{}}}}',
    '[[],[[]],{},{"":[]}]',
    '{"dup":1,"dup":2}',
  ])('accepts %s', (text) => {
    expect(verdict(text)).toBe('ok');
  });

  it('accepts nesting up to the limit and any width', () => {
    expect(verdict('['.repeat(MAX) + ']'.repeat(MAX))).toBe('ok');
    expect(verdict('{"a":'.repeat(MAX) + '1' + '}'.repeat(MAX))).toBe('ok');
    expect(verdict(`[${Array.from({ length: 50_000 }, () => '{}').join(',')}]`)).toBe('ok');
    const inString = JSON.stringify({ s: `[{\\"${'['.repeat(500)}` });
    expect(verdict(inString)).toBe('ok');
  });
});

describe('jsonFault: invalid texts, with where and what was expected', () => {
  it.each([
    ['', 'at byte 0: expected a value, found the end of the body'],
    ['   ', 'at byte 3: expected a value, found the end of the body'],
    ['{', 'at byte 1: expected a string (a member name) or "}", found the end of the body'],
    ['{"a":1,}', 'at byte 7: expected a string (a member name), found "}"'],
    ['{"a" 1}', 'at byte 5: expected ":", found "1"'],
    ['{"a":1 "b":2}', 'at byte 7: expected "," or "}", found "\\""'],
    ["{'a':1}", 'at byte 1: expected a string (a member name) or "}", found "\'"'],
    ['{a:1}', 'at byte 1: expected a string (a member name) or "}", found "a"'],
    ['[1,]', 'at byte 3: expected a value, found "]"'],
    ['[1 2]', 'at byte 3: expected "," or "]", found "2"'],
    ['[1}', 'at byte 2: expected "," or "]", found "}"'],
    ['{"a":1]', 'at byte 6: expected "," or "}", found "]"'],
    ['01', 'at byte 1: expected the end of the body, found "1"'],
    ['1.', 'at byte 2: expected a digit after ".", found the end of the body'],
    ['.5', 'at byte 0: expected a value, found "."'],
    ['1e', 'at byte 2: expected a digit in the exponent, found the end of the body'],
    ['1e+', 'at byte 3: expected a digit in the exponent, found the end of the body'],
    ['-', 'at byte 1: expected a digit, found the end of the body'],
    ['-a', 'at byte 1: expected a digit, found "a"'],
    ['+1', 'at byte 0: expected a value, found "+"'],
    ['0x10', 'at byte 1: expected the end of the body, found "x"'],
    ['NaN', 'at byte 0: expected a value, found "N"'],
    ['Infinity', 'at byte 0: expected a value, found "I"'],
    ['undefined', 'at byte 0: expected a value, found "u"'],
    ['tru', 'at byte 3: expected "true", found the end of the body'],
    ['nul', 'at byte 3: expected "null", found the end of the body'],
    ['fals3', 'at byte 4: expected "false", found "3"'],
    ['True', 'at byte 0: expected a value, found "T"'],
    ['"abc', 'at byte 4: expected a closing quote, found the end of the body'],
    [
      '"a\nb"',
      'at byte 2: expected an escape sequence instead of a raw control character, found byte 0x0a',
    ],
    [
      '"a\u0000"',
      'at byte 2: expected an escape sequence instead of a raw control character, found byte 0x00',
    ],
    [
      '"\\x41"',
      'at byte 2: expected an escape: \\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX, found "x"',
    ],
    ['"\\u12g4"', 'at byte 5: expected a hex digit (\\uXXXX), found "g"'],
    ['"\\u12"', 'at byte 5: expected a hex digit (\\uXXXX), found "\\""'],
    [
      '"\\',
      'at byte 2: expected an escape: \\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX, found the end of the body',
    ],
    ['{}x', 'at byte 2: expected the end of the body, found "x"'],
    ['{} {}', 'at byte 3: expected the end of the body, found "{"'],
    ['/* c */{}', 'at byte 0: expected a value, found "/"'],
    ['\u00a0{}', 'at byte 0: expected a value, found byte 0xc2'],
  ])('refuses %j', (text, reason) => {
    expect(verdict(text)).toBe(reason);
  });

  it('refuses a byte-order mark (as JSON.parse does) and other bytes outside a value', () => {
    expect(verdict(Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d]))).toBe(
      'at byte 0: expected a value, found byte 0xef',
    );
    expect(verdict(Buffer.from('{}\u0000'))).toBe(
      'at byte 2: expected the end of the body, found byte 0x00',
    );
  });

  it.each([
    ['a bad continuation', [0xc3, 0x28]],
    ['a lone continuation byte', [0x80]],
    ['0xff', [0xff]],
    ['an overlong 2-byte form', [0xc0, 0xaf]],
    ['an overlong 3-byte form', [0xe0, 0x80, 0xaf]],
    ['an overlong 4-byte form', [0xf0, 0x80, 0x80, 0xaf]],
    ['an encoded surrogate', [0xed, 0xa0, 0x80]],
    ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ['a 5-byte form', [0xf8, 0x88, 0x80, 0x80, 0x80]],
    ['a truncated sequence', [0xe2, 0x82]],
  ])('refuses invalid UTF-8 in a string: %s', (_name, bytes) => {
    const body = Buffer.concat([Buffer.from('{"s":"'), Buffer.from(bytes), Buffer.from('"}')]);
    expect(isUtf8(body)).toBe(false);
    expect(verdict(body)).toMatch(/^at byte 6: expected a valid UTF-8 sequence, found byte 0x/);
  });

  it('refuses nesting past the limit where it happens, whatever follows', () => {
    const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
    expect(verdict(deep(MAX + 1))).toBe(
      `at byte ${MAX}: expected no deeper nesting (at most ${MAX} levels of arrays/objects), found "["`,
    );
    expect(verdict(`{"a":${deep(100_000)}}`)).toMatch(/^at byte 132: expected no deeper nesting/);
    expect(verdict(`{"a":${'['.repeat(5_000_000)}`)).toMatch(/^at byte 132: /);
    expect(verdict(deep(3), 2)).toMatch(/^at byte 2: expected no deeper nesting \(at most 2 /);
    expect(verdict('[{"a":[]}]', 3)).toBe('ok');
  });
});

// ------------------------------------------------------------------ generated corpus

/** mulberry32: a small seeded PRNG, so the corpus is the same on every run. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rnd = prng(20240601);
const int = (n: number): number => Math.floor(rnd() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;

const SPACE = ['', '', '', ' ', '\n', '\t', '\r\n', '  '];
const CHARS = [
  'a',
  'Z',
  '0',
  ' ',
  'é',
  '€',
  '😀',
  '\u007f',
  '\u2028',
  '\uffff',
  '[',
  '{',
  ']',
  ':',
];
const ESCAPES = [
  '\\"',
  '\\\\',
  '\\/',
  '\\b',
  '\\f',
  '\\n',
  '\\r',
  '\\t',
  '\\u00e9',
  '\\uD83D',
  '\\u0000',
];

function genString(): string {
  let s = '"';
  for (let k = int(8); k > 0; k--) s += rnd() < 0.25 ? pick(ESCAPES) : pick(CHARS);
  return `${s}"`;
}

function genNumber(): string {
  let s = rnd() < 0.3 ? '-' : '';
  s += rnd() < 0.2 ? '0' : String(1 + int(9)) + String(int(100_000)).slice(0, int(6));
  if (rnd() < 0.3) s += `.${int(1000)}`;
  if (rnd() < 0.2) s += `${pick(['e', 'E'])}${pick(['', '+', '-'])}${int(400)}`;
  return s;
}

/** Random JSON text (with random whitespace and escapes), nested at most `budget` more levels. */
function genValue(budget: number): string {
  const sp = () => pick(SPACE);
  const k = int(budget > 0 ? 8 : 5);
  if (k === 0) return genString();
  if (k === 1) return genNumber();
  if (k === 2) return pick(['true', 'false', 'null']);
  if (k === 3 || k === 4) return rnd() < 0.5 ? genString() : genNumber();
  if (k === 5 || k === 6) {
    const items = Array.from({ length: int(5) }, () => sp() + genValue(budget - 1) + sp());
    return `[${items.join(',') || sp()}]`;
  }
  const members = Array.from(
    { length: int(5) },
    () => `${sp()}${genString()}${sp()}:${sp()}${genValue(budget - 1)}${sp()}`,
  );
  return `{${members.join(',') || sp()}}`;
}

const NOISE = [...'{}[],:"\\ .-+eE0123456789tfnu\n\t\u0000'].map((c) => c.charCodeAt(0));
/** Lead bytes and continuation bytes at the edges of UTF-8's ranges (overlong, surrogate, > U+10FFFF). */
const LEADS = [0x80, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1];
const LEADS_4 = [0xf3, 0xf4, 0xf5, 0xf7, 0xf8, 0xfe, 0xff];
const TRAILS = [0x00, 0x22, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff];

/** A byte sequence that may or may not be well-formed UTF-8: a lead and 0-3 edge-case bytes. */
function utf8ish(): number[] {
  const out = [pick([...LEADS, ...LEADS_4])];
  for (let k = int(4); k > 0; k--) out.push(rnd() < 0.6 ? 0x80 + int(0x40) : pick(TRAILS));
  return out;
}

function mutate(b: Buffer): Buffer {
  const at = int(b.length + 1);
  const byte = () => (rnd() < 0.7 ? pick(NOISE) : int(256));
  switch (int(7)) {
    case 0:
      return Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
    case 1:
      return Buffer.concat([b.subarray(0, at), Buffer.from([byte()]), b.subarray(at)]);
    case 2: {
      const c = Buffer.from(b);
      if (at < c.length) c[at] = byte();
      return c;
    }
    case 3:
      return b.subarray(0, at);
    case 4: {
      const from = int(b.length);
      const slice = b.subarray(from, from + 1 + int(6));
      return Buffer.concat([b.subarray(0, at), slice, b.subarray(at)]);
    }
    case 5:
      return Buffer.concat([b.subarray(0, at), Buffer.from(utf8ish()), b.subarray(at)]);
    default: {
      const c = Buffer.from(b);
      const j = int(c.length);
      if (at < c.length) [c[at], c[j]] = [c[j] as number, c[at] as number];
      return c;
    }
  }
}

function depthOf(v: unknown): number {
  if (v === null || typeof v !== 'object') return 0;
  let d = 0;
  for (const x of Array.isArray(v) ? v : Object.values(v as object)) d = Math.max(d, depthOf(x));
  return d + 1;
}

/** The reference verdict: UTF-8 (isUtf8), JSON.parse, and the nesting limit. */
function reference(b: Buffer, maxDepth: number): boolean {
  if (!isUtf8(b)) return false;
  let v: unknown;
  try {
    v = JSON.parse(b.toString('utf8'));
  } catch {
    return false;
  }
  return depthOf(v) <= maxDepth;
}

describe('jsonFault against JSON.parse on a generated corpus', () => {
  it('agrees on thousands of random and mutated texts (seeded, deterministic)', () => {
    const corpus: Buffer[] = [];
    for (let i = 0; i < 3000; i++) {
      const valid = Buffer.from(pick(SPACE) + genValue(1 + int(5)) + pick(SPACE));
      corpus.push(valid);
      let m: Buffer = valid;
      for (let k = 1 + int(3); k > 0; k--) m = mutate(m);
      corpus.push(m, mutate(valid));
      corpus.push(Buffer.from(Array.from({ length: int(12) }, () => pick(NOISE))));
    }
    // UTF-8 edge cases inside an otherwise valid string.
    for (let i = 0; i < 3000; i++)
      corpus.push(Buffer.concat([Buffer.from('["a'), Buffer.from(utf8ish()), Buffer.from('b"]')]));
    // Near the nesting limit, with the limit itself varied.
    for (let i = 0; i < 300; i++) {
      const d = 1 + int(6);
      const open = Array.from({ length: d }, () => pick(['[', '{"k":']));
      const close = open.map((o) => (o === '[' ? ']' : '}')).reverse();
      corpus.push(Buffer.from(open.join('') + genValue(0) + close.join('')));
    }

    const disagreements: string[] = [];
    let accepted = 0;
    let refused = 0;
    for (const [i, body] of corpus.entries()) {
      const maxDepth = i % 7 === 0 ? 1 + (i % 5) : MAX;
      const want = reference(body, maxDepth);
      const fault = jsonFault(body, maxDepth);
      if (want !== (fault === undefined))
        disagreements.push(`${JSON.stringify(body.toString('latin1'))} (max ${maxDepth})`);
      if (fault) {
        refused++;
        if (fault.offset < 0 || fault.offset > body.length) disagreements.push(`offset ${i}`);
      } else accepted++;
    }
    expect(disagreements.slice(0, 10)).toEqual([]);
    expect(corpus.length).toBeGreaterThan(15_000);
    // Both verdicts are well represented (so the comparison means something).
    expect(accepted).toBeGreaterThan(3000);
    expect(refused).toBeGreaterThan(3000);
  });
});
