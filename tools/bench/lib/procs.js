// Child processes of the benchmark: started here, tracked by PID, stopped by PID (never by name);
// CPU from /proc/<pid>/stat over a window and RSS from /proc/<pid>/status.
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');

const CLK_TCK = 100;
const live = new Set();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Environment variables that must never leak from the parent into a child (the peers' knobs). */
const SCRUB = /^(AMQP_NODELAY|MOL_.*|NEST_.*|PORT|METRICS_PORT|PREFETCH|CONCURRENCY)$/;

function childEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!SCRUB.test(k)) env[k] = v;
  return { ...env, ...extra };
}

const MAX_LOG_BYTES = 4 * 1024 * 1024;

/**
 * Starts `spec` = { name, file, args, env, cwd, ipc, nodeArgs }. With `ipc` the child says
 * {ready:true} over IPC (the peers' scripts); otherwise readiness is checked by the caller.
 */
function start(spec, logFile) {
  const out = fs.openSync(logFile, 'a');
  const child = spawn(
    process.execPath,
    [...(spec.nodeArgs || []), spec.file, ...(spec.args || [])],
    {
      cwd: spec.cwd,
      env: childEnv(spec.env || {}),
      stdio: spec.ipc ? ['ignore', out, out, 'ipc'] : ['ignore', out, out],
    },
  );
  fs.closeSync(out);
  child.spec = spec;
  child.logFile = logFile;
  live.add(child);
  child.exited = new Promise((resolve) =>
    child.once('exit', (code, sig) => {
      live.delete(child);
      resolve({ code, sig });
    }),
  );
  child.ready = new Promise((resolve, reject) => {
    const t = setTimeout(
      () => reject(new Error(`${spec.name} not ready in 45 s (log ${logFile})`)),
      45000,
    );
    if (spec.ipc) {
      child.on('message', (m) => {
        if (m && m.ready) {
          clearTimeout(t);
          resolve(m);
        }
      });
    } else if (spec.readyUrl) {
      (async () => {
        while (live.has(child)) {
          if ((await httpStatus('GET', spec.readyUrl)) === 200) {
            clearTimeout(t);
            resolve({ ready: true });
            return;
          }
          await sleep(100);
        }
      })();
    } else {
      clearTimeout(t);
      resolve({ ready: true });
    }
    child.exited.then(({ code, sig }) => {
      clearTimeout(t);
      reject(
        new Error(
          `${spec.name} exited early (${code ?? sig}); log ${logFile}: ${tail(logFile, 3)}`,
        ),
      );
    });
  });
  child.ready.catch(() => undefined);
  return child;
}

/** Stops a child: IPC 'stop' (peers) or SIGTERM (Warren services drain on it), then SIGKILL. */
async function stop(child, graceMs = 5000) {
  if (!live.has(child)) return;
  const gone = (ms) => Promise.race([child.exited.then(() => true), sleep(ms).then(() => false)]);
  if (child.spec.ipc) {
    try {
      child.send({ cmd: 'stop' });
    } catch {
      // channel already closed
    }
    if (await gone(3000)) return;
  }
  try {
    process.kill(child.pid, 'SIGTERM');
  } catch {
    // already gone
  }
  if (await gone(graceMs)) return;
  try {
    process.kill(child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
  await child.exited;
}

function killAllSync() {
  for (const c of live) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Keeps a big log readable and small: its first and last 200 lines. */
function trimLog(file) {
  try {
    const { size } = fs.statSync(file);
    if (size <= MAX_LOG_BYTES) return;
    const fd = fs.openSync(file, 'r');
    const head = Buffer.alloc(64 * 1024);
    const tailBuf = Buffer.alloc(64 * 1024);
    fs.readSync(fd, head, 0, head.length, 0);
    fs.readSync(fd, tailBuf, 0, tailBuf.length, size - tailBuf.length);
    fs.closeSync(fd);
    const h = head.toString('utf8').split('\n').slice(0, 200).join('\n');
    const t = tailBuf.toString('utf8').split('\n').slice(-200).join('\n');
    fs.writeFileSync(
      file,
      `${h}\n... [${size} bytes trimmed to head and tail by the benchmark] ...\n${t}`,
    );
  } catch {
    // no log
  }
}

function tail(file, n) {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-n).join(' / ').slice(0, 600);
  } catch {
    return '';
  }
}

function procTicks(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]); // utime + stime
  } catch {
    return NaN;
  }
}

function sysTicks() {
  const l = fs
    .readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  return { total: l.reduce((a, b) => a + b, 0), idle: l[3] + l[4] };
}

/** Resident set size in MB, NaN when the process is gone. */
function rssMb(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

function cpuSnap(pids) {
  const o = { t: Date.now(), sys: sysTicks(), p: {} };
  for (const [k, pid] of Object.entries(pids)) o.p[k] = procTicks(pid);
  return o;
}

/** % of one core per process over the window between two snapshots; machineBusy 200 = both cores full. */
function cpuDelta(a, b) {
  const secs = (b.t - a.t) / 1000;
  const r = {};
  for (const k of Object.keys(a.p)) r[k] = Math.round(((b.p[k] - a.p[k]) / CLK_TCK / secs) * 100);
  const tot = b.sys.total - a.sys.total;
  const cores = require('node:os').cpus().length;
  r.busy = Math.round((1 - (b.sys.idle - a.sys.idle) / tot) * 100 * cores);
  return r;
}

/** PID of the RabbitMQ node listening on `port` (there may be other, private test nodes), for its CPU. */
function brokerPid(port = 5672) {
  try {
    const out = execFileSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8' });
    const m = /pid=(\d+)/.exec(out);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Status of one request (0 on a connection error); POSTs `body` when given. */
function httpStatus(method, url, body, headers = {}) {
  return new Promise((resolve) => {
    const req = http.request(url, { method, headers, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => {
      req.destroy();
      resolve(0);
    });
    req.end(body);
  });
}

/** GET a text body (e.g. /metrics). */
function httpText(url) {
  return new Promise((resolve, reject) => {
    http
      .get(url, { timeout: 5000 }, (res) => {
        let s = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (s += d));
        res.on('end', () => resolve(s));
      })
      .on('error', reject);
  });
}

module.exports = {
  live,
  sleep,
  start,
  stop,
  killAllSync,
  trimLog,
  tail,
  rssMb,
  cpuSnap,
  cpuDelta,
  brokerPid,
  httpStatus,
  httpText,
};
