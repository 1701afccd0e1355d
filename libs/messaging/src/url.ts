// AMQP URL handling: heartbeat default, connection name, and a password-free form for logs.
const DEFAULT_HEARTBEAT_S = 10;

/** Adds `heartbeat=10` unless the URL sets one, so dead peers are noticed in seconds, not minutes. */
export function withDefaults(url: string): string {
  const u = new URL(url);
  if (!u.searchParams.has('heartbeat'))
    u.searchParams.set('heartbeat', String(DEFAULT_HEARTBEAT_S));
  return u.toString();
}

/** `amqp://user:***@host:port/vhost`, for log lines. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    u.search = '';
    return u.toString();
  } catch {
    return '<invalid url>';
  }
}
