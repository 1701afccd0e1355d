// Unit: the processor's decisions with a fake publisher and fake deliveries: calls are answered and
// never dead-lettered, redeliveries are counted (classic copies, quorum x-delivery-count) up to the
// limit, copies carry the right headers. The broker-level behaviour is in tests/service-kit.
import pino from 'pino';
import { Registry } from 'prom-client';
import { NO_TRACING, consumerMetrics } from '@warren/observability';
import type { Delivery, Publisher, PublishOptions } from '@warren/messaging';
import { Processor } from './processor';
import { defineService, type ServiceDefinition } from './define';
import { PermanentError } from './errors';

interface Sent {
  queue: string;
  options: PublishOptions;
}

function setup(
  handler: ServiceDefinition['handler'],
  opts: {
    queueType?: 'classic' | 'quorum';
    failPublish?: (queue: string) => boolean;
    requeueDelayMs?: number;
    /** Definition fields on top of the test's (events, schema). */
    def?: Partial<Pick<ServiceDefinition, 'events' | 'schema'>>;
  } = {},
) {
  const sent: Sent[] = [];
  const publisher = {
    send: (queue: string, _body: Buffer, options: PublishOptions = {}) => {
      if (opts.failPublish?.(queue)) return Promise.reject(new Error('queue full'));
      sent.push({ queue, options });
      return Promise.resolve();
    },
  } as unknown as Publisher;
  const registry = new Registry();
  const processor = new Processor({
    def: defineService({
      name: 'orders',
      handlerTimeoutMs: 1000,
      retryDelaysMs: [500],
      maxAttempts: 3,
      maxRedeliveries: 2,
      handler: handler as (b: Buffer) => unknown,
      ...(opts.def as object),
    } as Parameters<typeof defineService>[0]),
    queue: 'orders',
    queueType: opts.queueType ?? 'classic',
    publisher,
    userId: 'orders',
    tracing: NO_TRACING,
    metrics: consumerMetrics(registry),
    logger: pino({ level: 'silent' }),
    services: () => {
      throw new Error('unused');
    },
    requeueDelayMs: opts.requeueDelayMs ?? 0,
  });
  const settled: string[] = [];
  const delivery = (
    id: string,
    props: Record<string, unknown> = {},
    redelivered = false,
  ): Delivery => ({
    body: Buffer.from('{}'),
    properties: {
      messageId: id,
      headers: {},
      deliveryMode: 2,
      ...props,
    } as unknown as Delivery['properties'],
    exchange: '',
    routingKey: 'orders',
    redelivered,
    ack: () => settled.push(`ack ${id}`),
    nack: (requeue) => settled.push(`nack ${id} ${requeue}`),
  });
  const eventCount = async (pattern: string, name: string) =>
    (await registry.getSingleMetric('mq_events_handled_total')?.get())?.values.find(
      (v) => v.labels.pattern === pattern && v.labels.outcome === name,
    )?.value ?? 0;
  const outcome = async (name: string) =>
    (await registry.getSingleMetric('mq_consumer_messages_total')?.get())?.values.find(
      (v) => v.labels.outcome === name,
    )?.value ?? 0;
  return { processor, sent, settled, delivery, outcome, eventCount };
}

const call = { replyTo: 'amq.rabbitmq.reply-to.abc', correlationId: 'c-1' };
const flush = () => new Promise((r) => setImmediate(r));

describe('calls are answered, never dead-lettered', () => {
  it('a failing call gets a 500 problem and is acked; nothing goes to the DLQ', async () => {
    const { processor, sent, settled, delivery, outcome } = setup(() => {
      throw new Error('db down');
    });
    processor.onMessage(delivery('c1', call));
    await flush();
    expect(sent).toHaveLength(1);
    expect(sent[0]?.queue).toBe(call.replyTo);
    expect(sent[0]?.options).toMatchObject({
      correlationId: 'c-1',
      headers: { 'x-status': 500 },
      contentType: 'application/problem+json',
    });
    expect(settled).toEqual(['ack c1']);
    expect(await outcome('dead_letter')).toBe(1);
  });

  it('a call rejected as permanent gets its 4xx and no DLQ copy', async () => {
    const { processor, sent, settled, delivery } = setup(() => {
      throw new PermanentError('no', 'NOPE', { status: 409 });
    });
    processor.onMessage(delivery('c2', call));
    await flush();
    expect(sent.map((s) => s.queue)).toEqual([call.replyTo]);
    expect(sent[0]?.options.headers).toEqual({ 'x-status': 409 });
    expect(settled).toEqual(['ack c2']);
  });

  it('a one-way message that fails for good still goes to the DLQ, with its error', async () => {
    const { processor, sent, delivery } = setup(() => {
      throw new PermanentError('bad input');
    });
    processor.onMessage(
      delivery('m1', { headers: { 'x-delivery-count': 1, 'x-request-id': 'r' } }),
    );
    await flush();
    expect(sent[0]?.queue).toBe('orders.dlq');
    expect(sent[0]?.options.messageId).toBe('m1');
    expect(sent[0]?.options.headers).toMatchObject({
      'x-request-id': 'r',
      'x-error-code': 'PERMANENT',
      'x-original-queue': 'orders',
    });
    // The broker's per-delivery count means nothing on a copy.
    expect(sent[0]?.options.headers).not.toHaveProperty('x-delivery-count');
  });
});

