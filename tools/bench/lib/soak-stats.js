// The soak test's verdict, computed from its samples (pure: no broker, no processes, no clock).
//
// A sample is taken after each chunk of requests: { sent, rss: { gateway, echo }, heapUsedMb: {...},
// pendingRpc, pendingRpcMax, errors, non2xx, ... }. Warm-up is the first `warmupFraction` of the
// requests; the growth of a figure is the median of the last `window` samples over the median of
// the first `window` samples taken once warm-up is over, minus 1.
'use strict';
const { median, fmt } = require('./report');
const { metricValue } = require('./prom-text');

const DEFAULTS = { warmupFraction: 0.1, window: 3, maxGrowth: 0.1 };

/** Least-squares slope of y over x (NaN with fewer than two distinct x). */
function slope(points) {
  const p = points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (p.length < 2) return NaN;
  const mx = p.reduce((s, [x]) => s + x, 0) / p.length;
  const my = p.reduce((s, [, y]) => s + y, 0) / p.length;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of p) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  }
  return sxx === 0 ? NaN : sxy / sxx;
}

/** The samples taken once warm-up is over (at or after `warmupFraction` of `total` requests). */
function afterWarmup(samples, total, warmupFraction = DEFAULTS.warmupFraction) {
  const warm = total * warmupFraction;
  return samples.filter((s) => s.sent > 0 && s.sent >= warm);
}

/**
 * Growth of `get(sample)` over the post-warm-up samples: { base, end, growth, slopePer100k,
 * baseAt, endAt, overlap }. `overlap` is true when there are fewer than 2 x `window` samples, so
 * the two windows share samples (the figure is then weaker, not wrong).
 */
function growth(post, get, window = DEFAULTS.window) {
  const w = Math.max(1, Math.min(window, post.length));
  const first = post.slice(0, w);
  const last = post.slice(-w);
  const base = median(first.map(get));
  const end = median(last.map(get));
  return {
    base,
    end,
    growth: end / base - 1,
    slopePer100k: slope(post.map((s) => [s.sent, get(s)])) * 1e5,
    baseAt: first.map((s) => s.sent),
    endAt: last.map((s) => s.sent),
    overlap: post.length < 2 * window,
  };
}

const sum = (xs) => xs.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
const maxOf = (xs) => xs.filter(Number.isFinite).reduce((a, b) => Math.max(a, b), -Infinity);

/**
 * The verdict of a soak run. `run` = { total (requests planned), samples, finalPending
 * (pending-RPC gauge once the load stopped), processes (default ['gateway', 'echo']) }.
 * Returns { pass, targets: [{ id, label, value, target, pass, detail }], rss, heap, ... }.
 */
