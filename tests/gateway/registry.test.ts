// Gateway service registry from heartbeats: /v1/services, /sd/prometheus, expiry after missed beats, 'stopping'.
import { randomUUID } from 'node:crypto';
import { defineService, runService } from '@warren/service-kit';
import { testAmqpUrl, uniqueName } from '../support/broker';
import {
  RawAmqp,
  expectProblem,
  post,
  metricValue,
  sendHeartbeat,
  serviceEnv,
  startTestGateway,
  type TestGateway,
} from './helpers';
import { eventually, scaled } from '../support/time';

interface ServicesBody {
  services: {
    name: string;
    instances: { instanceId: string; metricsUrl: string; version: string; lastSeen: string }[];
  }[];
}
interface SdGroup {
  targets: string[];
  labels: Record<string, string>;
}

let gw: TestGateway;
let gw2: TestGateway;
let amqp: RawAmqp;
const cleanup: string[] = [];

beforeAll(async () => {
  const url = await testAmqpUrl();
  amqp = await RawAmqp.open(url);
  gw = await startTestGateway(url);
  gw2 = await startTestGateway(url);
});

afterAll(async () => {
  await gw?.stop();
  await gw2?.stop();
  for (const name of cleanup) await amqp.deleteServiceQueues(name);
  await amqp?.close();
});

async function services(g: TestGateway): Promise<ServicesBody['services']> {
  const res = await fetch(g.url('/v1/services'));
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/json');
  return ((await res.json()) as ServicesBody).services;
}

/** Prometheus HTTP SD, from the ops port (the open public port does not serve it). */
async function sd(g: TestGateway): Promise<SdGroup[]> {
  expect((await fetch(g.url('/sd/prometheus'))).status).toBe(404);
  const res = await fetch(`http://127.0.0.1:${g.opsPort}/sd/prometheus`);
  expect(res.status).toBe(200);
  return (await res.json()) as SdGroup[];
}

