// A private 3-node RabbitMQ cluster from the Debian package: own node names, ports and data dirs; stopped by PID.
//
// Each node is a `rabbitmq-server -detached` run as user rabbitmq (so every node and `rabbitmqctl`
// share the cookie in /var/lib/rabbitmq/.erlang.cookie), with its own rabbitmq.conf because the
// machine's /etc/rabbitmq/rabbitmq.conf pins the listener to 5672. Nodes 2..n join node 1 with
// `join_cluster` between `stop_app` and `start_app`. The machine's shared broker is never touched.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { eventually, scaled, sleep } from './time';

const run = promisify(execFile);
const SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server';
const CTL_TIMEOUT_MS = 60_000;

export interface ClusterNode {
  /** 1-based position in the cluster. */
  readonly index: number;
  /** Erlang node name, e.g. `warren-cluster-1-1234@localhost`. */
  readonly name: string;
  readonly port: number;
  readonly distPort: number;
  /** amqp://guest:guest@127.0.0.1:<port> */
  readonly url: string;
  readonly dataDir: string;
  /** PID of the node's Erlang VM (from its pid file), while it runs. */
  pid(): number | undefined;
  isRunning(): boolean;
  /** `rabbitmqctl -n <name> ...args` (as user rabbitmq through the Debian wrapper); stdout. */
  ctl(...args: string[]): Promise<string>;
  /** Starts the node (again) on its data dir and waits until it booted. */
  start(): Promise<void>;
  /** Hard failure: SIGKILL to the VM, like a machine or pod lost. Data dir kept for a restart. */
  kill(): Promise<void>;
  /** Clean stop (`rabbitmqctl stop`, then SIGKILL by PID if it lingers). Data dir kept. */
  stop(): Promise<void>;
}

export interface QueueMembership {
  /** Quorum queues: the leader's node; classic queues: the node the queue lives on. */
  leader: string;
  members: string[];
  online: string[];
}

export interface Cluster {
  readonly nodes: readonly ClusterNode[];
  /** Every node's URL, comma-separated (the AMQP_URL form the libs accept). */
  readonly url: string;
  readonly dir: string;
  node(name: string): ClusterNode;
  /** Running nodes as seen by `via` (default: the first running node). */
  runningNodes(via?: ClusterNode): Promise<string[]>;
  /** Leader and members of a quorum queue, asked of `via` (default: the first running node). */
  queue(name: string, via?: ClusterNode): Promise<QueueMembership | undefined>;
  /** Stops every node this cluster started, by PID, and removes the data dirs. */
  stop(): Promise<void>;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    // No host: binds the dual-stack wildcard, so it fails if anything listens on the port.
    srv.listen(port, () => srv.close(() => resolve(true)));
  });
}

/** `count` consecutive free ports below the ephemeral range (32768+), so clients cannot steal them. */
async function freePortBlock(count: number): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 21000 + Math.floor(Math.random() * ((32000 - 21000) / count)) * count;
    const checks = await Promise.all(Array.from({ length: count }, (_, i) => portFree(base + i)));
    if (checks.every(Boolean)) return base;
  }
  throw new Error(`no block of ${count} free ports found in 21000-32000`);
}

function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** PIDs of every node started by any cluster in this process: killed on exit as a safety net. */
const started = new Set<ClusterNode>();
process.once('exit', () => {
  for (const node of started) {
    const pid = node.pid();
    if (alive(pid)) process.kill(pid as number, 'SIGKILL');
  }
});

