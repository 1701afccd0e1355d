// Load for the cluster test: paced async and RPC requests through several senders, every outcome recorded.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { Broker, Publisher, RpcClient } from '@warren/messaging';
import { createLogger } from '@warren/observability';
import { sleep } from '../support/time';

export type Kind = 'async' | 'rpc';

export interface Outcome {
  /** HTTP status (202/200 = success); 0 = no answer (connection error or client timeout). */
  status: number;
  /** The id the system used (the gateway's `requestId`), when it answered one. */
  requestId?: string;
  /** RPC only: the reply carried exactly the bytes sent. */
  echoed?: boolean;
}

/** One way into the system: a gateway over HTTP, or (before the gateway exists) the libs directly. */
export interface Sender {
  readonly label: string;
  send(kind: Kind, id: string, body: Buffer): Promise<Outcome>;
  close(): Promise<void>;
}

export interface RequestRecord {
  id: string;
  kind: Kind;
  sender: string;
  /** Epoch ms. */
  start: number;
  end: number;
  status: number;
  echoed?: boolean;
}

const CLIENT_TIMEOUT_MS = 30_000;

export function gatewaySender(label: string, baseUrl: string, rpcTimeoutMs: number): Sender {
  return {
    label,
    async send(kind, id, body) {
      const url = `${baseUrl}/v1/echo${kind === 'rpc' ? `?wait=true&timeoutMs=${rpcTimeoutMs}` : ''}`;
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-request-id': id },
          body,
          signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
        });
        const bytes = Buffer.from(await res.arrayBuffer());
        if (kind === 'async') {
          let requestId: string | undefined;
          if (res.status === 202) {
            requestId = (JSON.parse(bytes.toString('utf8')) as { requestId?: string }).requestId;
          }
          return { status: res.status, requestId: requestId ?? id };
        }
        return { status: res.status, requestId: id, echoed: bytes.equals(body) };
      } catch {
        return { status: 0 };
      }
    },
    close: async () => undefined,
  };
}

/** Publisher + RPC client from libs/messaging on their own connection: 202 = confirmed, 200 = replied. */
export async function directSender(
  label: string,
  amqpUrl: string,
  rpcTimeoutMs: number,
): Promise<Sender> {
  const logger = createLogger({ service: `cluster-load-${label}`, level: 'silent' });
  const broker = await Broker.connect({ url: amqpUrl, logger, connectionName: label });
  const publisher = await Publisher.create(broker, { logger });
  const rpc = await RpcClient.create(broker, { logger });
  const props = (id: string) => ({
    messageId: id,
    contentType: 'application/json',
    timestamp: Math.floor(Date.now() / 1000),
    headers: { 'x-attempt': 1, 'x-request-id': id },
  });
  return {
    label,
    async send(kind, id, body) {
      try {
        if (kind === 'async') {
          await publisher.send('echo', body, { ...props(id), persistent: true });
          return { status: 202, requestId: id };
        }
        const reply = await rpc.call('echo', body, { ...props(id), timeoutMs: rpcTimeoutMs });
        return { status: reply.status, requestId: id, echoed: reply.body.equals(body) };
      } catch (err) {
        const code = (err as { code?: string }).code;
        return { status: code === 'RPC_TIMEOUT' ? 504 : 503 };
      }
    },
    async close() {
      await rpc.close();
      await publisher.close();
      await broker.close();
    },
  };
}

export interface LoadOptions {
  senders: readonly Sender[];
  durationMs: number;
  asyncPerSecond: number;
  rpcPerSecond: number;
  /** Prefix of every request id (x-request-id), unique per run. */
  tag: string;
  /** Requests in flight above which the pacer skips a tick (the offered load backs off). */
  maxInFlight?: number;
}

