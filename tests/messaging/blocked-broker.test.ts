// A broker that stops taking publishes, on a private RabbitMQ node: a memory alarm (connection.blocked) and a
// frozen node (SIGSTOP: publish() false). Typed failures, bounded memory, nothing sent after a BROKER_BUSY,
// consumption and acks unaffected on the consume connection, readiness following both connections.
import { connect, type ChannelModel } from 'amqplib';
import {
  BrokerBusyError,
  Connections,
  Consumer,
  ManagedChannel,
  PublishTimeoutError,
  Publisher,
} from '@warren/messaging';
import { defineService, runService } from '@warren/service-kit';
import { startPrivateBroker, type PrivateBroker } from '../support/private-broker';

import { memoryLogger } from './helpers';
import { metricValue, post, startTestGateway } from '../gateway/helpers';
import { eventually } from '../support/time';

jest.setTimeout(120_000);

const log = memoryLogger('blocked');
let node: PrivateBroker;
let raw: ChannelModel;

beforeAll(async () => {
  node = await startPrivateBroker('warren-blocked');
  raw = await connect(node.url);
});

afterAll(async () => {
  const pid = node?.pid();
  if (pid) process.kill(pid, 'SIGCONT');
  await raw?.close().catch(() => undefined);
  await node?.stop();
});

/** Ready messages in `queue`, asked on the raw connection (which never publishes, so is never blocked). */
async function depth(queue: string): Promise<number> {
  const ch = await raw.createChannel();
  const { messageCount } = await ch.checkQueue(queue);
  await ch.close();
  return messageCount;
}

async function declare(...queues: string[]): Promise<void> {
  const ch = await raw.createChannel();
  for (const q of queues) await ch.assertQueue(q, { durable: true });
  await ch.close();
}

async function alarm(on: boolean): Promise<void> {
  await node.ctl('set_vm_memory_high_watermark', on ? '0.0000001' : '0.4');
  await eventually(
    async () => (await node.ctl('eval', 'rabbit_alarm:get_alarms().')).includes('memory') === on,
    15_000,
    on ? 'memory alarm' : 'memory alarm cleared',
  );
}

/** Node's external memory in Buffers: what amqplib's copies of message bodies take. */
const bufferBytes = (): number => process.memoryUsage().arrayBuffers;

