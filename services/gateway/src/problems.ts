// The one place that maps errors to HTTP statuses: RFC 9457 problem details with requestId, type URNs, Retry-After.
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { WarrenError } from '@warren/messaging';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** Seconds a client should wait before retrying after a broker-side 503. */
export const RETRY_AFTER_UNAVAILABLE_S = 5;
/** Seconds before retrying a message the broker refused (queue full). */
export const RETRY_AFTER_QUEUE_FULL_S = 1;
/** Seconds before retrying a request refused because the gateway is at a connection or body-bytes cap. */
export const RETRY_AFTER_OVERLOADED_S = 1;

export interface ProblemInit {
  status: number;
  /** Stable slug; the type URI is `urn:warren:error:<slug>`. */
  slug: string;
  title: string;
  detail: string;
  retryAfterS?: number;
  headers?: Record<string, string>;
  /** Answer with `Connection: close` (and leave any unread request body unread). */
  close?: boolean;
}

/** An error that already knows its HTTP answer. */
export class HttpProblem extends Error {
  readonly status: number;
  readonly slug: string;
  readonly title: string;
  readonly retryAfterS: number | undefined;
  readonly headers: Record<string, string> | undefined;
  readonly close: boolean;

  constructor(init: ProblemInit, options?: { cause?: unknown }) {
    super(init.detail, options);
    this.name = 'HttpProblem';
    this.status = init.status;
    this.slug = init.slug;
    this.title = init.title;
    this.retryAfterS = init.retryAfterS;
    this.headers = init.headers;
    this.close = init.close ?? false;
  }

  get type(): string {
    return `urn:warren:error:${this.slug}`;
  }
}

export const problems = {
  badRequest: (detail: string) =>
    new HttpProblem({ status: 400, slug: 'bad-request', title: 'Bad request', detail }),
  invalidJson: (detail: string) =>
    new HttpProblem({ status: 400, slug: 'invalid-json', title: 'Invalid JSON body', detail }),
  invalidService: (detail: string) =>
    new HttpProblem({
      status: 400,
      slug: 'invalid-service-name',
      title: 'Invalid service name',
      detail,
    }),
  unauthorized: () =>
    new HttpProblem({
      status: 401,
      slug: 'unauthorized',
      title: 'Unauthorized',
      detail:
        'a valid API key is required: send "Authorization: Bearer <key>" or "x-api-key: <key>"',
      headers: { 'www-authenticate': 'Bearer realm="warren"' },
      close: true,
    }),
  unknownService: (service: string) =>
    new HttpProblem({
      status: 404,
      slug: 'unknown-service',
      title: 'Unknown service',
      detail: `no queue named "${service}": the service is not deployed or has never started`,
    }),
  reservedService: (service: string) =>
    new HttpProblem({
      status: 404,
      slug: 'unknown-service',
      title: 'Unknown service',
      detail: `"${service}" is a reserved name, not a service`,
    }),
  notFound: (path: string) =>
    new HttpProblem({
      status: 404,
      slug: 'not-found',
      title: 'Not found',
      detail: `no route ${path}`,
    }),
  methodNotAllowed: (allow: string) =>
    new HttpProblem({
      status: 405,
      slug: 'method-not-allowed',
      title: 'Method not allowed',
      detail: `allowed: ${allow}`,
      headers: { allow },
    }),
  tooLarge: (limit: number) =>
    new HttpProblem({
      status: 413,
      slug: 'body-too-large',
      title: 'Body too large',
      detail: `the body exceeds the limit of ${limit} bytes`,
    }),
  unsupportedType: (got: string | undefined) =>
    new HttpProblem({
      status: 415,
      slug: 'unsupported-media-type',
      title: 'Unsupported media type',
      detail: `${got ? `content type "${got.slice(0, 100)}" is not accepted` : 'a Content-Type header is required'}; send application/json (or application/*+json), text/*, or application/octet-stream`,
    }),
  rateLimited: (retryAfterS: number) =>
    new HttpProblem({
      status: 429,
      slug: 'rate-limited',
      title: 'Too many requests',
      detail: `rate limit exceeded; retry in ${retryAfterS} s`,
      retryAfterS,
      close: true,
    }),
  queueFull: (service: string) =>
    new HttpProblem({
      status: 429,
      slug: 'queue-full',
      title: 'Queue full',
      detail: `the broker refused the message for "${service}" (queue full); retry later`,
      retryAfterS: RETRY_AFTER_QUEUE_FULL_S,
    }),
  brokerUnavailable: (detail = 'the message broker is unavailable; retry later') =>
    new HttpProblem({
      status: 503,
      slug: 'broker-unavailable',
      title: 'Broker unavailable',
      detail,
      retryAfterS: RETRY_AFTER_UNAVAILABLE_S,
    }),
  noLiveInstance: (service: string) =>
    new HttpProblem({
      status: 503,
      slug: 'no-live-instance',
      title: 'No live instance',
      detail: `no live instance of "${service}" is known to the registry, so nobody would reply`,
      retryAfterS: RETRY_AFTER_UNAVAILABLE_S,
    }),
  overloaded: (cap: 'connections' | 'inflight_bytes') =>
    new HttpProblem({
      status: 503,
      slug: 'overloaded',
      title: 'Overloaded',
      detail:
        cap === 'connections'
          ? 'the gateway has too many open connections; retry later'
          : 'the gateway is receiving too many request bodies at once; retry later',
      retryAfterS: RETRY_AFTER_OVERLOADED_S,
      close: true,
    }),
  shuttingDown: () =>
    new HttpProblem({
      status: 503,
      slug: 'shutting-down',
      title: 'Shutting down',
      detail: 'this gateway instance is shutting down; retry',
      retryAfterS: 1,
    }),
  replyTimeout: (service: string, timeoutMs: number) =>
    new HttpProblem({
      status: 504,
      slug: 'reply-timeout',
      title: 'Reply timeout',
      detail: `"${service}" did not reply within ${timeoutMs} ms`,
    }),
  responseTimeout: (timeoutMs: number) =>
    new HttpProblem({
      status: 504,
      slug: 'response-timeout',
      title: 'Response timeout',
      detail: `the gateway could not answer within ${timeoutMs} ms of receiving the request; whether it was published is unknown`,
      close: true,
    }),
  badReply: (detail: string) =>
    new HttpProblem({ status: 502, slug: 'bad-reply', title: 'Bad reply', detail }),
  internal: () =>
    new HttpProblem({
      status: 500,
      slug: 'internal',
      title: 'Internal error',
      detail: 'the gateway failed to handle the request',
    }),
};

