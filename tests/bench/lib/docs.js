'use strict';
// Writes the benchmark's outputs: results-<stamp>.json, latest.md and the PNG charts into
// docs/performance/, and (after a full run) docs/performance.md. Every figure comes from the
// saved results; nothing here is typed by hand.
const fs = require('node:fs');
const path = require('node:path');
const report = require('./report');
const { summaryMarkdown, layerShares } = require('./profile');
const { renderSweepCharts } = require('./charts');

const { fmt } = report;

function header(saved) {
  const m = saved.meta;
  const c = m.config;
  return (
    `Run ${m.date} (\`${m.command}\`, commit ${m.git.commit}${m.git.dirty ? ' + uncommitted changes in libs/services' : ''}): ` +
    `${c.rounds} rounds interleaved, ${c.warmup} s warm-up + ${c.duration} s measured per scenario, ` +
    `${c.connections} connections, drain of ${fmt(c.drainN)} messages; ${m.machine.cpus} CPUs (${m.machine.cpuModel}), ` +
    `node ${m.versions.node}, RabbitMQ ${m.versions.rabbitmq || '?'}; load average ${m.machine.loadavgStart.join(' / ')} at the start, ` +
    `${(m.machine.loadavgEnd || []).join(' / ')} at the end; ${m.elapsedS} s in all.`
  );
}

function scenarioList(saved) {
  return saved.scenarios.filter((s) => saved.results[s.id]);
}

function tables(saved, withRatios = true) {
  const parts = [];
  parts.push(report.resultsTable(scenarioList(saved), saved.results), '');
  parts.push(
    "Throughput is autocannon's mean of per-second samples (HTTP), the closed-loop client's count (raw RPC), confirmed or consumed msg/s (raw publisher), " +
      'or the drain rate between 90 % and 10 % of the queue left (drain). autocannon reports latency in whole milliseconds. ' +
      'CPU is % of one core over the measured window from /proc/<pid>/stat: `loadgen` is autocannon (in the benchmark process) or the raw client/publisher, ' +
      '`busy` the whole machine (200 = both cores), `other` what the processes of the benchmark do not explain (other work on the shared machine).',
    '',
  );
  const backlog = (saved.results['warren-async'] || [])
    .filter((r) => Number.isFinite(r.backlog))
    .map((r) => r.backlog);
  if (backlog.length > 0)
    parts.push(
      `Queue depth of \`echo\` at the end of the Warren async runs (accepted but not yet consumed): ${backlog.map((b) => fmt(b)).join(', ')} messages.`,
      '',
    );
  if (withRatios && saved.ratios && saved.ratios.length > 0)
    parts.push('### Ratios vs targets (same run)', '', report.ratiosTable(saved.ratios), '');
  return parts.join('\n');
}

function sweepSection(saved, chartPrefix) {
  if (!saved.sweep || saved.sweep.length === 0) return '';
  const c = saved.meta.config;
  const charts = chartPrefix
    ? `\n![Throughput vs concurrency](${chartPrefix}throughput-vs-concurrency.png)\n\n![Latency vs concurrency](${chartPrefix}latency-vs-concurrency.png)\n`
    : '';
  return [
    '## Concurrency sweep (Warren gateway, async and RPC)',
    '',
    `One gateway and one echo process, ${c.sweepWarmup} s warm-up + ${c.sweepDuration} s measured per point, one round (the echo queue is purged between points).`,
    '',
    report.sweepTable(saved.sweep),
    charts,
  ].join('\n');
}

