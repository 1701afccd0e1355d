// Retries, dead letters and validation against the real broker, through runService().
import type { GetMessage } from 'amqplib';
import { z } from 'zod';
import { retryQueueName } from '@warren/protocol';
import {
  defineService,
  PermanentError,
  WarrenError,
  runService,
  type RunningService,
} from '@warren/service-kit';
import { uniqueName } from '../support/broker';
import { eventually } from '../support/time';
import { brokerFixture } from './broker-fixture';

const f = brokerFixture('retry.test');

const env = () => ({
  AMQP_URL: f.url,
  METRICS_PORT: '0',
  LOG_LEVEL: 'silent',
  HEARTBEAT_INTERVAL_MS: '1000',
});

async function start(
  def: Parameters<typeof runService>[0],
  delays: number[],
): Promise<RunningService> {
  f.cleanup.push(def.name, `${def.name}.dlq`, ...delays.map((d) => retryQueueName(def.name, d)));
  const svc = await runService(def, { env: env(), handleSignals: false });
  f.running.push(svc);
  return svc;
}

async function getAll(queue: string): Promise<GetMessage[]> {
  const ch = await f.raw.createChannel();
  const out: GetMessage[] = [];
  for (;;) {
    const m = await ch.get(queue, { noAck: true });
    if (m === false) break;
    out.push(m);
  }
  await ch.close();
  return out;
}

async function counter(svc: RunningService, outcome: string): Promise<number> {
  const metric = await svc.registry.getSingleMetric('mq_consumer_messages_total')?.get();
  return metric?.values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
}

test('a failing handler is retried with growing delays, then dead-lettered with its error headers', async () => {
  const name = uniqueName('retry');
  const seen: { attempt: number; at: number }[] = [];
  const delays = [100, 300, 900];
  const svc = await start(
    defineService({
      name,
      maxAttempts: 4,
      retryDelaysMs: delays,
      handler: (_body, ctx) => {
        seen.push({ attempt: ctx.attempt, at: Date.now() });
        throw Object.assign(new Error('downstream exploded'), { code: 'DOWNSTREAM' });
      },
    }),
    delays,
  );
  await f.publisher.send(name, Buffer.from('{"x":1}'), {
    contentType: 'application/json',
    messageId: 'poison-1',
  });
  await eventually(async () => (await counter(svc, 'dead_letter')) === 1, 15_000, 'dead letter');
  expect(seen.map((s) => s.attempt)).toEqual([1, 2, 3, 4]);
  const gaps = seen.slice(1).map((s, i) => s.at - (seen[i]?.at ?? 0));
  // Each wait is at least its delay and the waits grow.
  gaps.forEach((gap, i) => expect(gap).toBeGreaterThanOrEqual((delays[i] ?? 0) - 20));
  expect(gaps[2]).toBeGreaterThan(gaps[0] ?? 0);
  expect(await counter(svc, 'retry')).toBe(3);

  const dead = await getAll(`${name}.dlq`);
  expect(dead).toHaveLength(1);
  const h = dead[0]?.properties.headers ?? {};
  expect(dead[0]?.content.toString()).toBe('{"x":1}');
  expect(dead[0]?.properties.messageId).toBe('poison-1');
  expect(h['x-error-message']).toBe('downstream exploded');
  expect(h['x-error-code']).toBe('DOWNSTREAM');
  expect(h['x-attempt']).toBe(4);
  expect(h['x-original-queue']).toBe(name);
  expect(Number.isNaN(Date.parse(String(h['x-failed-at'])))).toBe(false);
});

test('a poison message does not stop the good messages behind it', async () => {
  const name = uniqueName('poison');
  const done: string[] = [];
  const delays = [200];
  const svc = await start(
    defineService({
      name,
      prefetch: 1,
      maxAttempts: 3,
      retryDelaysMs: delays,
      handler: (body) => {
        const text = body.toString();
        if (text === 'poison') throw new Error('always fails');
        done.push(text);
      },
    }),
    delays,
  );
  await f.publisher.send(name, Buffer.from('poison'));
  await Promise.all(
    Array.from({ length: 50 }, (_, i) => f.publisher.send(name, Buffer.from(`good${i}`))),
  );
  await eventually(() => done.length === 50, 10_000, 'good messages');
  await eventually(
    async () => (await counter(svc, 'dead_letter')) === 1,
    10_000,
    'poison dead-lettered',
  );
  expect(done).toHaveLength(50);
  expect(await getAll(`${name}.dlq`)).toHaveLength(1);
});

test('invalid input is rejected without retries: a plain message goes to the DLQ, a call gets a 400 problem', async () => {
  const name = uniqueName('valid');
  let calls = 0;
  const delays = [100];
  const svc = await start(
    defineService({
      name,
      retryDelaysMs: delays,
      schema: z.object({ n: z.number().int() }),
      handler: (input) => {
        calls++;
        if (input.n < 0)
          throw new PermanentError('n must not be negative', 'NEGATIVE', { status: 422 });
        return { double: input.n * 2 };
      },
    }),
    delays,
  );
  const ok = await f.rpc.call(name, Buffer.from('{"n":21}'), {
    timeoutMs: 5000,
    contentType: 'application/json',
  });
  expect(ok.status).toBe(200);
  expect(JSON.parse(ok.body.toString())).toEqual({ double: 42 });

  const bad = await f.rpc.call(name, Buffer.from('{"n":"x"}'), {
    timeoutMs: 5000,
    contentType: 'application/json',
  });
  expect(bad.status).toBe(400);
  expect(bad.contentType).toBe('application/problem+json');
  expect(JSON.parse(bad.body.toString())).toMatchObject({
    status: 400,
    title: 'Validation failed',
    type: 'urn:warren:error:validation-failed',
  });

  const neg = await f.rpc.call(name, Buffer.from('{"n":-1}'), { timeoutMs: 5000 });
  expect(neg.status).toBe(422);

  await f.publisher.send(name, Buffer.from('not json'), { contentType: 'application/json' });
  await eventually(async () => (await counter(svc, 'rejected')) === 3, 10_000, 'rejected count');
  const dead = await getAll(`${name}.dlq`);
  expect(dead).toHaveLength(1);
  expect(dead[0]?.properties.headers?.['x-error-code']).toBe('VALIDATION_FAILED');
  expect(await counter(svc, 'retry')).toBe(0);
  expect(calls).toBe(2); // the handler never saw the invalid inputs
});

