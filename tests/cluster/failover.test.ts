// A node lost, nothing lost: 3-node RabbitMQ cluster, quorum queues, two gateways, two consumers;
// the node holding the queue leader dies mid-load; every 202-accepted request must still be processed.
//
//   npm run test:cluster                          full run (CLUSTER_LOAD_SECONDS=60 by default)
//   CLUSTER_LOAD_SECONDS=20 npm run test:cluster  the CI variant
//
// Env: CLUSTER_LOAD_SECONDS, CLUSTER_ASYNC_RPS (default 60), CLUSTER_RPC_RPS (default 6),
// CLUSTER_FAILURE = kill (SIGKILL to the node's VM, default) | stop (rabbitmqctl stop),
// CLUSTER_SENDER = gateway (default) | direct (libs/messaging publisher, no gateway),
// CLUSTER_QUEUE_TYPE (default quorum; classic shows what the test catches),
// CLUSTER_RESULTS = path of the JSON written (default docs/scaling-results.json; '-' = none),
// CLUSTER_DROP_EVERY = n: fault injection that tests the test (the consumers lose every n-th message,
// so the run must fail).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { startCluster, type Cluster, type ClusterNode } from '../support/cluster';
import { ROOT, freePort, startNode, stopAll, waitForHttp, type Proc } from '../support/processes';
import { eventually, sleep, scaled } from '../support/time';
import {
  countBy,
  cpuPercent,
  cpuSnapshot,
  directSender,
  gatewaySender,
  longestGap,
  quantile,
  runLoad,
  type CpuSnapshot,
  type PidGroups,
  type RequestRecord,
  type Sender,
} from './load';

const num = (name: string, fallback: number): number => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number`);
  return v;
};
const LOAD_SECONDS = num('CLUSTER_LOAD_SECONDS', 60);
const ASYNC_RPS = num('CLUSTER_ASYNC_RPS', 60);
const RPC_RPS = num('CLUSTER_RPC_RPS', 6);
const FAILURE = process.env.CLUSTER_FAILURE === 'stop' ? 'stop' : 'kill';
const SENDER = process.env.CLUSTER_SENDER === 'direct' ? 'direct' : 'gateway';
const QUEUE_TYPE = process.env.CLUSTER_QUEUE_TYPE === 'classic' ? 'classic' : 'quorum';
const RESULTS =
  process.env.CLUSTER_RESULTS === '-'
    ? undefined
    : path.resolve(ROOT, process.env.CLUSTER_RESULTS ?? 'docs/scaling-results.json');
const RPC_TIMEOUT_MS = 5000;
/** A request slower than this during the failover counts as disturbed. */
const SLOW_MS = 1000;
const QUEUE = 'echo';
let loadAverageAtStart = 0;

let cluster: Cluster | undefined;
const consumers: Proc[] = [];
const gateways: Proc[] = [];
const senders: Sender[] = [];
/** Ops ports of the consumers and gateways, for the readiness check after the failover. */
const opsPorts: number[] = [];
const gatewayOpsPorts: number[] = [];

afterAll(async () => {
  for (const s of senders) await s.close().catch(() => undefined);
  await stopAll();
  await cluster?.stop();
}, scaled(120_000));

/** `processed <id>` log lines of the consumers: id -> times (epoch ms) it was handled. */
function processedLog(): Map<string, number[]> {
  const seen = new Map<string, number[]>();
  for (const c of consumers) {
    for (const line of c.lines()) {
      const m = /^processed (\S+)$/.exec(String(line.msg ?? ''));
      if (!m?.[1]) continue;
      const times = seen.get(m[1]) ?? [];
      times.push(typeof line.time === 'number' ? line.time : Date.parse(String(line.time)));
      seen.set(m[1], times);
    }
  }
  return seen;
}

const countLines = (procs: Proc[], pattern: RegExp) =>
  procs.reduce((n, p) => n + (p.output().match(pattern)?.length ?? 0), 0);

async function startConsumers(url: string): Promise<void> {
  for (let i = 1; i <= 2; i++) {
    const metricsPort = await freePort();
    const proc = startNode('tests/fixtures/cluster-echo.js', {
      AMQP_URL: url,
      QUEUE_TYPE,
      METRICS_PORT: String(metricsPort),
      HEARTBEAT_INTERVAL_MS: '1000',
      SERVICE_PREFETCH: '20',
      HANDLER_MS: '2',
      DRAIN_TIMEOUT_MS: '5000',
      LOG_LEVEL: 'info',
      DROP_EVERY: process.env.CLUSTER_DROP_EVERY ?? '',
    });
    consumers.push(proc);
    opsPorts.push(metricsPort);
    await proc.waitFor(/service ready/, 60_000);
  }
}

async function startSenders(url: string): Promise<void> {
  for (let i = 0; i < 2; i++) {
    if (SENDER === 'direct')
      senders[i] = await directSender(`publisher-${i + 1}`, url, RPC_TIMEOUT_MS);
    else await startGateway(i, url);
  }
}

/** Starts (or restarts) gateway number i (0-based) and its HTTP sender. */
async function startGateway(i: number, url: string): Promise<void> {
  await gateways[i]?.stop();
  const port = await freePort();
  const opsPort = await freePort();
  const proc = startNode('services/gateway/dist/main.js', {
    AMQP_URL: url,
    PORT: String(port),
    HOST: '127.0.0.1',
    METRICS_PORT: String(opsPort),
    GATEWAY_RATE_LIMIT: '0',
    // info: the gateway logs nothing per request, and its connect lines name the node.
    LOG_LEVEL: 'info',
  });
  gateways[i] = proc;
  gatewayOpsPorts[i] = opsPort;
  await waitForHttp(`http://127.0.0.1:${opsPort}/readyz`, 200, 60_000);
  senders[i] = gatewaySender(`gateway-${i + 1}`, `http://127.0.0.1:${port}`, RPC_TIMEOUT_MS);
}

