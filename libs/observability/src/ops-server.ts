// Ops HTTP server on METRICS_PORT: /metrics (Prometheus text), /healthz (alive), /readyz (ready), and a process's extra JSON routes.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from 'pino';

export interface OpsServerOptions {
  port: number;
  host?: string;
  registry: Registry;
  /** True while the process is connected to the broker and consuming/publishing. */
  isReady: () => boolean;
  logger: Logger;
  /** More GET routes answered with JSON (e.g. the gateway's /sd/prometheus). */
  routes?: Readonly<Record<string, () => unknown>>;
}

export interface OpsServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const { registry, isReady, logger } = options;
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (err: unknown) => {
          logger.error({ err }, 'metrics collection failed');
          res.writeHead(500).end();
        },
      );
    } else if (path === '/healthz') {
      json(res, 200, { status: 'ok' });
    } else if (path === '/readyz') {
      const ready = isReady();
      json(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready' });
    } else if (path !== undefined && options.routes && Object.hasOwn(options.routes, path)) {
      json(res, 200, options.routes[path]?.() ?? null);
    } else {
      json(res, 404, { status: 'not found' });
    }
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
