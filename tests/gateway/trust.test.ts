// Trust boundaries against the real broker: a misbehaving service cannot crash, spoof or flood the gateway.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { connect, type ChannelModel, type GetMessage } from 'amqplib';
import { runService, type RunningService } from '@warren/service-kit';
import echo from '../../services/echo/src/service';
import { testAmqpUrl, uniqueName } from '../support/broker';
import { RogueService } from '../support/rogue';
import {
  expectProblem,
  metricValue,
  post,
  serviceEnv,
  startTestGateway,
  type TestGateway,
} from './helpers';
import { eventually, sleep, scaled } from '../support/time';
import { promSamples } from '../support/prom-text';

const run = promisify(execFile);
const ctl = (...args: string[]) => run('rabbitmqctl', ['-q', ...args]);

const RUN = uniqueName('trust');
const VHOST = `warren-${RUN}`;
const userOf = (role: string) => `${RUN}-${role}`;
let base: URL;
const urlOf = (role: string) => {
  const u = new URL(base.toString());
  u.username = encodeURIComponent(userOf(role));
  u.password = encodeURIComponent(`${userOf(role)}-pw`);
  u.pathname = `/${encodeURIComponent(VHOST)}`;
  return u.toString();
};

const echoName = uniqueName('t-echo');
const rogueName = uniqueName('t-rogue');
const victimName = uniqueName('t-victim');
const ROLES = ['gw', 'echo', 'rogue', 'victim'];
const MAX_SERVICES = 40;
const MAX_INSTANCES = 8;

let gw: TestGateway;
let echoSvc: RunningService;
let rogue: RogueService;
let victimConn: ChannelModel;

beforeAll(async () => {
  base = new URL(await testAmqpUrl());
  await ctl('add_vhost', VHOST);
  for (const role of ROLES) {
    await ctl('add_user', userOf(role), `${userOf(role)}-pw`);
    await ctl('set_permissions', '-p', VHOST, userOf(role), '.*', '.*', '.*');
  }
  // Each service has its broker user; the gateway believes replies and beats about S only from S's.
  gw = await startTestGateway(urlOf('gw'), {
    WARREN_SERVICE_USERS: `${echoName}=${userOf('echo')},${rogueName}=${userOf('rogue')},${victimName}=${userOf('victim')}`,
    GATEWAY_MAX_BODY: '4kb',
    GATEWAY_RATE_LIMIT: '0',
    GATEWAY_REGISTRY_MAX_SERVICES: String(MAX_SERVICES),
    GATEWAY_REGISTRY_MAX_INSTANCES: String(MAX_INSTANCES),
  });
  echoSvc = await runService(
    { ...echo, name: echoName },
    { env: serviceEnv(urlOf('echo')), handleSignals: false },
  );
  rogue = await RogueService.start(urlOf('rogue'), rogueName);
  rogue.beat({ service: rogueName, instanceId: 'rogue-1' });
  await eventually(
    () => gw.registry.hasLive(echoName) && gw.registry.hasLive(rogueName),
    10_000,
    'echo and the rogue service registered',
  );
}, scaled(60_000));

afterAll(async () => {
  await rogue?.close();
  await victimConn?.close().catch(() => undefined);
  await echoSvc?.stop();
  await gw?.stop();
  await ctl('delete_vhost', VHOST).catch(() => undefined);
  for (const role of ROLES) await ctl('delete_user', userOf(role)).catch(() => undefined);
});

const call = (service: string, body: string) =>
  post(gw, `/v1/${service}?wait=true&timeoutMs=5000`, body, { contentType: 'text/plain' });

/** The gateway still answers, and echo still gets every caller its own body. */
async function expectEchoWorks(): Promise<void> {
  const body = `still-up-${randomUUID()}`;
  const res = await call(echoName, body);
  expect(res.status).toBe(200);
  expect(await res.text()).toBe(body);
}

