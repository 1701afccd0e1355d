// A misbehaving service for trust-boundary tests: declares its queue, announces itself, then replies and beats as told.
import {
  connect,
  type Channel,
  type ChannelModel,
  type ConsumeMessage,
  type Options,
} from 'amqplib';
import { HEARTBEAT_EXCHANGE, HEARTBEAT_TYPE } from '@warren/protocol';

export interface BeatBody {
  service: string;
  instanceId: string;
  metricsUrl?: string;
  intervalMs?: number;
  state?: 'up' | 'stopping';
}

/** What the rogue does with each call to its own queue: the reply's body and properties, or nothing. */
export type CallHandler = (
  msg: ConsumeMessage,
) => { body: Buffer; properties?: Options.Publish } | undefined;

export class RogueService {
  /** Every call this service received (reply-to and correlation id are what a rogue can observe). */
  readonly calls: ConsumeMessage[] = [];
  private handler: CallHandler = () => undefined;

  private constructor(
    readonly name: string,
    readonly user: string,
    private readonly conn: ChannelModel,
    readonly ch: Channel,
  ) {}

  /** Connects as `url`'s user, declares `name` (auto-delete) and consumes it. */
  static async start(url: string, name: string): Promise<RogueService> {
    const conn = await connect(url);
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    const user = decodeURIComponent(new URL(url).username) || 'guest';
    const rogue = new RogueService(name, user, conn, ch);
    await ch.assertExchange(HEARTBEAT_EXCHANGE, 'fanout', { durable: true });
    await ch.assertQueue(name, { durable: false, autoDelete: true });
    await ch.consume(
      name,
      (msg) => {
        if (!msg) return;
        rogue.calls.push(msg);
        const out = rogue.handler(msg);
        if (out && msg.properties.replyTo)
          rogue.reply(
            msg.properties.replyTo as string,
            msg.properties.correlationId,
            out.body,
            out.properties,
          );
      },
      { noAck: true },
    );
    return rogue;
  }

  /** How the next calls are answered. */
  onCall(handler: CallHandler): void {
    this.handler = handler;
  }

  /** Publishes a reply to any reply-to with any correlation id (signed with this user unless told otherwise). */
  reply(
    replyTo: string,
    correlationId: unknown,
    body: Buffer,
    properties: Options.Publish = {},
  ): void {
    this.ch.sendToQueue(replyTo, body, {
      correlationId: typeof correlationId === 'string' ? correlationId : undefined,
      userId: this.user,
      ...properties,
    });
  }

  /** Publishes a heartbeat body (object or raw bytes) on the heartbeat exchange, signed with this user. */
  beat(body: BeatBody | Buffer, properties: Options.Publish = {}): boolean {
    const bytes = Buffer.isBuffer(body)
      ? body
      : Buffer.from(
          JSON.stringify({
            host: 'rogue-host',
            version: '6.6.6',
            queue: body.service,
            pid: 1,
            startedAt: new Date().toISOString(),
            metricsUrl: body.metricsUrl ?? 'http://10.66.6.6:9464/metrics',
            intervalMs: body.intervalMs ?? 60_000,
            state: body.state ?? 'up',
            ...body,
          }),
        );
    return this.ch.publish(HEARTBEAT_EXCHANGE, '', bytes, {
      contentType: 'application/json',
      type: HEARTBEAT_TYPE,
      userId: this.user,
      ...properties,
    });
  }

  async close(): Promise<void> {
    await this.conn.close().catch(() => undefined);
  }
}