/** AMQP port of the node a process is connected to, from its last `broker (re)connected` line. */
function connectedPort(p: Proc): number | undefined {
  const node = p
    .lines()
    .filter((l) => /^broker (re)?connected$/.test(String(l.msg)))
    .at(-1)?.node;
  return node === undefined ? undefined : Number(String(node).split(':').pop());
}

/**
 * Each process starts at a random node. So that every run exercises a gateway losing its node,
 * restart the first gateway until one of them is connected to `node` (the queue leader's).
 */
async function putGatewayOn(node: ClusterNode, url: string): Promise<number> {
  let restarts = 0;
  while (!gateways.some((g) => connectedPort(g) === node.port)) {
    if (++restarts > 12) throw new Error(`no gateway connected to ${node.name} in 12 restarts`);
    await startGateway(0, url);
  }
  return restarts;
}

/** Gateway and consumer connections a node holds (by the node's AMQP port and connection name). */
async function connectionsOn(node: ClusterNode): Promise<{ gateways: number; consumers: number }> {
  try {
    const out = await node.ctl(
      'list_connections',
      '--quiet',
      'client_properties',
      'port',
      '--formatter',
      'json',
    );
    const rows = (JSON.parse(out) as { client_properties: unknown; port: number }[]).filter(
      (r) => r.port === node.port,
    );
    const count = (prefix: string) =>
      rows.filter((r) => JSON.stringify(r.client_properties).includes(`"${prefix}`)).length;
    return { gateways: count('gateway:'), consumers: count(`${QUEUE}:`) };
  } catch {
    return { gateways: -1, consumers: -1 };
  }
}

async function newLeader(cluster: Cluster, victim: ClusterNode, via: ClusterNode) {
  let leader = '';
  await eventually(
    async () => {
      const q = await cluster.queue(QUEUE, via).catch(() => undefined);
      leader = q?.leader ?? '';
      return leader !== '' && leader !== victim.name;
    },
    60_000,
    `a new leader for ${QUEUE}`,
  );
  return leader;
}

