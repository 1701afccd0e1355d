// Confirmed publish on one confirm channel: resolves on basic.ack, rejects typed on nack, return, loss or timeout.
import { randomUUID } from 'node:crypto';
import type { ConfirmChannel, Message, Options } from 'amqplib';
import {
  BrokerUnavailableError,
  type LateOutcome,
  PublishNackedError,
  PublishTimeoutError,
  UnroutableError,
  toBrokerError,
} from './errors';

export type PublishOptions = Omit<Options.Publish, 'mandatory'> & {
  /** Default true: a message no queue takes is an error, not a silent drop. */
  mandatory?: boolean;
};

/**
 * A copy of `options` with every field amqplib's publish reads, always in this order (other fields
 * are left out). On the per-message path this replaces `{ ...options, more }`: a spread followed by
 * more fields makes V8 build the copy the slow way, and amqplib then reads each of its 17 fields
 * from it (about 3 % of the gateway's CPU per call in a profile). Fields set afterwards keep the shape.
 */
export function copyPublishOptions(o: PublishOptions): PublishOptions {
  return {
    mandatory: o.mandatory,
    persistent: o.persistent,
    deliveryMode: o.deliveryMode,
    expiration: o.expiration,
    userId: o.userId,
    CC: o.CC,
    BCC: o.BCC,
    contentType: o.contentType,
    contentEncoding: o.contentEncoding,
    headers: o.headers,
    priority: o.priority,
    correlationId: o.correlationId,
    replyTo: o.replyTo,
    messageId: o.messageId,
    timestamp: o.timestamp,
    type: o.type,
    appId: o.appId,
  };
}

/**
 * A confirm channel plus the bookkeeping that turns basic.return into an error for the right publish.
 * RabbitMQ sends basic.return before the basic.ack of the same message, so a returned message is
 * remembered (by routing key and message id) until its confirm callback runs.
 */
export class ConfirmedChannel {
  private readonly returned = new Map<string, number>();
  private open = true;
  private room = true;
  /** Why the broker closed the channel (e.g. 404 for a missing exchange), for the failed publishes' errors. */
  private closeReason: string | undefined;
  /**
   * Publishes in publish order, from `head` on: those not yet settled wait for their confirm. A
   * slot is emptied as `head` passes it, so a settled publish (and the request its callbacks
   * reach) is not kept alive until the next compaction: held that long, such entries outlived
   * V8's young-generation collections and were copied into the old one, about 4 KB per request.
   */
  private readonly waiting: (PendingConfirm | undefined)[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly channel: ConfirmChannel,
    private readonly timeoutMs: number,
  ) {
    channel.on('return', (msg: Message) => {
      const key = returnKey(msg.fields.routingKey, msg.properties.messageId);
      this.returned.set(key, (this.returned.get(key) ?? 0) + 1);
    });
    channel.on('error', (err: Error) => {
      this.closeReason = err.message;
    });
    channel.on('close', () => {
      this.open = false;
    });
    channel.on('drain', () => {
      this.room = true;
    });
  }

  get isOpen(): boolean {
    return this.open;
  }

  /**
   * False after amqplib's `publish()` returned false (its buffer for this channel reached its
   * high-water mark), until the channel's `drain`. ManagedChannel hands over no message meanwhile.
   */
  get writable(): boolean {
    return this.open && this.room;
  }

