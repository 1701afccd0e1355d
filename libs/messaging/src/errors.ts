// Typed messaging errors on the protocol's one error root: code, status and retryable come from its registry.
import { WarrenError, type WarrenErrorOptions } from '@warren/protocol';

export { WarrenError };

type Options = Pick<WarrenErrorOptions, 'cause'>;

/** No usable connection or channel (down, reconnecting, blocked, closed). */
export class BrokerUnavailableError extends WarrenError {
  constructor(message: string, options?: Options) {
    super('BROKER_UNAVAILABLE', message, options);
  }
}

/**
 * Back-pressure: the publish waited its bound for room (amqplib's channel buffer full, or the
 * connection blocked by a broker resource alarm) and was never handed to amqplib, so it is never
 * sent.
 */
export class BrokerBusyError extends WarrenError {
  constructor(message: string, options?: Options) {
    super('BROKER_BUSY', message, options);
  }
}

/** The broker refused the message (basic.nack), e.g. a full queue with reject-publish overflow. */
export class PublishNackedError extends WarrenError {
  constructor(message: string, options?: Options) {
    super('PUBLISH_NACKED', message, options);
  }
}

/** A `mandatory` message matched no queue (basic.return). */
export class UnroutableError extends WarrenError {
  constructor(
    readonly routingKey: string,
    message = `no queue bound for routing key "${routingKey}"`,
  ) {
    super('UNROUTABLE', message);
  }
}

/**
 * How a publish that timed out ended after all: `confirmed` (the broker took it: basic.ack),
 * `refused` (basic.nack or basic.return: it was not taken), `lost` (its channel closed first: the
 * broker may or may not have taken it).
 */
export type LateOutcome = 'confirmed' | 'refused' | 'lost';

/**
 * The broker did not confirm a publish within the bound; the outcome is unknown. `late` settles
 * with what became of it once the broker answers or the channel closes (never rejects).
 */
export class PublishTimeoutError extends WarrenError {
  readonly late: Promise<LateOutcome>;
  constructor(message: string, options?: Options & { late?: Promise<LateOutcome> }) {
    super('PUBLISH_TIMEOUT', message, options);
    this.late = options?.late ?? Promise.resolve('lost');
  }
}

/** No reply arrived within the call's timeout. */
export class RpcTimeoutError extends WarrenError {
  constructor(readonly timeoutMs: number) {
    super('RPC_TIMEOUT', `no reply within ${timeoutMs} ms`);
  }
}

/** The client or supervisor was closed by its owner. */
export class ClosedError extends WarrenError {
  constructor(message: string, options?: Options) {
    super('CLOSED', message, options);
  }
}

/** Normalises whatever amqplib threw into a WarrenError. */
export function toBrokerError(err: unknown, what: string): WarrenError {
  if (err instanceof WarrenError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new BrokerUnavailableError(`${what}: ${detail}`, { cause: err });
}
