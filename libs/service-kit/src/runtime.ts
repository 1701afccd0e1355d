// Process runtime of every Warren process (runService and the gateway): logger, metrics registry, the two broker connections, ops server, signals, bounded drain, ordered stop.
import { randomUUID } from 'node:crypto';
import type { DestinationStream } from 'pino';
import { Connections } from '@warren/messaging';
import {
  createLogger,
  createRegistry,
  messagingMetrics,
  startOpsServer,
  type LogLevel,
  type Logger,
  type MessagingMetrics,
  type OpsServer,
  type Registry,
} from '@warren/observability';
import { Lifecycle, type ProcessPart } from './lifecycle';

export interface RuntimeOptions {
  /** The process's name: `service` on every log line and metric, prefix of its connection names. */
  name: string;
  amqpUrl: string;
  /** Connection attempts before giving up at start (AMQP_CONNECT_RETRIES). */
  connectRetries: number;
  /** The ops port (METRICS_PORT; 0 picks a free one). */
  metricsPort: number;
  logLevel: LogLevel;
  /** Log destination (tests); stdout by default. */
  logDestination?: DestinationStream;
  /** Bound on the drain phase of stop() (DRAIN_TIMEOUT_MS; the gateway's SHUTDOWN_TIMEOUT_MS). */
  drainTimeoutMs: number;
}

export interface ProcessRuntime {
  readonly name: string;
  readonly instanceId: string;
  readonly logger: Logger;
  /** The process's Prometheus registry (`service` default label). */
  readonly metrics: Registry;
  /** mq_* families shared by every process (reconnects by connection, RPC). */
  readonly mq: MessagingMetrics;
  readonly connections: Connections;
  /** Registers a part: its readiness counts, it is quiesced, drained and closed by stop(). */
  add<T extends ProcessPart>(part: T): T;
  /** Both connections usable (publishing not blocked), every part ready, not stopping. */
  isReady(): boolean;
  /** Starts the ops server (/metrics, /healthz, /readyz from isReady, plus `routes`). */
  serveOps(routes?: Readonly<Record<string, () => unknown>>): Promise<OpsServer>;
  /**
   * Quiesce parts (in order), drain (bounded by drainTimeoutMs), close parts (reverse order),
   * the connections, the ops server. Resolves true when everything drained in time. Idempotent.
   */
  stop(): Promise<boolean>;
  /** SIGTERM/SIGINT: stop, flush the log, exit 0 when drained, else 1. */
  handleSignals(): void;
}

/** Creates the logger and metrics and opens both broker connections (a failure throws, typed). */
export async function startRuntime(options: RuntimeOptions): Promise<ProcessRuntime> {
  const instanceId = randomUUID();
  const logger = createLogger({
    service: options.name,
    level: options.logLevel,
    destination: options.logDestination,
  });
  const metrics = createRegistry(options.name);
  const mq = messagingMetrics(metrics);
  const connections = await Connections.connect({
    url: options.amqpUrl,
    logger,
    connectionName: `${options.name}:${instanceId}`,
    initialRetries: options.connectRetries,
    onReconnect: (role) => mq.reconnects.labels(role).inc(),
  });

  const lifecycle = new Lifecycle(logger);
  let ops: OpsServer | undefined;
  // Registered first, so closed last: the ops port answers (/readyz 503) until the very end.
  lifecycle.add({ name: 'ops-server', close: () => ops?.close() });
  lifecycle.add({
    name: 'connections',
    isReady: () => connections.isUsable,
    close: () => connections.close(),
  });
  const isReady = (): boolean => lifecycle.isReady();

  let stopping: Promise<boolean> | undefined;
  const stop = (): Promise<boolean> =>
    (stopping ??= (async () => {
      logger.info({ drainTimeoutMs: options.drainTimeoutMs }, 'stopping: no new work, draining');
      const drained = await lifecycle.stop(options.drainTimeoutMs);
      logger.info({ drained }, 'stopped');
      return drained;
    })());

  return {
    name: options.name,
    instanceId,
    logger,
    metrics,
    mq,
    connections,
    add: (part) => lifecycle.add(part),
    isReady,
    async serveOps(routes) {
      ops = await startOpsServer({
        port: options.metricsPort,
        registry: metrics,
        isReady,
        logger,
        routes,
      });
      return ops;
    },
    stop,
    handleSignals() {
      const onSignal = (signal: NodeJS.Signals): void => {
        logger.info({ signal }, 'signal received');
        const exit = (code: number): void => logger.flush(() => process.exit(code));
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
    },
  };
}
