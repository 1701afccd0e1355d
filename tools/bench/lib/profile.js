// Summary of a V8 .cpuprofile (node --cpu-prof): self time by function and by package, and
// inclusive ("total") time of the functions that matter. Pure on the parsed profile.
'use strict';

/** Where a frame's code lives: a package in node_modules, a Warren lib or service, node internals, or V8. */
function ownerOf(url, functionName) {
  if (!url) {
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(program)') return 'program (native, not attributed)';
    return 'V8/native';
  }
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    const pkg = rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
    if (pkg.startsWith('@warren/')) return pkg;
    return pkg;
  }
  const m = /\/(libs|services)\/([^/]+)\//.exec(url);
  if (m) return m[1] === 'libs' ? `@warren/${m[2]}` : `service ${m[2]}`;
  if (url.startsWith('node:')) {
    const mod = url
      .slice(5)
      .replace(/^internal\//, '')
      .split('/')[0];
    return `node:${mod}`;
  }
  return url.split('/').slice(-2).join('/');
}

function frameKey(cf) {
  const file = cf.url
    ? cf.url.replace(/^file:\/\//, '').replace(/^.*\/(node_modules|libs|services)\//, '$1/')
    : '';
  return file
    ? `${cf.functionName || '(anonymous)'} ${file}:${cf.lineNumber + 1}`
    : cf.functionName || '(anonymous)';
}

/**
 * Summarises a profile (optionally only the samples between `window.fromMs` and `window.toMs`
 * after its start, e.g. the measured load window without start-up): total sampled ms, self ms by owner (package), top `top` functions by self
 * time and by inclusive time (each function counted once per stack, so recursion does not double count).
 */
function summarize(profile, top = 15, window = {}) {
  const from = window.fromMs !== undefined ? window.fromMs * 1000 : -Infinity;
  const to = window.toMs !== undefined ? window.toMs * 1000 : Infinity;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children || []) parent.set(c, n.id);
  // Self time from samples and timeDeltas (more exact than hitCount x interval).
  const selfUs = new Map();
  const samples = profile.samples || [];
  const deltas = profile.timeDeltas || [];
  let at = 0;
  for (let i = 0; i < samples.length; i++) {
    at += deltas[i] || 0;
    if (at < from || at > to) continue;
    const dt = deltas[i + 1] !== undefined ? deltas[i + 1] : deltas[i] || 0;
    selfUs.set(samples[i], (selfUs.get(samples[i]) || 0) + Math.max(0, dt));
  }
  let totalUs = 0;
  for (const v of selfUs.values()) totalUs += v;
  const owners = new Map();
  const selfFn = new Map();
  const inclFn = new Map();
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    if (!n) continue;
    const owner = ownerOf(n.callFrame.url, n.callFrame.functionName);
    owners.set(owner, (owners.get(owner) || 0) + us);
    const k = frameKey(n.callFrame);
    selfFn.set(k, { us: ((selfFn.get(k) || {}).us || 0) + us, owner });
    // Inclusive: walk up the stack, counting each function once.
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const cn = byId.get(cur);
      const ck = frameKey(cn.callFrame);
      if (seen.has(ck) || cn.callFrame.functionName === '(root)') continue;
      seen.add(ck);
      inclFn.set(ck, {
        us: ((inclFn.get(ck) || {}).us || 0) + us,
        owner: ownerOf(cn.callFrame.url, cn.callFrame.functionName),
      });
    }
  }
  const pct = (us) => (totalUs > 0 ? (100 * us) / totalUs : 0);
  const sorted = (m) =>
    [...m.entries()]
      .map(([name, v]) => ({ name, ms: v.us / 1000, pct: pct(v.us), owner: v.owner }))
      .sort((a, b) => b.ms - a.ms);
  return {
    totalMs: totalUs / 1000,
    owners: [...owners.entries()]
      .map(([owner, us]) => ({ owner, ms: us / 1000, pct: pct(us) }))
      .sort((a, b) => b.ms - a.ms),
    selfTop: sorted(selfFn).slice(0, top),
    inclusiveTop: sorted(inclFn)
      .filter((f) => !/^\((program|idle|garbage collector)\)/.test(f.name))
      .slice(0, top),
  };
}