test('the queue leader node dies mid-load: every accepted request is processed, the node rejoins', async () => {
  loadAverageAtStart = os.loadavg()[0] ?? 0;
  const t0 = Date.now();
  cluster = await startCluster({ label: 'warren-cluster' });
  const bringUpMs = Date.now() - t0;
  const c = cluster;

  await startConsumers(c.url);
  await startSenders(c.url);
  const before = await c.queue(QUEUE);
  expect(before).toBeDefined();
  if (QUEUE_TYPE === 'quorum') expect(before?.members).toHaveLength(3);
  const gatewayRestarts =
    SENDER === 'gateway' ? await putGatewayOn(c.node(before?.leader ?? ''), c.url) : 0;

  // CPU of each kind of process: idle first, then under steady load until the failure.
  const groups: PidGroups = {
    brokers: () => c.nodes.map((n) => n.pid()),
    gateways: () => gateways.map((g) => g.child.pid),
    consumers: () => consumers.map((p) => p.child.pid),
    loadgen: () => [process.pid],
  };
  const idleStart = cpuSnapshot(groups);
  await sleep(3000);
  const idle = { from: idleStart, to: cpuSnapshot(groups) };

  const tag = `c${randomBytes(3).toString('hex')}`;
  const durationMs = LOAD_SECONDS * 1000;
  const load = runLoad({
    senders,
    durationMs,
    asyncPerSecond: ASYNC_RPS,
    rpcPerSecond: RPC_RPS,
    tag,
  });

  // A third of the way in: the node that holds the queue leader dies.
  await sleep(Math.min(2000, durationMs / 6));
  const steadyFrom = cpuSnapshot(groups);
  await sleep(load.startedAt + durationMs / 3 - Date.now());
  const steady = { from: steadyFrom, to: cpuSnapshot(groups) };
  const ctlStart = Date.now();
  const leaderBefore = (await c.queue(QUEUE))?.leader ?? '';
  /** One rabbitmqctl round trip: the resolution of newLeaderMs, which polls with it. */
  const ctlMs = Date.now() - ctlStart;
  const victim = c.node(leaderBefore);
  const survivor = c.nodes.find((n) => n !== victim) as ClusterNode;
  const onVictim = await connectionsOn(victim);
  const failedAt = Date.now();
  if (FAILURE === 'kill') await victim.kill();
  else await victim.stop();
  const downAt = Date.now();
  const leaderAfter = QUEUE_TYPE === 'quorum' ? await newLeader(c, victim, survivor) : '';
  const newLeaderMs = Date.now() - failedAt;

  // Two thirds in (or once a new leader is there): the node comes back, under load.
  const restartAt = Math.max(Date.now(), load.startedAt + (2 * durationMs) / 3);
  await sleep(restartAt - Date.now());
  const restartStarted = Date.now();
  await victim.start();
  const restartMs = Date.now() - restartStarted;
  let rejoinMs = 0;
  await eventually(
    async () => {
      const running = await c.runningNodes(survivor).catch((): string[] => []);
      const q = await c.queue(QUEUE, survivor).catch(() => undefined);
      rejoinMs = Date.now() - restartStarted;
      return (
        running.includes(victim.name) &&
        (QUEUE_TYPE !== 'quorum' || (q?.online.includes(victim.name) ?? false))
      );
    },
    120_000,
    `${victim.name} to rejoin`,
  );

  await load.done;
  const loadEndedAt = load.endedAt;

  // Everything accepted must be processed; give the consumers time to catch up.
  const records = load.records;
  const accepted = records.filter((r) => r.kind === 'async' && r.status === 202);
  let processed = processedLog();
  await eventually(
    () => {
      processed = processedLog();
      return accepted.every((r) => processed.has(r.id));
    },
    90_000,
    'every accepted request to be processed',
  ).catch(() => undefined);
  /** From the end of the load until the last accepted request was processed. */
  const firstHandled = accepted.flatMap((r) => {
    const times = processed.get(r.id);
    return times ? [Math.min(...times)] : [];
  });
  const drainMs = Math.max(loadEndedAt, ...firstHandled) - loadEndedAt;
  const lost = accepted.filter((r) => !processed.has(r.id)).map((r) => r.id);

  // After the run: all three nodes running as seen from each, the queue on three online members.
  const runningEverywhere = await Promise.all(c.nodes.map((n) => c.runningNodes(n)));
  const after = await c.queue(QUEUE);
  const ready = await Promise.all(
    [...opsPorts, ...gatewayOpsPorts].map(
      async (port) => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok,
    ),
  );

  const results = summarize({
    records,
    processed,
    lost,
    failedAt,
    downAt,
    loadStartedAt: load.startedAt,
    loadEndedAt,
    skipped: load.skipped,
    tag,
    victim: victim.name,
    leaderBefore,
    leaderAfter,
    timings: { bringUpMs, newLeaderMs, ctlMs, restartMs, rejoinMs, drainMs },
    gatewayRestarts,
    idle,
    steady,
    rejoined: {
      runningNodesSeenByEach: runningEverywhere.map((r) => r.length),
      queueMembers: after?.members.length ?? 0,
      queueOnline: after?.online.length ?? 0,
    },
    onVictim,
    reconnects: {
      gateways: countLines(gateways, /broker connection lost/g),
      consumers: countLines(consumers, /broker connection lost/g),
    },
  });
  if (RESULTS) writeResults(RESULTS, results);
  console.log(JSON.stringify(results, null, 2));

  expect(accepted.length).toBeGreaterThan(0);
  expect(lost).toEqual([]);
  expect(results.rpc.ok).toBeGreaterThan(0);
  expect(results.rpc.wrongReply).toBe(0);
  for (const r of runningEverywhere) expect(r).toHaveLength(3);
  if (QUEUE_TYPE === 'quorum') {
    expect(leaderAfter).not.toBe(victim.name);
    expect(after?.online).toHaveLength(3);
  }
  expect(ready.every(Boolean)).toBe(true);
});

