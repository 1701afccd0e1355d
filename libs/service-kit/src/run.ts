// runService(): a service on the process runtime — declare, consume, process, announce; drain on SIGTERM/SIGINT.
import type { DestinationStream } from 'pino';
import {
  Consumer,
  Publisher,
  RpcClient,
  declareEventsExchange,
  declareServiceTopology,
  resolveServiceTopology,
  type Connections,
  type QueueSpec,
} from '@warren/messaging';
import {
  consumerMetrics,
  eventPublishMetrics,
  type Logger,
  type Registry,
} from '@warren/observability';
import { SenderPolicy } from '@warren/protocol';
import { DEFAULTS, eventPatterns, type ServiceDefinition } from './define';
import { parseServiceConfig, type ServiceConfig } from './config';
import { Processor } from './processor';
import { HeartbeatAnnouncer } from './heartbeat';
import { createEventClient, createServiceClient, type ClientDeps } from './client';
import { startTracing } from './config';
import { describeInput } from './describe';
import { startRuntime } from './runtime';

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
  /** The two broker connections: `publish` and `consume`. */
  readonly connections: Connections;
  isReady(): boolean;
  /** Graceful stop: stop consuming, drain in-flight messages, close. Resolves true if drained in time. */
  stop(): Promise<boolean>;
}

/**
 * Parts, in the order the runtime quiesces them (and closes them in reverse): the publisher
 * (publish connection: replies, retry and DLQ copies, heartbeats), the RPC client (made on first
 * use), the consumer (consume connection), the processor's drain, the heartbeat's goodbye.
 */
export async function runService(
  def: ServiceDefinition,
  options: RunOptions = {},
): Promise<RunningService> {
  const env = options.env ?? process.env;
  const config = parseServiceConfig(env);
  const runtime = await startRuntime({
    name: def.name,
    amqpUrl: config.amqpUrl,
    connectRetries: config.connectRetries,
    metricsPort: config.metricsPort,
    logLevel: config.logLevel,
    logDestination: options.logDestination,
    drainTimeoutMs: config.drainTimeoutMs,
  });
  const { logger, connections, mq, instanceId } = runtime;
  const tracing = startTracing(env, { serviceName: def.name, instanceId, version: def.version });
  // Registered first, so closed last: spans of the final messages are still exported.
  runtime.add({
    name: 'tracing',
    close: () =>
      tracing.shutdown().catch((err: unknown) => logger.warn({ err }, 'trace export failed')),
  });
  try {
    const metrics = consumerMetrics(runtime.metrics);
    const publisher = await Publisher.create(connections.publish, { logger });
    // ctx.events.publish goes through the events exchange: declared on every (re)open.
    await publisher.channel.addSetup(declareEventsExchange);
    runtime.add({
      name: 'publisher',
      isReady: () => publisher.isReady,
      close: () => publisher.close(),
    });
    let rpc: Promise<RpcClient> | undefined;
    const getRpc = () =>
      (rpc ??= RpcClient.create(connections.publish, {
        logger,
        onPendingChange: (n) => mq.rpcPending.set(n),
        onLateReply: () => mq.rpcLateReplies.inc(),
        onRejectedReply: (queue, reason) =>
          logger.warn({ queue, reason }, 'refused a reply to a call of this service'),
        senders: new SenderPolicy({ ownUser: connections.user, users: config.serviceUsers }),
      }));
    runtime.add({
      name: 'rpc-client',
      close: async () => {
        if (rpc) await (await rpc).close();
      },
    });

    const spec: QueueSpec = {
      name: def.name,
      kind: def.queue?.kind ?? 'durable',
      queueType: def.queue?.queueType ?? config.queueType,
      deliveryLimit: def.queue?.deliveryLimit,
      maxLength: def.queue?.maxLength,
      overflow: def.queue?.overflow,
      retryDelaysMs: def.retryDelaysMs ?? DEFAULTS.retryDelaysMs,
      events: eventPatterns(def.events),
    };
    // A quorum queue declared by an earlier Warren keeps its arguments (they cannot change).
    const topology = await resolveServiceTopology(connections.consume.connection(), spec);
    if (topology.legacyMainQueue)
      logger.warn(
        { queue: def.name },
        'queue declared by an earlier Warren (it dead-letters to its .dlq): kept as it is, so expired calls still reach the DLQ; see docs/architecture.md#upgrading',
      );
    const clientDeps: ClientDeps = {
      publisher,
      rpc: getRpc,
      appId: def.name,
      tracing,
      events: eventPublishMetrics(runtime.metrics, 'service'),
    };
    const processor = new Processor({
      def,
      queue: def.name,
      queueType: topology.kind === 'plain' ? 'classic' : (topology.queueType ?? 'classic'),
      maxRedeliveries: config.maxRedeliveries,
      publisher,
      userId: connections.user,
      tracing,
      metrics,
      logger,
      services: (requestId, traceparent) => createServiceClient(clientDeps, requestId, traceparent),
      events: (requestId, traceparent) => createEventClient(clientDeps, requestId, traceparent),
    });
    const consumer = await Consumer.create(connections.consume, {
      queue: def.name,
      prefetch: config.prefetch ?? def.prefetch ?? DEFAULTS.prefetch,
      logger,
      declare: (ch) => declareServiceTopology(ch, topology),
      onMessage: processor.onMessage,
    });
    runtime.add({
      name: 'consumer',
      isReady: () => consumer.isConsuming,
      // Stops new deliveries; the channel stays open so in-flight messages are still acked.
      quiesce: () => consumer.cancel(),
      close: () => consumer.close(),
    });
    runtime.add({
      name: 'processor',
      drain: async (timeoutMs) => {
        logger.info({ inFlight: processor.inFlightCount }, 'draining in-flight messages');
        const drained = await processor.drain(timeoutMs);
        if (!drained) {
          logger.warn(
            { inFlight: processor.inFlightCount },
            'drain timeout; unfinished messages return to the queue',
          );
          await processor.drain(1000);
        }
        return drained;
      },
    });

    const ops = await runtime.serveOps();
    const metricsUrl = `http://${config.advertiseHost}:${ops.port}/metrics`;
    const { omitted, ...advertised } = describeInput(def);
    if (omitted) logger.warn({ reason: omitted }, 'a schema is not advertised (API descriptions)');
    const announcer = new HeartbeatAnnouncer({
      publisher,
      userId: connections.user,
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
    // Quiesced after the consumer's cancel: the last beat says this instance is leaving.
    runtime.add({ name: 'heartbeat', quiesce: () => announcer.stop() });
    logger.info({ queue: def.name, metricsUrl, instanceId }, 'service ready');

    if (options.handleSignals ?? true) runtime.handleSignals();
    return {
      name: def.name,
      instanceId,
      config,
      opsPort: ops.port,
      logger,
      registry: runtime.metrics,
      connections,
      isReady: runtime.isReady,
      stop: runtime.stop,
    };
  } catch (err) {
    await runtime.stop();
    throw err;
  }
}

/** Entry point for a service's main.ts: run it, or print one clear line and exit 1. */
export function main(def: ServiceDefinition): void {
  runService(def).catch((err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${def.name}: ${message}\n`);
    process.exit(1);
  });
}
