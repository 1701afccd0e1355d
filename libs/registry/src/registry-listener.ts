// Feeds the registry: an exclusive auto-delete queue per gateway instance, bound to the heartbeat fanout exchange.
import type { Attachment, Broker, ChannelModel } from '@warren/messaging';
import type { Logger } from '@warren/observability';
import { HEARTBEAT_EXCHANGE, registryQueueName } from '@warren/protocol';
import type { BeatVerdict, ServiceRegistry } from './registry';
import { Throttle } from './throttle';

export interface RegistryListenerOptions {
  broker: Broker;
  registry: ServiceRegistry;
  instanceId: string;
  logger: Logger;
  /** After each (re)connect, services the registry has not heard from yet are still tried for this long. */
  graceMs: number;
  /** The queue's name prefix (default `warren.gateway.registry`; the console has its own). */
  queuePrefix?: string;
  /** Expired instances are swept this often. Default 1000 ms. */
  sweepMs?: number;
  /** Told about every beat dropped, with the reason (metrics). */
  onDropped?: (reason: Exclude<BeatVerdict, 'accepted'>) => void;
}

/** Dropped beats are logged at most this often (a flood must not flood the log too). */
const DROP_LOG_INTERVAL_MS = 10_000;

export class RegistryListener implements Attachment {
  readonly name = 'registry';
  readonly queue: string;
  private consuming = false;
  private closed = false;
  private graceUntil = 0;
  private sweeper: NodeJS.Timeout | undefined;
  private channel: Awaited<ReturnType<ChannelModel['createChannel']>> | undefined;

  private constructor(private readonly options: RegistryListenerOptions) {
    this.queue = registryQueueName(options.instanceId, options.queuePrefix);
  }

  static async start(options: RegistryListenerOptions): Promise<RegistryListener> {
    const listener = new RegistryListener(options);
    await options.broker.add(listener);
    listener.sweeper = setInterval(() => options.registry.sweep(), options.sweepMs ?? 1000);
    listener.sweeper.unref();
    return listener;
  }

  get isConsuming(): boolean {
    return this.consuming && this.options.broker.state === 'connected';
  }

  /** True shortly after a (re)connect, before every live service had a chance to beat. */
  get inGrace(): boolean {
    return Date.now() < this.graceUntil;
  }

  async attach(connection: ChannelModel): Promise<void> {
    if (this.closed) return;
    const { logger, registry } = this.options;
    const ch = await connection.createChannel();
    ch.on('error', (err: Error) =>
      logger.warn({ err: { message: err.message } }, 'registry channel error'),
    );
    ch.on('close', () => {
      if (this.channel !== ch) return;
      this.channel = undefined;
      this.consuming = false;
      if (!this.closed && this.options.broker.state === 'connected') this.reattachSoon();
    });
    await ch.assertExchange(HEARTBEAT_EXCHANGE, 'fanout', { durable: true });
    await ch.assertQueue(this.queue, {
      exclusive: true,
      autoDelete: true,
      durable: false,
      // Beats are only useful fresh; bound the queue should this gateway stall.
      arguments: { 'x-max-length': 10_000, 'x-message-ttl': 60_000 },
    });
    await ch.bindQueue(this.queue, HEARTBEAT_EXCHANGE, '');
    await ch.consume(
      this.queue,
      (msg) => {
        if (!msg) return;
        const verdict = registry.apply(msg.content, msg.properties.userId);
        if (verdict !== 'accepted') this.dropped(verdict, msg.properties.userId);
      },
      { noAck: true },
    );
    this.channel = ch;
    this.consuming = true;
    this.graceUntil = Date.now() + this.options.graceMs;
    logger.info({ queue: this.queue }, 'registry listening for heartbeats');
  }

  detach(): void {
    this.channel = undefined;
    this.consuming = false;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    this.options.broker.remove(this);
    const ch = this.channel;
    this.channel = undefined;
    this.consuming = false;
    await ch?.close().catch(() => undefined);
  }

  private readonly dropLog = new Throttle(DROP_LOG_INTERVAL_MS);

  private dropped(reason: Exclude<BeatVerdict, 'accepted'>, userId: unknown): void {
    this.options.onDropped?.(reason);
    const suppressed = this.dropLog.take();
    if (suppressed === undefined) return;
    this.options.logger.warn(
      {
        reason,
        userId: typeof userId === 'string' ? userId.slice(0, 64) : undefined,
        suppressed,
      },
      'dropped a heartbeat (latest reason; count held back since the last such line)',
    );
  }

  private reattachSoon(): void {
    setTimeout(() => {
      if (this.closed || this.channel) return;
      try {
        this.attach(this.options.broker.connection()).catch((err: unknown) => {
          this.options.logger.error({ err }, 'registry: cannot resume consuming; retrying');
          this.reattachSoon();
        });
      } catch {
        // Disconnected: the supervisor re-attaches on reconnect.
      }
    }, 1000).unref();
  }
}
