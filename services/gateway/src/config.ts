// Gateway configuration: environment -> typed config, parsed once at start (one-line ConfigError on bad input).
import { z } from 'zod';
import {
  ConfigError,
  amqpUrlSchema,
  apiKeysFromEnv,
  parseEnv,
  serviceUsersSchema,
} from '@warren/service-kit';
import { MAX_TIMEOUT_MS } from './input';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const SIZE = /^(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?$/i;
const UNIT: Record<string, number> = {
  b: 1,
  kb: 1024,
  kib: 1024,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

/** `1048576`, `512kb`, `1mb`, `1gb` (binary units) -> bytes. */
export function parseSize(text: string): number | undefined {
  const m = SIZE.exec(text.trim());
  if (!m?.[1]) return undefined;
  return Number(m[1]) * (UNIT[(m[2] ?? 'b').toLowerCase()] ?? 1);
}

const MAX_BODY_CAP = 64 * 1024 ** 2;
const MAX_INFLIGHT_CAP = 16 * 1024 ** 3;

/** A size variable: bytes or with a binary unit, from 1 byte to `max` (named `maxText`). */
const size = (fallback: string, max: number, maxText: string) =>
  z
    .string()
    .default(fallback)
    .transform((v, ctx) => {
      const n = parseSize(v);
      if (n === undefined || n < 1 || n > max) {
        ctx.addIssue({
          code: 'custom',
          message: `must be a size from 1 byte to ${maxText}, such as 1048576, 512kb or 1mb`,
        });
        return z.NEVER;
      }
      return n;
    });

/** Margin of the default response timeout over the longest wait a request may have. */
export const RESPONSE_TIMEOUT_MARGIN_MS = 5000;

export const gatewayEnvSchema = z.object({
  AMQP_URL: amqpUrlSchema,
  PORT: int(0, 65535).default(3000),
  METRICS_PORT: int(0, 65535).default(9400),
  HOST: z.string().min(1).default('0.0.0.0'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  GATEWAY_API_KEYS: z.string().optional(),
  GATEWAY_API_KEYS_FILE: z.string().optional(),
  GATEWAY_REQUIRE_API_KEYS: z
    .enum(['true', 'false', '1', '0'])
    .default('false')
    .transform((v) => v === 'true' || v === '1'),
  GATEWAY_MAX_BODY: size('1mb', MAX_BODY_CAP, '64mb'),
  GATEWAY_MAX_INFLIGHT_BYTES: size('64mb', MAX_INFLIGHT_CAP, '16gb'),
  GATEWAY_MAX_CONNECTIONS: int(1, 1_000_000).default(10_000),
  GATEWAY_MAX_PENDING_CALLS: int(1, 1_000_000).default(10_000),
  GATEWAY_SHED_TARGET_MS: int(0, 60_000).default(50),
  GATEWAY_ADMIT_DELAY_MS: int(0, 60_000).default(30),
  GATEWAY_WORKERS: int(1, 64).default(1),
  GATEWAY_HEADERS_TIMEOUT_MS: int(100, 3_600_000).default(20_000),
  GATEWAY_REQUEST_TIMEOUT_MS: int(100, 3_600_000).default(60_000),
  GATEWAY_RESPONSE_TIMEOUT_MS: int(100, 3_600_000).optional(),
  GATEWAY_RATE_LIMIT: int(0, 100_000_000).default(6000),
  GATEWAY_TRUST_PROXY: z.string().optional(),
  GATEWAY_REGISTRY_GRACE_MS: int(0, 600_000).default(6000),
  GATEWAY_REGISTRY_MAX_SERVICES: int(1, 100_000).default(256),
  GATEWAY_REGISTRY_MAX_INSTANCES: int(1, 100_000).default(64),
  WARREN_SERVICE_USERS: serviceUsersSchema,
  GATEWAY_CONFIRM_TIMEOUT_MS: int(100, 60_000).default(5000),
  GATEWAY_ACCESS_LOG: z
    .enum(['true', 'false', '1', '0'])
    .default('true')
    .transform((v) => v === 'true' || v === '1'),
  AMQP_CONNECT_RETRIES: int(0, 1_000_000).default(5),
  SHUTDOWN_TIMEOUT_MS: int(0, 300_000).default(10_000),
});

export interface GatewayConfig {
  amqpUrl: string;
  port: number;
  metricsPort: number;
  host: string;
  logLevel: z.infer<typeof gatewayEnvSchema>['LOG_LEVEL'];
  /** Empty = open (no auth); never empty when GATEWAY_REQUIRE_API_KEYS is true. */
  apiKeys: readonly string[];
  maxBodyBytes: number;
  /** Request bodies being read at once, summed (declared length, or maxBodyBytes when unknown). */
  maxInflightBytes: number;
  /** Open connections served; past it requests are answered 503 (and past +10 %, closed unanswered). */
  maxConnections: number;
  /** Gateway processes sharing the HTTP port (node:cluster) under one primary; 1 = this process serves. */
  workers: number;
  /** Calls waiting for replies at once; past it 503 overloaded (GATEWAY_MAX_PENDING_CALLS). */
  maxPendingCalls: number;
  /**
   * Calls to a service are shed (503 overloaded) while the least time its calls spent queued in
   * each 100 ms exceeds this (GATEWAY_SHED_TARGET_MS; 0 = never): see shedding.ts.
   */
  shedTargetMs: number;
  /**
   * While the gateway's event loop runs later than this (the least delay in each 100 ms), requests
   * in progress are limited and the excess is refused at the door, 503 overloaded
   * (GATEWAY_ADMIT_DELAY_MS; 0 = never): see admission.ts.
   */
  admitDelayMs: number;
  /** node:http's headersTimeout: the request line and headers must arrive within it. */
  headersTimeoutMs: number;
  /** node:http's requestTimeout: the whole request (headers and body) must arrive within it. */
  requestTimeoutMs: number;
  /** Longest time from a request's last byte to the end of its answer (else 504, or the socket is closed). */
  responseTimeoutMs: number;
  /** Requests per minute per API key (or client IP when open); 0 disables the limit. */
  rateLimitPerMinute: number;
  /** Express `trust proxy` setting (hop count, or comma list of addresses/subnets); unset = none. */
  trustProxy: number | string | undefined;
  /** After each (re)connect, how long a service unseen by the registry is still tried. */
  registryGraceMs: number;
  /** Most services, and instances per service, the registry tracks. */
  registryMaxServices: number;
  registryMaxInstances: number;
  /** Service -> broker user where not named like the service (whose replies and beats are believed). */
  serviceUsers: ReadonlyMap<string, string>;
  confirmTimeoutMs: number;
  /** One access-log line per request (info; 5xx at warn). */
  accessLog: boolean;
  connectRetries: number;
  shutdownTimeoutMs: number;
}

export function parseGatewayConfig(env: NodeJS.ProcessEnv): GatewayConfig {
  const e = parseEnv(gatewayEnvSchema, env);
  const keys = new Set(apiKeysFromEnv(e.GATEWAY_API_KEYS, e.GATEWAY_API_KEYS_FILE));
  // Fail closed where keys are mandatory: a missing or empty key source must not run the API open.
  if (e.GATEWAY_REQUIRE_API_KEYS && keys.size === 0)
    throw new ConfigError(
      'invalid configuration: GATEWAY_REQUIRE_API_KEYS: no API key configured (set GATEWAY_API_KEYS or GATEWAY_API_KEYS_FILE, or GATEWAY_REQUIRE_API_KEYS=false to run open)',
    );
  if (e.GATEWAY_HEADERS_TIMEOUT_MS > e.GATEWAY_REQUEST_TIMEOUT_MS)
    throw new ConfigError(
      `invalid configuration: GATEWAY_HEADERS_TIMEOUT_MS (${e.GATEWAY_HEADERS_TIMEOUT_MS}) must not exceed GATEWAY_REQUEST_TIMEOUT_MS (${e.GATEWAY_REQUEST_TIMEOUT_MS})`,
    );
  if (e.GATEWAY_MAX_INFLIGHT_BYTES < e.GATEWAY_MAX_BODY)
    throw new ConfigError(
      `invalid configuration: GATEWAY_MAX_INFLIGHT_BYTES (${e.GATEWAY_MAX_INFLIGHT_BYTES}) must be at least GATEWAY_MAX_BODY (${e.GATEWAY_MAX_BODY}), or no body of the largest size could be read`,
    );
  return {
    amqpUrl: e.AMQP_URL,
    port: e.PORT,
    metricsPort: e.METRICS_PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    apiKeys: [...keys],
    maxBodyBytes: e.GATEWAY_MAX_BODY,
    maxInflightBytes: e.GATEWAY_MAX_INFLIGHT_BYTES,
    maxConnections: e.GATEWAY_MAX_CONNECTIONS,
    maxPendingCalls: e.GATEWAY_MAX_PENDING_CALLS,
    shedTargetMs: e.GATEWAY_SHED_TARGET_MS,
    admitDelayMs: e.GATEWAY_ADMIT_DELAY_MS,
    workers: e.GATEWAY_WORKERS,
    headersTimeoutMs: e.GATEWAY_HEADERS_TIMEOUT_MS,
    requestTimeoutMs: e.GATEWAY_REQUEST_TIMEOUT_MS,
    // By default, the longest wait a request may have (a 30 s call, or a confirm if that is
    // configured longer) and a margin: the bound only catches answers that will never come.
    responseTimeoutMs:
      e.GATEWAY_RESPONSE_TIMEOUT_MS ??
      Math.max(MAX_TIMEOUT_MS, e.GATEWAY_CONFIRM_TIMEOUT_MS) + RESPONSE_TIMEOUT_MARGIN_MS,
    rateLimitPerMinute: e.GATEWAY_RATE_LIMIT,
    trustProxy: parseTrustProxy(e.GATEWAY_TRUST_PROXY),
    registryGraceMs: e.GATEWAY_REGISTRY_GRACE_MS,
    registryMaxServices: e.GATEWAY_REGISTRY_MAX_SERVICES,
    registryMaxInstances: e.GATEWAY_REGISTRY_MAX_INSTANCES,
    serviceUsers: e.WARREN_SERVICE_USERS,
    confirmTimeoutMs: e.GATEWAY_CONFIRM_TIMEOUT_MS,
    accessLog: e.GATEWAY_ACCESS_LOG,
    connectRetries: e.AMQP_CONNECT_RETRIES,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
  };
}

function parseTrustProxy(v: string | undefined): number | string | undefined {
  if (v === undefined) return undefined;
  return /^\d+$/.test(v) ? Number(v) : v;
}