/**
 * Every error the gateway can meet -> its HTTP problem. `service` and `timeoutMs` give context
 * for messaging errors. Broker nacks are all answered as 429 "queue full": with Warren's
 * topology a nack means a bounded queue with `x-overflow: reject-publish` refused the message
 * (the other nack causes, internal broker errors, are rare and equally worth a retry).
 */
export function toProblem(
  err: unknown,
  ctx: { service?: string; timeoutMs?: number; live?: boolean } = {},
): HttpProblem {
  if (err instanceof HttpProblem) return err;
  const service = ctx.service ?? '?';
  if (err instanceof WarrenError) {
    switch (err.code) {
      case 'UNROUTABLE':
        // A service with live instances whose queue cannot be reached (its cluster node is down):
        // temporary, unlike a name nobody serves.
        return ctx.live
          ? problems.brokerUnavailable(
              `the queue of "${service}" is not reachable right now; retry later`,
            )
          : problems.unknownService(service);
      case 'PUBLISH_NACKED':
        return problems.queueFull(service);
      case 'RPC_TIMEOUT':
        return problems.replyTimeout(service, ctx.timeoutMs ?? 0);
      case 'PUBLISH_TIMEOUT':
        return problems.brokerUnavailable(
          'the broker did not confirm the message in time; retry later',
        );
      case 'BROKER_UNAVAILABLE':
      case 'CLOSED':
        return problems.brokerUnavailable();
    }
  }
  // Errors from express/body handling carry a 4xx `status` (e.g. a malformed URL escape).
  if (err && typeof err === 'object') {
    const status = 'status' in err ? err.status : 'statusCode' in err ? err.statusCode : undefined;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      const detail = err instanceof Error ? err.message : 'bad request';
      if (status === 413) return problems.tooLarge(0);
      return new HttpProblem({ status, slug: 'bad-request', title: 'Bad request', detail });
    }
  }
  return problems.internal();
}