function profileSection(p, stamp) {
  if (!p || p.failed) return p && p.failed ? `Profiling failed: ${p.failed}\n` : '';
  const parts = [];
  parts.push(
    `CPU profiles (\`node --cpu-prof\`) of the gateway and the echo service under ${stamp ? `run ${stamp}` : 'this run'}'s load (${''}autocannon, same connections), one profile per process and mode. ` +
      'Profiling slows the processes down, so read shares, not rates.',
    '',
  );
  for (const mode of Object.keys(p)) {
    const l = p[mode].load;
    parts.push(
      `### ${mode === 'async' ? 'Async (POST /v1/echo -> 202)' : 'RPC (POST /v1/echo?wait=true -> 200)'}`,
      '',
    );
    if (l)
      parts.push(
        `Load while profiling: ${fmt(l.rps)} req/s, p50 ${fmt(l.p50, 1)} ms, p99 ${fmt(l.p99, 1)} ms; CPU ${Object.entries(
          l.cpu,
        )
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}.`,
        '',
      );
    for (const proc of ['gateway', 'echo']) {
      const s = p[mode][proc];
      if (!s) continue;
      if (s.failed) parts.push(`${proc}: ${s.failed}`, '');
      else parts.push(summaryMarkdown(`${proc} (${mode})`, s), '');
    }
  }
  return parts.join('\n');
}

/** The newest saved results in `dir` (other than `exceptStamp`) that satisfy `pred`. */
function latestSaved(dir, pred, exceptStamp) {
  let files;
  try {
    files = fs
      .readdirSync(dir)
      .filter((f) => /^results-.*\.json$/.test(f))
      .sort()
      .reverse();
  } catch {
    return undefined;
  }
  for (const f of files) {
    try {
      const s = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
      if (s.meta.stamp !== exceptStamp && pred(s)) return { saved: s, file: f };
    } catch {
      // unreadable: skip
    }
  }
  return undefined;
}

function compareSection(found) {
  if (!found) return '';
  const { saved, file } = found;
  const { compareLabel: label, compareNote: note, compareWith, warrenRoot } = saved.meta.config;
  const ab = (saved.ratios || []).filter((r) => r.id.startsWith('ab-'));
  const ids = [
    'warren-async',
    `warren-async@${label}`,
    'warren-rpc',
    `warren-rpc@${label}`,
    'drain-kit',
    `drain-kit@${label}`,
  ];
  const rows = saved.scenarios.filter((s) => ids.includes(s.id) && saved.results[s.id]);
  return [
    `From \`docs/performance/${file}\` (${saved.meta.date}, \`${saved.meta.command}\`): "now" ran from \`${warrenRoot || '.'}\`, ` +
      `"${label}" from \`${compareWith}\`, trees made by \`tests/bench/prepare-baseline.js\` from one snapshot that differ only in libs/. ` +
      `Each pair ran back to back, in alternating order, in the same run. ${note}`,
    '',
    report.resultsTable(rows, saved.results),
    '',
    report.ratiosTable(ab),
    '',
  ].join('\n');
}

