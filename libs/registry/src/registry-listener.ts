// Feeds the registry: an exclusive auto-delete queue per gateway instance, bound to the heartbeat fanout exchange.
import { ManagedChannel, type Broker, type Channel } from '@warren/messaging';
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

/**
 * A managed channel declares the exchange and the queue, binds and consumes on every (re)open;
 * after each open the registry is in grace for `graceMs`.
 */
export class RegistryListener {
  readonly queue: string;
  private graceUntil = 0;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly channel: ManagedChannel;

  private constructor(private readonly options: RegistryListenerOptions) {
    this.queue = registryQueueName(options.instanceId, options.queuePrefix);
    this.channel = new ManagedChannel(options.broker, {
      name: 'registry',
      logger: options.logger,
      setup: (ch) => this.declare(ch),
    });
  }

  static async start(options: RegistryListenerOptions): Promise<RegistryListener> {
    const listener = new RegistryListener(options);
    const { channel } = listener;
    const { registry, logger } = options;
    await channel.consume(
      listener.queue,
      (msg) => {
        const verdict = registry.apply(msg.content, msg.properties.userId);
        if (verdict !== 'accepted') listener.dropped(verdict, msg.properties.userId);
      },
      { noAck: true },
    );
    channel.on('open', () => {
      listener.graceUntil = Date.now() + options.graceMs;
      logger.info({ queue: listener.queue }, 'registry listening for heartbeats');
    });
    await channel.start();
    listener.sweeper = setInterval(() => registry.sweep(), options.sweepMs ?? 1000);
    listener.sweeper.unref();
    return listener;
  }

  get isConsuming(): boolean {
    return this.channel.isConsuming;
  }

  /** True shortly after a (re)connect, before every live service had a chance to beat. */
  get inGrace(): boolean {
    return Date.now() < this.graceUntil;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await this.channel.close();
  }

  private async declare(ch: Channel): Promise<void> {
    await ch.assertExchange(HEARTBEAT_EXCHANGE, 'fanout', { durable: true });
    await ch.assertQueue(this.queue, {
      exclusive: true,
      autoDelete: true,
      durable: false,
      // Beats are only useful fresh; bound the queue should this gateway stall.
      arguments: { 'x-max-length': 10_000, 'x-message-ttl': 60_000 },
    });
    await ch.bindQueue(this.queue, HEARTBEAT_EXCHANGE, '');
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
}