export interface LoadRun {
  records: RequestRecord[];
  /** Requests the pacer skipped because too many were in flight. */
  skipped: number;
  startedAt: number;
  /** When pacing stopped (epoch ms); 0 while the load runs. */
  endedAt: number;
  /** Resolves when the duration is over and every request has an outcome. */
  done: Promise<void>;
}

/** Paces requests evenly (10 ms ticks), alternating senders, and records every outcome. */
export function runLoad(o: LoadOptions): LoadRun {
  const records: RequestRecord[] = [];
  const run: LoadRun = {
    records,
    skipped: 0,
    startedAt: Date.now(),
    endedAt: 0,
    done: Promise.resolve(),
  };
  const maxInFlight = o.maxInFlight ?? 400;
  const pending = new Set<Promise<void>>();
  let seq = 0;
  const due = { async: 0, rpc: 0 };
  const sent = { async: 0, rpc: 0 };

  const fire = (kind: Kind) => {
    const n = seq++;
    const sender = o.senders[n % o.senders.length] as Sender;
    const id = `${o.tag}-${kind === 'async' ? 'a' : 'r'}${n}`;
    const body = Buffer.from(JSON.stringify({ n, id, kind, at: Date.now() }));
    const start = Date.now();
    const p = sender.send(kind, id, body).then((out) => {
      records.push({
        id: out.requestId ?? id,
        kind,
        sender: sender.label,
        start,
        end: Date.now(),
        status: out.status,
        ...(out.echoed === undefined ? {} : { echoed: out.echoed }),
      });
    });
    pending.add(p);
    void p.finally(() => pending.delete(p));
  };

  run.done = (async () => {
    for (;;) {
      const elapsed = Date.now() - run.startedAt;
      if (elapsed >= o.durationMs) break;
      due.async = Math.floor((elapsed / 1000) * o.asyncPerSecond);
      due.rpc = Math.floor((elapsed / 1000) * o.rpcPerSecond);
      for (const kind of ['async', 'rpc'] as const) {
        while (sent[kind] < due[kind]) {
          sent[kind]++;
          if (pending.size >= maxInFlight) run.skipped++;
          else fire(kind);
        }
      }
      await sleep(10);
    }
    run.endedAt = Date.now();
    while (pending.size > 0) await Promise.all([...pending]);
  })();
  return run;
}

/** p-quantile of numbers (nearest rank); 0 for an empty list. */
export function quantile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] as number;
}

/** Longest interval between consecutive instants in [from, to] (the bounds count as instants). */
export function longestGap(times: readonly number[], from: number, to: number): number {
  const inside = times.filter((t) => t >= from && t <= to).sort((a, b) => a - b);
  let prev = from;
  let gap = 0;
  for (const t of [...inside, to]) {
    gap = Math.max(gap, t - prev);
    prev = t;
  }
  return gap;
}

export function countBy<T>(items: readonly T[], key: (t: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const it of items) out[key(it)] = (out[key(it)] ?? 0) + 1;
  return out;
}

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user + system, all threads) a process used so far; 0 when it is gone. */
export function cpuSeconds(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

export type PidGroups = Record<string, () => (number | undefined)[]>;
export interface CpuSnapshot {
  at: number;
  seconds: Record<string, number>;
}

export function cpuSnapshot(groups: PidGroups): CpuSnapshot {
  const seconds: Record<string, number> = {};
  for (const [group, pids] of Object.entries(groups))
    seconds[group] = pids().reduce<number>((sum, pid) => sum + cpuSeconds(pid), 0);
  return { at: Date.now(), seconds };
}

/** % of one core each group used between two snapshots (summed over the group's processes). */
export function cpuPercent(a: CpuSnapshot, b: CpuSnapshot): Record<string, number> {
  const wall = (b.at - a.at) / 1000;
  const out: Record<string, number> = {};
  for (const group of Object.keys(b.seconds))
    out[group] =
      Math.round((((b.seconds[group] ?? 0) - (a.seconds[group] ?? 0)) / wall) * 1000) / 10;
  return out;
}
