// Consumer: a ManagedChannel that declares its topology and sets prefetch on every open, and consumes with manual ack.
import type { Channel, ConsumeMessage, MessageProperties } from 'amqplib';
import type { Logger } from '@warren/observability';
import type { Broker } from './broker';
import { ManagedChannel, type ChannelLink } from './channel';

/** One message as handed to the application; ack/nack go to the channel it came from. */
export interface Delivery {
  readonly body: Buffer;
  readonly properties: MessageProperties;
  /** The exchange it was published to ('' = the default exchange, i.e. straight to the queue). */
  readonly exchange: string;
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

/**
 * A broker that cancels the consumer (its queue deleted) makes the managed channel reopen, which
 * declares the queue again and consumes from it; the cancel is logged and emitted (`cancelled`).
 */
export class Consumer {
  private constructor(
    /** The managed channel (events: open, lost, cancelled). */
    readonly channel: ManagedChannel,
  ) {}

  static async create(broker: Broker, options: ConsumerOptions): Promise<Consumer> {
    const { logger, queue, prefetch } = options;
    const channel = new ManagedChannel(broker, {
      name: options.name ?? `consumer:${queue}`,
      logger,
      setup: async (ch) => {
        await options.declare(ch);
        await ch.prefetch(prefetch, false);
      },
    });
    const onMessage = options.onMessage;
    const context: DeliveryContext = { logger, queue };
    await channel.consume(
      queue,
      (msg, link) => onMessage(new ChannelDelivery(msg, link, context)),
      { noAck: false },
    );
    channel.on('open', () => logger.info({ queue, prefetch }, 'consuming'));
    await channel.start();
    return new Consumer(channel);
  }

  /** True while a consumer is registered on an open channel of a live connection. */
  get isConsuming(): boolean {
    return this.channel.isConsuming;
  }

  /** Stops taking new messages; the channel stays open so in-flight messages can still be acked. */
  cancel(): Promise<void> {
    return this.channel.cancelConsumers();
  }

  async close(): Promise<void> {
    await this.cancel();
    await this.channel.close();
  }
}

/** What a delivery needs to log a skipped settle (one object per consumer, shared). */
interface DeliveryContext {
  readonly logger: Logger;
  readonly queue: string;
}

/** A delivery settled at most once, on its own channel (a class: no closures per message). */
class ChannelDelivery implements Delivery {
  readonly body: Buffer;
  readonly properties: MessageProperties;
  readonly exchange: string;
  readonly routingKey: string;
  readonly redelivered: boolean;
  private settled = false;

  constructor(
    private readonly msg: ConsumeMessage,
    private readonly link: ChannelLink,
    private readonly context: DeliveryContext,
  ) {
    this.body = msg.content;
    this.properties = msg.properties;
    this.exchange = msg.fields.exchange;
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
    this.context.logger.warn(
      { queue: this.context.queue, messageId: this.properties.messageId },
      `${what} skipped: channel closed; broker will redeliver`,
    );
    return false;
  }
}
