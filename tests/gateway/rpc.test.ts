// Gateway request/reply against the real broker: 200 + reply bytes, x-status, 504, late replies, 503 no instance.
import {
  defineService,
  PermanentError,
  rawReply,
  runService,
  type RunningService,
} from '@warren/service-kit';
import echo from '../../services/echo/src/service';
import { testAmqpUrl, uniqueName } from '../support/broker';
import {
  RawAmqp,
  expectProblem,
  histogramCount,
  metricValue,
  post,
  sendHeartbeat,
  serviceEnv,
  startTestGateway,
  type TestGateway,
} from './helpers';
import { eventually, sleep, scaled } from '../support/time';

const echoName = uniqueName('gw-echo');
const workName = uniqueName('gw-work');
const rawName = uniqueName('gw-raw');
const deadName = uniqueName('gw-dead');

/** sleep: {"sleep":ms,...} replies with the same body after ms; fail: 409; else echo. */
const work = defineService({
  name: workName,
  handler: async (body, ctx) => {
    if (ctx.properties.type === 'fail')
      throw new PermanentError('that conflicts with something', 'CONFLICT', { status: 409 });
    if (ctx.properties.type === 'sleep') {
      const { sleep: ms } = JSON.parse(body.toString()) as { sleep: number };
      await sleep(ms);
    }
    return rawReply(body, String(ctx.properties.contentType));
  },
});

let gw: TestGateway;
let amqp: RawAmqp;
const services: RunningService[] = [];

beforeAll(async () => {
  const url = await testAmqpUrl();
  amqp = await RawAmqp.open(url);
  await amqp.ch.assertQueue(rawName, { durable: false, autoDelete: false });
  await amqp.ch.assertQueue(deadName, { durable: false });
  gw = await startTestGateway(url);
  services.push(
    await runService({ ...echo, name: echoName }, { env: serviceEnv(url), handleSignals: false }),
  );
  services.push(await runService(work, { env: serviceEnv(url), handleSignals: false }));
  await eventually(
    () => gw.registry.hasLive(echoName) && gw.registry.hasLive(workName),
    10_000,
    'services in the registry',
  );
});

afterAll(async () => {
  await Promise.all(services.map((s) => s.stop()));
  await gw?.stop();
  await amqp?.deleteServiceQueues(echoName);
  await amqp?.deleteServiceQueues(workName);
  await amqp?.deleteQueues(rawName, deadName);
  await amqp?.close();
});

