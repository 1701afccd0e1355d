import {
  BrokerBusyError,
  BrokerUnavailableError,
  ClosedError,
  PublishNackedError,
  PublishTimeoutError,
  RpcTimeoutError,
  UnroutableError,
} from '@warren/messaging';
import { WarrenError } from '@warren/protocol';
import { clientErrorAnswer, problems, rawProblemAnswer, sendProblem, toProblem } from './problems';
import type { ServerResponse } from 'node:http';

describe('toProblem', () => {
  it.each([
    [new UnroutableError('svc'), 404, 'unknown-service', undefined],
    [new PublishNackedError('nack'), 429, 'queue-full', 1],
    [new RpcTimeoutError(100), 504, 'reply-timeout', undefined],
    [new PublishTimeoutError('slow'), 503, 'broker-unavailable', 5],
    [new BrokerUnavailableError('down'), 503, 'broker-unavailable', 5],
    [new BrokerBusyError('full'), 503, 'broker-busy', 1],
    [new ClosedError('closed'), 503, 'broker-unavailable', 5],
    [new Error('boom'), 500, 'internal', undefined],
    ['a string', 500, 'internal', undefined],
    [
      Object.assign(new Error('Failed to decode param'), { status: 400 }),
      400,
      'bad-request',
      undefined,
    ],
  ])('%p -> %i %s', (err, status, slug, retryAfter) => {
    const p = toProblem(err, { service: 'svc', timeoutMs: 100 });
    expect(p.status).toBe(status);
    expect(p.type).toBe(`urn:warren:error:${slug}`);
    expect(p.retryAfterS).toBe(retryAfter);
  });

  it('keeps a decided problem as it is', () => {
    const p = problems.tooLarge(10);
    expect(toProblem(p)).toBe(p);
  });

  it('maps once: a mapped problem mapped again keeps its own detail', () => {
    const once = toProblem(new PublishTimeoutError('slow'), { service: 'svc' });
    expect(once.publicDetail).toMatch(/may still be delivered/);
    expect(toProblem(once)).toBe(once);
    const unreachable = toProblem(new UnroutableError('svc'), { service: 'svc', live: true });
    expect(toProblem(unreachable).publicDetail).toMatch(/not reachable right now/);
  });

  it('never leaks an internal error message', () => {
    expect(toProblem(new Error('secret detail')).message).not.toContain('secret');
  });
});

/** A response stand-in recording what sendProblem writes, for a request in the given state. */
function fakeResponse(req: { complete: boolean; headers: Record<string, string> }) {
  const headers: Record<string, unknown> = {};
  const out = { body: '', destroyed: false };
  const res = {
    req,
    headersSent: false,
    writableEnded: false,
    statusCode: 0,
    setHeader: (k: string, v: unknown) => (headers[k] = v),
    end: (b: string) => (out.body = b),
    destroy: () => (out.destroyed = true),
  } as unknown as ServerResponse;
  return { res, headers, out };
}

