// Publisher: a confirm ManagedChannel; publish() resolves only once the broker confirmed, fails fast (typed) otherwise.
import type { Logger } from '@warren/observability';
import type { Broker } from './broker';
import { ManagedChannel } from './channel';
import type { PublishOptions } from './confirm';

export interface PublisherOptions {
  name?: string;
  logger: Logger;
  /** Bound on the wait for a broker confirm. Default 10 s. */
  confirmTimeoutMs?: number;
  /** Bound on a publish's wait for room in amqplib's buffer (flow control). Default 1 s. */
  flowTimeoutMs?: number;
}

export class Publisher {
  private constructor(
    /** The managed confirm channel (setups and `open` events, e.g. for the heartbeat). */
    readonly channel: ManagedChannel,
  ) {}

  static async create(broker: Broker, options: PublisherOptions): Promise<Publisher> {
    const channel = new ManagedChannel(broker, {
      name: options.name ?? 'publisher',
      logger: options.logger,
      confirm: true,
      confirmTimeoutMs: options.confirmTimeoutMs,
      flowTimeoutMs: options.flowTimeoutMs,
    });
    await channel.start();
    return new Publisher(channel);
  }

  /**
   * True while the confirm channel is open on a live connection. A connection blocked by a
   * resource alarm still counts (its publishes fail BROKER_BUSY); Broker.isUsable tells both.
   */
  get isReady(): boolean {
    return this.channel.isOpen;
  }

  /**
   * Publishes through `exchange` ('' = default exchange, routing key = queue name). Rejects at once
   * while disconnected (BROKER_UNAVAILABLE) or blocked (BROKER_BUSY); see ManagedChannel.publish.
   */
  publish(
    exchange: string,
    routingKey: string,
    body: Buffer,
    options?: PublishOptions,
  ): Promise<void> {
    return this.channel.publish(exchange, routingKey, body, options);
  }

  /** Publishes straight to a queue through the default exchange. */
  send(queue: string, body: Buffer, options?: PublishOptions): Promise<void> {
    return this.channel.publish('', queue, body, options);
  }

  close(): Promise<void> {
    return this.channel.close();
  }
}