function verdict(run, opts = {}) {
  const o = { ...DEFAULTS, ...opts };
  const processes = run.processes || ['gateway', 'echo'];
  const samples = run.samples || [];
  const post = afterWarmup(samples, run.total, o.warmupFraction);
  const targets = [];
  const rss = {};
  const heap = {};
  const pct = (x) => `${(x * 100).toFixed(1)} %`;
  for (const p of processes) {
    rss[p] = growth(post, (s) => (s.rss || {})[p], o.window);
    heap[p] = growth(post, (s) => (s.heapUsedMb || {})[p], o.window);
    const g = rss[p];
    targets.push({
      id: `rss-${p}`,
      label: `${p} RSS flat over the soak`,
      value: g.growth,
      target: `|growth| <= ${pct(o.maxGrowth)}`,
      pass:
        post.length >= 2 &&
        Number.isFinite(g.growth) &&
        // (a hair of slack so that exactly 10 % in floating point is within 10 %)
        Math.abs(g.growth) <= o.maxGrowth + 1e-9,
      detail:
        post.length < 2
          ? `only ${post.length} sample(s) after warm-up`
          : `${g.base.toFixed(1)} MB -> ${g.end.toFixed(1)} MB (${g.growth >= 0 ? '+' : ''}${pct(g.growth)}), ` +
            `slope ${g.slopePer100k >= 0 ? '+' : ''}${g.slopePer100k.toFixed(2)} MB per 100k requests` +
            (g.overlap ? '; windows overlap (few samples)' : ''),
    });
  }
  const pendingMax = maxOf(samples.flatMap((s) => [s.pendingRpc, s.pendingRpcMax]));
  targets.push({
    id: 'pending-rpc',
    label: 'pending-RPC state back to 0 after the run',
    value: run.finalPending,
    target: '0',
    pass: run.finalPending === 0,
    detail: `${run.finalPending} pending after the run; at most ${Number.isFinite(pendingMax) ? pendingMax : 'n/a'} during it`,
  });
  const sent = sum(samples.map((s) => s.requests));
  const errors = sum(samples.map((s) => s.errors));
  const non2xx = sum(samples.map((s) => s.non2xx));
  targets.push({
    id: 'errors',
    label: 'every request answered 2xx',
    value: errors + non2xx,
    target: '0',
    pass: errors === 0 && non2xx === 0 && sent === run.total,
    detail: `${errors} errors/timeouts, ${non2xx} non-2xx, ${fmt(sent)} of ${fmt(run.total)} requests answered`,
  });
  return {
    pass: targets.every((t) => t.pass),
    warmupRequests: Math.round(run.total * o.warmupFraction),
    samplesAfterWarmup: post.length,
    window: o.window,
    maxGrowth: o.maxGrowth,
    rss,
    heap,
    pendingMax: Number.isFinite(pendingMax) ? pendingMax : NaN,
    finalPending: run.finalPending,
    sent,
    errors,
    non2xx,
    targets,
  };
}

/** Value of an unlabelled (or first labelled) series `name` in a Prometheus text exposition; NaN if absent. */
const metric = (text, name) => metricValue(text, name);

