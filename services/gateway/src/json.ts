// JSON validation in one pass over the bytes: RFC 8259 grammar, UTF-8 and a nesting limit, building no values.

/**
 * Where and why a body is not acceptable JSON: the offset of the first byte that cannot continue
 * a JSON text (the body's length when it ends too early) and what the grammar expected there.
 */
export interface JsonFault {
  offset: number;
  expected: string;
}

// Byte classes inside a string: 0 = a plain byte, read on.
const PLAIN = 0;
const QUOTE = 1;
const BACKSLASH = 2;
const CONTROL = 3;
const NON_ASCII = 4;
const STRING_CLASS = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) STRING_CLASS[c] = CONTROL;
STRING_CLASS[0x22] = QUOTE;
STRING_CLASS[0x5c] = BACKSLASH;
for (let c = 0x80; c < 0x100; c++) STRING_CLASS[c] = NON_ASCII;

/** 1 for 0-9, a-f, A-F. */
const HEX = new Uint8Array(256);
for (const ch of '0123456789abcdefABCDEF') HEX[ch.charCodeAt(0)] = 1;

/** 1 for the bytes that may follow a backslash other than `u`: " \ / b f n r t. */
const SIMPLE_ESCAPE = new Uint8Array(256);
for (const ch of '"\\/bfnrt') SIMPLE_ESCAPE[ch.charCodeAt(0)] = 1;

const OBJECT = 1;
const ARRAY = 2;

const EXPECT_VALUE = 'a value';
const EXPECT_KEY_OR_END = 'a string (a member name) or "}"';
const EXPECT_KEY = 'a string (a member name)';
const EXPECT_COLON = '":"';
const EXPECT_OBJECT_NEXT = '"," or "}"';
const EXPECT_ARRAY_NEXT = '"," or "]"';
const EXPECT_END = 'the end of the body';
const EXPECT_QUOTE = 'a closing quote';
const EXPECT_ESCAPE = 'an escape: \\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX';
const EXPECT_HEX = 'a hex digit (\\uXXXX)';
const EXPECT_CONTROL = 'an escape sequence instead of a raw control character';
const EXPECT_UTF8 = 'a valid UTF-8 sequence';
const EXPECT_DIGIT = 'a digit';

/** Container kind per open nesting level (index 1 = outermost); reused by every call. */
let stack = new Uint8Array(256);

// The fault of the last scan that failed (helpers return -1 and leave it here: no allocation).
let faultOffset = 0;
let faultExpected = '';

function fail(offset: number, expected: string): number {
  faultOffset = offset;
  faultExpected = expected;
  return -1;
}

