// The gateway's HTTP entry: context, access log + metrics, API keys, rate limit; POST /v1/<service> direct, the rest via express.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { parse as parseQuery } from 'node:querystring';
import parseurl from 'parseurl';
import proxyaddr from 'proxy-addr';
import type { Logger, Tracing } from '@warren/observability';
import type { ApiKeys } from '@warren/service-kit';
import { presentedKey } from '@warren/service-kit';
import {
  answerError,
  applyBaseHeaders,
  type ContextResponse,
  type RequestContext,
} from './context';
import { clientTraceparent, requestIdFrom, traceparentFrom } from './input';
import { routeLabel, type GatewayRecorder } from './metrics';
import { problems } from './problems';
import type { ResponseDeadlines } from './edge';
import type { PublishHandler, Query } from './publish';
import { RateLimiter } from './rate-limit';

export interface PipelineDeps {
  logger: Logger;
  apiKeys: ApiKeys;
  /** One access-log line per request (info; 5xx at warn). */
  accessLog: boolean;
  /** Requests per minute per client; 0 = no limit. */
  rateLimitPerMinute: number;
  trustProxy: number | string | undefined;
  recorder: GatewayRecorder;
  /** Headers every answer carries (helmet's set): name, value, ... */
  securityHeaders: readonly string[];
  publish: PublishHandler;
  /** Every other route (express). */
  app: (req: IncomingMessage, res: ServerResponse) => void;
  /** Told when an answer could not be written and the connection was destroyed instead. */
  onAnswerFailure?: () => void;
  /** An HTTP server span per request (when tracing is on). */
  tracing: Tracing;
  /** Watches every response until it closes (the response deadline). */
  deadlines?: Pick<ResponseDeadlines, 'track' | 'forget'>;
}

export interface Pipeline {
  handle(req: IncomingMessage, res: ServerResponse): void;
  close(): void;
}

const NO_QUERY: Query = Object.freeze({});

/**
 * Why not all of it in express: for the one hot route, express's router, its request/response
 * prototypes, a pino-http child logger per request and the rate-limit middleware cost more CPU than
 * the publish itself (docs/performance.md has the profile and the before/after figures). The order
 * and behaviour are what the middleware stack did: context, log, keys, limit, route.
 */
