// ConfirmedChannel's bookkeeping against a small fake of an amqplib confirm channel: outcomes per
// publish, one timer for all confirm deadlines, message ids only where a return must be matched.
import { EventEmitter } from 'node:events';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { ConfirmChannel } from 'amqplib';
import { ConfirmedChannel, copyPublishOptions, type PublishOptions } from './confirm';
import { PublishNackedError, PublishTimeoutError, UnroutableError } from './errors';

type ConfirmCallback = (err: unknown) => void;

class FakeConfirmChannel extends EventEmitter {
  readonly published: {
    routingKey: string;
    options: Record<string, unknown>;
    confirm: ConfirmCallback;
  }[] = [];

  publish(
    _exchange: string,
    routingKey: string,
    _body: Buffer,
    options: Record<string, unknown>,
    confirm: ConfirmCallback,
  ): boolean {
    this.published.push({ routingKey, options, confirm });
    return true;
  }

  /** The broker's basic.return for the n-th publish (sent before its ack, as RabbitMQ does). */
  returnMessage(n: number): void {
    const p = this.published[n];
    if (!p) throw new Error(`no publish ${n}`);
    this.emit('return', { fields: { routingKey: p.routingKey }, properties: p.options });
  }
}

function setup(timeoutMs = 1000) {
  const fake = new FakeConfirmChannel();
  const channel = new ConfirmedChannel(fake as unknown as ConfirmChannel, timeoutMs);
  return { fake, channel };
}

afterEach(() => {
  jest.useRealTimers();
});

test('ack resolves, nack rejects PUBLISH_NACKED, return + ack rejects UNROUTABLE', async () => {
  const { fake, channel } = setup();
  const a = channel.publish('', 'q', Buffer.from('a'));
  const b = channel.publish('', 'q', Buffer.from('b'));
  const c = channel.publish('', 'q', Buffer.from('c'));
  fake.published[0]?.confirm(null);
  fake.published[1]?.confirm(new Error('message nacked'));
  fake.returnMessage(2);
  fake.published[2]?.confirm(null);
  await expect(a).resolves.toBeUndefined();
  await expect(b).rejects.toBeInstanceOf(PublishNackedError);
  await expect(c).rejects.toBeInstanceOf(UnroutableError);
  expect(channel.unconfirmed).toBe(0);
});

test('a mandatory publish gets a message id (to match its return); a non-mandatory one without an id gets none', () => {
  const { fake, channel } = setup();
  void channel.publish('', 'q', Buffer.from('m')).catch(() => undefined);
  void channel.publish('', 'reply', Buffer.from('r'), { mandatory: false }).catch(() => undefined);
  const given = { mandatory: false, messageId: 'mine' };
  void channel.publish('', 'reply', Buffer.from('r'), given).catch(() => undefined);
  expect(fake.published[0]?.options.messageId).toMatch(/^[0-9a-f-]{36}$/);
  expect(fake.published[0]?.options.mandatory).toBe(true);
  expect(fake.published[1]?.options.messageId).toBeUndefined();
  // Nothing to fill in: the caller's options are passed as they are (no copy).
  expect(fake.published[2]?.options).toBe(given);
});

test('publishes without a confirm time out at their own deadline, with one timer for all of them', async () => {
  jest.useFakeTimers({ now: 0 });
  const { fake, channel } = setup(1000);
  const first = channel.publish('', 'q', Buffer.from('1'));
  jest.advanceTimersByTime(400);
  const second = channel.publish('', 'q', Buffer.from('2'));
  const third = channel.publish('', 'q', Buffer.from('3'));
  // One timer however many publishes wait.
  expect(jest.getTimerCount()).toBe(1);
  fake.published[2]?.confirm(null); // the third is confirmed, out of order
  const outcomes: string[] = [];
  first.catch((e: Error) => outcomes.push(`first ${e.constructor.name}`));
  second.catch((e: Error) => outcomes.push(`second ${e.constructor.name}`));
  jest.advanceTimersByTime(600); // t=1000: the first's deadline
  await Promise.resolve();
  expect(outcomes).toEqual(['first PublishTimeoutError']);
  expect(channel.unconfirmed).toBe(1);
  jest.advanceTimersByTime(399); // t=1399: the second is still within its time
  await Promise.resolve();
  expect(outcomes).toHaveLength(1);
  jest.advanceTimersByTime(1); // t=1400
  await Promise.resolve();
  expect(outcomes).toEqual(['first PublishTimeoutError', 'second PublishTimeoutError']);
  await expect(third).resolves.toBeUndefined();
  // A confirm after the timeout changes nothing.
  fake.published[0]?.confirm(null);
  await expect(first).rejects.toBeInstanceOf(PublishTimeoutError);
  expect(channel.unconfirmed).toBe(0);
  expect(jest.getTimerCount()).toBe(0);
});