describe('calls past their deadline', () => {
  it('a call arriving after its deadline (x-published-at + expiration) is acked unrun; one in time runs', async () => {
    let runs = 0;
    const { processor, sent, settled, delivery } = setup(() => {
      runs++;
      return { ok: true };
    });
    const now = Date.now();
    processor.onMessage(
      delivery('late', { ...call, expiration: '5000', headers: { 'x-published-at': now - 6000 } }),
    );
    processor.onMessage(
      delivery('on-time', {
        ...call,
        expiration: '5000',
        headers: { 'x-published-at': now - 1000 },
      }),
    );
    // A plain AMQP call (no x-published-at; a timestamp in seconds only) is never dropped here.
    processor.onMessage(
      delivery('plain', { ...call, expiration: '5000', timestamp: Math.floor(now / 1000) - 60 }),
    );
    await flush();
    await flush();
    expect(runs).toBe(2);
    expect(sent.map((s) => s.queue)).toEqual([call.replyTo, call.replyTo]);
    expect(settled.sort()).toEqual(['ack late', 'ack on-time', 'ack plain']);
  });
});

describe('retry copies', () => {
  it('keep the messageId, count the attempt up and start the redelivery count again', async () => {
    const { processor, sent, settled, delivery } = setup(() => {
      throw new Error('transient');
    });
    processor.onMessage(
      delivery('m2', { headers: { 'x-attempt': 1, 'x-redeliveries': 2, 'x-request-id': 'r2' } }),
    );
    await flush();
    expect(sent).toHaveLength(1);
    expect(sent[0]?.queue).toBe('orders.retry.500.v2');
    expect(sent[0]?.options.messageId).toBe('m2');
    expect(sent[0]?.options.headers).toEqual({ 'x-attempt': 2, 'x-request-id': 'r2' });
    expect(settled).toEqual(['ack m2']);
  });
});

