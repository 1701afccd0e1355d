#!/usr/bin/env node
// `npm start [-- name ...]`: runs the gateway and every built service as its own process, prints where they are.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const readline = require('node:readline');
const { parseArgs } = require('node:util');

const ROOT = path.resolve(__dirname, '..');
const SERVICES = path.join(ROOT, 'services');
const DEFAULT_URL = 'amqp://guest:guest@127.0.0.1:5672';

function discover() {
  return fs
    .readdirSync(SERVICES, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(SERVICES, d.name, 'package.json')))
    .map((d) => d.name)
    .sort((a, b) => (a === 'gateway' ? -1 : b === 'gateway' ? 1 : a.localeCompare(b)));
}

function reachable(url) {
  let host = '127.0.0.1';
  let port = 5672;
  try {
    const u = new URL(url);
    host = u.hostname || host;
    port = Number(u.port) || (u.protocol === 'amqps:' ? 5671 : 5672);
  } catch {
    // parse errors are reported by the services' own config check
  }
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok) => {
      s.destroy();
      resolve({ ok, where: `${host}:${port}` });
    };
    s.setTimeout(2000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

async function waitReady(url, child, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && child.exitCode === null) {
    try {
      const res = await fetch(url);
      if (res.status === 200) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

const USAGE = `Usage: npm start [-- <service> ...]

Builds, then runs the gateway and every service under services/ (or only the ones named) as
processes of their own against AMQP_URL, and prints where each one is. Ctrl-C stops them all.

  -h, --help   this text

Environment: AMQP_URL (default ${DEFAULT_URL}), PORT (the gateway's HTTP port, 3000),
METRICS_PORT_BASE (the gateway's ops port, 9400; each service gets the next one), LOG_LEVEL, and
every variable the processes read (services/gateway/README.md, docs/writing-a-service.md).
`;

async function main() {
  const all = discover();
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      strict: true,
      options: { help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    process.stderr.write(`warren: ${err.message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (parsed.values.help) {
    process.stdout.write(`${USAGE}\nServices here: ${all.join(', ')}\n`);
    return;
  }
  const { positionals } = parsed;
  const unknown = positionals.filter((n) => !all.includes(n));
  if (unknown.length) {
    process.stderr.write(
      `warren: unknown service(s): ${unknown.join(', ')} (have: ${all.join(', ')})\n`,
    );
    process.exit(2);
  }
  const names = positionals.length ? positionals : all;
  const amqpUrl = process.env.AMQP_URL || DEFAULT_URL;
  const broker = await reachable(amqpUrl);
  if (!broker.ok) {
    process.stderr.write(
      `warren: no RabbitMQ reachable at ${broker.where} — start one with \`rabbitmq-server -detached\` or \`docker compose up -d rabbitmq\`, or set AMQP_URL\n`,
    );
    process.exit(1);
  }

  const basePort = Number(process.env.METRICS_PORT_BASE || 9400);
  const gatewayPort = process.env.PORT || '3000';
  const procs = [];
  let next = basePort + 1;
  const width = Math.max(...names.map((n) => n.length));
  for (const name of names) {
    const main = path.join(SERVICES, name, 'dist', 'main.js');
    if (!fs.existsSync(main)) {
      process.stderr.write(
        `warren: ${path.relative(ROOT, main)} is missing; run \`npm run build\`\n`,
      );
      process.exit(1);
    }
    const opsPort = name === 'gateway' ? basePort : next++;
    const env = { ...process.env, AMQP_URL: amqpUrl, METRICS_PORT: String(opsPort) };
    if (name === 'gateway') env.PORT = gatewayPort;
    // The console scrapes the gateway started here (the gateway does not announce itself).
    if (name === 'console' && names.includes('gateway'))
      env.CONSOLE_GATEWAY_METRICS_URL ??= `http://127.0.0.1:${basePort}/metrics`;
    const child = spawn(process.execPath, [main], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const prefix = `${name.padEnd(width)} | `;
    for (const stream of [child.stdout, child.stderr]) {
      readline
        .createInterface({ input: stream })
        .on('line', (line) => process.stdout.write(prefix + line + '\n'));
    }
    // 'close' (not 'exit'): every line the child printed has been relayed.
    const closed = new Promise((r) => child.once('close', r));
    procs.push({ name, child, opsPort, closed });
  }

  let stopping = false;
  const stopAll = (code) => {
    if (stopping) return;
    stopping = true;
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGTERM');
    Promise.all(procs.map((p) => p.closed)).then(() => process.exit(code));
  };
  process.on('SIGINT', () => stopAll(0));
  process.on('SIGTERM', () => stopAll(0));
  for (const p of procs) {
    p.child.once('exit', (code, signal) => {
      if (stopping) return;
      process.stderr.write(`warren: ${p.name} exited (${signal || code}); stopping the others\n`);
      stopAll(1);
    });
  }

  const ready = await Promise.all(
    procs.map((p) => waitReady(`http://127.0.0.1:${p.opsPort}/readyz`, p.child, 30000)),
  );
  if (stopping) return;
  const rows = procs.map((p, i) => ({
    service: p.name,
    pid: String(p.child.pid),
    state: ready[i] ? 'ready' : 'NOT READY',
    http:
      p.name === 'gateway'
        ? `http://127.0.0.1:${gatewayPort}/v1/<service>`
        : p.name === 'console'
          ? `http://127.0.0.1:${process.env.CONSOLE_PORT || '3001'}/`
          : '-',
    metrics: `http://127.0.0.1:${p.opsPort}/metrics`,
  }));
  const cols = Object.keys(rows[0]);
  const w = cols.map((c) => Math.max(c.length, ...rows.map((r) => r[c].length)));
  const line = (r) => cols.map((c, i) => String(r[c]).padEnd(w[i])).join('  ');
  process.stdout.write(
    `\nwarren: ${ready.filter(Boolean).length}/${procs.length} processes ready (broker ${broker.where})\n` +
      line(Object.fromEntries(cols.map((c) => [c, c.toUpperCase()]))) +
      '\n' +
      rows.map(line).join('\n') +
      '\nCtrl-C stops everything.\n\n',
  );
  if (ready.some((r) => !r)) stopAll(1);
}

main().catch((err) => {
  process.stderr.write(`warren: ${err && err.message ? err.message : err}\n`);
  process.exit(1);
});