test('confirmed publishes leave the queue as their confirms come: memory stays flat under load', async () => {
  const { fake, channel } = setup();
  for (let i = 0; i < 5000; i++) {
    const p = channel.publish('', 'q', Buffer.from(String(i)));
    fake.published[i]?.confirm(null);
    await p;
  }
  expect(channel.unconfirmed).toBe(0);
  expect((channel as unknown as { waiting: unknown[] }).waiting.length).toBe(0);
});

test('a confirmed publish leaves the channel at once, also when the queue never empties (nothing kept for V8 to promote)', async () => {
  // Under load a newer publish always waits, so the queue never empties. Confirmed entries used to
  // stay in it until a compaction (every ~1 000), keeping their promise and the request behind it
  // alive long enough for V8 to copy them into its old generation.
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const { fake, channel } = setup();
  const refs: WeakRef<Promise<void>>[] = [];
  let previous = channel.publish('', 'q', Buffer.from('0'));
  for (let i = 1; i <= 3000; i++) {
    const next = channel.publish('', 'q', Buffer.from(String(i)));
    const sent = fake.published[i - 1];
    if (!sent) throw new Error(`publish ${i - 1} did not reach the channel`);
    sent.confirm(null);
    // amqplib drops a confirm callback once it has called it; so does this fake.
    sent.confirm = () => undefined;
    refs.push(new WeakRef(previous));
    await previous;
    previous = next;
  }
  expect(channel.unconfirmed).toBe(1);
  await new Promise((r) => setImmediate(r));
  gc();
  expect(refs.filter((r) => r.deref() !== undefined)).toHaveLength(0);
  // The one still waiting gets its outcome.
  fake.published[3000]?.confirm(null);
  await expect(previous).resolves.toBeUndefined();
  expect(channel.unconfirmed).toBe(0);
});

test('a publish that timed out tells later what became of it: confirmed, refused or lost', async () => {
  jest.useFakeTimers();
  const { fake, channel } = setup(1000);
  const acked = channel.publish('', 'q', Buffer.from('a'));
  const nacked = channel.publish('', 'q', Buffer.from('b'));
  const returned = channel.publish('', 'q', Buffer.from('c'));
  const closed = channel.publish('', 'q', Buffer.from('d'));
  jest.advanceTimersByTime(1000);
  const timedOut = (await Promise.allSettled([acked, nacked, returned, closed])).map((r) =>
    r.status === 'rejected' ? (r.reason as PublishTimeoutError) : undefined,
  );
  for (const e of timedOut) expect(e).toBeInstanceOf(PublishTimeoutError);
  fake.published[0]?.confirm(null);
  fake.published[1]?.confirm(new Error('message nacked'));
  fake.returnMessage(2);
  fake.published[2]?.confirm(null);
  fake.published[3]?.confirm(new Error('channel closed'));
  await expect(Promise.all(timedOut.map((e) => e?.late))).resolves.toEqual([
    'confirmed',
    'refused',
    'refused',
    'lost',
  ]);
});

test('copyPublishOptions keeps every field amqplib publishes, in one shape whatever the input', () => {
  const full: PublishOptions = {
    mandatory: true,
    persistent: true,
    deliveryMode: 2,
    expiration: '5000',
    userId: 'gateway',
    CC: ['a'],
    BCC: 'b',
    contentType: 'application/json',
    contentEncoding: 'gzip',
    headers: { 'x-request-id': 'r1' },
    priority: 3,
    correlationId: 'c1',
    replyTo: 'amq.rabbitmq.reply-to',
    messageId: 'm1',
    timestamp: 1700000000,
    type: 'greet',
    appId: 'warren-gateway',
  };
  // amqplib's own mapping of options to method fields and properties: the copy must give the same.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { publish } = require(
    path.join(path.dirname(require.resolve('amqplib')), 'lib', 'api_args.js'),
  ) as {
    publish: (exchange: string, routingKey: string, options: object) => Record<string, unknown>;
  };
  const fields = (o: object) => {
    const f = publish('', 'q', o);
    return { ...f, headers: { ...(f.headers as object) } }; // amqplib layers headers over the given ones
  };
  expect(fields(copyPublishOptions(full))).toEqual(fields(full));
  expect(copyPublishOptions(full)).toEqual(full);
  // Extra fields (an RPC call's timeoutMs) stay out; inputs of other shapes give the same key order.
  const small = copyPublishOptions({ contentType: 'text/plain', timeoutMs: 5 } as PublishOptions);
  expect(small).not.toHaveProperty('timeoutMs');
  expect(Object.keys(small)).toEqual(Object.keys(copyPublishOptions(full)));
  expect(Object.keys(small).sort()).toEqual(Object.keys(full).sort());
});