interface SummaryInput {
  records: RequestRecord[];
  processed: Map<string, number[]>;
  lost: string[];
  failedAt: number;
  downAt: number;
  loadStartedAt: number;
  loadEndedAt: number;
  skipped: number;
  tag: string;
  victim: string;
  leaderBefore: string;
  leaderAfter: string;
  timings: Record<string, number>;
  rejoined: Record<string, unknown>;
  reconnects: Record<string, number>;
  /** Gateway restarts before the load until one gateway was on the leader's node. */
  gatewayRestarts: number;
  /** Connections the victim node held when it failed, by kind (-1: could not be listed). */
  onVictim: { gateways: number; consumers: number };
  idle: { from: CpuSnapshot; to: CpuSnapshot };
  steady: { from: CpuSnapshot; to: CpuSnapshot };
}

/** CPU under steady load, idle, and per handled message (ms of one core, idle subtracted). */
function cpuFigures(s: SummaryInput, processedTimes: number[]) {
  const idle = cpuPercent(s.idle.from, s.idle.to);
  const busy = cpuPercent(s.steady.from, s.steady.to);
  const { at: from } = s.steady.from;
  const { at: to } = s.steady.to;
  const seconds = (to - from) / 1000;
  const handled = processedTimes.filter((t) => t >= from && t <= to).length;
  const requests = s.records.filter(
    (r) => r.end >= from && r.end <= to && r.status >= 200 && r.status < 300,
  ).length;
  const perMessageMs: Record<string, number> = {};
  for (const group of Object.keys(busy)) {
    const extra = Math.max(0, (busy[group] ?? 0) - (idle[group] ?? 0)) / 100;
    perMessageMs[group] =
      handled > 0 ? Math.round(((extra * seconds * 1000) / handled) * 1000) / 1000 : 0;
  }
  return {
    windowSeconds: Math.round(seconds * 10) / 10,
    messagesPerSecond: Math.round((handled / seconds) * 10) / 10,
    requestsPerSecond: Math.round((requests / seconds) * 10) / 10,
    /** % of one core, summed over the group's processes (brokers = the 3 nodes). */
    idlePercent: idle,
    loadPercent: busy,
    /** CPU ms per handled message above idle: the per-message cost the capacity estimate uses. */
    perMessageMs,
  };
}

