// Console configuration: environment -> typed config, parsed once at start (one-line ConfigError on bad input).
import { z } from 'zod';
import { amqpUrlSchema, apiKeysFromEnv, parseEnv, serviceUsersSchema } from '@warren/service-kit';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const httpUrl = z
  .string()
  .refine((v) => /^https?:\/\//.test(v) && URL.canParse(v), 'must be an http(s) URL');

export const consoleEnvSchema = z.object({
  AMQP_URL: amqpUrlSchema,
  CONSOLE_PORT: int(0, 65535).default(3001),
  /** Loopback unless configured: the console shows the whole system. */
  CONSOLE_HOST: z.string().min(1).default('127.0.0.1'),
  METRICS_PORT: int(0, 65535).default(0),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Scrape period; at least 2 s so the console never weighs on what it watches. */
  CONSOLE_SCRAPE_INTERVAL_MS: int(2000, 60_000).default(2000),
  CONSOLE_HISTORY_MINUTES: int(1, 120).default(15),
  /** The gateway's /metrics ('' = none). Default: `npm start`'s gateway ops port. */
  CONSOLE_GATEWAY_METRICS_URL: z
    .union([z.literal('none'), httpUrl])
    .default('http://127.0.0.1:9400/metrics'),
  /** rabbitmq_prometheus's per-queue endpoint, for queue and DLQ depths ('none' = off). */
  CONSOLE_BROKER_METRICS_URL: z
    .union([z.literal('none'), httpUrl])
    .default('http://127.0.0.1:15692/metrics/detailed?family=queue_coarse_metrics'),
  WARREN_SERVICE_USERS: serviceUsersSchema,
  GATEWAY_API_KEYS: z.string().optional(),
  GATEWAY_API_KEYS_FILE: z.string().optional(),
});

export interface ConsoleConfig {
  amqpUrl: string;
  port: number;
  host: string;
  metricsPort: number;
  logLevel: z.infer<typeof consoleEnvSchema>['LOG_LEVEL'];
  intervalMs: number;
  historyMinutes: number;
  gatewayMetricsUrl: string | undefined;
  brokerMetricsUrl: string | undefined;
  /** The vhost of AMQP_URL: the queues whose depths are shown. */
  vhost: string;
  serviceUsers: ReadonlyMap<string, string>;
  /** The gateway's API keys: actions (DLQ replay) need one; none configured = actions off. */
  apiKeys: readonly string[];
}

export function parseConsoleConfig(env: NodeJS.ProcessEnv): ConsoleConfig {
  const e = parseEnv(consoleEnvSchema, env);
  const first = new URL(e.AMQP_URL.split(',')[0]?.trim() ?? '');
  const vhost = decodeURIComponent(first.pathname.replace(/^\//, '')) || '/';
  return {
    amqpUrl: e.AMQP_URL,
    port: e.CONSOLE_PORT,
    host: e.CONSOLE_HOST,
    metricsPort: e.METRICS_PORT,
    logLevel: e.LOG_LEVEL,
    intervalMs: e.CONSOLE_SCRAPE_INTERVAL_MS,
    historyMinutes: e.CONSOLE_HISTORY_MINUTES,
    gatewayMetricsUrl:
      e.CONSOLE_GATEWAY_METRICS_URL === 'none' ? undefined : e.CONSOLE_GATEWAY_METRICS_URL,
    brokerMetricsUrl:
      e.CONSOLE_BROKER_METRICS_URL === 'none' ? undefined : e.CONSOLE_BROKER_METRICS_URL,
    vhost,
    serviceUsers: e.WARREN_SERVICE_USERS,
    apiKeys: apiKeysFromEnv(e.GATEWAY_API_KEYS, e.GATEWAY_API_KEYS_FILE),
  };
}