describe('service registry', () => {
  it('lists a running service in /v1/services and /sd/prometheus, on every gateway; drops it at once on stop', async () => {
    const name = uniqueName('gw-reg');
    cleanup.push(name);
    const svc = await runService(defineService({ name, version: '4.5.6', handler: () => 'ok' }), {
      env: serviceEnv(await testAmqpUrl()),
      handleSignals: false,
    });
    await eventually(
      () => gw.registry.hasLive(name) && gw2.registry.hasLive(name),
      10_000,
      'registered',
    );
    for (const g of [gw, gw2]) {
      const entry = (await services(g)).find((s) => s.name === name);
      expect(entry?.instances).toHaveLength(1);
      expect(entry?.instances[0]).toMatchObject({
        instanceId: svc.instanceId,
        version: '4.5.6',
        metricsUrl: `http://127.0.0.1:${svc.opsPort}/metrics`,
      });
      expect(Date.parse(entry?.instances[0]?.lastSeen ?? '')).toBeGreaterThan(Date.now() - 5000);
      const group = (await sd(g)).find((t) => t.labels.service === name);
      expect(group).toEqual({
        targets: [`127.0.0.1:${svc.opsPort}`],
        labels: { service: name, instance_id: svc.instanceId, __metrics_path__: '/metrics' },
      });
    }
    expect(await metricValue(gw, 'warren_registry_instances', { service: name })).toBe(1);

    // A graceful stop sends state 'stopping': gone well before 3 missed beats (600 ms).
    const t0 = Date.now();
    await svc.stop();
    await eventually(() => !gw.registry.hasLive(name), 2000, 'dropped');
    expect(Date.now() - t0).toBeLessThan(scaled(2000));
    expect((await services(gw)).find((s) => s.name === name)).toBeUndefined();
    expect((await sd(gw)).find((t) => t.labels.service === name)).toBeUndefined();
  });

  it('expires an instance after 3 missed intervals', async () => {
    const name = uniqueName('gw-exp');
    const a = randomUUID();
    const b = randomUUID();
    await sendHeartbeat(amqp, {
      service: name,
      instanceId: a,
      intervalMs: 300,
      metricsUrl: 'http://10.0.0.1:9100/metrics',
    });
    await sendHeartbeat(amqp, {
      service: name,
      instanceId: b,
      intervalMs: 300,
      metricsUrl: 'https://svc.example:8443/custom/path',
    });
    await eventually(
      async () => (await services(gw)).find((s) => s.name === name)?.instances.length === 2,
      5000,
      'two instances',
    );
    const groups = (await sd(gw)).filter((t) => t.labels.service === name);
    expect(groups).toHaveLength(2);
    expect(groups).toContainEqual({
      targets: ['svc.example:8443'],
      labels: {
        service: name,
        instance_id: b,
        __metrics_path__: '/custom/path',
        __scheme__: 'https',
      },
    });
    expect(await metricValue(gw, 'warren_registry_instances', { service: name })).toBe(2);

    // Keep `a` beating; `b` stops without saying so.
    const seen = Date.now();
    const beat = setInterval(
      () => void sendHeartbeat(amqp, { service: name, instanceId: a, intervalMs: 300 }),
      150,
    );
    try {
      await eventually(
        async () => (await services(gw)).find((s) => s.name === name)?.instances.length === 1,
        5000,
        'b expired',
      );
      const elapsed = Date.now() - seen;
      expect(elapsed).toBeGreaterThanOrEqual(700); // 3 x 300 ms after its last beat, minus delivery slack
      expect((await services(gw)).find((s) => s.name === name)?.instances[0]?.instanceId).toBe(a);
      await eventually(
        async () => (await metricValue(gw, 'warren_registry_instances', { service: name })) === 1,
        3000,
        'gauge 1',
      );
    } finally {
      clearInterval(beat);
    }
    await eventually(() => !gw.registry.hasLive(name), 3000, 'a expired');
  });

  it("drops an instance at once on state 'stopping' and ignores malformed beats", async () => {
    const name = uniqueName('gw-stop');
    const id = randomUUID();
    await sendHeartbeat(amqp, { service: name, instanceId: id, intervalMs: 60_000 });
    await eventually(() => gw.registry.hasLive(name), 5000, 'registered');
    await sendHeartbeat(amqp, {
      service: name,
      instanceId: id,
      intervalMs: 60_000,
      state: 'stopping',
    });
    await eventually(() => !gw.registry.hasLive(name), 2000, 'dropped');

    amqp.ch.publish('warren.heartbeat', '', Buffer.from('not json'));
    amqp.ch.publish(
      'warren.heartbeat',
      '',
      Buffer.from(
        JSON.stringify({
          service: 'BAD NAME',
          instanceId: 'x',
          metricsUrl: 'x',
          intervalMs: 1000,
          state: 'up',
        }),
      ),
    );
    await sendHeartbeat(amqp, { service: name, instanceId: id, intervalMs: 60_000 });
    await eventually(() => gw.registry.hasLive(name), 5000, 'a valid beat after malformed ones');
    expect((await services(gw)).some((s) => s.name === 'BAD NAME')).toBe(false);
    await sendHeartbeat(amqp, {
      service: name,
      instanceId: id,
      intervalMs: 60_000,
      state: 'stopping',
    });
  });

  it('consumes heartbeats from an exclusive auto-delete queue per gateway', async () => {
    const q = `warren.gateway.registry.${gw.instanceId}`;
    expect(await amqp.queueState(q)).toBe('exclusive');
    const url = await testAmqpUrl();
    const other = await startTestGateway(url);
    const q2 = `warren.gateway.registry.${other.instanceId}`;
    expect(await amqp.queueState(q2)).toBe('exclusive');
    await other.stop();
    await eventually(
      async () => !(await amqp.queueExists(q2)),
      5000,
      'queue deleted with its gateway',
    );
  });
});

it('after start, tries calls to services it has not heard from for the default grace (6 s), then answers 503', async () => {
  const silent = uniqueName('gw-grace');
  const amqp = await RawAmqp.open(await testAmqpUrl());
  await amqp.ch.assertQueue(silent, { durable: false, autoDelete: false });
  // GATEWAY_REGISTRY_GRACE_MS unset (empty = unset): the default applies.
  const started = Date.now();
  const g = await startTestGateway(await testAmqpUrl(), { GATEWAY_REGISTRY_GRACE_MS: '' });
  try {
    const call = () => post(g, `/v1/${silent}?wait=true&timeoutMs=100`, '{}');
    // In the grace period the call is published and times out (nobody consumes the queue).
    const first = await call();
    // Still inside the gateway's 6 s start-up grace (its setting, not a test limit: not scaled).
    expect(Date.now() - started).toBeLessThan(6000);
    expect((await expectProblem(first, 504)).type).toBe('urn:warren:error:reply-timeout');
    // Afterwards the registry and the broker agree there is no consumer: 503 at once.
    let last: Response | undefined;
    await eventually(async () => (last = await call()).status === 503, 15_000, 'grace over');
    expect(Date.now() - started).toBeGreaterThanOrEqual(6000);
    expect((await expectProblem(last as Response, 503)).type).toBe(
      'urn:warren:error:no-live-instance',
    );
  } finally {
    await g.stop();
    await amqp.deleteQueues(silent);
    await amqp.close();
  }
});
