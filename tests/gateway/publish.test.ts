// Gateway async publish against the real broker: 202 after confirm, wire format, input checks, 404/413/415/429.
import { testAmqpUrl, uniqueName } from '../support/broker';
import {
  RawAmqp,
  expectProblem,
  metricValue,
  post,
  startTestGateway,
  type TestGateway,
} from './helpers';
import { parsePromText } from '../support/prom-text';

let gw: TestGateway;
let amqp: RawAmqp;
const queue = uniqueName('gw-pub');
const RESERVED_QUEUES = [`${queue}.dlq`, `${queue}.retry.1000`];
const full = uniqueName('gw-full');

beforeAll(async () => {
  const url = await testAmqpUrl();
  amqp = await RawAmqp.open(url);
  await amqp.ch.assertQueue(queue, { durable: true });
  // Queues with reserved names exist, so a publish to one would land there (the test below
  // checks they stay empty; a queue nobody created would be empty whatever the gateway did).
  for (const q of RESERVED_QUEUES) await amqp.ch.assertQueue(q, { durable: false });
  await amqp.ch.assertQueue(full, {
    durable: true,
    arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' },
  });
  gw = await startTestGateway(url, { GATEWAY_MAX_BODY: '1kb' });
});

afterAll(async () => {
  await gw?.stop();
  await amqp?.deleteQueues(queue, full, ...RESERVED_QUEUES);
  await amqp?.close();
});

