// The benchmark's configuration: the knobs of bench.js's header read from the environment, the
// ports its processes listen on, the order of a round and the ratios of the report (pure functions).
'use strict';
const path = require('node:path');
const report = require('./report');

const REPO = path.resolve(__dirname, '..', '..', '..');

/**
 * The knobs of bench.js's header from `env` and `argv` (`--peers`). The object is saved with each
 * run's results (meta.config), so its keys and their order are part of the results format.
 */
function loadConfig(env = process.env, argv = process.argv) {
  const num = (name, def) => (env[name] ? Number(env[name]) : def);
  return {
    rounds: num('ROUNDS', 3),
    warmup: num('WARMUP', 2),
    duration: num('DURATION', 7),
    connections: num('CONNECTIONS', 64),
    drainN: num('DRAIN_N', 50000),
    sweep: env.SWEEP !== '0',
    sweepConnections: (env.SWEEP_CONNECTIONS || '1,4,16,64,256').split(',').map(Number),
    sweepWarmup: num('SWEEP_WARMUP', 1),
    sweepDuration: num('SWEEP_DURATION', 3),
    profile: env.PROFILE === '1',
    only: env.ONLY ? env.ONLY.split(',').map((s) => s.trim()) : null,
    peers: argv.includes('--peers'),
    amqpBase: env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672',
    vhost: env.BENCH_VHOST || 'warren-bench',
    peersDir: path.resolve(REPO, env.PEERS_DIR || '../shared/peers'),
    // Where the Warren processes come from (a tree made by prepare-baseline.js for A/B runs).
    warrenRoot: env.WARREN_ROOT ? path.resolve(env.WARREN_ROOT) : REPO,
    compareWith: env.COMPARE_WITH ? path.resolve(env.COMPARE_WITH) : null,
    compareLabel: env.COMPARE_LABEL || 'before',
    compareNote: env.COMPARE_NOTE || '',
    outDir: path.resolve(REPO, env.BENCH_OUT || 'docs/performance'),
    quietBusy: num('QUIET_BUSY', 60),
    quietMax: num('QUIET_MAX', 3),
    scale: env.SCALE !== '0',
    portBase: env.BENCH_PORT_BASE ? Number(env.BENCH_PORT_BASE) : null,
  };
}
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

/**
 * The order of one round: the scenario list, except that in even rounds each "before" variant runs
 * before its counterpart instead of after it, so slow drifts of the shared machine cancel out.
 */
function roundOrder(cfg, list, round) {
  const out = list.slice();
  if (round % 2 === 1 || !cfg.compareWith) return out;
  for (let i = 0; i + 1 < out.length; i++) {
    if (out[i + 1].id === `${out[i].id}@${cfg.compareLabel}`) {
      [out[i], out[i + 1]] = [out[i + 1], out[i]];
      i++;
    }
  }
  return out;
}

/** The ratios of the report: report.RATIOS, plus the now / before ones of an A/B run. */
function ratioDefs(compareWith, compareLabel) {
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

module.exports = { REPO, loadConfig, benchPorts, roundOrder, ratioDefs };
