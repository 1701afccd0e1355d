// Real processes for the reliability scenarios: the built gateway (services/gateway/dist) and the
// fixture consumer (tests/fixtures/reliability-service.js), on fixed free ports, plus what the
// scenarios read back from them: /readyz, /metrics, RSS, and the `processed <id>` lines.
import fs from 'node:fs';
import {
  freePort,
  startGatewayChild,
  startNode,
  startOnFreePorts,
  type Proc,
} from '../../support/processes';
import { scaled, sleep } from '../../support/time';

async function status(url: string): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** Resident set size of a process in bytes (Linux /proc). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

const opsReady = (s: { opsPort: number }) => `http://127.0.0.1:${s.opsPort}/readyz`;

interface Ops {
  opsPort: number;
  readyz(): Promise<number>;
  metrics(): Promise<string>;
  rss(): number;
}

function ops(proc: Proc, opsPort: number): Ops {
  return {
    opsPort,
    readyz: () => status(`http://127.0.0.1:${opsPort}/readyz`),
    metrics: async () => (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text(),
    rss: () => (proc.child.pid ? rssBytes(proc.child.pid) : 0),
  };
}

export interface GatewayProc extends Ops {
  proc: Proc;
  port: number;
  baseUrl: string;
}

/** The built gateway as a child process; waits until /readyz says 200. */
export async function startGatewayProc(
  amqpUrl: string,
  env: Record<string, string> = {},
): Promise<GatewayProc> {
  const {
    proc,
    port,
    ops: opsPort,
  } = await startGatewayChild(
    amqpUrl,
    {
      // One access-log line per request would cost more CPU than the requests themselves.
      LOG_LEVEL: 'warn',
      // (The per-client rate limit is off: the load runs from one IP, and it is not what these
      // scenarios test.)
      GATEWAY_REGISTRY_GRACE_MS: '0',
      AMQP_CONNECT_RETRIES: '5',
      ...env,
    },
    30_000,
  );
  return { proc, port, baseUrl: `http://127.0.0.1:${port}`, ...ops(proc, opsPort) };
}

export interface ServiceProc extends Ops {
  proc: Proc;
  instance: string;
}

/**
 * The fixture consumer (tests/fixtures/reliability-service.js) as a child process; waits until
 * /readyz says 200 (connected and consuming). `env` sets its behaviour (see the fixture).
 */
export async function startServiceProc(
  amqpUrl: string,
  name: string,
  instance: string,
  env: Record<string, string> = {},
): Promise<ServiceProc> {
  return startOnFreePorts(async () => {
    const opsPort = await freePort();
    const proc = startNode('tests/fixtures/reliability-service.js', {
      AMQP_URL: amqpUrl,
      SERVICE_NAME: name,
      INSTANCE: instance,
      METRICS_PORT: String(opsPort),
      LOG_LEVEL: 'warn',
      HEARTBEAT_INTERVAL_MS: '1000',
      AMQP_CONNECT_RETRIES: '5',
      ...env,
    });
    return { proc, instance, ...ops(proc, opsPort) };
  }, opsReady);
}

export interface Processed {
  id: string;
  instance: string;
  /** Wall-clock ms when the handler finished (before the ack). */
  at: number;
}

/** The fixture's `processed <id> <instance> <ms>` lines from the given processes, in order. */
export function processedLines(procs: Proc[]): Processed[] {
  const out: Processed[] = [];
  for (const p of procs)
    for (const m of p.output().matchAll(/^processed (\S+) (\S+) (\d+)$/gm))
      out.push({ id: m[1] as string, instance: m[2] as string, at: Number(m[3]) });
  return out;
}

/** The fixture's `started <id> <instance> <ms>` lines (handler start; only with LOG_STARTS=1). */
export function startedLines(procs: Proc[]): Processed[] {
  const out: Processed[] = [];
  for (const p of procs)
    for (const m of p.output().matchAll(/^started (\S+) (\S+) (\d+)$/gm))
      out.push({ id: m[1] as string, instance: m[2] as string, at: Number(m[3]) });
  return out;
}

export interface Tally {
  accepted: number;
  /** Accepted ids processed at least once. */
  processed: number;
  /** Accepted ids never processed: must be 0. */
  lost: number;
  lostIds: string[];
  /** Extra processings of the same id (at-least-once redeliveries). */
  duplicates: number;
  /** Processed ids the client never saw accepted (answer lost to a timeout or a 503 after the broker stored it). */
  processedNotAccepted: number;
}

export function tally(accepted: Set<string>, processed: Processed[]): Tally {
  const count = new Map<string, number>();
  for (const p of processed) count.set(p.id, (count.get(p.id) ?? 0) + 1);
  const lostIds = [...accepted].filter((id) => !count.has(id));
  let duplicates = 0;
  let processedNotAccepted = 0;
  for (const [id, n] of count) {
    duplicates += n - 1;
    if (!accepted.has(id)) processedNotAccepted++;
  }
  return {
    accepted: accepted.size,
    processed: accepted.size - lostIds.length,
    lost: lostIds.length,
    lostIds: lostIds.slice(0, 20),
    duplicates,
    processedNotAccepted,
  };
}

/** Polls until every accepted id shows up in the processed lines (or the time runs out). */
export async function waitProcessed(
  accepted: Set<string>,
  procs: () => Proc[],
  timeoutMs: number,
): Promise<Tally> {
  const deadline = Date.now() + scaled(timeoutMs);
  for (;;) {
    const t = tally(accepted, processedLines(procs()));
    if (t.lost === 0 || Date.now() > deadline) return t;
    await sleep(250);
  }
}