async function outcomes(all: Promise<void>[]): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const r of await Promise.allSettled(all)) {
    const key =
      r.status === 'fulfilled' ? 'confirmed' : String((r.reason as { code?: unknown }).code);
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

test('readiness follows both connections: the consume connection lost → not ready until it is back; publishing untouched', async () => {
  const name = 'ready-both';
  const processed: string[] = [];
  const svc = await runService(
    defineService({
      name,
      handler: async (body: Buffer) => void processed.push(body.toString()),
    }),
    {
      env: { AMQP_URL: node.url, METRICS_PORT: '0', LOG_LEVEL: 'silent' },
      handleSignals: false,
    },
  );
  try {
    await eventually(() => svc.isReady(), 10_000, 'service ready');
    let atLoss: { ready: boolean; publish: string } | undefined;
    svc.connections.consume.once('disconnected', () => {
      atLoss = { ready: svc.isReady(), publish: svc.connections.publish.state };
    });
    const listed = await node.ctl(
      '-q',
      'list_connections',
      '--no-table-headers',
      'pid',
      'client_properties',
    );
    const line = listed.split('\n').find((l) => l.includes(`${name}:${svc.instanceId}:consume`));
    expect(line).toBeDefined();
    await node.ctl('close_connection', String(line?.split('\t')[0]), 'test: consume connection');
    await eventually(() => atLoss !== undefined, 10_000, 'consume connection lost');
    expect(atLoss).toEqual({ ready: false, publish: 'connected' });
    await eventually(() => svc.isReady(), 10_000, 'ready again');
    const ch = await raw.createChannel();
    ch.sendToQueue(name, Buffer.from('after'));
    await ch.close();
    await eventually(() => processed.includes('after'), 10_000, 'processed after the reconnect');
  } finally {
    await svc.stop();
  }
});

test('memory alarm: the publish connection is blocked (typed errors, nothing sent, memory flat); the consume connection keeps delivering and acking', async () => {
  const work = 'alarm-work';
  const out = 'alarm-out';
  await declare(work, out);
  const connections = await Connections.connect({
    url: node.url,
    logger: log.logger,
    connectionName: 'blocked.test',
  });
  const publisher = await Publisher.create(connections.publish, {
    logger: log.logger,
    confirmTimeoutMs: 1500,
  });
  let consumer: Consumer | undefined;
  try {
    for (let i = 0; i < 20; i++) await publisher.send(work, Buffer.from(`w${i}`));

    await node.ctl('set_vm_memory_high_watermark', '0.0000001');
    await eventually(
      async () => (await node.ctl('eval', 'rabbit_alarm:get_alarms().')).includes('memory'),
      15_000,
      'memory alarm',
    );
    // RabbitMQ announces connection.blocked when a publish arrives during the alarm, and holds that
    // publish (unconfirmed) until the alarm clears: its outcome is unknown to the publisher.
    const first = publisher.send(out, Buffer.from('first'));
    await eventually(() => connections.publish.isBlocked, 10_000, 'connection.blocked');
    expect(connections.isUsable).toBe(false);

    // Blocked: every publish fails at once, BROKER_BUSY, and nothing is handed to amqplib.
    const body = Buffer.alloc(64 * 1024, 7);
    const before = bufferBytes();
    const refused = Array.from({ length: 500 }, () => publisher.send(out, body));
    const grown = bufferBytes() - before;
    expect(await outcomes(refused)).toEqual({ BROKER_BUSY: 500 });
    await expect(refused[0]).rejects.toBeInstanceOf(BrokerBusyError);
    // 500 × 64 KiB = 31 MiB offered; nothing of it was copied into amqplib's buffers.
    expect(grown).toBeLessThan(4 * 1024 * 1024);
    await expect(first).rejects.toBeInstanceOf(PublishTimeoutError);

    // The consume connection is not blocked: with prefetch 1 every next delivery needs the last ack.
    const received: string[] = [];
    consumer = await Consumer.create(connections.consume, {
      queue: work,
      prefetch: 1,
      logger: log.logger,
      declare: async () => undefined,
      onMessage: (d) => {
        received.push(d.body.toString());
        d.ack();
      },
    });
    await eventually(() => received.length === 20, 10_000, 'all 20 delivered during the alarm');
    await eventually(async () => (await depth(work)) === 0, 10_000, 'all 20 acked');
    expect(connections.publish.isBlocked).toBe(true);

    await node.ctl('set_vm_memory_high_watermark', '0.4');
    await eventually(() => !connections.publish.isBlocked, 15_000, 'connection.unblocked');
    // A marker published after the alarm: frames on one connection arrive in order, so once it
    // is confirmed anything sent before it is in the queue too. Only "first" (outcome unknown)
    // and the marker: none of the 500 refused publishes was ever sent.
    await publisher.send(out, Buffer.from('marker'));
    expect(await depth(out)).toBe(2);
  } finally {
    await node.ctl('set_vm_memory_high_watermark', '0.4');
    await consumer?.close();
    await publisher.close();
    await connections.close();
  }
});

test('memory alarm: a failing handler whose retry copy cannot go out is requeued after a pause, not in a hot loop; nothing lost', async () => {
  const name = 'alarm-retry';
  const runs: string[] = [];
  // Every attempt fails and is retried (through the retry queue, 300 ms) for as long as the test runs.
  const svc = await runService(
    defineService({
      name,
      maxAttempts: 1_000_000,
      retryDelaysMs: [300],
      handler: (body: Buffer) => {
        runs.push(body.toString());
        throw new Error('always fails');
      },
    }),
    {
      // Beats every 200 ms: during the alarm, one of them makes the broker block the connection.
      env: {
        AMQP_URL: node.url,
        METRICS_PORT: '0',
        LOG_LEVEL: 'silent',
        HEARTBEAT_INTERVAL_MS: '200',
      },
      handleSignals: false,
    },
  );
  try {
    const ch = await raw.createConfirmChannel();
    for (const id of ['a', 'b', 'c']) ch.sendToQueue(name, Buffer.from(id), { persistent: true });
    await ch.waitForConfirms();
    await ch.close();
    await eventually(() => new Set(runs).size === 3, 10_000, 'all three failing');

    await node.ctl('set_vm_memory_high_watermark', '0.0000001');
    await eventually(() => svc.connections.publish.isBlocked, 15_000, 'publish connection blocked');
    // The broker still delivers (the consume connection is not blocked), but no retry copy can
    // go out: BROKER_BUSY at once, or (a copy handed over just before the block was known) no
    // confirm within 10 s. Either way the message waits 1 s before it is requeued. Without that
    // pause the three would cycle thousands of times in these 4 s.
    const atBlock = runs.length;
    await eventually(() => runs.length > atBlock, 20_000, 'a message handled during the alarm');
    const from = runs.length;
    await new Promise((r) => setTimeout(r, 4000));
    expect(runs.length - from).toBeLessThanOrEqual(3 * 6);

    await node.ctl('set_vm_memory_high_watermark', '0.4');
    await eventually(() => !svc.connections.publish.isBlocked, 15_000, 'unblocked');
    // None lost: all three keep coming back once the alarm is over.
    const after = runs.length;
    await eventually(
      () => new Set(runs.slice(after)).size === 3,
      30_000,
      'all three handled again after the alarm',
    );
  } finally {
    await node.ctl('set_vm_memory_high_watermark', '0.4');
    await svc.stop();
  }
});

test('a broker that stops reading (node frozen): publish() false → bounded wait → BROKER_BUSY, never sent; memory bounded', async () => {
  const queue = 'frozen';
  await declare(queue);
  const connections = await Connections.connect({
    url: node.url,
    logger: log.logger,
    connectionName: 'frozen.test',
  });
  const channel = new ManagedChannel(connections.publish, {
    name: 'frozen-test',
    logger: log.logger,
    confirm: true,
    confirmTimeoutMs: 3000,
    flowTimeoutMs: 500,
    highWaterMark: 16,
  });
  await channel.start();
  const pid = node.pid();
  if (!pid) throw new Error('no pid for the private node');
  try {
    const body = Buffer.alloc(64 * 1024, 9);
    process.kill(pid, 'SIGSTOP');
    const before = bufferBytes();
    const n = 1000;
    const all = Array.from({ length: n }, () => channel.publish('', queue, body));
    // Some publishes wait for room (amqplib's buffer filled up: publish() returned false).
    expect(channel.waitingCount).toBeGreaterThan(0);
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, bufferBytes() - before)), 20);
    const counts = await outcomes(all);
    clearInterval(sampler);
    process.kill(pid, 'SIGCONT');

    // Handed over before the socket stalled: no confirm in time, outcome unknown. The rest
    // never reached amqplib: refused at once past the waiting bound, or after the flow bound.
    expect(Object.keys(counts).sort()).toEqual(['BROKER_BUSY', 'PUBLISH_TIMEOUT']);
    const handedOver = counts.PUBLISH_TIMEOUT ?? 0;
    expect(handedOver).toBeLessThan(n / 2);
    // 1000 × 64 KiB = 62.5 MiB offered; amqplib only ever held copies of what was handed over.
    expect(peak).toBeLessThan(24 * 1024 * 1024);

    // The node runs again: what was handed over arrives (the broker had it), nothing else.
    await channel.publish('', queue, Buffer.from('marker'));
    expect(await depth(queue)).toBe(handedOver + 1);
  } finally {
    process.kill(pid, 'SIGCONT');
    await channel.close();
    await connections.close();
  }
});

