// Broker trouble on a private RabbitMQ node: 503 + Retry-After fast while down, /readyz 503, recovery without restart.
import { defineService, rawReply, runService, type RunningService } from '@warren/service-kit';
import { startPrivateBroker, type PrivateBroker } from '../support/private-broker';
import { uniqueName } from '../support/broker';
import {
  expectProblem,
  metricValue,
  post,
  serviceEnv,
  startTestGateway,
  type TestGateway,
} from './helpers';
import { eventually, sleep, scaled } from '../support/time';

jest.setTimeout(scaled(90_000));

const name = uniqueName('gw-down');
let broker: PrivateBroker;
let gw: TestGateway;
let svc: RunningService;

const slowEcho = defineService({
  name,
  handler: async (body, ctx) => {
    if (ctx.properties.type === 'sleep') await sleep(10_000);
    return rawReply(body, String(ctx.properties.contentType));
  },
});

const ready = async (): Promise<number> =>
  (await fetch(`http://127.0.0.1:${gw.opsPort}/readyz`)).status;

beforeAll(async () => {
  broker = await startPrivateBroker('warren-gw');
  gw = await startTestGateway(broker.url);
  svc = await runService(slowEcho, {
    env: serviceEnv(broker.url, { AMQP_CONNECT_RETRIES: '3', DRAIN_TIMEOUT_MS: '500' }),
    handleSignals: false,
  });
  await eventually(() => gw.registry.hasLive(name), 10_000, 'service registered');
});

afterAll(async () => {
  await svc?.stop().catch(() => undefined);
  await gw?.stop().catch(() => undefined);
  await broker?.stop();
});

it('answers 503 with Retry-After in bounded time while the broker is down, then recovers alone', async () => {
  expect(await ready()).toBe(200);
  expect((await post(gw, `/v1/${name}`, '{"n":1}')).status).toBe(202);
  expect((await post(gw, `/v1/${name}?wait=true`, '{"n":2}')).status).toBe(200);

  // A call in flight when the connection drops is answered 503, not left hanging.
  const inFlight = post(gw, `/v1/${name}?wait=true&timeoutMs=30000&type=sleep`, '{"n":3}');
  await eventually(
    async () => (await metricValue(gw, 'mq_rpc_pending_calls')) === 1,
    5000,
    'the call pending at the gateway',
  );
  await broker.stopApp();
  const t0 = Date.now();
  const flight = await inFlight;
  await expectProblem(flight, 503);
  expect(Date.now() - t0).toBeLessThan(scaled(5000));

  await eventually(async () => (await ready()) === 503, 10_000, '/readyz 503');
  for (const path of [`/v1/${name}`, `/v1/${name}?wait=true&timeoutMs=20000`]) {
    const start = Date.now();
    const res = await post(gw, path, '{"n":4}');
    const problem = await expectProblem(res, 503);
    expect(problem.type).toBe('urn:warren:error:broker-unavailable');
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Date.now() - start).toBeLessThan(scaled(1000));
  }
  expect(
    await metricValue(gw, 'gateway_published_messages_total', { service: name, outcome: 'failed' }),
  ).toBeGreaterThan(0);
  // The HTTP side keeps answering everything else.
  expect((await fetch(gw.url('/v1/services'))).status).toBe(200);

  await broker.startApp();
  await eventually(async () => (await ready()) === 200, 30_000, '/readyz 200 after restart');
  await eventually(
    async () => (await post(gw, `/v1/${name}`, '{"n":5}')).status === 202,
    10_000,
    'async publish after recovery',
  );
  await eventually(() => gw.registry.hasLive(name), 15_000, 'service back in the registry');
  const res = await post(gw, `/v1/${name}?wait=true`, '{"n":6}');
  expect(res.status).toBe(200);
  expect(await res.text()).toBe('{"n":6}');
  expect(await metricValue(gw, 'mq_connection_reconnects_total')).toBeGreaterThanOrEqual(1);
});
