// Environment -> typed, validated service config; parsed once at start, then passed down.
import { z } from 'zod';
import { parseServiceUsers } from '@warren/protocol';
import {
  TracingConfigError,
  tracingFromEnv,
  type Tracing,
  type TracingOptions,
} from '@warren/observability';
import { ConfigError } from './errors';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** AMQP_URL: one amqp(s):// URL, or several comma-separated (cluster nodes). Shared by every process. */
export const amqpUrlSchema = z
  .string()
  .default('amqp://guest:guest@127.0.0.1:5672')
  .refine(
    (v) =>
      v.split(',').every((u) => /^amqps?:\/\/[^\s]+$/.test(u.trim()) && URL.canParse(u.trim())),
    'must be an amqp:// or amqps:// URL, or several separated by commas',
  );

/**
 * WARREN_SERVICE_USERS: `service=user,...` for services whose broker user is not named like the
 * service; whose replies (and, at the gateway, heartbeats) are believed. Shared by every process.
 */
export const serviceUsersSchema = z
  .string()
  .default('')
  .transform((v, ctx) => {
    try {
      return parseServiceUsers(v);
    } catch (err) {
      ctx.addIssue({
        code: 'custom',
        message: `${(err as Error).message}; expected service=user,...`,
      });
      return z.NEVER;
    }
  });

export const serviceEnvSchema = z.object({
  AMQP_URL: amqpUrlSchema,
  METRICS_PORT: int(0, 65535).default(0),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  PREFETCH: int(1, 65535).optional(),
  /** Redeliveries before a message goes to the DLQ (overrides the definition's maxRedeliveries). */
  MAX_REDELIVERIES: int(0, 1_000_000).optional(),
  ADVERTISE_HOST: z.string().min(1).default('127.0.0.1'),
  HEARTBEAT_INTERVAL_MS: int(200, 600_000).default(5000),
  DRAIN_TIMEOUT_MS: int(0, 3_600_000).default(25_000),
  AMQP_CONNECT_RETRIES: int(0, 1_000_000).default(5),
  /** Queue type for services that do not pin one (compose and Kubernetes set quorum). */
  QUEUE_TYPE: z.enum(['classic', 'quorum']).optional(),
  WARREN_SERVICE_USERS: serviceUsersSchema,
});

export interface ServiceConfig {
  amqpUrl: string;
  metricsPort: number;
  logLevel: z.infer<typeof serviceEnvSchema>['LOG_LEVEL'];
  prefetch: number | undefined;
  maxRedeliveries: number | undefined;
  advertiseHost: string;
  heartbeatIntervalMs: number;
  drainTimeoutMs: number;
  connectRetries: number;
  queueType: 'classic' | 'quorum' | undefined;
  /** Service -> broker user where not named like the service. */
  serviceUsers: ReadonlyMap<string, string>;
}

/** Throws ConfigError with one line such as `invalid configuration: METRICS_PORT: ... (got "abc")`. */
export function parseServiceConfig(env: NodeJS.ProcessEnv): ServiceConfig {
  const e = parseEnv(serviceEnvSchema, env);
  return {
    amqpUrl: e.AMQP_URL,
    metricsPort: e.METRICS_PORT,
    logLevel: e.LOG_LEVEL,
    prefetch: e.PREFETCH,
    maxRedeliveries: e.MAX_REDELIVERIES,
    advertiseHost: e.ADVERTISE_HOST,
    heartbeatIntervalMs: e.HEARTBEAT_INTERVAL_MS,
    drainTimeoutMs: e.DRAIN_TIMEOUT_MS,
    connectRetries: e.AMQP_CONNECT_RETRIES,
    queueType: e.QUEUE_TYPE,
    serviceUsers: e.WARREN_SERVICE_USERS,
  };
}

/** Parses env with a zod object schema; empty strings count as unset. Shared by every process. */
export function parseEnv<S extends z.ZodObject>(schema: S, env: NodeJS.ProcessEnv): z.output<S> {
  const cleaned: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') cleaned[k] = v;
  const result = schema.safeParse(cleaned);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const key = issue.path.join('.');
    const got = cleaned[key];
    return `${key}: ${issue.message}${got !== undefined && !/KEY|PASSWORD|SECRET|URL/.test(key) ? ` (got "${got}")` : ''}`;
  });
  throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
}

/** Tracing from the standard OTEL_* variables (off unless set); a bad value is one ConfigError line. Shared by every process. */
export function startTracing(env: NodeJS.ProcessEnv, options: TracingOptions): Tracing {
  try {
    return tracingFromEnv(env, options);
  } catch (err) {
    if (err instanceof TracingConfigError)
      throw new ConfigError(`invalid configuration: ${err.message}`);
    throw err;
  }
}
