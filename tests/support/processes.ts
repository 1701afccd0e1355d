// Child processes for cross-service tests: spawn a built service or any program, read its output,
// wait for a line or an HTTP status, stop by PID.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { eventually, scaled } from './time';

export const ROOT = path.resolve(__dirname, '../..');

export interface Proc {
  child: ChildProcess;
  /** Everything the process printed so far (stdout + stderr). */
  output(): string;
  /** JSON log lines parsed from stdout. */
  lines(): Record<string, unknown>[];
  /** The first match of `pattern` in the output, waited for at most `timeoutMs` × TEST_TIME_SCALE. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const running = new Set<Proc>();

/** Runs `node <script>` (path relative to the repo root) with extra env. */
export function startNode(
  script: string,
  env: Record<string, string | undefined>,
  args: string[] = [],
): Proc {
  return startProcess(process.execPath, [path.join(ROOT, script), ...args], {
    env: { LOG_LEVEL: 'info', ...env },
    label: script,
  });
}

export interface StartOptions {
  /** Added to this process's environment. */
  env?: Record<string, string | undefined>;
  /** Working directory (default the repository root). */
  cwd?: string;
  /** How errors name the process (default the command). */
  label?: string;
}

/**
 * Runs `command args` (any program: node, python3, prometheus, ...), its stdout and stderr
 * collected; stopAll() stops it if the test does not.
 */
export function startProcess(command: string, args: string[], options: StartOptions = {}): Proc {
  const script = options.label ?? command;
  const child = spawn(command, args, {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const waiters: { pattern: RegExp; resolve: (s: string) => void }[] = [];
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const w of [...waiters]) {
      const m = w.pattern.exec(out);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m[0]);
      }
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  const proc: Proc = {
    child,
    output: () => out,
    lines: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => {
          try {
            return JSON.parse(l) as Record<string, unknown>;
          } catch {
            return {};
          }
        }),
    waitFor: (pattern, timeoutMs = 20_000) => {
      const m = pattern.exec(out);
      if (m) return Promise.resolve(m[0]);
      const limitMs = scaled(timeoutMs);
      return new Promise<string>((resolve, reject) => {
        const w = { pattern, resolve };
        waiters.push(w);
        const t = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(
            new Error(
              `timeout (${limitMs} ms) waiting for ${pattern} from ${script}; output:\n${out.slice(-3000)}`,
            ),
          );
        }, limitMs);
        exited.then(() => {
          clearTimeout(t);
          if (waiters.includes(w)) {
            waiters.splice(waiters.indexOf(w), 1);
            reject(new Error(`${script} exited before ${pattern}; output:\n${out.slice(-3000)}`));
          }
        });
        const orig = w.resolve;
        w.resolve = (s) => {
          clearTimeout(t);
          orig(s);
        };
      });
    },
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const code = await exited;
      clearTimeout(timer);
      running.delete(proc);
      return code;
    },
  };
  running.add(proc);
  return proc;
}

/** Kills every process a test file started (afterAll safety net). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop('SIGKILL')));
}

/**
 * Polls a URL until it answers with `status` (default 200), at most `timeoutMs` × TEST_TIME_SCALE.
 * Given the process that should answer, it fails as soon as that process exits, and a failure
 * carries the end of the process's output.
 */
export async function waitForHttp(
  url: string,
  status = 200,
  timeoutMs = 20_000,
  proc?: Proc,
): Promise<void> {
  const gone = () =>
    proc !== undefined && (proc.child.exitCode !== null || proc.child.signalCode !== null);
  const withOutput = (message: string) =>
    proc === undefined
      ? new Error(message)
      : new Error(`${message}; output:\n${proc.output().slice(-3000)}`);
  try {
    await eventually(
      async () => {
        if (gone()) return 'exited';
        const res = await fetch(url);
        await res.arrayBuffer();
        return res.status;
      },
      timeoutMs,
      `${url} to answer ${status}`,
      { until: (s) => s === status || s === 'exited', intervalMs: 200, retryErrors: true },
    );
  } catch (err) {
    throw withOutput((err as Error).message);
  }
  if (gone())
    throw withOutput(
      `${url}: the process exited (${String(proc?.child.exitCode ?? proc?.child.signalCode)}) before answering ${status}`,
    );
}

/**
 * Starts a process on ports from freePort() and waits until `readyUrl` answers 200. A port can be
 * taken by another test between freePort() and the process's listen(): when the process exits with
 * EADDRINUSE, it starts again on new ports (three tries).
 */
export async function startOnFreePorts<T extends { proc: Proc }>(
  start: () => Promise<T>,
  readyUrl: (started: T) => string,
  timeoutMs = 30_000,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const started = await start();
    try {
      await waitForHttp(readyUrl(started), 200, timeoutMs, started.proc);
      return started;
    } catch (err) {
      const exited = started.proc.child.exitCode !== null || started.proc.child.signalCode !== null;
      if (!exited || attempt >= 3 || !/EADDRINUSE/.test(started.proc.output())) throw err;
    }
  }
}

export interface GatewayChild {
  proc: Proc;
  /** Its HTTP port and its ops port (METRICS_PORT). */
  port: number;
  ops: number;
}

/**
 * The built gateway (services/gateway/dist) as a child process on loopback, on free ports, ready
 * (its /readyz answered 200); `env` adds to or overrides the defaults (no rate limit, no
 * queue-delay shedding).
 */
export function startGatewayChild(
  amqpUrl: string,
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<GatewayChild> {
  return startOnFreePorts(
    async () => {
      const port = await freePort();
      const ops = await freePort();
      const proc = startNode('services/gateway/dist/main.js', {
        AMQP_URL: amqpUrl,
        PORT: String(port),
        METRICS_PORT: String(ops),
        HOST: '127.0.0.1',
        GATEWAY_RATE_LIMIT: '0',
        // As in tests/gateway/helpers.ts: a test's burst of calls on a busy machine is not shed.
        GATEWAY_SHED_TARGET_MS: '0',
        ...env,
      });
      return { proc, port, ops };
    },
    (g) => `http://127.0.0.1:${g.ops}/readyz`,
    timeoutMs,
  );
}

/**
 * Ports for test processes come from below the kernel's ephemeral range (32768-60999 on Linux),
 * where outgoing connections (to the broker, fetch) take their local ports: a port picked with
 * listen(0) could be taken by one of them before the process under test binds it. Each Jest worker
 * gets its own block, so parallel test files do not pick the same port either.
 */
const PORT_BLOCK = 600;
const PORT_BASE = 20_000 + (Number(process.env.JEST_WORKER_ID ?? 0) % 20) * PORT_BLOCK;
let nextPort = Math.floor(Math.random() * PORT_BLOCK);

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    // No host: all interfaces, so a port some process holds on any address counts as taken.
    srv.listen(port, () => srv.close(() => resolve(true)));
  });
}

/** A port that was free a moment ago, from this worker's block below the ephemeral range. */
export async function freePort(): Promise<number> {
  for (let i = 0; i < PORT_BLOCK; i++) {
    const port = PORT_BASE + (nextPort++ % PORT_BLOCK);
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port in ${PORT_BASE}-${PORT_BASE + PORT_BLOCK - 1}`);
}
