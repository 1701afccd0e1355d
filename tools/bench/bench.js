// Warren's benchmark: the gateway (async and RPC), the service-kit consumer draining a pre-filled
// queue, and in the same run the baselines (raw amqplib RPC and publisher, plain express, the naive
// gateway) and, with --peers, the peers (Moleculer tuned, NestJS). Interleaved rounds, autocannon.
//
//   npm run bench                   # Warren + baselines, ROUNDS x interleaved, then the sweep and charts
//   npm run bench:peers             # the same plus ../shared/peers' moleculer-tuned and nest rows
//   ONLY=warren-rpc,raw-rpc ROUNDS=1 node tools/bench/bench.js     # a subset (docs/performance.md untouched)
//   node tools/bench/bench.js --report docs/performance/results-<stamp>.json   # re-render reports
//   node tools/bench/bench.js --help   # this text (any other argument stops before running)
//
// Knobs (env): ROUNDS 3, WARMUP 2, DURATION 7, CONNECTIONS 64, DRAIN_N 50000, SWEEP 1,
// SWEEP_CONNECTIONS 1,4,16,64,256, SWEEP_WARMUP 1, SWEEP_DURATION 3, PROFILE 0, ONLY, AMQP_URL,
// QUIET_BUSY 60 and QUIET_MAX 3 (wait up to 3 s before a run while the shared machine is busier),
// BENCH_VHOST warren-bench, PEERS_DIR ../shared/peers, WARREN_ROOT and COMPARE_WITH (trees made by
// prepare-baseline.js: Warren's processes come from WARREN_ROOT, the "before" variant from COMPARE_WITH),
// COMPARE_LABEL before, BENCH_OUT docs/performance, SCALE 1 (the scale-out rows warren-async-x2 and
// warren-rpc-x2: two gateways + two echo instances; SCALE=0 leaves them out, ONLY can name them either way),
// BENCH_PORT_BASE (unset: gateways on 3210/3211, their metrics on 9470/9472, echo metrics on 9471/9473,
// peers on 3100-3102; set to B: gateways B and B+1, peers B+2..B+4, metrics B+10..B+13).
// Two runs at the same time on one machine need their own BENCH_PORT_BASE and BENCH_VHOST (the vhost
// is created and deleted by the run, so its queues never meet another run's), e.g.
//   BENCH_PORT_BASE=3610 BENCH_VHOST=warren-bench-scale BENCH_OUT=/tmp/bench-scale ONLY=... node tools/bench/bench.js
// Every child is started here and stopped by its PID.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const autocannon = require('autocannon');
const procs = require('./lib/procs');
const script = require('./lib/script');
const mq = require('./lib/amqp');
const report = require('./lib/report');
const { summarize } = require('./lib/profile');
const { writeReports } = require('./lib/docs');
const { SMALL_BODY, echoSpec, gatewaySpec, postLoad, probe } = require('./lib/warren');

const REPO = path.resolve(__dirname, '..', '..');
const num = (name, def) => (process.env[name] ? Number(process.env[name]) : def);
const CFG = {
  rounds: num('ROUNDS', 3),
  warmup: num('WARMUP', 2),
  duration: num('DURATION', 7),
  connections: num('CONNECTIONS', 64),
  drainN: num('DRAIN_N', 50000),
  sweep: process.env.SWEEP !== '0',
  sweepConnections: (process.env.SWEEP_CONNECTIONS || '1,4,16,64,256').split(',').map(Number),
  sweepWarmup: num('SWEEP_WARMUP', 1),
  sweepDuration: num('SWEEP_DURATION', 3),
  profile: process.env.PROFILE === '1',
  only: process.env.ONLY ? process.env.ONLY.split(',').map((s) => s.trim()) : null,
  peers: process.argv.includes('--peers'),
  amqpBase: process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672',
  vhost: process.env.BENCH_VHOST || 'warren-bench',
  peersDir: path.resolve(REPO, process.env.PEERS_DIR || '../shared/peers'),
  // Where the Warren processes come from (a tree made by prepare-baseline.js for A/B runs).
  warrenRoot: process.env.WARREN_ROOT ? path.resolve(process.env.WARREN_ROOT) : REPO,
  compareWith: process.env.COMPARE_WITH ? path.resolve(process.env.COMPARE_WITH) : null,
  compareLabel: process.env.COMPARE_LABEL || 'before',
  compareNote: process.env.COMPARE_NOTE || '',
  outDir: path.resolve(REPO, process.env.BENCH_OUT || 'docs/performance'),
  quietBusy: num('QUIET_BUSY', 60),
  quietMax: num('QUIET_MAX', 3),
  scale: process.env.SCALE !== '0',
  portBase: process.env.BENCH_PORT_BASE ? Number(process.env.BENCH_PORT_BASE) : null,
};
/** Every port the benchmark's processes listen on; BENCH_PORT_BASE moves them all (see the top). */
function benchPorts(base) {
  if (!base)
    return {
      gateway: 3210,
      gateway2: 3211,
      gatewayOps: 9470,
      echoOps: 9471,
      gateway2Ops: 9472,
      echo2Ops: 9473,
      naive: 3100,
      moleculer: 3101,
      nest: 3102,
    };
  if (!Number.isInteger(base) || base < 1024 || base > 65500)
    throw new Error(`BENCH_PORT_BASE must be an integer in 1024-65500 (got ${base})`);
  return {
    gateway: base,
    gateway2: base + 1,
    naive: base + 2,
    moleculer: base + 3,
    nest: base + 4,
    gatewayOps: base + 10,
    echoOps: base + 11,
    gateway2Ops: base + 12,
    echo2Ops: base + 13,
  };
}
const PORTS = benchPorts(CFG.portBase);