describe('redeliveries on a classic queue', () => {
  it('a redelivered message is requeued with its count (through the first retry delay), not handled, and the original acked', async () => {
    let runs = 0;
    const { processor, sent, settled, delivery } = setup(() => {
      runs++;
    });
    processor.onMessage(delivery('m3', { headers: { 'x-attempt': 2 } }, true));
    await flush();
    expect(runs).toBe(0);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.queue).toBe('orders.retry.500.v2');
    expect(sent[0]?.options).toMatchObject({ messageId: 'm3', persistent: true });
    expect(sent[0]?.options.headers).toEqual({ 'x-attempt': 2, 'x-redeliveries': 1 });
    expect(settled).toEqual(['ack m3']);
  });

  it('past maxRedeliveries it goes to the DLQ with REDELIVERY_LIMIT, not to the handler', async () => {
    let runs = 0;
    const { processor, sent, settled, delivery, outcome } = setup(() => {
      runs++;
    });
    processor.onMessage(delivery('m4', { headers: { 'x-redeliveries': 2 } }, true));
    await flush();
    expect(runs).toBe(0);
    expect(sent.map((s) => s.queue)).toEqual(['orders.dlq']);
    expect(sent[0]?.options.headers).toMatchObject({
      'x-error-code': 'REDELIVERY_LIMIT',
      'x-redeliveries': 3,
      'x-original-queue': 'orders',
    });
    expect(settled).toEqual(['ack m4']);
    expect(await outcome('dead_letter')).toBe(1);
  });

  it('a redelivered call keeps what is left of its TTL, or is dropped once it ran out', async () => {
    const { processor, sent, settled, delivery } = setup(() => 'ok');
    const now = Date.now();
    processor.onMessage(
      delivery(
        'c3',
        { ...call, expiration: '60000', headers: { 'x-published-at': now - 10_000 } },
        true,
      ),
    );
    processor.onMessage(
      delivery(
        'c4',
        { ...call, expiration: '5000', headers: { 'x-published-at': now - 10_000 } },
        true,
      ),
    );
    await flush();
    expect(sent).toHaveLength(1);
    // Straight back to the queue: a copy dead-lettered from a retry queue would lose its TTL.
    expect(sent[0]?.queue).toBe('orders');
    expect(sent[0]?.options).toMatchObject({
      messageId: 'c3',
      replyTo: call.replyTo,
      correlationId: 'c-1',
    });
    const left = Number(sent[0]?.options.expiration);
    expect(left).toBeGreaterThan(40_000);
    expect(left).toBeLessThanOrEqual(50_000);
    expect(settled.sort()).toEqual(['ack c3', 'ack c4']);
  });

  it('a message that cannot be requeued with its count is handled as it is', async () => {
    let runs = 0;
    const { processor, settled, delivery } = setup(
      () => {
        runs++;
      },
      { failPublish: (q) => q.includes('.retry.') },
    );
    processor.onMessage(delivery('m5', {}, true));
    await flush();
    await flush();
    expect(runs).toBe(1);
    expect(settled).toEqual(['ack m5']);
  });
});

describe('redeliveries on a quorum queue', () => {
  it('are counted by the broker: x-delivery-count past the limit goes to the DLQ, a call is answered', async () => {
    let runs = 0;
    const { processor, sent, settled, delivery } = setup(
      () => {
        runs++;
      },
      { queueType: 'quorum' },
    );
    processor.onMessage(delivery('q1', { headers: { 'x-delivery-count': 2 } }, true));
    processor.onMessage(delivery('q2', { headers: { 'x-delivery-count': 3 } }, true));
    processor.onMessage(delivery('q3', { ...call, headers: { 'x-delivery-count': 3 } }, true));
    await flush();
    await flush();
    expect(runs).toBe(1);
    expect(sent.map((s) => s.queue).sort()).toEqual([call.replyTo, 'orders.dlq'].sort());
    const reply = sent.find((s) => s.queue === call.replyTo);
    expect(reply?.options.headers).toEqual({ 'x-status': 500 });
    expect(settled.sort()).toEqual(['ack q1', 'ack q2', 'ack q3']);
  });
});

describe('settling', () => {
  it('a retry copy that cannot be published leaves the message to the broker (nack, requeue) after a pause, holding its slot', async () => {
    const { processor, settled, delivery } = setup(
      () => {
        throw new Error('transient');
      },
      { failPublish: (q) => q.includes('.retry.'), requeueDelayMs: 200 },
    );
    processor.onMessage(delivery('m6'));
    await flush();
    await flush();
    // Not requeued at once (it would come straight back while the broker refuses publishes).
    expect(settled).toEqual([]);
    expect(processor.inFlightCount).toBe(1);
    await new Promise((r) => setTimeout(r, 300));
    expect(settled).toEqual(['nack m6 true']);
    expect(processor.inFlightCount).toBe(0);
  });

  it('shutdown does not wait out the pause: drain requeues at once', async () => {
    const { processor, settled, delivery } = setup(
      () => {
        throw new Error('transient');
      },
      { failPublish: (q) => q.includes('.retry.'), requeueDelayMs: 60_000 },
    );
    processor.onMessage(delivery('m7'));
    await flush();
    await flush();
    expect(settled).toEqual([]);
    expect(await processor.drain(5000)).toBe(true);
    expect(settled).toEqual(['nack m7 true']);
  });
});

