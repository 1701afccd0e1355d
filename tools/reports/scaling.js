// The cluster test's figures as Markdown: docs/scaling-results.md and the generated blocks of
// docs/scaling.md, rendered from docs/scaling-results.json (written by `npm run test:cluster`) and the
// newest docs/performance/results-*.json (written by `npm run bench`). Nothing here is typed by hand.
//
//   node tools/reports/scaling.js [results.json]           re-render the docs from the JSON files
//   node tools/reports/scaling.js --check [results.json]   exit 1 if the docs differ from the JSON
// (A separate process, not a jest module: prettier 3 loads its parsers with import().)
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const DEFAULT_JSON = path.join(ROOT, 'docs', 'scaling-results.json');
const SCALING_MD = path.join(ROOT, 'docs', 'scaling.md');
const PERF_DIR = path.join(ROOT, 'docs', 'performance');
/** Share of the cores the capacity estimate plans to use (headroom for bursts and failover). */
const UTILISATION = 0.7;
const CORES = [2, 4, 8, 16, 32];

const fmt = (x, digits = 0) =>
  Number.isFinite(x)
    ? x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : 'n/a';
const plural = (n, one, many = `${one}s`) => `${fmt(n)} ${n === 1 ? one : many}`;
/** Two significant digits: an estimate, not a measurement. */
const approx = (x) => {
  if (!Number.isFinite(x) || x <= 0) return 'n/a';
  const step = 10 ** Math.max(0, Math.floor(Math.log10(x)) - 1);
  return `≈ ${fmt(Math.round(x / step) * step)}`;
};
const sec = (ms) => `${fmt(ms / 1000, 1)} s`;
const rel = (file) => path.relative(ROOT, file).split(path.sep).join('/');

function statuses(byStatus) {
  return (
    Object.entries(byStatus || {})
      .sort(([a], [b]) => Number(a) - Number(b))
      .map(([s, n]) => `${s === '0' ? 'no answer' : s}: ${fmt(n)}`)
      .join(', ') || 'none'
  );
}

function setupLine(r) {
  const s = r.settings;
  const m = r.machine;
  const who =
    s.sender === 'gateway'
      ? `${s.gateways} gateway processes`
      : `${s.publishers} publishers from libs/messaging (no gateway)`;
  const failure =
    s.failure === 'kill' ? 'killed (SIGKILL to its Erlang VM)' : 'stopped (`rabbitmqctl stop`)';
  return (
    `${s.nodes} RabbitMQ ${m.rabbitmq} nodes on one machine (${m.cpus} × ${m.cpuModel}, ${m.memoryGb} GB, ` +
    `shared with other work: load average ${m.loadAverageStart ?? '?'} at the start, ${m.loadAverage1m} at the end), ${s.queueType} queue \`echo\`, ` +
    `${who}, ${s.consumers} consumer instances (prefetch ${s.consumerPrefetch}). ` +
    `${fmt(s.asyncPerSecond)} async + ${fmt(s.rpcPerSecond)} RPC requests/s for ${s.loadSeconds} s; ` +
    `the node holding the queue leader was ${failure} ${sec(r.failover.failedAtMs)} into the load, ` +
    `then restarted under load.`
  );
}

