// The gateway's answers to errors: its problem factories on the protocol's error registry, the mapping of every error, raw answers.
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  PROBLEM_CONTENT_TYPE,
  WarrenError,
  problemJson,
  type ErrorCode,
  type WarrenErrorOptions,
} from '@warren/protocol';

export { PROBLEM_CONTENT_TYPE };

/** Seconds a client should wait before retrying after a broker-side 503. */
export const RETRY_AFTER_UNAVAILABLE_S = 5;
/** Seconds before retrying a message refused by back-pressure (the broker is not taking messages). */
export const RETRY_AFTER_BUSY_S = 1;
/** Seconds before retrying a message the broker refused (queue full). */
export const RETRY_AFTER_QUEUE_FULL_S = 1;
/** Seconds before retrying a request refused because the gateway is at a connection or body-bytes cap. */
export const RETRY_AFTER_OVERLOADED_S = 1;

/** Answer with `Connection: close` (and leave any unread request body unread). */
const CLOSE = { connection: 'close' } as const;

/** The problems the gateway worded itself: toProblem passes them on unchanged. */
const decided = new WeakSet<WarrenError>();

/** A problem the gateway words itself: its detail is written for clients, so it is public. */
const problem = (
  code: ErrorCode,
  detail: string,
  options: Omit<WarrenErrorOptions, 'expose'> = {},
): WarrenError => {
  const p = new WarrenError(code, detail, { ...options, expose: true });
  decided.add(p);
  return p;
};

// Refusals that come by the thousand under overload: made once (no stack trace per answer), never
// changed (the answer adds the request id when it writes the body). The body was read: the
// connection can stay.
const TOO_MANY_PENDING = problem(
  'OVERLOADED',
  'the gateway has too many calls waiting for replies; retry later',
  { retryAfterS: RETRY_AFTER_OVERLOADED_S },
);
const SHED = problem(
  'OVERLOADED',
  'calls to this service are queueing longer than the gateway allows (GATEWAY_SHED_TARGET_MS); retry later',
  { retryAfterS: RETRY_AFTER_OVERLOADED_S },
);

const BUSY = problem(
  'OVERLOADED',
  'the gateway is busier than it can serve in time (GATEWAY_ADMIT_DELAY_MS); retry later',
  { retryAfterS: RETRY_AFTER_OVERLOADED_S },
);

export const problems = {
  badRequest: (detail: string) => problem('BAD_REQUEST', detail),
  invalidJson: (detail: string) => problem('INVALID_JSON', detail),
  invalidService: (detail: string) => problem('INVALID_SERVICE_NAME', detail),
  unauthorized: () =>
    problem(
      'UNAUTHORIZED',
      'a valid API key is required: send "Authorization: Bearer <key>" or "x-api-key: <key>"',
      { headers: { 'www-authenticate': 'Bearer realm="warren"', ...CLOSE } },
    ),
  unknownService: (service: string) =>
    problem(
      'UNKNOWN_SERVICE',
      `no queue named "${service}": the service is not deployed or has never started`,
    ),
  invalidTopic: (detail: string) => problem('INVALID_TOPIC', detail),
  noSubscriber: (topic: string) =>
    problem('NO_SUBSCRIBER', `no service subscribes to "${topic}": the event was not accepted`),
  reservedService: (service: string) =>
    problem('UNKNOWN_SERVICE', `"${service}" is a reserved name, not a service`),
  notFound: (path: string) => problem('NOT_FOUND', `no route ${path}`),
  methodNotAllowed: (allow: string) =>
    problem('METHOD_NOT_ALLOWED', `allowed: ${allow}`, { headers: { allow } }),
  tooLarge: (limit: number) =>
    problem('BODY_TOO_LARGE', `the body exceeds the limit of ${limit} bytes`),
  unsupportedType: (got: string | undefined) =>
    problem(
      'UNSUPPORTED_MEDIA_TYPE',
      `${got ? `content type "${got.slice(0, 100)}" is not accepted` : 'a Content-Type header is required'}; send application/json (or application/*+json), text/*, or application/octet-stream`,
    ),
  rateLimited: (retryAfterS: number) =>
    problem('RATE_LIMITED', `rate limit exceeded; retry in ${retryAfterS} s`, {
      retryAfterS,
      headers: CLOSE,
    }),
  queueFull: (service: string) =>
    problem(
      'QUEUE_FULL',
      `the broker refused the message for "${service}" (queue full); retry later`,
      { retryAfterS: RETRY_AFTER_QUEUE_FULL_S },
    ),
  brokerUnavailable: (detail = 'the message broker is unavailable; retry later') =>
    problem('BROKER_UNAVAILABLE', detail, { retryAfterS: RETRY_AFTER_UNAVAILABLE_S }),
  /** A retry of a publish whose confirm timed out, its outcome still unknown: not sent again. */
  unconfirmedRetry: () =>
    problem(
      'BROKER_UNAVAILABLE',
      'an earlier request with this x-request-id and body is not yet confirmed by the broker (it may still be delivered); not sent again; retry later',
      { retryAfterS: RETRY_AFTER_UNAVAILABLE_S },
    ),
  brokerBusy: () =>
    problem(
      'BROKER_BUSY',
      'the broker is not taking messages right now (flow control or a resource alarm); nothing was sent; retry later',
      { retryAfterS: RETRY_AFTER_BUSY_S },
    ),
  noLiveInstance: (service: string) =>
    problem(
      'NO_LIVE_INSTANCE',
      `no live instance of "${service}" is known to the registry or consumes its queue, so nobody would reply`,
      { retryAfterS: RETRY_AFTER_UNAVAILABLE_S },
    ),
  overloaded: (
    cap: 'connections' | 'event_loop' | 'inflight_bytes' | 'pending_calls' | 'queue_delay',
  ) =>
    cap === 'pending_calls'
      ? TOO_MANY_PENDING
      : cap === 'queue_delay'
        ? SHED
        : cap === 'event_loop'
          ? BUSY
          : problem(
              'OVERLOADED',
              cap === 'connections'
                ? 'the gateway has too many open connections; retry later'
                : 'the gateway is receiving too many request bodies at once; retry later',
              { retryAfterS: RETRY_AFTER_OVERLOADED_S, headers: CLOSE },
            ),
  shuttingDown: () =>
    problem('SHUTTING_DOWN', 'this gateway instance is shutting down; retry', { retryAfterS: 1 }),
  replyTimeout: (service: string, timeoutMs: number) =>
    problem('REPLY_TIMEOUT', `"${service}" did not reply within ${timeoutMs} ms`),
  responseTimeout: (timeoutMs: number) =>
    problem(
      'RESPONSE_TIMEOUT',
      `the gateway could not answer within ${timeoutMs} ms of receiving the request; whether it was published is unknown`,
      { headers: CLOSE },
    ),
  badReply: (detail: string) => problem('BAD_REPLY', detail),
  internal: () => problem('INTERNAL', 'the gateway failed to handle the request'),
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
): WarrenError {
  const service = ctx.service ?? '?';
  // Already mapped (e.g. by the publish handler, then again by the error answer): keep its wording.
  if (err instanceof WarrenError && decided.has(err)) return err;
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
        // A call's caller is gone once it is answered: a late copy past its deadline is not run.
        return problems.brokerUnavailable(
          ctx.timeoutMs === undefined
            ? 'the broker did not confirm the message in time; it may still be delivered: retry with the same x-request-id and body, which this gateway does not send twice'
            : 'the broker did not confirm the call in time; it will not be run after its deadline; retry later',
        );
      case 'BROKER_BUSY':
        return problems.brokerBusy();
      case 'BROKER_UNAVAILABLE':
      case 'CLOSED':
        return problems.brokerUnavailable();
    }
    // Every other WarrenError already knows its answer (status, title, public detail).
    return err;
  }
  // Errors from express/body handling carry a 4xx `status` (e.g. a malformed URL escape).
  if (err && typeof err === 'object') {
    const status = 'status' in err ? err.status : 'statusCode' in err ? err.statusCode : undefined;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      const detail = err instanceof Error ? err.message : 'bad request';
      if (status === 413) return problems.tooLarge(0);
      return problem('BAD_REQUEST', detail, { status });
    }
  }
  return problems.internal();
}

