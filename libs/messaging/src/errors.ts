// Typed messaging errors, each with a stable `code` that callers (the HTTP layer) map to statuses.
export abstract class WarrenError extends Error {
  abstract readonly code: string;
  /** Whether retrying the same operation later can succeed. */
  readonly transient: boolean = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** No usable connection or channel (down, reconnecting, blocked, closed). */
export class BrokerUnavailableError extends WarrenError {
  readonly code = 'BROKER_UNAVAILABLE';
}

/** The broker refused the message (basic.nack), e.g. a full queue with reject-publish overflow. */
export class PublishNackedError extends WarrenError {
  readonly code = 'PUBLISH_NACKED';
}

/** A `mandatory` message matched no queue (basic.return). */
export class UnroutableError extends WarrenError {
  readonly code = 'UNROUTABLE';
  override readonly transient = false;
  constructor(
    readonly routingKey: string,
    message = `no queue bound for routing key "${routingKey}"`,
  ) {
    super(message);
  }
}

/** The broker did not confirm a publish within the bound; the outcome is unknown. */
export class PublishTimeoutError extends WarrenError {
  readonly code = 'PUBLISH_TIMEOUT';
}

/** No reply arrived within the call's timeout. */
export class RpcTimeoutError extends WarrenError {
  readonly code = 'RPC_TIMEOUT';
  constructor(readonly timeoutMs: number) {
    super(`no reply within ${timeoutMs} ms`);
  }
}

/** The client or supervisor was closed by its owner. */
export class ClosedError extends WarrenError {
  readonly code = 'CLOSED';
  override readonly transient = false;
}

/** Normalises whatever amqplib threw into a WarrenError. */
export function toBrokerError(err: unknown, what: string): WarrenError {
  if (err instanceof WarrenError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new BrokerUnavailableError(`${what}: ${detail}`, { cause: err });
}
