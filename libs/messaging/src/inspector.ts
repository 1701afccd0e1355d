// Asks the broker about a queue (passive declare): does it exist, how many consumers and messages it has.
import type { Channel, ChannelModel } from 'amqplib';
import type { Attachment, Broker } from './broker';
import { toBrokerError } from './errors';

export interface QueueState {
  consumers: number;
  messages: number;
}

/**
 * One lazily opened channel for passive declares. A missing queue makes the broker close the
 * channel (404): that answer is `undefined`, and the next question opens a new channel.
 */
export class QueueInspector implements Attachment {
  readonly name = 'queue-inspector';
  private connection: ChannelModel | undefined;
  private channel: Promise<Channel> | undefined;

  private constructor(private readonly broker: Broker) {}

  static async create(broker: Broker): Promise<QueueInspector> {
    const inspector = new QueueInspector(broker);
    await broker.add(inspector);
    return inspector;
  }

  attach(connection: ChannelModel): Promise<void> {
    this.connection = connection;
    this.channel = undefined;
    return Promise.resolve();
  }

  detach(): void {
    this.connection = undefined;
    this.channel = undefined;
  }

  /** The queue's state, or undefined when it does not exist; rejects (typed) when the broker is down. */
  async inspect(queue: string): Promise<QueueState | undefined> {
    const channel = await this.open();
    try {
      const ok = await channel.checkQueue(queue);
      return { consumers: ok.consumerCount, messages: ok.messageCount };
    } catch (err) {
      this.channel = undefined;
      if ((err as { code?: unknown }).code === 404) return undefined;
      throw toBrokerError(err, `inspect ${queue}`);
    }
  }

  async close(): Promise<void> {
    this.broker.remove(this);
    const ch = this.channel;
    this.channel = undefined;
    await ch?.then((c) => c.close()).catch(() => undefined);
  }

  private open(): Promise<Channel> {
    if (this.channel) return this.channel;
    const connection = this.connection;
    if (!connection) return Promise.reject(toBrokerError(new Error('not connected'), 'inspect'));
    const opening = connection.createChannel().then((ch) => {
      // Errors arrive as the rejected operation; the close clears the cached channel.
      ch.on('error', () => undefined);
      ch.on('close', () => {
        if (this.channel === opening) this.channel = undefined;
      });
      return ch;
    });
    opening.catch(() => {
      if (this.channel === opening) this.channel = undefined;
    });
    this.channel = opening;
    return opening;
  }
}