const log = (...a) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...a);
let URL_AMQP;
let LOG_DIR;

// ---- process specs ------------------------------------------------------------------------------
// `instance` 1 or 2 names the processes of the scale-out scenarios (echo-1, echo-2, ...), each on
// its own ports; without it the process is the single `echo` or `gateway` of the other scenarios.
function warrenEcho(root, extra = {}, instance) {
  return echoSpec({
    root,
    amqpUrl: URL_AMQP,
    opsPort: instance === 2 ? PORTS.echo2Ops : PORTS.echoOps,
    name: instance ? `echo-${instance}` : 'echo',
    env: extra,
  });
}
function warrenGateway(root, instance) {
  return gatewaySpec({
    root,
    amqpUrl: URL_AMQP,
    port: instance === 2 ? PORTS.gateway2 : PORTS.gateway,
    opsPort: instance === 2 ? PORTS.gateway2Ops : PORTS.gatewayOps,
    name: instance ? `gateway-${instance}` : 'gateway',
  });
}
const peer = (file, env = {}, args = []) => ({
  name: path.basename(file).replace(/\.m?js$/, ''),
  file: path.join(CFG.peersDir, file),
  cwd: CFG.peersDir,
  env: { AMQP_URL: URL_AMQP, ...env },
  args,
  ipc: true,
});
const ND = { AMQP_NODELAY: '1' };
const NAIVE = { PORT: String(PORTS.naive) };

const MOL_QUEUES = [];
for (const n of ['bench-gw', 'bench-echo'])
  for (const t of [
    'REQ',
    'RES',
    'EVENT',
    'DISCOVER',
    'INFO',
    'HEARTBEAT',
    'PING',
    'PONG',
    'DISCONNECT',
  ])
    MOL_QUEUES.push(`MOL.${t}.${n}`);
const ECHO_QUEUES = [
  'echo',
  'echo.retry.1000',
  'echo.retry.4000',
  'echo.retry.16000',
  'echo.retry.60000',
  'echo.dlq',
];
const ALL_QUEUES = [
  ...ECHO_QUEUES,
  'raw_classic',
  'rpc_raw',
  'peers_echo',
  'peers_nest_echo',
  ...MOL_QUEUES,
];

