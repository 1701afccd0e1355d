// Sustained HTTP load through the gateway: paced requests from a few keep-alive workers, every
// answer recorded (status, Retry-After, problem+json), every 202's requestId kept. A request the
// client gives up on (no answer within timeoutMs) counts as a failure, never as "maybe accepted".
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { sleep } from '../../support/time';

export interface RequestSpec {
  path: string;
  body: Buffer | string;
  contentType?: string;
  headers?: Record<string, string>;
  /** The caller disconnects after this many ms on purpose (recorded as status -2). */
  abortAfterMs?: number;
}

export interface LoadOptions {
  /** e.g. http://127.0.0.1:3000 */
  baseUrl: string;
  /** Target requests per second (paced, not a burst). */
  rate: number;
  /** Requests in flight at most (workers on a keep-alive agent). */
  concurrency: number;
  /** Client-side timeout per request; a request past it counts as `timeout` (a failure). */
  timeoutMs: number;
  /** The request number `seq`; its x-request-id is set by the generator. */
  request: (seq: number) => RequestSpec;
  /** Prefix of the x-request-id the generator sends (the gateway honours it and echoes it). */
  idPrefix?: string;
  /** Stop sending after this many requests (default: until stop()). */
  maxRequests?: number;
}

/** One answer: `status` 0 = connection error, -1 = client timeout, -2 = caller left on purpose. */
export interface LoadEvent {
  /** ms since the load started, when the answer arrived. */
  t: number;
  /** Wall-clock time of the answer (Date.now()). */
  at: number;
  status: number;
  ms: number;
  id: string;
  retryAfter: boolean;
}

export interface LoadStats {
  sent: number;
  byStatus: Record<string, number>;
  /** requestIds answered 202 (accepted = confirmed by the broker). */
  accepted: Set<string>;
  /** requestIds answered 200 (request/reply). */
  replied: Set<string>;
  /** Every request id sent, with the status it got. */
  statusOf: Map<string, number>;
  /** 429/503 answers without a Retry-After header. */
  missingRetryAfter: number;
  /** 4xx/5xx answers that were not application/problem+json. */
  notProblemJson: number;
  /** 202s whose body did not carry the requestId that was sent. */
  wrongRequestId: number;
  /** 200s whose body was not the request's body (the fixture echoes): a reply for another call. */
  wrongReply: number;
  timeouts: number;
  connectionErrors: number;
  maxLatencyMs: number;
  durationMs: number;
  events: LoadEvent[];
}

export interface Load {
  readonly stats: LoadStats;
  /** Resolves when maxRequests have been sent and answered. */
  readonly finished: Promise<void>;
  /** Stops sending, waits for the requests in flight, returns the figures. */
  stop(): Promise<LoadStats>;
}

export const runId = (): string => randomBytes(3).toString('hex');

export function startLoad(options: LoadOptions): Load {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
  const url = new URL(options.baseUrl);
  const prefix = options.idPrefix ?? `load-${runId()}`;
  const stats: LoadStats = {
    sent: 0,
    byStatus: {},
    accepted: new Set(),
    replied: new Set(),
    statusOf: new Map(),
    missingRetryAfter: 0,
    notProblemJson: 0,
    wrongRequestId: 0,
    wrongReply: 0,
    timeouts: 0,
    connectionErrors: 0,
    maxLatencyMs: 0,
    durationMs: 0,
    events: [],
  };
  const start = Date.now();
  const interval = 1000 / options.rate;
  let nextAt = start;
  let seq = 0;
  let stopped = false;

  const one = (): Promise<void> => {
    const n = seq++;
    const spec = options.request(n);
    const id = `${prefix}-${n}`;
    const body = typeof spec.body === 'string' ? Buffer.from(spec.body) : spec.body;
    stats.sent++;
    const sentAt = Date.now();
    return new Promise<void>((resolve) => {
      let done = false;
      const finish = (status: number, retryAfter: boolean, extra?: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        const now = Date.now();
        const ms = now - sentAt;
        stats.byStatus[status] = (stats.byStatus[status] ?? 0) + 1;
        stats.statusOf.set(id, status);
        stats.maxLatencyMs = Math.max(stats.maxLatencyMs, ms);
        if (status === -1) stats.timeouts++;
        if (status === 0) stats.connectionErrors++;
        if ((status === 429 || status === 503) && !retryAfter) stats.missingRetryAfter++;
        extra?.();
        stats.events.push({ t: now - start, at: now, status, ms, id, retryAfter });
        resolve();
      };
      const req = http.request(
        {
          host: url.hostname,
          port: url.port,
          method: 'POST',
          path: spec.path,
          agent,
          headers: {
            'content-type': spec.contentType ?? 'application/json',
            'content-length': body.length,
            'x-request-id': id,
            ...spec.headers,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', () => finish(0, false));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            const text = Buffer.concat(chunks).toString('utf8');
            finish(status, res.headers['retry-after'] !== undefined, () => {
              if (status >= 400 && res.headers['content-type'] !== 'application/problem+json')
                stats.notProblemJson++;
              if (status === 202) {
                let got: unknown;
                try {
                  got = (JSON.parse(text) as { requestId?: unknown }).requestId;
                } catch {
                  got = undefined;
                }
                if (got === id) stats.accepted.add(id);
                else stats.wrongRequestId++;
              }
              if (status === 200) {
                stats.replied.add(id);
                if (text !== body.toString('utf8')) stats.wrongReply++;
              }
            });
          });
        },
      );
      const leave = spec.abortAfterMs !== undefined && spec.abortAfterMs < options.timeoutMs;
      const timer = setTimeout(
        () => {
          finish(leave ? -2 : -1, false);
          req.destroy(new Error(leave ? 'caller left' : 'client timeout'));
        },
        Math.min(spec.abortAfterMs ?? Infinity, options.timeoutMs),
      );
      req.on('error', () => finish(0, false));
      req.end(body);
    });
  };

  const worker = async (): Promise<void> => {
    while (!stopped && (options.maxRequests === undefined || seq < options.maxRequests)) {
      const wait = nextAt - Date.now();
      nextAt = Math.max(nextAt, Date.now() - 1000) + interval;
      if (wait > 0) await sleep(wait);
      if (stopped || (options.maxRequests !== undefined && seq >= options.maxRequests)) break;
      await one();
    }
  };
  const workers = Array.from({ length: options.concurrency }, () => worker());

  const finished = Promise.all(workers).then(() => undefined);

  return {
    stats,
    finished,
    stop: async () => {
      stopped = true;
      await Promise.all(workers);
      stats.durationMs = Date.now() - start;
      agent.destroy();
      return stats;
    },
  };
}

/** Statuses as `202: 1,234, 503: 56` for reports. */
export function statusSummary(byStatus: Record<string, number>): string {
  const names: Record<string, string> = { '-2': 'caller left', '-1': 'timeout', '0': 'conn error' };
  const label = (s: string) => names[s] ?? s;
  return Object.entries(byStatus)
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([s, n]) => `${label(s)}: ${n}`)
    .join(', ');
}