const mb = (x) => fmt(x, 1);
/** Text for a markdown table cell: pipes escaped. */
const cellText = (x) => String(x).replace(/\|/g, '\\|');
const signed = (x, digits = 1) =>
  Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${x.toFixed(digits)}` : 'n/a';

/** docs/performance/soak.md from a saved run ({ meta, samples, finalPending, verdict }). */
function soakMarkdown(saved, files = {}) {
  const m = saved.meta;
  const c = m.config;
  const v = saved.verdict;
  const lines = [];
  lines.push(
    `# Soak test: memory over ${fmt(c.n)} requests`,
    '',
    `<!-- Generated by tools/bench/soak.js from ${files.json || 'the saved run'}; do not edit by hand. -->`,
    '',
    `Run ${m.date} (\`${m.command}\`, commit ${m.git.commit}${m.git.dirty ? ' + uncommitted changes in libs/services' : ''}): ` +
      `${m.machine.cpus} CPUs (${m.machine.cpuModel}), ${m.machine.memGiB} GiB, kernel ${m.machine.kernel}, node ${m.versions.node}, ` +
      `RabbitMQ ${m.versions.rabbitmq || '?'}, autocannon ${m.versions.autocannon || '?'}; load average ${m.machine.loadavgStart.join(' / ')} at the start, ` +
      `${(m.machine.loadavgEnd || []).join(' / ')} at the end; ${fmt(m.elapsedS)} s in all.`,
    '',
    `**Verdict: ${v.pass ? 'PASS' : 'FAIL'}** (${v.targets.filter((t) => t.pass).length} of ${v.targets.length} targets met).`,
    '',
    '## Method',
    '',
    `The echo service and the gateway run as separate processes with production defaults (as in \`npm run bench\`: ` +
      `loopback bind, per-client rate limit raised so one load generator is not throttled) against the local RabbitMQ, ` +
      `in a vhost of their own (\`${c.vhost}\`) created for the run and deleted after it. autocannon sends ${fmt(c.n)} ` +
      `\`POST /v1/echo\` requests with the body \`{"msg":"hello","n":42}\` over ${c.connections} connections, in chunks of ${fmt(c.chunk)} ` +
      (c.mode === 'mixed'
        ? `requests; each chunk is half async (202 after the confirmed publish) and half RPC (\`?wait=true\`, 200 with the reply), ` +
          `sent at the same time on ${Math.max(1, c.connections >> 1)} connections each.`
        : `requests, all ${c.mode === 'rpc' ? 'RPC (`?wait=true`, 200 with the reply)' : 'async (202 after the confirmed publish)'}.`),
    '',
    `After each chunk the soak waits (at most ${c.drainMaxS} s) until the \`echo\` queue is empty, then samples the resident set size ` +
      `of both processes (\`/proc/<pid>/status\` VmRSS), their V8 heap (\`nodejs_heap_size_used_bytes\` from \`/metrics\`) and the ` +
      `gateway's pending-RPC gauge (\`mq_rpc_pending_calls\`); the gauge and RSS are also polled every second while a chunk runs (the "max" columns). ` +
      `The first ${Math.round((v.warmupRequests / c.n) * 100)} % of the requests (${fmt(v.warmupRequests)}) are warm-up. ` +
      `RSS growth = median RSS of the last ${v.window} samples / median RSS of the first ${v.window} samples after warm-up - 1 ` +
      `(target: within ${Math.round(v.maxGrowth * 100)} %); the slope is a least-squares fit of RSS over the ${v.samplesAfterWarmup} samples after warm-up. ` +
      'No figure here is typed by hand: the verdict is computed from the samples (tools/bench/lib/soak-stats.js).',
    '',
    '## Verdict per target',
    '',
    '| Target | Measured | Goal | Result |',
    '|---|---|---|---|',
  );
  for (const t of v.targets)
    lines.push(
      `| ${cellText(t.label)} | ${cellText(t.detail)} | ${cellText(t.target)} | ${t.pass ? 'PASS' : 'FAIL'} |`,
    );
  lines.push('');
  const heapRows = Object.entries(v.heap).map(
    ([p, g]) =>
      `${p} ${mb(g.base)} -> ${mb(g.end)} MB (${signed(g.growth * 100)} %, ${signed(g.slopePer100k, 2)} MB per 100k)`,
  );
  lines.push(
    `V8 heap used over the same windows (for reading, no target): ${heapRows.join('; ')}.`,
    '',
  );
  if (files.chart) lines.push(`![RSS of gateway and echo vs requests sent](${files.chart})`, '');
  lines.push(
    '## Samples',
    '',
    '| Chunk | Sent | Mode | req/s | Errors | Non-2xx | RSS gateway MB (max during chunk) | RSS echo MB (max during chunk) | Heap gateway MB | Heap echo MB | Pending RPC (max during chunk) | echo queue at end | Drain s |',
    '|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const s of saved.samples) {
    const mx = s.rssMaxMb || {};
    const withMax = (x, y) => (Number.isFinite(y) && y > 0 ? `${mb(x)} (${mb(y)})` : mb(x));
    lines.push(
      `| ${s.chunk} | ${fmt(s.sent)} | ${s.mode || 'before load'} | ${s.rps ? fmt(s.rps) : ''} | ${s.errors ?? ''} | ${s.non2xx ?? ''} | ` +
        `${withMax(s.rss.gateway, mx.gateway)} | ${withMax(s.rss.echo, mx.echo)} | ${mb(s.heapUsedMb.gateway)} | ${mb(s.heapUsedMb.echo)} | ` +
        `${s.pendingRpc}${Number.isFinite(s.pendingRpcMax) ? ` (${s.pendingRpcMax})` : ''} | ${Number.isFinite(s.queueDepth) ? fmt(s.queueDepth) : ''} | ` +
        `${Number.isFinite(s.drainS) ? s.drainS.toFixed(1) : s.chunk ? 'not drained' : ''} |`,
    );
  }
  lines.push(
    '',
    `Pending RPC after the run: ${saved.finalPending}. RSS and heap are in MiB (1024 x 1024 bytes). ` +
      "req/s is the chunk's requests over its wall time (both modes together in a mixed chunk). " +
      '"echo queue at end" is the backlog the async requests left when the chunk ended (accepted but not yet consumed).',
    '',
  );
  return lines.join('\n');
}

module.exports = { DEFAULTS, slope, afterWarmup, growth, verdict, metric, soakMarkdown };