describe('POST /v1/:service (async)', () => {
  it('answers 202 {requestId} once confirmed, with the wire-format properties', async () => {
    const before = Date.now();
    const res = await post(gw, `/v1/${queue}?type=greet`, '{"hello":"world"}');
    expect(res.status).toBe(202);
    const body = (await res.json()) as { requestId: string };
    expect(body.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers.get('x-request-id')).toBe(body.requestId);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');

    const msg = await amqp.take(queue);
    expect(msg.content.toString()).toBe('{"hello":"world"}');
    const p = msg.properties;
    expect(msg.fields.exchange).toBe('');
    expect(msg.fields.routingKey).toBe(queue);
    // messageId is unique per message; the request id travels in x-request-id.
    expect(p.messageId).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(p.messageId).not.toBe(body.requestId);
    expect(p.headers?.['x-request-id']).toBe(body.requestId);
    expect(p.contentType).toBe('application/json');
    expect(p.appId).toBe('warren-gateway');
    expect(p.type).toBe('greet');
    expect(p.deliveryMode).toBe(2);
    expect(p.replyTo).toBeUndefined();
    expect(p.correlationId).toBeUndefined();
    expect(p.expiration).toBeUndefined();
    expect(p.timestamp).toBeGreaterThanOrEqual(Math.floor(before / 1000));
    expect(p.timestamp).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
    const h = p.headers ?? {};
    expect(Object.keys(h).sort()).toEqual(
      ['traceparent', 'x-attempt', 'x-published-at', 'x-request-id'].sort(),
    );
    expect(h['x-attempt']).toBe(1);
    expect(h['x-request-id']).toBe(body.requestId);
    expect(h['x-published-at']).toBeGreaterThanOrEqual(before);
    expect(h['x-published-at']).toBeLessThanOrEqual(Date.now());
    expect(h.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(
      await metricValue(gw, 'gateway_published_messages_total', {
        service: queue,
        outcome: 'confirmed',
      }),
    ).toBe(1);
  });

  it('delivers binary and text bodies byte for byte with their content type', async () => {
    const bytes = Buffer.from([0, 1, 2, 253, 254, 255, 10, 13, 0]);
    expect(
      (await post(gw, `/v1/${queue}`, bytes, { contentType: 'application/octet-stream' })).status,
    ).toBe(202);
    let msg = await amqp.take(queue);
    expect(Buffer.compare(msg.content, bytes)).toBe(0);
    expect(msg.properties.contentType).toBe('application/octet-stream');

    const text = 'héllo wörld ✓\n';
    const ct = 'text/plain; charset=utf-8';
    expect((await post(gw, `/v1/${queue}`, text, { contentType: ct })).status).toBe(202);
    msg = await amqp.take(queue);
    expect(msg.content.toString('utf8')).toBe(text);
    expect(msg.properties.contentType).toBe(ct);

    // JSON is validated but forwarded as sent: whitespace, key order and escapes kept.
    const json = '{ "b" : 1,\n  "a":"\\u00e9" }';
    expect(
      (await post(gw, `/v1/${queue}`, json, { contentType: 'application/vnd.x+json' })).status,
    ).toBe(202);
    msg = await amqp.take(queue);
    expect(msg.content.toString('utf8')).toBe(json);
    expect(msg.properties.contentType).toBe('application/vnd.x+json');

    expect((await post(gw, `/v1/${queue}`, '', { contentType: 'text/plain' })).status).toBe(202);
    msg = await amqp.take(queue);
    expect(msg.content.length).toBe(0);
  });

  it('honours a well-formed x-request-id and traceparent, replaces malformed ones', async () => {
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    let res = await post(gw, `/v1/${queue}`, '{}', {
      headers: { 'x-request-id': 'client-id-12345', traceparent: tp, 'x-warren-action': 'do.it' },
    });
    expect(res.status).toBe(202);
    expect(res.headers.get('x-request-id')).toBe('client-id-12345');
    let msg = await amqp.take(queue);
    expect(msg.properties.headers?.['x-request-id']).toBe('client-id-12345');
    const firstMessageId = msg.properties.messageId;
    expect(firstMessageId).not.toBe('client-id-12345');
    expect(msg.properties.headers?.traceparent).toBe(tp);
    expect(msg.properties.type).toBe('do.it');
    // The same request id again (a client retry): a new message, so a new messageId.
    res = await post(gw, `/v1/${queue}`, '{}', { headers: { 'x-request-id': 'client-id-12345' } });
    expect(res.status).toBe(202);
    msg = await amqp.take(queue);
    expect(msg.properties.headers?.['x-request-id']).toBe('client-id-12345');
    expect(typeof msg.properties.messageId).toBe('string');
    expect(msg.properties.messageId).not.toBe(firstMessageId);

    res = await post(gw, `/v1/${queue}`, '{}', {
      headers: { 'x-request-id': 'bad id with spaces', traceparent: '00-zz-bad' },
    });
    expect(res.status).toBe(202);
    const id = res.headers.get('x-request-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    msg = await amqp.take(queue);
    expect(msg.properties.headers?.['x-request-id']).toBe(id);
    expect(msg.properties.headers?.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(msg.properties.headers?.traceparent).not.toContain('zz');
  });

  it('does not let a client set AMQP properties or headers', async () => {
    const res = await post(gw, `/v1/${queue}?replyTo=evil&reply_to=evil&headers=x`, '{}', {
      headers: {
        'reply-to': 'amq.rabbitmq.reply-to',
        'x-reply-to': 'evil',
        'correlation-id': 'c1',
        'x-correlation-id': 'c1',
        expiration: '1',
        'x-death': 'forged',
        'x-attempt': '9',
        'x-status': '200',
        'x-published-at': '1',
        'x-original-queue': 'secret',
        priority: '9',
        'user-id': 'admin',
      },
    });
    expect(res.status).toBe(202);
    const msg = await amqp.take(queue);
    const p = msg.properties;
    expect(p.replyTo).toBeUndefined();
    expect(p.correlationId).toBeUndefined();
    expect(p.expiration).toBeUndefined();
    expect(p.priority).toBeUndefined();
    expect(p.userId).toBeUndefined();
    expect(Object.keys(p.headers ?? {}).sort()).toEqual(
      ['traceparent', 'x-attempt', 'x-published-at', 'x-request-id'].sort(),
    );
    expect(p.headers?.['x-attempt']).toBe(1);
  });

  it('answers 404 for a service without a queue (unroutable)', async () => {
    const missing = uniqueName('gw-missing');
    const problem = await expectProblem(await post(gw, `/v1/${missing}`, '{}'), 404);
    expect(problem.type).toBe('urn:warren:error:unknown-service');
    expect(
      await metricValue(gw, 'gateway_published_messages_total', {
        service: 'unknown',
        outcome: 'unroutable',
      }),
    ).toBeGreaterThanOrEqual(1);
  });

  it.each([
    ['amq.rabbitmq.reply-to', 400],
    ['amq.gen-abc', 400],
    [`${queue}.dlq`, 400],
    [`${queue}.retry.1000`, 400],
    ['warren.heartbeat', 400],
    ['warren.gateway.registry.x', 400],
    ['Upper', 400],
    ['1abc', 400],
    ['a'.repeat(64), 400],
    ['with_underscore', 400],
    [encodeURIComponent(`${queue}.dlq`), 400],
    ['amq%2Erabbitmq%2Ereply-to', 400],
    ['%E0%A4%A', 400],
    ['services', 404],
    ['warren', 404],
    ['gateway', 404],
  ])('cannot reach reserved or invalid name %s (%i)', async (name, status) => {
    const problem = await expectProblem(await post(gw, `/v1/${name}`, '{}'), status);
    expect(problem.requestId).toBeTruthy();
  });

  it('never published to a reserved queue', async () => {
    // The reserved names above were refused before publishing: the queues they name stay empty.
    for (const q of RESERVED_QUEUES) expect((await amqp.ch.checkQueue(q)).messageCount).toBe(0);
  });

  it('answers 400 for invalid JSON, invalid query values and a bad action', async () => {
    expect((await expectProblem(await post(gw, `/v1/${queue}`, '{"a":'), 400)).type).toBe(
      'urn:warren:error:invalid-json',
    );
    await expectProblem(await post(gw, `/v1/${queue}`, Buffer.from([0x22, 0xff, 0x22])), 400);
    await expectProblem(await post(gw, `/v1/${queue}?wait=maybe`, '{}'), 400);
    await expectProblem(await post(gw, `/v1/${queue}?wait=true&timeoutMs=-5`, '{}'), 400);
    await expectProblem(await post(gw, `/v1/${queue}?type=bad%20action`, '{}'), 400);
    await expectProblem(
      await post(gw, `/v1/${queue}`, '{}', { headers: { 'x-warren-action': '../x' } }),
      400,
    );
  });

  it('answers 415 for other media types and a missing Content-Type', async () => {
    await expectProblem(
      await post(gw, `/v1/${queue}`, '<a/>', { contentType: 'application/xml' }),
      415,
    );
    await expectProblem(
      await post(gw, `/v1/${queue}`, 'a=b', { contentType: 'application/x-www-form-urlencoded' }),
      415,
    );
    await expectProblem(
      await post(gw, `/v1/${queue}`, Buffer.from('x'), { contentType: null }),
      415,
    );
  });

  it('answers 413 past GATEWAY_MAX_BODY (declared or streamed)', async () => {
    const big = Buffer.alloc(1025, 0x61);
    const problem = await expectProblem(
      await post(gw, `/v1/${queue}`, big, { contentType: 'text/plain' }),
      413,
    );
    expect(problem.type).toBe('urn:warren:error:body-too-large');
    // Exactly at the limit is fine.
    expect(
      (await post(gw, `/v1/${queue}`, Buffer.alloc(1024, 0x61), { contentType: 'text/plain' }))
        .status,
    ).toBe(202);
    expect((await amqp.take(queue)).content.length).toBe(1024);

    // Chunked upload without Content-Length.
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 4; i++) controller.enqueue(new Uint8Array(512).fill(0x62));
        controller.close();
      },
    });
    const res = await fetch(gw.url(`/v1/${queue}`), {
      method: 'POST',
      body: stream,
      headers: { 'content-type': 'text/plain' },
      duplex: 'half',
    } as RequestInit);
    await expectProblem(res, 413);
  });

  it('answers 429 with Retry-After when the queue is full (broker nack)', async () => {
    expect((await post(gw, `/v1/${full}`, '{"n":1}')).status).toBe(202);
    const res = await post(gw, `/v1/${full}`, '{"n":2}');
    const problem = await expectProblem(res, 429);
    expect(problem.type).toBe('urn:warren:error:queue-full');
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(
      await metricValue(gw, 'gateway_published_messages_total', {
        service: full,
        outcome: 'nacked',
      }),
    ).toBe(1);
  });

  it('answers problem+json 404/405 for other routes', async () => {
    await expectProblem(await fetch(gw.url('/nope')), 404);
    await expectProblem(await fetch(gw.url(`/v1/${queue}`)), 405);
  });

  it('counts requests by route template, never by service name', async () => {
    expect(
      await metricValue(gw, 'gateway_http_requests_total', {
        method: 'POST',
        route: '/v1/:service',
        status: '202',
      }),
    ).toBeGreaterThan(0);
    const text = await gw.metrics.metrics();
    const routes = parsePromText(text).map((s) => s.labels.route ?? '');
    expect(routes.filter((route) => route.includes(queue))).toEqual([]);
  });
});
