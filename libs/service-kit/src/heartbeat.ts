// Heartbeat announcer: tells every gateway, on a fanout exchange, that this instance is alive and where its metrics are.
import os from 'node:os';
import type { Channel, Publisher } from '@warren/messaging';
import type { Logger } from '@warren/observability';
import { HEARTBEAT_EXCHANGE, HEARTBEAT_TYPE, type Heartbeat } from '@warren/protocol';

export interface AnnouncerOptions {
  /** Beats go out on the publisher's managed channel, which also declares the exchange on every open. */
  publisher: Publisher;
  /** The connection's broker user, stamped as AMQP `user-id` (the broker checks it; gateways believe beats by it). */
  userId: string;
  logger: Logger;
  beat: Omit<Heartbeat, 'state' | 'pid' | 'host'>;
}

export type { Heartbeat };

/** Extra beats after each (re)open, before the regular interval takes over. */
const EARLY_BEATS_MS = [500, 1500];

const declareExchange = async (ch: Channel): Promise<void> => {
  await ch.assertExchange(HEARTBEAT_EXCHANGE, 'fanout', { durable: true });
};

export class HeartbeatAnnouncer {
  private timer: NodeJS.Timeout | undefined;
  private readonly base: Omit<Heartbeat, 'state'>;

  constructor(private readonly options: AnnouncerOptions) {
    this.base = { ...options.beat, pid: process.pid, host: os.hostname() };
  }

  async start(): Promise<void> {
    const { channel } = this.options.publisher;
    await channel.addSetup(declareExchange);
    channel.on('open', this.announce);
    this.announce();
    this.timer = setInterval(() => void this.send('up'), this.base.intervalMs);
    this.timer.unref();
  }

  /** Last beat, saying this instance leaves, so gateways drop it at once. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    const { channel } = this.options.publisher;
    channel.off('open', this.announce);
    channel.removeSetup(declareExchange);
    await this.send('stopping');
  }

  /**
   * Announces at once after every (re)open, and twice more soon after: a gateway that starts (or
   * reconnects) at the same moment may not have bound its registry queue for the first beat.
   */
  private readonly announce = (): void => {
    setImmediate(() => void this.send('up'));
    for (const ms of EARLY_BEATS_MS) setTimeout(() => void this.send('up'), ms).unref();
  };

  private async send(state: Heartbeat['state']): Promise<void> {
    if (!this.options.publisher.isReady) return;
    const beat: Heartbeat = { ...this.base, state };
    try {
      await this.options.publisher.publish(
        HEARTBEAT_EXCHANGE,
        '',
        Buffer.from(JSON.stringify(beat)),
        {
          contentType: 'application/json',
          type: HEARTBEAT_TYPE,
          userId: this.options.userId,
          expiration: String(this.base.intervalMs * 3),
          mandatory: false,
        },
      );
    } catch (err) {
      this.options.logger.debug({ err }, 'heartbeat not sent');
    }
  }
}