function skipSpace(b: Uint8Array, i: number, n: number): number {
  while (i < n) {
    const c = b[i] as number;
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

/** The index after the string whose opening quote is at `i - 1`, or -1. */
function scanString(b: Uint8Array, i: number, n: number): number {
  for (;;) {
    // The common case: a run of plain ASCII, four bytes a step (a third faster on long strings).
    while (
      i + 4 <= n &&
      STRING_CLASS[b[i] as number] === PLAIN &&
      STRING_CLASS[b[i + 1] as number] === PLAIN &&
      STRING_CLASS[b[i + 2] as number] === PLAIN &&
      STRING_CLASS[b[i + 3] as number] === PLAIN
    )
      i += 4;
    while (i < n && STRING_CLASS[b[i] as number] === PLAIN) i++;
    if (i >= n) return fail(n, EXPECT_QUOTE);
    const c = b[i] as number;
    switch (STRING_CLASS[c]) {
      case QUOTE:
        return i + 1;
      case BACKSLASH: {
        const e = i + 1 < n ? (b[i + 1] as number) : -1;
        if (e === 0x75) {
          for (let k = i + 2; k < i + 6; k++)
            if (k >= n || HEX[b[k] as number] === 0) return fail(k, EXPECT_HEX);
          i += 6;
        } else if (e >= 0 && SIMPLE_ESCAPE[e] === 1) i += 2;
        else return fail(i + 1, EXPECT_ESCAPE);
        break;
      }
      case CONTROL:
        return fail(i, EXPECT_CONTROL);
      default:
        i = scanUtf8(b, i, n, c);
        if (i < 0) return -1;
    }
  }
}

/**
 * The index after the UTF-8 sequence led by `lead` (>= 0x80) at `i`, or -1. Well-formed UTF-8 as
 * in RFC 3629 (what Buffer's isUtf8 accepts): no overlong forms, no surrogates, nothing above U+10FFFF.
 */
function scanUtf8(b: Uint8Array, i: number, n: number, lead: number): number {
  let lo = 0x80;
  let hi = 0xbf;
  let more: number;
  if (lead >= 0xc2 && lead <= 0xdf) more = 1;
  else if (lead >= 0xe0 && lead <= 0xef) {
    more = 2;
    if (lead === 0xe0) lo = 0xa0;
    else if (lead === 0xed) hi = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    more = 3;
    if (lead === 0xf0) lo = 0x90;
    else if (lead === 0xf4) hi = 0x8f;
  } else return fail(i, EXPECT_UTF8);
  if (i + more >= n) return fail(i, EXPECT_UTF8);
  const c1 = b[i + 1] as number;
  if (c1 < lo || c1 > hi) return fail(i, EXPECT_UTF8);
  for (let k = i + 2; k <= i + more; k++) {
    const ck = b[k] as number;
    if (ck < 0x80 || ck > 0xbf) return fail(i, EXPECT_UTF8);
  }
  return i + more + 1;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** The index after the number starting at `i` (a "-" or a digit), or -1. */
function scanNumber(b: Uint8Array, i: number, n: number): number {
  if (b[i] === 0x2d) i++;
  if (i >= n) return fail(i, EXPECT_DIGIT);
  const first = b[i] as number;
  if (first === 0x30) i++;
  else if (first >= 0x31 && first <= 0x39) {
    i++;
    while (i < n && isDigit(b[i] as number)) i++;
  } else return fail(i, EXPECT_DIGIT);
  if (i < n && b[i] === 0x2e) {
    i++;
    if (i >= n || !isDigit(b[i] as number)) return fail(i, 'a digit after "."');
    while (i < n && isDigit(b[i] as number)) i++;
  }
  if (i < n && (b[i] === 0x65 || b[i] === 0x45)) {
    i++;
    if (i < n && (b[i] === 0x2b || b[i] === 0x2d)) i++;
    if (i >= n || !isDigit(b[i] as number)) return fail(i, 'a digit in the exponent');
    while (i < n && isDigit(b[i] as number)) i++;
  }
  return i;
}

/** The index after `word` (true, false, null) at `i`, or -1 at the first byte that differs. */
function scanLiteral(b: Uint8Array, i: number, n: number, word: string): number {
  for (let k = 0; k < word.length; k++)
    if (i + k >= n || b[i + k] !== word.charCodeAt(k)) return fail(i + k, `"${word}"`);
  return i + word.length;
}

/** A member name and its colon, from `i` (after "{" or ","): the index after ":", or -1. */
function scanName(b: Uint8Array, i: number, n: number, expected: string): number {
  i = skipSpace(b, i, n);
  if (i >= n || b[i] !== 0x22) return fail(i, expected);
  i = scanString(b, i + 1, n);
  if (i < 0) return -1;
  i = skipSpace(b, i, n);
  if (i >= n || b[i] !== 0x3a) return fail(i, EXPECT_COLON);
  return i + 1;
}

/**
 * Checks that `body` is one JSON text (RFC 8259: any value, whitespace around it), in UTF-8,
 * with arrays and objects nested at most `maxDepth` levels. One pass over the bytes with a
 * fixed-size state (a reused stack of container kinds): nothing is allocated per value and no
 * string is decoded. Returns undefined when it is, else where and what was expected.
 */
export function jsonFault(body: Uint8Array, maxDepth: number): JsonFault | undefined {
  if (stack.length <= maxDepth) stack = new Uint8Array(maxDepth + 1);
  const b = body;
  const n = b.length;
  let depth = 0;
  let i = 0;
  let r: number;
  value: for (;;) {
    i = skipSpace(b, i, n);
    if (i >= n) return fault(n, EXPECT_VALUE);
    const c = b[i] as number;
    switch (c) {
      case 0x7b: // {
        if (++depth > maxDepth) return depthFault(i, maxDepth);
        stack[depth] = OBJECT;
        i = skipSpace(b, i + 1, n);
        if (i < n && b[i] === 0x7d) {
          depth--;
          i++;
          break;
        }
        r = scanName(b, i, n, EXPECT_KEY_OR_END);
        if (r < 0) return fault(faultOffset, faultExpected);
        i = r;
        continue value;
      case 0x5b: // [
        if (++depth > maxDepth) return depthFault(i, maxDepth);
        stack[depth] = ARRAY;
        i = skipSpace(b, i + 1, n);
        if (i < n && b[i] === 0x5d) {
          depth--;
          i++;
          break;
        }
        continue value;
      case 0x22: // "
        r = scanString(b, i + 1, n);
        if (r < 0) return fault(faultOffset, faultExpected);
        i = r;
        break;
      case 0x74: // t
        r = scanLiteral(b, i, n, 'true');
        if (r < 0) return fault(faultOffset, faultExpected);
        i = r;
        break;
      case 0x66: // f
        r = scanLiteral(b, i, n, 'false');
        if (r < 0) return fault(faultOffset, faultExpected);
        i = r;
        break;
      case 0x6e: // n
        r = scanLiteral(b, i, n, 'null');
        if (r < 0) return fault(faultOffset, faultExpected);
        i = r;
        break;
      default:
        if (c !== 0x2d && !isDigit(c)) return fault(i, EXPECT_VALUE);
        r = scanNumber(b, i, n);
        if (r < 0) return fault(faultOffset, faultExpected);
        i = r;
    }
    // After a value: close containers until a "," asks for the next value, or the text ends.
    for (;;) {
      i = skipSpace(b, i, n);
      if (depth === 0) return i === n ? undefined : fault(i, EXPECT_END);
      const inObject = stack[depth] === OBJECT;
      const c2 = i < n ? (b[i] as number) : -1;
      if (c2 === 0x2c) {
        i++;
        if (inObject) {
          r = scanName(b, i, n, EXPECT_KEY);
          if (r < 0) return fault(faultOffset, faultExpected);
          i = r;
        }
        continue value;
      }
      if (c2 === (inObject ? 0x7d : 0x5d)) {
        depth--;
        i++;
        continue;
      }
      return fault(i, inObject ? EXPECT_OBJECT_NEXT : EXPECT_ARRAY_NEXT);
    }
  }
}

function fault(offset: number, expected: string): JsonFault {
  return { offset, expected };
}

function depthFault(offset: number, maxDepth: number): JsonFault {
  return { offset, expected: `no deeper nesting (at most ${maxDepth} levels of arrays/objects)` };
}

/** A fault as one line for a problem detail: `at byte 7: expected "," or "]", found "}"`. */
export function describeJsonFault(body: Uint8Array, f: JsonFault): string {
  let found: string;
  if (f.offset >= body.length) found = 'the end of the body';
  else {
    const c = body[f.offset] as number;
    found =
      c > 0x20 && c < 0x7f
        ? JSON.stringify(String.fromCharCode(c))
        : `byte 0x${c.toString(16).padStart(2, '0')}`;
  }
  return `at byte ${f.offset}: expected ${f.expected}, found ${found}`;
}
