// The console against a live system: its JSON API under load agrees with the services' own counters, and its page renders in headless Chromium.
import fs from 'node:fs';
import path from 'node:path';
import puppeteer from 'puppeteer-core';
import { testAmqpUrl } from '../support/broker';
import {
  ROOT,
  freePort,
  startGatewayChild,
  startNode,
  startOnFreePorts,
  stopAll,
} from '../support/processes';
import { createVhost, type TestVhost } from '../support/vhost';
import { eventually } from '../support/time';

jest.setTimeout(120_000);
const CHROMIUM = '/usr/bin/chromium';
let vhost: TestVhost;
let gatewayPort: number;
let consolePort: number;
let echoOps: number;

interface Summary {
  name: string;
  instances: number;
  rate: number;
  rates: Record<string, number>;
  processing: { p50?: number; p95?: number; p99?: number };
  queueDepth?: number;
  dlqDepth?: number;
  http?: Record<string, number>;
  pending?: number;
}
interface Overview {
  rounds: number;
  services: Summary[];
  gateway: Summary | null;
}

const api = async <T>(p: string): Promise<T> => {
  const res = await fetch(`http://127.0.0.1:${consolePort}${p}`);
  expect(res.status).toBe(200);
  return (await res.json()) as T;
};

/** echo's own count of successful messages, from its /metrics. */
async function echoSuccesses(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${echoOps}/metrics`)).text();
  const m = /^mq_consumer_messages_total\{[^}]*outcome="success"[^}]*\} (\d+)/m.exec(text);
  return Number(m?.[1] ?? 0);
}

async function load(n: number): Promise<void> {
  for (let i = 0; i < n; i += 20)
    await Promise.all(
      Array.from({ length: 20 }, async (_, j) => {
        const wait = (i + j) % 4 === 0 ? '?wait=true' : '';
        const res = await fetch(`http://127.0.0.1:${gatewayPort}/v1/echo${wait}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ n: i + j }),
        });
        expect([200, 202]).toContain(res.status);
        await res.arrayBuffer();
      }),
    );
}

beforeAll(async () => {
  vhost = await createVhost(await testAmqpUrl(), 'warren-console');
  const gateway = await startGatewayChild(vhost.url, { LOG_LEVEL: 'warn' });
  gatewayPort = gateway.port;
  const echo = await startOnFreePorts(
    async () => {
      const ops = await freePort();
      const proc = startNode('services/echo/dist/main.js', {
        AMQP_URL: vhost.url,
        METRICS_PORT: String(ops),
        HEARTBEAT_INTERVAL_MS: '500',
        LOG_LEVEL: 'warn',
      });
      return { proc, ops };
    },
    (e) => `http://127.0.0.1:${e.ops}/readyz`,
    60_000,
  );
  echoOps = echo.ops;
  const consoleProc = await startOnFreePorts(
    async () => {
      const port = await freePort();
      const proc = startNode('services/console/dist/main.js', {
        AMQP_URL: vhost.url,
        CONSOLE_PORT: String(port),
        METRICS_PORT: '0',
        CONSOLE_GATEWAY_METRICS_URL: `http://127.0.0.1:${gateway.ops}/metrics`,
        CONSOLE_BROKER_METRICS_URL: `http://127.0.0.1:15692/metrics/detailed?family=queue_coarse_metrics&vhost=${encodeURIComponent(vhost.name)}`,
      });
      return { proc, port };
    },
    (c) => `http://127.0.0.1:${c.port}/api/overview`,
    60_000,
  );
  consolePort = consoleProc.port;
  // The console has seen echo (its baseline is set) before the load starts.
  await eventually(
    async () => (await api<Overview>('/api/overview')).services.some((s) => s.name === 'echo'),
    20_000,
    'echo in the console',
  );
});

afterAll(async () => {
  await stopAll();
  await vhost?.remove();
});

it('reports the live system: rates under load, consistent with the services own counters', async () => {
  // The console's baseline for echo is its first scrape, before any traffic: 0.
  const baseline = 0;
  const before = await echoSuccesses();
  expect(before).toBe(baseline);
  const { rounds: startRound } = await api<Overview>('/api/overview');
  await load(400);
  const afterLoad = await echoSuccesses();
  expect(afterLoad - before).toBe(400);

  await eventually(
    async () => {
      const o = await api<Overview>('/api/overview');
      const echo = o.services.find((s) => s.name === 'echo');
      return !!echo && echo.rate > 0 && !!o.gateway && (o.gateway.http?.['202'] ?? 0) > 0;
    },
    20_000,
    'non-zero rates for echo and the gateway',
  );
  const o = await api<Overview>('/api/overview');
  const echo = o.services.find((s) => s.name === 'echo') as Summary;
  expect(echo.instances).toBe(1);
  expect(echo.processing.p95).toBeGreaterThan(0);
  expect(echo.queueDepth).toBeGreaterThanOrEqual(0);
  expect(echo.dlqDepth).toBe(0);
  expect(o.gateway?.http?.['200']).toBeGreaterThan(0);

  // Every message echo counted since the console's baseline, and no other, is in the history:
  // the sum of (rate x step) over the steps equals the counter's increase.
  await eventually(
    async () => (await api<Overview>('/api/overview')).rounds > startRound + 2,
    20_000,
    'a scrape after the load',
  );
  const { series } = await api<{ series: Record<string, { t: number; success: number }[]> }>(
    '/api/history?service=echo&minutes=15',
  );
  const points = series.echo ?? [];
  let counted = 0;
  for (let i = 1; i < points.length; i++) {
    const dt = ((points[i]?.t ?? 0) - (points[i - 1]?.t ?? 0)) / 1000;
    counted += (points[i]?.success ?? 0) * dt;
  }
  expect(Math.round(counted)).toBe((await echoSuccesses()) - baseline);
});

it('answers bad query parameters with problem+json', async () => {
  const res = await fetch(`http://127.0.0.1:${consolePort}/api/history?minutes=999`);
  expect(res.status).toBe(400);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  expect(await res.json()).toMatchObject({ type: 'urn:warren:error:bad-request' });
  const replay = await fetch(`http://127.0.0.1:${consolePort}/api/dlq/echo/replay`, {
    method: 'POST',
  });
  expect(replay.status).toBe(403); // no API key configured: actions are off
  const dlq = await api<{ queue: string; depth: number }>('/api/dlq/echo');
  expect(dlq).toMatchObject({ queue: 'echo.dlq', depth: 0 });
});

it('renders the page in headless Chromium: every running service with a non-zero rate, no console errors', async () => {
  await load(200);
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 900 });
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`http://127.0.0.1:${consolePort}/`, { waitUntil: 'load' });
    await page.waitForFunction(
      () => {
        const cell = document.querySelector('tr[data-service="echo"] td.rate');
        return !!cell && Number(cell.textContent) > 0;
      },
      { timeout: 20_000 },
    );
    await page.waitForFunction(() => document.querySelectorAll('.uplot').length === 3, {
      timeout: 10_000,
    });
    const rows = await page.$$eval('#services tbody tr', (trs) =>
      trs.map((tr) => (tr as HTMLElement).dataset.service),
    );
    expect(rows).toContain('echo');
    expect(await page.$eval('#gw-http', (el) => el.textContent)).toMatch(/202: \d/);
    expect(errors).toEqual([]);
    const out = path.join(ROOT, 'docs/console.png');
    await page.screenshot({ path: out });
    expect(fs.statSync(out).size).toBeGreaterThan(10_000);
  } finally {
    await browser.close();
  }
});
