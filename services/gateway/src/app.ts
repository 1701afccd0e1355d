// The express app for every route but the hot one: service list, SD, publish fallbacks, 405/404, problem errors.
import express, {
  type ErrorRequestHandler,
  type Express,
  type Request,
  type Response,
} from 'express';
import helmet from 'helmet';
import type { Logger } from '@warren/observability';
import { asyncApiDocument, openApiDocument } from './api-docs';
import { presentedKey, type ApiKeys } from '@warren/service-kit';
import { answerError, type ContextResponse } from './context';
import { largeBodyUnread, problems, sendProblem } from './problems';
import type { PublishHandler, Query } from './publish';
import type { EventHandler } from './events';
import type { ServiceRegistry } from '@warren/registry';

export interface AppDeps {
  logger: Logger;
  trustProxy: number | string | undefined;
  registry: ServiceRegistry;
  publish: PublishHandler;
  events: EventHandler;
  apiKeys: ApiKeys;
  onAnswerFailure?: () => void;
}

/**
 * Routes only: the pipeline (pipeline.ts) has already set the request context (res.locals), the
 * base headers, the access log, API keys and the rate limit, and answers POST /v1/<name> itself.
 */
export function createApp(deps: AppDeps): Express {
  const { logger } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  if (deps.trustProxy !== undefined) app.set('trust proxy', deps.trustProxy);

  app.get('/v1/services', (_req: Request, res: Response) => {
    sendJson(res, 200, { services: deps.registry.list() });
  });
  // API descriptions of the live services: open like /v1/services is (behind the key when keys are on).
  const keyed =
    (body: () => unknown) =>
    (req: Request, res: Response): void => {
      if (deps.apiKeys.enabled && deps.apiKeys.match(presentedKey(req.headers)) < 0)
        sendProblem(res, problems.unauthorized(), res.locals.requestId);
      else sendJson(res, 200, body());
    };
  const docOptions = { apiKeys: deps.apiKeys.enabled };
  app.get(
    '/openapi.json',
    keyed(() => openApiDocument(deps.registry.described(), docOptions)),
  );
  app.get(
    '/asyncapi.json',
    keyed(() => asyncApiDocument(deps.registry.described())),
  );
  // Scrape targets (addresses inside the deployment) are served on the ops port; on this public
  // port only to holders of an API key, and not at all while the gateway is open.
  app.get('/sd/prometheus', (req: Request, res: Response) => {
    const { requestId } = res.locals;
    if (!deps.apiKeys.enabled)
      sendProblem(res, problems.notFound('/sd/prometheus (served on the ops port)'), requestId);
    else if (deps.apiKeys.match(presentedKey(req.headers)) < 0)
      sendProblem(res, problems.unauthorized(), requestId);
    else sendJson(res, 200, deps.registry.sdGroups());
  });
  // Events: POST /v1/events/<topic> (topic checked by the handler; express decodes %-escapes).
  app.post('/v1/events/:topic', (req: Request, res: Response) =>
    deps.events(req, res as unknown as ContextResponse, String(req.params.topic)),
  );
  app.all('/v1/events/:topic', (_req: Request, res: Response) => {
    sendProblem(res, problems.methodNotAllowed('POST'), res.locals.requestId);
  });
  // The pipeline takes POST /v1/<name> directly; this serves the forms it leaves (a trailing slash).
  app.post('/v1/:service', (req: Request, res: Response) =>
    deps.publish(
      req,
      res as unknown as ContextResponse,
      String(req.params.service),
      req.query as Query,
    ),
  );
  app.all('/v1/:service', (req: Request, res: Response) => {
    const allow = req.params.service === 'services' ? 'GET, HEAD' : 'POST';
    sendProblem(res, problems.methodNotAllowed(allow), res.locals.requestId);
  });
  app.use((req: Request, res: Response) => {
    sendProblem(res, problems.notFound(req.path.slice(0, 200)), res.locals.requestId);
  });

  // Errors -> problem+json (the mapping lives in problems.ts).
  const onError: ErrorRequestHandler = (err: unknown, _req, res, _next) => {
    answerError(res as unknown as ContextResponse, err, logger, deps.onAnswerFailure);
  };
  app.use(onError);
  return app;
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
  // These routes never read a body: a large one sent anyway is left unread, on a closed connection.
  if (largeBodyUnread(res.req)) res.setHeader('connection', 'close');
  res.end(out);
}