function scenarios() {
  const gwBuilt = (root) => fs.existsSync(path.join(root, 'services/gateway/dist/main.js'));
  const warren = (root, suffix, tag) => [
    {
      id: `warren-async${suffix}`,
      label: `W1 Warren gateway POST /v1/echo -> confirmed persistent publish -> 202${tag}`,
      type: 'http',
      url: `http://127.0.0.1:${PORTS.gateway}/v1/echo`,
      procs: () => [warrenEcho(root), warrenGateway(root)],
      backlogQueue: 'echo',
      skip: gwBuilt(root)
        ? null
        : `${path.relative(REPO, root) || '.'}/services/gateway/dist/main.js not built yet`,
    },
    {
      id: `warren-rpc${suffix}`,
      label: `W2 Warren gateway POST /v1/echo?wait=true -> echo service -> 200${tag}`,
      type: 'http',
      url: `http://127.0.0.1:${PORTS.gateway}/v1/echo?wait=true`,
      procs: () => [warrenEcho(root), warrenGateway(root)],
      skip: gwBuilt(root)
        ? null
        : `${path.relative(REPO, root) || '.'}/services/gateway/dist/main.js not built yet`,
    },
  ];
  const list = [
    ...warren(CFG.warrenRoot, '', ''),
    {
      id: 'raw-rpc',
      label: `A3n raw amqplib RPC, direct reply-to, ${CFG.connections} outstanding, noDelay (broker limit)`,
      type: 'rpc',
      procs: () => [
        peer('raw/rpc-server.js', ND),
        peer('raw/rpc-client.js', { ...ND, CONCURRENCY: String(CFG.connections) }),
      ],
    },
    {
      id: 'raw-publish',
      label: 'A1 raw amqplib confirmed publisher, 1 KiB persistent, <=1000 unconfirmed, + consumer',
      type: 'pubsub',
      procs: () => [
        peer('raw/consumer.js', {}, ['classic']),
        peer('raw/publisher.js', {}, ['classic']),
      ],
    },
    {
      id: 'http-plain',
      label: 'B0 plain express@5 + express.json(), no broker (HTTP ceiling)',
      type: 'http',
      url: `http://127.0.0.1:${PORTS.naive}/api/plain`,
      procs: () => [peer('gateway/naive-gateway.js', NAIVE)],
    },
    {
      id: 'gw-202',
      label: 'B1 naive express gateway -> confirmed persistent publish -> 202',
      type: 'http',
      url: `http://127.0.0.1:${PORTS.naive}/api/echo`,
      procs: () => [peer('gateway/echo-consumer.js'), peer('gateway/naive-gateway.js', NAIVE)],
      backlogQueue: 'peers_echo',
    },
    {
      id: 'gw-rpc',
      label: 'B2 naive express gateway RPC (?wait, direct reply-to) -> 200',
      type: 'http',
      url: `http://127.0.0.1:${PORTS.naive}/api/echo?wait`,
      procs: () => [peer('gateway/echo-consumer.js'), peer('gateway/naive-gateway.js', NAIVE)],
    },
  ];
  if (CFG.peers) {
    list.push(
      {
        id: 'moleculer-tuned',
        label: 'C1t Moleculer 0.14 + moleculer-web, AMQP transporter prefetch 100 + noDelay',
        type: 'http',
        url: `http://127.0.0.1:${PORTS.moleculer}/api/echo`,
        procs: () => [
          peer('moleculer/echo.js', { MOL_PREFETCH: '100', MOL_NODELAY: '1' }),
          peer('moleculer/gateway.js', {
            MOL_PREFETCH: '100',
            MOL_NODELAY: '1',
            PORT: String(PORTS.moleculer),
          }),
        ],
      },
      {
        id: 'nest',
        label: 'C2 NestJS 12 HTTP -> ClientProxy.send (Transport.RMQ), defaults',
        type: 'http',
        url: `http://127.0.0.1:${PORTS.nest}/api/echo`,
        procs: () => [
          peer('nest/echo-service.mjs'),
          peer('nest/http-app.mjs', { PORT: String(PORTS.nest) }),
        ],
      },
    );
  }
  list.push(
    {
      id: 'drain-raw',
      label: 'D0 raw amqplib consumer drains a pre-filled durable queue (prefetch 100, manual ack)',
      type: 'drain',
      consumer: 'raw',
    },
    {
      id: 'drain-kit',
      label: 'D1 service-kit echo service drains the same queue (metrics, info logs, manual ack)',
      type: 'drain',
      consumer: 'kit',
      root: CFG.warrenRoot,
    },
  );
  if (CFG.compareWith) {
    const tag = ` [${CFG.compareLabel}]`;
    const suffix = `@${CFG.compareLabel}`;
    // Each "before" variant runs right next to its counterpart (see roundOrder()).
    const [wa, wr] = warren(CFG.compareWith, suffix, tag);
    list.splice(1, 0, wa);
    list.splice(3, 0, wr);
    list.push({
      id: `drain-kit${suffix}`,
      label: `D1 service-kit echo drain${tag}`,
      type: 'drain',
      consumer: 'kit',
      root: CFG.compareWith,
    });
  }
  // Scale-out: two gateways and two echo instances (competing consumers of the one echo queue), two
  // autocannon instances with half the connections each, one per gateway. Just before raw-rpc, so
  // the broker's own rate is measured next to them.
  const scaleIds = ['warren-async-x2', 'warren-rpc-x2'];
  if (CFG.scale || (CFG.only && CFG.only.some((id) => scaleIds.includes(id)))) {
    const root = CFG.warrenRoot;
    const x2 = () => [
      warrenEcho(root, {}, 1),
      warrenEcho(root, {}, 2),
      warrenGateway(root, 1),
      warrenGateway(root, 2),
    ];
    const skip = gwBuilt(root)
      ? null
      : `${path.relative(REPO, root) || '.'}/services/gateway/dist/main.js not built yet`;
    const urls = (q) => [
      `http://127.0.0.1:${PORTS.gateway}/v1/echo${q}`,
      `http://127.0.0.1:${PORTS.gateway2}/v1/echo${q}`,
    ];
    const at = list.findIndex((s) => s.id === 'raw-rpc');
    list.splice(
      at < 0 ? list.length : at,
      0,
      {
        id: scaleIds[0],
        label: 'W1x2 Warren async, 2 gateways + 2 echo instances, 2 load generators (-c half each)',
        type: 'http',
        urls: urls(''),
        procs: x2,
        backlogQueue: 'echo',
        skip,
      },
      {
        id: scaleIds[1],
        label: 'W2x2 Warren RPC, 2 gateways + 2 echo instances, 2 load generators (-c half each)',
        type: 'http',
        urls: urls('?wait=true'),
        procs: x2,
        skip,
      },
    );
  }
  return list.filter((s) => !CFG.only || CFG.only.includes(s.id));
}

// ---- load generation ----------------------------------------------------------------------------
function runAutocannon(url, duration, connections, extra = {}) {
  return postLoad(url, { duration, connections, ...extra });
}

