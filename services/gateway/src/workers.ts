// GATEWAY_WORKERS > 1: a primary process forks that many gateway workers sharing the HTTP port (node:cluster) and serves their ops port, metrics aggregated.
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { createLogger, startOpsServer, type Logger } from '@warren/observability';
import type { SdTargetGroup } from '@warren/registry';
import type { GatewayConfig } from './config';
import type { RunningGateway } from './gateway';

/** What a worker tells the primary, every second and when it starts. */
interface WorkerState {
  type: 'warren:gateway-state';
  ready: boolean;
  sd: SdTargetGroup[];
}

const STATE_INTERVAL_MS = 1000;
/** Restarts of crashed workers allowed per minute before the primary gives up and exits. */
const MAX_RESTARTS_PER_MINUTE = 10;

const isState = (m: unknown): m is WorkerState =>
  typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'warren:gateway-state';

/** The primary's registry: /metrics answers with every worker's metrics, aggregated (counters summed). */
class ClusterRegistry extends AggregatorRegistry<'text/plain; version=0.0.4; charset=utf-8'> {
  override metrics(): Promise<string> {
    return this.clusterMetrics();
  }
}

/**
 * In a worker: answers the primary's metrics requests with this gateway's registry and reports its
 * readiness and scrape targets every second. The worker's own ops server listens on a free port
 * (METRICS_PORT=0, set by the primary); the primary's is the one to scrape.
 */
export function reportToPrimary(gateway: RunningGateway): void {
  // Constructing one installs prom-client's worker listener; setRegistries says which registry.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([gateway.metrics as Registry]);
  const send = () => {
    const state: WorkerState = {
      type: 'warren:gateway-state',
      ready: gateway.isReady(),
      sd: gateway.registry.sdGroups(),
    };
    process.send?.(state);
  };
  send();
  setInterval(send, STATE_INTERVAL_MS).unref();
}

/**
 * The primary: forks `config.workers` workers (each a whole gateway: its own broker connections,
 * registry, rate limiter), restarts one that dies, serves the ops port (/metrics aggregated,
 * /readyz = every worker ready, /sd/prometheus from the newest report), and on SIGTERM/SIGINT
 * stops the workers (each drains its requests) before it exits.
 */
export async function runPrimary(config: GatewayConfig): Promise<void> {
  const logger: Logger = createLogger({ service: 'gateway', level: config.logLevel });
  const states = new Map<number, WorkerState>();
  let stopping = false;
  const restarts: number[] = [];

  const fork = (): Worker => {
    const worker = cluster.fork({ METRICS_PORT: '0' });
    worker.on('message', (m: unknown) => {
      if (isState(m)) states.set(worker.id, m);
    });
    return worker;
  };
  cluster.on('exit', (worker, code, signal) => {
    states.delete(worker.id);
    if (stopping) return;
    const now = Date.now();
    restarts.push(now);
    while (restarts.length > 0 && (restarts[0] as number) < now - 60_000) restarts.shift();
    if (restarts.length > MAX_RESTARTS_PER_MINUTE) {
      logger.fatal({ code, signal }, 'gateway workers keep dying; stopping');
      void stop(1);
      return;
    }
    logger.error({ worker: worker.id, code, signal }, 'gateway worker died; starting another');
    fork();
  });
  for (let i = 0; i < config.workers; i++) fork();

  const registry = new ClusterRegistry();
  const ops = await startOpsServer({
    port: config.metricsPort,
    registry,
    logger,
    isReady: () =>
      !stopping && states.size === config.workers && [...states.values()].every((s) => s.ready),
    routes: { '/sd/prometheus': () => [...states.values()].at(-1)?.sd ?? [] },
  });
  logger.info({ workers: config.workers, opsPort: ops.port }, 'gateway primary started');

  async function stop(exitCode: number): Promise<void> {
    if (stopping) return;
    stopping = true;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w);
    logger.info({ workers: workers.length }, 'stopping: workers drain their requests');
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.isDead()) return resolve();
            w.once('exit', () => resolve());
            w.process.kill('SIGTERM');
          }),
      ),
    );
    await ops.close();
    logger.info('stopped');
    process.exit(exitCode);
  }
  process.once('SIGTERM', () => void stop(0));
  process.once('SIGINT', () => void stop(0));
}
