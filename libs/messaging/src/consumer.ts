// Consumer: a supervised channel that declares its topology, sets prefetch and consumes with manual ack.
import type { Channel, ChannelModel, ConsumeMessage, MessageProperties } from 'amqplib';
import type { Logger } from '@warren/observability';
import type { Attachment, Broker } from './broker';

/** One message as handed to the application; ack/nack go to the channel it came from. */
export interface Delivery {
  readonly body: Buffer;
  readonly properties: MessageProperties;
  readonly routingKey: string;
  readonly redelivered: boolean;
  /** Acks once; a no-op (logged) when the channel is gone, as the broker will redeliver. */
  ack(): void;
  /** Negative ack; `requeue` false drops (or dead-letters, if the queue has a DLX). */
  nack(requeue: boolean): void;
}

export interface ConsumerOptions {
  name?: string;
  queue: string;
  prefetch: number;
  logger: Logger;
  /** Declares the queue (and retry/DLQ queues) on each new channel before consuming. */
  declare: (channel: Channel) => Promise<void>;
  onMessage: (delivery: Delivery) => void;
}

export class Consumer implements Attachment {
  readonly name: string;
  private channel: Channel | undefined;
  private consumerTag: string | undefined;
  private stopped = false;

  private constructor(
    private readonly broker: Broker,
    private readonly options: ConsumerOptions,
  ) {
    this.name = options.name ?? `consumer:${options.queue}`;
  }

  static async create(broker: Broker, options: ConsumerOptions): Promise<Consumer> {
    const consumer = new Consumer(broker, options);
    await broker.add(consumer);
    return consumer;
  }

  /** True while a consumer is registered on a live channel. */
  get isConsuming(): boolean {
    return this.consumerTag !== undefined && this.broker.state === 'connected';
  }

  async attach(connection: ChannelModel): Promise<void> {
    if (this.stopped) return;
    const { logger, queue } = this.options;
    const channel = await connection.createChannel();
    const link: ChannelLink = { channel, open: true, logger, queue };
    channel.on('error', (err: Error) =>
      logger.warn({ err: { message: err.message } }, `${this.name} channel error`),
    );
    channel.on('close', () => {
      link.open = false;
      if (this.channel !== channel) return;
      this.channel = undefined;
      this.consumerTag = undefined;
      if (!this.stopped && this.broker.state === 'connected') this.reattachSoon();
    });
    await this.options.declare(channel);
    await channel.prefetch(this.options.prefetch, false);
    const onMessage = this.options.onMessage;
    const { consumerTag } = await channel.consume(
      queue,
      (msg: ConsumeMessage | null) => {
        if (msg === null) {
          // Cancelled by the broker (queue deleted, node lost): consume again on a fresh channel.
          logger.warn({ queue }, 'consumer cancelled by the broker');
          this.consumerTag = undefined;
          channel.close().catch(() => undefined);
          return;
        }
        onMessage(new ChannelDelivery(msg, link));
      },
      { noAck: false },
    );
    this.channel = channel;
    this.consumerTag = consumerTag;
    logger.info({ queue, prefetch: this.options.prefetch }, 'consuming');
  }

  detach(): void {
    this.channel = undefined;
    this.consumerTag = undefined;
  }

  /** Stops taking new messages; the channel stays open so in-flight messages can still be acked. */
  async cancel(): Promise<void> {
    this.stopped = true;
    const { channel, consumerTag } = this;
    this.consumerTag = undefined;
    if (channel && consumerTag) await channel.cancel(consumerTag).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.cancel();
    this.broker.remove(this);
    const channel = this.channel;
    this.channel = undefined;
    await channel?.close().catch(() => undefined);
  }

  private reattachSoon(): void {
    setTimeout(() => {
      if (this.stopped || this.channel) return;
      try {
        this.attach(this.broker.connection()).catch((err: unknown) => {
          this.options.logger.error({ err }, `${this.name}: cannot resume consuming; retrying`);
          this.reattachSoon();
        });
      } catch {
        // Disconnected: the supervisor re-attaches on reconnect.
      }
    }, 1000).unref();
  }
}

/** The channel a delivery came from, and whether it is still open (shared by its deliveries). */
interface ChannelLink {
  readonly channel: Channel;
  open: boolean;
  readonly logger: Logger;
  readonly queue: string;
}

/** A delivery settled at most once, on its own channel (a class: no closures per message). */
class ChannelDelivery implements Delivery {
  readonly body: Buffer;
  readonly properties: MessageProperties;
  readonly routingKey: string;
  readonly redelivered: boolean;
  private settled = false;

  constructor(
    private readonly msg: ConsumeMessage,
    private readonly link: ChannelLink,
  ) {
    this.body = msg.content;
    this.properties = msg.properties;
    this.routingKey = msg.fields.routingKey;
    this.redelivered = msg.fields.redelivered;
  }

  ack(): void {
    if (this.begin('ack')) this.link.channel.ack(this.msg);
  }

  nack(requeue: boolean): void {
    if (this.begin('nack')) this.link.channel.nack(this.msg, false, requeue);
  }

  /** True when the settle may go ahead: the first one, on a channel that is still open. */
  private begin(what: string): boolean {
    if (this.settled) return false;
    this.settled = true;
    if (this.link.open) return true;
    this.link.logger.warn(
      { queue: this.link.queue, messageId: this.properties.messageId },
      `${what} skipped: channel closed; broker will redeliver`,
    );
    return false;
  }
}
