// The express app: request context, security headers, access logs, auth, rate limit, routes, problem errors.
import { performance } from 'node:perf_hooks';
import express, {
  type ErrorRequestHandler,
  type Express,
  type NextFunction,
  type Request,
  type RequestHandler,
  type Response,
} from 'express';
import helmet from 'helmet';
import { pinoHttp } from 'pino-http';
import { rateLimit, ipKeyGenerator } from 'express-rate-limit';
import type { Logger } from '@warren/observability';
import type { PublishOptions, RpcCallOptions, RpcReply } from '@warren/messaging';
import type { ApiKeys } from './auth';
import { presentedKey } from './auth';
import { readBody } from './body';
import {
  actionFrom,
  callModeFrom,
  checkJson,
  checkServiceName,
  classifyContentType,
  requestIdFrom,
  traceparentFrom,
} from './input';
import { routeLabel, type GatewayRecorder, type RouteLabel } from './metrics';
import { HttpProblem, PROBLEM_CONTENT_TYPE, problems, sendProblem, toProblem } from './problems';
import type { ServiceRegistry } from './registry';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Locals {
      requestId: string;
      traceparent: string;
      route: RouteLabel;
      /** Index of the API key the request presented (when keys are configured). */
      keyId?: number;
    }
  }
}

export const APP_ID = 'warren-gateway';

/** What the app needs from the messaging layer (one Publisher and one RpcClient per process). */
export interface MessagePublisher {
  readonly isReady: boolean;
  send(queue: string, body: Buffer, options?: PublishOptions): Promise<void>;
}

export interface MessageCaller {
  readonly isReady: boolean;
  call(queue: string, body: Buffer, options: RpcCallOptions): Promise<RpcReply>;
}

export interface AppDeps {
  logger: Logger;
  apiKeys: ApiKeys;
  maxBodyBytes: number;
  /** Mount pino-http (one line per request). */
  accessLog: boolean;
  rateLimitPerMinute: number;
  trustProxy: number | string | undefined;
  publisher: MessagePublisher;
  rpc: MessageCaller;
  registry: ServiceRegistry;
  /** True when calls to `service` may get a reply: a live instance, or the registry is still warming up. */
  mayReply: (service: string) => boolean;
  recorder: GatewayRecorder;
  isShuttingDown: () => boolean;
}

