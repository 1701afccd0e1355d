// Publisher: a supervised confirm channel; publish() resolves only once the broker confirmed.
import type { ChannelModel } from 'amqplib';
import type { Logger } from '@warren/observability';
import type { Attachment, Broker } from './broker';
import { ConfirmedChannel, type PublishOptions } from './confirm';
import { BrokerUnavailableError } from './errors';

export interface PublisherOptions {
  name?: string;
  logger: Logger;
  /** Bound on the wait for a broker confirm. Default 10 s. */
  confirmTimeoutMs?: number;
}

export class Publisher implements Attachment {
  readonly name: string;
  private confirmed: ConfirmedChannel | undefined;

  private constructor(
    private readonly broker: Broker,
    private readonly options: PublisherOptions,
  ) {
    this.name = options.name ?? 'publisher';
  }

  static async create(broker: Broker, options: PublisherOptions): Promise<Publisher> {
    const publisher = new Publisher(broker, options);
    await broker.add(publisher);
    return publisher;
  }

  /** True while a confirm channel is open on a usable connection. */
  get isReady(): boolean {
    return this.broker.isUsable && this.confirmed?.isOpen === true;
  }

  async attach(connection: ChannelModel): Promise<void> {
    const channel = await connection.createConfirmChannel();
    channel.on('error', (err: Error) =>
      this.options.logger.warn({ err: { message: err.message } }, `${this.name} channel error`),
    );
    const confirmed = new ConfirmedChannel(channel, this.options.confirmTimeoutMs ?? 10_000);
    channel.on('close', () => {
      if (this.confirmed !== confirmed) return;
      this.confirmed = undefined;
      // A channel-level error on a live connection: open a fresh channel.
      if (this.broker.state === 'connected') this.reattach();
    });
    this.confirmed = confirmed;
  }

  detach(): void {
    this.confirmed = undefined;
  }

  /** Publishes through `exchange` ('' = default exchange, routing key = queue name). Fails fast when not connected. */
  publish(
    exchange: string,
    routingKey: string,
    body: Buffer,
    options?: PublishOptions,
  ): Promise<void> {
    const confirmed = this.confirmed;
    if (!confirmed || !this.broker.isUsable) {
      return Promise.reject(
        new BrokerUnavailableError('broker unavailable: not connected or blocked'),
      );
    }
    return confirmed.publish(exchange, routingKey, body, options);
  }

  /** Publishes straight to a queue through the default exchange. */
  send(queue: string, body: Buffer, options?: PublishOptions): Promise<void> {
    return this.publish('', queue, body, options);
  }

  async close(): Promise<void> {
    this.broker.remove(this);
    const c = this.confirmed;
    this.confirmed = undefined;
    await c?.channel.close().catch(() => undefined);
  }

  private reattach(): void {
    try {
      const conn = this.broker.connection();
      this.attach(conn).catch((err: unknown) =>
        this.options.logger.error({ err }, `${this.name}: cannot reopen channel`),
      );
    } catch {
      // Disconnected meanwhile: the supervisor re-attaches on reconnect.
    }
  }
}