export function createPipeline(deps: PipelineDeps): Pipeline {
  const { logger, recorder, accessLog, apiKeys, publish, app, tracing } = deps;
  // The access line holds only fixed fields (no headers, bodies or keys), so it skips the
  // redaction pass the logger runs on every other line (a few % of the CPU per request).
  const access = logger.child({}, { redact: [] });
  const limiter = deps.rateLimitPerMinute > 0 ? new RateLimiter(deps.rateLimitPerMinute) : null;
  const trust = compileTrust(deps.trustProxy);
  const security = deps.securityHeaders;
  // Clients repeat the same query (`wait=true`): the last parse is kept, frozen (handlers only read).
  let lastSearch = '';
  let lastQuery: Query = NO_QUERY;
  const queryOf = (search: string | null): Query => {
    if (!search) return NO_QUERY;
    if (search !== lastSearch) {
      lastQuery = Object.freeze(parseQuery(search));
      lastSearch = search;
    }
    return lastQuery;
  };
  const clientIp = (req: IncomingMessage): string =>
    (trust ? proxyaddr(req, trust) : req.socket.remoteAddress) ?? '';

  // One listener function for all requests (no closure per request).
  function onClose(this: ServerResponse): void {
    const res = this as ContextResponse;
    const ctx = res.locals;
    if (ctx.watch) deps.deadlines?.forget(ctx.watch);
    const req = res.req;
    // 499 (nginx's "client closed request") when the client left before the answer.
    const status = res.writableFinished ? res.statusCode : 499;
    const ms = performance.now() - ctx.start;
    recorder.http(req.method ?? 'GET', ctx.route, status, ms / 1000);
    if (ctx.span) {
      ctx.span.set('http.response.status_code', status);
      if (status >= 500) ctx.span.fail(new Error(`answered ${status}`));
      ctx.span.end();
    }
    if (!accessLog) return;
    const line = {
      requestId: ctx.requestId,
      traceparent: ctx.traceparent,
      req: { method: req.method, url: req.url, remoteAddress: ctx.ip ?? clientIp(req) },
      res: { statusCode: status },
      responseTime: Math.round(ms * 10) / 10,
    };
    if (status >= 500) access.warn(line, 'request errored');
    else access.info(line, status === 499 ? 'request aborted' : 'request completed');
  }

  async function handleV1(
    req: IncomingMessage,
    res: ContextResponse,
    path: string,
    search: string | null,
  ): Promise<void> {
    const ctx = res.locals;
    // API key first, so the limit is per key; without a valid key a request counts against its
    // IP and is refused after the limit, so guessing keys is throttled too.
    if (apiKeys.enabled) {
      const id = apiKeys.match(presentedKey(req.headers));
      if (id >= 0) ctx.keyId = id;
      else if (!limiter) throw problems.unauthorized();
    }
    if (limiter) {
      if (ctx.keyId === undefined) ctx.ip = clientIp(req);
      const decision = await limiter.hit(RateLimiter.clientKey(ctx.keyId, ctx.ip ?? ''));
      ctx.headers.push(...decision.headers);
      if (!decision.allowed) throw problems.rateLimited(Math.max(1, decision.resetS));
      if (apiKeys.enabled && ctx.keyId === undefined) throw problems.unauthorized();
    }
    // POST /v1/<name>: straight to the handler (which refuses reserved names such as "services").
    // Anything else (other methods, trailing slashes, deeper paths) is routed by express.
    if (req.method === 'POST' && path.length > 4 && path.indexOf('/', 4) === -1) {
      const raw = path.slice(4);
      let service: string;
      try {
        service = raw.includes('%') ? decodeURIComponent(raw) : raw;
      } catch {
        throw problems.badRequest('the service name is not a valid percent-encoded string');
      }
      await publish(req, res, service, queryOf(search));
      return;
    }
    applyBaseHeaders(res);
    app(req, res);
  }

  return {
    handle(req: IncomingMessage, response: ServerResponse): void {
      const res = response as ContextResponse;
      const requestId = requestIdFrom(req.headers['x-request-id']);
      const url = parseurl(req);
      const path = url?.pathname ?? '/';
      const route = routeLabel(path);
      const ctx: RequestContext = {
        requestId,
        traceparent: '',
        route,
        start: performance.now(),
        headers: [...security, 'x-request-id', requestId],
        watch: undefined,
      };
      if (tracing.enabled) {
        // A root span when the client sent no (valid) traceparent, else its child.
        const span = tracing.start(
          `${req.method ?? 'GET'} ${route}`,
          'server',
          clientTraceparent(req.headers.traceparent),
          {
            'http.request.method': req.method ?? 'GET',
            'http.route': route,
            'url.path': path,
          },
        );
        ctx.span = span;
        ctx.traceparent = span.traceparent ?? traceparentFrom(undefined);
      } else ctx.traceparent = traceparentFrom(req.headers.traceparent);
      res.locals = ctx;
      res.on('close', onClose);
      ctx.watch = deps.deadlines?.track(res);
      if (path === '/v1' || path.startsWith('/v1/')) {
        const search = typeof url?.query === 'string' ? url.query : null;
        handleV1(req, res, path, search).catch((err: unknown) =>
          answerError(res, err, logger, deps.onAnswerFailure),
        );
        return;
      }
      applyBaseHeaders(res);
      app(req, res);
    },
    close(): void {
      limiter?.close();
    },
  };
}

/** Express's `trust proxy` semantics: a hop count, or a comma-separated list of addresses/subnets. */
function compileTrust(
  value: number | string | undefined,
): ((addr: string, i: number) => boolean) | null {
  if (value === undefined) return null;
  if (typeof value === 'number') return (_addr, i) => i < value;
  return proxyaddr.compile(value.split(',').map((v) => v.trim()));
}
