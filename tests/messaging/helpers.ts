// Shared bits for the messaging integration tests: a silent logger and a raw amqplib connection.
import { Writable } from 'node:stream';
import { connect, type ChannelModel } from 'amqplib';
import { createLogger, type Logger } from '@warren/observability';
import { Broker, Publisher } from '@warren/messaging';
import { testAmqpUrl } from '../support/broker';
import { stopAll } from '../support/processes';

/** A logger whose lines are kept in memory (for assertions) instead of printed. */
export function memoryLogger(service = 'test'): {
  logger: Logger;
  lines: () => Record<string, unknown>[];
} {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const logger = createLogger({ service, level: 'debug', destination });
  return {
    logger,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

export async function rawConnection(url: string): Promise<ChannelModel> {
  return connect(url);
}

export interface TestBroker {
  url(): string;
  publisher(): Publisher;
  /** Ready messages in `queue`. */
  depth(queue: string): Promise<number>;
  /** Queues deleted after the file's tests. */
  cleanup(...queues: string[]): void;
}

/**
 * A test file's broker clients: a Publisher and a raw connection opened before its tests; after
 * them every started process is stopped and the registered queues are deleted.
 */
export function useTestBroker(connectionName: string): TestBroker {
  let url = '';
  let raw: ChannelModel | undefined;
  let broker: Broker | undefined;
  let publisher: Publisher | undefined;
  const queues: string[] = [];
  beforeAll(async () => {
    url = await testAmqpUrl();
    raw = await rawConnection(url);
    const { logger } = memoryLogger();
    broker = await Broker.connect({ url, logger, connectionName });
    publisher = await Publisher.create(broker, { logger });
  });
  afterAll(async () => {
    await stopAll();
    if (raw) {
      const ch = await raw.createChannel();
      for (const q of queues) await ch.deleteQueue(q).catch(() => undefined);
      await raw.close();
    }
    await publisher?.close();
    await broker?.close();
  });
  const need = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('useTestBroker: used outside a test');
    return v;
  };
  return {
    url: () => url,
    publisher: () => need(publisher),
    depth: async (queue) => {
      const ch = await need(raw).createChannel();
      const { messageCount } = await ch.checkQueue(queue);
      await ch.close();
      return messageCount;
    },
    cleanup: (...names) => void queues.push(...names),
  };
}