/** "What limits Warren here": the figures behind the gaps, all read from the saved results. */
function findingsSection(saved, profileFound) {
  const res = saved.results;
  const med = (id, f) => report.median((res[id] || []).filter((r) => !r.failed).map(f));
  const cost = (id, proc) => med(id, (r) => report.costOf(r)[proc]);
  const cpu = (id, proc) => med(id, (r) => (r.cpu || {})[proc]);
  const rows = [
    ['Warren gateway, async', 'warren-async', 'gateway'],
    ['Warren gateway, RPC', 'warren-rpc', 'gateway'],
    ['naive express gateway, 202', 'gw-202', 'naive-gateway'],
    ['naive express gateway, RPC', 'gw-rpc', 'naive-gateway'],
    ['plain express + json, no broker', 'http-plain', 'naive-gateway'],
    ['Moleculer gateway (moleculer-web), RPC', 'moleculer-tuned', 'gateway'],
    ['NestJS HTTP app, RPC', 'nest', 'http-app'],
    ['echo service (service-kit), RPC', 'warren-rpc', 'echo'],
    ['echo service, drain', 'drain-kit', 'echo'],
    ['raw amqplib consumer, drain', 'drain-raw', 'raw-consumer'],
  ].filter(([, id]) => res[id]);
  const parts = [
    'In every gateway scenario the HTTP-facing process needs the most CPU per request, so it sets the capacity;',
    'the broker has room (the raw RPC row shows what it does here). On this shared machine no process gets a full',
    'core, so the last column, 10^6 / (CPU µs per request), is what one core of its own would give. Medians:',
    '',
    '| process | CPU µs per request | % of a core used | requests/s on one core (estimate) |',
    '|---|---|---|---|',
    ...rows.map(
      ([name, id, proc]) =>
        `| ${name} | ${fmt(cost(id, proc))} | ${fmt(cpu(id, proc))} | ${fmt(1e6 / cost(id, proc))} |`,
    ),
    '',
  ];
  const p = profileFound && profileFound.saved.profile;
  if (p && !p.failed) {
    const layers = (mode, proc) => {
      const sm = p[mode] && p[mode][proc];
      return sm && !sm.failed ? layerShares(sm) : [];
    };
    const pick = (ls, re) => ls.filter((l) => re.test(l.layer)).reduce((a, l) => a + l.pct, 0);
    for (const mode of ['async', 'rpc']) {
      const g = layers(mode, 'gateway');
      if (g.length === 0) continue;
      parts.push(
        `- Gateway, ${mode}: logging ${pick(g, /^logging/).toFixed(0)} %, the express stack ${pick(g, /^HTTP framework/).toFixed(0)} % ` +
          `and node:http ${pick(g, /^node:http/).toFixed(0)} % of its busy time (self time), garbage collection ${pick(g, /^garbage/).toFixed(0)} %, ` +
          `the AMQP client ${pick(g, /^AMQP/).toFixed(0)} %, Warren's libraries ${pick(g, /^Warren libs/).toFixed(0)} %, metrics ${pick(g, /^metrics/).toFixed(0)} %.`,
      );
    }
    const e = layers('rpc', 'echo');
    if (e.length)
      parts.push(
        `- Echo, RPC: the AMQP client ${pick(e, /^AMQP/).toFixed(0)} %, node core (sockets, buffers, streams) ${pick(e, /^sockets/).toFixed(0)} %, ` +
          `native ${pick(e, /^native/).toFixed(0)} %, Warren's libraries ${pick(e, /^Warren libs/).toFixed(0)} %, metrics ${pick(e, /^metrics/).toFixed(0)} %, ` +
          `AbortSignal/EventTarget ${pick(e, /^AbortSignal/).toFixed(0)} %.`,
      );
    parts.push('');
  }
  return parts.join('\n');
}