describe('POST /v1/:service?wait=true', () => {
  it('round-trips bytes and content type through echo (binary, text, JSON, large)', async () => {
    const cases: [Buffer, string][] = [
      [Buffer.from(Array.from({ length: 256 }, (_, i) => i)), 'application/octet-stream'],
      [Buffer.from('héllo\r\n\u0000wörld ✓'), 'text/plain; charset=utf-8'],
      [Buffer.from('{ "z": [1, 2.50, "\\u00e9"],\n "a" : null }'), 'application/json'],
      [Buffer.from('<p>hi</p>'), 'text/html'],
      [Buffer.alloc(512 * 1024, 0xab), 'application/octet-stream'],
    ];
    for (const [bytes, ct] of cases) {
      const res = await post(gw, `/v1/${echoName}?wait=true`, bytes, { contentType: ct });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(ct);
      const got = Buffer.from(await res.arrayBuffer());
      expect(Buffer.compare(got, bytes)).toBe(0);
      expect(res.headers.get('x-request-id')).toBeTruthy();
    }
    expect(
      await histogramCount(gw, 'gateway_rpc_duration_seconds', {
        service: echoName,
        outcome: 'ok',
      }),
    ).toBe(cases.length);
  });

  it('publishes calls with reply-to, correlation id and expiration = timeout, and maps x-status', async () => {
    await sendHeartbeat(amqp, { service: rawName, instanceId: 'raw-1', intervalMs: 5000 });
    await eventually(() => gw.registry.hasLive(rawName), 5000, 'raw service in the registry');
    const pending = post(gw, `/v1/${rawName}?wait=true&timeoutMs=999999&type=lookup`, '{"q":1}', {
      headers: { 'reply-to': 'evil', 'x-correlation-id': 'forged', 'x-status': '500' },
    });
    const msg = await amqp.take(rawName);
    const p = msg.properties;
    expect(p.replyTo).toMatch(/^amq\.rabbitmq\.reply-to\./);
    expect(typeof p.correlationId).toBe('string');
    expect(p.correlationId).not.toBe('forged');
    expect(p.expiration).toBe('30000'); // capped
    expect(p.type).toBe('lookup');
    expect(p.appId).toBe('warren-gateway');
    expect(Object.keys(p.headers ?? {}).sort()).toEqual([
      'traceparent',
      'x-attempt',
      'x-call',
      'x-published-at',
      'x-request-id',
    ]);
    expect(p.headers?.['x-call']).toBe(1);
    // Reply like a plain pika RPC server would, with a status header and its user-id.
    amqp.ch.sendToQueue(String(p.replyTo), Buffer.from('created!'), {
      correlationId: p.correlationId,
      contentType: 'text/x-custom',
      headers: { 'x-status': 201 },
      userId: amqp.user,
    });
    const res = await pending;
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toBe('text/x-custom');
    expect(await res.text()).toBe('created!');
    expect(res.headers.get('x-request-id')).toBe(p.headers?.['x-request-id']);
    expect(p.messageId).not.toBe(p.headers?.['x-request-id']);
  });

  it('maps a failed call (x-status 409 + problem body) to a 409 problem with requestId', async () => {
    const res = await post(gw, `/v1/${workName}?wait=true&type=fail`, '{}');
    const problem = await expectProblem(res, 409);
    expect(problem.detail).toBe('that conflicts with something');
    expect(problem.title).toBe('Conflict');
    expect(problem.type).toBe('urn:warren:error:conflict');
    expect(
      await histogramCount(gw, 'gateway_rpc_duration_seconds', {
        service: workName,
        outcome: 'error',
      }),
    ).toBe(1);
  });

  it('answers 504 on timeout; the late reply is counted and never reaches a later caller', async () => {
    const lateBefore = await metricValue(gw, 'mq_rpc_late_replies_total');
    const t0 = Date.now();
    const res = await post(
      gw,
      `/v1/${workName}?wait=true&timeoutMs=300&type=sleep`,
      '{"sleep":700,"tag":"first"}',
    );
    const problem = await expectProblem(res, 504);
    expect(problem.type).toBe('urn:warren:error:reply-timeout');
    expect(Date.now() - t0).toBeLessThan(scaled(1500));
    // This call is pending when the first call's late reply arrives (at ~700 ms).
    const second = await post(
      gw,
      `/v1/${workName}?wait=true&timeoutMs=5000&type=sleep`,
      '{"sleep":800,"tag":"second"}',
    );
    expect(second.status).toBe(200);
    expect(await second.json()).toEqual({ sleep: 800, tag: 'second' });
    await eventually(
      async () => (await metricValue(gw, 'mq_rpc_late_replies_total')) === lateBefore + 1,
      5000,
      'late reply counted',
    );
    expect(
      await histogramCount(gw, 'gateway_rpc_duration_seconds', {
        service: workName,
        outcome: 'timeout',
      }),
    ).toBe(1);
    expect(await metricValue(gw, 'mq_rpc_pending_calls')).toBe(0);
  });

  it('answers 503 at once when the registry knows no live instance (nothing published)', async () => {
    const t0 = Date.now();
    const res = await post(gw, `/v1/${deadName}?wait=true&timeoutMs=10000`, '{}');
    const problem = await expectProblem(res, 503);
    expect(problem.type).toBe('urn:warren:error:no-live-instance');
    expect(Date.now() - t0).toBeLessThan(scaled(1000));
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await amqp.ch.checkQueue(deadName)).messageCount).toBe(0);
    // Async publish to the same queue still works: the queue exists, someone may consume later.
    expect((await post(gw, `/v1/${deadName}`, '{}')).status).toBe(202);
  });

  it('answers 400 for bad timeouts', async () => {
    await expectProblem(await post(gw, `/v1/${echoName}?wait=true&timeoutMs=abc`, '{}'), 400);
    await expectProblem(await post(gw, `/v1/${echoName}?wait=true&timeoutMs=0`, '{}'), 400);
  });
});
