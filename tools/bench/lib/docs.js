// Writes the benchmark's outputs: results-<stamp>.json, latest.md and the PNG charts into
// docs/performance/, and (after a full run) docs/performance.md. Every figure comes from the
// saved results; nothing here is typed by hand.
'use strict';
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
  return allSaved(dir, pred, exceptStamp)[0];
}

/** Every saved run in `dir` matching `pred` (newest first), except the one with `exceptStamp`. */
function allSaved(dir, pred, exceptStamp) {
  let files;
  try {
    files = fs
      .readdirSync(dir)
      .filter((f) => /^results-.*\.json$/.test(f))
      .sort()
      .reverse();
  } catch {
    return [];
  }
  const out = [];
  for (const f of files) {
    try {
      const s = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
      if (s.meta.stamp !== exceptStamp && pred(s)) out.push({ saved: s, file: f });
    } catch {
      // unreadable: skip
    }
  }
  return out;
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
      `"${label}" from \`${compareWith}\`; each pair ran back to back, in alternating order, in the same run. ` +
      `What differs: ${note || 'not recorded (COMPARE_NOTE).'}`,
    '',
    report.resultsTable(rows, saved.results),
    '',
    report.ratiosTable(ab),
    '',
  ].join('\n');
}

const SCALE_IDS = ['warren-async', 'warren-async-x2', 'warren-rpc', 'warren-rpc-x2', 'raw-rpc'];

/**
 * "Scale-out": 1+1 against 2+2 (gateways + echo instances) on this machine, the CPU of every process,
 * and what a bigger machine would give, projected from the CPU per request and bounded by the
 * broker's rate measured in the same run. Empty when the run had no scale-out rows.
 */