test('a failed call replies 500 problem+json at once; it is neither retried nor dead-lettered', async () => {
  const name = uniqueName('callfail');
  const delays = [100];
  const svc = await start(
    defineService({
      name,
      retryDelaysMs: delays,
      handler: () => Promise.reject(new Error('boom: db password rejected')),
    }),
    delays,
  );
  const reply = await f.rpc.call(name, Buffer.from('x'), { timeoutMs: 5000 });
  expect(reply.status).toBe(500);
  // The caller gets a generic detail; the message stays inside (log, DLQ header).
  expect(JSON.parse(reply.body.toString())).toEqual({
    type: 'urn:warren:error:handler-error',
    title: 'Service error',
    status: 500,
    detail: 'the service failed to handle the message',
  });
  // Outcomes are counted after the ack, and a DLQ copy would be confirmed before the ack.
  await eventually(async () => (await counter(svc, 'dead_letter')) === 1, 5000, 'call failed');
  expect(await getAll(`${name}.dlq`)).toHaveLength(0);
  expect(await counter(svc, 'retry')).toBe(0);

  // A call that runs past its time limit: 504 at the deadline, and no DLQ entry either.
  const slow = uniqueName('callslow');
  const svc2 = await start(
    defineService({
      name: slow,
      retryDelaysMs: delays,
      handlerTimeoutMs: 100,
      handler: (_body, ctx) =>
        new Promise((_resolve, reject) =>
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
        ),
    }),
    delays,
  );
  const late = await f.rpc.call(slow, Buffer.from('x'), { timeoutMs: 5000 });
  expect(late.status).toBe(504);
  expect(JSON.parse(late.body.toString())).toMatchObject({
    type: 'urn:warren:error:handler-timeout',
  });
  await eventually(async () => (await counter(svc2, 'dead_letter')) === 1, 5000, 'call timed out');
  expect(await getAll(`${slow}.dlq`)).toHaveLength(0);
});

test('a 5xx error marked public reaches the caller with its message and status', async () => {
  const name = uniqueName('callpublic');
  await start(
    defineService({
      name,
      retryDelaysMs: [100],
      handler: () => {
        throw new WarrenError('PAYMENTS_DOWN', 'payments are down', { status: 503, expose: true });
      },
    }),
    [100],
  );
  const reply = await f.rpc.call(name, Buffer.from('x'), { timeoutMs: 5000 });
  expect(reply.status).toBe(503);
  expect(JSON.parse(reply.body.toString())).toEqual({
    type: 'urn:warren:error:payments-down',
    title: 'Payments down',
    status: 503,
    detail: 'payments are down',
  });
});

test('a non-retryable error (an unroutable downstream send) is dead-lettered at once, not retried', async () => {
  const name = uniqueName('noretry');
  const delays = [100];
  let calls = 0;
  const svc = await start(
    defineService({
      name,
      retryDelaysMs: delays,
      handler: async (_input, ctx) => {
        calls++;
        await ctx.services.send(uniqueName('nobody-home'), { x: 1 });
      },
    }),
    delays,
  );
  await f.publisher.send(name, Buffer.from('{}'), { contentType: 'application/json' });
  await eventually(async () => (await counter(svc, 'dead_letter')) === 1, 5000, 'dead letter');
  expect(await counter(svc, 'retry')).toBe(0);
  expect(calls).toBe(1);
  const [dead] = await getAll(`${name}.dlq`);
  expect(dead?.properties.headers).toMatchObject({ 'x-error-code': 'UNROUTABLE', 'x-attempt': 1 });
});

test('quorum queues: retries and the DLQ work; the queue has no dead-letter target and an out-of-reach delivery limit', async () => {
  const name = uniqueName('quorum');
  const delays = [100];
  let attempts = 0;
  const svc = await start(
    defineService({
      name,
      queue: { queueType: 'quorum' },
      maxAttempts: 2,
      retryDelaysMs: delays,
      handler: () => {
        attempts++;
        throw new Error('fails twice');
      },
    }),
    delays,
  );
  await f.publisher.send(name, Buffer.from('q'), { persistent: true });
  await eventually(async () => (await counter(svc, 'dead_letter')) === 1, 10_000, 'dead letter');
  expect(attempts).toBe(2);
  expect(await getAll(`${name}.dlq`)).toHaveLength(1);
  // Re-declaring with the arguments Warren expects succeeds only if they match exactly.
  const ch = await f.raw.createChannel();
  const ok = await ch.assertQueue(name, {
    durable: true,
    arguments: {
      'x-queue-type': 'quorum',
      'x-delivery-limit': 1_000_000,
      'x-overflow': 'reject-publish',
    },
  });
  await ch.close();
  expect(ok.queue).toBe(name);
});