/**
 * Several autocannon instances at once in this process (one per URL, `connections` split evenly),
 * combined into one result: req/s is the sum of each instance's mean of per-second samples
 * (completed requests / samples), the latency percentiles come from the instances' HDR histograms
 * merged (autocannon.aggregateResult), errors, timeouts and non-2xx are summed.
 */
async function runAutocannonMany(urls, duration, connections) {
  const each = Math.max(1, Math.round(connections / urls.length));
  const raw = await Promise.all(
    urls.map((u) => runAutocannon(u, duration, each, { skipAggregateResult: true })),
  );
  const merged = autocannon.aggregateResult(raw, { url: urls[0], connections: each * urls.length });
  const parts = raw.map((r, i) => {
    const one = autocannon.aggregateResult([r], { url: urls[i], connections: each });
    return {
      rps: r.samples > 0 ? r.totalCompletedRequests / r.samples : NaN,
      p50: one.latency.p50,
      p99: one.latency.p99,
      errors: r.errors + r.timeouts,
      non2xx: r.non2xx,
      requests: r.totalCompletedRequests,
      connections: each,
    };
  });
  return {
    rps: parts.reduce((a, p) => a + p.rps, 0),
    p50: merged.latency.p50,
    p99: merged.latency.p99,
    errors: merged.errors + merged.timeouts,
    non2xx: merged.non2xx,
    requests: parts.reduce((a, p) => a + p.requests, 0),
    parts,
  };
}

const ask = (child, msg, match) =>
  new Promise((resolve) => {
    const h = (m) => {
      if (match(m)) {
        child.off('message', h);
        resolve(m);
      }
    };
    child.on('message', h);
    child.send(msg);
  });

function rssOf(pids) {
  const r = {};
  for (const [k, pid] of Object.entries(pids))
    if (k !== 'broker' && k !== 'loadgen') r[k] = Math.round(procs.rssMb(pid));
  return r;
}

/** CPU of each tracked process, the whole machine, and "other" (what the tracked ones do not explain). */
function cpuWindow(a, b) {
  const c = procs.cpuDelta(a, b);
  const tracked = Object.entries(c)
    .filter(([k]) => k !== 'busy')
    .reduce((s, [, v]) => s + (Number.isFinite(v) ? v : 0), 0);
  c.other = Math.max(0, c.busy - tracked);
  return c;
}

/** Starts the specs in order, each ready before the next; `children` gets every started one. */
async function startAll(specs, tag, children = []) {
  for (const spec of specs) {
    const child = procs.start(spec, path.join(LOG_DIR, `${tag}-${spec.name}.log`));
    children.push(child);
    await child.ready;
  }
  return children;
}

async function stopAll(children) {
  for (const c of children.slice().reverse()) await procs.stop(c);
  for (const c of children) procs.trimLog(c.logFile);
}

const BROKER = procs.brokerPid(Number(new URL(CFG.amqpBase).port || 5672));

/** Like measureHttp, with one autocannon per URL at once (the scale-out scenarios). */
async function measureHttpMany(urls, pids, duration, connections) {
  const cpu1 = procs.cpuSnap({ ...pids, loadgen: process.pid });
  const r = await runAutocannonMany(urls, duration, connections);
  const cpu = cpuWindow(cpu1, procs.cpuSnap({ ...pids, loadgen: process.pid }));
  return { ...r, cpu, cost: report.instanceCost(cpu, r.rps), rssMb: rssOf(pids) };
}

async function measureHttp(url, pids, duration, connections) {
  const cpu1 = procs.cpuSnap({ ...pids, loadgen: process.pid });
  const r = await runAutocannon(url, duration, connections);
  const cpu = cpuWindow(cpu1, procs.cpuSnap({ ...pids, loadgen: process.pid }));
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
    requests: r.requests.total,
    cpu,
    rssMb: rssOf(pids),
  };
}

