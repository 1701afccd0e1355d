// Paired A/B of two Warren trees: both stacks (gateway + echo) run AT THE SAME TIME, each in its
// own vhost, each driven at the same fixed request rate; reports CPU µs per request of each side's
// gateway and echo per window, and new ÷ old.
//
//   COMPARE_WITH=/tmp/warren-before npm run bench:paired
//   COMPARE_WITH=/tmp/base RATE=2500 WINDOWS=8 MODE=async node tools/bench/paired.js
//
// Why: on this shared machine one 11 s round of `npm run bench` can run 25 % slower than the next
// (the host, not the code), so a lever worth 5-10 % needs many sequential rounds to show. Here a
// slow-down hits both sides in the same window and cancels in their ratio. The stack started first
// pays a few % more (an A/A run of one tree reads about 1.04), so the run is made twice, each tree
// first once, and the verdict is the geometric mean of the two orders' medians.
//
// Knobs (environment): COMPARE_WITH (the old tree, built; required; may be this tree when only
// NEW_ENV / OLD_ENV differ: gateway settings of one side, as JSON), WARREN_ROOT (the new tree,
// default this checkout), RATE (2500 requests/s per side), WINDOWS (8 windows of WINDOW_S = 8 s
// per order), MODE (rpc: POST ?wait=true, or async: 202), CONNECTIONS (32 per side), BENCH_VHOST
// (warren-paired; -new and -old are appended). Processes run with the gateway's and echo's production
// defaults (as `npm run bench`: loopback bind, rate limit raised). Prints only; writes no docs.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const procs = require('./lib/procs');
const mq = require('./lib/amqp');
const { echoSpec, gatewaySpec, postLoad, probe } = require('./lib/warren');
const { pairedVerdict } = require('./lib/paired-stats');
const { median } = require('./lib/report');
const { parseArgs, runScript } = require('./lib/script');

const env = process.env;
const ROOT = path.resolve(env.WARREN_ROOT || path.join(__dirname, '../..'));
const OLD = env.COMPARE_WITH ? path.resolve(env.COMPARE_WITH) : undefined;
const RATE = Number(env.RATE || 2500);
const WINDOWS = Number(env.WINDOWS || 8);
const WINDOW_S = Number(env.WINDOW_S || 8);
const MODE = env.MODE === 'async' ? 'async' : 'rpc';
const CONNECTIONS = Number(env.CONNECTIONS || 32);
const VHOST = env.BENCH_VHOST || 'warren-paired';
const AMQP_BASE = env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672';
/** Gateway settings of one side only (NEW_ENV / OLD_ENV, JSON objects), e.g. to A/B a setting. */
const SIDE_ENV = { new: sideEnv('NEW_ENV'), old: sideEnv('OLD_ENV') };

function sideEnv(name) {
  if (!env[name]) return {};
  const v = JSON.parse(env[name]);
  if (!v || typeof v !== 'object' || Array.isArray(v))
    throw new Error(`${name} must be a JSON object`);
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, String(x)]));
}

/** One side: echo, then the gateway, in vhost `<VHOST>-<tag>`; ports 3640+i, 9640+i, 9650+i. */
async function startSide(root, tag, i, logs) {
  const vhost = `${VHOST}-${tag}`;
  await mq.createVhost(vhost);
  const url = mq.benchUrl(AMQP_BASE, vhost);
  const echo = procs.start(
    echoSpec({ root, amqpUrl: url, opsPort: 9650 + i }),
    `${logs}/echo-${tag}.log`,
  );
  await echo.ready;
  const spec = gatewaySpec({ root, amqpUrl: url, port: 3640 + i, opsPort: 9640 + i });
  Object.assign(spec.env, SIDE_ENV[tag]);
  const gateway = procs.start(spec, `${logs}/gateway-${tag}.log`);
  await gateway.ready;
  const target = `http://127.0.0.1:${3640 + i}/v1/echo${MODE === 'rpc' ? '?wait=true' : ''}`;
  await probe(target);
  return { root, tag, vhost, echo, gateway, target };
}

/** Autocannon at RATE for `seconds`, posting the benchmark's body (lib/warren.js). */
function load(url, seconds) {
  return postLoad(url, { connections: CONNECTIONS, overallRate: RATE, duration: seconds });
}

