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
const { REPO, benchPorts, loadConfig, ratioDefs, roundOrder } = require('./lib/config');
const { metricValue } = require('./lib/prom-text');

const log = (...a) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...a);

/**
 * One run's state, passed to every function below: its configuration and ports (from the
 * environment and arguments), and what main() learns as it starts: the URL of the run's vhost,
 * its log directory, the broker's PID. script.runScript drops `vhost` on a signal once `amqpUrl`
 * is set.
 */
function createRun(session = {}, cfg = loadConfig()) {
  return Object.assign(session, {
    cfg,
    ports: benchPorts(cfg.portBase),
    vhost: cfg.vhost,
    amqpUrl: undefined,
    logDir: undefined,
    broker: undefined,
  });
}

// ---- process specs ------------------------------------------------------------------------------
// `instance` 1 or 2 names the processes of the scale-out scenarios (echo-1, echo-2, ...), each on
// its own ports; without it the process is the single `echo` or `gateway` of the other scenarios.
function warrenEcho(run, root, extra = {}, instance) {
  return echoSpec({
    root,
    amqpUrl: run.amqpUrl,
    opsPort: instance === 2 ? run.ports.echo2Ops : run.ports.echoOps,
    name: instance ? `echo-${instance}` : 'echo',
    env: extra,
  });
}
function warrenGateway(run, root, instance) {
  return gatewaySpec({
    root,
    amqpUrl: run.amqpUrl,
    port: instance === 2 ? run.ports.gateway2 : run.ports.gateway,
    opsPort: instance === 2 ? run.ports.gateway2Ops : run.ports.gatewayOps,
    name: instance ? `gateway-${instance}` : 'gateway',
  });
}
const peer = (run, file, env = {}, args = []) => ({
  name: path.basename(file).replace(/\.m?js$/, ''),
  file: path.join(run.cfg.peersDir, file),
  cwd: run.cfg.peersDir,
  env: { AMQP_URL: run.amqpUrl, ...env },
  args,
  ipc: true,
});
const ND = { AMQP_NODELAY: '1' };

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
  'echo.retry.1000.v2',
  'echo.retry.4000.v2',
  'echo.retry.16000.v2',
  'echo.retry.60000.v2',
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

