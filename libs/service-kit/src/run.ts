// runService(): connect, declare, consume, serve metrics, announce, and drain on SIGTERM/SIGINT.
import { randomUUID } from 'node:crypto';
import type { DestinationStream } from 'pino';
import {
  Broker,
  Consumer,
  Publisher,
  RpcClient,
  declareServiceTopology,
  type QueueSpec,
} from '@warren/messaging';
import {
  consumerMetrics,
  createLogger,
  createRegistry,
  messagingMetrics,
  startOpsServer,
  type Logger,
  type Registry,
} from '@warren/observability';
import { SenderPolicy } from '@warren/protocol';
import { DEFAULTS, type ServiceDefinition } from './define';
import { parseServiceConfig, type ServiceConfig } from './config';
import { Processor } from './processor';
import { HeartbeatAnnouncer } from './heartbeat';
import { createServiceClient } from './client';

export interface RunOptions {
  /** Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Install SIGTERM/SIGINT handlers that drain and exit (default true). */
  handleSignals?: boolean;
  /** Log destination (tests); stdout by default. */
  logDestination?: DestinationStream;
}

export interface RunningService {
  readonly name: string;
  readonly instanceId: string;
  readonly config: ServiceConfig;
  readonly opsPort: number;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly broker: Broker;
  isReady(): boolean;
  /** Graceful stop: stop consuming, drain in-flight messages, close. Resolves true if drained in time. */
  stop(): Promise<boolean>;
}

export async function runService(
  def: ServiceDefinition,
  options: RunOptions = {},
): Promise<RunningService> {
  const config = parseServiceConfig(options.env ?? process.env);
  const instanceId = randomUUID();
  const logger = createLogger({
    service: def.name,
    level: config.logLevel,
    destination: options.logDestination,
  });
  const registry = createRegistry(def.name);
  const metrics = consumerMetrics(registry);
  const mq = messagingMetrics(registry);

  const broker = await Broker.connect({
    url: config.amqpUrl,
    logger,
    connectionName: `${def.name}:${instanceId}`,
    initialRetries: config.connectRetries,
    onReconnect: () => mq.reconnects.inc(),
  });
  const publisher = await Publisher.create(broker, { logger });
  let rpc: Promise<RpcClient> | undefined;
  const getRpc = () =>
    (rpc ??= RpcClient.create(broker, {
      logger,
      onPendingChange: (n) => mq.rpcPending.set(n),
      onLateReply: () => mq.rpcLateReplies.inc(),
      onRejectedReply: (queue, reason) =>
        logger.warn({ queue, reason }, 'refused a reply to a call of this service'),
      senders: new SenderPolicy({ ownUser: broker.user, users: config.serviceUsers }),
    }));

  const spec: QueueSpec = {
    name: def.name,
    kind: def.queue?.kind ?? 'durable',
    queueType: def.queue?.queueType ?? config.queueType,
    deliveryLimit: def.queue?.deliveryLimit,
    maxLength: def.queue?.maxLength,
    overflow: def.queue?.overflow,
    retryDelaysMs: def.retryDelaysMs ?? DEFAULTS.retryDelaysMs,
  };
  const processor = new Processor({
    def,
    queue: def.name,
    publisher,
    userId: broker.user,
    metrics,
    logger,
    services: (requestId, traceparent) =>
      createServiceClient({ publisher, rpc: getRpc, appId: def.name }, requestId, traceparent),
  });
  const consumer = await Consumer.create(broker, {
    queue: def.name,
    prefetch: config.prefetch ?? def.prefetch ?? DEFAULTS.prefetch,
    logger,
    declare: (ch) => declareServiceTopology(ch, spec),
    onMessage: processor.onMessage,
  });

  const isReady = () => broker.isUsable && consumer.isConsuming && publisher.isReady;
  const ops = await startOpsServer({ port: config.metricsPort, registry, isReady, logger });
  const metricsUrl = `http://${config.advertiseHost}:${ops.port}/metrics`;
  const announcer = new HeartbeatAnnouncer({
    publisher,
    userId: broker.user,
    logger,
    beat: {
      service: def.name,
      instanceId,
      metricsUrl,
      version: def.version ?? '0.0.0',
      queue: def.name,
      startedAt: new Date().toISOString(),
      intervalMs: config.heartbeatIntervalMs,
    },
  });
  await announcer.start();
  logger.info({ queue: def.name, metricsUrl, instanceId }, 'service ready');

  let stopping: Promise<boolean> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      logger.info(
        { inFlight: processor.inFlightCount },
        'stopping: no new messages, draining in-flight ones',
      );
      await announcer.stop();
      await consumer.cancel();
      const drained = await processor.drain(config.drainTimeoutMs);
      if (!drained) {
        logger.warn(
          { inFlight: processor.inFlightCount },
          'drain timeout; unfinished messages return to the queue',
        );
        await processor.drain(1000);
      }
      await consumer.close();
      if (rpc) await (await rpc).close();
      await publisher.close();
      await broker.close();
      await ops.close();
      logger.info({ drained }, 'stopped');
      return drained;
    })());

  if (options.handleSignals ?? true) {
    const onSignal = (signal: NodeJS.Signals) => {
      logger.info({ signal }, 'signal received');
      const exit = (code: number) => logger.flush(() => process.exit(code));
      stop().then(
        (drained) => exit(drained ? 0 : 1),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          exit(1);
        },
      );
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }

  return {
    name: def.name,
    instanceId,
    config,
    opsPort: ops.port,
    logger,
    registry,
    broker,
    isReady,
    stop,
  };
}

/** Entry point for a service's main.ts: run it, or print one clear line and exit 1. */
export function main(def: ServiceDefinition): void {
  runService(def).catch((err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${def.name}: ${message}\n`);
    process.exit(1);
  });
}