test('gateway: an async publish held by the alarm is answered 503; its retry is held while unknown, then answered 202 duplicate once the late confirm came; one copy in the queue', async () => {
  const queue = 'held-async';
  await declare(queue);
  const gw = await startTestGateway(node.url, { GATEWAY_CONFIRM_TIMEOUT_MS: '1500' });
  const path = `/v1/${queue}`;
  const as = (id: string) => ({ headers: { 'x-request-id': id } });
  try {
    expect((await post(gw, path, '{"warm":1}', as('warm-req-1'))).status).toBe(202);
    await alarm(true);
    // The first publish during the alarm is the one RabbitMQ holds: no confirm within 1.5 s.
    const first = await post(gw, path, '{"n":1}', as('held-req-1'));
    expect(first.status).toBe(503);
    expect(((await first.json()) as { detail: string }).detail).toMatch(/same x-request-id/);
    // Its retry (same id and bytes) is not sent again while its outcome is unknown.
    const retry = await post(gw, path, '{"n":1}', as('held-req-1'));
    expect(retry.status).toBe(503);
    expect(((await retry.json()) as { detail: string }).detail).toMatch(/not yet confirmed/);
    // The same id with other bytes is another request: sent, or here refused at once (blocked).
    const other = await post(gw, path, '{"n":2}', as('held-req-1'));
    expect(other.status).toBe(503);
    expect(((await other.json()) as { type: string }).type).toMatch(/broker-busy/);
    expect(
      await metricValue(gw, 'gateway_unconfirmed_publishes_total', { outcome: 'retry_held' }),
    ).toBe(1);

    await alarm(false);
    await eventually(
      async () =>
        (await metricValue(gw, 'gateway_unconfirmed_publishes_total', { outcome: 'confirmed' })) ===
        1,
      15_000,
      'the held publish confirmed late',
    );
    const again = await post(gw, path, '{"n":1}', as('held-req-1'));
    expect(again.status).toBe(202);
    expect(await again.json()).toEqual({ requestId: 'held-req-1', duplicate: true });
    // The warm-up and the held publish: the retries added nothing.
    expect(await depth(queue)).toBe(2);
  } finally {
    await alarm(false);
    await gw.stop();
  }
});

