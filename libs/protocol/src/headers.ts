// AMQP header names Warren reads and writes, and the failure headers a dead letter carries.

export const HEADERS = {
  /** The HTTP request id, carried end to end. */
  requestId: 'x-request-id',
  /** W3C trace context. */
  traceparent: 'traceparent',
  /** 1 on first delivery, counted up by retries. */
  attempt: 'x-attempt',
  /**
   * Marks a call (the sender waits for a reply): set by Warren's callers next to `replyTo`, so a
   * copy of a call stays recognisable even where its reply fields were removed. A message with
   * `replyTo` is a call whether or not it has the marker (plain AMQP callers do not set it).
   */
  call: 'x-call',
  /**
   * Redeliveries so far of a message on a classic queue: the service-kit republishes a redelivered
   * message with this counted up (quorum queues count in the broker's `x-delivery-count`).
   */
  redeliveries: 'x-redeliveries',
  /**
   * An event's topic, on events Warren publishes and on every retry or dead-letter copy of an event
   * (whose routing key is then a queue's name). Absent on a plain client's event: the routing key
   * of a delivery from the events exchange is its topic.
   */
  event: 'x-event',
  /** Publish time in ms (the AMQP timestamp has only seconds). */
  publishedAt: 'x-published-at',
  /** A reply's HTTP status (absent = 200). */
  status: 'x-status',
  /**
   * A reply's time in the service, ms (from delivery to reply): lets a caller tell the time its
   * call spent queued from the time it was worked on. Optional; a hint, never trusted beyond that.
   */
  serviceMs: 'x-service-ms',
  /**
   * A reply's time queued, ms: from the call's `x-published-at` (the caller's clock) to its
   * delivery to the handler (the service's clock). Optional, a hint: clocks kept in sync (NTP).
   */
  queueMs: 'x-queue-ms',
  /** Dead letters: the last error's message, code, the queue it failed on and when. */
  errorMessage: 'x-error-message',
  errorCode: 'x-error-code',
  originalQueue: 'x-original-queue',
  failedAt: 'x-failed-at',
  /** Replayed dead letters: when, and how many times so far. */
  replayedAt: 'x-replayed-at',
  replayCount: 'x-replay-count',
} as const;

/**
 * Headers describing a failure, earlier dead-lettering or broker redeliveries: written by the
 * service-kit or the broker, never carried into a replayed copy.
 */
export const FAILURE_HEADERS: readonly string[] = [
  'x-delivery-count',
  HEADERS.redeliveries,
  HEADERS.errorMessage,
  HEADERS.errorCode,
  HEADERS.failedAt,
  HEADERS.originalQueue,
  'x-death',
  'x-first-death-exchange',
  'x-first-death-queue',
  'x-first-death-reason',
  'x-last-death-exchange',
  'x-last-death-queue',
  'x-last-death-reason',
];

/** The headers of a new request message (static keys: one object literal on the publish path). */
export interface RequestHeaders {
  'x-request-id': string;
  'x-attempt': number;
  'x-published-at': number;
  traceparent?: string;
  /** Calls only: 1. */
  'x-call'?: number;
}

export function requestHeaders(
  requestId: string,
  traceparent: string | undefined,
  publishedAt: number,
): RequestHeaders {
  return traceparent === undefined
    ? { 'x-request-id': requestId, 'x-attempt': 1, 'x-published-at': publishedAt }
    : { traceparent, 'x-request-id': requestId, 'x-attempt': 1, 'x-published-at': publishedAt };
}

/** The headers of a new call: a request's, plus the call marker. */
export function callHeaders(
  requestId: string,
  traceparent: string | undefined,
  publishedAt: number,
): RequestHeaders {
  return traceparent === undefined
    ? { 'x-request-id': requestId, 'x-attempt': 1, 'x-published-at': publishedAt, 'x-call': 1 }
    : {
        traceparent,
        'x-request-id': requestId,
        'x-attempt': 1,
        'x-published-at': publishedAt,
        'x-call': 1,
      };
}

/** The headers of an event: a request's, plus its topic. */
export function eventHeaders(
  topic: string,
  requestId: string,
  traceparent: string | undefined,
  publishedAt: number,
): RequestHeaders & { 'x-event': string } {
  return { ...requestHeaders(requestId, traceparent, publishedAt), 'x-event': topic };
}

/** A call's timing, sent back on its reply: time queued and time in the service (ms). */
export interface ReplyTiming {
  queueMs: number;
  serviceMs: number;
}

/** The headers of a reply: its HTTP status, and (when given) its timing. */
export function replyHeaders(
  status: number,
  timing?: ReplyTiming,
): { 'x-status': number; 'x-queue-ms'?: number; 'x-service-ms'?: number } {
  return timing === undefined
    ? { 'x-status': status }
    : { 'x-status': status, 'x-queue-ms': timing.queueMs, 'x-service-ms': timing.serviceMs };
}

const msOf = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined;

/**
 * A reply's timing when it carries both headers as numbers of ms (finite, >= 0); undefined
 * otherwise. A hint from another process: the caller bounds what it does with it.
 */
export function replyTiming(headers: Record<string, unknown> | undefined): ReplyTiming | undefined {
  if (headers === undefined) return undefined;
  const queueMs = msOf(headers[HEADERS.queueMs]);
  const serviceMs = msOf(headers[HEADERS.serviceMs]);
  return queueMs === undefined || serviceMs === undefined ? undefined : { queueMs, serviceMs };
}

/** Longest error message kept in a dead letter's header. */
export const MAX_ERROR_MESSAGE = 1000;
