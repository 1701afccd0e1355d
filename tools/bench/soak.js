// Warren's soak test: echo + gateway with production defaults, SOAK_N requests in chunks, RSS and
// pending-RPC state sampled after each chunk, and a verdict computed from the samples (issue 6:
// gateway and consumer RSS flat within 10 % over 1M requests; no growth in pending-RPC state).
//
//   npm run bench:soak                                       # 1,000,000 requests, mixed, docs/performance/
//   SOAK_N=60000 SOAK_CHUNK=10000 SOAK_OUT=/tmp/soak node tools/bench/soak.js   # a quick look
//   node tools/bench/soak.js --report docs/performance/soak-<stamp>.json     # re-render soak.md + PNG
//   node tools/bench/soak.js --help                                          # this text
//
// Knobs (env): SOAK_N 1000000, SOAK_CHUNK 50000, SOAK_MODE mixed|async|rpc (mixed: every chunk is
// half async, half RPC, at the same time on half the connections each), SOAK_CONNECTIONS 64,
// SOAK_DRAIN_MAX 120 (s to wait for the echo queue to empty after a chunk), SOAK_OUT
// docs/performance, BENCH_VHOST warren-soak, AMQP_URL, SOAK_GATEWAY_PORT 3310,
// SOAK_GATEWAY_OPS_PORT 9480, SOAK_ECHO_OPS_PORT 9481. Every child is started here and stopped by
// its PID; the vhost is created for the run and deleted after it.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const procs = require('./lib/procs');
const script = require('./lib/script');
const mq = require('./lib/amqp');
const stats = require('./lib/soak-stats');
const { renderSoakChart } = require('./lib/charts');
const { echoSpec, gatewaySpec, postLoad, probe } = require('./lib/warren');

const REPO = path.resolve(__dirname, '..', '..');
const num = (name, def) => (process.env[name] ? Number(process.env[name]) : def);
const CFG = {
  n: num('SOAK_N', 1_000_000),
  chunk: num('SOAK_CHUNK', 50_000),
  mode: process.env.SOAK_MODE || 'mixed',
  connections: num('SOAK_CONNECTIONS', 64),
  drainMaxS: num('SOAK_DRAIN_MAX', 120),
  amqpBase: process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672',
  vhost: process.env.BENCH_VHOST || 'warren-soak',
  outDir: path.resolve(REPO, process.env.SOAK_OUT || 'docs/performance'),
  ports: {
    gateway: num('SOAK_GATEWAY_PORT', 3310),
    gatewayOps: num('SOAK_GATEWAY_OPS_PORT', 9480),
    echoOps: num('SOAK_ECHO_OPS_PORT', 9481),
  },
};
const PORTS = CFG.ports;
const URLS = {
  async: `http://127.0.0.1:${PORTS.gateway}/v1/echo`,
  rpc: `http://127.0.0.1:${PORTS.gateway}/v1/echo?wait=true`,
};

const log = (...a) => console.error(`[soak ${new Date().toISOString().slice(11, 19)}]`, ...a);
let URL_AMQP;

// ---- processes and load (shared with bench.js: lib/warren.js) ---------------------------------------
const warrenEcho = () => echoSpec({ root: REPO, amqpUrl: URL_AMQP, opsPort: PORTS.echoOps });
const warrenGateway = () =>
  gatewaySpec({ root: REPO, amqpUrl: URL_AMQP, port: PORTS.gateway, opsPort: PORTS.gatewayOps });
const cannon = (url, amount, connections) =>
  postLoad(url, { amount, connections: Math.max(1, Math.min(connections, amount)) });

/** The modes of chunk `i` with their share of `amount` and of the connections. */
function chunkPlan(i, amount) {
  if (CFG.mode === 'async' || CFG.mode === 'rpc')
    return [{ mode: CFG.mode, amount, connections: CFG.connections }];
  const half = Math.ceil(amount / 2);
  const c = Math.max(1, CFG.connections >> 1);
  // The odd request of an odd chunk alternates between the two modes.
  const [a, b] = i % 2 ? [amount - half, half] : [half, amount - half];
  return [
    { mode: 'async', amount: a, connections: c },
    { mode: 'rpc', amount: b, connections: c },
  ].filter((p) => p.amount > 0);
}

async function scrape(port) {
  try {
    return await procs.httpText(`http://127.0.0.1:${port}/metrics`);
  } catch {
    return '';
  }
}

const MB = 1024 * 1024;