/** The key figures, one row each (shared by both documents). */
function figuresTable(r) {
  const f = r.failover;
  const rows = [
    ['async requests sent', fmt(r.async.sent)],
    ['accepted (202 after the broker confirmed)', fmt(r.async.accepted)],
    ['async answers by status', statuses(r.async.byStatus)],
    ['**accepted but never processed (lost)**', `**${fmt(r.async.lost)}**`],
    [
      'processed more than once (at-least-once redeliveries)',
      `${plural(r.duplicates.messages, 'message')}, ${plural(r.duplicates.extraDeliveries, 'extra delivery', 'extra deliveries')}`,
    ],
    [
      'not accepted, yet processed (answer lost, message kept)',
      fmt(r.async.processedButNotAccepted),
    ],
    [
      'RPC calls: sent / correct replies',
      `${fmt(r.rpc.sent)} / ${fmt(r.rpc.ok)} (${statuses(r.rpc.byStatus)})`,
    ],
    [
      'new queue leader visible (rabbitmqctl poll)',
      `${sec(f.newLeaderMs)} (one poll takes ${sec(r.timings.ctlMs)})`,
    ],
    [
      '**time to recover**: until every gateway accepted again and messages were processed (longest gap below)',
      `**${sec(f.recoveryMs)}**`,
    ],
    [
      'longest stretch with no request accepted, per gateway',
      Object.entries(f.acceptGapBySenderMs || {})
        .map(([k, v]) => `${k} ${sec(v)}`)
        .join(', '),
    ],
    ['longest stretch with no request accepted by any gateway', sec(f.acceptGapMs)],
    ['longest stretch with no message processed, after the failure', sec(f.processGapMs)],
    [
      `requests failed or slow (> ${sec(f.slowMs ?? 1000)}: 1 s or twice the steady p99) after the failure`,
      `${fmt(f.disturbedRequests)}, the last one ${sec(f.disturbedForMs ?? f.recoveryMs)} after it`,
    ],
    [
      'connections on the killed node / connections lost (then re-established elsewhere)',
      `gateways ${fmt(f.connectionsOnVictim?.gateways)} / ${fmt(f.reconnects.gateways)}, consumers ${fmt(f.connectionsOnVictim?.consumers)} / ${fmt(f.reconnects.consumers)}` +
        (f.gatewayRestartsToReachLeaderNode
          ? ` (a gateway was restarted ${f.gatewayRestartsToReachLeaderNode}× before the load to land on that node)`
          : ''),
    ],
    [
      'steady latency before the failure, p50 / p99',
      `async ${fmt(r.async.steadyLatencyMs.p50)} / ${fmt(r.async.steadyLatencyMs.p99)} ms, RPC ${fmt(r.rpc.steadyLatencyMs.p50)} / ${fmt(r.rpc.steadyLatencyMs.p99)} ms`,
    ],
    ['slowest accepted request', `${fmt(r.async.maxLatencyMs)} ms`],
    [
      'node restart / back in the cluster with its queue member online',
      `${sec(r.timings.restartMs)} / ${sec(r.timings.rejoinMs)} (queue online on ${r.rejoined.queueOnline} of ${r.rejoined.queueMembers} members)`,
    ],
    ['cluster bring-up (3 nodes started and joined)', sec(r.timings.bringUpMs)],
  ];
  return ['| figure | value |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n');
}

function cpuTable(r) {
  const c = r.cpu;
  const groups = Object.keys(c.loadPercent).filter((g) => (c.loadPercent[g] ?? 0) > 0);
  return [
    `CPU in a ${fmt(c.windowSeconds, 1)} s window of steady load before the failure (${fmt(c.messagesPerSecond, 1)} messages/s handled), ` +
      'as % of one core summed over the processes of each kind, and the CPU time per handled message above idle:',
    '',
    '| processes | idle % | under load % | CPU ms per message |',
    '|---|---|---|---|',
    ...groups.map(
      (g) =>
        `| ${g} | ${fmt(c.idlePercent[g], 1)} | ${fmt(c.loadPercent[g], 1)} | ${fmt(c.perMessageMs[g], 3)} |`,
    ),
  ].join('\n');
}

/** docs/scaling-results.md */
function resultsMd(r, jsonFile) {
  return [
    '# Cluster failover test: results',
    '',
    `<!-- Generated by tools/reports/scaling.js from ${rel(jsonFile)}. Do not edit by hand: run the command below. -->`,
    '',
    `Run ${r.generatedAt}: \`${r.command}\` at commit ${r.machine.commit ?? '?'}${r.machine.dirty ? ' with uncommitted changes' : ''} (Node ${r.machine.node}, Erlang ${r.machine.erlang}).`,
    '',
    setupLine(r),
    '',
    figuresTable(r),
    '',
    cpuTable(r),
    '',
    `Leader before: \`${r.failover.leaderBefore}\`; after: \`${r.failover.leaderAfter}\`. ` +
      `Raw figures: [\`${path.basename(jsonFile)}\`](${path.basename(jsonFile)}).`,
    '',
  ].join('\n');
}

/** The block of docs/scaling.md with the cluster test's figures. */
function clusterBlock(r, jsonFile) {
  return [
    setupLine(r),
    '',
    figuresTable(r),
    '',
    `Reproduce: \`${r.command}\` (run ${r.generatedAt}). Full figures: [${path.basename(jsonFile, '.json')}.md](${path.basename(jsonFile, '.json')}.md).`,
  ].join('\n');
}

