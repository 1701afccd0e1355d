// Confirmed publish on one confirm channel: resolves on basic.ack, rejects typed on nack, return, loss or timeout.
import { randomUUID } from 'node:crypto';
import type { ConfirmChannel, Message, Options } from 'amqplib';
import {
  BrokerUnavailableError,
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
    const messageId = options.messageId ?? randomUUID();
    const mandatory = options.mandatory ?? true;
    // A copy only when a default has to be filled in (callers that set both skip it).
    const props =
      options.messageId === undefined || options.mandatory === undefined
        ? { ...options, messageId, mandatory }
        : options;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        reject(
          new PublishTimeoutError(
            `no broker confirm within ${this.timeoutMs} ms; the outcome is unknown (the broker may still take it)`,
          ),
        );
      }, this.timeoutMs);
      const onConfirm = (err: unknown): void => {
        const wasReturned =
          mandatory && this.returned.size > 0 && this.takeReturned(routingKey, messageId);
        if (settled) return;
        settled = true;
        clearTimeout(timer);
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
        settled = true;
        clearTimeout(timer);
        reject(toBrokerError(err, 'publish failed'));
      }
    });
  }

  private takeReturned(routingKey: string, messageId: string): boolean {
    const key = returnKey(routingKey, messageId);
    const n = this.returned.get(key);
    if (!n) return false;
    if (n === 1) this.returned.delete(key);
    else this.returned.set(key, n - 1);
    return true;
  }
}

function returnKey(routingKey: string, messageId: unknown): string {
  return `${routingKey}\u0000${String(messageId)}`;
}
