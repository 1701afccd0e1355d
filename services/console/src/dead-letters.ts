// The console's dead-letter routes: list and show a service's DLQ (read-only), replay behind the gateway's API key with a confirmation step.
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import { connect, type ChannelModel } from 'amqplib';
import { DlqError, peek, replay, type DeadLetter } from '@warren/dead-letters';
import { parseAmqpUrls } from '@warren/messaging';
import type { Logger } from '@warren/observability';
import { WarrenError } from '@warren/protocol';
import { presentedKey, type ApiKeys } from '@warren/service-kit';
import { sendJson, sendProblem } from './server';

/** A replay is confirmed with the token its first request returned, within this time. */
const CONFIRM_TTL_MS = 60_000;
const BODY_PREVIEW = 2048;

export interface DeadLetterRoutesOptions {
  amqpUrl: string;
  apiKeys: ApiKeys;
  logger: Logger;
}

interface Pending {
  service: string;
  keyId: number;
  count: number;
  until: number;
}

function view(l: DeadLetter) {
  const text = l.body.toString('utf8');
  // Shown as text when it is UTF-8 without control bytes (tab, newline, return aside), else base64.
  const printable =
    Buffer.from(text).equals(l.body) &&
    !l.body.some((b) => b < 0x20 && b !== 9 && b !== 10 && b !== 13);
  return {
    position: l.position,
    messageId: l.messageId ?? null,
    failedAt: l.failedAt ?? null,
    attempt: l.attempt ?? null,
    errorCode: l.errorCode ?? null,
    errorMessage: l.errorMessage ?? null,
    contentType: (l.properties.contentType as string | undefined) ?? null,
    bytes: l.body.length,
    body: printable
      ? text.slice(0, BODY_PREVIEW)
      : l.body.subarray(0, BODY_PREVIEW).toString('base64'),
    bodyEncoding: printable ? 'utf8' : 'base64',
  };
}

async function withConnection<T>(
  amqpUrl: string,
  work: (c: ChannelModel) => Promise<T>,
): Promise<T> {
  let last: unknown;
  for (const node of parseAmqpUrls(amqpUrl)) {
    let conn: ChannelModel;
    try {
      conn = await connect(node, { clientProperties: { connection_name: 'warren-console-dlq' } });
    } catch (err) {
      last = err;
      continue;
    }
    conn.on('error', () => undefined);
    try {
      return await work(conn);
    } finally {
      await conn.close().catch(() => undefined);
    }
  }
  throw new WarrenError('BROKER_UNAVAILABLE', 'the broker is unavailable', {
    cause: last,
    expose: true,
  });
}

function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 4096) {
        reject(new WarrenError('BODY_TOO_LARGE', 'the body exceeds 4096 bytes', { expose: true }));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      if (size === 0) return resolve({});
      try {
        const v: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        if (v && typeof v === 'object' && !Array.isArray(v)) resolve(v as Record<string, unknown>);
        else
          reject(
            new WarrenError('INVALID_JSON', 'the body must be a JSON object', { expose: true }),
          );
      } catch {
        reject(new WarrenError('INVALID_JSON', 'the body is not valid JSON', { expose: true }));
      }
    });
    req.on('error', reject);
  });
}

const PATH = /^\/api\/dlq\/([^/]+)(\/replay)?$/;

/**
 * GET /api/dlq/<service>[?limit=N]: the dead letters, left where they are. POST
 * /api/dlq/<service>/replay with a gateway API key: first without `confirm` — the answer says
 * how many would be replayed and gives a token; then `{"confirm": "<token>"}` within a minute
 * replays them (the same code as `npm run dlq -- replay --all`). Every action is logged.
 */
export function deadLetterRoutes(options: DeadLetterRoutesOptions) {
  const pending = new Map<string, Pending>();
  const { logger, apiKeys } = options;

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => {
    const m = PATH.exec(url.pathname);
    if (!m) return;
    const service = decodeURIComponent(m[1] as string);
    if (!m[2]) {
      if (req.method !== 'GET')
        throw new WarrenError('METHOD_NOT_ALLOWED', 'GET only', {
          expose: true,
          headers: { allow: 'GET' },
        });
      const rawLimit = url.searchParams.get('limit') ?? '50';
      if (!/^\d{1,3}$/.test(rawLimit) || Number(rawLimit) < 1)
        throw new WarrenError('BAD_REQUEST', 'query parameter "limit" must be 1 to 999', {
          expose: true,
        });
      const result = await withConnection(options.amqpUrl, (c) =>
        peek(c, service, { limit: Number(rawLimit) }),
      );
      return sendJson(res, 200, {
        queue: result.queue,
        depth: result.depth,
        letters: result.letters.map(view),
      });
    }
    if (req.method !== 'POST')
      throw new WarrenError('METHOD_NOT_ALLOWED', 'POST only', {
        expose: true,
        headers: { allow: 'POST' },
      });
    if (!apiKeys.enabled)
      throw new WarrenError(
        'UNAUTHORIZED',
        'actions are off: the console has no API key configured (GATEWAY_API_KEYS)',
        {
          expose: true,
          status: 403,
        },
      );
    const keyId = apiKeys.match(presentedKey(req.headers));
    if (keyId < 0)
      throw new WarrenError(
        'UNAUTHORIZED',
        'a gateway API key is required: Authorization: Bearer <key>',
        {
          expose: true,
          headers: { 'www-authenticate': 'Bearer realm="warren"' },
        },
      );
    const body = await readJson(req);
    const now = Date.now();
    for (const [t, p] of pending) if (p.until < now) pending.delete(t);
    if (body.confirm === undefined) {
      const { depth } = await withConnection(options.amqpUrl, (c) =>
        peek(c, service, { limit: 1 }),
      );
      const token = randomBytes(16).toString('base64url');
      pending.set(token, { service, keyId, count: depth, until: now + CONFIRM_TTL_MS });
      logger.info(
        { service, keyId, depth },
        'dead-letter replay requested; waiting for confirmation',
      );
      return sendJson(res, 200, {
        service,
        toReplay: depth,
        confirm: token,
        expiresInS: CONFIRM_TTL_MS / 1000,
      });
    }
    const token = typeof body.confirm === 'string' ? body.confirm : '';
    const p = pending.get(token);
    if (!p || p.service !== service || p.keyId !== keyId)
      throw new WarrenError(
        'BAD_REQUEST',
        'unknown or expired confirmation token: request the replay again',
        {
          expose: true,
        },
      );
    pending.delete(token);
    const { error, ...result } = await withConnection(options.amqpUrl, (c) => replay(c, service));
    logger.warn(
      { service, keyId, ...result, error: error?.message },
      'dead letters replayed from the console',
    );
    return sendJson(res, error ? 502 : 200, { service, ...result, error: error?.message ?? null });
  };

  return (req: http.IncomingMessage, res: http.ServerResponse, url: URL): boolean => {
    if (!PATH.test(url.pathname)) return false;
    handle(req, res, url).catch((err: unknown) => {
      if (err instanceof DlqError)
        return sendProblem(res, new WarrenError('UNKNOWN_SERVICE', err.message, { expose: true }));
      if (err instanceof WarrenError) return sendProblem(res, err);
      logger.error({ err }, 'dead-letter route failed');
      sendProblem(res, new WarrenError('INTERNAL', 'the dead-letter operation failed'));
    });
    return true;
  };
}
