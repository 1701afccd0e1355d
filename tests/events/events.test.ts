// Events against the real broker: fan-out to two services, competing instances, a failing subscriber
// retried and dead-lettered apart from the others, 404/400 at the gateway, a plain pika publisher,
// ctx.events.publish from a handler, per-pattern schemas, metrics.
import { spawnSync } from 'node:child_process';
import { z } from 'zod';
import { EVENTS_EXCHANGE } from '@warren/protocol';
import {
  defineService,
  runService,
  type HandlerContext,
  type RunningService,
} from '@warren/service-kit';
import {
  RawAmqp,
  expectProblem,
  metricValue,
  post,
  serviceEnv,
  startTestGateway,
  type TestGateway,
} from '../gateway/helpers';
import { testAmqpUrl } from '../support/broker';
import { eventually, sleep } from '../support/time';
import { createVhost, type TestVhost } from '../support/vhost';
import { validateAsyncApi, validateOpenApi } from '../support/api-docs';

jest.setTimeout(60_000);
/** Debian's interpreter, where python3-pika is importable (npm test's set-up installs it). */
const PY = '/usr/bin/python3';

interface Seen {
  service: string;
  instance: number;
  event: string | undefined;
  body: unknown;
  requestId: string;
  attempt: number;
}

let vhost: TestVhost;
let gw: TestGateway;
let amqp: RawAmqp;
const running: RunningService[] = [];
const seen: Seen[] = [];

const record =
  (service: string, instance = 0) =>
  (body: unknown, ctx: HandlerContext): void => {
    seen.push({
      service,
      instance,
      event: ctx.event,
      body,
      requestId: ctx.requestId,
      attempt: ctx.attempt,
    });
  };

/** Subscribes to every order event; two instances compete. */
const billing = (instance: number) =>
  defineService({
    name: 'billing',
    events: ['order.*'],
    schema: z.object({ id: z.number() }),
    handler: record('billing', instance),
  });

/** Subscribes to order.created only, with its own schema for it; direct messages use the service schema. */
const shipping = defineService({
  name: 'shipping',
  events: { 'order.created': z.object({ id: z.number(), address: z.string() }) },
  schema: z.object({ manual: z.boolean() }),
  handler: record('shipping'),
});

/** Always fails: retried, then dead-lettered, without affecting the other subscribers. */
const flaky = defineService({
  name: 'flaky',
  events: ['order.created'],
  maxAttempts: 2,
  retryDelaysMs: [100],
  handler: () => {
    throw new Error('flaky is down');
  },
});

/** A direct call that publishes an event from its handler. */
const orders = defineService({
  name: 'orders',
  schema: z.object({ id: z.number() }),
  handler: async (input, ctx) => {
    const r = await ctx.events.publish('order.created', { ...input, address: 'Main St 1' });
    const nobody = await ctx.events.publish('nobody.listens', { id: input.id });
    return { messageId: r.messageId, delivered: r.delivered, nobody: nobody.delivered };
  },
});

/** A service's mq_events_handled_total for a pattern and outcome. */
async function handled(service: RunningService, pattern: string, outcome: string): Promise<number> {
  const metric = service.registry.getSingleMetric('mq_events_handled_total');
  const values = (await metric?.get())?.values ?? [];
  return (
    values.find((v) => v.labels.pattern === pattern && v.labels.outcome === outcome)?.value ?? 0
  );
}

const byService = (service: string, id: number) =>
  seen.filter((s) => s.service === service && (s.body as { id?: number }).id === id);

beforeAll(async () => {
  vhost = await createVhost(await testAmqpUrl(), 'warren-events');
  amqp = await RawAmqp.open(vhost.url);
  gw = await startTestGateway(vhost.url);
  const env = serviceEnv(vhost.url);
  for (const def of [billing(1), billing(2), shipping, flaky, orders])
    running.push(await runService(def, { env, handleSignals: false }));
});

afterAll(async () => {
  await Promise.all(running.map((s) => s.stop()));
  await gw?.stop();
  await amqp?.close();
  await vhost?.remove();
});