function performanceMd(saved, profileFound, compareFound) {
  const m = saved.meta;
  const c = m.config;
  const st = (id) =>
    report.median((saved.results[id] || []).filter((r) => !r.failed).map(report.throughputOf));
  return `# Performance

<!-- Generated by tests/bench (docs.js) from docs/performance/results-${m.stamp}.json. Do not edit by hand:
     re-run the benchmark, or re-render with node tests/bench/bench.js --report <results json>. -->

${header(saved)}

## Targets: ratios measured in this run

${saved.ratios && saved.ratios.length ? report.ratiosTable(saved.ratios.filter((r) => !r.id.startsWith('ab-'))) : 'No ratios: scenarios missing.'}

The targets are the issue's (gateway RPC >= 1.5x tuned Moleculer and >= 2.5x NestJS, p99 <= 3x raw RPC; async >= 1.5x
the naive gateway and >= 0.9x plain express; drain >= 0.8x raw). "median / median" divides the medians of the
rounds; the spread pairs round *i* of one scenario with round *i* of the other; "best / best" divides the least
disturbed round of each (highest throughput, lowest p99 or CPU cost), which on this shared machine is the better
estimate of what each can do when it has the cores. "Capacity estimate" rows compare the CPU time per request of
the process that limits each side (on one core, capacity is about 1 / that cost).

## Method

- **Scenarios.** Warren: the gateway (\`services/gateway\`) in front of the \`echo\` service (\`services/echo\`,
  service-kit), \`POST /v1/echo\` (202 after the broker's confirm) and \`POST /v1/echo?wait=true\` (200 with echo's
  reply over direct reply-to), small JSON body \`{"msg":"hello","n":42}\`. Baselines from \`../shared/peers\`, in
  the same run: raw amqplib RPC over direct reply-to with noDelay (the broker's limit), the raw confirmed
  publisher and consumer, plain express 5 + \`express.json()\` with no broker, and the naive express gateway
  (confirmed publish -> 202, RPC -> 200).${c.peers ? " Peers: Moleculer tuned (prefetch 100, noDelay) and NestJS (defaults), with exactly the environment the peers' own bench.js gives them." : ''}
- **Consumer drain.** ${fmt(c.drainN)} persistent messages with the gateway's properties are published to the durable
  \`echo\` queue (declared by the service-kit's own topology code) on a confirm channel; then one consumer starts
  and the queue depth is polled every 20 ms. The rate is taken between 90 % and 10 % of the queue left (no start-up,
  no tail). The raw consumer (\`tests/bench/raw-drain-consumer.js\`) uses the same prefetch (100, echo's default),
  manual acks and parses each body as JSON; the service-kit run is \`node services/echo/dist/main.js\` as shipped.
  Every message must be handled exactly once (echo's own \`mq_consumer_messages_total\`, the raw consumer's count).
- **Production defaults.** The gateway and echo run with their defaults: info-level pino logs (to a file), metrics
  on, confirms on, persistent messages, manual acks, echo's prefetch. Two settings differ: \`HOST=127.0.0.1\`
  and \`GATEWAY_RATE_LIMIT=100000000\` (the default 6000/min per client would throttle the single load-generating
  client after a second; the limiter still runs on every request).
- **Rounds.** ${c.rounds} rounds; in each, every scenario runs once in a fixed order with fresh processes and
  deleted queues (${c.warmup} s warm-up, then ${c.duration} s measured, ${c.connections} connections). Medians with
  (min-max). Ratios are medians over medians; the per-round spread pairs round *i* with round *i*.
- **Isolation.** Everything runs in its own vhost (\`${c.vhost}\`, deleted afterwards), so other tests' consumers and
  heartbeats on the shared broker never touch the benchmark's queues. Every process is started by the benchmark and
  stopped by its PID.
- **Measurement.** autocannon ${m.versions.autocannon} runs inside the benchmark process. CPU per process from
  \`/proc/<pid>/stat\` over the measured window (% of one core), RSS from \`/proc/<pid>/status\` at its end.

## Machine

${m.machine.cpus} cores (${m.machine.cpuModel}), ${m.machine.memGiB} GiB, kernel ${m.machine.kernel}; node ${m.versions.node},
RabbitMQ ${m.versions.rabbitmq || '?'} on the same machine; amqplib ${m.versions.amqplibWarren} (Warren) and
${m.versions.amqplibPeers} (peers). The machine is **shared**: the load generator, the Node processes and the
broker share its 2 cores, and other engineers' tests may run at the same time (the \`other\` CPU column shows how
much). Absolute figures move by 10-25 % between runs; compare scenarios within one run, through the ratios.

## Results

${tables(saved, false)}
${sweepSection(saved, 'performance/')}
## What limits Warren here

${findingsSection(saved, profileFound)}
## Profile

${profileFound ? profileSection(profileFound.saved.profile, profileFound.saved.meta.stamp === m.stamp ? undefined : profileFound.saved.meta.stamp) : 'No profile yet: run with `PROFILE=1`.'}

## Library changes, before and after

${compareFound ? compareSection(compareFound) : 'No before/after run yet (see How to reproduce).'}

## How to reproduce

\`\`\`sh
npm ci                  # root: autocannon, vega, vega-lite, @resvg/resvg-js are devDependencies
npm run bench           # builds (tsc -b), runs everything, writes docs/performance/ and this file
npm run bench:peers     # the same plus the Moleculer and NestJS rows (npm ci in ../shared/peers if needed)
PROFILE=1 npm run bench # adds --cpu-prof profiles of the gateway and echo (the Profile section)
ROUNDS=1 DURATION=5 ONLY=warren-rpc,raw-rpc node tests/bench/bench.js   # a quick subset (this file untouched)
# before/after of a change in libs/: two trees from one snapshot, differing only in libs/
node tests/bench/prepare-baseline.js worktree /tmp/warren-after
node tests/bench/prepare-baseline.js HEAD /tmp/warren-before --from /tmp/warren-after
WARREN_ROOT=/tmp/warren-after COMPARE_WITH=/tmp/warren-before COMPARE_NOTE='what changed' \\
  ONLY=warren-async,warren-async@before,warren-rpc,warren-rpc@before,drain-kit,drain-kit@before node tests/bench/bench.js
\`\`\`

A broker must answer on \`AMQP_URL\` (default \`amqp://guest:guest@127.0.0.1:5672\`, loopback only) with
\`rabbitmqctl\` on the same machine (for the vhost); when none answers, the benchmark starts \`rabbitmq-server -detached\`.
Knobs (defaults): \`ROUNDS\` (3), \`WARMUP\` (2), \`DURATION\` (7), \`CONNECTIONS\` (64), \`DRAIN_N\` (50000, so that the
whole run stays under 10 minutes; the issue's figure is \`DRAIN_N=200000\`), \`SWEEP=0\`, \`SWEEP_CONNECTIONS\` (1,4,16,64,256),
\`SWEEP_DURATION\` (3), \`ONLY\`, \`PROFILE=1\`, \`QUIET_BUSY\`/\`QUIET_MAX\` (wait up to 3 s before a run while the machine is busy),
\`WARREN_ROOT\`, \`COMPARE_WITH\`, \`COMPARE_LABEL\`, \`COMPARE_NOTE\`, \`BENCH_OUT\`, \`PEERS_DIR\`.
Raw data: [\`docs/performance/results-${m.stamp}.json\`](performance/results-${m.stamp}.json); child logs under
\`bench-results/\` (not committed).
${Number.isFinite(st('warren-rpc')) ? '' : '\nThe Warren rows are missing from this run: the gateway was not built when it ran.\n'}`;
}