// ---- one measured run ---------------------------------------------------------------------------
async function runOnce(sc, round) {
  if (sc.skip) return { failed: `skipped: ${sc.skip}` };
  await mq.deleteQueues(URL_AMQP, ALL_QUEUES);
  if (sc.type === 'drain') return runDrain(sc, round);
  const specs = sc.procs();
  const children = [];
  try {
    await startAll(specs, `r${round}-${sc.id}`, children);
    const pids = { broker: BROKER };
    specs.forEach((s, i) => (pids[s.name] = children[i].pid));
    if (sc.type === 'pubsub') {
      const [cons, pub] = children;
      pub.send({ cmd: 'start' });
      await procs.sleep(CFG.warmup * 1000);
      const mark = (id) =>
        Promise.all([
          ask(pub, { cmd: 'mark', id }, (m) => m.mark === id),
          ask(cons, { cmd: 'mark', id }, (m) => m.mark === id),
        ]);
      const [p1, c1] = await mark(1);
      const cpu1 = procs.cpuSnap(pids);
      await procs.sleep(CFG.duration * 1000);
      const [p2, c2] = await mark(2);
      const cpu = cpuWindow(cpu1, procs.cpuSnap(pids));
      return {
        pub: (p2.confirmed - p1.confirmed) / ((p2.t - p1.t) / 1000),
        cons: (c2.consumed - c1.consumed) / ((c2.t - c1.t) / 1000),
        errors: p2.nacked,
        backlogGrowth: p2.confirmed - p1.confirmed - (c2.consumed - c1.consumed),
        cpu,
        rssMb: rssOf(pids),
      };
    }
    if (sc.type === 'rpc') {
      const client = children[1];
      client.send({ cmd: 'start' });
      await procs.sleep(CFG.warmup * 1000);
      client.send({ cmd: 'mark', id: 1 });
      const cpu1 = procs.cpuSnap(pids);
      await procs.sleep(CFG.duration * 1000);
      const m = await ask(client, { cmd: 'mark', id: 2 }, (x) => x.mark === 2);
      return {
        rps: m.rps,
        p50: m.p50,
        p99: m.p99,
        errors: 0,
        cpu: cpuWindow(cpu1, procs.cpuSnap(pids)),
        rssMb: rssOf(pids),
      };
    }
    let r;
    if (sc.urls) {
      for (const u of sc.urls) await probe(u);
      await runAutocannonMany(sc.urls, CFG.warmup, CFG.connections);
      r = await measureHttpMany(sc.urls, pids, CFG.duration, CFG.connections);
    } else {
      await probe(sc.url);
      await runAutocannon(sc.url, CFG.warmup, CFG.connections);
      r = await measureHttp(sc.url, pids, CFG.duration, CFG.connections);
    }
    if (sc.backlogQueue) {
      const w = await mq.queueWatcher(URL_AMQP, sc.backlogQueue);
      r.backlog = await w.count().catch(() => NaN);
      await w.close();
    }
    return r;
  } finally {
    await stopAll(children);
  }
}

/** Pre-fill the echo queue with DRAIN_N persistent messages, then time one consumer draining it. */
async function runDrain(sc, round) {
  const n = CFG.drainN;
  // The queue exactly as the echo service declares it (durable, no arguments; retry queues and DLQ).
  await startAndStopDeclarer();
  const pre = await mq.prefill(URL_AMQP, 'echo', n, Buffer.from(SMALL_BODY));
  const w = await mq.queueWatcher(URL_AMQP, 'echo');
  const spec =
    sc.consumer === 'kit'
      ? warrenEcho(sc.root)
      : {
          name: 'raw-consumer',
          file: path.join(__dirname, 'raw-drain-consumer.js'),
          cwd: REPO,
          env: { AMQP_URL: URL_AMQP, QUEUE: 'echo', PREFETCH_RAW: '100' },
          ipc: true,
        };
  const child = procs.start(spec, path.join(LOG_DIR, `r${round}-${sc.id}-${spec.name}.log`));
  try {
    const pids = { broker: BROKER, [spec.name]: child.pid };
    const tStart = Date.now();
    let t90;
    let t10;
    let cpu1;
    let rssMax = 0;
    let first;
    for (;;) {
      if (!procs.live.has(child))
        throw new Error(`${spec.name} exited during the drain; log ${child.logFile}`);
      const c = await w.count();
      const now = Date.now();
      if (first === undefined && c < n) {
        first = now;
        cpu1 = procs.cpuSnap(pids);
      }
      if (t90 === undefined && c <= 0.9 * n) t90 = { t: now, c };
      if (t10 === undefined && c <= 0.1 * n) t10 = { t: now, c };
      rssMax = Math.max(rssMax, procs.rssMb(child.pid) || 0);
      if (c === 0) break;
      if (now - tStart > 300000) throw new Error(`drain not finished in 300 s (${c} left)`);
      await procs.sleep(20);
    }
    const tEnd = Date.now();
    const cpu = cpuWindow(cpu1, procs.cpuSnap(pids));
    // Every message must have been handled once, successfully.
    let handled;
    let errors = 0;
    await procs.sleep(300);
    if (sc.consumer === 'kit') {
      const text = await procs.httpText(`http://127.0.0.1:${PORTS.echoOps}/metrics`);
      const count = (outcome) => {
        const m = new RegExp(
          `^mq_consumer_messages_total\\{[^}]*outcome="${outcome}"[^}]*\\} (\\S+)`,
          'm',
        ).exec(text);
        return m ? Number(m[1]) : 0;
      };
      handled = count('success');
      errors = count('retry') + count('dead_letter') + count('rejected');
    } else {
      const m = await ask(child, { cmd: 'count' }, (x) => x.count !== undefined);
      handled = m.count;
      errors = m.bad;
    }
    if (handled !== n) errors += Math.abs(n - handled);
    // CPU µs per message over the whole drain (not only the 90 %-10 % window of the rate).
    const cost = {};
    for (const [k, v] of Object.entries(cpu))
      if (k !== 'busy' && k !== 'other') cost[k] = ((v / 100) * ((tEnd - first) / 1000) * 1e6) / n;
    const rssMb = {
      [spec.name]: Math.round(procs.rssMb(child.pid)),
      [`${spec.name} max`]: Math.round(rssMax),
    };
    return {
      n,
      handled,
      drainRate: (t90.c - t10.c) / ((t10.t - t90.t) / 1000),
      totalS: (tEnd - first) / 1000,
      startupS: (first - tStart) / 1000,
      prefillRate: pre.rate,
      errors,
      cpu,
      cost,
      rssMb,
    };
  } finally {
    await w.close();
    await procs.stop(child);
    procs.trimLog(child.logFile);
  }
}

