// @warren/service-kit/testing: run a service definition in-process against a real broker, with a client to call it and read its DLQ.
import { randomBytes, randomUUID } from 'node:crypto';
import {
  Broker,
  Publisher,
  RpcClient,
  type MessageProperties,
  type RpcReply,
} from '@warren/messaging';
import { createLogger } from '@warren/observability';
import { deadLetterQueueName, requestHeaders, retryQueueName } from '@warren/protocol';
import { DEFAULTS, type ServiceDefinition } from './define';
import { runService, type RunningService } from './run';

export interface Reply extends RpcReply {
  /** The body parsed as JSON. */
  json<T = unknown>(): T;
}

export interface DeadLetter {
  body: Buffer;
  properties: MessageProperties;
  headers: Record<string, unknown>;
}

export interface ServiceHarness {
  /** The unique queue (= service) name this run uses instead of the definition's. */
  readonly name: string;
  readonly url: string;
  readonly service: RunningService;
  /** Calls the service (request/reply); JSON-encodes anything but a Buffer or string. */
  call(body: unknown, options?: { timeoutMs?: number; contentType?: string }): Promise<Reply>;
  /** Publishes a plain message (no reply expected); resolves with its messageId once confirmed. */
  send(body: unknown, options?: { contentType?: string }): Promise<string>;
  /** Waits for the next message in the service's DLQ and takes it off the queue. */
  nextDeadLetter(timeoutMs?: number): Promise<DeadLetter>;
  /** Messages in one of the service's queues ('' = the main queue, '.dlq', '.retry.1000.v2', ...). */
  messageCount(suffix: string): Promise<number>;
  /** `mq_consumer_messages_total` of this service, by outcome. */
  outcomes(): Promise<Record<string, number>>;
  /** Stops the service and the client and deletes the test's queues. */
  stop(): Promise<void>;
}

function encode(body: unknown, contentType?: string): { bytes: Buffer; contentType: string } {
  if (Buffer.isBuffer(body))
    return { bytes: body, contentType: contentType ?? 'application/octet-stream' };
  if (typeof body === 'string')
    return { bytes: Buffer.from(body), contentType: contentType ?? 'text/plain' };
  return {
    bytes: Buffer.from(JSON.stringify(body)),
    contentType: contentType ?? 'application/json',
  };
}

export interface HarnessOptions {
  /** The broker; default `AMQP_URL`, else amqp://guest:guest@127.0.0.1:5672. */
  url?: string;
  /** More environment for the service (PREFETCH, QUEUE_TYPE, ...). */
  env?: Record<string, string>;
}

const LOCAL_BROKER = 'amqp://guest:guest@127.0.0.1:5672';

/** A name no other test run uses: `prefix-<8 hex>`, valid as a service name. */
export const uniqueName = (prefix: string): string => `${prefix}-${randomBytes(4).toString('hex')}`;

/** Polls `check` until it holds, or fails after `timeoutMs` naming `what`. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Starts `def` against a real broker under a unique name, with metrics on a free port and silent logs. */
export async function startServiceForTest(
  def: ServiceDefinition,
  options: HarnessOptions = {},
): Promise<ServiceHarness> {
  const url = options.url ?? (process.env.AMQP_URL || LOCAL_BROKER);
  const name = uniqueName(def.name.slice(0, 50));
  const service = await runService(
    { ...def, name },
    {
      env: { AMQP_URL: url, METRICS_PORT: '0', LOG_LEVEL: 'silent', ...options.env },
      handleSignals: false,
    },
  );
  const logger = createLogger({ service: 'test-client', level: 'silent' });
  const broker = await Broker.connect({ url, logger, connectionName: `test-client:${name}` });
  const publisher = await Publisher.create(broker, { logger });
  const rpc = await RpcClient.create(broker, { logger });
  const channel = await broker.connection().createChannel();
  const queues = [
    name,
    deadLetterQueueName(name),
    ...new Set((def.retryDelaysMs ?? DEFAULTS.retryDelaysMs).map((d) => retryQueueName(name, d))),
  ];

  const props = (contentType: string) => ({
    messageId: randomUUID(),
    contentType,
    timestamp: Math.floor(Date.now() / 1000),
    persistent: true,
    headers: requestHeaders(`test-${randomUUID()}`, undefined, Date.now()),
  });

  return {
    name,
    url,
    service,
    async call(body, opts = {}) {
      const { bytes, contentType } = encode(body, opts.contentType);
      const reply = await rpc.call(name, bytes, {
        ...props(contentType),
        timeoutMs: opts.timeoutMs ?? 5000,
      });
      return { ...reply, json: <T>() => JSON.parse(reply.body.toString('utf8')) as T };
    },
    async send(body, opts = {}) {
      const { bytes, contentType } = encode(body, opts.contentType);
      const p = props(contentType);
      await publisher.send(name, bytes, p);
      return p.messageId;
    },
    async nextDeadLetter(timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const msg = await channel.get(deadLetterQueueName(name), { noAck: true });
        if (msg) {
          return {
            body: msg.content,
            properties: msg.properties,
            headers: (msg.properties.headers ?? {}) as Record<string, unknown>,
          };
        }
        if (Date.now() > deadline)
          throw new Error(`nothing in ${deadLetterQueueName(name)} after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async messageCount(suffix) {
      return (await channel.checkQueue(name + suffix)).messageCount;
    },
    async outcomes() {
      const metric = service.registry.getSingleMetric('mq_consumer_messages_total');
      const out: Record<string, number> = {};
      for (const v of (await metric?.get())?.values ?? []) out[String(v.labels.outcome)] = v.value;
      return out;
    },
    async stop() {
      await service.stop();
      for (const q of queues) await channel.deleteQueue(q).catch(() => undefined);
      await rpc.close();
      await publisher.close();
      await broker.close();
    },
  };
}