test('an event reaches every subscribing service once, with ctx.event set', async () => {
  const res = await post(gw, '/v1/events/order.created', JSON.stringify({ id: 1, address: 'x' }), {
    headers: { 'x-request-id': 'evt-fanout-1' },
  });
  expect(res.status).toBe(202);
  const body = (await res.json()) as { requestId: string; messageId: string };
  expect(body.requestId).toBe('evt-fanout-1');
  expect(body.messageId).toMatch(/^[0-9a-f-]{36}$/);
  await eventually(
    () => byService('billing', 1).length === 1 && byService('shipping', 1).length === 1,
  );
  await sleep(300);
  // Once per service: the two billing instances compete, they do not both get it.
  expect(byService('billing', 1)).toHaveLength(1);
  expect(byService('shipping', 1)).toHaveLength(1);
  for (const s of [...byService('billing', 1), ...byService('shipping', 1)]) {
    expect(s.event).toBe('order.created');
    expect(s.requestId).toBe('evt-fanout-1');
  }
});

test('a pattern matches as the topic exchange does: order.* gets order.paid, order.created-only does not', async () => {
  const res = await post(gw, '/v1/events/order.paid', JSON.stringify({ id: 2 }));
  expect(res.status).toBe(202);
  await eventually(() => byService('billing', 2).length === 1);
  await sleep(300);
  expect(byService('shipping', 2)).toHaveLength(0);
  expect(byService('billing', 2)[0]?.event).toBe('order.paid');
});

test('instances of one service compete for events: each event handled once, by both instances overall', async () => {
  const ids = Array.from({ length: 40 }, (_, i) => 100 + i);
  for (const id of ids) {
    const res = await post(gw, '/v1/events/order.paid', JSON.stringify({ id }));
    expect(res.status).toBe(202);
  }
  await eventually(() => ids.every((id) => byService('billing', id).length >= 1), 20_000);
  await sleep(300);
  for (const id of ids) expect(byService('billing', id)).toHaveLength(1);
  const instances = new Set(ids.map((id) => byService('billing', id)[0]?.instance));
  expect(instances).toEqual(new Set([1, 2]));
});

test('a failing subscriber is retried and dead-lettered (topic kept) while the others handle the event once', async () => {
  const res = await post(gw, '/v1/events/order.created', JSON.stringify({ id: 3, address: 'y' }));
  expect(res.status).toBe(202);
  // flaky also dead-letters the earlier tests' order.created events: the one with id 3 is wanted.
  let dead = await amqp.take('flaky.dlq', 15_000);
  while ((JSON.parse(dead.content.toString()) as { id: number }).id !== 3)
    dead = await amqp.take('flaky.dlq', 15_000);
  expect(JSON.parse(dead.content.toString())).toEqual({ id: 3, address: 'y' });
  const headers = dead.properties.headers ?? {};
  expect(headers['x-event']).toBe('order.created');
  expect(headers['x-attempt']).toBe(2);
  expect(headers['x-error-message']).toBe('flaky is down');
  expect(byService('billing', 3)).toHaveLength(1);
  expect(byService('shipping', 3)).toHaveLength(1);
  // Counted by the pattern that matched, per outcome (flaky saw earlier order.created events too).
  const flakyService = running[3] as RunningService;
  expect(await handled(flakyService, 'order.created', 'retry')).toBeGreaterThanOrEqual(1);
  expect(await handled(flakyService, 'order.created', 'dead_letter')).toBe(
    await handled(flakyService, 'order.created', 'retry'),
  );
});

test('an event that fails its pattern schema is rejected to the DLQ; direct messages keep the service schema', async () => {
  // shipping's order.created schema needs an address.
  const res = await post(gw, '/v1/events/order.created', JSON.stringify({ id: 4 }));
  expect(res.status).toBe(202);
  const dead = await amqp.take('shipping.dlq', 10_000);
  expect(dead.properties.headers?.['x-error-code']).toBe('VALIDATION_FAILED');
  expect(dead.properties.headers?.['x-event']).toBe('order.created');
  const direct = await post(gw, '/v1/shipping?wait=true', JSON.stringify({ manual: true }));
  expect(direct.status).toBe(200);
  expect(seen.some((s) => s.service === 'shipping' && s.event === undefined)).toBe(true);
});

test('no subscriber: 404 problem, counted as unroutable', async () => {
  const res = await post(gw, '/v1/events/nobody.cares', '{}');
  const problem = await expectProblem(res, 404);
  expect(problem.type).toBe('urn:warren:error:no-subscriber');
  expect(
    await metricValue(gw, 'gateway_events_published_total', { outcome: 'unroutable' }),
  ).toBeGreaterThanOrEqual(1);
});

test.each([
  ['Order.Created'],
  ['order..created'],
  ['order.*'],
  ['order.%23'],
  ['a%20b'],
  [`${'x'.repeat(201)}`],
])('invalid topic %p: 400 problem, nothing published', async (topic) => {
  const res = await post(gw, `/v1/events/${topic}`, '{}');
  const problem = await expectProblem(res, 400);
  expect(problem.type).toBe('urn:warren:error:invalid-topic');
});