  publish(
    exchange: string,
    routingKey: string,
    body: Buffer,
    options: PublishOptions = {},
  ): Promise<void> {
    if (!this.open) return Promise.reject(new BrokerUnavailableError('channel closed'));
    const mandatory = options.mandatory ?? true;
    // A mandatory message needs an id to match a basic.return to it; other messages (replies) go
    // without one unless the caller set it.
    const messageId = options.messageId ?? (mandatory ? randomUUID() : undefined);
    // A copy only when a default has to be filled in (callers that set both skip it).
    let props = options;
    if (options.mandatory === undefined || messageId !== options.messageId) {
      props = copyPublishOptions(options);
      props.messageId = messageId;
      props.mandatory = mandatory;
    }
    return new Promise<void>((resolve, reject) => {
      const entry = new PendingConfirm(Date.now() + this.timeoutMs, reject);
      this.waiting.push(entry);
      if (this.timer === undefined) this.arm();
      const onConfirm = (err: unknown): void => {
        const wasReturned =
          mandatory && this.returned.size > 0 && this.takeReturned(routingKey, messageId);
        if (entry.settled) {
          // Timed out earlier: its caller holds a promise of what became of it.
          entry.late?.(
            err
              ? String(err).includes('nack')
                ? 'refused'
                : 'lost'
              : wasReturned
                ? 'refused'
                : 'confirmed',
          );
          return;
        }
        entry.settled = true;
        this.dropSettled();
        if (err) {
          const message = err instanceof Error ? err.message : String(err);
          reject(
            message.includes('nack')
              ? new PublishNackedError(`broker refused the message for "${routingKey}"`)
              : new BrokerUnavailableError(
                  `publish not confirmed: ${this.closeReason ? `${message}: ${this.closeReason}` : message}`,
                  { cause: err },
                ),
          );
        } else if (wasReturned) {
          reject(new UnroutableError(routingKey));
        } else {
          resolve();
        }
      };
      try {
        if (!this.channel.publish(exchange, routingKey, body, props, onConfirm)) this.room = false;
      } catch (err) {
        entry.settled = true;
        this.dropSettled();
        reject(toBrokerError(err, 'publish failed'));
      }
    });
  }

  /** Publishes waiting for their confirm (tests and diagnostics). */
  get unconfirmed(): number {
    let n = 0;
    for (let i = this.head; i < this.waiting.length; i++)
      if (!(this.waiting[i] as PendingConfirm).settled) n++;
    return n;
  }

  /**
   * One timer for every publish's confirm deadline, not one per publish: deadlines grow in publish
   * order, so the oldest unsettled publish is the next to time out. Confirms also come in publish
   * order, so settled entries leave from the front as they come.
   */
  private arm(): void {
    const next = this.waiting[this.head];
    if (next === undefined) return;
    this.timer = setTimeout(this.expire, Math.max(0, next.deadline - Date.now()));
    // It may outlive the publishes it was armed for: it must not keep the process alive (a
    // publish waiting for its confirm has an open socket that does).
    this.timer.unref();
  }

  private readonly expire = (): void => {
    this.timer = undefined;
    const now = Date.now();
    while (this.head < this.waiting.length) {
      const entry = this.waiting[this.head] as PendingConfirm;
      if (!entry.settled) {
        if (entry.deadline > now) break;
        entry.settled = true;
        const late = new Promise<LateOutcome>((resolve) => (entry.late = resolve));
        entry.reject(
          new PublishTimeoutError(
            `no broker confirm within ${this.timeoutMs} ms; the outcome is unknown (the broker may still take it)`,
            { late },
          ),
        );
      }
      this.waiting[this.head++] = undefined;
    }
    this.compact();
    this.arm();
  };

  private dropSettled(): void {
    while (this.head < this.waiting.length && (this.waiting[this.head] as PendingConfirm).settled)
      this.waiting[this.head++] = undefined;
    this.compact();
  }

  private compact(): void {
    if (this.head === this.waiting.length) {
      this.waiting.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting.splice(0, this.head);
      this.head = 0;
    }
  }

  private takeReturned(routingKey: string, messageId: unknown): boolean {
    const key = returnKey(routingKey, messageId);
    const n = this.returned.get(key);
    if (!n) return false;
    if (n === 1) this.returned.delete(key);
    else this.returned.set(key, n - 1);
    return true;
  }
}

/** A publish waiting for its confirm (or its deadline). */
class PendingConfirm {
  settled = false;
  /** Set when it timed out: called with the outcome its confirm callback brings later. */
  late: ((outcome: LateOutcome) => void) | undefined;
  constructor(
    readonly deadline: number,
    readonly reject: (err: Error) => void,
  ) {}
}

function returnKey(routingKey: string, messageId: unknown): string {
  return `${routingKey}\u0000${String(messageId)}`;
}
