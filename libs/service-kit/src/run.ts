// runService(): connect, declare, consume, serve metrics, announce, and drain on SIGTERM/SIGINT.
import { randomUUID } from 'node:crypto';
import type { DestinationStream } from 'pino';
import {
  Broker,
  Consumer,
  Publisher,
  RpcClient,
  declareServiceTopology,
  resolveServiceTopology,
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
import { describeInput } from './describe';
import { startTracing } from './config';

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
  const env = options.env ?? process.env;
  const config = parseServiceConfig(env);
  const instanceId = randomUUID();
  const tracing = startTracing(env, { serviceName: def.name, instanceId, version: def.version });
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
  // A quorum queue declared by an earlier Warren keeps its arguments (they cannot change).
  const topology = await resolveServiceTopology(broker.connection(), spec);
  if (topology.legacyMainQueue)
    logger.warn(
      { queue: def.name },
      'queue declared by an earlier Warren (it dead-letters to its .dlq): kept as it is, so expired calls still reach the DLQ; see docs/architecture.md#upgrading',
    );
  const processor = new Processor({
    def,
    queue: def.name,
    queueType: topology.kind === 'plain' ? 'classic' : (topology.queueType ?? 'classic'),
    maxRedeliveries: config.maxRedeliveries,
    publisher,
    userId: broker.user,
    tracing,
    metrics,
    logger,
    services: (requestId, traceparent) =>
      createServiceClient(
        { publisher, rpc: getRpc, appId: def.name, tracing },
        requestId,
        traceparent,
      ),
  });
  const consumer = await Consumer.create(broker, {
    queue: def.name,
    prefetch: config.prefetch ?? def.prefetch ?? DEFAULTS.prefetch,
    logger,
    declare: (ch) => declareServiceTopology(ch, topology),
    onMessage: processor.onMessage,
  });

  const isReady = () => consumer.isConsuming && publisher.isReady;
  const ops = await startOpsServer({ port: config.metricsPort, registry, isReady, logger });
  const metricsUrl = `http://${config.advertiseHost}:${ops.port}/metrics`;
  const { omitted, ...advertised } = describeInput(def);
  if (omitted) logger.warn({ reason: omitted }, 'input schema not advertised (API descriptions)');
  const announcer = new HeartbeatAnnouncer({
    broker,
    publisher,
    logger,
    beat: {
      service: def.name,
      instanceId,
      metricsUrl,
      version: def.version ?? '0.0.0',
      queue: def.name,
      startedAt: new Date().toISOString(),
      intervalMs: config.heartbeatIntervalMs,
      ...advertised,
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
      await tracing.shutdown().catch((err: unknown) => logger.warn({ err }, 'trace export failed'));
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
