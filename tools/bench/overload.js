// Overload benchmark: each HTTP RPC stack's capacity (closed loop), then an open-loop load at a multiple of it, in one run.
//
//   npm run bench:overload          # Warren (shedding on, off, 2 workers), the naive gateway, Moleculer, NestJS
//   ONLY=warren-rpc,moleculer-tuned node tools/bench/overload.js --peers
//   node tools/bench/overload.js --help   # this text
//
// Per stack: start its processes, warm up (WARMUP s, closed loop), measure with autocannon the p99
// at CONNECTIONS connections (as `npm run bench` does) and capacity as the best req/s at
// CONNECTIONS or CAPACITY_CONNECTIONS (DURATION s each), then offer
// OVERLOAD_FACTOR x that rate open loop for OVERLOAD_SECONDS (the first OVERLOAD_WARMUP s not
// counted; requests start on schedule whatever the answers, up to OVERLOAD_SOCKETS connections, each
// timed from when it was due, OVERLOAD_TIMEOUT_MS at most). Reported: goodput (2xx/s) ÷ capacity,
// p99 of the 2xx ÷ p99 at capacity, the share shed (503/429) and how fast, timeouts, CPU per process.
// Knobs (env): OVERLOAD_FACTOR 2, OVERLOAD_SECONDS 20, OVERLOAD_WARMUP 3, OVERLOAD_SOCKETS 1024,
// OVERLOAD_TIMEOUT_MS 5000, WARMUP 3, DURATION 7, CONNECTIONS 64, CAPACITY_CONNECTIONS 256, ONLY,
// BENCH_OUT docs/performance,
// and bench.js's AMQP_URL, BENCH_VHOST, BENCH_PORT_BASE, PEERS_DIR. Writes
// <BENCH_OUT>/overload-<stamp>.json and <BENCH_OUT>/overload.md (unless ONLY is set).
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const procs = require('./lib/procs');
const script = require('./lib/script');
const mq = require('./lib/amqp');
const { SMALL_BODY, postLoad, probe } = require('./lib/warren');
const { REPO } = require('./lib/config');
const { openLoop, summarizeOpenLoop } = require('./lib/open-loop');
const { metricValue } = require('./lib/prom-text');
const { renderOverload } = require('./lib/overload-report');
const bench = require('./bench');

const log = (...a) => console.error(`[overload ${new Date().toISOString().slice(11, 19)}]`, ...a);

function knobs(env = process.env) {
  const num = (name, def) => (env[name] ? Number(env[name]) : def);
  return {
    factor: num('OVERLOAD_FACTOR', 2),
    seconds: num('OVERLOAD_SECONDS', 20),
    openWarmup: num('OVERLOAD_WARMUP', 3),
    sockets: num('OVERLOAD_SOCKETS', 1024),
    timeoutMs: num('OVERLOAD_TIMEOUT_MS', 5000),
    warmup: num('WARMUP', 3),
    duration: num('DURATION', 7),
    connections: num('CONNECTIONS', 64),
    capacityConnections: num('CAPACITY_CONNECTIONS', 256),
  };
}

/** The gateway of a Warren scenario with `env` on top (the variants below). */
function withGatewayEnv(sc, id, label, env) {
  return {
    ...sc,
    id,
    label,
    procs: () =>
      sc
        .procs()
        .map((spec) =>
          spec.name === 'gateway' ? { ...spec, env: { ...spec.env, ...env } } : spec,
        ),
  };
}

