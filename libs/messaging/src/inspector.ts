// Asks the broker about a queue (passive declare): does it exist, how many consumers and messages it has.
import type { Logger } from '@warren/observability';
import type { Broker } from './broker';
import { ManagedChannel } from './channel';
import { toBrokerError } from './errors';

export interface QueueState {
  consumers: number;
  messages: number;
}

export interface QueueInspectorOptions {
  logger: Logger;
  /** Longest wait for the channel while it reopens (after a 404). Default 1 s. */
  openTimeoutMs?: number;
}

/**
 * Passive declares on one managed channel. A missing queue makes the broker close the channel
 * (404): that answer is `undefined`, and the managed channel reopens at once for the next question.
 */
export class QueueInspector {
  private constructor(
    private readonly channel: ManagedChannel,
    private readonly openTimeoutMs: number,
  ) {}

  static async create(broker: Broker, options: QueueInspectorOptions): Promise<QueueInspector> {
    const channel = new ManagedChannel(broker, {
      name: 'queue-inspector',
      logger: options.logger,
      // A 404 is an answer here, not trouble.
      quietCloseCodes: [404],
    });
    await channel.start();
    return new QueueInspector(channel, options.openTimeoutMs ?? 1000);
  }

  /** The queue's state, or undefined when it does not exist; rejects (typed) when the broker is down. */
  async inspect(queue: string): Promise<QueueState | undefined> {
    const channel = await this.channel.whenOpen(this.openTimeoutMs);
    try {
      const ok = await channel.checkQueue(queue);
      return { consumers: ok.consumerCount, messages: ok.messageCount };
    } catch (err) {
      if ((err as { code?: unknown }).code === 404) return undefined;
      throw toBrokerError(err, `inspect ${queue}`);
    }
  }

  close(): Promise<void> {
    return this.channel.close();
  }
}