async function formatMd(text, file) {
  try {
    const prettier = require('prettier');
    const options = (await prettier.resolveConfig(file)) || {};
    return await prettier.format(text, { ...options, parser: 'markdown', proseWrap: 'preserve' });
  } catch {
    return text;
  }
}

/** Writes JSON, latest.md, charts and (when `full`) docs/performance.md. Returns the paths written. */
async function writeReports(saved, outDir, { full, charts }) {
  fs.mkdirSync(outDir, { recursive: true });
  const files = {};
  files.json = path.join(outDir, `results-${saved.meta.stamp}.json`);
  fs.writeFileSync(files.json, `${JSON.stringify(saved, null, 2)}\n`);
  let chartPrefix;
  if (charts && saved.sweep && saved.sweep.some((p) => !p.failed)) {
    try {
      const written = await renderSweepCharts(saved.sweep, outDir);
      files.charts = written.map((f) => path.join(outDir, f)).join(', ');
      chartPrefix = '';
    } catch (e) {
      console.error(`charts not rendered: ${e.message}`);
    }
  }
  const latest = [
    `# Benchmark results, ${saved.meta.stamp}`,
    '',
    header(saved),
    '',
    '## Results',
    '',
    tables(saved),
    sweepSection(saved, chartPrefix),
    '',
  ];
  if (saved.profile) latest.push('## Profile', '', profileSection(saved.profile));
  files.latest = path.join(outDir, 'latest.md');
  fs.writeFileSync(files.latest, await formatMd(latest.join('\n'), files.latest));
  if (full) {
    const profileFound = saved.profile
      ? { saved, file: path.basename(files.json) }
      : latestSaved(outDir, (s) => s.profile && !s.profile.failed, saved.meta.stamp);
    const compareFound = saved.meta.config.compareWith
      ? { saved, file: path.basename(files.json) }
      : latestSaved(outDir, (s) => !!s.meta.config.compareWith, saved.meta.stamp);
    files.doc = path.join(outDir, '..', 'performance.md');
    fs.writeFileSync(
      files.doc,
      await formatMd(performanceMd(saved, profileFound, compareFound), files.doc),
    );
  }
  return files;
}

module.exports = { writeReports, performanceMd, tables };