/** One order: `first` started (and loaded) first. Returns each window's CPU µs per request. */
async function runOrder(first, second, logs) {
  const a = await startSide(first.root, first.tag, 0, logs);
  const b = await startSide(second.root, second.tag, 1, logs);
  const sides = { [a.tag]: a, [b.tag]: b };
  const pids = {
    gatewayNew: sides.new.gateway.pid,
    echoNew: sides.new.echo.pid,
    gatewayOld: sides.old.gateway.pid,
    echoOld: sides.old.echo.pid,
  };
  await Promise.all([load(a.target, 3), load(b.target, 3)]); // warm-up
  const windows = [];
  for (let w = 0; w < WINDOWS; w++) {
    const s0 = procs.cpuSnap(pids);
    const [ra, rb] = await Promise.all([load(a.target, WINDOW_S), load(b.target, WINDOW_S)]);
    const s1 = procs.cpuSnap(pids);
    const cpu = procs.cpuDelta(s0, s1);
    const secs = (s1.t - s0.t) / 1000;
    const served = { [a.tag]: ra, [b.tag]: rb };
    const failed = ra.errors + ra.non2xx + rb.errors + rb.non2xx;
    if (failed > 0) throw new Error(`window ${w + 1}: ${failed} requests failed or were not 2xx`);
    const us = (key, side) => ((cpu[key] / 100) * secs * 1e6) / served[side].requests.total;
    const row = {
      gatewayNew: us('gatewayNew', 'new'),
      gatewayOld: us('gatewayOld', 'old'),
      echoNew: us('echoNew', 'new'),
      echoOld: us('echoOld', 'old'),
      busy: cpu.busy,
    };
    windows.push(row);
    console.log(
      `  window ${w + 1}: gateway µs/req new ${row.gatewayNew.toFixed(1)} old ${row.gatewayOld.toFixed(1)} (${(row.gatewayNew / row.gatewayOld).toFixed(3)}); echo new ${row.echoNew.toFixed(1)} old ${row.echoOld.toFixed(1)} (${(row.echoNew / row.echoOld).toFixed(3)}); machine busy ${row.busy} %`,
    );
  }
  for (const s of [a, b]) {
    await procs.stop(s.gateway);
    await procs.stop(s.echo);
    await mq.deleteVhost(s.vhost);
  }
  return windows;
}

async function main(session) {
  const args = parseArgs(__filename, process.argv.slice(2));
  if (args.help) return;
  if (!OLD) throw new Error('COMPARE_WITH (the old tree, built) is required; see --help');
  await mq.ensureBroker(AMQP_BASE, (m) => console.log(m));
  // A run stopped by a signal drops one vhost (runScript); leftovers of the other go here.
  for (const tag of ['new', 'old']) await mq.deleteVhost(`${VHOST}-${tag}`);
  // Set once vhosts may exist: a signal then drops them (runScript).
  session.amqpUrl = AMQP_BASE;
  session.vhost = `${VHOST}-new`;
  const logs = fs.mkdtempSync(path.join(os.tmpdir(), 'warren-paired-'));
  const neu = { root: ROOT, tag: 'new' };
  const old = { root: OLD, tag: 'old' };
  console.log(`paired ${MODE}: new ${ROOT} vs old ${OLD}, ${RATE} req/s per side, logs ${logs}`);
  console.log(' new started first:');
  const newFirst = await runOrder(neu, old, logs);
  console.log(' old started first:');
  const oldFirst = await runOrder(old, neu, logs);
  const v = pairedVerdict(newFirst, oldFirst);
  const fmt = (x) => x.toFixed(3);
  console.log(
    `gateway CPU per request new ÷ old: ${fmt(v.gateway)} (new first ${fmt(v.gatewayOrders[0])}, old first ${fmt(v.gatewayOrders[1])}); echo ${fmt(v.echo)} (${fmt(v.echoOrders[0])}, ${fmt(v.echoOrders[1])}); gateway µs/req medians new ${median(newFirst.concat(oldFirst).map((w) => w.gatewayNew)).toFixed(1)} old ${median(newFirst.concat(oldFirst).map((w) => w.gatewayOld)).toFixed(1)}`,
  );
}

runScript(module, main);