/** One chunk of load, with the gateway's pending-RPC gauge and both RSS polled while it runs. */
async function runChunk(i, amount, pids) {
  const plan = chunkPlan(i, amount);
  let pendingMax = 0;
  const rssMax = { gateway: 0, echo: 0 };
  let running = true;
  const poller = (async () => {
    while (running) {
      const text = await scrape(PORTS.gatewayOps);
      const p = stats.metric(text, 'mq_rpc_pending_calls');
      if (Number.isFinite(p)) pendingMax = Math.max(pendingMax, p);
      for (const k of Object.keys(rssMax))
        rssMax[k] = Math.max(rssMax[k], procs.rssMb(pids[k]) || 0);
      await procs.sleep(1000);
    }
  })();
  const t0 = Date.now();
  const results = await Promise.all(
    plan.map(async (p) => ({ ...p, r: await cannon(URLS[p.mode], p.amount, p.connections) })),
  ).finally(() => (running = false));
  const secs = (Date.now() - t0) / 1000;
  await poller;
  const byMode = {};
  for (const { mode, amount: planned, r } of results) {
    const want = mode === 'rpc' ? '200' : '202';
    const codes = Object.fromEntries(
      Object.entries(r.statusCodeStats || {}).map(([k, v]) => [k, v.count]),
    );
    byMode[mode] = {
      planned,
      requests: r.requests.total,
      rps: r.requests.total / secs,
      p50: r.latency.p50,
      p99: r.latency.p99,
      errors: r.errors + r.timeouts,
      non2xx: r.non2xx,
      // 2xx but not the status of the mode (202 async, 200 RPC) counts as an error too.
      wrongStatus: Object.entries(codes)
        .filter(([k]) => k !== want && /^2/.test(k))
        .reduce((s, [, v]) => s + v, 0),
      codes,
    };
  }
  const all = Object.values(byMode);
  const sumOf = (k) => all.reduce((s, m) => s + m[k], 0);
  return {
    chunk: i + 1,
    mode: plan.map((p) => p.mode).join('+'),
    requests: sumOf('requests'),
    secs,
    rps: sumOf('requests') / secs,
    errors: sumOf('errors') + sumOf('wrongStatus'),
    non2xx: sumOf('non2xx'),
    byMode,
    pendingRpcMax: pendingMax,
    rssMaxMb: rssMax,
  };
}

/** Waits (at most SOAK_DRAIN_MAX s) until the echo queue is empty; returns the seconds waited. */
async function drain(watcher) {
  const t0 = Date.now();
  for (;;) {
    const c = await watcher.count().catch(() => NaN);
    if (c === 0) return (Date.now() - t0) / 1000;
    if (Date.now() - t0 > CFG.drainMaxS * 1000) return NaN;
    await procs.sleep(200);
  }
}

async function sample(pids) {
  const [gw, echo] = await Promise.all([scrape(PORTS.gatewayOps), scrape(PORTS.echoOps)]);
  const heap = (t) => stats.metric(t, 'nodejs_heap_size_used_bytes') / MB;
  const heapTotal = (t) => stats.metric(t, 'nodejs_heap_size_total_bytes') / MB;
  return {
    rss: { gateway: procs.rssMb(pids.gateway), echo: procs.rssMb(pids.echo) },
    heapUsedMb: { gateway: heap(gw), echo: heap(echo) },
    heapTotalMb: { gateway: heapTotal(gw), echo: heapTotal(echo) },
    pendingRpc: stats.metric(gw, 'mq_rpc_pending_calls'),
    lateReplies: stats.metric(gw, 'mq_rpc_late_replies_total'),
  };
}

// ---- meta ---------------------------------------------------------------------------------------
function meta(stamp) {
  const sh = (cmd, args) => script.sh(REPO, cmd, args);
  const env = Object.keys(process.env)
    .filter((k) => /^(SOAK_|BENCH_VHOST$)/.test(k))
    .sort()
    .map((k) => `${k}=${process.env[k]}`);
  const invoked = process.env.npm_lifecycle_event
    ? `npm run ${process.env.npm_lifecycle_event}`
    : 'node tools/bench/soak.js';
  return {
    stamp,
    date: new Date().toISOString(),
    command: [...env, invoked].join(' '),
    config: { ...CFG, amqpBase: undefined, outDir: path.relative(REPO, CFG.outDir) || '.' },
    machine: script.machineFacts(),
    versions: {
      node: process.version,
      rabbitmq: sh('rabbitmqctl', ['-q', 'version']),
      autocannon: require('autocannon/package.json').version,
    },
    git: script.gitFacts(REPO),
  };
}

// ---- outputs ------------------------------------------------------------------------------------
async function writeOutputs(saved) {
  fs.mkdirSync(CFG.outDir, { recursive: true });
  const json = path.join(CFG.outDir, `soak-${saved.meta.stamp}.json`);
  if (!fs.existsSync(json)) fs.writeFileSync(json, `${JSON.stringify(saved, null, 2)}\n`);
  const png = path.join(CFG.outDir, 'soak-rss.png');
  let chart;
  try {
    await renderSoakChart(saved.samples, saved.verdict.warmupRequests, png);
    chart = path.basename(png);
  } catch (e) {
    log(`chart not rendered: ${e.message}`);
  }
  const md = path.join(CFG.outDir, 'soak.md');
  fs.writeFileSync(md, stats.soakMarkdown(saved, { json: path.basename(json), chart }));
  return { json, md, png: chart ? png : undefined };
}

// ---- main ---------------------------------------------------------------------------------------
const children = [];

