// Gateway ops port and graceful shutdown: /healthz, /readyz, in-flight calls finish, new ones are refused.
import net from 'node:net';
import { defineService, rawReply, runService, type RunningService } from '@warren/service-kit';
import { testAmqpUrl, uniqueName } from '../support/broker';
import {
  RawAmqp,
  metricValue,
  post,
  serviceEnv,
  startTestGateway,
  type TestGateway,
} from './helpers';
import { eventually, sleep } from '../support/time';
import { promSamples } from '../support/prom-text';

const name = uniqueName('gw-life');
let svc: RunningService;
let gw: TestGateway;

beforeAll(async () => {
  const url = await testAmqpUrl();
  gw = await startTestGateway(url, { SHUTDOWN_TIMEOUT_MS: '5000' });
  svc = await runService(
    defineService({
      name,
      handler: async (body) => {
        await sleep(700);
        return rawReply(body, 'text/plain');
      },
    }),
    { env: serviceEnv(url), handleSignals: false },
  );
  await eventually(() => gw.registry.hasLive(name), 10_000, 'registered');
});

afterAll(async () => {
  await svc?.stop();
  await gw?.stop();
  const amqp = await RawAmqp.open(await testAmqpUrl());
  await amqp.deleteServiceQueues(name);
  await amqp.close();
});

it('serves /healthz, /readyz and /metrics on the ops port', async () => {
  const ops = `http://127.0.0.1:${gw.opsPort}`;
  expect((await fetch(`${ops}/healthz`)).status).toBe(200);
  expect((await fetch(`${ops}/readyz`)).status).toBe(200);
  const text = await (await fetch(`${ops}/metrics`)).text();
  for (const family of [
    'gateway_http_requests_total',
    'gateway_http_request_duration_seconds',
    'gateway_published_messages_total',
    'gateway_rpc_duration_seconds',
    'warren_registry_instances',
    'mq_rpc_pending_calls',
    'mq_rpc_late_replies_total',
  ])
    expect(text).toContain(`# TYPE ${family} `);
  expect(promSamples(text, 'process_cpu_seconds_total', { service: 'gateway' })).toHaveLength(1);
});

it('on stop, lets in-flight calls finish and answers new work 503 shutting-down', async () => {
  const inFlight = post(gw, `/v1/${name}?wait=true`, 'still answered', {
    contentType: 'text/plain',
  });
  await eventually(
    async () => (await metricValue(gw, 'mq_rpc_pending_calls')) === 1,
    5000,
    'the call pending at the gateway',
  );
  // A request whose headers arrived before the stop and whose body arrives after it.
  const late = net.connect(gw.port, '127.0.0.1');
  let answer = '';
  late.on('data', (d: Buffer) => (answer += d.toString()));
  await new Promise<void>((resolve) => late.once('connect', () => resolve()));
  late.write(
    `POST /v1/${name} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n`,
  );
  await eventually(
    async () => (await metricValue(gw, 'gateway_inflight_body_bytes')) === 2,
    5000,
    'the late request reading its body',
  );
  const stopped = gw.stop();
  await eventually(() => !gw.isReady(), 2000, 'not ready while draining');
  late.write('{}');
  await eventually(() => answer.includes('\r\n\r\n{'), 5000, 'the answer to the late request');
  expect(answer).toMatch(/^HTTP\/1\.1 503 /);
  expect(answer).toMatch(/\r\nretry-after: 1\r\n/i);
  expect(answer).toContain('"type":"urn:warren:error:shutting-down"');
  late.destroy();
  const res = await inFlight;
  expect(res.status).toBe(200);
  expect(await res.text()).toBe('still answered');
  await stopped;
  await expect(post(gw, `/v1/${name}`, 'late', { contentType: 'text/plain' })).rejects.toThrow();
});
