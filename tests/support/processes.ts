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

/** Polls a URL until it answers with `status` (default 200), at most `timeoutMs` × TEST_TIME_SCALE. */
export async function waitForHttp(url: string, status = 200, timeoutMs = 20_000): Promise<void> {
  await eventually(
    async () => {
      const res = await fetch(url);
      await res.arrayBuffer();
      return res.status;
    },
    timeoutMs,
    `${url} to answer ${status}`,
    { until: (s) => s === status, intervalMs: 200, retryErrors: true },
  );
}

/** A port that was free a moment ago (bind :0, read, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