async function main(session) {
  const args = script.parseArgs(__filename, process.argv.slice(2), { values: ['--report'] });
  if (args.help) return;
  session.vhost = CFG.vhost;
  if (args.values['--report']) {
    const saved = JSON.parse(fs.readFileSync(args.values['--report'], 'utf8'));
    // The verdict is recomputed from the samples with the current definitions.
    saved.verdict = stats.verdict({
      total: saved.meta.config.n,
      samples: saved.samples,
      finalPending: saved.finalPending,
    });
    const files = await writeOutputs(saved);
    console.log(fs.readFileSync(files.md, 'utf8'));
    return;
  }
  if (!['mixed', 'async', 'rpc'].includes(CFG.mode))
    throw new Error(`SOAK_MODE must be mixed, async or rpc (got ${CFG.mode})`);
  if (!(CFG.n > 0 && CFG.chunk > 0)) throw new Error('SOAK_N and SOAK_CHUNK must be positive');
  for (const f of ['services/gateway/dist/main.js', 'services/echo/dist/main.js'])
    if (!fs.existsSync(path.join(REPO, f))) throw new Error(`${f} not built (npm run build)`);
  const t0 = Date.now();
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const logDir = path.join(REPO, 'bench-results', `soak-logs-${stamp}`);
  fs.mkdirSync(logDir, { recursive: true });
  const startedBroker = await mq.ensureBroker(CFG.amqpBase, log);
  // A fresh vhost of our own: nothing left over from an earlier (interrupted) run.
  await mq.deleteVhost(CFG.vhost);
  await mq.createVhost(CFG.vhost);
  URL_AMQP = mq.benchUrl(CFG.amqpBase, CFG.vhost);
  session.amqpUrl = URL_AMQP;
  const info = meta(stamp);
  const chunks = Math.ceil(CFG.n / CFG.chunk);
  log(
    `${CFG.n} requests (${CFG.mode}) in ${chunks} chunks of ${CFG.chunk}, -c ${CFG.connections}, vhost ${CFG.vhost}; logs ${path.relative(REPO, logDir)}`,
  );
  const samples = [];
  let finalPending;
  let watcher;
  try {
    for (const spec of [warrenEcho(), warrenGateway()]) {
      const child = procs.start(spec, path.join(logDir, `${spec.name}.log`));
      children.push(child);
      await child.ready;
    }
    const pids = { echo: children[0].pid, gateway: children[1].pid };
    // The gateway routes to echo once it has seen its heartbeat: one RPC answered = both ready.
    await probe(URLS.rpc);
    watcher = await mq.queueWatcher(URL_AMQP, 'echo');
    await drain(watcher);
    samples.push({ chunk: 0, sent: 0, requests: 0, ...(await sample(pids)) });
    let sent = 0;
    for (let i = 0; i < chunks; i++) {
      const amount = Math.min(CFG.chunk, CFG.n - sent);
      const c = await runChunk(i, amount, pids);
      sent += amount;
      for (const [name, child] of [
        ['echo', children[0]],
        ['gateway', children[1]],
      ])
        if (!procs.live.has(child))
          throw new Error(`${name} exited during the soak; log ${child.logFile}`);
      const depth = await watcher.count().catch(() => NaN);
      const drainS = await drain(watcher);
      const s = { ...c, sent, queueDepth: depth, drainS, ...(await sample(pids)) };
      samples.push(s);
      log(
        `chunk ${s.chunk}/${chunks} ${s.mode}: ${sent} sent, ${Math.round(s.rps)} req/s, ` +
          `errors ${s.errors}, non-2xx ${s.non2xx}, RSS gateway ${s.rss.gateway.toFixed(1)} MB / echo ${s.rss.echo.toFixed(1)} MB, ` +
          `heap gateway ${s.heapUsedMb.gateway.toFixed(1)} MB, pending RPC ${s.pendingRpc} (max ${s.pendingRpcMax}), echo queue ${depth}` +
          (Number.isFinite(drainS) ? '' : ' (not drained)'),
      );
    }
    // Replies still in flight or timers still running: give them a moment, then read the gauge.
    await procs.sleep(1000);
    finalPending = stats.metric(await scrape(PORTS.gatewayOps), 'mq_rpc_pending_calls');
  } finally {
    if (watcher) await watcher.close();
    for (const c of children.slice().reverse()) await procs.stop(c);
    for (const c of children) procs.trimLog(c.logFile);
    await mq.deleteVhost(CFG.vhost);
    if (startedBroker)
      log('RabbitMQ was started by this run and is left running (rabbitmqctl stop to stop it)');
  }
  info.elapsedS = Math.round((Date.now() - t0) / 1000);
  info.machine.loadavgEnd = os.loadavg().map((x) => Number(x.toFixed(2)));
  const saved = { meta: info, samples, finalPending };
  saved.verdict = stats.verdict({ total: CFG.n, samples, finalPending });
  const files = await writeOutputs(saved);
  console.log(fs.readFileSync(files.md, 'utf8'));
  log(
    `${saved.verdict.pass ? 'PASS' : 'FAIL'} in ${info.elapsedS} s; wrote ${Object.values(files)
      .filter(Boolean)
      .map((f) => path.relative(REPO, f))
      .join(', ')}`,
  );
  if (!saved.verdict.pass) process.exitCode = 1;
}

script.runScript(module, main);

module.exports = { CFG, chunkPlan };
