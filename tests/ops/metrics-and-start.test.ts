// A running service's ops port (metrics pass promtool, health, readiness) and `npm start`'s contract.
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { testAmqpUrl } from '../support/broker';
import { createVhost, type TestVhost } from '../support/vhost';
import { ROOT, startNode, stopAll, waitForHttp } from '../support/processes';
import { promSamples } from '../support/prom-text';

const run = promisify(execFile);
let vhost: TestVhost;

beforeAll(async () => {
  vhost = await createVhost(await testAmqpUrl(), 'warren-ops');
});

afterAll(async () => {
  await stopAll();
  await vhost.remove();
});

test('/metrics of a running service passes `promtool check metrics` and shows the design families', async () => {
  const echo = startNode('services/echo/dist/main.js', { AMQP_URL: vhost.url, METRICS_PORT: '0' });
  const ready = await echo.waitFor(/"metricsUrl":"[^"]+"/);
  const metricsUrl = /"metricsUrl":"([^"]+)"/.exec(ready)?.[1] ?? '';
  const base = metricsUrl.replace(/\/metrics$/, '');
  await waitForHttp(`${base}/readyz`);
  expect((await fetch(`${base}/healthz`)).status).toBe(200);
  const text = await (await fetch(metricsUrl)).text();
  for (const family of [
    'mq_consumer_messages_total',
    'mq_consumer_processing_seconds',
    'mq_consumer_queue_wait_seconds',
    'mq_consumer_in_flight',
    'mq_connection_reconnects_total',
    'process_cpu_user_seconds_total',
  ]) {
    expect(text).toContain(`# TYPE ${family}`);
  }
  expect(promSamples(text, 'mq_consumer_in_flight', { service: 'echo' })).toEqual([
    { name: 'mq_consumer_in_flight', labels: { service: 'echo' }, value: 0 },
  ]);
  const check = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  check.stdout.on('data', (d: Buffer) => (out += d.toString()));
  check.stderr.on('data', (d: Buffer) => (out += d.toString()));
  check.stdin.end(text);
  const code = await new Promise<number | null>((r) => check.once('exit', r));
  expect({ code, out }).toEqual({ code: 0, out: '' });
});

test('an invalid configuration fails at start with one clear line', async () => {
  const bad = startNode('services/echo/dist/main.js', {
    AMQP_URL: vhost.url,
    METRICS_PORT: 'abc',
    PREFETCH: '0',
  });
  expect(await bad.exited).toBe(1);
  const lines = bad.output().trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(
    /^echo: invalid configuration: METRICS_PORT: .*\(got "abc"\); PREFETCH: /,
  );
});

test('`npm start -- hello echo` runs both and reports them ready; with no broker it says how to start one', async () => {
  const start = startNode('scripts/start.js', { AMQP_URL: vhost.url, METRICS_PORT_BASE: '19460' }, [
    'hello',
    'echo',
  ]);
  await start.waitFor(/2\/2 processes ready/, 30_000);
  expect(start.output()).toMatch(/hello\s+\d+\s+ready\s+-\s+http:\/\/127\.0\.0\.1:19461\/metrics/);
  expect(start.output()).toMatch(/echo\s+\d+\s+ready/);
  expect(await start.stop('SIGTERM')).toBe(0);
  expect(start.output()).toMatch(/hello \| .*"msg":"stopped"/);

  const noBroker = await run(process.execPath, ['scripts/start.js', 'hello'], {
    cwd: ROOT,
    env: { ...process.env, AMQP_URL: 'amqp://guest:guest@127.0.0.1:1' },
  }).catch((e: { code: number; stderr: string }) => e);
  expect('code' in noBroker && noBroker.code).toBe(1);
  expect(noBroker.stderr.trim()).toMatch(
    /^warren: no RabbitMQ reachable at 127\.0\.0\.1:1 .*rabbitmq-server -detached/,
  );
});

test('`npm start -- --help` prints the usage and exits 0; an unknown option exits 2 with it', async () => {
  const help = await run(process.execPath, ['scripts/start.js', '--help'], { cwd: ROOT });
  expect(help.stdout).toMatch(/^Usage: npm start \[-- <service> \.\.\.\]/);
  expect(help.stdout).toMatch(/Services here: gateway, .*echo/);
  const bad = await run(process.execPath, ['scripts/start.js', '--bogus'], { cwd: ROOT }).catch(
    (e: { code: number; stderr: string }) => e,
  );
  expect('code' in bad && bad.code).toBe(2);
  expect(bad.stderr).toMatch(/^warren: Unknown option '--bogus'[\s\S]*Usage: npm start/);
});