test('an event body gets the same checks as a message: malformed JSON is 400, other methods 405', async () => {
  await expectProblem(await post(gw, '/v1/events/order.created', '{"id":'), 400);
  const get = await fetch(gw.url('/v1/events/order.created'));
  await expectProblem(get, 405);
  expect(get.headers.get('allow')).toBe('POST');
});

test('a handler publishes events with ctx.events.publish: confirmed, its requestId carried; no subscriber = delivered false', async () => {
  const res = await post(gw, '/v1/orders?wait=true', JSON.stringify({ id: 5 }), {
    headers: { 'x-request-id': 'evt-from-handler' },
  });
  expect(res.status).toBe(200);
  const reply = (await res.json()) as { delivered: boolean; nobody: boolean };
  expect(reply).toMatchObject({ delivered: true, nobody: false });
  await eventually(
    () => byService('shipping', 5).length === 1 && byService('billing', 5).length === 1,
  );
  expect(byService('shipping', 5)[0]?.requestId).toBe('evt-from-handler');
  const ordersService = running[4] as RunningService;
  const text = await ordersService.registry.metrics();
  expect(text).toMatch(
    /mq_events_published_total\{topic="order.created",outcome="confirmed"[^}]*\} 1/,
  );
  expect(text).toMatch(
    // Unrouted topics are not label values (clients could grow the series): counted as unknown.
    /mq_events_published_total\{topic="unknown",outcome="unroutable"[^}]*\} 1/,
  );
});

test('a plain pika client publishing to warren.events is received, the routing key as ctx.event', async () => {
  const script = `
import pika, sys
conn = pika.BlockingConnection(pika.URLParameters(sys.argv[1]))
ch = conn.channel()
ch.confirm_delivery()
ch.basic_publish(exchange='${EVENTS_EXCHANGE}', routing_key='order.shipped', body=b'{"id": 6}',
                 properties=pika.BasicProperties(content_type='application/json'), mandatory=True)
conn.close()
`;
  const r = spawnSync(PY, ['-c', script, vhost.url], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  await eventually(() => byService('billing', 6).length === 1);
  expect(byService('billing', 6)[0]?.event).toBe('order.shipped');
});

test('the API documents list the event route, topics and subscribers', async () => {
  await eventually(
    () => gw.registry.described().filter((s) => (s.events ?? []).length > 0).length === 3,
    10_000,
    'the subscribers in the registry',
  );
  const asyncapi = (await (await fetch(gw.url('/asyncapi.json'))).json()) as {
    channels: Record<string, { address: string; description: string }>;
    operations: Record<string, { action: string; channel: { $ref: string } }>;
  };
  expect(validateAsyncApi(asyncapi)).toBe(true);
  const byAddress = Object.fromEntries(
    Object.entries(asyncapi.channels).map(([id, ch]) => [ch.address, id]),
  );
  expect(byAddress['order.*']).toBeDefined();
  expect(byAddress['order.created']).toBeDefined();
  const receivers = (address: string) =>
    Object.entries(asyncapi.operations)
      .filter(
        ([, op]) =>
          op.action === 'receive' && op.channel.$ref === `#/channels/${byAddress[address]}`,
      )
      .map(([id]) => id.split('_')[1])
      .sort();
  expect(receivers('order.*')).toEqual(['billing']);
  expect(receivers('order.created')).toEqual(['flaky', 'shipping']);
  // Each subscriber's message carries the payload its events are checked against: shipping's
  // order.created has a schema of its own, billing's order.* uses the service's.
  const channels = asyncapi.channels as unknown as Record<
    string,
    { messages: Record<string, { payload: { required?: string[] } }> }
  >;
  const created = channels[byAddress['order.created'] as string]?.messages;
  expect(created?.event_shipping?.payload.required).toEqual(['id', 'address']);
  expect(
    channels[byAddress['order.*'] as string]?.messages.event_billing?.payload.required,
  ).toEqual(['id']);
  const openapi = (await (await fetch(gw.url('/openapi.json'))).json()) as {
    paths: Record<string, { post?: { responses: Record<string, unknown> } }>;
  };
  expect(await validateOpenApi(openapi)).toBe(true);
  expect(Object.keys(openapi.paths['/v1/events/{topic}']?.post?.responses ?? {})).toEqual(
    expect.arrayContaining(['202', '400', '404']),
  );
});
