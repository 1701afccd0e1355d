// Plain amqplib access for the scenarios: queue depths, reading a DLQ, cleaning up.
import { connect, type ChannelModel, type GetMessage } from 'amqplib';
import { retryQueueName } from '@warren/protocol';
import { DEFAULTS } from '@warren/service-kit';
import { testAmqpUrl } from '../../support/broker';
import { stopAll } from '../../support/processes';

export class Amqp {
  private constructor(readonly conn: ChannelModel) {}

  static async open(url: string): Promise<Amqp> {
    return new Amqp(await connect(url));
  }

  /** Ready messages in `queue` (undefined when the queue does not exist). */
  async depth(queue: string): Promise<number | undefined> {
    const ch = await this.conn.createChannel();
    ch.on('error', () => undefined);
    try {
      const { messageCount } = await ch.checkQueue(queue);
      await ch.close();
      return messageCount;
    } catch {
      return undefined;
    }
  }

  /** Takes every message currently in `queue` (acked). */
  async drain(queue: string): Promise<GetMessage[]> {
    const ch = await this.conn.createChannel();
    const out: GetMessage[] = [];
    for (;;) {
      const msg = await ch.get(queue, { noAck: true });
      if (!msg) break;
      out.push(msg);
    }
    await ch.close();
    return out;
  }

  async deleteQueues(...names: string[]): Promise<void> {
    const ch = await this.conn.createChannel();
    ch.on('error', () => undefined);
    for (const n of names) await ch.deleteQueue(n).catch(() => undefined);
    await ch.close().catch(() => undefined);
  }

  /** The queues runService declares for a service with these retry delays (default: service-kit's). */
  async deleteServiceQueues(
    name: string,
    retryDelaysMs: readonly number[] = DEFAULTS.retryDelaysMs,
  ): Promise<void> {
    await this.deleteQueues(
      name,
      `${name}.dlq`,
      ...retryDelaysMs.map((d) => retryQueueName(name, d)),
    );
  }

  async close(): Promise<void> {
    await this.conn.close().catch(() => undefined);
  }
}

/**
 * A scenario file's broker client: opened before its tests; after them every process the file
 * started is stopped and the service's queues are deleted. Returns a getter for the client.
 */
export function scenarioBroker(
  name: string,
  retryDelaysMs: readonly number[] = DEFAULTS.retryDelaysMs,
): () => Amqp {
  let amqp: Amqp | undefined;
  beforeAll(async () => {
    amqp = await Amqp.open(await testAmqpUrl());
  });
  afterAll(async () => {
    await stopAll();
    await amqp?.deleteServiceQueues(name, retryDelaysMs);
    await amqp?.close();
  });
  return () => {
    if (!amqp) throw new Error('scenarioBroker: used outside a test');
    return amqp;
  };
}
