// GATEWAY_WORKERS=2 against the real broker: one port served by two worker processes, one ops port
// for the primary (metrics summed over the workers, readiness of all, Prometheus SD), a worker that
// dies replaced, SIGTERM stopping everything cleanly.
import { runService, type RunningService } from '@warren/service-kit';
import echo from '../../services/echo/src/service';
import { testAmqpUrl } from '../support/broker';
import { startGatewayChild, stopAll, type GatewayChild, type Proc } from '../support/processes';
import { eventually } from '../support/time';
import { createVhost, type TestVhost } from '../support/vhost';
import { serviceEnv } from './helpers';

jest.setTimeout(120_000);

let vhost: TestVhost;
let service: RunningService;
let gw: GatewayChild;

const readyLines = (p: Proc) =>
  p
    .lines()
    .filter((l) => l.msg === 'gateway ready')
    .map((l) => String(l.instanceId));

/** The sum of a counter's samples whose labels contain `match`, from Prometheus text. */
function counter(text: string, name: string, match: string): number {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) && l.includes(match))
    .reduce((a, l) => a + Number(l.split(' ').at(-1)), 0);
}

beforeAll(async () => {
  vhost = await createVhost(await testAmqpUrl(), 'warren-workers');
  service = await runService(echo, { env: serviceEnv(vhost.url), handleSignals: false });
  gw = await startGatewayChild(vhost.url, {
    GATEWAY_WORKERS: '2',
    GATEWAY_REGISTRY_GRACE_MS: '0',
    // Admission at the door is tested in admission.test.ts; here a worker's loop, late while it
    // warms up on a machine busy with the other suites, must not turn these calls into 503s.
    GATEWAY_ADMIT_DELAY_MS: '0',
  });
});

afterAll(async () => {
  await stopAll();
  await service?.stop();
  await vhost?.remove();
});

test('two workers serve the port; the primary sums their metrics and serves SD', async () => {
  // Both workers log their ready line; it reaches stdout with the next log batch (10 ms later at most),
  // possibly just after the primary reported all workers ready.
  await eventually(() => new Set(readyLines(gw.proc)).size === 2, 10_000, 'two ready lines');
  expect(new Set(readyLines(gw.proc)).size).toBe(2);
  const calls = await Promise.all(
    Array.from({ length: 40 }, () =>
      fetch(`http://127.0.0.1:${gw.port}/v1/echo?wait=true`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', connection: 'close' },
        body: '{"n":1}',
      }).then(async (r) => [r.status, await r.text()] as const),
    ),
  );
  // Any other answer is shown whole, with its status.
  expect(calls.filter(([s, b]) => s !== 200 || b !== '{"n":1}')).toEqual([]);
  const text = await (await fetch(`http://127.0.0.1:${gw.ops}/metrics`)).text();
  // Every request counted once, whichever worker served it.
  expect(counter(text, 'gateway_http_requests_total', 'status="200"')).toBe(40);
  // The workers report their registry's scrape targets every second.
  await eventually(
    async () => {
      const sd = (await (await fetch(`http://127.0.0.1:${gw.ops}/sd/prometheus`)).json()) as {
        labels: Record<string, string>;
      }[];
      return sd.some((g) => g.labels.service === 'echo');
    },
    10_000,
    'echo in /sd/prometheus',
  );
});

test('a worker that dies is replaced; the port keeps answering', async () => {
  const before = readyLines(gw.proc);
  const worker = gw.proc
    .lines()
    .find((l) => l.msg === 'gateway ready' && typeof l.pid === 'number');
  process.kill(Number(worker?.pid), 'SIGKILL');
  await gw.proc.waitFor(/gateway worker died; starting another/, 10_000);
  await eventually(() => readyLines(gw.proc).length === before.length + 1, 30_000, 'a new worker');
  await eventually(
    async () => (await fetch(`http://127.0.0.1:${gw.ops}/readyz`)).status === 200,
    30_000,
    'ready again',
  );
  const res = await fetch(`http://127.0.0.1:${gw.port}/v1/echo?wait=true`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
  });
  expect(res.status).toBe(200);
});

test('SIGTERM stops the workers and the primary, exit code 0', async () => {
  expect(await gw.proc.stop('SIGTERM')).toBe(0);
  expect(gw.proc.output()).toMatch(/"msg":"stopped"/);
});