export function createApp(deps: AppDeps): Express {
  const { logger, recorder } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  if (deps.trustProxy !== undefined) app.set('trust proxy', deps.trustProxy);

  // 1. Request context (id, trace, metrics on completion) and security headers, in one layer so
  // every answer, errors included, has them. Helmet's header set is static for this config, so
  // helmet runs once at start and its result is replayed per response.
  const security = securityHeaders();
  app.use((req: Request, res: Response, next: NextFunction) => {
    const start = performance.now();
    const requestId = requestIdFrom(req.headers['x-request-id']);
    const route = routeLabel(req.path);
    req.id = requestId;
    const locals = res.locals;
    locals.requestId = requestId;
    locals.traceparent = traceparentFrom(req.headers.traceparent);
    locals.route = route;
    for (let i = 0; i < security.length; i += 2)
      res.setHeader(security[i] as string, security[i + 1] as string);
    res.setHeader('x-request-id', requestId);
    res.once('close', () => {
      // 499 (nginx's "client closed request") when the client left before the answer.
      const status = res.writableFinished ? res.statusCode : 499;
      recorder.http(req.method, route, status, (performance.now() - start) / 1000);
    });
    next();
  });

  // 3. Access log: one line per request with requestId and traceparent; headers (keys) never logged.
  if (deps.accessLog)
    app.use(
      pinoHttp<Request, Response>({
        logger,
        genReqId: (req) => req.id as string,
        customProps: (_req, res) => ({
          requestId: res.locals.requestId,
          traceparent: res.locals.traceparent,
        }),
        // Raw objects straight to these serializers: no header copies, so no key can reach a line.
        wrapSerializers: false,
        serializers: {
          req: (r: Request) => ({ method: r.method, url: r.originalUrl, remoteAddress: r.ip }),
          res: (r: Response) => ({ statusCode: r.statusCode }),
        },
        customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'warn' : 'info'),
      }),
    );

  // 4. /v1: API keys and the rate limit. The key is checked first so the limit is per key; a
  // request without a valid key counts against its client IP, and is refused after the limit,
  // so guessing keys is throttled too.
  const keys = deps.apiKeys;
  const limited = deps.rateLimitPerMinute > 0;
  if (keys.enabled) {
    app.use('/v1', (req: Request, res: Response, next: NextFunction) => {
      const id = keys.match(presentedKey(req.headers));
      if (id >= 0) res.locals.keyId = id;
      else if (!limited) {
        sendProblem(res, problems.unauthorized(), res.locals.requestId);
        return;
      }
      next();
    });
  }
  if (limited) {
    app.use(
      '/v1',
      rateLimit({
        windowMs: 60_000,
        limit: deps.rateLimitPerMinute,
        standardHeaders: 'draft-7',
        legacyHeaders: false,
        keyGenerator: (req: Request, res: Response) =>
          res.locals.keyId !== undefined ? `key:${res.locals.keyId}` : ipKeyGenerator(req.ip ?? ''),
        handler: (_req: Request, res: Response) => {
          const retryAfter = Number(res.getHeader('retry-after')) || 60;
          sendProblem(res, problems.rateLimited(retryAfter), res.locals.requestId);
        },
        validate: { xForwardedForHeader: false },
      }),
    );
    if (keys.enabled) {
      app.use('/v1', (_req: Request, res: Response, next: NextFunction) => {
        if (res.locals.keyId === undefined) {
          sendProblem(res, problems.unauthorized(), res.locals.requestId);
          return;
        }
        next();
      });
    }
  }

  // 5. Routes.
  app.get('/v1/services', (_req: Request, res: Response) => {
    sendJson(res, 200, { services: deps.registry.list() });
  });
  app.get('/sd/prometheus', (_req: Request, res: Response) => {
    sendJson(res, 200, deps.registry.sdGroups());
  });
  app.post('/v1/:service', publishHandler(deps));
  app.all('/v1/:service', (req: Request, res: Response) => {
    const allow = req.params.service === 'services' ? 'GET, HEAD' : 'POST';
    sendProblem(res, problems.methodNotAllowed(allow), res.locals.requestId);
  });
  app.use((req: Request, res: Response) => {
    sendProblem(res, problems.notFound(req.path.slice(0, 200)), res.locals.requestId);
  });

  // 6. Errors -> problem+json (the mapping lives in problems.ts).
  const onError: ErrorRequestHandler = (err: unknown, req, res, _next) => {
    const problem = toProblem(err);
    if (problem.status >= 500 && !(err instanceof HttpProblem))
      (req.log ?? logger).error({ err }, 'unhandled error');
    sendProblem(res, problem, res.locals.requestId ?? 'unknown');
  };
  app.use(onError);
  return app;
}