/** Problems for requests Node's HTTP parser refuses, by error code (anything else: 400). */
const CLIENT_ERRORS: Record<string, () => WarrenError> = {
  HPE_HEADER_OVERFLOW: () =>
    problem('HEADERS_TOO_LARGE', 'the request headers exceed the size limit'),
  ERR_HTTP_REQUEST_TIMEOUT: () =>
    problem('REQUEST_TIMEOUT', 'the request was not received in time'),
};

/**
 * The raw HTTP answer to a request Node's parser refused before express saw it (malformed request
 * line or header, headers over the size limit, a request that did not arrive in time): the same
 * problem+json as every other error, on a connection that is then closed.
 */
export function clientErrorAnswer(code: string | undefined, requestId: string): string {
  const make = code === undefined ? undefined : CLIENT_ERRORS[code];
  return rawProblemAnswer(make ? make() : problems.badRequest('malformed HTTP request'), requestId);
}

/** A problem as raw HTTP/1.1 response bytes, for sockets express never sees; closes the connection. */
export function rawProblemAnswer(problem: WarrenError, requestId: string): string {
  const body = problemJson(problem, requestId);
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
 * A problem answered before the request got a context (refused at the door): `baseHeaders` (name,
 * value, ...), the request id, Retry-After and the problem, in one writeHead. Keeps the connection
 * unless that would leave a large body to read.
 */
export function answerAtDoor(
  res: ServerResponse,
  problem: WarrenError,
  requestId: string,
  baseHeaders: readonly string[],
): void {
  const body = problemJson(problem, requestId);
  const headers = [
    ...baseHeaders,
    'x-request-id',
    requestId,
    'content-type',
    PROBLEM_CONTENT_TYPE,
    'content-length',
    String(Buffer.byteLength(body)),
  ];
  if (problem.retryAfterS !== undefined) headers.push('retry-after', String(problem.retryAfterS));
  if (largeBodyUnread(res.req)) headers.push('connection', 'close');
  res.writeHead(problem.status, headers);
  res.end(body);
}

/**
 * Writes a problem response (application/problem+json) with requestId; never throws. Closes the
 * connection when the problem says so (its headers) or a large body is still unread. A response
 * that was already ended (e.g. answered 504 by the response deadline) is left alone; one cut off
 * midway has its socket destroyed.
 */
export function sendProblem(res: ServerResponse, problem: WarrenError, requestId: string): void {
  if (res.headersSent) {
    if (!res.writableEnded) res.destroy();
    return;
  }
  const body = problemJson(problem, requestId);
  res.statusCode = problem.status;
  res.setHeader('content-type', PROBLEM_CONTENT_TYPE);
  res.setHeader('content-length', Buffer.byteLength(body));
  if (problem.retryAfterS !== undefined) res.setHeader('retry-after', String(problem.retryAfterS));
  if (problem.headers) for (const [k, v] of Object.entries(problem.headers)) res.setHeader(k, v);
  if (largeBodyUnread(res.req)) res.setHeader('connection', 'close');
  res.end(body);
}
