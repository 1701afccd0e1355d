// Console process wiring: the runtime, the registry from heartbeats, the scraper and its history, the HTTP page and API.
import type { DestinationStream } from 'pino';
import { SenderPolicy } from '@warren/protocol';
import { RegistryListener, ServiceRegistry } from '@warren/registry';
import { ApiKeys, startRuntime, type ProcessRuntime } from '@warren/service-kit';
import { parseConsoleConfig, type ConsoleConfig } from './config';
import { deadLetterRoutes } from './dead-letters';
import { History } from './history';
import { Scraper } from './scraper';
import { startConsoleServer } from './server';

export interface ConsoleStartOptions {
  env?: NodeJS.ProcessEnv;
  logDestination?: DestinationStream;
  /** Install SIGTERM/SIGINT handlers (default true). */
  handleSignals?: boolean;
}

export interface RunningConsole {
  readonly config: ConsoleConfig;
  readonly port: number;
  readonly runtime: ProcessRuntime;
  readonly history: History;
  readonly scraper: Scraper;
  stop(): Promise<boolean>;
}

export async function startConsole(options: ConsoleStartOptions = {}): Promise<RunningConsole> {
  const config = parseConsoleConfig(options.env ?? process.env);
  const runtime = await startRuntime({
    name: 'console',
    amqpUrl: config.amqpUrl,
    connectRetries: 5,
    metricsPort: config.metricsPort,
    logLevel: config.logLevel,
    logDestination: options.logDestination,
    drainTimeoutMs: 1000,
  });
  const { logger } = runtime;
  // The same registry as the gateway's, from the same heartbeats, believed by the same rule.
  const consume = runtime.connections.consume;
  const registry = new ServiceRegistry({
    senders: new SenderPolicy({ ownUser: consume.user, users: config.serviceUsers }),
  });
  const listener = await RegistryListener.start({
    broker: consume,
    registry,
    instanceId: runtime.instanceId,
    queuePrefix: 'warren.console.registry',
    logger,
    graceMs: 0,
  });
  runtime.add({
    name: 'registry',
    isReady: () => listener.isConsuming,
    close: () => listener.close(),
  });

  const history = new History({ retentionMs: config.historyMinutes * 60_000 });
  const holder: { scraper?: Scraper } = {};
  const server = await startConsoleServer({
    host: config.host,
    port: config.port,
    history,
    logger,
    intervalMs: config.intervalMs,
    rounds: () => holder.scraper?.rounds ?? 0,
    routes: deadLetterRoutes({
      amqpUrl: config.amqpUrl,
      apiKeys: new ApiKeys(config.apiKeys),
      logger,
    }),
  });
  const scraper = new Scraper({
    directory: registry,
    history,
    logger,
    intervalMs: config.intervalMs,
    gatewayMetricsUrl: config.gatewayMetricsUrl,
    brokerMetricsUrl: config.brokerMetricsUrl,
    vhost: config.vhost,
    onRound: () => server.push(),
  });
  holder.scraper = scraper;
  scraper.start();
  runtime.add({ name: 'scraper', close: () => scraper.stop() });
  runtime.add({ name: 'http', close: () => server.close() });
  await runtime.serveOps();
  if (options.handleSignals ?? true) runtime.handleSignals();
  logger.info(
    { url: `http://${config.host}:${server.port}/`, intervalMs: config.intervalMs },
    'console ready',
  );
  return { config, port: server.port, runtime, history, scraper, stop: () => runtime.stop() };
}