function scaleSection(saved) {
  const res = saved.results;
  if (!res['warren-async-x2'] && !res['warren-rpc-x2']) return '';
  const c = saved.meta.config;
  const cores = saved.meta.machine.cpus;
  const s = report.scaleOut(res);
  const rows = saved.scenarios.filter((sc) => SCALE_IDS.includes(sc.id) && res[sc.id]);
  const parts = [
    `Two gateways (each its own port) and two echo instances (competing consumers of the one \`echo\` queue) with the`,
    `same environment as the single ones, against the 1+1 rows of the same rounds. The load is two autocannon instances`,
    `running at once in the benchmark process, ${fmt(Math.round(c.connections / 2))} connections each, one per gateway (the 1+1 rows: one`,
    `autocannon, ${fmt(c.connections)} connections). req/s is the sum of the two instances' means of per-second samples; p50/p99`,
    `come from the two latency histograms merged (\`autocannon.aggregateResult\`); errors and non-2xx are summed; CPU µs`,
    `per request adds up the instances of a process (\`gateway\` = gateway-1 + gateway-2) over the total req/s.`,
    '',
    report.resultsTable(rows, res),
    '',
  ];
  const ratios = (saved.ratios || []).filter((r) => r.id.startsWith('scale-'));
  if (ratios.length) parts.push(report.ratiosTable(ratios), '');
  // CPU of every process, % of one core (medians).
  const col = (cpu, k) => (cpu && Number.isFinite(cpu[k]) ? fmt(cpu[k]) : '');
  parts.push(
    `CPU per process, % of one core (median; \`busy\` is the whole machine, ${fmt(cores * 100)} = all ${cores} cores):`,
    '',
    '| scenario | gateway(-1) | gateway-2 | echo(-1) | echo-2 | broker | loadgen | other | busy |',
    '|---|---|---|---|---|---|---|---|---|',
  );
  for (const m of s.modes)
    for (const [tag, side] of [
      ['1+1', m.one],
      ['2+2', m.two],
    ]) {
      if (!side) continue;
      const cpu = side.cpu;
      parts.push(
        `| ${m.mode === 'async' ? 'async' : 'RPC'} ${tag} | ${col(cpu, 'gateway') || col(cpu, 'gateway-1')} | ${col(cpu, 'gateway-2')} | ${col(cpu, 'echo') || col(cpu, 'echo-1')} | ${col(cpu, 'echo-2')} | ${col(cpu, 'broker')} | ${col(cpu, 'loadgen')} | ${col(cpu, 'other')} | ${col(cpu, 'busy')} |`,
      );
    }
  parts.push('');

  // What the figures say about this machine.
  const full = cores * 100;
  for (const m of s.modes) {
    const name = m.mode === 'async' ? 'Async' : 'RPC';
    if (!m.one || !m.two) {
      parts.push(`- ${name}: only one side of the 1+1 / 2+2 pair ran; no comparison.`);
      continue;
    }
    const saturated = m.two.busy >= 0.95 * full;
    const idle1 = Math.max(0, full - m.one.busy);
    const change =
      m.ratio >= 1.02
        ? `gained ${fmt((m.ratio - 1) * 100)} %`
        : m.ratio <= 0.98
          ? `lost ${fmt((1 - m.ratio) * 100)} %`
          : 'stayed level';
    parts.push(
      `- ${name}: ${fmt(m.one.rps)} req/s with 1+1, ${fmt(m.two.rps)} with 2+2 (x${fmt(m.ratio, 2)}, ${change}). ` +
        `The machine was ${fmt(m.one.busy)} % busy in the 1+1 run (${fmt(idle1)} % of a core idle) and ${fmt(m.two.busy)} % in the 2+2 run` +
        (saturated
          ? `: all ${cores} cores saturated, so the second gateway and echo instance only share CPU with the first ones, the broker and the load generator. `
          : `: not saturated, so something other than CPU (e.g. round trips to the broker) limited it as well. `) +
        `The benchmark's own processes got ${fmt(m.one.ownCpu)} % (1+1) and ${fmt(m.two.ownCpu)} % (2+2) of the ${fmt(full)} %, other work on the machine the rest. ` +
        `The gateways used ${fmt(m.one.gatewaysCpu)} % of a core in all with 1+1 and ${fmt(m.two.gatewaysCpu)} % with 2+2, the echo instances ${fmt(m.one.echoCpu)} % and ${fmt(m.two.echoCpu)} %, ` +
        `the broker ${fmt(m.one.cpu.broker)} % and ${fmt(m.two.cpu.broker)} %, autocannon ${fmt(m.one.cpu.loadgen)} % and ${fmt(m.two.cpu.loadgen)} %. ` +
        `CPU per request, 1+1 and 2+2: gateway ${fmt(m.one.us.gateway)} and ${fmt(m.two.us.gateway)} µs, echo ${fmt(m.one.us.echo)} and ${fmt(m.two.us.echo)} µs, ` +
        `broker ${fmt(m.one.us.broker)} and ${fmt(m.two.us.broker)} µs.`,
    );
  }
  const others = s.modes
    .flatMap((m) => [m.one, m.two])
    .filter(Boolean)
    .map((x) => x.cpu.other)
    .filter(Number.isFinite);
  const maxOther = others.length ? Math.max(...others) : NaN;
  parts.push(
    '',
    `On ${cores} cores the 2+2 setup can only gain the CPU the 1+1 run did not get (idle, or taken by other work on a`,
    'shared machine, which more runnable processes win back a share of); more processes add no cores, only context',
    'switches and broker connections, so the CPU per request does not fall (compare 1+1 and 2+2 above). The scale-out',
    'pays where each process gets cores of its own.',
    '',
  );
  if (maxOther > 25)
    parts.push(
      `Other work on the shared machine took up to ${fmt(maxOther)} % of a core during these runs (the \`other\` column): ` +
        'the req/s and the CPU per request above (which rises under contention) are disturbed by it, and so is the projection below.',
      '',
    );
  parts.push('### What a bigger machine would give', '');
  const raw = s.raw;
  if (raw)
    parts.push(
      `The broker's own rate in this run: raw amqplib RPC (direct reply-to, noDelay, ${fmt(c.connections)} outstanding) reached ` +
        `${fmt(raw.rps)} req/s with the broker at ${fmt(raw.broker)} % of a core (machine ${fmt(raw.busy)} % busy)` +
        (s.rawPub
          ? `; the raw confirmed publisher (1 KiB persistent) ${fmt(s.rawPub.rps)} msg/s with the broker at ${fmt(s.rawPub.broker)} %. `
          : '. ') +
        `The projection below caps RPC at the raw RPC rate and async at ${s.rawPub ? "the raw publisher's" : 'the raw RPC'} rate. ` +
        `That cap is conservative in one way (it was measured on the same ${cores} shared cores, so the broker may do more with cores of its own) ` +
        'and optimistic in another (each queue is served by one Erlang process, so one queue does not grow with the machine; past it take more ' +
        'queues or broker nodes, see [scaling.md](scaling.md)).',
      '',
    );
  else
    parts.push(
      "The raw amqplib RPC row (`raw-rpc`, the broker's own rate) did not run: no broker bound below.",
      '',
    );
  parts.push(
    'With the load generator on other machines and one core per Node process, a request costs the CPU per request of the',
    '1+1 run (gateway + echo + broker, load generator excluded); N cores give N x 10^6 / that many req/s, as long as the',
    'broker keeps up. Gateways and echo instances needed at that rate = req/s x their µs per request / 10^6 (Node runs one',
    'event loop per process, so one process per core):',
    '',
    "| mode | CPU µs per request (gateway + echo + broker) | cores | CPU-bound req/s | req/s, capped at the broker's measured rate | gateway processes | echo processes |",
    '|---|---|---|---|---|---|---|',
  );
  for (const m of s.modes) {
    const base = m.one || m.two;
    for (const p of m.projection)
      parts.push(
        `| ${m.mode === 'async' ? 'async' : 'RPC'} | ${fmt(base.us.gateway)} + ${fmt(base.us.echo)} + ${fmt(base.us.broker)} = ${fmt(m.perReq)} | ${p.cores} | ${fmt(p.cpuBound)} | ${fmt(p.rps)}${p.brokerBound ? ' (broker)' : ''} | ${fmt(p.gateways)} | ${fmt(p.echos)} |`,
      );
  }
  parts.push('');
  for (const m of s.modes) {
    if (!m.atBound) continue;
    const base = m.one || m.two;
    const first = m.projection.find((p) => p.brokerBound);
    parts.push(
      `- ${m.mode === 'async' ? 'Async' : 'RPC'}: to reach the broker's measured ${fmt(m.atBound.rps)} req/s (\`${m.atBound.by}\`) takes ${fmt(m.atBound.gatewayCores, 1)} cores of gateways ` +
        `(${fmt(base.us.gateway)} µs each request), ${fmt(m.atBound.echoCores, 1)} of echo instances and ${fmt(m.atBound.brokerCores, 1)} of broker` +
        (first
          ? `; from ${first.cores} cores on, the broker is the limit, not Warren's processes.`
          : `; within ${m.projection[m.projection.length - 1].cores} cores the CPU, not the broker, is the limit.`),
    );
  }
  parts.push(
    '',
    'The projection is arithmetic on figures measured under contention on this machine (CPU per request rises a little',
    'when processes share cores), not a measurement on a bigger one.',
    '',
  );
  return parts.join('\n');
}

