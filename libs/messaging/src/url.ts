// AMQP URL handling: one or several nodes (comma-separated), heartbeat default, password-free form for logs.
import type { Options } from 'amqplib';

const DEFAULT_HEARTBEAT_S = 10;

/**
 * Parses `amqp://u:p@a:5672/v` or a comma-separated list of such URLs (the nodes of one cluster)
 * into connect options, adding `heartbeat=10` unless a URL sets one. Throws on a malformed URL.
 */
export function parseAmqpUrls(urls: string): Options.Connect[] {
  return urls
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const u = new URL(s);
      if (u.protocol !== 'amqp:' && u.protocol !== 'amqps:')
        throw new Error(`not an AMQP URL: ${safeUrl(s)}`);
      const q = u.searchParams;
      const num = (k: string) => (q.has(k) ? Number(q.get(k)) : undefined);
      const vhost = decodeURIComponent(u.pathname.replace(/^\//, ''));
      return {
        protocol: u.protocol.slice(0, -1),
        hostname: u.hostname.replace(/^\[|\]$/g, ''),
        port: u.port ? Number(u.port) : u.protocol === 'amqps:' ? 5671 : 5672,
        username: u.username ? decodeURIComponent(u.username) : 'guest',
        password: u.password ? decodeURIComponent(u.password) : 'guest',
        vhost: vhost || '/',
        heartbeat: num('heartbeat') ?? DEFAULT_HEARTBEAT_S,
        frameMax: num('frameMax'),
        locale: q.get('locale') ?? undefined,
      };
    });
}

/** `amqp://user:***@host:port/vhost` (each URL of a list), for log lines and error messages. */
export function safeUrl(url: string): string {
  return url
    .split(',')
    .map((one) => {
      try {
        const u = new URL(one.trim());
        if (u.password) u.password = '***';
        u.search = '';
        return u.toString();
      } catch {
        return '<invalid url>';
      }
    })
    .join(',');
}

/** host:port of a node, for logs. */
export const nodeLabel = (o: Options.Connect): string => `${o.hostname}:${o.port}`;