function summarize(s: SummaryInput) {
  const async = s.records.filter((r) => r.kind === 'async');
  const rpc = s.records.filter((r) => r.kind === 'rpc');
  const accepted = async.filter((r) => r.status === 202);
  const acceptedIds = new Set(accepted.map((r) => r.id));
  const ours = [...s.processed.entries()].filter(([id]) => id.startsWith(s.tag));
  const duplicates = ours.filter(([, times]) => times.length > 1);
  const processedTimes = ours.flatMap(([, times]) => times);
  const steady = s.records.filter((r) => r.end < s.failedAt && r.status >= 200 && r.status < 300);
  const latency = (rs: RequestRecord[]) => rs.map((r) => r.end - r.start);
  // Disturbed: in flight at the failure or started after it, and failed or slow, where slow is
  // over SLOW_MS and over twice the steady p99 (a loaded machine is slow without any failure).
  const slowMs = Math.max(SLOW_MS, 2 * quantile(latency(steady), 0.99));
  const disturbed = s.records.filter(
    (r) =>
      r.end >= s.failedAt &&
      (r.status < 200 || r.status >= 300 || r.end - r.start > slowMs || r.echoed === false),
  );
  const lastDisturbed = Math.max(s.failedAt, ...disturbed.map((r) => r.end));
  /** Longest stretch after the failure in which no request was accepted (202). */
  const acceptGapMs = Math.round(
    longestGap(
      accepted.map((r) => r.end),
      s.failedAt,
      s.loadEndedAt,
    ),
  );
  /** Longest stretch after the failure in which no message was processed. */
  const processGapMs = Math.round(longestGap(processedTimes, s.failedAt, s.loadEndedAt));
  /** The same per gateway: a client that talks to one gateway sees that gateway's gap. */
  const acceptGapBySenderMs: Record<string, number> = {};
  for (const label of new Set(s.records.map((r) => r.sender)))
    acceptGapBySenderMs[label] = Math.round(
      longestGap(
        accepted.filter((r) => r.sender === label).map((r) => r.end),
        s.failedAt,
        s.loadEndedAt,
      ),
    );
  const loadSeconds = (s.loadEndedAt - s.loadStartedAt) / 1000;
  const rel = (t: number) => Math.round(t - s.loadStartedAt);
  return {
    generatedAt: new Date().toISOString(),
    command: commandLine(),
    settings: {
      loadSeconds: LOAD_SECONDS,
      asyncPerSecond: ASYNC_RPS,
      rpcPerSecond: RPC_RPS,
      failure: FAILURE,
      sender: SENDER,
      queueType: QUEUE_TYPE,
      nodes: 3,
      gateways: SENDER === 'gateway' ? 2 : 0,
      publishers: SENDER === 'direct' ? 2 : 0,
      consumers: 2,
      consumerPrefetch: 20,
      rpcTimeoutMs: RPC_TIMEOUT_MS,
    },
    machine: machine(),
    failover: {
      victim: s.victim,
      leaderBefore: s.leaderBefore,
      leaderAfter: s.leaderAfter,
      failedAtMs: rel(s.failedAt),
      nodeDownAfterMs: s.downAt - s.failedAt,
      newLeaderMs: s.timings.newLeaderMs,
      /** Until every gateway accepts again and messages flow: the longest of the gaps below. */
      recoveryMs: Math.max(processGapMs, ...Object.values(acceptGapBySenderMs)),
      /** From the failure until the last request that failed or was slow (> slowMs) completed. */
      disturbedForMs: Math.round(lastDisturbed - s.failedAt),
      slowMs,
      acceptGapMs,
      acceptGapBySenderMs,
      processGapMs,
      disturbedRequests: disturbed.length,
      connectionsOnVictim: s.onVictim,
      gatewayRestartsToReachLeaderNode: s.gatewayRestarts,
      reconnects: s.reconnects,
    },
    async: {
      sent: async.length,
      accepted: accepted.length,
      byStatus: countBy(async, (r) => String(r.status)),
      processed: accepted.filter((r) => s.processed.has(r.id)).length,
      lost: s.lost.length,
      lostIds: s.lost.slice(0, 20),
      processedButNotAccepted: async.filter((r) => !acceptedIds.has(r.id) && s.processed.has(r.id))
        .length,
      acceptedPerSecond: Math.round((accepted.length / loadSeconds) * 10) / 10,
      steadyLatencyMs: {
        p50: quantile(latency(steady.filter((r) => r.kind === 'async')), 0.5),
        p99: quantile(latency(steady.filter((r) => r.kind === 'async')), 0.99),
      },
      maxLatencyMs: Math.max(0, ...latency(accepted)),
    },
    rpc: {
      sent: rpc.length,
      ok: rpc.filter((r) => r.status === 200 && r.echoed === true).length,
      wrongReply: rpc.filter((r) => r.status === 200 && r.echoed !== true).length,
      byStatus: countBy(rpc, (r) => String(r.status)),
      steadyLatencyMs: {
        p50: quantile(latency(steady.filter((r) => r.kind === 'rpc')), 0.5),
        p99: quantile(latency(steady.filter((r) => r.kind === 'rpc')), 0.99),
      },
    },
    duplicates: {
      /** Messages handled more than once (at-least-once delivery after the node loss). */
      messages: duplicates.length,
      extraDeliveries: duplicates.reduce((n, [, t]) => n + t.length - 1, 0),
    },
    cpu: cpuFigures(s, processedTimes),
    skippedByPacer: s.skipped,
    timings: s.timings,
    rejoined: s.rejoined,
  };
}

