// DLQ tool tests: a raw connection, a service topology under a unique name, seeded dead letters.
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { connect, type Channel, type ChannelModel, type GetMessage } from 'amqplib';
import { declareServiceTopology } from '@warren/messaging';
import { deadLetterQueueName } from '@warren/protocol';
import { runCli } from '../../tools/dlq/src/cli';
import { testAmqpUrl, uniqueName } from '../support/broker';

export interface Fixture {
  url: string;
  conn: ChannelModel;
  ch: Channel;
  service: string;
  dlq: string;
  /** Publishes dead letters shaped like the service-kit's, resolves with their messageIds. */
  seed(n: number, extra?: (i: number) => Record<string, unknown>): Promise<string[]>;
  /** Takes every message off a queue (acked) and returns them in order. */
  drain(queue: string): Promise<GetMessage[]>;
  depth(queue: string): Promise<number>;
  cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  close(): Promise<void>;
}

function sink(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  return {
    stream: new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk.toString());
        cb();
      },
    }),
    text: () => chunks.join(''),
  };
}

export async function fixture(prefix = 'dlqtool', queueType?: 'quorum'): Promise<Fixture> {
  const url = await testAmqpUrl();
  const conn = await connect(url);
  const ch = await conn.createConfirmChannel();
  const service = uniqueName(prefix);
  const dlq = deadLetterQueueName(service);
  await declareServiceTopology(ch, {
    name: service,
    kind: 'durable',
    queueType,
    retryDelaysMs: [],
  });
  let seq = 0;
  return {
    url,
    conn,
    ch,
    service,
    dlq,
    async seed(n, extra) {
      const ids: string[] = [];
      for (let i = 0; i < n; i++) {
        const messageId = randomUUID();
        ids.push(messageId);
        const k = seq++;
        ch.sendToQueue(dlq, Buffer.from(JSON.stringify({ n: k })), {
          messageId,
          contentType: 'application/json',
          persistent: true,
          appId: 'gateway',
          timestamp: Math.floor(Date.now() / 1000),
          headers: {
            traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
            'x-request-id': messageId,
            'x-attempt': 5,
            'x-error-message': `boom ${k}`,
            'x-error-code': 'HANDLER_ERROR',
            'x-original-queue': service,
            'x-failed-at': new Date().toISOString(),
            ...extra?.(k),
          },
        });
      }
      await ch.waitForConfirms();
      return ids;
    },
    async drain(queue) {
      const out: GetMessage[] = [];
      for (;;) {
        const msg = await ch.get(queue, { noAck: true });
        if (msg === false) return out;
        out.push(msg);
      }
    },
    async depth(queue) {
      return (await ch.checkQueue(queue)).messageCount;
    },
    async cli(...args) {
      const stdout = sink();
      const stderr = sink();
      const code = await runCli(args, {
        stdout: stdout.stream,
        stderr: stderr.stream,
        env: { AMQP_URL: url },
      });
      return { code, stdout: stdout.text(), stderr: stderr.text() };
    },
    async close() {
      for (const q of [service, dlq]) await ch.deleteQueue(q).catch(() => undefined);
      await conn.close().catch(() => undefined);
    },
  };
}

export const ids = (msgs: GetMessage[]) => msgs.map((m) => String(m.properties.messageId));