describe('a malformed reply is a 502 for its caller, never a crash', () => {
  it.each([
    ['a content type outside Latin-1', { contentType: 'text/plain€' }, 'content-type'],
    ['a content type with CR LF', { contentType: 'text/plain\r\nset-cookie: a=b' }, 'content-type'],
    [
      'a content type with a control character',
      { contentType: 'text/\u0001plain' },
      'content-type',
    ],
    ['a content type that is not a media type', { contentType: 'plain' }, 'content-type'],
    ['x-status 99', { headers: { 'x-status': 99 } }, 'status'],
    ['x-status 700', { headers: { 'x-status': 700 } }, 'status'],
    ['x-status as words', { headers: { 'x-status': 'teapot' } }, 'status'],
    ['x-status as a float', { headers: { 'x-status': 200.5 } }, 'status'],
    ['x-status as a table', { headers: { 'x-status': { code: 200 } } }, 'status'],
  ])('%s', async (_what, properties, reason) => {
    rogue.onCall(() => ({ body: Buffer.from('bad'), properties }));
    const before = await metricValue(gw, 'gateway_rejected_replies_total', {
      service: rogueName,
      reason,
    });
    const problem = await expectProblem(await call(rogueName, 'x'), 502);
    expect(problem.type).toBe('urn:warren:error:bad-reply');
    expect(
      await metricValue(gw, 'gateway_rejected_replies_total', { service: rogueName, reason }),
    ).toBe(before + 1);
    await expectEchoWorks();
  });

  it('a reply larger than the request limit (4 KiB here)', async () => {
    rogue.onCall(() => ({
      body: Buffer.alloc(4097, 0x61),
      properties: { contentType: 'text/plain' },
    }));
    const problem = await expectProblem(await call(rogueName, 'x'), 502);
    expect(problem.detail).toContain('exceeds 4096 bytes');
    await expectEchoWorks();
  });

  it('a well-formed odd reply passes: no content type, an error status with a non-JSON body', async () => {
    rogue.onCall(() => ({ body: Buffer.from('raw') }));
    const plain = await call(rogueName, 'x');
    expect(plain.status).toBe(200);
    expect(plain.headers.get('content-type')).toBe('application/octet-stream');
    rogue.onCall(() => ({
      body: Buffer.from('not json'),
      properties: { headers: { 'x-status': '409' } },
    }));
    const problem = await expectProblem(await call(rogueName, 'x'), 409);
    expect(problem.detail).toBe('not json');
  });
});

