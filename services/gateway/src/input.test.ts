import {
  actionFrom,
  callModeFrom,
  checkJson,
  checkServiceName,
  classifyContentType,
  isValidTraceparent,
  MAX_JSON_DEPTH,
  newTraceparent,
  requestIdFrom,
  traceparentFrom,
} from './input';
import { WarrenError } from '@warren/protocol';

function statusOf(fn: () => unknown): number | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err instanceof WarrenError ? err.status : -1;
  }
}

describe('checkServiceName', () => {
  it.each(['a', 'echo', 'hello', 'my-service-2', `a${'b'.repeat(62)}`])('accepts %s', (n) => {
    expect(statusOf(() => checkServiceName(n))).toBeUndefined();
  });
  it.each([
    '',
    'A',
    '1a',
    '-a',
    'a_b',
    'a.b',
    'amq.gen-1',
    'echo.dlq',
    'echo.retry.1000',
    'warren.heartbeat',
    `a${'b'.repeat(63)}`,
    'é',
  ])('refuses %s with 400', (n) => {
    expect(statusOf(() => checkServiceName(n))).toBe(400);
  });
  it.each(['services', 'gateway', 'warren', 'heartbeat', 'registry'])('reserves %s (404)', (n) => {
    expect(statusOf(() => checkServiceName(n))).toBe(404);
  });
});

describe('classifyContentType', () => {
  it.each([
    ['application/json', 'json'],
    ['Application/JSON; charset=utf-8', 'json'],
    ['application/problem+json', 'json'],
    ['text/plain', 'text'],
    ['text/csv; charset=latin1', 'text'],
    ['application/octet-stream', 'binary'],
  ])('%s -> %s', (ct, kind) => {
    expect(classifyContentType(ct)).toBe(kind);
  });
  it.each([
    'text/plain; charset',
    'text/plain;;',
    'text/plain; a=b c',
    'application/json; x="unterminated',
  ])('refuses %s (not a media type) with 400', (ct) => {
    expect(statusOf(() => classifyContentType(ct))).toBe(400);
  });
  it.each([undefined, '', 'image/png', 'application/xml', 'multipart/form-data', 'json'])(
    'refuses %s with 415',
    (ct) => {
      expect(statusOf(() => classifyContentType(ct))).toBe(415);
    },
  );
  it('refuses an over-long or non-ASCII header with 400', () => {
    expect(statusOf(() => classifyContentType(`text/plain; x=${'a'.repeat(300)}`))).toBe(400);
    expect(statusOf(() => classifyContentType('text/plain; x=é'))).toBe(400);
  });
});

describe('checkJson', () => {
  it('accepts any JSON text, refuses invalid JSON and invalid UTF-8', () => {
    for (const ok of ['{}', '[]', '1', '"x"', 'null', ' {"a" : [1,2]} '])
      expect(statusOf(() => checkJson(Buffer.from(ok)))).toBeUndefined();
    for (const bad of ['', '{', "{'a':1}", 'undefined', '{"a":1}x'])
      expect(statusOf(() => checkJson(Buffer.from(bad)))).toBe(400);
    expect(statusOf(() => checkJson(Buffer.from([0x22, 0xc3, 0x28, 0x22])))).toBe(400);
  });
  it('says where the body stops being JSON and what was expected there', () => {
    const problemOf = (text: string) => {
      try {
        checkJson(Buffer.from(text));
      } catch (err) {
        return err as WarrenError;
      }
      throw new Error('accepted');
    };
    const p = problemOf('{"a":[1,2,}');
    expect(p.code).toBe('INVALID_JSON');
    expect(p.message).toBe('the body is not valid JSON: at byte 10: expected a value, found "}"');
    expect(problemOf('[1').message).toBe(
      'the body is not valid JSON: at byte 2: expected "," or "]", found the end of the body',
    );
  });
  it(`refuses JSON nested deeper than ${MAX_JSON_DEPTH} levels; brackets in strings do not count`, () => {
    const nest = (n: number) => '['.repeat(n) + ']'.repeat(n);
    expect(statusOf(() => checkJson(Buffer.from(nest(MAX_JSON_DEPTH))))).toBeUndefined();
    expect(statusOf(() => checkJson(Buffer.from(nest(MAX_JSON_DEPTH + 1))))).toBe(400);
    expect(statusOf(() => checkJson(Buffer.from(`{"a":${nest(100_000)}}`)))).toBe(400);
    const inString = JSON.stringify({ s: `[{\\"${'['.repeat(500)}` });
    expect(statusOf(() => checkJson(Buffer.from(inString)))).toBeUndefined();
  });
});

