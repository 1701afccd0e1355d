// Gateway process wiring on the process runtime: one Publisher + one RpcClient, registry, HTTP server, ops server, shutdown.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import type { DestinationStream } from 'pino';
import {
  Publisher,
  QueueInspector,
  RpcClient,
  declareEventsExchange,
  type Connections,
} from '@warren/messaging';
import { SenderPolicy, type WarrenError } from '@warren/protocol';
import {
  gatewayMetrics,
  eventPublishMetrics,
  type Logger,
  type OverloadReason,
  type Registry,
} from '@warren/observability';
import { ApiKeys, startRuntime, startTracing, type ProcessRuntime } from '@warren/service-kit';
import { createApp, securityHeaders } from './app';

import { parseGatewayConfig, type GatewayConfig } from './config';
import { answerProblem, type ContextResponse } from './context';
import { ByteBudget, ConnectionGuard, ResponseDeadlines } from './edge';
import {
  answerAtDoor,
  clientErrorAnswer,
  problems,
  rawProblemAnswer,
  sendProblem,
} from './problems';
import { GatewayRecorder, routeLabel } from './metrics';
import { LoopAdmission } from './admission';
import { requestIdFrom } from './input';
import { createPipeline } from './pipeline';
import { publishHandler } from './publish';
import { UnconfirmedPublishes } from './unconfirmed';
import { CallShedder } from './shedding';
import { eventHandler } from './events';
import { RegistryListener, ServiceRegistry, Throttle } from '@warren/registry';

export interface StartOptions {
  /** Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Log destination (tests); stdout by default. */
  logDestination?: DestinationStream;
  /** Install SIGTERM/SIGINT handlers that drain and exit (default false; main.ts sets it). */
  handleSignals?: boolean;
}

export interface RunningGateway {
  readonly instanceId: string;
  readonly config: GatewayConfig;
  /** The bound HTTP port (PORT=0 picks a free one). */
  readonly port: number;
  readonly opsPort: number;
  readonly logger: Logger;
  readonly metrics: Registry;
  readonly registry: ServiceRegistry;
  /** The two broker connections: `publish` (publisher, RPC client) and `consume` (registry, queue checks). */
  readonly connections: Connections;
  isReady(): boolean;
  /**
   * Stops taking requests, lets in-flight ones finish (bounded by SHUTDOWN_TIMEOUT_MS), closes
   * everything. Resolves true when every request finished in time.
   */
  stop(): Promise<boolean>;
}

/**
 * Parts, in the order the runtime quiesces them (and closes them in reverse): publisher and RPC
 * client (publish connection), registry listener and queue inspector (consume connection), the
 * request pipeline, the HTTP server (quiesce: stop accepting; drain: in-flight requests, bounded).
 */
export async function startGateway(options: StartOptions = {}): Promise<RunningGateway> {
  const env = options.env ?? process.env;
  const config = parseGatewayConfig(env);
  const runtime = await startRuntime({
    name: 'gateway',
    amqpUrl: config.amqpUrl,
    connectRetries: config.connectRetries,
    metricsPort: config.metricsPort,
    logLevel: config.logLevel,
    logDestination: options.logDestination,
    drainTimeoutMs: config.shutdownTimeoutMs,
  });
  try {
    const gateway = await wire(config, runtime, env);
    if (options.handleSignals) runtime.handleSignals();
    return gateway;
  } catch (err) {
    await runtime.stop();
    throw err;
  }
}

