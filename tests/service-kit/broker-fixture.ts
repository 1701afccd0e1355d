// The broker side of the service-kit tests: a client connection (publisher, RPC), a raw connection, and cleanup of the services and queues a test made.
import type { ChannelModel } from 'amqplib';
import { Broker, Publisher, RpcClient } from '@warren/messaging';
import type { RunningService } from '@warren/service-kit';
import { testAmqpUrl } from '../support/broker';
import { memoryLogger, rawConnection } from '../messaging/helpers';

export interface BrokerFixture {
  url: string;
  raw: ChannelModel;
  broker: Broker;
  publisher: Publisher;
  rpc: RpcClient;
  /** Services started by the test: stopped after all. */
  running: RunningService[];
  /** Queues declared by the test: deleted after all. */
  cleanup: string[];
  /** Messages ready in `queue`. */
  depth(queue: string): Promise<number>;
}

/** Registers beforeAll/afterAll; the fields are set once beforeAll ran. */
export function brokerFixture(connectionName: string): BrokerFixture {
  const f = { running: [], cleanup: [] } as unknown as BrokerFixture;
  f.depth = async (queue) => {
    const ch = await f.raw.createChannel();
    const { messageCount } = await ch.checkQueue(queue);
    await ch.close();
    return messageCount;
  };
  beforeAll(async () => {
    f.url = await testAmqpUrl();
    f.raw = await rawConnection(f.url);
    const { logger } = memoryLogger();
    f.broker = await Broker.connect({ url: f.url, logger, connectionName });
    f.publisher = await Publisher.create(f.broker, { logger });
    f.rpc = await RpcClient.create(f.broker, { logger });
  });
  afterAll(async () => {
    for (const s of f.running) await s.stop();
    const ch = await f.raw.createChannel();
    for (const q of f.cleanup) await ch.deleteQueue(q).catch(() => undefined);
    await f.raw.close();
    await f.rpc.close();
    await f.publisher.close();
    await f.broker.close();
  });
  return f;
}
