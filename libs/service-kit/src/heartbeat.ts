// Heartbeat announcer: tells every gateway, on a fanout exchange, that this instance is alive and where its metrics are.
import os from 'node:os';
import type { Attachment, Broker, ChannelModel, Publisher } from '@warren/messaging';
import type { Logger } from '@warren/observability';
import { HEARTBEAT_EXCHANGE, HEARTBEAT_TYPE, type Heartbeat } from '@warren/protocol';

export interface AnnouncerOptions {
  broker: Broker;
  publisher: Publisher;
  logger: Logger;
  beat: Omit<Heartbeat, 'state' | 'pid' | 'host'>;
}

export type { Heartbeat };

/** Extra beats after each (re)connect, before the regular interval takes over. */
const EARLY_BEATS_MS = [500, 1500];

export class HeartbeatAnnouncer implements Attachment {
  readonly name = 'heartbeat';
  private timer: NodeJS.Timeout | undefined;
  private readonly base: Omit<Heartbeat, 'state'>;

  constructor(private readonly options: AnnouncerOptions) {
    this.base = { ...options.beat, pid: process.pid, host: os.hostname() };
  }

  async start(): Promise<void> {
    await this.options.broker.add(this);
    this.timer = setInterval(() => void this.send('up'), this.base.intervalMs);
    this.timer.unref();
  }

  async attach(connection: ChannelModel): Promise<void> {
    const ch = await connection.createChannel();
    await ch.assertExchange(HEARTBEAT_EXCHANGE, 'fanout', { durable: true });
    await ch.close();
    // Announce at once after every (re)connect, and twice more soon after: a gateway that starts
    // (or reconnects) at the same moment may not have bound its registry queue for the first beat.
    setImmediate(() => void this.send('up'));
    for (const ms of EARLY_BEATS_MS) setTimeout(() => void this.send('up'), ms).unref();
  }

  detach(): void {}

  /** Last beat, saying this instance leaves, so gateways drop it at once. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.options.broker.remove(this);
    await this.send('stopping');
  }

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
          // RabbitMQ checks it against this connection's user: gateways believe beats by it.
          userId: this.options.broker.user,
          expiration: String(this.base.intervalMs * 3),
          mandatory: false,
        },
      );
    } catch (err) {
      this.options.logger.debug({ err }, 'heartbeat not sent');
    }
  }
}
