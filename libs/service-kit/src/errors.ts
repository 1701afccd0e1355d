// Handler-facing errors on the protocol's one root: a permanent failure is never retried; retries follow `retryable`.
import { WarrenError } from '@warren/protocol';

/** A failure retrying cannot fix: a call replies with its status (4xx), a message goes to the DLQ. */
export class PermanentError extends WarrenError {
  constructor(
    message: string,
    code = 'PERMANENT',
    options?: { status?: number; cause?: unknown; expose?: boolean },
  ) {
    super(code, message, { status: 422, ...options, retryable: false });
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

/** The handler ran past its time limit (retryable: the next attempt may be faster). */
export class HandlerTimeoutError extends WarrenError {
  constructor(timeoutMs: number) {
    super('HANDLER_TIMEOUT', `handler did not finish within ${timeoutMs} ms`);
  }
}

/** Invalid environment; the message is one line naming every bad variable. */
export class ConfigError extends WarrenError {
  constructor(message: string) {
    super('CONFIG_INVALID', message, { expose: true });
  }
}