async function wire(
  config: GatewayConfig,
  runtime: ProcessRuntime,
  env: NodeJS.ProcessEnv,
): Promise<RunningGateway> {
  const { logger, connections, mq, instanceId, metrics } = runtime;
  const tracing = startTracing(env, { serviceName: 'gateway', instanceId });
  // Registered first, so closed last: spans of the final requests are still exported.
  runtime.add({
    name: 'tracing',
    close: () =>
      tracing.shutdown().catch((err: unknown) => logger.warn({ err }, 'trace export failed')),
  });
  // Edge caps (their refusals are counted by `overload`, once the recorder exists).
  const connectionGuard = new ConnectionGuard(config.maxConnections, () =>
    overload('connections_dropped'),
  );
  const bodyBudget = new ByteBudget(config.maxInflightBytes, () => overload('inflight_bytes'));
  const gm = gatewayMetrics(metrics, {
    openConnections: () => connectionGuard.openConnections,
    inflightBodyBytes: () => bodyBudget.inUse,
  });

  const publisher = await Publisher.create(connections.publish, {
    logger,
    confirmTimeoutMs: config.confirmTimeoutMs,
  });
  // Events go through the topic exchange: declared on every (re)open, so publishing never meets a
  // missing exchange (which would close the channel).
  await publisher.channel.addSetup(declareEventsExchange);
  runtime.add({
    name: 'publisher',
    isReady: () => publisher.isReady,
    close: () => publisher.close(),
  });
  // Replies and heartbeats about service S are believed only from S's broker user (or this one's).
  const senders = new SenderPolicy({ ownUser: connections.user, users: config.serviceUsers });
  const registry = new ServiceRegistry({
    senders,
    maxServices: config.registryMaxServices,
    maxInstances: config.registryMaxInstances,
    onCount: (service, count) => {
      if (count > 0) gm.registryInstances.labels(service).set(count);
      else gm.registryInstances.remove(service);
    },
  });
  const recorder = new GatewayRecorder(gm, (service) => registry.hasLive(service));
  const replyWarnings = new Throttle(10_000);
  const rpc = await RpcClient.create(connections.publish, {
    logger,
    confirmTimeoutMs: config.confirmTimeoutMs,
    senders,
    // A reply is never larger than what a client may send.
    maxReplyBytes: config.maxBodyBytes,
    onPendingChange: (n) => mq.rpcPending.set(n),
    onLateReply: () => mq.rpcLateReplies.inc(),
    onRejectedReply: (service, reason) => {
      recorder.rejectedReply(service, reason);
      const suppressed = replyWarnings.take();
      if (suppressed !== undefined)
        logger.warn(
          { service, reason, suppressed },
          'refused a reply (latest; count since the last such line)',
        );
    },
  });
  runtime.add({ name: 'rpc-client', isReady: () => rpc.isReady, close: () => rpc.close() });
  const listener = await RegistryListener.start({
    broker: connections.consume,
    registry,
    instanceId,
    logger,
    graceMs: config.registryGraceMs,
    onDropped: (reason) => gm.droppedBeats.labels(reason).inc(),
  });
  runtime.add({
    name: 'registry',
    isReady: () => listener.isConsuming,
    close: () => listener.close(),
  });
  const inspector = await QueueInspector.create(connections.consume, { logger });
  runtime.add({ name: 'queue-inspector', close: () => inspector.close() });
  const consumed = consumerCheck(inspector, logger);

  let shuttingDown = false;
  function overload(reason: OverloadReason): void {
    recorder.overload(reason);
  }
  // An answer that never comes (a stuck publish, a bug) must not hold the socket: 504, or cut.
  const deadlines = new ResponseDeadlines({
    timeoutMs: config.responseTimeoutMs,
    onExpired: (response) => {
      const res = response as ContextResponse;
      logger.warn(
        {
          requestId: res.locals.requestId,
          req: { method: res.req.method, url: res.req.url },
          timeoutMs: config.responseTimeoutMs,
        },
        'response timeout: answered 504',
      );
      answerProblem(res, problems.responseTimeout(config.responseTimeoutMs));
    },
  });
  // Publishes whose confirm timed out (POST /v1/<service> one-way, and events), for their retries.
  const unconfirmed = new UnconfirmedPublishes({
    onLate: (outcome) => {
      recorder.unconfirmed(outcome);
      logger.info({ outcome }, 'a publish whose confirm had timed out settled');
    },
    onRetry: (outcome) => recorder.unconfirmed(outcome),
  });
  // The gateway's own overload: while its loop runs late, requests past a limit are refused first.
  const admission = new LoopAdmission(
    { targetMs: config.admitDelayMs, inProgress: () => deadlines.size },
    ({ delayMs, limit, refused }) =>
      logger.warn(
        { refused, limit, loopDelayMs: Math.round(delayMs) },
        'gateway overloaded: requests refused at the door',
      ),
  );
  const baseHeaders = securityHeaders();
  const refuseAtDoor = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    overload('event_loop');
    answerAtDoor(
      res,
      problems.overloaded('event_loop'),
      requestIdFrom(req.headers['x-request-id']),
      baseHeaders,
    );
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    recorder.http(req.method ?? 'GET', routeLabel(q < 0 ? url : url.slice(0, q)), 503, 0);
  };
  const publish = publishHandler({
    maxBodyBytes: config.maxBodyBytes,
    maxPendingCalls: config.maxPendingCalls,
    shedder: new CallShedder({
      targetMs: config.shedTargetMs,
      maxLimit: config.maxPendingCalls,
      gatewayLate: () => admission.late,
    }),
    bodyBudget,
    publisher,
    rpc,
    registry,
    mayReply: (service) => registry.hasLive(service) || listener.inGrace || consumed(service),
    recorder,
    unconfirmed,
    isShuttingDown: () => shuttingDown,
    tracing,
  });
  const events = eventHandler({
    maxBodyBytes: config.maxBodyBytes,
    bodyBudget,
    publisher,
    metrics: eventPublishMetrics(metrics, 'gateway'),
    isShuttingDown: () => shuttingDown,
    tracing,
    unconfirmed,
  });
  const apiKeys = new ApiKeys(config.apiKeys);
  const pipeline = createPipeline({
    logger,
    apiKeys,
    accessLog: config.accessLog,
    rateLimitPerMinute: config.rateLimitPerMinute,
    trustProxy: config.trustProxy,
    recorder,
    securityHeaders: baseHeaders,
    publish,
    app: createApp({
      logger,
      trustProxy: config.trustProxy,
      registry,
      publish,
      events,
      apiKeys,
      onAnswerFailure: () => gm.answerFailures.inc(),
    }),
    onAnswerFailure: () => gm.answerFailures.inc(),
    deadlines,
    tracing,
  });

  runtime.add({
    name: 'pipeline',
    close: () => {
      deadlines.close();
      admission.close();
      pipeline.close();
    },
  });
  const refuse = (res: http.ServerResponse, problem: WarrenError): void => {
    const requestId = randomUUID();
    res.setHeader('x-request-id', requestId);
    res.setHeader('connection', 'close');
    sendProblem(res, problem, requestId);
  };

  const ops = await runtime.serveOps({
    // Scrape targets are for Prometheus, not for anonymous clients of the public port.
    '/sd/prometheus': () => registry.sdGroups(),
  });
  const server = http.createServer(
    {
      // Node answers a missing Host with an empty 400; checked here instead, as problem+json.
      requireHostHeader: false,
      // Bounded sockets: slow headers, slow uploads and idle keep-alives cannot pin connections.
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      keepAliveTimeout: 65_000,
      // How often node checks the two timeouts above (its default, 30 s, would let a slow
      // client run up to 30 s past them): a quarter of the shorter one, 25 ms to 1 s.
      connectionsCheckingInterval: Math.min(
        1000,
        Math.max(25, Math.floor(Math.min(config.headersTimeoutMs, config.requestTimeoutMs) / 4)),
      ),
    },
    (req, res) => {
      if (connectionGuard.refuses(req)) {
        overload('connections');
        refuse(res, problems.overloaded('connections'));
        return;
      }
      const malformed = malformedRequest(req);
      if (malformed !== undefined) {
        refuse(res, problems.badRequest(malformed));
        return;
      }
      if (admission.refuses()) {
        refuseAtDoor(req, res);
        return;
      }
      pipeline.handle(req, res);
    },
  );
  connectionGuard.attach(server);
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    // As Node's default handler: answer only if no response is under way on this socket.
    const busy = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || busy?.headersSent) {
      socket.destroy();
      return;
    }
    socket.end(clientErrorAnswer(err.code, randomUUID()));
  });
  // CONNECT asks for a tunnel; without a listener Node would drop the socket without an answer.
  server.on('connect', (_req: http.IncomingMessage, socket: Duplex) => {
    socket.end(rawProblemAnswer(problems.methodNotAllowed('POST'), randomUUID()));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  let closed: Promise<void> | undefined;
  runtime.add({
    name: 'http-server',
    quiesce: () => {
      shuttingDown = true;
      closed = new Promise<void>((resolve) => server.close(() => resolve()));
    },
    // Keep-alive connections close as soon as their request is answered; after the bound, all.
    drain: async (timeoutMs) => {
      let cut = false;
      const reaper = setInterval(() => server.closeIdleConnections(), 50);
      const timer = setTimeout(() => {
        cut = true;
        server.closeAllConnections();
      }, timeoutMs);
      await closed;
      clearInterval(reaper);
      clearTimeout(timer);
      return !cut;
    },
  });
  const port = (server.address() as AddressInfo).port;
  logger.info(
    {
      port,
      opsPort: ops.port,
      instanceId,
      pid: process.pid,
      auth: config.apiKeys.length > 0 ? `${config.apiKeys.length} key(s)` : 'open',
      rateLimitPerMinute: config.rateLimitPerMinute,
      maxBodyBytes: config.maxBodyBytes,
      maxInflightBytes: config.maxInflightBytes,
      maxConnections: config.maxConnections,
      headersTimeoutMs: config.headersTimeoutMs,
      requestTimeoutMs: config.requestTimeoutMs,
      responseTimeoutMs: config.responseTimeoutMs,
    },
    'gateway ready',
  );

  return {
    instanceId,
    config,
    port,
    opsPort: ops.port,
    logger,
    metrics,
    registry,
    connections,
    isReady: runtime.isReady,
    stop: runtime.stop,
  };
}

/**
 * Why a request that Node's parser let through is still not HTTP/1.x as this API speaks it: a
 * request line without a version (HTTP/0.9) or with another one, or HTTP/1.1 without Host
 * (RFC 9112 §3.2). Undefined when it is fine.
 */
export function malformedRequest(req: http.IncomingMessage): string | undefined {
  if (req.httpVersionMajor !== 1) return 'only HTTP/1.0 and HTTP/1.1 requests are served';
  if (req.httpVersionMinor >= 1 && req.headers.host === undefined)
    return 'the Host header is required';
  return undefined;
}

/**
 * The broker's word on a service the registry has no live instance for (the registry is a hint:
 * beats can be late, lost or forged): true when its queue has consumers. Cached per service for
 * a second, so a burst of calls to a dead service asks once; a broker error counts as false.
 */
function consumerCheck(
  inspector: QueueInspector,
  logger: Logger,
  ttlMs = 1000,
): (service: string) => Promise<boolean> {
  const cache = new Map<string, { until: number; answer: Promise<boolean> }>();
  return (service) => {
    const now = Date.now();
    const hit = cache.get(service);
    if (hit && hit.until > now) return hit.answer;
    if (cache.size >= 1024) cache.clear();
    const answer = inspector.inspect(service).then(
      (state) => (state?.consumers ?? 0) > 0,
      (err: unknown) => {
        logger.debug({ err, service }, 'queue check failed');
        return false;
      },
    );
    cache.set(service, { until: now + ttlMs, answer });
    return answer;
  };
}