describe('replies reach only their caller', () => {
  it('guessed correlation ids, flooded at the observed reply-to, reach nobody', async () => {
    // The rogue learns the gateway's reply-to from a call to itself (and one real id).
    rogue.onCall(() => ({ body: Buffer.from('ok'), properties: { contentType: 'text/plain' } }));
    expect((await call(rogueName, 'x')).status).toBe(200);
    const observed = rogue.calls.at(-1);
    const replyTo = String(observed?.properties.replyTo);
    const seenId = String(observed?.properties.correlationId);
    expect(seenId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    let flooding = true;
    let n = 0;
    const flood = (async () => {
      while (flooding) {
        // Variations of the observed id and random ones, as a guesser would try.
        for (let i = 0; i < 50; i++, n++) {
          const guess = i % 2 ? randomUUID() : `${seenId.slice(0, 21)}${'ABCDEFGHIJ'[i % 10]}`;
          rogue.reply(replyTo, guess, Buffer.from('spoofed'), { contentType: 'text/plain' });
        }
        await sleep(5);
      }
    })();
    const bodies = Array.from({ length: 120 }, (_, i) => `own-${i}-${randomUUID()}`);
    const answers = await Promise.all(
      bodies.map(async (b) => {
        const res = await call(echoName, b);
        return [res.status, await res.text()] as const;
      }),
    );
    flooding = false;
    await flood;
    expect(n).toBeGreaterThan(500);
    expect(answers).toEqual(bodies.map((b) => [200, b]));
  });

  it("a reply with an observed id is believed only from the called service's user", async () => {
    const victim = await connect(urlOf('victim'));
    victimConn = victim;
    const vch = await victim.createChannel();
    await vch.assertQueue(victimName, { durable: false, autoDelete: false });
    const vbeat = await RogueService.start(urlOf('victim'), uniqueName('t-victim-beats'));
    vbeat.beat({ service: victimName, instanceId: 'victim-1' });
    await eventually(() => gw.registry.hasLive(victimName), 5000, 'victim registered');
    await vbeat.close();

    const pending = call(victimName, 'question');
    // The rogue (it may read the victim's queue) peeks at the call and answers it first, signed
    // with its own user and unsigned; then hands the message back.
    const rch = await (await connect(urlOf('rogue'))).createChannel();
    let msg: GetMessage | false = false;
    await eventually(async () => (msg = await rch.get(victimName)) !== false, 5000, 'the call');
    const peeked = msg as unknown as GetMessage;
    const { replyTo, correlationId } = peeked.properties;
    rogue.reply(String(replyTo), correlationId, Buffer.from('spoofed'), {
      contentType: 'text/plain',
    });
    rch.sendToQueue(String(replyTo), Buffer.from('spoofed-unsigned'), { correlationId });
    await eventually(
      async () =>
        (await metricValue(gw, 'gateway_rejected_replies_total', {
          service: victimName,
          reason: 'sender',
        })) === 2,
      5000,
      'both spoofed replies refused',
    );
    rch.nack(peeked, false, true);
    await rch.connection.close();
    // The real service answers the call it now receives.
    await vch.consume(victimName, (m) => {
      if (!m) return;
      vch.sendToQueue(String(m.properties.replyTo), Buffer.from('genuine'), {
        correlationId: m.properties.correlationId,
        contentType: 'text/plain',
        userId: userOf('victim'),
      });
      vch.ack(m);
    });
    const res = await pending;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('genuine');
  });
});

describe('heartbeats are believed only from their service, and bounded', () => {
  it("forged beats for another service, a 'stopping' one included, change nothing", async () => {
    const [real] = gw.registry.list().find((s) => s.name === echoName)?.instances ?? [];
    expect(real).toBeDefined();
    const before = await metricValue(gw, 'gateway_registry_dropped_beats_total', {
      reason: 'sender',
    });
    rogue.beat({ service: echoName, instanceId: 'forged-1', metricsUrl: 'http://evil:1/metrics' });
    rogue.beat({ service: echoName, instanceId: String(real?.instanceId), state: 'stopping' });
    await eventually(
      async () =>
        (await metricValue(gw, 'gateway_registry_dropped_beats_total', { reason: 'sender' })) ===
        before + 2,
      5000,
      'forged beats dropped',
    );
    expect(gw.registry.list().find((s) => s.name === echoName)?.instances).toEqual([
      expect.objectContaining({ instanceId: real?.instanceId }),
    ]);
    await expectEchoWorks();
  });

  it('a flood of instances of its own service is capped', async () => {
    for (let i = 0; i < 2000; i++) rogue.beat({ service: rogueName, instanceId: `flood-${i}` });
    await eventually(
      async () =>
        (await metricValue(gw, 'gateway_registry_dropped_beats_total', {
          reason: 'instance-cap',
        })) >=
        2000 - MAX_INSTANCES,
      10_000,
      'flooded beats dropped',
    );
    const listed = gw.registry.list().find((s) => s.name === rogueName)?.instances ?? [];
    expect(listed.length).toBe(MAX_INSTANCES);
    await expectEchoWorks();
  });
});

describe('with one shared broker user (nothing can be told apart)', () => {
  let shared: TestGateway;
  beforeAll(async () => {
    // This gateway runs as the rogue's user: every beat the rogue signs is believed, as with
    // `npm start`, where every process is guest.
    shared = await startTestGateway(urlOf('rogue'), {
      WARREN_SERVICE_USERS: `${echoName}=${userOf('echo')}`,
      GATEWAY_RATE_LIMIT: '0',
      GATEWAY_REGISTRY_MAX_SERVICES: String(MAX_SERVICES),
      GATEWAY_REGISTRY_MAX_INSTANCES: String(MAX_INSTANCES),
    });
    await eventually(() => shared.registry.hasLive(echoName), 10_000, 'echo on the shared gateway');
  });
  afterAll(async () => shared?.stop());

  it("forged 'stopping' beats cannot take a working service offline: the broker is asked", async () => {
    const id = String(
      shared.registry.list().find((s) => s.name === echoName)?.instances[0]?.instanceId,
    );
    let forging = true;
    const forge = (async () => {
      while (forging) {
        rogue.beat({ service: echoName, instanceId: id, state: 'stopping' });
        await sleep(20);
      }
    })();
    await eventually(
      () => !shared.registry.hasLive(echoName),
      5000,
      'echo dropped by forged beats',
    );
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) {
      const res = await post(shared, `/v1/${echoName}?wait=true`, `n${i}`, {
        contentType: 'text/plain',
      });
      statuses.push(res.status);
      await res.arrayBuffer();
    }
    forging = false;
    await forge;
    expect(statuses).toEqual(Array.from({ length: 40 }, () => 200));
  });

  it('a flood of services with random names is capped; listings and metrics stay small', async () => {
    const N = 3000;
    for (let i = 0; i < N; i++)
      rogue.beat({ service: `flood-${randomUUID().slice(0, 8)}`, instanceId: `i-${i}` });
    await eventually(
      async () =>
        (await metricValue(shared, 'gateway_registry_dropped_beats_total', {
          reason: 'service-cap',
        })) >=
        N - MAX_SERVICES,
      15_000,
      'flooded services dropped',
    );
    const listing = await (await fetch(shared.url('/v1/services'))).text();
    const services = (JSON.parse(listing) as { services: unknown[] }).services;
    expect(services.length).toBeLessThanOrEqual(MAX_SERVICES);
    expect(listing.length).toBeLessThan(64 * 1024);
    const metrics = await shared.metrics.metrics();
    const series = promSamples(metrics, 'warren_registry_instances');
    expect(series.length).toBeLessThanOrEqual(MAX_SERVICES);
    // The scrape-target list is not on the public port at all.
    expect((await fetch(shared.url('/sd/prometheus'))).status).toBe(404);
    const ok = await post(shared, `/v1/${echoName}?wait=true`, 'after', {
      contentType: 'text/plain',
    });
    expect([ok.status, await ok.text()]).toEqual([200, 'after']);
  });
});