/** The HTTP RPC stacks: Warren as shipped and two variants, the naive gateway, and the peers. */
function overloadScenarios(run, only) {
  // Every stack bench.js knows (its own ONLY, scale-out and A/B rows aside), then this run's.
  const all = bench.scenarios({
    ...run,
    cfg: { ...run.cfg, only: null, scale: false, compareWith: null },
  });
  const byId = new Map(all.map((s) => [s.id, s]));
  const warren = byId.get('warren-rpc');
  const list = [
    warren,
    withGatewayEnv(
      warren,
      'warren-rpc-noshed',
      'Warren RPC, no shedding (GATEWAY_SHED_TARGET_MS=0, GATEWAY_ADMIT_DELAY_MS=0)',
      { GATEWAY_SHED_TARGET_MS: '0', GATEWAY_ADMIT_DELAY_MS: '0' },
    ),
    withGatewayEnv(warren, 'warren-rpc-2w', 'Warren RPC, GATEWAY_WORKERS=2', {
      GATEWAY_WORKERS: '2',
    }),
    byId.get('gw-rpc'),
    byId.get('moleculer-tuned'),
    byId.get('nest'),
  ].filter(Boolean);
  return list.filter((s) => !only || only.includes(s.id));
}

/** Warren's refusal causes (gateway_overload_rejections_total's reasons) the report splits the shed by. */
const SHED_REASONS = [
  'event_loop',
  'queue_delay',
  'pending_calls',
  'connections',
  'inflight_bytes',
];

/** A Warren gateway's refusals so far by cause (from its metrics port), or undefined for a peer. */
async function refusalsByCause(specs) {
  const gw = specs.find((s) => s.name === 'gateway' && s.env?.METRICS_PORT);
  if (!gw) return undefined;
  try {
    const res = await fetch(`http://127.0.0.1:${gw.env.METRICS_PORT}/metrics`);
    const text = await res.text();
    const out = {};
    for (const reason of SHED_REASONS) {
      const v = metricValue(text, 'gateway_overload_rejections_total', { reason });
      out[reason] = Number.isNaN(v) ? 0 : v;
    }
    return out;
  } catch {
    return undefined;
  }
}

async function runStack(run, k, sc) {
  await mq.deleteQueues(run.amqpUrl, bench.ALL_QUEUES);
  const specs = sc.procs();
  const children = [];
  try {
    await bench.startAll(run, specs, `overload-${sc.id}`, children);
    const pids = { broker: run.broker };
    specs.forEach((s, i) => (pids[s.name] = children[i].pid));
    await probe(sc.url);
    await postLoad(sc.url, { duration: k.warmup, connections: k.connections });
    // The reference latency at the benchmark's load (CONNECTIONS), and capacity as the best
    // throughput of that and CAPACITY_CONNECTIONS: at 64 connections a stack can be bound by its
    // latency, not its throughput, and 2x of that would not be overload.
    const capacity = await bench.measureHttp(sc.url, pids, k.duration, k.connections);
    const wide = await bench.measureHttp(sc.url, pids, k.duration, k.capacityConnections);
    const best = Math.max(capacity.rps, wide.rps);
    const rate = Math.max(1, Math.round(best * k.factor));
    const refused0 = await refusalsByCause(specs);
    const cpu1 = procs.cpuSnap({ ...pids, loadgen: process.pid });
    const raw = await openLoop({
      url: sc.url,
      rate,
      seconds: k.seconds,
      warmupS: k.openWarmup,
      body: SMALL_BODY,
      sockets: k.sockets,
      timeoutMs: k.timeoutMs,
    });
    const cpu = procs.cpuDelta(cpu1, procs.cpuSnap({ ...pids, loadgen: process.pid }));
    const open = summarizeOpenLoop(raw);
    const refused1 = await refusalsByCause(specs);
    // Which of Warren's mechanisms refused during the open loop (warm-up seconds included).
    const shedBy =
      refused0 && refused1
        ? Object.fromEntries(SHED_REASONS.map((r) => [r, refused1[r] - refused0[r]]))
        : undefined;
    return {
      capacity: {
        rps: best,
        rpsAtConnections: capacity.rps,
        rpsWide: wide.rps,
        p50: capacity.p50,
        p99: capacity.p99,
        p99Wide: wide.p99,
        errors: capacity.errors + wide.errors,
        non2xx: capacity.non2xx + wide.non2xx,
      },
      open: { ...open, connections: raw.connections, cpu, shedBy },
      goodputRatio: open.goodputPerS / best,
      p99Ratio: open.okP99Ms !== undefined ? open.okP99Ms / capacity.p99 : undefined,
    };
  } finally {
    await bench.stopAll(children);
  }
}