function publishHandler(deps: AppDeps): RequestHandler {
  const { publisher, rpc, recorder } = deps;
  return async (req: Request, res: Response) => {
    const service = String(req.params.service);
    const { requestId, traceparent } = res.locals;
    let body: Buffer;
    let contentType: string;
    let wait: boolean;
    let timeoutMs: number;
    let type: string | undefined;
    try {
      checkServiceName(service);
      const query = req.query; // a getter that parses on every access
      ({ wait, timeoutMs } = callModeFrom(query.wait, query.timeoutMs));
      type = actionFrom(query.type, req.headers['x-warren-action']);
      contentType = req.headers['content-type'] as string;
      const kind = classifyContentType(contentType);
      body = await readBody(req, deps.maxBodyBytes);
      if (kind === 'json') checkJson(body);
    } catch (err) {
      // An unread body past the limit (or of unknown size) is not worth reading: answer and close.
      // A small one is discarded by node and the connection stays usable.
      if (!req.complete && !(Number(req.headers['content-length']) <= deps.maxBodyBytes))
        res.setHeader('connection', 'close');
      throw err;
    }
    if (deps.isShuttingDown()) throw problems.shuttingDown();

    const now = Date.now();
    const options: PublishOptions = {
      messageId: requestId,
      contentType,
      timestamp: Math.floor(now / 1000),
      appId: APP_ID,
      persistent: !wait,
      headers: {
        traceparent,
        'x-attempt': 1,
        'x-request-id': requestId,
        'x-published-at': now,
      },
    };
    if (type !== undefined) options.type = type;

    if (!wait) {
      if (!publisher.isReady) {
        recorder.publish(service, 'failed');
        throw problems.brokerUnavailable();
      }
      try {
        await publisher.send(service, body, options);
      } catch (err) {
        recorder.publish(service, publishOutcome(err));
        throw toProblem(err, { service, live: deps.registry.hasLive(service) });
      }
      recorder.publish(service, 'confirmed');
      // requestId is validated to [A-Za-z0-9._:-]: no JSON escaping needed.
      const out = `{"requestId":"${requestId}"}`;
      res.statusCode = 202;
      res.setHeader('content-type', 'application/json');
      res.setHeader('content-length', Buffer.byteLength(out));
      res.end(out);
      return;
    }

    const start = performance.now();
    const elapsed = () => (performance.now() - start) / 1000;
    if (!rpc.isReady) {
      recorder.rpcDone(service, 'unavailable', elapsed(), false);
      throw problems.brokerUnavailable();
    }
    if (!deps.mayReply(service)) {
      recorder.rpcDone(service, 'unavailable', elapsed(), false);
      throw problems.noLiveInstance(service);
    }
    let reply: RpcReply;
    try {
      reply = await rpc.call(service, body, { ...options, timeoutMs });
    } catch (err) {
      const outcome = publishOutcome(err);
      const timedOut = errorCode(err) === 'RPC_TIMEOUT';
      recorder.publish(service, timedOut ? 'confirmed' : outcome);
      recorder.rpcDone(
        service,
        timedOut ? 'timeout' : outcome === 'failed' ? 'unavailable' : 'error',
        elapsed(),
        timedOut || outcome === 'nacked',
      );
      throw toProblem(err, { service, timeoutMs, live: deps.registry.hasLive(service) });
    }
    recorder.publish(service, 'confirmed');
    recorder.rpcDone(service, reply.status < 400 ? 'ok' : 'error', elapsed(), true);
    sendReply(res, reply, requestId);
  };
}

function errorCode(err: unknown): string | undefined {
  return err && typeof err === 'object' && 'code' in err && typeof err.code === 'string'
    ? err.code
    : undefined;
}

function publishOutcome(err: unknown): 'nacked' | 'unroutable' | 'failed' {
  const code = errorCode(err);
  if (code === 'UNROUTABLE') return 'unroutable';
  if (code === 'PUBLISH_NACKED') return 'nacked';
  return 'failed';
}

/**
 * The service's reply as the HTTP answer: its status (`x-status`), bytes and content type. A failed
 * call's problem body gets the requestId added, so every error the client sees is problem+json.
 */
function sendReply(res: Response, reply: RpcReply, requestId: string): void {
  const { status } = reply;
  if (status < 200) {
    sendProblem(res, problems.badReply(`the service replied with status ${status}`), requestId);
    return;
  }
  if (status >= 400) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(reply.body.toString('utf8'));
    } catch {
      parsed = undefined;
    }
    const base =
      parsed && typeof parsed === 'object' && !Array.isArray(parsed)
        ? (parsed as Record<string, unknown>)
        : { detail: reply.body.toString('utf8').slice(0, 2000) };
    const out = JSON.stringify({
      type: 'urn:warren:error:service-error',
      title: 'Service error',
      ...base,
      status,
      requestId,
    });
    res.statusCode = status;
    res.setHeader('content-type', PROBLEM_CONTENT_TYPE);
    res.setHeader('content-length', Buffer.byteLength(out));
    res.end(out);
    return;
  }
  res.statusCode = status;
  res.setHeader('content-type', reply.contentType ?? 'application/octet-stream');
  res.setHeader('content-length', reply.body.length);
  res.end(reply.body);
}

/** Runs helmet once against a recording response: the header set it would write on every response. */
export function securityHeaders(): string[] {
  const headers = new Map<string, string>();
  const recorder = {
    setHeader: (name: string, value: string | number) => headers.set(name, String(value)),
    removeHeader: (name: string) => headers.delete(name),
  };
  let called = false;
  helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
    },
  })({} as Request, recorder as unknown as Response, () => (called = true));
  if (!called) throw new Error('helmet did not complete synchronously');
  return [...headers].flat();
}

function sendJson(res: Response, status: number, value: unknown): void {
  const out = JSON.stringify(value);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.setHeader('content-length', Buffer.byteLength(out));
  res.end(out);
}