/** Layers that owners (packages) belong to, for a coarse "where does the time go" table. */
const LAYERS = [
  [
    'HTTP framework (express, router, helmet, rate limit, body/type parsing)',
    /^(express|router|helmet|express-rate-limit|body-parser|raw-body|finalhandler|send|on-finished|content-type|type-is|qs|path-to-regexp|depd|accepts|negotiator|mime-types|mime-db|parseurl|encodeurl|escape-html|vary|proxy-addr|forwarded|ipaddr\.js|statuses|iconv-lite|bytes|media-typer|content-disposition|cookie|fresh|range-parser|etag|merge-descriptors|utils-merge|setprototypeof|http-errors|toidentifier|inherits|safe-buffer|safer-buffer|ee-first|unpipe)$/,
  ],
  ['node:http (parser, server, outgoing)', /^node:_http_/],
  [
    'logging (pino, pino-http, redaction, sonic-boom)',
    /^(pino|pino-http|pino-std-serializers|sonic-boom|@pinojs\/redact|fast-redact|thread-stream|on-exit-leak-free|quick-format-unescaped|atomic-sleep|safe-stable-stringify)$/,
  ],
  ['metrics (prom-client)', /^(prom-client|tdigest|bintrees)$/],
  ['AMQP client (amqplib)', /^(amqplib|buffer-more-ints|url-parse|querystringify|requires-port)$/],
  ['Warren libs (messaging, service-kit, observability)', /^@warren\//],
  ["the service's own code", /^service /],
  ['AbortSignal / EventTarget', /^node:(abort_controller|event_target)$/],
  ['crypto (ids, trace ids)', /^node:crypto$/],
  [
    'sockets, streams, buffers, timers, events (node core)',
    /^node:(net|streams|stream_base_commons|buffer|timers|events|process|util|dns|url|querystring|errors|validators)$/,
  ],
  ['garbage collection', /^GC$/],
  ['native (syscalls, JSON, builtins)', /^(V8\/native|program \(native, not attributed\))$/],
];

/** % of busy time per layer; what no layer matches is "other". */
function layerShares(s) {
  const idle = (s.owners.find((o) => o.owner === 'idle') || { ms: 0 }).ms;
  const busy = s.totalMs - idle;
  const out = new Map();
  for (const o of s.owners) {
    if (o.owner === 'idle') continue;
    const layer = (LAYERS.find(([, re]) => re.test(o.owner)) || ['other'])[0];
    out.set(layer, (out.get(layer) || 0) + o.ms);
  }
  return [...out.entries()]
    .map(([layer, ms]) => ({ layer, pct: busy > 0 ? (100 * ms) / busy : 0 }))
    .sort((a, b) => b.pct - a.pct);
}

/** Markdown of one summary. Busy % excludes idle. */
function summaryMarkdown(title, s) {
  const idle = (s.owners.find((o) => o.owner === 'idle') || { ms: 0 }).ms;
  const busy = s.totalMs - idle;
  const pb = (ms) => (busy > 0 ? ((100 * ms) / busy).toFixed(1) : '0');
  const lines = [
    `#### ${title}`,
    '',
    `Sampled ${(s.totalMs / 1000).toFixed(1)} s, busy ${(busy / 1000).toFixed(1)} s. Shares below are % of busy time.`,
    '',
  ];
  lines.push('| layer (self time) | % busy |', '|---|---|');
  for (const l of layerShares(s))
    if (l.pct >= 0.5) lines.push(`| ${l.layer} | ${l.pct.toFixed(1)} |`);
  lines.push('', '| package (self time) | % busy |', '|---|---|');
  for (const o of s.owners.filter((x) => x.owner !== 'idle').slice(0, 14))
    lines.push(`| ${o.owner} | ${pb(o.ms)} |`);
  lines.push('', '| hottest functions, self time | package | % busy |', '|---|---|---|');
  for (const f of s.selfTop.filter((x) => x.name !== '(idle)').slice(0, 12))
    lines.push(`| \`${f.name}\` | ${f.owner} | ${pb(f.ms)} |`);
  lines.push('', '| functions by inclusive time | package | % busy |', '|---|---|---|');
  for (const f of s.inclusiveTop.slice(0, 15))
    lines.push(`| \`${f.name}\` | ${f.owner} | ${pb(f.ms)} |`);
  return lines.join('\n');
}

module.exports = { ownerOf, summarize, summaryMarkdown, layerShares };
