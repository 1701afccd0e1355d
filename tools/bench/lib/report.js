// Pure report functions of the benchmark: medians and spreads, the results table, the ratios vs
// targets, and the generated markdown. No I/O here, so the smoke test can run them on sample data.
'use strict';

/** Median of the finite values, NaN when there is none. */
function median(values) {
  const s = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** { median, min, max, n } of the finite values. */
function spread(values) {
  const f = values.filter(Number.isFinite);
  if (f.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  return { median: median(f), min: Math.min(...f), max: Math.max(...f), n: f.length };
}

/** Thousands separated by a thin space (as in the peers' README), fixed decimals. */
function fmt(x, digits = 0) {
  if (!Number.isFinite(x)) return 'n/a';
  const s = x.toFixed(digits);
  const [int, frac] = s.split('.');
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
  return frac ? `${grouped}.${frac}` : grouped;
}

/** "median (min-max)", or just the value for a single run. */
function cell(values, digits = 0) {
  const s = spread(values);
  if (s.n === 0) return 'n/a';
  if (s.n === 1 || s.min === s.max) return fmt(s.median, digits);
  return `${fmt(s.median, digits)} (${fmt(s.min, digits)}-${fmt(s.max, digits)})`;
}

const okRuns = (runs) => (runs || []).filter((r) => r && !r.failed);

/** The throughput of a run: req/s for HTTP and RPC, msg/s drained for a drain, published for pub/sub. */
function throughputOf(run) {
  if (!run) return NaN;
  if (Number.isFinite(run.rps)) return run.rps;
  if (Number.isFinite(run.drainRate)) return run.drainRate;
  if (Number.isFinite(run.pub)) return run.pub;
  return NaN;
}

function cpuCell(runs, order) {
  const keys = [];
  for (const r of runs)
    for (const k of Object.keys(r.cpu || {})) if (!keys.includes(k)) keys.push(k);
  const sorted = order
    ? [...order.filter((k) => keys.includes(k)), ...keys.filter((k) => !order.includes(k))]
    : keys;
  return sorted.map((k) => `${k} ${fmt(median(runs.map((r) => (r.cpu || {})[k])))}`).join(', ');
}

const NOT_A_PROCESS = ['busy', 'other', 'loadgen'];

/**
 * CPU time per request (or message) in microseconds, per process: % of a core / throughput. Much
 * less sensitive than req/s to other work on a shared machine, so before/after comparisons use it.
 */
function costOf(run) {
  if (run && run.cost) return run.cost;
  const t = throughputOf(run);
  const out = {};
  if (!run || !run.cpu || !(t > 0)) return out;
  for (const [k, v] of Object.entries(run.cpu)) {
    if (NOT_A_PROCESS.includes(k) || !Number.isFinite(v)) continue;
    out[k] = (v / 100 / t) * 1e6;
  }
  return out;
}

/**
 * CPU µs per request of a run with several instances of a process (`gateway-1`, `gateway-2`, ...):
 * the instances of one process summed (`gateway`, `echo`), over the run's total throughput, so the
 * figure compares directly with the single-instance rows. Not-a-process keys are left out.
 */
function instanceCost(cpu, rps) {
  const out = {};
  if (!cpu || !(rps > 0)) return out;
  for (const [k, v] of Object.entries(cpu)) {
    if (NOT_A_PROCESS.includes(k) || !Number.isFinite(v)) continue;
    const name = k.replace(/-\d+$/, '');
    out[name] = (out[name] || 0) + (v / 100 / rps) * 1e6;
  }
  return out;
}

function costCell(runs) {
  const keys = [];
  for (const r of runs) for (const k of Object.keys(costOf(r))) if (!keys.includes(k)) keys.push(k);
  return keys.map((k) => `${k} ${fmt(median(runs.map((r) => costOf(r)[k])))}`).join(', ');
}

function rssCell(runs) {
  const keys = [];
  for (const r of runs)
    for (const k of Object.keys(r.rssMb || {})) if (!keys.includes(k)) keys.push(k);
  return keys.map((k) => `${k} ${fmt(median(runs.map((r) => (r.rssMb || {})[k])))}`).join(', ');
}

function errorsCell(runs, failed) {
  const n = runs.reduce((a, r) => a + (r.errors || 0), 0);
  let s = String(n);
  const non2xx = runs.reduce((a, r) => a + (r.non2xx || 0), 0);
  if (non2xx > 0) s += ` (${non2xx} non-2xx)`;
  if (failed > 0) s += `, ${failed} failed run${failed > 1 ? 's' : ''}`;
  return s;
}

/**
 * The results table (markdown). `scenarios` gives order and labels; `results` maps id -> runs.
 * HTTP/RPC rows: req/s, p50, p99; drain rows: msg/s drained; pub/sub rows: published and consumed msg/s.
 */
function resultsTable(scenarios, results) {
  const lines = [
    '| scenario | throughput /s, median (min-max) | p50 ms | p99 ms | errors + non-2xx (all rounds) | CPU, % of one core (median) | CPU µs per request or message (median) | RSS MB (median) |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const sc of scenarios) {
    const all = results[sc.id] || [];
    if (all.length === 0) continue;
    const runs = okRuns(all);
    const failed = all.length - runs.length;
    if (runs.length === 0) {
      const why = String(all[0].failed).replace(/\|/g, '/').slice(0, 160);
      lines.push(`| ${sc.label} | FAILED: ${why} | | | | | | |`);
      continue;
    }
    if (sc.type === 'pubsub') {
      lines.push(
        `| ${sc.label}: publish + confirm | ${cell(runs.map((r) => r.pub))} msg/s | | | ${errorsCell(runs, failed)} nacks | ${cpuCell(runs)} | ${costCell(runs)} | ${rssCell(runs)} |`,
      );
      lines.push(
        `| ${sc.label}: consume + ack | ${cell(runs.map((r) => r.cons))} msg/s | | | backlog growth ${fmt(median(runs.map((r) => r.backlogGrowth)))} msgs | | | |`,
      );
    } else if (sc.type === 'drain') {
      const n = runs[0].n;
      lines.push(
        `| ${sc.label} (${fmt(n)} msgs) | ${cell(runs.map((r) => r.drainRate))} msg/s | | | ${errorsCell(runs, failed)} | ${cpuCell(runs)} | ${costCell(runs)} | ${rssCell(runs)} |`,
      );
    } else {
      lines.push(
        `| ${sc.label} | ${cell(runs.map((r) => r.rps))} | ${cell(
          runs.map((r) => r.p50),
          1,
        )} | ${cell(
          runs.map((r) => r.p99),
          1,
        )} | ${errorsCell(runs, failed)} | ${cpuCell(runs)} | ${costCell(runs)} | ${rssCell(runs)} |`,
      );
    }
  }
  return lines.join('\n');
}

/**
 * Ratio definitions: `a` over `b` of `metric` ('throughput' or 'p99'), with an optional target.
 * `higherIsBetter` says which side of the target passes.
 */
const RATIOS = [
  {
    id: 'async-vs-naive',
    label: 'Warren async / naive gateway 202 (req/s)',
    a: 'warren-async',
    b: 'gw-202',
    metric: 'throughput',
    target: 1.5,
    higherIsBetter: true,
  },
  {
    id: 'async-vs-express',
    label: 'Warren async / plain express + json (req/s)',
    a: 'warren-async',
    b: 'http-plain',
    metric: 'throughput',
    target: 0.9,
    higherIsBetter: true,
  },
  {
    id: 'rpc-p99-vs-raw',
    label: 'Warren RPC p99 / raw amqplib RPC p99',
    a: 'warren-rpc',
    b: 'raw-rpc',
    metric: 'p99',
    target: 3,
    higherIsBetter: false,
  },
  {
    id: 'rpc-vs-naive',
    label: 'Warren RPC / naive gateway RPC (req/s)',
    a: 'warren-rpc',
    b: 'gw-rpc',
    metric: 'throughput',
  },
  {
    id: 'rpc-vs-raw',
    label: 'Warren RPC / raw amqplib RPC (req/s)',
    a: 'warren-rpc',
    b: 'raw-rpc',
    metric: 'throughput',
  },
  {
    id: 'drain',
    label: 'service-kit drain / raw amqplib consumer drain (msg/s)',
    a: 'drain-kit',
    b: 'drain-raw',
    metric: 'throughput',
    target: 0.8,
    higherIsBetter: true,
  },
  {
    id: 'rpc-vs-moleculer',
    label: 'Warren RPC / Moleculer tuned (req/s)',
    a: 'warren-rpc',
    b: 'moleculer-tuned',
    metric: 'throughput',
    target: 1.3,
    higherIsBetter: true,
  },
  {
    id: 'rpc-vs-nest',
    label: 'Warren RPC / NestJS (req/s)',
    a: 'warren-rpc',
    b: 'nest',
    metric: 'throughput',
    target: 2,
    higherIsBetter: true,
  },
  // Scale-out on this machine (informational): two gateways + two echo instances against one + one.
  {
    id: 'scale-async',
    label: 'Warren async 2+2 / 1+1 (req/s)',
    a: 'warren-async-x2',
    b: 'warren-async',
    metric: 'throughput',
  },
  {
    id: 'scale-rpc',
    label: 'Warren RPC 2+2 / 1+1 (req/s)',
    a: 'warren-rpc-x2',
    b: 'warren-rpc',
    metric: 'throughput',
  },
  // The same comparisons on a CPU-cost basis: CPU µs per request of the process that limits each
  // side (the gateway; the consumer in the drain). On one core, capacity ~ 1 / cost, and the cost
  // is far less sensitive than req/s to other work on the shared machine.
  {
    id: 'cost-async-vs-naive',
    label: 'capacity estimate: naive gateway µs/req ÷ Warren gateway µs/req (async)',
    a: 'gw-202',
    metric: 'cost:naive-gateway',
    b: 'warren-async',
    metricB: 'cost:gateway',
    target: 1.5,
    higherIsBetter: true,
  },
  {
    id: 'cost-async-vs-express',
    label: 'capacity estimate: plain express µs/req ÷ Warren gateway µs/req (async)',
    a: 'http-plain',
    metric: 'cost:naive-gateway',
    b: 'warren-async',
    metricB: 'cost:gateway',
    target: 0.9,
    higherIsBetter: true,
  },
  {
    id: 'cost-rpc-vs-naive',
    label: 'capacity estimate: naive gateway µs/req ÷ Warren gateway µs/req (RPC)',
    a: 'gw-rpc',
    metric: 'cost:naive-gateway',
    b: 'warren-rpc',
    metricB: 'cost:gateway',
  },
  {
    id: 'cost-rpc-vs-moleculer',
    label: 'capacity estimate: Moleculer gateway µs/req ÷ Warren gateway µs/req (RPC)',
    a: 'moleculer-tuned',
    metric: 'cost:gateway',
    b: 'warren-rpc',
    metricB: 'cost:gateway',
    target: 1.5,
    higherIsBetter: true,
  },
  {
    id: 'cost-rpc-vs-nest',
    label: 'capacity estimate: NestJS http-app µs/req ÷ Warren gateway µs/req (RPC)',
    a: 'nest',
    metric: 'cost:http-app',
    b: 'warren-rpc',
    metricB: 'cost:gateway',
    target: 2.5,
    higherIsBetter: true,
  },
  // Every process of each side summed (broker, services, the load generator or raw client).
  {
    id: 'all-rpc-vs-raw',
    label: 'all processes: Warren µs/RPC ÷ raw amqplib RPC µs/call',
    a: 'warren-rpc',
    b: 'raw-rpc',
    metric: 'cost:all',
    target: 1.6,
    higherIsBetter: false,
  },
  {
    id: 'all-async-vs-raw',
    label: 'all processes: Warren µs/async request ÷ raw confirmed publish + consume µs/msg',
    a: 'warren-async',
    b: 'raw-publish',
    metric: 'cost:all',
    target: 1.5,
    higherIsBetter: false,
  },
  {
    id: 'cost-drain',
    label: 'capacity estimate: raw consumer µs/msg ÷ service-kit echo µs/msg (drain)',
    a: 'drain-raw',
    metric: 'cost:raw-consumer',
    b: 'drain-kit',
    metricB: 'cost:echo',
    target: 0.8,
    higherIsBetter: true,
  },
];

/** CPU µs per request of every process of a run (broker, services, load generator), summed. */
function totalCost(run) {
  const t = throughputOf(run);
  if (!run || !run.cpu || !(t > 0)) return NaN;
  let sum = 0;
  for (const [k, v] of Object.entries(run.cpu))
    if (k !== 'busy' && k !== 'other' && Number.isFinite(v)) sum += (v / 100 / t) * 1e6;
  return sum;
}

/**
 * 'throughput', 'p99', 'cost:<process>' (CPU µs per request of that process) or 'cost:all' (of
 * every process, load generator included).
 */
function metricOf(run, metric) {
  if (metric === 'p99') return run.p99;
  if (metric === 'cost:all') return totalCost(run);
  if (metric.startsWith('cost:')) {
    const c = costOf(run)[metric.slice(5)];
    return c === undefined ? NaN : c;
  }
  return throughputOf(run);
}

/**
 * Each ratio as the ratio of the medians, plus the spread of the per-round ratios (round i of `a`
 * against round i of `b`: interleaved rounds ran close together in time). Skips ratios whose
 * scenarios did not run. Extra definitions (e.g. before/after) can be passed in.
 */
function ratios(results, defs = RATIOS) {
  const out = [];
  for (const d of defs) {
    const ra = results[d.a];
    const rb = results[d.b];
    if (!ra || !rb) continue;
    const mb = d.metricB || d.metric;
    const va = okRuns(ra).map((r) => metricOf(r, d.metric));
    const vb = okRuns(rb).map((r) => metricOf(r, mb));
    const value = median(va) / median(vb);
    // Best of rounds: the least disturbed run of each side (highest throughput, lowest p99 or cost).
    const lowerIsBetter = (m) => m === 'p99' || m.startsWith('cost:');
    const best = (vals, m) => {
      const f = vals.filter(Number.isFinite);
      if (f.length === 0) return NaN;
      return lowerIsBetter(m) ? Math.min(...f) : Math.max(...f);
    };
    const bestValue = best(va, d.metric) / best(vb, mb);
    const perRound = [];
    for (let i = 0; i < Math.min(ra.length, rb.length); i++) {
      const x = ra[i];
      const y = rb[i];
      if (!x || !y || x.failed || y.failed) continue;
      const q = metricOf(x, d.metric) / metricOf(y, mb);
      if (Number.isFinite(q)) perRound.push(q);
    }
    const judge = (v) => {
      if (d.target === undefined || !Number.isFinite(v)) return '';
      return (d.higherIsBetter ? v >= d.target : v <= d.target) ? 'met' : 'NOT met';
    };
    out.push({
      ...d,
      value,
      bestValue,
      perRound,
      verdict: judge(value),
      bestVerdict: judge(bestValue),
    });
  }
  return out;
}

function ratiosTable(list) {
  const lines = [
    '| ratio | median / median | per-round spread | best / best | target | verdict (median, best) |',
    '|---|---|---|---|---|---|',
  ];
  for (const r of list) {
    const s = spread(r.perRound);
    const sp = s.n > 1 ? `${fmt(s.min, 2)}-${fmt(s.max, 2)}` : s.n === 1 ? fmt(s.median, 2) : 'n/a';
    const target = r.target === undefined ? '' : `${r.higherIsBetter ? '>=' : '<='} ${r.target}`;
    const verdict = r.verdict ? `${r.verdict}, ${r.bestVerdict}` : '';
    lines.push(
      `| ${r.label} | ${fmt(r.value, 2)} | ${sp} | ${fmt(r.bestValue, 2)} | ${target} | ${verdict} |`,
    );
  }
  return lines.join('\n');
}

/** Concurrency sweep table: one row per (scenario, connections). */
function sweepTable(points) {
  if (!points || points.length === 0) return '';
  const lines = [
    '| scenario | connections | req/s | p50 ms | p99 ms | errors + non-2xx | CPU % of a core | RSS MB |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const p of points) {
    if (p.failed) {
      lines.push(
        `| ${p.scenario} | ${p.connections} | FAILED: ${String(p.failed).slice(0, 120)} | | | | | |`,
      );
      continue;
    }
    const cpu = Object.entries(p.cpu || {})
      .map(([k, v]) => `${k} ${fmt(v)}`)
      .join(', ');
    const rss = Object.entries(p.rssMb || {})
      .map(([k, v]) => `${k} ${fmt(v)}`)
      .join(', ');
    lines.push(
      `| ${p.scenario} | ${p.connections} | ${fmt(p.rps)} | ${fmt(p.p50, 1)} | ${fmt(p.p99, 1)} | ${(p.errors || 0) + (p.non2xx || 0)} | ${cpu} | ${rss} |`,
    );
  }
  return lines.join('\n');
}

/** One-line summary of a finished run, for the progress log. */
function runSummary(sc, r) {
  if (r.failed) return `FAILED ${r.failed}`;
  const us = Object.entries(costOf(r))
    .map(([k, v]) => `${k} ${fmt(v)}`)
    .join(' ');
  const cpu = `${Object.entries(r.cpu || {})
    .map(([k, v]) => `${k} ${v}`)
    .join(' ')} | µs/req ${us}`;
  if (sc.type === 'pubsub')
    return `pub ${fmt(r.pub)}/s cons ${fmt(r.cons)}/s nacks ${r.errors} | cpu ${cpu}`;
  if (sc.type === 'drain')
    return `${fmt(r.n)} msgs drained at ${fmt(r.drainRate)}/s (total ${fmt(r.totalS, 1)} s, prefill ${fmt(r.prefillRate)}/s) errors ${r.errors} | cpu ${cpu}`;
  return `${fmt(r.rps)} req/s p50 ${fmt(r.p50, 1)} p99 ${fmt(r.p99, 1)} ms errors ${r.errors} non2xx ${r.non2xx || 0} | cpu ${cpu}`;
}

/**
 * The figures of the scale-out section, all medians over the rounds of the saved results: for each
 * mode (async, RPC) the 1+1 and 2+2 throughput, machine busy, CPU per process and CPU µs per request
 * (gateways, echo instances, broker, load generator), and the broker's own rate from the raw RPC
 * row. `projection` gives, for N cores with the load generator elsewhere, the CPU-bound estimate
 * N x 10^6 / (gateway + echo + broker µs per request), that estimate capped at the broker's measured
 * rate (raw RPC for RPC; for async the raw confirmed publisher when it ran, else raw RPC), and how
 * many gateway and echo processes (one core each) that rate needs.
 */
function scaleOut(results, coresList = [2, 4, 8, 16, 32]) {
  const runsOf = (id) => okRuns(results[id]);
  const med = (id, f) => median(runsOf(id).map(f));
  const sumOf = (cpu, re) =>
    Object.entries(cpu || {})
      .filter(([k]) => re.test(k))
      .reduce((a, [, v]) => a + (Number.isFinite(v) ? v : 0), 0);
  const side = (id) => {
    if (runsOf(id).length === 0) return undefined;
    const cpu = {};
    for (const r of runsOf(id))
      for (const k of Object.keys(r.cpu || {})) if (!(k in cpu)) cpu[k] = NaN;
    for (const k of Object.keys(cpu)) cpu[k] = med(id, (r) => (r.cpu || {})[k]);
    const us = (proc) => med(id, (r) => instanceCost(r.cpu, throughputOf(r))[proc]);
    return {
      rps: med(id, throughputOf),
      p50: med(id, (r) => r.p50),
      p99: med(id, (r) => r.p99),
      busy: cpu.busy,
      // What the benchmark's own processes got of the machine (the rest is other work on it).
      ownCpu: med(id, (r) => (r.cpu || {}).busy - ((r.cpu || {}).other || 0)),
      cpu,
      gatewaysCpu: med(id, (r) => sumOf(r.cpu, /^gateway(-\d+)?$/)),
      echoCpu: med(id, (r) => sumOf(r.cpu, /^echo(-\d+)?$/)),
      us: {
        gateway: us('gateway'),
        echo: us('echo'),
        broker: us('broker'),
        loadgen: us('loadgen'),
      },
    };
  };
  const raw = runsOf('raw-rpc').length
    ? {
        rps: med('raw-rpc', throughputOf),
        broker: med('raw-rpc', (r) => (r.cpu || {}).broker),
        busy: med('raw-rpc', (r) => (r.cpu || {}).busy),
      }
    : undefined;
  const rawPub = runsOf('raw-publish').length
    ? {
        rps: med('raw-publish', throughputOf),
        broker: med('raw-publish', (r) => (r.cpu || {}).broker),
      }
    : undefined;
  const modes = [];
  for (const [mode, id] of [
    ['async', 'warren-async'],
    ['rpc', 'warren-rpc'],
  ]) {
    const one = side(id);
    const two = side(`${id}-x2`);
    if (!one && !two) continue;
    const ratio = one && two ? two.rps / one.rps : NaN;
    // Per-request CPU of the 1+1 run: the processes as they would run, one each, on a bigger machine.
    const base = one || two;
    const perReq = base.us.gateway + base.us.echo + base.us.broker;
    // The broker's rate for this kind of traffic: raw RPC for RPC; the raw confirmed publisher for
    // async when it ran, else raw RPC.
    const boundBy = mode === 'async' && rawPub ? 'raw-publish' : raw ? 'raw-rpc' : undefined;
    const bound = boundBy === 'raw-publish' ? rawPub.rps : raw ? raw.rps : NaN;
    const projection = coresList.map((cores) => {
      const cpuBound = Number.isFinite(perReq) && perReq > 0 ? (cores * 1e6) / perReq : NaN;
      const rps = Number.isFinite(bound) ? Math.min(cpuBound, bound) : cpuBound;
      return {
        cores,
        cpuBound,
        rps,
        brokerBound: Number.isFinite(bound) && bound < cpuBound,
        gateways: Math.ceil((rps * base.us.gateway) / 1e6),
        echos: Math.ceil((rps * base.us.echo) / 1e6),
      };
    });
    const atBound = Number.isFinite(bound)
      ? {
          rps: bound,
          by: boundBy,
          gatewayCores: (bound * base.us.gateway) / 1e6,
          echoCores: (bound * base.us.echo) / 1e6,
          brokerCores: (bound * base.us.broker) / 1e6,
        }
      : undefined;
    modes.push({ mode, one, two, ratio, perReq, projection, atBound });
  }
  return { modes, raw, rawPub };
}

module.exports = {
  costOf,
  totalCost,
  instanceCost,
  scaleOut,
  median,
  spread,
  fmt,
  cell,
  throughputOf,
  resultsTable,
  RATIOS,
  ratios,
  ratiosTable,
  sweepTable,
  runSummary,
};