const MACHINE_ROWS = [
  ['Warren async (gateway + echo)', 'warren-async', 'gateway'],
  ['naive gateway, 202', 'gw-202', 'naive-gateway'],
  ['plain express + json, no broker', 'http-plain', 'naive-gateway'],
  ['Warren RPC (gateway + echo)', 'warren-rpc', 'gateway'],
  ['naive gateway, RPC', 'gw-rpc', 'naive-gateway'],
  ['Moleculer tuned, RPC', 'moleculer-tuned', 'gateway'],
  ['NestJS, RPC', 'nest', 'http-app'],
  ['raw amqplib RPC', 'raw-rpc', null],
];

/**
 * "The whole machine": each scenario's CPU per request summed over all its processes (broker and
 * load generator included) and the throughput that cost allows on this machine's cores; then what
 * the async and RPC targets would need, given the parts Warren's gateway does not control.
 */
function machineSection(saved) {
  const res = saved.results;
  const cores = saved.meta.machine.cpus;
  const ok = (id) => (res[id] || []).filter((r) => !r.failed);
  const med = (id, f) => report.median(ok(id).map(f));
  const total = (id) => med(id, report.totalCost);
  const part = (id, proc) => med(id, (r) => report.costOf(r)[proc]);
  const rows = MACHINE_ROWS.filter(([, id]) => ok(id).length > 0);
  if (rows.length === 0) return '';
  const out = [
    `The processes of a scenario share the machine's ${cores} cores, so once the cores are busy, throughput is about`,
    `${cores} x 10^6 / (CPU µs per request summed over every process: broker, gateway, services and load generator):`,
    '',
    '| scenario | CPU µs per request, all processes | of which the HTTP-facing process | ceiling on this machine (req/s) | measured (req/s) | machine busy (% of 100 x cores) |',
    '|---|---|---|---|---|---|',
    ...rows.map(([name, id, proc]) => {
      const tc = total(id);
      const busy = med(id, (r) => (r.cpu || {}).busy);
      return `| ${name} | ${fmt(tc)} | ${proc ? fmt(part(id, proc)) : '-'} | ${fmt((cores * 1e6) / tc)} | ${fmt(med(id, report.throughputOf))} | ${fmt(busy / cores)} |`;
    }),
    '',
  ];
  const bound = (warren, other, label, target) => {
    const w = total(warren);
    const o = total(other);
    const g = part(warren, 'gateway');
    if (!Number.isFinite(w) || !Number.isFinite(o) || !Number.isFinite(g)) return;
    const now = o / w;
    const free = o / (w - g);
    const needed = o / target - (w - g);
    out.push(
      `- ${label}: with both sides CPU-bound here, the throughput ratio tends to ${fmt(now, 2)} (their summed costs, ${fmt(o)} / ${fmt(w)} µs). ` +
        `The broker, echo and the load generator take ${fmt(w - g)} µs of Warren's ${fmt(w)}; ` +
        (free < target
          ? `even a gateway that cost nothing would reach only ${fmt(free, 2)}x, so the ${target}x target cannot be met on this ${cores}-core machine ` +
            'where everything shares the cores; it needs the gateway on cores of its own (the capacity-estimate rows above compare that).'
          : `the ${target}x target needs the gateway at or below ${fmt(Math.max(0, needed))} µs per request (now ${fmt(g)}).`),
    );
  };
  // The throughput targets of the ratios table (report.RATIOS), by ratio id.
  const target = (id) => report.RATIOS.find((r) => r.id === id).target;
  bound('warren-async', 'gw-202', 'Async vs the naive gateway', target('async-vs-naive'));
  bound('warren-rpc', 'moleculer-tuned', 'RPC vs tuned Moleculer', target('rpc-vs-moleculer'));
  bound('warren-rpc', 'nest', 'RPC vs NestJS', target('rpc-vs-nest'));
  out.push('');
  return out.join('\n');
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
    'CPU time per request of each process (medians). On this shared machine no process gets a full core, so the',
    'last column, 10^6 / (CPU µs per request), is what one core of its own would give:',
    '',
    '| process | CPU µs per request | % of a core used | requests/s on one core (estimate) |',
    '|---|---|---|---|',
    ...rows.map(
      ([name, id, proc]) =>
        `| ${name} | ${fmt(cost(id, proc))} | ${fmt(cpu(id, proc))} | ${fmt(1e6 / cost(id, proc))} |`,
    ),
    '',
    machineSection(saved),
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
        `- Gateway, ${mode}: logging ${pick(g, /^logging/).toFixed(0)} %, express and helmet (only routes other than POST /v1/<name> reach express) ${pick(g, /^HTTP framework/).toFixed(0)} % ` +
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

/** Hand-written measurements made outside the benchmark (docs/performance/notes.md), kept across re-renders. */
function notesSection() {
  const file = path.join(__dirname, '..', '..', '..', 'docs', 'performance', 'notes.md');
  if (!fs.existsSync(file)) return '';
  return `## Other measurements\n\n${fs.readFileSync(file, 'utf8').trim()}\n\n`;
}

function performanceMd(saved, profileFound, compareFound) {
  const compares = [].concat(compareFound || []);
  const m = saved.meta;
  const c = m.config;
  const st = (id) =>
    report.median((saved.results[id] || []).filter((r) => !r.failed).map(report.throughputOf));
  return `# Performance

<!-- Generated by tools/bench (docs.js) from docs/performance/results-${m.stamp}.json. Do not edit by hand:
     re-run the benchmark, or re-render with node tools/bench/bench.js --report <results json>. -->

${header(saved)}

## Targets: ratios measured in this run

${saved.ratios && saved.ratios.length ? report.ratiosTable(saved.ratios.filter((r) => !r.id.startsWith('ab-'))) : 'No ratios: scenarios missing.'}

The targets are issue 17's (throughput: RPC >= 1.3x tuned Moleculer and >= 2x NestJS, async >= 1.5x the naive
gateway, p99 <= 3x raw RPC; capacity: Moleculer's gateway >= 1.5x and NestJS's >= 2.5x Warren's CPU per RPC; all
processes: <= 1.6x raw RPC per call and <= 1.5x the raw confirmed publish + consume per async request) and the
earlier issues' (async >= 0.9x plain express; drain >= 0.8x raw). "All processes" sums the CPU per request of
every process of a scenario: broker, services and whatever makes the requests (the HTTP load generator, the raw
RPC client, the raw publisher). "median / median" divides the medians of the
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
  no tail). The raw consumer (\`tools/bench/raw-drain-consumer.js\`) uses the same prefetch (100, echo's default),
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
${scaleSection(saved) ? `## Scale-out (2 gateways + 2 echo instances)\n\n${scaleSection(saved)}` : ''}
## What limits Warren here

${findingsSection(saved, profileFound)}
## Profile

${profileFound ? profileSection(profileFound.saved.profile, profileFound.saved.meta.stamp === m.stamp ? undefined : profileFound.saved.meta.stamp) : 'No profile yet: run with `PROFILE=1`.'}

${notesSection()}## Changes, before and after (same-run A/B)

${compares.length ? compares.map((f) => compareSection(f)).join('\n') : 'No before/after run yet (see How to reproduce).'}

## How to reproduce

\`\`\`sh
npm ci                  # tools/bench/package.json: autocannon, vega, vega-lite, @resvg/resvg-js
npm run bench           # builds (tsc -b), runs everything, writes docs/performance/ and this file
npm run bench:peers     # the same plus the Moleculer and NestJS rows (npm ci in ../shared/peers if needed)
PROFILE=1 npm run bench # adds --cpu-prof profiles of the gateway and echo (the Profile section)
ROUNDS=1 DURATION=5 ONLY=warren-rpc,raw-rpc node tools/bench/bench.js   # a quick subset (this file untouched)
SCALE=0 npm run bench   # without the scale-out rows (2 gateways + 2 echo instances)
# a second run on the same machine at the same time: its own ports, vhost and output directory
BENCH_PORT_BASE=3610 BENCH_VHOST=warren-bench-2 BENCH_OUT=/tmp/bench-2 ONLY=warren-rpc,warren-rpc-x2,raw-rpc node tools/bench/bench.js
# before/after of a change in libs/: two trees from one snapshot, differing only in libs/
node tools/bench/prepare-baseline.js worktree /tmp/warren-after
node tools/bench/prepare-baseline.js HEAD /tmp/warren-before --from /tmp/warren-after
WARREN_ROOT=/tmp/warren-after COMPARE_WITH=/tmp/warren-before COMPARE_NOTE='what changed' \\
  ONLY=warren-async,warren-async@before,warren-rpc,warren-rpc@before,drain-kit,drain-kit@before node tools/bench/bench.js
\`\`\`

A broker must answer on \`AMQP_URL\` (default \`amqp://guest:guest@127.0.0.1:5672\`, loopback only) with
\`rabbitmqctl\` on the same machine (for the vhost); when none answers, the benchmark starts \`rabbitmq-server -detached\`.
Knobs (defaults): \`ROUNDS\` (3), \`WARMUP\` (2), \`DURATION\` (7), \`CONNECTIONS\` (64), \`DRAIN_N\` (50000, so that the
whole run stays under 10 minutes; the issue's figure is \`DRAIN_N=200000\`), \`SWEEP=0\`, \`SWEEP_CONNECTIONS\` (1,4,16,64,256),
\`SWEEP_DURATION\` (3), \`ONLY\`, \`PROFILE=1\`, \`QUIET_BUSY\`/\`QUIET_MAX\` (wait up to 3 s before a run while the machine is busy),
\`WARREN_ROOT\`, \`COMPARE_WITH\`, \`COMPARE_LABEL\`, \`COMPARE_NOTE\`, \`BENCH_OUT\`, \`PEERS_DIR\`, \`SCALE\` (1; 0 leaves out the
scale-out rows, \`ONLY\` can name them either way), \`BENCH_VHOST\` (warren-bench; created and deleted by the run) and
\`BENCH_PORT_BASE\` (unset: the gateways on 3210/3211, their metrics on 9470/9472, echo's on 9471/9473, the peers on
3100-3102; set to B: the gateways on B and B+1, the peers on B+2 to B+4, the metrics ports on B+10 to B+13). Two runs at the
same time need their own \`BENCH_VHOST\`, \`BENCH_PORT_BASE\` and \`BENCH_OUT\`.
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
  const scale = scaleSection(saved);
  if (scale) latest.push('## Scale-out (2 gateways + 2 echo instances)', '', scale);
  if (saved.profile) latest.push('## Profile', '', profileSection(saved.profile));
  files.latest = path.join(outDir, 'latest.md');
  fs.writeFileSync(files.latest, await formatMd(latest.join('\n'), files.latest));
  if (full) {
    const profileFound = saved.profile
      ? { saved, file: path.basename(files.json) }
      : latestSaved(outDir, (s) => s.profile && !s.profile.failed, saved.meta.stamp);
    const compareFound = [
      ...(saved.meta.config.compareWith ? [{ saved, file: path.basename(files.json) }] : []),
      ...allSaved(outDir, (s) => !!s.meta.config.compareWith, saved.meta.stamp),
    ];
    files.doc = path.join(outDir, '..', 'performance.md');
    fs.writeFileSync(
      files.doc,
      await formatMd(performanceMd(saved, profileFound, compareFound), files.doc),
    );
  }
  return files;
}

module.exports = { writeReports, performanceMd, tables, scaleSection, machineSection };
