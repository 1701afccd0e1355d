// Every error code Warren answers with (status, title, retryable), the one error root, and the one problem+json builder.

export interface ErrorSpec {
  /** HTTP status a client receives. */
  status: number;
  /** Human title of the problem type (RFC 9457 `title`). */
  title: string;
  /** Whether the same operation can succeed later (the service-kit retries; clients may). */
  retryable: boolean;
  /** What a client reads when the error's own message is not public. */
  detail: string;
}

const spec = (status: number, title: string, retryable: boolean, detail: string): ErrorSpec => ({
  status,
  title,
  retryable,
  detail,
});

/**
 * The registry, in the spirit of fastify's error registry: one entry per code. Codes are
 * SCREAMING_SNAKE (they also go into dead letters' `x-error-code`); the problem type is
 * `urn:warren:error:<kebab-code>`.
 */
export const ERRORS = {
  // The request
  BAD_REQUEST: spec(400, 'Bad request', false, 'the request is malformed'),
  INVALID_JSON: spec(400, 'Invalid JSON body', false, 'the body is not valid JSON'),
  INVALID_SERVICE_NAME: spec(400, 'Invalid service name', false, 'not a service name'),
  INVALID_TOPIC: spec(400, 'Invalid topic', false, 'not an event topic'),
  VALIDATION_FAILED: spec(400, 'Validation failed', false, 'the input failed validation'),
  UNAUTHORIZED: spec(401, 'Unauthorized', false, 'a valid API key is required'),
  UNKNOWN_SERVICE: spec(404, 'Unknown service', false, 'no such service'),
  NOT_FOUND: spec(404, 'Not found', false, 'no such route'),
  NO_SUBSCRIBER: spec(404, 'No subscriber', false, 'no service subscribes to this topic'),
  METHOD_NOT_ALLOWED: spec(405, 'Method not allowed', false, 'method not allowed'),
  REQUEST_TIMEOUT: spec(408, 'Request timeout', true, 'the request was not received in time'),
  BODY_TOO_LARGE: spec(413, 'Body too large', false, 'the body exceeds the size limit'),
  UNSUPPORTED_MEDIA_TYPE: spec(415, 'Unsupported media type', false, 'media type not accepted'),
  PERMANENT: spec(422, 'Unprocessable', false, 'the service cannot process this input'),
  RATE_LIMITED: spec(429, 'Too many requests', true, 'rate limit exceeded'),
  QUEUE_FULL: spec(429, 'Queue full', true, 'the queue is full; retry later'),
  HEADERS_TOO_LARGE: spec(431, 'Request header fields too large', false, 'headers too large'),
  // Warren and its broker
  INTERNAL: spec(500, 'Internal error', false, 'the request could not be handled'),
  HANDLER_ERROR: spec(500, 'Service error', true, 'the service failed to handle the message'),
  SERVICE_ERROR: spec(500, 'Service error', false, 'the service failed to handle the message'),
  CONFIG_INVALID: spec(500, 'Invalid configuration', false, 'invalid configuration'),
  BAD_REPLY: spec(502, 'Bad reply', false, 'the service sent a malformed reply'),
  BROKER_UNAVAILABLE: spec(503, 'Broker unavailable', true, 'the broker is unavailable'),
  BROKER_BUSY: spec(503, 'Broker busy', true, 'the broker is not taking messages now; retry later'),
  PUBLISH_NACKED: spec(429, 'Queue full', true, 'the broker refused the message'),
  PUBLISH_TIMEOUT: spec(503, 'Broker unavailable', true, 'the broker did not confirm in time'),
  UNROUTABLE: spec(404, 'Unknown service', false, 'no queue for this message'),
  CLOSED: spec(503, 'Closed', false, 'the client was closed'),
  NO_LIVE_INSTANCE: spec(503, 'No live instance', true, 'no live instance of the service'),
  SHUTTING_DOWN: spec(503, 'Shutting down', true, 'this instance is shutting down; retry'),
  OVERLOADED: spec(503, 'Overloaded', true, 'the gateway is at capacity; retry later'),
  RPC_TIMEOUT: spec(504, 'Reply timeout', true, 'no reply in time'),
  REPLY_TIMEOUT: spec(504, 'Reply timeout', true, 'the service did not reply in time'),
  RESPONSE_TIMEOUT: spec(504, 'Response timeout', true, 'the gateway could not answer in time'),
  HANDLER_TIMEOUT: spec(504, 'Handler timeout', true, 'the service did not finish in time'),
  REDELIVERY_LIMIT: spec(
    500,
    'Redelivery limit',
    false,
    'the message was delivered too many times without being settled',
  ),
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

const isRegistered = (code: string): code is ErrorCode => Object.hasOwn(ERRORS, code);

/** The registry entry of `code`, if it has one. */
export function errorSpec(code: string): ErrorSpec | undefined {
  return isRegistered(code) ? ERRORS[code] : undefined;
}

export interface WarrenErrorOptions {
  /** Overrides the code's status (codes outside the registry: default 500). */
  status?: number;
  /** Overrides the code's retryable flag (codes outside the registry: default true). */
  retryable?: boolean;
  /**
   * Whether the message may be shown to a client. Default: status < 500 (as http-errors does):
   * a 4xx says what was wrong with the input; a 5xx message may carry internals, so clients get
   * the code's generic detail and the message goes to the log.
   */
  expose?: boolean;
  /** Seconds a client should wait before retrying (Retry-After). */
  retryAfterS?: number;
  /** Extra response headers (e.g. WWW-Authenticate, Allow). */
  headers?: Readonly<Record<string, string>>;
  cause?: unknown;
}

/**
 * The one error root (in the spirit of Moleculer's errors): a stable code, the HTTP status a
 * client gets, whether retrying can help, and a public message kept apart from internal detail.
 */
export class WarrenError extends Error {
  readonly code: string;
  readonly status: number;
  readonly retryable: boolean;
  readonly expose: boolean;
  readonly retryAfterS: number | undefined;
  readonly headers: Readonly<Record<string, string>> | undefined;

  constructor(code: string, message: string, options: WarrenErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    const known = errorSpec(code);
    this.code = code;
    this.status = options.status ?? known?.status ?? 500;
    this.retryable = options.retryable ?? known?.retryable ?? true;
    this.expose = options.expose ?? this.status < 500;
    this.retryAfterS = options.retryAfterS;
    this.headers = options.headers;
  }

  /** The problem type: `urn:warren:error:<kebab-code>`. */
  get type(): string {
    return problemType(this.code);
  }

  get title(): string {
    return problemTitle(this.code);
  }

  /** What a client may read: the message when exposed, else the code's generic detail. */
  get publicDetail(): string {
    return this.expose ? this.message : genericDetail(this.code);
  }
}

/** Stable code of any thrown value, for logs and dead letters. */
export function errorCode(err: unknown): string {
  if (err instanceof WarrenError) return err.code;
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string')
    return err.code;
  return 'HANDLER_ERROR';
}

/** Whether retrying what threw `err` can succeed: its `retryable` flag; anything unknown is transient. */
export function isRetryable(err: unknown): boolean {
  return err instanceof WarrenError ? err.retryable : true;
}

const kebab = (code: string): string =>
  code
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '') || 'error';

export const problemType = (code: string): string => `urn:warren:error:${kebab(code)}`;

/** The registry's title, or the code in words (`EMPTY_TEXT` -> "Empty text"). */
export function problemTitle(code: string): string {
  const known = errorSpec(code);
  if (known) return known.title;
  const words = kebab(code).replace(/-/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function genericDetail(code: string): string {
  return errorSpec(code)?.detail ?? 'the request could not be handled';
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  requestId?: string;
}

/** RFC 9457 fields of an error as a client may see them. */
export function problemOf(err: WarrenError, requestId?: string): Problem {
  const p: Problem = {
    type: err.type,
    title: err.title,
    status: err.status,
    detail: err.publicDetail,
  };
  if (requestId !== undefined) p.requestId = requestId;
  return p;
}

/** The problem+json body of an error: the one builder for the gateway's answers and services' failure replies. */
export function problemJson(err: WarrenError, requestId?: string): string {
  return JSON.stringify(problemOf(err, requestId));
}
