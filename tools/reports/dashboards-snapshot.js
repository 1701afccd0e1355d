#!/usr/bin/env node
// `npm run dashboards:snapshot [-- --seconds N --out file.png]`: the overview dashboard without
// Grafana. Starts the live stack of tests/infra/live.test.ts (throwaway vhost on the local broker,
// built gateway, hello, echo, wordcount, fixture services `flaky` and `slow`, the real Prometheus
// with the project's config and rules), drives a mixed load whose rate rises and falls for N
// seconds, starts a service `fresh` a third of the way in (discovered without a config edit),
// then draws the overview's main panels from Prometheus' range queries to
// docs/observability/overview.png and stops everything.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { execFileSync } = require('node:child_process');
const swc = require('@swc/core');

const ROOT = path.resolve(__dirname, '..', '..');

// The stack is TypeScript shared with the live test: compile it on require with swc, as jest does.
require.extensions['.ts'] = (module, filename) => {
  const { code } = swc.transformSync(fs.readFileSync(filename, 'utf8'), {
    filename,
    jsc: { target: 'es2022', parser: { syntax: 'typescript' } },
    module: { type: 'commonjs' },
  });
  module._compile(code, filename);
};
const { Load, mixedLoadCycle, startLiveStack } = require('../../tests/infra/live-stack.ts');
const { sleep } = require('../../tests/support/time.ts');
const { fetchPanels, overviewSpec } = require('./overview-snapshot.ts');
const { findPrometheusTool } = require('../../tests/infra/promql.ts');
const { renderPng } = require('../bench/lib/charts');

const log = (line) => process.stdout.write(`snapshot: ${line}\n`);

async function main() {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '120' },
      out: { type: 'string', default: path.join(ROOT, 'docs', 'observability', 'overview.png') },
    },
    strict: true,
  });
  const seconds = Number(values.seconds);
  if (!Number.isFinite(seconds) || seconds < 20) throw new Error('--seconds must be at least 20');
  const out = path.resolve(values.out);

  const stack = await startLiveStack({ flaky: 'flaky', slow: 'slow', log });
  let stopping = false;
  const stopAndExit = (code) => {
    if (stopping) return;
    stopping = true;
    stack.stop().finally(() => process.exit(code));
  };
  process.once('SIGINT', () => stopAndExit(130));
  process.once('SIGTERM', () => stopAndExit(143));
  try {
    // A request every 35-105 ms, the rate rising and falling over a 60 s period.
    const pause = (elapsedMs) => 70 + 35 * Math.sin((2 * Math.PI * elapsedMs) / 60_000);
    const load = new Load(stack.gateway.url(''), mixedLoadCycle('flaky', 'slow'), pause);
    const start = Date.now();
    load.start();
    log(`mixed load for ${seconds} s`);
    await sleep((seconds * 1000) / 3);
    await stack.startFixture('fresh');
    load.add(
      { name: 'async fresh', path: '/v1/fresh', body: '{"ms": 3}' },
      { name: 'rpc fresh', path: '/v1/fresh?wait=true', body: '{}' },
    );
    log('started service fresh (no config edit)');
    await sleep(start + seconds * 1000 - Date.now());
    await load.stop();
    await sleep(3000); // the last scrapes and rule evaluations
    log(`requests by status: ${JSON.stringify(load.byStatus())}`);

    const end = Date.now() / 1000;
    // From the first full rate window on, as a dashboard would show a running system.
    const panels = await fetchPanels(stack.prometheus.api, {
      start: start / 1000 + 15,
      end,
      step: 2,
      rateInterval: '15s',
    });
    for (const p of panels) log(`${p.title}: ${p.series.length} series`);
    const version = /version (\S+)/.exec(
      execFileSync(findPrometheusTool('prometheus'), ['--version'], { encoding: 'utf8' }),
    )?.[1];
    const when = new Date(start).toISOString().replace('T', ' ').slice(0, 16);
    const spec = overviewSpec(panels, {
      title: 'Warren — Overview dashboard, main panels',
      subtitle: [
        `Live data: Prometheus ${version} with infra/prometheus/prometheus.yml scraping the gateway, hello, echo, wordcount and`,
        `the fixtures flaky (fails some messages) and slow (some RPC calls time out); fresh started mid-run. ${when} UTC,`,
        `${seconds} s of mixed load. Queries from infra/grafana/dashboards/overview.json ($__rate_interval = 15s). npm run dashboards:snapshot`,
      ],
    });
    fs.mkdirSync(path.dirname(out), { recursive: true });
    await renderPng(spec, out);
    log(`wrote ${path.relative(process.cwd(), out)}`);
  } finally {
    if (!stopping) {
      stopping = true;
      await stack.stop();
    }
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`snapshot: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  },
);