test("gateway: an event held by the alarm is answered 503; its retry is held, then answered 202 duplicate with the first copy's message id; one copy delivered", async () => {
  const queue = 'held-events';
  const topic = 'held.created';
  const ch = await raw.createChannel();
  await ch.assertExchange('warren.events', 'topic', { durable: true });
  await ch.assertQueue(queue, { durable: true });
  await ch.bindQueue(queue, 'warren.events', topic);
  await ch.close();
  const gw = await startTestGateway(node.url, { GATEWAY_CONFIRM_TIMEOUT_MS: '1500' });
  const path = `/v1/events/${topic}`;
  const as = { headers: { 'x-request-id': 'event-req-1' } };
  try {
    await alarm(true);
    const first = await post(gw, path, '{"n":1}', as);
    expect(first.status).toBe(503);
    const retry = await post(gw, path, '{"n":1}', as);
    expect(retry.status).toBe(503);
    expect(((await retry.json()) as { detail: string }).detail).toMatch(/not yet confirmed/);
    await alarm(false);
    await eventually(
      async () =>
        (await metricValue(gw, 'gateway_unconfirmed_publishes_total', { outcome: 'confirmed' })) ===
        1,
      15_000,
      'the held event confirmed late',
    );
    const again = await post(gw, path, '{"n":1}', as);
    expect(again.status).toBe(202);
    const answer = (await again.json()) as { messageId: string; duplicate: boolean };
    expect(answer.duplicate).toBe(true);
    // The one copy in the queue is the first request's: the answer names it.
    const get = await raw.createChannel();
    const msg = await get.get(queue, { noAck: true });
    await get.close();
    expect(msg && msg.properties.messageId).toBe(answer.messageId);
    expect(await depth(queue)).toBe(0);
  } finally {
    await alarm(false);
    await gw.stop();
  }
});

test('gateway: a call held by the alarm is answered, and once the alarm clears the late call is dropped unrun by the service', async () => {
  const name = 'held-call';
  let runs = 0;
  const svc = await runService(defineService({ name, handler: async () => ({ run: ++runs }) }), {
    env: { AMQP_URL: node.url, METRICS_PORT: '0', LOG_LEVEL: 'silent' },
    handleSignals: false,
  });
  const gw = await startTestGateway(node.url, { GATEWAY_CONFIRM_TIMEOUT_MS: '1500' });
  try {
    await eventually(
      async () => (await post(gw, `/v1/${name}?wait=true`, '{}')).status === 200,
      15_000,
      'a call answered before the alarm',
    );
    const before = runs;
    await alarm(true);
    const held = await post(gw, `/v1/${name}?wait=true&timeoutMs=1000`, '{}');
    // No reply in 1 s (504) or no confirm (503): either way the caller has its answer.
    expect([503, 504]).toContain(held.status);
    await alarm(false);
    const expired = async () =>
      (await svc.registry.getSingleMetric('mq_consumer_expired_calls_total')?.get())?.values[0]
        ?.value ?? 0;
    await eventually(async () => (await expired()) === 1, 15_000, 'the late call dropped');
    expect(runs).toBe(before);
    // Calls after the alarm run as usual.
    expect((await post(gw, `/v1/${name}?wait=true`, '{}')).status).toBe(200);
    expect(runs).toBe(before + 1);
  } finally {
    await alarm(false);
    await gw.stop();
    await svc.stop();
  }
});
