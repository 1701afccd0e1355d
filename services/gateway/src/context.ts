// Per-request context (id, trace, route, start, base headers) and the one way answers are written.
import type { ServerResponse } from 'node:http';
import type { ResponseWatch } from './edge';
import type { RouteLabel } from './metrics';
import type { Logger, SpanHandle } from '@warren/observability';
import type { WarrenError } from '@warren/protocol';
import { sendProblem, toProblem } from './problems';

export interface RequestContext {
  requestId: string;
  traceparent: string;
  route: RouteLabel;
  /** performance.now() when the request arrived. */
  start: number;
  /** Headers every answer carries (security set, x-request-id, rate-limit state): name, value, ... */
  headers: string[];
  /** Index of the API key the request presented (when keys are configured). */
  keyId?: number;
  /** The client address (after trust-proxy), once something needed it. */
  ip?: string;
  /** The HTTP server span (when tracing is on); `traceparent` is its context. */
  span?: SpanHandle;
  /** The response deadline's watch (set once the request is accepted for handling). */
  watch?: ResponseWatch | undefined;
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    // Express's res.locals is the request context (set before express sees the request).
    // eslint-disable-next-line @typescript-eslint/no-empty-object-type
    interface Locals extends RequestContext {}
  }
}

/** A response carrying its request's context (as express's `res.locals`). */
export type ContextResponse = ServerResponse & { locals: RequestContext };

/** Sets the context's base headers one by one: for answers written by express or sendProblem. */
export function applyBaseHeaders(res: ContextResponse): void {
  const h = res.locals.headers;
  for (let i = 0; i < h.length; i += 2) res.setHeader(h[i] as string, h[i + 1] as string);
}

/**
 * Writes a whole answer with one writeHead: the base headers plus content type and length. With no
 * header set before, node serialises the array as it is (no per-header map updates). A response
 * already ended (answered 504 by the response deadline while this one was pending) is left alone.
 */
export function answer(
  res: ContextResponse,
  status: number,
  contentType: string,
  body: string | Buffer,
): void {
  if (res.writableEnded) return;
  const headers = res.locals.headers;
  const base = headers.length;
  headers.push(
    'content-type',
    contentType,
    'content-length',
    String(typeof body === 'string' ? Buffer.byteLength(body) : body.length),
  );
  try {
    res.writeHead(status, headers);
  } catch (err) {
    // Node refused a header value: the error answer must not write the same headers again.
    headers.length = base;
    throw err;
  }
  res.end(body);
}

/** A problem+json answer with the base headers (error paths: not hot, uses setHeader). */
export function answerProblem(res: ContextResponse, problem: WarrenError): void {
  if (!res.headersSent) applyBaseHeaders(res);
  sendProblem(res, problem, res.locals.requestId);
}

/**
 * Any error as its problem answer (the mapping is problems.ts's); errors that map to nothing
 * decided (500 internal) are logged as bugs. Never throws: should even the problem answer fail,
 * the last resort logs, counts (`onWriteFailure`) and destroys this one socket.
 */
export function answerError(
  res: ContextResponse,
  err: unknown,
  logger: Logger,
  onWriteFailure?: () => void,
): void {
  try {
    const problem = toProblem(err);
    if (problem.code === 'INTERNAL')
      logger.error({ err, requestId: res.locals.requestId }, 'unhandled error');
    else if (problem.status >= 500 && !problem.expose)
      // A 5xx whose message is not for clients: they get the generic detail, the log the message.
      logger.warn({ err, requestId: res.locals.requestId }, 'request failed');
    answerProblem(res, problem);
  } catch (writeErr) {
    onWriteFailure?.();
    logger.error(
      { err: writeErr, cause: err, requestId: res.locals.requestId },
      'could not write the answer; closing the connection',
    );
    res.destroy();
  }
}