/** Newest docs/performance/results-*.json, or undefined. */
function latestPerf(dir = PERF_DIR) {
  if (!fs.existsSync(dir)) return undefined;
  const files = fs
    .readdirSync(dir)
    .filter((f) => /^results-.*\.json$/.test(f))
    .sort();
  const last = files[files.length - 1];
  return last ? path.join(dir, last) : undefined;
}

function median(values) {
  const s = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Per-core figures of a benchmark run: throughput divided by the CPU share of each process. */
function perfPerCore(saved) {
  const runs = (id) => ((saved.results || {})[id] || []).filter((x) => x && !x.failed);
  const rate = (x) => (Number.isFinite(x.rps) ? x.rps : x.drainRate);
  const perCore = (id, proc) =>
    median(
      runs(id).map((x) => {
        const cpu = (x.cpu || {})[proc];
        return Number.isFinite(cpu) && cpu > 0 ? rate(x) / (cpu / 100) : NaN;
      }),
    );
  return {
    asyncRps: median(runs('warren-async').map(rate)),
    rpcRps: median(runs('warren-rpc').map(rate)),
    drainRate: median(runs('drain-kit').map(rate)),
    gatewayAsyncPerCore: perCore('warren-async', 'gateway'),
    gatewayRpcPerCore: perCore('warren-rpc', 'gateway'),
    brokerAsyncPerCore: perCore('warren-async', 'broker'),
    consumerPerCore: perCore('drain-kit', 'echo'),
  };
}

/** Messages/s a machine of `cores` sustains at UTILISATION when one message costs `ms` CPU ms. */
const capacity = (cores, ms) => (ms > 0 ? (cores * UTILISATION * 1000) / ms : NaN);

/** The capacity block of docs/scaling.md: per-core figures -> estimates for larger machines. */
function capacityBlock(r, perfFile) {
  const out = [];
  const c = r.cpu.perMessageMs;
  const clusterMs = (c.gateways || 0) + (c.consumers || 0) + (c.brokers || 0);
  let perf;
  if (perfFile && fs.existsSync(perfFile)) {
    perf = perfPerCore(JSON.parse(fs.readFileSync(perfFile, 'utf8')));
  }
  const perfMs = perf
    ? 1000 / perf.gatewayAsyncPerCore + 1000 / perf.brokerAsyncPerCore + 1000 / perf.consumerPerCore
    : NaN;
  out.push(
    `<!-- capacity-source: ${perfFile ? rel(perfFile) : 'none'} -->`,
    '',
    'CPU cost of one async request, end to end (gateway + broker + consumer), in ms of one core:',
    '',
    '| source | gateway | broker | consumer | total |',
    '|---|---|---|---|---|',
    `| cluster test: 3 nodes, quorum queue (replicated 3×), ${fmt(r.cpu.messagesPerSecond, 1)} msg/s | ${fmt(c.gateways, 3)} | ${fmt(c.brokers, 3)} | ${fmt(c.consumers, 3)} | ${fmt(clusterMs, 3)} |`,
  );
  if (perf) {
    out.push(
      `| benchmark at saturation: 1 node, classic queue, ${fmt(perf.asyncRps)} req/s | ${fmt(1000 / perf.gatewayAsyncPerCore, 3)} | ${fmt(1000 / perf.brokerAsyncPerCore, 3)} | ${fmt(1000 / perf.consumerPerCore, 3)} | ${fmt(perfMs, 3)} |`,
    );
  }
  out.push('');
  if (perf) {
    out.push(
      `Per-core figures of the benchmark (\`${rel(perfFile)}\`, see [performance.md](performance.md)): ` +
        `one gateway core accepts ${fmt(perf.gatewayAsyncPerCore)} async req/s or ${fmt(perf.gatewayRpcPerCore)} RPC req/s; ` +
        `one service-kit consumer core handles ${fmt(perf.consumerPerCore)} msg/s; ` +
        `one broker core takes ${fmt(perf.brokerAsyncPerCore)} confirmed persistent msg/s on a classic queue.`,
      '',
    );
  } else {
    out.push(
      'No benchmark results yet (`docs/performance/results-*.json` is written by `npm run bench`, see ' +
        '[performance.md](performance.md)); the estimate below uses the cluster test alone. Run ' +
        '`npm run bench`, then `npm run docs:scaling` to add the saturation figures.',
      '',
    );
  }
  out.push(
    `Estimated sustained async requests/s for a machine of N cores running everything (gateways, consumers and brokers), planned at ${UTILISATION * 100} % CPU:`,
    '',
    `| cores | ${CORES.join(' | ')} |`,
    `|---|${CORES.map(() => '---').join('|')}|`,
    `| from the cluster test (quorum, 3 replicas) | ${CORES.map((n) => approx(capacity(n, clusterMs))).join(' | ')} |`,
  );
  if (perf) {
    out.push(
      `| from the benchmark (classic, 1 replica) | ${CORES.map((n) => approx(capacity(n, perfMs))).join(' | ')} |`,
    );
  }
  return out.join('\n');
}

async function formatMd(text, file) {
  const prettier = require('prettier');
  const options = (await prettier.resolveConfig(file)) || {};
  return prettier.format(text, { ...options, parser: 'markdown', filepath: file });
}

/** Replaces the text between `<!-- BEGIN generated:<name> -->` and its END marker. */
function replaceBlock(doc, name, body) {
  const begin = `<!-- BEGIN generated:${name} -->`;
  const end = `<!-- END generated:${name} -->`;
  const i = doc.indexOf(begin);
  const j = doc.indexOf(end);
  if (i < 0 || j < i) throw new Error(`docs/scaling.md has no ${begin} ... ${end} block`);
  return `${doc.slice(0, i + begin.length)}\n\n${body}\n\n${doc.slice(j)}`;
}

/** The capacity block's source as recorded in docs/scaling.md (so a check re-renders the same). */
function recordedPerfSource(doc) {
  const m = /<!-- capacity-source: (\S+) -->/.exec(doc);
  if (!m || m[1] === 'none') return undefined;
  return path.join(ROOT, m[1]);
}

/**
 * Renders every document from the JSON files. `perfFile`: the benchmark results to use (default the
 * newest). Returns { file: content } without writing.
 */
async function render(jsonFile = DEFAULT_JSON, { perfFile } = {}) {
  const r = JSON.parse(fs.readFileSync(jsonFile, 'utf8'));
  const mdFile = jsonFile.replace(/\.json$/, '.md');
  const out = { [mdFile]: await formatMd(resultsMd(r, jsonFile), mdFile) };
  if (path.resolve(jsonFile) === DEFAULT_JSON && fs.existsSync(SCALING_MD)) {
    let doc = fs.readFileSync(SCALING_MD, 'utf8');
    doc = replaceBlock(doc, 'cluster-results', clusterBlock(r, jsonFile));
    const perf = perfFile === undefined ? latestPerf() : perfFile;
    // A benchmark file named by the doc but absent here (not committed, or pruned): keep the block.
    if (!perf || fs.existsSync(perf)) doc = replaceBlock(doc, 'capacity', capacityBlock(r, perf));
    out[SCALING_MD] = await formatMd(doc, SCALING_MD);
  }
  return out;
}

/** Writes the documents rendered from `jsonFile` (the cluster test calls this after each run). */
async function writeDocs(jsonFile = DEFAULT_JSON) {
  const files = await render(jsonFile);
  for (const [file, text] of Object.entries(files)) fs.writeFileSync(file, text);
  return Object.keys(files);
}

/** Files whose content differs from a fresh render (with the benchmark file the doc names). */
async function check(jsonFile = DEFAULT_JSON) {
  const doc = fs.existsSync(SCALING_MD) ? fs.readFileSync(SCALING_MD, 'utf8') : '';
  // null = no benchmark file (the block says so); undefined would pick the newest one.
  const files = await render(jsonFile, { perfFile: recordedPerfSource(doc) ?? null });
  return Object.entries(files)
    .filter(([file, text]) => !fs.existsSync(file) || fs.readFileSync(file, 'utf8') !== text)
    .map(([file]) => rel(file));
}

module.exports = { render, writeDocs, check, perfPerCore, capacity, latestPerf, DEFAULT_JSON };

if (require.main === module) {
  const args = process.argv.slice(2);
  const file = args.find((a) => !a.startsWith('--'));
  const json = file ? path.resolve(file) : DEFAULT_JSON;
  const run = args.includes('--check')
    ? check(json).then((stale) => {
        if (stale.length > 0) {
          console.error(
            `out of date with the JSON: ${stale.join(', ')} (run npm run docs:scaling)`,
          );
          process.exitCode = 1;
        }
      })
    : writeDocs(json).then((files) => console.log(`wrote ${files.map(rel).join(', ')}`));
  run.catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
