// Open-loop HTTP load: requests start at a constant arrival rate whatever the answers, latency from each scheduled start.
'use strict';
const net = require('node:net');

/**
 * POSTs `body` to `url` at `rate` requests/s for `seconds`, on a keep-alive agent of at most
 * `sockets` connections (past it requests wait in the agent: that wait counts as latency, as it
 * would for a client whose requests keep arriving). Each request's latency is measured from the
 * moment it was due, not from when a socket was free (no coordinated omission). A request with no
 * answer within `timeoutMs` counts as `timeout`. Requests due in the first `warmupS` seconds are
 * sent but not counted.
 *
 * Resolves with counts per status class, the latencies (ms) of 2xx answers and of shed answers
 * (503/429), and how many shed answers carried Retry-After.
 */
function openLoop({
  url,
  rate,
  seconds,
  warmupS = 2,
  body,
  headers = { 'content-type': 'application/json' },
  sockets = 1024,
  timeoutMs = 5000,
}) {
  const target = new URL(url);
  const payload = Buffer.from(body);
  // The request's bytes, made once (as autocannon does): a node http.Agent costs twice the CPU per
  // request, and on a shared machine the load generator's CPU is taken from the system measured.
  const head =
    `POST ${target.pathname}${target.search} HTTP/1.1\r\nhost: ${target.host}\r\n` +
    Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('') +
    `content-length: ${payload.length}\r\n\r\n`;
  const request = Buffer.concat([Buffer.from(head), payload]);
  const result = {
    rate,
    seconds,
    sent: 0,
    counted: 0,
    ok: 0,
    /** 2xx answers that came within the counted window (goodput: answers per second of the window). */
    okInWindow: 0,
    shed: 0,
    shedWithRetryAfter: 0,
    otherStatus: 0,
    timeout: 0,
    error: 0,
    connections: 0,
    okLatencies: [],
    shedLatencies: [],
  };
  const start = performance.now();
  const countFrom = start + warmupS * 1000;
  const end = start + seconds * 1000;
  /** Requests due and not yet written (no idle connection, and `sockets` open). */
  const backlog = [];
  let backlogHead = 0;
  const idle = [];
  const all = new Set();
  let outstanding = 0;
  let done = false;

  return new Promise((resolve) => {
    const finish = () => {
      if (done || outstanding > 0 || performance.now() < end) return;
      done = true;
      for (const c of all) c.socket.destroy();
      resolve(result);
    };
    const settle = (job, kind, status, retryAfter) => {
      if (job.settled) return;
      job.settled = true;
      outstanding--;
      if (job.counted) {
        const at = performance.now();
        const ms = at - job.due;
        if (kind === 'answer') {
          if (status >= 200 && status < 300) {
            result.ok++;
            if (at <= end) result.okInWindow++;
            result.okLatencies.push(ms);
          } else if (status === 503 || status === 429) {
            result.shed++;
            result.shedLatencies.push(ms);
            if (retryAfter) result.shedWithRetryAfter++;
          } else result.otherStatus++;
        } else result[kind]++;
      }
      finish();
    };
    const connect = () => {
      const conn = {
        socket: net.connect(Number(target.port), target.hostname),
        job: null,
        buf: null,
      };
      result.connections++;
      all.add(conn);
      conn.socket.setNoDelay(true);
      conn.socket.on('data', (chunk) => onData(conn, chunk));
      const lost = () => {
        all.delete(conn);
        const i = idle.indexOf(conn);
        if (i >= 0) idle.splice(i, 1);
        if (conn.job) settle(conn.job, 'error');
        conn.job = null;
        pump();
      };
      conn.socket.on('error', lost);
      conn.socket.on('close', lost);
      return conn;
    };
    const send = (conn, job) => {
      conn.job = job;
      conn.buf = null;
      conn.socket.write(request);
    };
    const onData = (conn, chunk) => {
      const buf = conn.buf ? Buffer.concat([conn.buf, chunk]) : chunk;
      const headEnd = buf.indexOf('\r\n\r\n');
      if (headEnd < 0) {
        conn.buf = buf;
        return;
      }
      const headText = buf.toString('latin1', 0, headEnd);
      const m = /content-length:\s*(\d+)/i.exec(headText);
      const total = headEnd + 4 + (m ? Number(m[1]) : 0);
      if (buf.length < total) {
        conn.buf = buf;
        return;
      }
      conn.buf = null;
      const status = Number(headText.slice(9, 12));
      const job = conn.job;
      conn.job = null;
      if (job) settle(job, 'answer', status, /\r\nretry-after:/i.test(headText));
      if (/\r\nconnection:\s*close/i.test(headText)) {
        conn.socket.destroy();
        return;
      }
      const next = takeDue();
      if (next) send(conn, next);
      else idle.push(conn);
    };
    const takeDue = () => {
      while (backlogHead < backlog.length) {
        const job = backlog[backlogHead++];
        if (!job.settled) return job;
      }
      backlog.length = 0;
      backlogHead = 0;
      return undefined;
    };
    const pump = () => {
      while (backlogHead < backlog.length) {
        const conn = idle.pop() ?? (all.size < sockets ? connect() : undefined);
        if (!conn) return;
        const job = takeDue();
        if (!job) {
          if (!conn.job) idle.push(conn);
          return;
        }
        send(conn, job);
      }
    };
    const fire = (due) => {
      const job = { due, counted: due >= countFrom, settled: false };
      if (job.counted) result.counted++;
      result.sent++;
      outstanding++;
      backlog.push(job);
      // From when it was due: a request still waiting for a connection times out too.
      setTimeout(() => settle(job, 'timeout'), Math.max(1, due + timeoutMs - performance.now()));
    };

    // Every millisecond, start the requests that have come due since the last tick: the i-th is
    // due at start + i / rate, rate x seconds requests in all.
    const total = Math.round(rate * seconds);
    let i = 0;
    const tick = setInterval(() => {
      const now = performance.now();
      for (
        let due = start + (i * 1000) / rate;
        i < total && due <= now;
        due = start + (i * 1000) / rate
      ) {
        fire(due);
        i++;
      }
      pump();
      if (now >= end) {
        clearInterval(tick);
        finish();
      }
    }, 1);
  });
}

/** Latency percentile (ms) of a list, nearest rank; undefined for an empty list. */
function percentile(values, p) {
  if (values.length === 0) return undefined;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/** The figures of one open-loop run: goodput (2xx/s over the counted window), p50/p99, shed share. */
function summarizeOpenLoop(r) {
  // Seconds of arrivals counted (the run less its warm-up).
  const countedS = r.counted / r.rate;
  return {
    offeredPerS: r.rate,
    goodputPerS: countedS > 0 ? r.okInWindow / countedS : 0,
    okP50Ms: percentile(r.okLatencies, 50),
    okP99Ms: percentile(r.okLatencies, 99),
    shedShare: r.counted > 0 ? r.shed / r.counted : 0,
    shedP50Ms: percentile(r.shedLatencies, 50),
    shedP99Ms: percentile(r.shedLatencies, 99),
    shedWithRetryAfter: r.shed > 0 ? r.shedWithRetryAfter / r.shed : undefined,
    timeouts: r.timeout,
    errors: r.error,
    otherStatus: r.otherStatus,
    counted: r.counted,
  };
}

module.exports = { openLoop, percentile, summarizeOpenLoop };