function createNode(
  index: number,
  label: string,
  port: number,
  distPort: number,
  root: string,
): ClusterNode {
  const name = `${label}-${index}-${process.pid}@localhost`;
  const dataDir = path.join(root, `node${index}`);
  fs.mkdirSync(path.join(dataDir, 'log'), { recursive: true });
  fs.writeFileSync(path.join(dataDir, 'plugins'), '[].\n');
  fs.writeFileSync(
    path.join(dataDir, 'rabbitmq.conf'),
    [
      `listeners.tcp.local = 127.0.0.1:${port}`,
      'loopback_users.guest = true',
      // Small disks on test machines: do not block publishers at the default 50 MB free-disk alarm.
      'disk_free_limit.absolute = 10MB',
      '',
    ].join('\n'),
  );
  execFileSync('chown', ['-R', 'rabbitmq:rabbitmq', dataDir]);
  const env = [
    `RABBITMQ_NODENAME=${name}`,
    `RABBITMQ_NODE_PORT=${port}`,
    `RABBITMQ_DIST_PORT=${distPort}`,
    `RABBITMQ_MNESIA_BASE=${dataDir}/mnesia`,
    `RABBITMQ_LOG_BASE=${dataDir}/log`,
    `RABBITMQ_PID_FILE=${dataDir}/pid`,
    `RABBITMQ_ENABLED_PLUGINS_FILE=${dataDir}/plugins`,
    `RABBITMQ_CONFIG_FILE=${dataDir}/rabbitmq.conf`,
  ].join(' ');

  let lastPid: number | undefined;
  const pid = (): number | undefined => {
    try {
      const n = Number(fs.readFileSync(path.join(dataDir, 'pid'), 'utf8').trim());
      if (n > 0) lastPid = n;
    } catch {
      // not written yet, or removed
    }
    return alive(lastPid) ? lastPid : undefined;
  };
  const ctl = async (...args: string[]): Promise<string> =>
    (await run('rabbitmqctl', ['-n', name, ...args], { timeout: CTL_TIMEOUT_MS })).stdout;

  const waitGone = async (p: number | undefined, timeoutMs: number) => {
    const deadline = Date.now() + scaled(timeoutMs);
    while (alive(p) && Date.now() < deadline) await sleep(100);
    return !alive(p);
  };

  const node: ClusterNode = {
    index,
    name,
    port,
    distPort,
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    dataDir,
    pid,
    isRunning: () => pid() !== undefined,
    ctl,
    async start() {
      if (node.isRunning()) return;
      fs.rmSync(path.join(dataDir, 'pid'), { force: true });
      started.add(node);
      await run('su', ['rabbitmq', '-s', '/bin/sh', '-c', `${env} ${SERVER} -detached`]);
      try {
        await eventually(() => ctl('await_startup').then(() => true), 120_000, `node ${name}`, {
          intervalMs: 500,
          retryErrors: true,
        });
        pid();
      } catch (err) {
        const log = readTail(path.join(dataDir, 'log'), 2000);
        throw new Error(`node ${name} did not start: ${String(err)}\n${log}`, { cause: err });
      }
    },
    async kill() {
      const p = pid();
      if (p) process.kill(p, 'SIGKILL');
      if (!(await waitGone(p, 10_000))) throw new Error(`node ${name} (pid ${p}) survived SIGKILL`);
    },
    async stop() {
      const p = pid();
      if (!p) return;
      await ctl('stop').catch(() => undefined);
      if (!(await waitGone(p, 15_000))) process.kill(p, 'SIGKILL');
      await waitGone(p, 5000);
    },
  };
  return node;
}

function readTail(dir: string, chars: number): string {
  try {
    return fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.log'))
      .map((f) => `--- ${f}\n${fs.readFileSync(path.join(dir, f), 'utf8').slice(-chars)}`)
      .join('\n');
  } catch {
    return '';
  }
}

/** Lines of a `rabbitmqctl list_* --silent`-style table, split on tabs. */
function rows(text: string): string[][] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => l.split('\t'));
}

/** `[a@h, b@h]` (rabbitmqctl's list formatting) -> names. */
function nodeList(cell: string | undefined): string[] {
  return (cell ?? '')
    .replace(/^\[|\]$/g, '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export interface ClusterOptions {
  /** Default 3. */
  size?: number;
  /** Node name prefix; default `warren-cluster`. */
  label?: string;
}

/** Starts `size` nodes in parallel, clusters them onto node 1 and checks every node sees all. */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  if (!fs.existsSync(SERVER))
    throw new Error(`${SERVER} not found: install Debian's rabbitmq-server`);
  const size = options.size ?? 3;
  const label = options.label ?? 'warren-cluster';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rmqcluster-'));
  fs.chmodSync(dir, 0o755);
  const base = await freePortBlock(size * 2);
  const nodes = Array.from({ length: size }, (_, i) =>
    createNode(i + 1, label, base + i * 2, base + i * 2 + 1, dir),
  );

  const first = (): ClusterNode => {
    const n = nodes.find((x) => x.isRunning());
    if (!n) throw new Error('no cluster node is running');
    return n;
  };

  const cluster: Cluster = {
    nodes,
    url: nodes.map((n) => n.url).join(','),
    dir,
    node(name) {
      const n = nodes.find((x) => x.name === name);
      if (!n) throw new Error(`${name} is not a node of this cluster`);
      return n;
    },
    async runningNodes(via) {
      const out = await (via ?? first()).ctl('cluster_status', '--formatter', 'json');
      return ((JSON.parse(out) as { running_nodes?: string[] }).running_nodes ?? []).sort();
    },
    async queue(name, via) {
      const out = await (via ?? first()).ctl(
        'list_queues',
        '--quiet',
        '--no-table-headers',
        'name',
        'leader',
        'members',
        'online',
        'pid',
      );
      const row = rows(out).find((r) => r[0] === name);
      if (!row) return undefined;
      // A classic queue has no leader: its process id (<node.N.M>) names its node.
      const home = /<([^<>]+@[^.<>]+)\./.exec(row[4] ?? '')?.[1] ?? '';
      return { leader: row[1] || home, members: nodeList(row[2]), online: nodeList(row[3]) };
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.stop().catch(() => n.kill())));
      for (const n of nodes) started.delete(n);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    await Promise.all(nodes.map((n) => n.start()));
    const [seed, ...rest] = nodes as [ClusterNode, ...ClusterNode[]];
    for (const n of rest) {
      await n.ctl('stop_app');
      await n.ctl('join_cluster', seed.name);
      await n.ctl('start_app');
      await n.ctl('await_startup');
    }
    const names = nodes.map((n) => n.name).sort();
    for (const n of nodes) {
      const seen = await cluster.runningNodes(n);
      if (seen.join() !== names.join())
        throw new Error(
          `${n.name} sees running nodes [${seen.join()}], expected [${names.join()}]`,
        );
    }
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}