type Results = ReturnType<typeof summarize>;

function commandLine(): string {
  const env = [
    'CLUSTER_LOAD_SECONDS',
    'CLUSTER_ASYNC_RPS',
    'CLUSTER_RPC_RPS',
    'CLUSTER_FAILURE',
    'CLUSTER_SENDER',
    'CLUSTER_QUEUE_TYPE',
    'CLUSTER_DROP_EVERY',
  ]
    .filter((k) => process.env[k] !== undefined)
    .map((k) => `${k}=${process.env[k]}`);
  return [...env, 'npm run test:cluster'].join(' ');
}

function machine() {
  const version = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', timeout: 30_000 }).trim();
    } catch {
      return 'unknown';
    }
  };
  const git = (args: string[]) => version('git', ['-C', ROOT, ...args]);
  return {
    /** The code that ran: commit, and whether libs/services/tests had uncommitted changes. */
    commit: git(['rev-parse', '--short', 'HEAD']),
    dirty: git(['status', '--porcelain', '--', 'libs', 'services', 'tests/cluster']) !== '',
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round(os.totalmem() / 1024 ** 3),
    node: process.version,
    rabbitmq: version('dpkg-query', ['-W', '-f=${Version}', 'rabbitmq-server']),
    erlang: version('dpkg-query', ['-W', '-f=${Version}', 'erlang-base']),
    /** 1-minute load average at the start and at the end (the machine is shared). */
    loadAverageStart: Math.round(loadAverageAtStart * 100) / 100,
    loadAverage1m: Math.round((os.loadavg()[0] ?? 0) * 100) / 100,
  };
}

function writeResults(file: string, results: Results): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
  // The Markdown views (docs/scaling-results.md and the blocks of docs/scaling.md) come from the JSON.
  execFileSync(process.execPath, [path.join(ROOT, 'tools/reports/scaling.js'), file], {
    stdio: 'inherit',
  });
}
