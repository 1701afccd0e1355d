// The console's HTTP side: the page and its assets, the JSON API it reads, a server-sent-events stream; problem+json for bad input.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Logger } from '@warren/observability';
import { PROBLEM_CONTENT_TYPE, WarrenError, problemJson } from '@warren/protocol';
import type { History, ServiceSummary, Step } from './history';
import { quantile } from './stats';

export interface ConsoleServerOptions {
  host: string;
  port: number;
  history: History;
  logger: Logger;
  intervalMs: number;
  /** Scrape rounds so far (the page shows when data is warming up). */
  rounds: () => number;
  /** Extra API routes (the dead-letter actions), tried before the 404. */
  routes?: (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => boolean;
}

export interface ConsoleServer {
  readonly port: number;
  /** Pushes the latest overview to every open stream (after each scrape round). */
  push(): void;
  close(): Promise<void>;
}

const PUBLIC = path.join(__dirname, '..', 'public');

/** Static files: the page, its script and style, and uPlot from its package (no CDN: works offline). */
const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: path.join(PUBLIC, 'index.html'), type: 'text/html; charset=utf-8' },
  '/app.js': { file: path.join(PUBLIC, 'app.js'), type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: path.join(PUBLIC, 'style.css'), type: 'text/css; charset=utf-8' },
  '/favicon.svg': { file: path.join(PUBLIC, 'favicon.svg'), type: 'image/svg+xml' },
  '/uplot.js': {
    file: require.resolve('uplot/dist/uPlot.iife.min.js'),
    type: 'text/javascript; charset=utf-8',
  },
  '/uplot.css': {
    file: require.resolve('uplot/dist/uPlot.min.css'),
    type: 'text/css; charset=utf-8',
  },
};

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'content-security-policy':
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
};

export function sendJson(res: http.ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}

export function sendProblem(res: http.ServerResponse, err: WarrenError): void {
  const body = problemJson(err);
  const headers: Record<string, string | number> = {
    ...SECURITY_HEADERS,
    'content-type': PROBLEM_CONTENT_TYPE,
    'content-length': Buffer.byteLength(body),
    ...(err.headers ?? {}),
  };
  res.writeHead(err.status, headers);
  res.end(body);
}

const badRequest = (detail: string) => new WarrenError('BAD_REQUEST', detail, { expose: true });

/** `?minutes=` (1-60, default 15). */
function minutesOf(url: URL): number {
  const raw = url.searchParams.get('minutes');
  if (raw === null) return 15;
  if (!/^\d{1,2}$/.test(raw) || Number(raw) < 1 || Number(raw) > 60)
    throw badRequest('query parameter "minutes" must be an integer from 1 to 60');
  return Number(raw);
}

/** One chart point per step: rates, p95 processing time, gauges. */
function point(s: Step): Record<string, number | null> {
  const per = (n: number) => (s.dt > 0 ? n / s.dt : 0);
  const http = Object.entries(s.http);
  return {
    t: s.t,
    rate: per(s.messages.success + s.messages.retry + s.messages.dead_letter + s.messages.rejected),
    success: per(s.messages.success),
    retry: per(s.messages.retry),
    dead_letter: per(s.messages.dead_letter),
    rejected: per(s.messages.rejected),
    p95: quantile(0.95, s.processing) ?? null,
    inFlight: s.inFlight,
    queueDepth: s.queueDepth ?? null,
    requests: per(http.reduce((a, [, v]) => a + v, 0)),
    errors5xx: per(http.filter(([k]) => k.startsWith('5')).reduce((a, [, v]) => a + v, 0)),
    rpcP95: quantile(0.95, s.rpc) ?? null,
  };
}

export function overview(history: History, rounds: number, intervalMs: number) {
  const all = history.summaries();
  const gateway: ServiceSummary | null = all.find((s) => s.name === 'gateway') ?? null;
  return {
    at: new Date().toISOString(),
    intervalMs,
    rounds,
    services: all.filter((s) => s.name !== 'gateway'),
    gateway,
  };
}

export async function startConsoleServer(options: ConsoleServerOptions): Promise<ConsoleServer> {
  const { history, logger } = options;
  const streams = new Set<http.ServerResponse>();
  const current = () => overview(history, options.rounds(), options.intervalMs);

  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://console');
    const asset = ASSETS[url.pathname];
    if (asset && (req.method === 'GET' || req.method === 'HEAD')) {
      fs.readFile(asset.file, (err, data) => {
        if (err) return sendProblem(res, new WarrenError('INTERNAL', 'asset missing'));
        res.writeHead(200, {
          ...SECURITY_HEADERS,
          'content-type': asset.type,
          'content-length': data.length,
        });
        res.end(req.method === 'HEAD' ? undefined : data);
      });
      return;
    }
    if (options.routes?.(req, res, url)) return;
    if (req.method !== 'GET')
      return sendProblem(
        res,
        new WarrenError('METHOD_NOT_ALLOWED', 'the console is read-only here', {
          expose: true,
          headers: { allow: 'GET' },
        }),
      );
    if (url.pathname === '/api/overview') return sendJson(res, 200, current());
    if (url.pathname === '/api/history') {
      const minutes = minutesOf(url);
      const service = url.searchParams.get('service');
      const names = service ? [service] : history.summaries().map((s) => s.name);
      const series: Record<string, Record<string, number | null>[]> = {};
      for (const n of names) series[n] = history.stepsOf(n, minutes * 60_000).map(point);
      return sendJson(res, 200, { minutes, series });
    }
    if (url.pathname === '/api/stream') {
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        'content-type': 'text/event-stream',
        'cache-control': 'no-store',
        connection: 'keep-alive',
      });
      res.write(
        `retry: ${options.intervalMs}\nevent: overview\ndata: ${JSON.stringify(current())}\n\n`,
      );
      streams.add(res);
      res.on('close', () => streams.delete(res));
      return;
    }
    sendProblem(
      res,
      new WarrenError('NOT_FOUND', `no route ${url.pathname.slice(0, 200)}`, { expose: true }),
    );
  };

  const server = http.createServer((req, res) => {
    try {
      handle(req, res);
    } catch (err) {
      if (err instanceof WarrenError) return sendProblem(res, err);
      logger.error({ err }, 'console request failed');
      if (!res.headersSent) sendProblem(res, new WarrenError('INTERNAL', 'console error'));
      else res.destroy();
    }
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    push() {
      if (streams.size === 0) return;
      const frame = `event: overview\ndata: ${JSON.stringify(current())}\n\n`;
      for (const s of streams) s.write(frame);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of streams) s.end();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