describe('requestIdFrom', () => {
  it('keeps well-formed ids and replaces others with a uuid', () => {
    expect(requestIdFrom('abc-1234')).toBe('abc-1234');
    expect(requestIdFrom('0f8fad5b-d9cb-469f-a165-70867728950e')).toBe(
      '0f8fad5b-d9cb-469f-a165-70867728950e',
    );
    for (const bad of [
      undefined,
      '',
      'short',
      'has space 123',
      'x'.repeat(129),
      '"quote"123',
      ['a', 'b'],
    ])
      expect(requestIdFrom(bad as string | undefined)).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('traceparent', () => {
  const valid = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  it('validates per W3C trace context', () => {
    expect(isValidTraceparent(valid)).toBe(true);
    expect(isValidTraceparent(`${valid}-extra`)).toBe(false); // version 00 has 4 fields
    expect(isValidTraceparent('01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x')).toBe(
      true,
    );
    expect(isValidTraceparent('ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toBe(
      false,
    );
    expect(isValidTraceparent(`00-${'0'.repeat(32)}-00f067aa0ba902b7-01`)).toBe(false);
    expect(isValidTraceparent(`00-4bf92f3577b34da6a3ce929d0e0e4736-${'0'.repeat(16)}-01`)).toBe(
      false,
    );
    expect(isValidTraceparent(valid.toUpperCase())).toBe(false);
  });
  it('propagates a valid one and starts a new one otherwise', () => {
    expect(traceparentFrom(valid)).toBe(valid);
    expect(traceparentFrom('01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more')).toBe(
      '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    );
    const fresh = traceparentFrom('garbage');
    expect(isValidTraceparent(fresh)).toBe(true);
    expect(newTraceparent()).not.toBe(newTraceparent());
  });
});

describe('callModeFrom', () => {
  it('parses wait and timeoutMs (default 5000, capped at 30000)', () => {
    expect(callModeFrom(undefined, undefined)).toEqual({ wait: false, timeoutMs: 5000 });
    expect(callModeFrom('true', undefined)).toEqual({ wait: true, timeoutMs: 5000 });
    expect(callModeFrom('1', '250')).toEqual({ wait: true, timeoutMs: 250 });
    expect(callModeFrom('false', '99999999')).toEqual({ wait: false, timeoutMs: 30000 });
  });
  it.each([
    ['yes', undefined],
    [['true', 'true'], undefined],
    ['true', '0'],
    ['true', '-1'],
    ['true', '1.5'],
    ['true', 'abc'],
    ['true', ['1', '2']],
  ])('refuses wait=%p timeoutMs=%p', (w, t) => {
    expect(statusOf(() => callModeFrom(w, t))).toBe(400);
  });
});

describe('actionFrom', () => {
  it('takes ?type= first, then x-warren-action; validates', () => {
    expect(actionFrom(undefined, undefined)).toBeUndefined();
    expect(actionFrom('user.created', 'other')).toBe('user.created');
    expect(actionFrom(undefined, 'resize:v2')).toBe('resize:v2');
    for (const bad of ['', '1x', 'a b', 'a/b', 'x'.repeat(129)])
      expect(statusOf(() => actionFrom(bad, undefined))).toBe(400);
    expect(statusOf(() => actionFrom(['a', 'b'], undefined))).toBe(400);
  });
});