/** Declares the echo topology the way the service does, through the service-kit's own code. */
async function startAndStopDeclarer() {
  const { declareServiceTopology } = require(path.join(REPO, 'libs/messaging/dist/index.js'));
  const amqp = require('amqplib');
  const conn = await amqp.connect(URL_AMQP);
  const ch = await conn.createChannel();
  await declareServiceTopology(ch, {
    name: 'echo',
    kind: 'durable',
    retryDelaysMs: [1000, 4000, 16000, 60000],
  });
  await conn.close();
}

// ---- concurrency sweep (charts) -----------------------------------------------------------------
async function runSweep() {
  const gw = path.join(CFG.warrenRoot, 'services/gateway/dist/main.js');
  if (!fs.existsSync(gw))
    return [
      {
        scenario: 'gateway',
        connections: 0,
        failed: 'services/gateway/dist/main.js not built yet',
      },
    ];
  await mq.deleteQueues(URL_AMQP, ALL_QUEUES);
  const specs = [warrenEcho(CFG.warrenRoot), warrenGateway(CFG.warrenRoot)];
  const children = [];
  const points = [];
  try {
    await startAll(specs, 'sweep', children);
    const pids = { broker: BROKER, echo: children[0].pid, gateway: children[1].pid };
    const modes = [
      { scenario: 'Warren async (202)', url: `http://127.0.0.1:${PORTS.gateway}/v1/echo` },
      { scenario: 'Warren RPC (200)', url: `http://127.0.0.1:${PORTS.gateway}/v1/echo?wait=true` },
    ];
    await probe(modes[1].url);
    const purge = async () => {
      const amqp = require('amqplib');
      const conn = await amqp.connect(URL_AMQP);
      const ch = await conn.createChannel();
      await ch.purgeQueue('echo').catch(() => undefined);
      await conn.close();
    };
    for (const c of CFG.sweepConnections) {
      for (const m of modes) {
        try {
          await purge();
          await runAutocannon(m.url, CFG.sweepWarmup, c);
          const r = await measureHttp(m.url, pids, CFG.sweepDuration, c);
          points.push({ scenario: m.scenario, connections: c, ...r });
          log(`sweep ${m.scenario} c=${c}: ${report.runSummary({ type: 'http' }, r)}`);
        } catch (e) {
          points.push({ scenario: m.scenario, connections: c, failed: e.message });
        }
      }
    }
  } finally {
    await stopAll(children);
  }
  return points;
}