/** Problems for requests Node's HTTP parser refuses, by error code (anything else: 400). */
const CLIENT_ERRORS: Record<string, ProblemInit> = {
  HPE_HEADER_OVERFLOW: {
    status: 431,
    slug: 'headers-too-large',
    title: 'Request header fields too large',
    detail: 'the request headers exceed the size limit',
  },
  ERR_HTTP_REQUEST_TIMEOUT: {
    status: 408,
    slug: 'request-timeout',
    title: 'Request timeout',
    detail: 'the request was not received in time',
  },
};

const MALFORMED: ProblemInit = {
  status: 400,
  slug: 'bad-request',
  title: 'Bad request',
  detail: 'malformed HTTP request',
};

/**
 * The raw HTTP answer to a request Node's parser refused before express saw it (malformed request
 * line or header, headers over the size limit, a request that did not arrive in time): the same
 * problem+json as every other error, on a connection that is then closed.
 */
export function clientErrorAnswer(code: string | undefined, requestId: string): string {
  const init = (code !== undefined && CLIENT_ERRORS[code]) || MALFORMED;
  return rawProblemAnswer(new HttpProblem(init), requestId);
}

/** The RFC 9457 body every error carries. */
function problemBody(problem: HttpProblem, requestId: string): string {
  return JSON.stringify({
    type: problem.type,
    title: problem.title,
    status: problem.status,
    detail: problem.message,
    requestId,
  });
}

/** A problem as raw HTTP/1.1 response bytes, for sockets express never sees; closes the connection. */
export function rawProblemAnswer(problem: HttpProblem, requestId: string): string {
  const body = problemBody(problem, requestId);
  const headers = [
    `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status] ?? ''}`,
    `content-type: ${PROBLEM_CONTENT_TYPE}`,
    `content-length: ${Buffer.byteLength(body)}`,
    `x-request-id: ${requestId}`,
    'connection: close',
  ];
  if (problem.retryAfterS !== undefined) headers.push(`retry-after: ${problem.retryAfterS}`);
  for (const [k, v] of Object.entries(problem.headers ?? {})) headers.push(`${k}: ${v}`);
  return `${headers.join('\r\n')}\r\n\r\n${body}`;
}

/**
 * Most request-body bytes an answer leaves to be read and dropped so that the connection can be
 * kept alive. An answer written before a larger body (or one of unknown length, chunked) was read
 * closes the connection instead: node then stops reading once the answer is flushed.
 */
export const KEEP_ALIVE_UNREAD_BYTES = 64 * 1024;

/** True when answering now would leave more than KEEP_ALIVE_UNREAD_BYTES (or an unknown amount) unread. */
export function largeBodyUnread(req: IncomingMessage): boolean {
  if (req.complete) return false;
  const declared = req.headers['content-length'];
  if (declared === undefined) return req.headers['transfer-encoding'] !== undefined;
  return !(Number(declared) <= KEEP_ALIVE_UNREAD_BYTES);
}

/**
 * Writes a problem response (application/problem+json) with requestId; never throws. Closes the
 * connection when the problem says so or a large body is still unread. A response that was
 * already ended (e.g. answered 504 by the response deadline) is left alone; one cut off midway
 * has its socket destroyed.
 */
export function sendProblem(res: ServerResponse, problem: HttpProblem, requestId: string): void {
  if (res.headersSent) {
    if (!res.writableEnded) res.destroy();
    return;
  }
  const body = problemBody(problem, requestId);
  res.statusCode = problem.status;
  res.setHeader('content-type', PROBLEM_CONTENT_TYPE);
  res.setHeader('content-length', Buffer.byteLength(body));
  if (problem.retryAfterS !== undefined) res.setHeader('retry-after', String(problem.retryAfterS));
  if (problem.headers) for (const [k, v] of Object.entries(problem.headers)) res.setHeader(k, v);
  if (problem.close || largeBodyUnread(res.req)) res.setHeader('connection', 'close');
  res.end(body);
}
