import {
  ERRORS,
  WarrenError,
  errorCode,
  isRetryable,
  problemJson,
  problemTitle,
  problemType,
} from './errors';

describe('the error registry', () => {
  it('gives every code a 4xx/5xx status, a title and a generic detail', () => {
    for (const [code, spec] of Object.entries(ERRORS)) {
      expect(code).toMatch(/^[A-Z][A-Z0-9_]*$/);
      expect(spec.status).toBeGreaterThanOrEqual(400);
      expect(spec.status).toBeLessThanOrEqual(599);
      expect(spec.title.length).toBeGreaterThan(0);
      expect(spec.detail.length).toBeGreaterThan(0);
    }
  });

  it('types problems as urn:warren:error:<kebab-code> with the registry title', () => {
    expect(problemType('VALIDATION_FAILED')).toBe('urn:warren:error:validation-failed');
    expect(problemTitle('VALIDATION_FAILED')).toBe('Validation failed');
    // Codes outside the registry (a handler's own) get a title from their words.
    expect(problemType('EMPTY_TEXT')).toBe('urn:warren:error:empty-text');
    expect(problemTitle('EMPTY_TEXT')).toBe('Empty text');
  });
});

describe('WarrenError', () => {
  it('takes status and retryable from the registry, overridable', () => {
    const e = new WarrenError('QUEUE_FULL', 'full');
    expect([e.status, e.retryable, e.expose]).toEqual([429, true, true]);
    const custom = new WarrenError('PAYMENT_DOWN', 'down', { status: 503, retryable: false });
    expect([custom.status, custom.retryable, custom.expose]).toEqual([503, false, false]);
    expect(new WarrenError('MYSTERY', 'x').status).toBe(500);
    expect(new WarrenError('MYSTERY', 'x').retryable).toBe(true);
  });

  it('keeps a 5xx message out of the problem unless marked public', () => {
    const hidden = new WarrenError('HANDLER_ERROR', 'db password rejected for user x');
    expect(JSON.parse(problemJson(hidden, 'r1'))).toEqual({
      type: 'urn:warren:error:handler-error',
      title: 'Service error',
      status: 500,
      detail: ERRORS.HANDLER_ERROR.detail,
      requestId: 'r1',
    });
    const shown = new WarrenError('PAYMENT_DOWN', 'payments are down', {
      status: 503,
      expose: true,
    });
    expect(JSON.parse(problemJson(shown)).detail).toBe('payments are down');
  });

  it('names the subclass and keeps the cause', () => {
    class Mine extends WarrenError {}
    const cause = new Error('inner');
    const e = new Mine('BAD_REQUEST', 'outer', { cause });
    expect(e.name).toBe('Mine');
    expect(e.cause).toBe(cause);
    expect(e).toBeInstanceOf(Error);
  });
});

test('errorCode and isRetryable read any thrown value', () => {
  expect(errorCode(new WarrenError('UNROUTABLE', 'x'))).toBe('UNROUTABLE');
  expect(errorCode(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBe('ECONNRESET');
  expect(errorCode('a string')).toBe('HANDLER_ERROR');
  expect(isRetryable(new WarrenError('UNROUTABLE', 'x'))).toBe(false);
  expect(isRetryable(new WarrenError('BROKER_UNAVAILABLE', 'x'))).toBe(true);
  expect(isRetryable(new Error('unknown'))).toBe(true);
});