// ---- profiling ----------------------------------------------------------------------------------
async function runProfile() {
  const out = {};
  const dir = path.join(LOG_DIR, 'profiles');
  fs.mkdirSync(dir, { recursive: true });
  for (const [mode, url] of [
    ['async', `http://127.0.0.1:${PORTS.gateway}/v1/echo`],
    ['rpc', `http://127.0.0.1:${PORTS.gateway}/v1/echo?wait=true`],
  ]) {
    await mq.deleteQueues(URL_AMQP, ALL_QUEUES);
    const sub = path.join(dir, mode);
    const specs = [warrenEcho(CFG.warrenRoot), warrenGateway(CFG.warrenRoot)].map((s) => ({
      ...s,
      nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${path.join(sub, s.name)}`],
    }));
    const children = [];
    let r;
    const spawned = {};
    let win;
    try {
      for (const spec of specs) {
        spawned[spec.name] = Date.now();
        await startAll([spec], `profile-${mode}`, children);
      }
      await probe(url);
      await runAutocannon(url, CFG.warmup, CFG.connections);
      win = { start: Date.now() };
      r = await measureHttp(
        url,
        { broker: BROKER, echo: children[0].pid, gateway: children[1].pid },
        CFG.duration,
        CFG.connections,
      );
      win.end = Date.now();
    } finally {
      await stopAll(children);
    }
    out[mode] = { load: { rps: r.rps, p50: r.p50, p99: r.p99, cpu: r.cpu } };
    for (const s of specs) {
      const d = path.join(sub, s.name);
      const files = fs.existsSync(d)
        ? fs.readdirSync(d).filter((f) => f.endsWith('.cpuprofile'))
        : [];
      if (files.length === 0) {
        out[mode][s.name] = { failed: 'no profile written' };
        continue;
      }
      const prof = JSON.parse(fs.readFileSync(path.join(d, files[0]), 'utf8'));
      // Only the measured window (the profile starts with the process, about when it was spawned).
      out[mode][s.name] = summarize(prof, 25, {
        fromMs: win.start - spawned[s.name],
        toMs: win.end - spawned[s.name],
      });
      out[mode][s.name].file = path.relative(REPO, path.join(d, files[0]));
    }
    log(`profile ${mode}: ${report.runSummary({ type: 'http' }, r)}`);
  }
  return out;
}

/**
 * The order of one round: the scenario list, except that in even rounds each "before" variant runs
 * before its counterpart instead of after it, so slow drifts of the shared machine cancel out.
 */
function roundOrder(list, round) {
  const out = list.slice();
  if (round % 2 === 1 || !CFG.compareWith) return out;
  for (let i = 0; i + 1 < out.length; i++) {
    if (out[i + 1].id === `${out[i].id}@${CFG.compareLabel}`) {
      [out[i], out[i + 1]] = [out[i + 1], out[i]];
      i++;
    }
  }
  return out;
}

/**
 * The machine is shared: before a run, wait (at most QUIET_MAX s) while other work keeps it busier
 * than QUIET_BUSY % of one core. Returns what was seen, kept with the run's result.
 */
async function waitQuiet() {
  const t0 = Date.now();
  let busy;
  for (;;) {
    const a = procs.cpuSnap({});
    await procs.sleep(500);
    busy = procs.cpuDelta(a, procs.cpuSnap({})).busy;
    if (busy <= CFG.quietBusy || Date.now() - t0 >= CFG.quietMax * 1000) break;
  }
  return { busyBefore: busy, waitedS: Math.round((Date.now() - t0) / 100) / 10 };
}

// ---- main ---------------------------------------------------------------------------------------
function meta(stamp, list) {
  const sh = (cmd, args) => script.sh(REPO, cmd, args);
  const pkgVersion = (dir, name) => {
    try {
      let d = dir;
      for (const part of name.split('/')) d = path.join(d, part);
      return JSON.parse(fs.readFileSync(path.join(d, 'package.json'), 'utf8')).version;
    } catch {
      return undefined;
    }
  };
  return {
    stamp,
    date: new Date().toISOString(),
    command: process.env.npm_lifecycle_event
      ? `npm run ${process.env.npm_lifecycle_event}`
      : `node tools/bench/bench.js ${process.argv.slice(2).join(' ')}`.trim(),
    config: {
      ...CFG,
      amqpBase: undefined,
      peersDir: path.relative(REPO, CFG.peersDir),
      outDir: path.relative(REPO, CFG.outDir),
      compareWith: CFG.compareWith,
      warrenRoot: CFG.warrenRoot === REPO ? '.' : CFG.warrenRoot,
    },
    scenarios: list.map((s) => s.id),
    machine: script.machineFacts(),
    versions: {
      node: process.version,
      rabbitmq: sh('rabbitmqctl', ['-q', 'version']),
      amqplibWarren: pkgVersion(path.join(REPO, 'node_modules'), 'amqplib'),
      amqplibPeers: pkgVersion(path.join(CFG.peersDir, 'node_modules'), 'amqplib'),
      express: pkgVersion(path.join(REPO, 'node_modules'), 'express'),
      autocannon: pkgVersion(path.join(REPO, 'node_modules'), 'autocannon'),
    },
    git: script.gitFacts(REPO),
  };
}

function ensurePeers() {
  if (!fs.existsSync(path.join(CFG.peersDir, 'bench.js')))
    throw new Error(`peers not found at ${CFG.peersDir} (set PEERS_DIR)`);
  if (!fs.existsSync(path.join(CFG.peersDir, 'node_modules'))) {
    log(`installing the peers' packages (npm ci in ${CFG.peersDir})`);
    execFileSync('npm', ['ci', '--no-audit', '--no-fund'], {
      cwd: CFG.peersDir,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
  }
}

/** --help prints the comment at the top of this file; an unknown argument stops before any run. */
function checkArgs() {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    const head = fs.readFileSync(__filename, 'utf8').split('\n');
    console.log(
      head
        .slice(
          0,
          head.findIndex((l) => !l.startsWith('//')),
        )
        .map((l) => l.replace(/^\/\/ ?/, ''))
        .join('\n'),
    );
    return false;
  }
  const ri = args.indexOf('--report');
  const bad = args.filter(
    (a, i) => a !== '--peers' && a !== '--report' && !(ri >= 0 && i === ri + 1),
  );
  if (bad.length > 0 || (ri >= 0 && !args[ri + 1]))
    throw new Error(
      `unknown argument(s) ${bad.join(' ') || '--report without a file'}; see node tools/bench/bench.js --help`,
    );
  return true;
}

async function main() {
  if (!checkArgs()) return;
  const ri = process.argv.indexOf('--report');
  if (ri >= 0) {
    const saved = JSON.parse(fs.readFileSync(process.argv[ri + 1], 'utf8'));
    // Ratios are recomputed from the raw results with the current definitions.
    saved.ratios = report.ratios(
      saved.results,
      ratioDefs(saved.meta.config.compareWith, saved.meta.config.compareLabel),
    );
    const files = await writeReports(saved, CFG.outDir, { full: true, charts: true });
    console.log(files.latest);
    return;
  }
  const t0 = Date.now();
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  LOG_DIR = path.join(REPO, 'bench-results', `logs-${stamp}`);
  fs.mkdirSync(LOG_DIR, { recursive: true });
  fs.mkdirSync(CFG.outDir, { recursive: true });
  ensurePeers();
  const startedBroker = await mq.ensureBroker(CFG.amqpBase, log);
  await mq.createVhost(CFG.vhost);
  URL_AMQP = mq.benchUrl(CFG.amqpBase, CFG.vhost);
  const list = scenarios();
  const info = meta(stamp, list);
  log(
    `${list.length} scenarios x ${CFG.rounds} rounds, ${CFG.warmup} s + ${CFG.duration} s, -c ${CFG.connections}, drain ${CFG.drainN}; logs ${path.relative(REPO, LOG_DIR)}`,
  );

  const results = {};
  let sweep = [];
  let profile;
  try {
    for (let round = 1; round <= CFG.rounds; round++) {
      for (const sc of roundOrder(list, round)) {
        const t = Date.now();
        const quiet = await waitQuiet();
        let r;
        try {
          r = await runOnce(sc, round);
        } catch (e) {
          r = { failed: e.message };
        }
        r.quiet = quiet;
        (results[sc.id] = results[sc.id] || []).push(r);
        log(
          `[round ${round}/${CFG.rounds}] ${sc.id.padEnd(22)} ${report.runSummary(sc, r)} (${((Date.now() - t) / 1000).toFixed(0)} s)`,
        );
        await procs.sleep(500);
      }
    }
    if (CFG.sweep && (!CFG.only || process.env.SWEEP === '1'))
      sweep = await runSweep().catch((e) => [
        { scenario: 'sweep', connections: 0, failed: e.message },
      ]);
    if (CFG.profile) profile = await runProfile().catch((e) => ({ failed: e.message }));
  } finally {
    await mq.deleteQueues(URL_AMQP, ALL_QUEUES).catch(() => undefined);
    await mq.deleteVhost(CFG.vhost);
    if (startedBroker)
      log('RabbitMQ was started by this run and is left running (rabbitmqctl stop to stop it)');
  }
  info.elapsedS = Math.round((Date.now() - t0) / 1000);
  info.machine.loadavgEnd = os.loadavg().map((x) => Number(x.toFixed(2)));
  const saved = {
    meta: info,
    scenarios: list.map(({ id, label, type }) => ({ id, label, type })),
    results,
    ratios: report.ratios(results, ratioDefs()),
    sweep,
    profile,
  };
  const files = await writeReports(saved, CFG.outDir, {
    full: !CFG.only,
    charts: sweep.length > 0,
  });
  console.log(fs.readFileSync(files.latest, 'utf8'));
  log(
    `done in ${info.elapsedS} s; wrote ${Object.values(files)
      .map((f) => path.relative(REPO, f))
      .join(', ')}`,
  );
}

function ratioDefs(compareWith = CFG.compareWith, compareLabel = CFG.compareLabel) {
  const defs = [...report.RATIOS];
  if (compareWith) {
    const s = `@${compareLabel}`;
    defs.push(
      {
        id: 'ab-async',
        label: `Warren async now / ${compareLabel} (req/s)`,
        a: 'warren-async',
        b: `warren-async${s}`,
        metric: 'throughput',
      },
      {
        id: 'ab-rpc',
        label: `Warren RPC now / ${compareLabel} (req/s)`,
        a: 'warren-rpc',
        b: `warren-rpc${s}`,
        metric: 'throughput',
      },
      {
        id: 'ab-rpc-p99',
        label: `Warren RPC p99 now / ${compareLabel}`,
        a: 'warren-rpc',
        b: `warren-rpc${s}`,
        metric: 'p99',
      },
      {
        id: 'ab-drain',
        label: `service-kit drain now / ${compareLabel} (msg/s)`,
        a: 'drain-kit',
        b: `drain-kit${s}`,
        metric: 'throughput',
      },
      {
        id: 'ab-async-cost',
        label: `gateway CPU per async request now / ${compareLabel}`,
        a: 'warren-async',
        b: `warren-async${s}`,
        metric: 'cost:gateway',
      },
      {
        id: 'ab-rpc-cost',
        label: `gateway CPU per RPC now / ${compareLabel}`,
        a: 'warren-rpc',
        b: `warren-rpc${s}`,
        metric: 'cost:gateway',
      },
      {
        id: 'ab-rpc-echo-cost',
        label: `echo CPU per RPC message now / ${compareLabel}`,
        a: 'warren-rpc',
        b: `warren-rpc${s}`,
        metric: 'cost:echo',
      },
      {
        id: 'ab-async-echo-cost',
        label: `echo CPU per async message now / ${compareLabel}`,
        a: 'warren-async',
        b: `warren-async${s}`,
        metric: 'cost:echo',
      },
      {
        id: 'ab-drain-cost',
        label: `echo CPU per drained message now / ${compareLabel}`,
        a: 'drain-kit',
        b: `drain-kit${s}`,
        metric: 'cost:echo',
      },
    );
  }
  return defs;
}

script.runScript(module, main, () => ({ amqpUrl: URL_AMQP, vhost: CFG.vhost }));

module.exports = { CFG };