describe('sendProblem', () => {
  it('writes RFC 9457 JSON with requestId and Retry-After', () => {
    const { res, headers, out } = fakeResponse({ complete: true, headers: {} });
    const body = () => out.body;
    sendProblem(res, problems.brokerUnavailable(), 'req-12345678');
    expect(res.statusCode).toBe(503);
    expect(headers['content-type']).toBe('application/problem+json');
    expect(headers['retry-after']).toBe('5');
    expect(headers.connection).toBeUndefined();
    expect(JSON.parse(body())).toEqual({
      type: 'urn:warren:error:broker-unavailable',
      title: 'Broker unavailable',
      status: 503,
      detail: 'the message broker is unavailable; retry later',
      requestId: 'req-12345678',
    });
    expect(problems.unauthorized()).toBeInstanceOf(WarrenError);
  });

  it('closes the connection for 401, 429 (rate limit), 503 overloaded and 504 response timeout', () => {
    for (const p of [
      problems.unauthorized(),
      problems.rateLimited(3),
      problems.overloaded('connections'),
      problems.overloaded('inflight_bytes'),
      problems.responseTimeout(35_000),
    ]) {
      const { res, headers } = fakeResponse({ complete: true, headers: {} });
      sendProblem(res, p, 'req-12345678');
      expect([p.code, headers.connection]).toEqual([p.code, 'close']);
    }
    expect(problems.overloaded('connections').retryAfterS).toBe(1);
    expect(problems.queueFull('svc').headers?.connection).toBeUndefined();
  });

  it.each([
    [{ complete: true, headers: { 'content-length': '999999999' } }, undefined],
    [{ complete: false, headers: {} }, undefined],
    [{ complete: false, headers: { 'content-length': '65536' } }, undefined],
    [{ complete: false, headers: { 'content-length': '65537' } }, 'close'],
    [{ complete: false, headers: { 'content-length': '10737418240' } }, 'close'],
    [{ complete: false, headers: { 'content-length': 'junk' } }, 'close'],
    [{ complete: false, headers: { 'transfer-encoding': 'chunked' } }, 'close'],
  ])('answers before a large or unknown body is read on a closed connection: %j', (req, want) => {
    const { res, headers } = fakeResponse(req);
    sendProblem(res, problems.badRequest('x'), 'req-12345678');
    expect(headers.connection).toBe(want);
  });

  it('leaves an ended response alone and destroys one cut off midway', () => {
    const ended = fakeResponse({ complete: true, headers: {} });
    Object.assign(ended.res, { headersSent: true, writableEnded: true });
    sendProblem(ended.res, problems.internal(), 'req-12345678');
    expect(ended.out).toEqual({ body: '', destroyed: false });
    const midway = fakeResponse({ complete: true, headers: {} });
    Object.assign(midway.res, { headersSent: true });
    sendProblem(midway.res, problems.internal(), 'req-12345678');
    expect(midway.out).toEqual({ body: '', destroyed: true });
  });
});

describe('clientErrorAnswer', () => {
  it.each([
    ['HPE_HEADER_OVERFLOW', 431, 'headers-too-large'],
    ['ERR_HTTP_REQUEST_TIMEOUT', 408, 'request-timeout'],
    ['HPE_INVALID_HEADER_TOKEN', 400, 'bad-request'],
    [undefined, 400, 'bad-request'],
  ])('%s -> %i problem+json on a closed connection', (code, status, slug) => {
    const raw = clientErrorAnswer(code, 'req-12345678');
    const [head = '', body = ''] = raw.split('\r\n\r\n');
    const lines = head.split('\r\n');
    expect(lines[0]).toMatch(new RegExp(`^HTTP/1\\.1 ${status} \\S`));
    expect(lines).toEqual(
      expect.arrayContaining([
        'content-type: application/problem+json',
        `content-length: ${Buffer.byteLength(body)}`,
        'x-request-id: req-12345678',
        'connection: close',
      ]),
    );
    expect(JSON.parse(body)).toMatchObject({
      type: `urn:warren:error:${slug}`,
      status,
      requestId: 'req-12345678',
    });
  });
});

it('rawProblemAnswer carries Retry-After and the problem headers', () => {
  const raw = rawProblemAnswer(problems.methodNotAllowed('POST'), 'req-12345678');
  expect(raw).toMatch(/^HTTP\/1\.1 405 Method Not Allowed\r\n/);
  expect(raw).toContain('\r\nallow: POST\r\n');
  expect(rawProblemAnswer(problems.queueFull('svc'), 'r')).toContain('\r\nretry-after: 1\r\n');
});

test('an unroutable publish is 404 for an unknown service but 503 for one with live instances', () => {
  const err = new UnroutableError('echo');
  expect(toProblem(err, { service: 'echo' }).status).toBe(404);
  const live = toProblem(err, { service: 'echo', live: true });
  expect(live.status).toBe(503);
  expect(live.retryAfterS).toBeGreaterThan(0);
});
