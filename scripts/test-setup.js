#!/usr/bin/env node
// `npm test`'s pretest step: makes a fresh machine of the project's kind ready for the suite, or stops with the one command that does.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');

const DEFAULT_URL = 'amqp://guest:guest@127.0.0.1:5672';
const PROMETHEUS_PLUGIN_PORT = 15692;
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * What the suite needs from Debian, each with the check that says it is there: promtool (the
 * Prometheus config, rule and metrics checks), pika for Debian's python3 (interop with the pika
 * tutorial), Chromium (the console page, driven by puppeteer-core) and the RabbitMQ server binaries
 * (private nodes for the disruptive tests).
 */
const PACKAGES = [
  { pkg: 'prometheus', why: 'promtool', ok: () => onPath('promtool') },
  {
    pkg: 'python3-pika',
    why: 'pika for /usr/bin/python3',
    ok: () => run('/usr/bin/python3', ['-c', 'import pika']).status === 0,
  },
  {
    pkg: 'chromium',
    why: 'headless Chromium for the console page test',
    ok: () => fs.existsSync('/usr/bin/chromium'),
  },
  {
    pkg: 'rabbitmq-server',
    why: 'private RabbitMQ nodes',
    ok: () => fs.existsSync('/usr/lib/rabbitmq/bin/rabbitmq-server'),
  },
];

function run(cmd, args, opts = {}) {
  return spawnSync(cmd, args, { encoding: 'utf8', stdio: 'pipe', ...opts });
}

function onPath(cmd) {
  return run('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

function log(line) {
  process.stderr.write(`test-setup: ${line}\n`);
}

/** Stops `npm test` at once with what to do; nothing after it would pass. */
function fail(line, command) {
  log(line);
  if (command) log(`run once: ${command}`);
  process.exit(1);
}

function portOpen(host, port, timeoutMs = 1500) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

async function waitPort(host, port, seconds) {
  for (let i = 0; i < seconds; i++) {
    if (await portOpen(host, port)) return true;
    await new Promise((r) => setTimeout(r, 1000));
  }
  return false;
}

function installPackages() {
  const missing = PACKAGES.filter((p) => !p.ok());
  if (missing.length === 0) return;
  const names = missing.map((p) => p.pkg);
  const command = `apt-get update && apt-get install -y ${names.join(' ')}`;
  const what = missing.map((p) => `${p.pkg} (${p.why})`).join(', ');
  if (!isRoot || !onPath('apt-get')) fail(`missing Debian packages: ${what}`, `sudo ${command}`);
  log(`installing ${what} with apt-get (once per machine)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const update = run('apt-get', ['update', '-qq'], { env, stdio: 'inherit' });
  const install =
    update.status === 0 &&
    run('apt-get', ['install', '-y', '-qq', ...names], {
      env,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  if (!install || install.status !== 0)
    fail(`apt-get could not install ${names.join(' ')}`, command);
  const still = missing.filter((p) => !p.ok());
  if (still.length > 0) fail(`still missing after apt-get: ${still.map((p) => p.why).join(', ')}`);
}

/** The broker the suite uses when AMQP_URL is unset: a local RabbitMQ, started when it is installed and down. */
async function ensureLocalBroker() {
  if (await portOpen('127.0.0.1', 5672)) return true;
  if (!onPath('rabbitmq-server')) {
    log(
      'no broker on 127.0.0.1:5672 and rabbitmq-server is not installed: the suite falls back to testcontainers (Docker)',
    );
    return false;
  }
  if (!isRoot)
    fail(
      'RabbitMQ is installed but not running on 127.0.0.1:5672',
      'sudo rabbitmq-server -detached',
    );
  log('starting RabbitMQ (rabbitmq-server -detached)');
  run('rabbitmq-server', ['-detached']);
  if (!(await waitPort('127.0.0.1', 5672, 60)))
    fail(
      'RabbitMQ did not start listening on 127.0.0.1:5672 within 60 s',
      'rabbitmq-server -detached',
    );
  run('rabbitmqctl', ['-q', 'await_startup']);
  return true;
}

/** tests/infra/live.test.ts scrapes the local broker's rabbitmq_prometheus endpoint. */
async function ensurePrometheusPlugin() {
  if (await portOpen('127.0.0.1', PROMETHEUS_PLUGIN_PORT)) return;
  const command = 'rabbitmq-plugins enable rabbitmq_prometheus';
  if (!isRoot || !onPath('rabbitmq-plugins'))
    fail(
      `the local broker's rabbitmq_prometheus plugin does not answer on :${PROMETHEUS_PLUGIN_PORT}`,
      `sudo ${command}`,
    );
  log(`enabling rabbitmq_prometheus (${command}; works offline)`);
  const res = run('rabbitmq-plugins', ['-q', 'enable', 'rabbitmq_prometheus']);
  if (res.status !== 0)
    fail(`${command} failed: ${(res.stderr || res.stdout).trim().split('\n')[0]}`, command);
  if (!(await waitPort('127.0.0.1', PROMETHEUS_PLUGIN_PORT, 30)))
    fail(
      `rabbitmq_prometheus enabled but nothing answers on :${PROMETHEUS_PLUGIN_PORT} after 30 s`,
    );
}

async function main() {
  if (process.env.WARREN_TEST_SETUP === 'skip') return;
  installPackages();
  const url = process.env.AMQP_URL;
  const local = url === undefined || url === DEFAULT_URL;
  if (local && (await ensureLocalBroker())) await ensurePrometheusPlugin();
}

main().catch((err) =>
  fail(`unexpected error: ${err instanceof Error ? err.message : String(err)}`),
);