function scenarios(run) {
  const gwBuilt = (root) => fs.existsSync(path.join(root, 'services/gateway/dist/main.js'));
  const warren = (root, suffix, tag) => [
    {
      id: `warren-async${suffix}`,
      label: `W1 Warren gateway POST /v1/echo -> confirmed persistent publish -> 202${tag}`,
      type: 'http',
      url: `http://127.0.0.1:${run.ports.gateway}/v1/echo`,
      procs: () => [warrenEcho(run, root), warrenGateway(run, root)],
      backlogQueue: 'echo',
      skip: gwBuilt(root)
        ? null
        : `${path.relative(REPO, root) || '.'}/services/gateway/dist/main.js not built yet`,
    },
    {
      id: `warren-rpc${suffix}`,
      label: `W2 Warren gateway POST /v1/echo?wait=true -> echo service -> 200${tag}`,
      type: 'http',
      url: `http://127.0.0.1:${run.ports.gateway}/v1/echo?wait=true`,
      procs: () => [warrenEcho(run, root), warrenGateway(run, root)],
      skip: gwBuilt(root)
        ? null
        : `${path.relative(REPO, root) || '.'}/services/gateway/dist/main.js not built yet`,
    },
  ];
  const list = [
    ...warren(run.cfg.warrenRoot, '', ''),
    {
      id: 'raw-rpc',
      label: `A3n raw amqplib RPC, direct reply-to, ${run.cfg.connections} outstanding, noDelay (broker limit)`,
      type: 'rpc',
      procs: () => [
        peer(run, 'raw/rpc-server.js', ND),
        peer(run, 'raw/rpc-client.js', { ...ND, CONCURRENCY: String(run.cfg.connections) }),
      ],
    },
    {
      id: 'raw-publish',
      label: 'A1 raw amqplib confirmed publisher, 1 KiB persistent, <=1000 unconfirmed, + consumer',
      type: 'pubsub',
      procs: () => [
        peer(run, 'raw/consumer.js', {}, ['classic']),
        peer(run, 'raw/publisher.js', {}, ['classic']),
      ],
    },
    {
      id: 'http-plain',
      label: 'B0 plain express@5 + express.json(), no broker (HTTP ceiling)',
      type: 'http',
      url: `http://127.0.0.1:${run.ports.naive}/api/plain`,
      procs: () => [peer(run, 'gateway/naive-gateway.js', { PORT: String(run.ports.naive) })],
    },
    {
      id: 'gw-202',
      label: 'B1 naive express gateway -> confirmed persistent publish -> 202',
      type: 'http',
      url: `http://127.0.0.1:${run.ports.naive}/api/echo`,
      procs: () => [
        peer(run, 'gateway/echo-consumer.js'),
        peer(run, 'gateway/naive-gateway.js', { PORT: String(run.ports.naive) }),
      ],
      backlogQueue: 'peers_echo',
    },
    {
      id: 'gw-rpc',
      label: 'B2 naive express gateway RPC (?wait, direct reply-to) -> 200',
      type: 'http',
      url: `http://127.0.0.1:${run.ports.naive}/api/echo?wait`,
      procs: () => [
        peer(run, 'gateway/echo-consumer.js'),
        peer(run, 'gateway/naive-gateway.js', { PORT: String(run.ports.naive) }),
      ],
    },
  ];
  if (run.cfg.peers) {
    list.push(
      {
        id: 'moleculer-tuned',
        label: 'C1t Moleculer 0.14 + moleculer-web, AMQP transporter prefetch 100 + noDelay',
        type: 'http',
        url: `http://127.0.0.1:${run.ports.moleculer}/api/echo`,
        procs: () => [
          peer(run, 'moleculer/echo.js', { MOL_PREFETCH: '100', MOL_NODELAY: '1' }),
          peer(run, 'moleculer/gateway.js', {
            MOL_PREFETCH: '100',
            MOL_NODELAY: '1',
            PORT: String(run.ports.moleculer),
          }),
        ],
      },
      {
        id: 'nest',
        label: 'C2 NestJS 12 HTTP -> ClientProxy.send (Transport.RMQ), defaults',
        type: 'http',
        url: `http://127.0.0.1:${run.ports.nest}/api/echo`,
        procs: () => [
          peer(run, 'nest/echo-service.mjs'),
          peer(run, 'nest/http-app.mjs', { PORT: String(run.ports.nest) }),
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
      root: run.cfg.warrenRoot,
    },
  );
  if (run.cfg.compareWith) {
    const tag = ` [${run.cfg.compareLabel}]`;
    const suffix = `@${run.cfg.compareLabel}`;
    // Each "before" variant runs right next to its counterpart (see roundOrder()).
    const [wa, wr] = warren(run.cfg.compareWith, suffix, tag);
    list.splice(1, 0, wa);
    list.splice(3, 0, wr);
    list.push({
      id: `drain-kit${suffix}`,
      label: `D1 service-kit echo drain${tag}`,
      type: 'drain',
      consumer: 'kit',
      root: run.cfg.compareWith,
    });
  }
  // Scale-out: two gateways and two echo instances (competing consumers of the one echo queue), two
  // autocannon instances with half the connections each, one per gateway. Just before raw-rpc, so
  // the broker's own rate is measured next to them.
  const scaleIds = ['warren-async-x2', 'warren-rpc-x2'];
  if (run.cfg.scale || (run.cfg.only && run.cfg.only.some((id) => scaleIds.includes(id)))) {
    const root = run.cfg.warrenRoot;
    const x2 = () => [
      warrenEcho(run, root, {}, 1),
      warrenEcho(run, root, {}, 2),
      warrenGateway(run, root, 1),
      warrenGateway(run, root, 2),
    ];
    const skip = gwBuilt(root)
      ? null
      : `${path.relative(REPO, root) || '.'}/services/gateway/dist/main.js not built yet`;
    const urls = (q) => [
      `http://127.0.0.1:${run.ports.gateway}/v1/echo${q}`,
      `http://127.0.0.1:${run.ports.gateway2}/v1/echo${q}`,
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
  return list.filter((s) => !run.cfg.only || run.cfg.only.includes(s.id));
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
async function startAll(run, specs, tag, children = []) {
  for (const spec of specs) {
    const child = procs.start(spec, path.join(run.logDir, `${tag}-${spec.name}.log`));
    children.push(child);
    await child.ready;
  }
  return children;
}

async function stopAll(children) {
  for (const c of children.slice().reverse()) await procs.stop(c);
  for (const c of children) procs.trimLog(c.logFile);
}

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
async function runOnce(run, sc, round) {
  if (sc.skip) return { failed: `skipped: ${sc.skip}` };
  await mq.deleteQueues(run.amqpUrl, ALL_QUEUES);
  if (sc.type === 'drain') return runDrain(run, sc, round);
  const specs = sc.procs();
  const children = [];
  try {
    await startAll(run, specs, `r${round}-${sc.id}`, children);
    const pids = { broker: run.broker };
    specs.forEach((s, i) => (pids[s.name] = children[i].pid));
    if (sc.type === 'pubsub') {
      const [cons, pub] = children;
      pub.send({ cmd: 'start' });
      await procs.sleep(run.cfg.warmup * 1000);
      const mark = (id) =>
        Promise.all([
          ask(pub, { cmd: 'mark', id }, (m) => m.mark === id),
          ask(cons, { cmd: 'mark', id }, (m) => m.mark === id),
        ]);
      const [p1, c1] = await mark(1);
      const cpu1 = procs.cpuSnap(pids);
      await procs.sleep(run.cfg.duration * 1000);
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
      await procs.sleep(run.cfg.warmup * 1000);
      client.send({ cmd: 'mark', id: 1 });
      const cpu1 = procs.cpuSnap(pids);
      await procs.sleep(run.cfg.duration * 1000);
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
      await runAutocannonMany(sc.urls, run.cfg.warmup, run.cfg.connections);
      r = await measureHttpMany(sc.urls, pids, run.cfg.duration, run.cfg.connections);
    } else {
      await probe(sc.url);
      await runAutocannon(sc.url, run.cfg.warmup, run.cfg.connections);
      r = await measureHttp(sc.url, pids, run.cfg.duration, run.cfg.connections);
    }
    if (sc.backlogQueue) {
      const w = await mq.queueWatcher(run.amqpUrl, sc.backlogQueue);
      r.backlog = await w.count().catch(() => NaN);
      await w.close();
    }
    return r;
  } finally {
    await stopAll(children);
  }
}

/** Pre-fill the echo queue with DRAIN_N persistent messages, then time one consumer draining it. */
async function runDrain(run, sc, round) {
  const n = run.cfg.drainN;
  // The queue exactly as the echo service declares it (durable, no arguments; retry queues and DLQ).
  await startAndStopDeclarer(run);
  const pre = await mq.prefill(run.amqpUrl, 'echo', n, Buffer.from(SMALL_BODY));
  const w = await mq.queueWatcher(run.amqpUrl, 'echo');
  const spec =
    sc.consumer === 'kit'
      ? warrenEcho(run, sc.root)
      : {
          name: 'raw-consumer',
          file: path.join(__dirname, 'raw-drain-consumer.js'),
          cwd: REPO,
          env: { AMQP_URL: run.amqpUrl, QUEUE: 'echo', PREFETCH_RAW: '100' },
          ipc: true,
        };
  const child = procs.start(spec, path.join(run.logDir, `r${round}-${sc.id}-${spec.name}.log`));
  try {
    const pids = { broker: run.broker, [spec.name]: child.pid };
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
      const text = await procs.httpText(`http://127.0.0.1:${run.ports.echoOps}/metrics`);
      const count = (outcome) => metricValue(text, 'mq_consumer_messages_total', { outcome }) || 0;
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
async function startAndStopDeclarer(run) {
  const { declareServiceTopology } = require(path.join(REPO, 'libs/messaging/dist/index.js'));
  const amqp = require('amqplib');
  const conn = await amqp.connect(run.amqpUrl);
  const ch = await conn.createChannel();
  await declareServiceTopology(ch, {
    name: 'echo',
    kind: 'durable',
    retryDelaysMs: [1000, 4000, 16000, 60000],
  });
  await conn.close();
}

// ---- concurrency sweep (charts) -----------------------------------------------------------------
async function runSweep(run) {
  const gw = path.join(run.cfg.warrenRoot, 'services/gateway/dist/main.js');
  if (!fs.existsSync(gw))
    return [
      {
        scenario: 'gateway',
        connections: 0,
        failed: 'services/gateway/dist/main.js not built yet',
      },
    ];
  await mq.deleteQueues(run.amqpUrl, ALL_QUEUES);
  const specs = [warrenEcho(run, run.cfg.warrenRoot), warrenGateway(run, run.cfg.warrenRoot)];
  const children = [];
  const points = [];
  try {
    await startAll(run, specs, 'sweep', children);
    const pids = { broker: run.broker, echo: children[0].pid, gateway: children[1].pid };
    const modes = [
      { scenario: 'Warren async (202)', url: `http://127.0.0.1:${run.ports.gateway}/v1/echo` },
      {
        scenario: 'Warren RPC (200)',
        url: `http://127.0.0.1:${run.ports.gateway}/v1/echo?wait=true`,
      },
    ];
    await probe(modes[1].url);
    const purge = async () => {
      const amqp = require('amqplib');
      const conn = await amqp.connect(run.amqpUrl);
      const ch = await conn.createChannel();
      await ch.purgeQueue('echo').catch(() => undefined);
      await conn.close();
    };
    for (const c of run.cfg.sweepConnections) {
      for (const m of modes) {
        try {
          await purge();
          await runAutocannon(m.url, run.cfg.sweepWarmup, c);
          const r = await measureHttp(m.url, pids, run.cfg.sweepDuration, c);
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
async function runProfile(run) {
  const out = {};
  const dir = path.join(run.logDir, 'profiles');
  fs.mkdirSync(dir, { recursive: true });
  for (const [mode, url] of [
    ['async', `http://127.0.0.1:${run.ports.gateway}/v1/echo`],
    ['rpc', `http://127.0.0.1:${run.ports.gateway}/v1/echo?wait=true`],
  ]) {
    await mq.deleteQueues(run.amqpUrl, ALL_QUEUES);
    const sub = path.join(dir, mode);
    const specs = [warrenEcho(run, run.cfg.warrenRoot), warrenGateway(run, run.cfg.warrenRoot)].map(
      (s) => ({
        ...s,
        nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${path.join(sub, s.name)}`],
      }),
    );
    const children = [];
    let r;
    const spawned = {};
    let win;
    try {
      for (const spec of specs) {
        spawned[spec.name] = Date.now();
        await startAll(run, [spec], `profile-${mode}`, children);
      }
      await probe(url);
      await runAutocannon(url, run.cfg.warmup, run.cfg.connections);
      win = { start: Date.now() };
      r = await measureHttp(
        url,
        { broker: run.broker, echo: children[0].pid, gateway: children[1].pid },
        run.cfg.duration,
        run.cfg.connections,
      );
      win.end = Date.now();
    } finally {
      await stopAll(children);
    }
    out[mode] = { load: { rps: r.rps, p50: r.p50, p99: r.p99, cpu: r.cpu } };
    for (const s of specs) {
      const d = path.join(sub, s.name);
      // The main thread's profile (CPU.<date>.<time>.<pid>.<thread id>.<seq>: thread 0); the
      // logger's worker thread writes one of its own.
      const files = fs.existsSync(d)
        ? fs
            .readdirSync(d)
            .filter((f) => f.endsWith('.cpuprofile'))
            .sort(
              (a, b) =>
                Number(!/\.0\.\d+\.cpuprofile$/.test(a)) - Number(!/\.0\.\d+\.cpuprofile$/.test(b)),
            )
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
 * The machine is shared: before a run, wait (at most QUIET_MAX s) while other work keeps it busier
 * than QUIET_BUSY % of one core. Returns what was seen, kept with the run's result.
 */
async function waitQuiet(cfg) {
  const t0 = Date.now();
  let busy;
  for (;;) {
    const a = procs.cpuSnap({});
    await procs.sleep(500);
    busy = procs.cpuDelta(a, procs.cpuSnap({})).busy;
    if (busy <= cfg.quietBusy || Date.now() - t0 >= cfg.quietMax * 1000) break;
  }
  return { busyBefore: busy, waitedS: Math.round((Date.now() - t0) / 100) / 10 };
}

// ---- main ---------------------------------------------------------------------------------------
function meta(run, stamp, list) {
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
      ...run.cfg,
      amqpBase: undefined,
      peersDir: path.relative(REPO, run.cfg.peersDir),
      outDir: path.relative(REPO, run.cfg.outDir),
      compareWith: run.cfg.compareWith,
      warrenRoot: run.cfg.warrenRoot === REPO ? '.' : run.cfg.warrenRoot,
    },
    scenarios: list.map((s) => s.id),
    machine: script.machineFacts(),
    versions: {
      node: process.version,
      rabbitmq: sh('rabbitmqctl', ['-q', 'version']),
      amqplibWarren: pkgVersion(path.join(REPO, 'node_modules'), 'amqplib'),
      amqplibPeers: pkgVersion(path.join(run.cfg.peersDir, 'node_modules'), 'amqplib'),
      express: pkgVersion(path.join(REPO, 'node_modules'), 'express'),
      autocannon: pkgVersion(path.join(REPO, 'node_modules'), 'autocannon'),
    },
    git: script.gitFacts(REPO),
  };
}

function ensurePeers(cfg) {
  if (!fs.existsSync(path.join(cfg.peersDir, 'bench.js')))
    throw new Error(`peers not found at ${cfg.peersDir} (set PEERS_DIR)`);
  if (!fs.existsSync(path.join(cfg.peersDir, 'node_modules'))) {
    log(`installing the peers' packages (npm ci in ${cfg.peersDir})`);
    execFileSync('npm', ['ci', '--no-audit', '--no-fund'], {
      cwd: cfg.peersDir,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
  }
}

async function main(session) {
  const args = script.parseArgs(__filename, process.argv.slice(2), {
    flags: ['--peers'],
    values: ['--report'],
  });
  if (args.help) return;
  const run = createRun(session);
  if (args.values['--report']) {
    const saved = JSON.parse(fs.readFileSync(args.values['--report'], 'utf8'));
    // Ratios are recomputed from the raw results with the current definitions.
    saved.ratios = report.ratios(
      saved.results,
      ratioDefs(saved.meta.config.compareWith, saved.meta.config.compareLabel),
    );
    const files = await writeReports(saved, run.cfg.outDir, { full: true, charts: true });
    console.log(files.latest);
    return;
  }
  const t0 = Date.now();
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  run.logDir = path.join(REPO, 'bench-results', `logs-${stamp}`);
  fs.mkdirSync(run.logDir, { recursive: true });
  fs.mkdirSync(run.cfg.outDir, { recursive: true });
  ensurePeers(run.cfg);
  run.broker = procs.brokerPid(Number(new URL(run.cfg.amqpBase).port || 5672));
  const startedBroker = await mq.ensureBroker(run.cfg.amqpBase, log);
  await mq.createVhost(run.cfg.vhost);
  run.amqpUrl = mq.benchUrl(run.cfg.amqpBase, run.cfg.vhost);
  const list = scenarios(run);
  const info = meta(run, stamp, list);
  log(
    `${list.length} scenarios x ${run.cfg.rounds} rounds, ${run.cfg.warmup} s + ${run.cfg.duration} s, -c ${run.cfg.connections}, drain ${run.cfg.drainN}; logs ${path.relative(REPO, run.logDir)}`,
  );

  const results = {};
  let sweep = [];
  let profile;
  try {
    for (let round = 1; round <= run.cfg.rounds; round++) {
      for (const sc of roundOrder(run.cfg, list, round)) {
        const t = Date.now();
        const quiet = await waitQuiet(run.cfg);
        let r;
        try {
          r = await runOnce(run, sc, round);
        } catch (e) {
          r = { failed: e.message };
        }
        r.quiet = quiet;
        (results[sc.id] = results[sc.id] || []).push(r);
        log(
          `[round ${round}/${run.cfg.rounds}] ${sc.id.padEnd(22)} ${report.runSummary(sc, r)} (${((Date.now() - t) / 1000).toFixed(0)} s)`,
        );
        await procs.sleep(500);
      }
    }
    if (run.cfg.sweep && (!run.cfg.only || process.env.SWEEP === '1'))
      sweep = await runSweep(run).catch((e) => [
        { scenario: 'sweep', connections: 0, failed: e.message },
      ]);
    if (run.cfg.profile) profile = await runProfile(run).catch((e) => ({ failed: e.message }));
  } finally {
    await mq.deleteQueues(run.amqpUrl, ALL_QUEUES).catch(() => undefined);
    await mq.deleteVhost(run.cfg.vhost);
    if (startedBroker)
      log('RabbitMQ was started by this run and is left running (rabbitmqctl stop to stop it)');
  }
  info.elapsedS = Math.round((Date.now() - t0) / 1000);
  info.machine.loadavgEnd = os.loadavg().map((x) => Number(x.toFixed(2)));
  const saved = {
    meta: info,
    scenarios: list.map(({ id, label, type }) => ({ id, label, type })),
    results,
    ratios: report.ratios(results, ratioDefs(run.cfg.compareWith, run.cfg.compareLabel)),
    sweep,
    profile,
  };
  const files = await writeReports(saved, run.cfg.outDir, {
    full: !run.cfg.only,
    charts: sweep.length > 0,
  });
  console.log(fs.readFileSync(files.latest, 'utf8'));
  log(
    `done in ${info.elapsedS} s; wrote ${Object.values(files)
      .map((f) => path.relative(REPO, f))
      .join(', ')}`,
  );
}

script.runScript(module, main);

module.exports = {
  ALL_QUEUES,
  createRun,
  ensurePeers,
  measureHttp,
  scenarios,
  startAll,
  stopAll,
};