async function main(session) {
  const args = script.parseArgs(__filename, process.argv.slice(2), { flags: ['--peers'] });
  if (args.help) return;
  const run = bench.createRun(session);
  const k = knobs();
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  run.logDir = path.join(REPO, 'bench-results', `overload-logs-${stamp}`);
  fs.mkdirSync(run.logDir, { recursive: true });
  fs.mkdirSync(run.cfg.outDir, { recursive: true });
  if (run.cfg.peers) bench.ensurePeers(run.cfg);
  run.broker = procs.brokerPid(Number(new URL(run.cfg.amqpBase).port || 5672));
  await mq.ensureBroker(run.cfg.amqpBase, log);
  await mq.createVhost(run.cfg.vhost);
  run.amqpUrl = mq.benchUrl(run.cfg.amqpBase, run.cfg.vhost);
  const list = overloadScenarios(run, run.cfg.only);
  log(
    `${list.length} stacks: ${k.duration} s at -c ${k.connections} and -c ${k.capacityConnections}, then ${k.factor}x the better open loop for ${k.seconds} s`,
  );
  const t0 = Date.now();
  const results = {};
  try {
    for (const sc of list) {
      const t = Date.now();
      try {
        results[sc.id] = await runStack(run, k, sc);
      } catch (e) {
        results[sc.id] = { failed: e.message };
      }
      const r = results[sc.id];
      log(
        `${sc.id.padEnd(20)} ${
          r.failed
            ? `failed: ${r.failed}`
            : `capacity ${r.capacity.rps.toFixed(0)}/s (${r.capacity.rpsAtConnections.toFixed(0)} at -c ${k.connections}, ${r.capacity.rpsWide.toFixed(0)} at -c ${k.capacityConnections}) p99 ${r.capacity.p99} ms; ${k.factor}x: goodput ${r.goodputRatio.toFixed(2)}, p99 ${r.open.okP99Ms?.toFixed(0)} ms, shed ${(100 * r.open.shedShare).toFixed(0)} %, timeouts ${r.open.timeouts}`
        } (${((Date.now() - t) / 1000).toFixed(0)} s)`,
      );
    }
  } finally {
    await mq.deleteQueues(run.amqpUrl, bench.ALL_QUEUES).catch(() => undefined);
    await mq.deleteVhost(run.cfg.vhost);
  }
  const saved = {
    meta: {
      stamp,
      date: new Date().toISOString(),
      command: process.env.npm_lifecycle_event
        ? `npm run ${process.env.npm_lifecycle_event}`
        : `node tools/bench/overload.js ${process.argv.slice(2).join(' ')}`.trim(),
      knobs: k,
      elapsedS: Math.round((Date.now() - t0) / 1000),
      machine: { ...script.machineFacts(), loadavgEnd: os.loadavg().map((x) => +x.toFixed(2)) },
      git: script.gitFacts(REPO),
    },
    scenarios: list.map(({ id, label }) => ({ id, label })),
    results,
  };
  const json = path.join(run.cfg.outDir, `overload-${stamp}.json`);
  fs.writeFileSync(json, `${JSON.stringify(saved, null, 2)}\n`);
  const md = renderOverload(saved, path.relative(run.cfg.outDir, json));
  if (!run.cfg.only) fs.writeFileSync(path.join(run.cfg.outDir, 'overload.md'), md);
  console.log(md);
  log(`done in ${saved.meta.elapsedS} s; wrote ${path.relative(REPO, json)}`);
}

script.runScript(module, main);

module.exports = { knobs, overloadScenarios };