describe('replies', () => {
  it('a successful call is answered with x-status 200, no message id, as this user', async () => {
    const { processor, sent, settled, delivery } = setup(() => ({ ok: true }));
    processor.onMessage(delivery('c9', call));
    await flush();
    expect(sent).toHaveLength(1);
    expect(sent[0]?.options).toEqual({
      correlationId: 'c-1',
      contentType: 'application/json',
      headers: { 'x-status': 200 },
      userId: 'orders',
      mandatory: false,
    });
    expect(settled).toEqual(['ack c9']);
  });

  it('a call stamped with x-published-at gets its timing back: time queued and time in the service', async () => {
    const { processor, sent, delivery } = setup(async () => {
      await new Promise((r) => setTimeout(r, 30));
      return { ok: true };
    });
    processor.onMessage(
      delivery('c10', { ...call, headers: { 'x-published-at': Date.now() - 200 } }),
    );
    await new Promise((r) => setTimeout(r, 80));
    const headers = sent[0]?.options.headers as Record<string, number>;
    expect(headers['x-status']).toBe(200);
    expect(headers['x-queue-ms']).toBeGreaterThanOrEqual(200);
    expect(headers['x-queue-ms']).toBeLessThan(1000);
    expect(headers['x-service-ms']).toBeGreaterThanOrEqual(25);
    expect(headers['x-service-ms']).toBeLessThan(1000);
  });
});

describe('events', () => {
  const fromEvents = (id: string, topic: string, props: Record<string, unknown> = {}) => ({
    id,
    topic,
    props,
  });
  const eventDelivery = (
    make: ReturnType<typeof setup>['delivery'],
    e: ReturnType<typeof fromEvents>,
  ): Delivery => ({
    ...make(e.id, e.props),
    exchange: 'warren.events',
    routingKey: e.topic,
  });

  it('the handler sees ctx.event; a direct message has none', async () => {
    const events: (string | undefined)[] = [];
    const { processor, delivery } = setup(
      (_b: unknown, ctx: { event: string | undefined }) => void events.push(ctx.event),
      { def: { events: ['order.*'] } },
    );
    processor.onMessage(eventDelivery(delivery, fromEvents('e1', 'order.created')));
    processor.onMessage(delivery('m1'));
    await flush();
    expect(events).toEqual(['order.created', undefined]);
  });

  it('a failing event is retried with its topic in x-event (the copy goes through the default exchange)', async () => {
    const { processor, sent, eventCount } = setup(
      () => {
        throw new Error('down');
      },
      { def: { events: ['order.created', 'order.*'] } },
    );
    const { delivery } = setup(() => undefined);
    processor.onMessage(eventDelivery(delivery, fromEvents('e2', 'order.created')));
    await flush();
    expect(sent[0]?.queue).toBe('orders.retry.500.v2');
    expect(sent[0]?.options.headers).toMatchObject({ 'x-event': 'order.created', 'x-attempt': 2 });
    // Counted by the first pattern that matches.
    expect(await eventCount('order.created', 'retry')).toBe(1);
    expect(await eventCount('order.*', 'retry')).toBe(0);
  });

  it('a retried copy (x-event, default exchange) is still the event; its DLQ copy keeps the topic', async () => {
    const { processor, sent, delivery, eventCount } = setup(
      () => {
        throw new Error('still down');
      },
      { def: { events: ['order.*'] } },
    );
    processor.onMessage(delivery('e3', { headers: { 'x-event': 'order.paid', 'x-attempt': 3 } }));
    await flush();
    expect(sent[0]?.queue).toBe('orders.dlq');
    expect(sent[0]?.options.headers).toMatchObject({
      'x-event': 'order.paid',
      'x-error-message': 'still down',
    });
    expect(await eventCount('order.*', 'dead_letter')).toBe(1);
  });

  it("an event is validated by its pattern's schema, a direct message by the service's", async () => {
    const { z } = await import('zod');
    const inputs: unknown[] = [];
    const { processor, sent, delivery } = setup((input: unknown) => void inputs.push(input), {
      def: {
        schema: z.object({}).passthrough(),
        events: { 'order.created': z.object({ id: z.number() }), 'order.*': null },
      },
    });
    // {} fails order.created's schema: rejected to the DLQ, not retried.
    processor.onMessage(eventDelivery(delivery, fromEvents('e4', 'order.created')));
    // order.paid matches order.* (null: the service's schema), which {} passes.
    processor.onMessage(eventDelivery(delivery, fromEvents('e5', 'order.paid')));
    processor.onMessage(delivery('m5'));
    await flush();
    expect(sent.map((x) => x.queue)).toEqual(['orders.dlq']);
    expect(sent[0]?.options.headers).toMatchObject({
      'x-error-code': 'VALIDATION_FAILED',
      'x-event': 'order.created',
    });
    expect(inputs).toEqual([{}, {}]);
  });
});
