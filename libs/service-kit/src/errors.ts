// Handler-facing errors: a permanent failure is never retried; the rest are transient and retried.
export class PermanentError extends Error {
  /** HTTP status a caller waiting for a reply receives (4xx). */
  readonly status: number;
  constructor(
    message: string,
    readonly code = 'PERMANENT',
    options?: { status?: number; cause?: unknown },
  ) {
    super(message, { cause: options?.cause });
    this.name = new.target.name;
    this.status = options?.status ?? 422;
  }
}

/** The input failed the service's schema (or could not be decoded). */
export class ValidationError extends PermanentError {
  constructor(
    message: string,
    readonly issues: ReadonlyArray<{ path: string; message: string }> = [],
  ) {
    super(message, 'VALIDATION_FAILED', { status: 400 });
  }
}

/** The handler ran past its time limit. */
export class HandlerTimeoutError extends Error {
  readonly code = 'HANDLER_TIMEOUT';
  constructor(timeoutMs: number) {
    super(`handler did not finish within ${timeoutMs} ms`);
    this.name = 'HandlerTimeoutError';
  }
}

/** Invalid environment; the message is one line naming every bad variable. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Stable code of any error, for DLQ headers and logs. */
export function errorCode(err: unknown): string {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string')
    return err.code;
  return 'HANDLER_ERROR';
}
