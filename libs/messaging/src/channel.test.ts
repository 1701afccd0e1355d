// ManagedChannel's decisions against small fakes of amqplib (channel, connection) and of the Broker.
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { createLogger } from '@warren/observability';
import type { Attachment, BrokerState } from './broker';
import { ManagedChannel, type ChannelLink, type ManagedChannelOptions } from './channel';
import {
  BrokerBusyError,
  BrokerUnavailableError,
  ClosedError,
  PublishTimeoutError,
} from './errors';

type ConfirmCallback = (err: unknown) => void;

interface Published {
  routingKey: string;
  body: string;
  confirm: ConfirmCallback;
}

/** The parts of an amqplib (confirm) channel ManagedChannel uses; `room` is what publish() returns. */
class FakeChannel extends EventEmitter {
  room = true;
  closed = false;
  readonly published: Published[] = [];
  readonly consumers = new Map<string, (msg: ConsumeMessage | null) => void>();
  readonly cancelled: string[] = [];
  private tags = 0;

  constructor(readonly id: number) {
    super();
  }

  publish(
    _exchange: string,
    routingKey: string,
    body: Buffer,
    _options: unknown,
    confirm: ConfirmCallback,
  ): boolean {
    if (this.closed) throw new Error('Channel closed');
    this.published.push({ routingKey, body: body.toString(), confirm });
    return this.room;
  }

  consume(queue: string, cb: (msg: ConsumeMessage | null) => void) {
    const consumerTag = `${queue}#${this.id}.${++this.tags}`;
    this.consumers.set(consumerTag, cb);
    return Promise.resolve({ consumerTag });
  }

  cancel(tag: string) {
    this.cancelled.push(tag);
    this.consumers.delete(tag);
    return Promise.resolve({ consumerTag: tag });
  }

  close(): Promise<void> {
    this.shut();
    return Promise.resolve();
  }

  /** The broker closes the channel with an error (e.g. 404 NOT_FOUND). */
  brokerClose(code: number): void {
    this.emit('error', Object.assign(new Error(`Channel closed by server: ${code}`), { code }));
    this.shut();
  }

  /** amqplib's buffer went below its high-water mark again. */
  drain(): void {
    this.room = true;
    this.emit('drain');
  }

  /** The broker cancels every consumer (e.g. its queue was deleted). */
  cancelAll(): void {
    for (const cb of this.consumers.values()) cb(null);
  }

  shut(): void {
    if (this.closed) return;
    this.closed = true;
    // As amqplib does: unconfirmed publishes fail when the channel closes.
    for (const p of this.published) p.confirm(new Error('channel closed'));
    this.emit('close');
  }
}

/** A Broker stand-in: a connection that can be lost and regained, blocked and unblocked. */
class FakeHost extends EventEmitter {
  state: BrokerState = 'connected';
  isBlocked = false;
  readonly channels: FakeChannel[] = [];
  /** Fail the next N channel opens (createChannel rejects). */
  failOpens = 0;
  private readonly attachments = new Set<Attachment>();

  readonly model = {
    createChannel: () => this.openChannel(),
    createConfirmChannel: () => this.openChannel(),
  } as unknown as ChannelModel;

  private openChannel(): Promise<FakeChannel> {
    if (this.state !== 'connected' && this.state !== 'connecting')
      return Promise.reject(new Error('Connection closed'));
    if (this.failOpens > 0) {
      this.failOpens--;
      return Promise.reject(new Error('open refused'));
    }
    const ch = new FakeChannel(this.channels.length + 1);
    this.channels.push(ch);
    return Promise.resolve(ch);
  }

  get last(): FakeChannel {
    const ch = this.channels[this.channels.length - 1];
    if (!ch) throw new Error('no channel opened');
    return ch;
  }

  connection(): ChannelModel {
    if (this.state !== 'connected') throw new BrokerUnavailableError('not connected');
    return this.model;
  }

  async add(a: Attachment): Promise<void> {
    this.attachments.add(a);
    if (this.state === 'connected') await a.attach(this.model);
  }

  remove(a: Attachment): void {
    this.attachments.delete(a);
  }

  /** As amqplib + Broker do on a connection loss: channels close (no error), then detach. */
  drop(): void {
    for (const ch of this.channels) ch.shut();
    this.state = 'disconnected';
    for (const a of this.attachments) a.detach(new Error('socket closed'));
  }

  async reconnect(): Promise<void> {
    this.state = 'connecting';
    for (const a of this.attachments) await a.attach(this.model);
    this.state = 'connected';
  }

  block(): void {
    this.isBlocked = true;
    this.emit('blocked', 'low on memory');
  }

  unblock(): void {
    this.isBlocked = false;
    this.emit('unblocked');
  }
}

const silent = createLogger({
  service: 'test',
  level: 'silent',
  destination: new Writable({ write: (_c, _e, cb) => cb() }),
});

const created: ManagedChannel[] = [];

function managed(host: FakeHost, options: Partial<ManagedChannelOptions> = {}): ManagedChannel {
  const ch = new ManagedChannel(host, { name: 'test', logger: silent, confirm: true, ...options });
  created.push(ch);
  return ch;
}

const msg = (body: string) => ({ content: Buffer.from(body) }) as unknown as ConsumeMessage;

/** Lets immediates, zero timers and promise chains run (real timers) until `done` holds. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 50 && !done(); i++) await new Promise((r) => setTimeout(r, 0));
  expect(done()).toBe(true);
}

/** A few turns of the event loop (for asserting that something did not happen). */
async function turns(n = 10): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 0));
}

/** A promise's outcome so far: 'pending', 'resolved' or the rejection. */
function track(p: Promise<unknown>): { state: () => 'pending' | 'resolved' | unknown } {
  let outcome: unknown = 'pending';
  p.then(
    () => (outcome = 'resolved'),
    (err: unknown) => (outcome = err),
  );
  return { state: () => outcome };
}

afterEach(async () => {
  jest.useRealTimers();
  for (const ch of created.splice(0)) await ch.close();
});

describe('opening', () => {
  it('runs setups in order and registers consumers before it counts as open, again on every open', async () => {
    const host = new FakeHost();
    const calls: string[] = [];
    const ch = managed(host, { confirm: false, setup: async () => void calls.push('declare') });
    await ch.addSetup(async () => void calls.push('prefetch'));
    ch.on('open', () => calls.push('open'));
    await ch.consume('q', () => undefined);
    await ch.start();
    expect(calls).toEqual(['declare', 'prefetch', 'open']);
    expect(ch.isConsuming).toBe(true);
    expect(host.last.consumers.size).toBe(1);

    host.drop();
    expect(ch.state).toBe('disconnected');
    expect(ch.isConsuming).toBe(false);
    await host.reconnect();
    expect(calls).toEqual(['declare', 'prefetch', 'open', 'declare', 'prefetch', 'open']);
    expect(host.channels).toHaveLength(2);
    expect(host.last.consumers.size).toBe(1);
    expect(ch.isConsuming).toBe(true);
  });

  it('a setup added while open runs at once on the open channel', async () => {
    const host = new FakeHost();
    const ch = managed(host);
    await ch.start();
    const seen: Channel[] = [];
    await ch.addSetup(async (c) => void seen.push(c));
    expect(seen).toEqual([host.last]);
  });

  it('start() rejects when the first open fails, and the host forgets it', async () => {
    const host = new FakeHost();
    const ch = managed(host, {
      setup: () => Promise.reject(new Error('PRECONDITION_FAILED')),
    });
    await expect(ch.start()).rejects.toThrow('PRECONDITION_FAILED');
    expect(ch.state).toBe('closed');
    expect(host.last.closed).toBe(true);
  });
});

describe('reopening (one policy)', () => {
  it('a channel the broker closes on a live connection is reopened at once, setups re-run', async () => {
    const host = new FakeHost();
    let setups = 0;
    const ch = managed(host, { setup: async () => void setups++ });
    const lost: Error[] = [];
    ch.on('lost', (e) => lost.push(e));
    await ch.start();
    host.last.brokerClose(404);
    expect(ch.state).toBe('opening');
    expect(lost).toHaveLength(1);
    await until(() => ch.state === 'open');
    expect(host.channels).toHaveLength(2);
    expect(setups).toBe(2);
  });

  it('failed reopens back off: 0, then 100, 200, 400 ms …', async () => {
    jest.useFakeTimers();
    const host = new FakeHost();
    const ch = managed(host);
    const delays: number[] = [];
    ch.on('reopen-failed', (_e, ms) => delays.push(ms));
    await ch.start();
    host.failOpens = 3;
    host.last.brokerClose(541);
    // The first attempt comes at once (an immediate, then a zero timer).
    await jest.advanceTimersByTimeAsync(1);
    expect(delays).toEqual([100]);
    await jest.advanceTimersByTimeAsync(98);
    expect(delays).toEqual([100]);
    await jest.advanceTimersByTimeAsync(2);
    expect(delays).toEqual([100, 200]);
    await jest.advanceTimersByTimeAsync(200);
    expect(delays).toEqual([100, 200, 400]);
    expect(ch.state).toBe('opening');
    await jest.advanceTimersByTimeAsync(400);
    expect(ch.state).toBe('open');
    // Success resets the backoff: the next loss reopens at once again.
    host.last.brokerClose(404);
    await jest.advanceTimersByTimeAsync(1);
    expect(ch.state).toBe('open');
    expect(delays).toEqual([100, 200, 400]);
  });

  it('a channel closed by its connection going away is not reopened: it waits for the re-attach', async () => {
    const host = new FakeHost();
    const ch = managed(host);
    await ch.start();
    host.drop();
    await turns();
    expect(ch.state).toBe('disconnected');
    expect(host.channels).toHaveLength(1);
  });

  it('a consumer cancelled by the broker: reported, channel reopened, setups (re-declare) and consume run again', async () => {
    const host = new FakeHost();
    const calls: string[] = [];
    const ch = managed(host, { confirm: false, setup: async () => void calls.push('declare') });
    const cancelled: string[] = [];
    ch.on('cancelled', (q) => cancelled.push(q));
    const links: ChannelLink[] = [];
    await ch.consume('jobs', (_m, link) => links.push(link));
    await ch.start();
    host.last.consumers.values().next().value?.(msg('a'));
    host.last.cancelAll();
    expect(cancelled).toEqual(['jobs']);
    expect(ch.isConsuming).toBe(false);
    // The delivery taken before the cancel can no longer be acked on its (closed) channel.
    expect(links[0]?.open).toBe(false);
    await until(() => ch.isConsuming);
    expect(calls).toEqual(['declare', 'declare']);
    expect(ch.isConsuming).toBe(true);
    expect(host.last.consumers.size).toBe(1);
  });

  it('cancelConsumers() stops consuming for good: the channel stays open, reopens do not consume', async () => {
    const host = new FakeHost();
    const ch = managed(host, { confirm: false });
    await ch.consume('jobs', () => undefined);
    await ch.start();
    await ch.cancelConsumers();
    expect(host.last.cancelled).toHaveLength(1);
    expect(ch.isOpen).toBe(true);
    expect(ch.isConsuming).toBe(false);
    host.last.brokerClose(404);
    await until(() => ch.state === 'open' && host.channels.length === 2);
    expect(host.last.consumers.size).toBe(0);
  });
});

describe('publishing', () => {
  it('resolves on the confirm, rejects typed on a confirm timeout', async () => {
    jest.useFakeTimers();
    const host = new FakeHost();
    const ch = managed(host, { confirmTimeoutMs: 500 });
    await ch.start();
    const ok = ch.publish('', 'q', Buffer.from('1'));
    host.last.published[0]?.confirm(null);
    await expect(ok).resolves.toBeUndefined();
    const late = ch.publish('', 'q', Buffer.from('2'));
    const check = expect(late).rejects.toBeInstanceOf(PublishTimeoutError);
    await jest.advanceTimersByTimeAsync(500);
    await check;
  });

  it('fails fast while disconnected and after close, without touching amqplib', async () => {
    const host = new FakeHost();
    const ch = managed(host);
    await ch.start();
    host.drop();
    await expect(ch.publish('', 'q', Buffer.from('x'))).rejects.toBeInstanceOf(
      BrokerUnavailableError,
    );
    await host.reconnect();
    await ch.close();
    await expect(ch.publish('', 'q', Buffer.from('x'))).rejects.toBeInstanceOf(ClosedError);
    expect(host.channels.flatMap((c) => c.published)).toHaveLength(0);
  });

  it('while the channel reopens on a live connection, a publish waits for it and then goes out', async () => {
    const host = new FakeHost();
    const ch = managed(host);
    await ch.start();
    host.last.brokerClose(404);
    const p = ch.publish('', 'q', Buffer.from('after-reopen'));
    await until(() => host.channels.length === 2 && host.last.published.length === 1);
    expect(host.last.published.map((x) => x.body)).toEqual(['after-reopen']);
    host.last.published[0]?.confirm(null);
    await expect(p).resolves.toBeUndefined();
  });
});

describe('flow control', () => {
  it('after publish() returned false nothing is handed over until drain; then in order', async () => {
    const host = new FakeHost();
    const ch = managed(host);
    await ch.start();
    const fake = host.last;
    fake.room = false;
    const first = ch.publish('', 'q', Buffer.from('1'));
    const rest = [ch.publish('', 'q', Buffer.from('2')), ch.publish('', 'q', Buffer.from('3'))];
    expect(fake.published.map((p) => p.body)).toEqual(['1']);
    expect(ch.waitingCount).toBe(2);
    fake.drain();
    expect(fake.published.map((p) => p.body)).toEqual(['1', '2', '3']);
    expect(ch.waitingCount).toBe(0);
    for (const p of fake.published) p.confirm(null);
    await expect(Promise.all([first, ...rest])).resolves.toBeDefined();
  });

  it('a publish that finds no room within the bound fails BROKER_BUSY and is never sent, even after drain', async () => {
    jest.useFakeTimers();
    const host = new FakeHost();
    const ch = managed(host, { flowTimeoutMs: 300 });
    await ch.start();
    const fake = host.last;
    fake.room = false;
    void ch.publish('', 'q', Buffer.from('handed-over')).catch(() => undefined);
    const waiting = ch.publish('', 'q', Buffer.from('waits'));
    const check = expect(waiting).rejects.toBeInstanceOf(BrokerBusyError);
    await jest.advanceTimersByTimeAsync(300);
    await check;
    fake.drain();
    expect(fake.published.map((p) => p.body)).toEqual(['handed-over']);
  });

  it('bounds what waits: past maxWaiting or maxWaitingBytes a publish fails at once', async () => {
    const host = new FakeHost();
    const ch = managed(host, { maxWaiting: 2, maxWaitingBytes: 10 });
    await ch.start();
    host.last.room = false;
    void ch.publish('', 'q', Buffer.from('x')).catch(() => undefined);
    const waiting = [1, 2].map(() => track(ch.publish('', 'q', Buffer.from('12345'))));
    const third = ch.publish('', 'q', Buffer.from('y'));
    await expect(third).rejects.toBeInstanceOf(BrokerBusyError);
    expect(ch.waitingCount).toBe(2);
    await turns();
    expect(waiting.map((w) => w.state())).toEqual(['pending', 'pending']);
    await ch.close();
  });

  it('a blocked connection fails publishes at once (waiting ones too) and hands nothing over', async () => {
    const host = new FakeHost();
    const ch = managed(host);
    await ch.start();
    host.last.room = false;
    void ch.publish('', 'q', Buffer.from('first')).catch(() => undefined);
    const waiting = ch.publish('', 'q', Buffer.from('waiting'));
    host.block();
    await expect(waiting).rejects.toBeInstanceOf(BrokerBusyError);
    await expect(ch.publish('', 'q', Buffer.from('blocked'))).rejects.toBeInstanceOf(
      BrokerBusyError,
    );
    host.last.drain();
    expect(host.last.published.map((p) => p.body)).toEqual(['first']);
    host.unblock();
    const ok = ch.publish('', 'q', Buffer.from('after'));
    host.last.published[1]?.confirm(null);
    await expect(ok).resolves.toBeUndefined();
  });

  it('a lost connection fails waiting publishes at once with BROKER_UNAVAILABLE; they are never sent', async () => {
    const host = new FakeHost();
    const ch = managed(host);
    await ch.start();
    host.last.room = false;
    void ch.publish('', 'q', Buffer.from('first')).catch(() => undefined);
    const waiting = ch.publish('', 'q', Buffer.from('waiting'));
    host.drop();
    await expect(waiting).rejects.toBeInstanceOf(BrokerUnavailableError);
    await host.reconnect();
    expect(host.last.published).toHaveLength(0);
  });
});

describe('whenOpen', () => {
  it('waits for a reopen on a live connection, refuses at once when disconnected', async () => {
    const host = new FakeHost();
    const ch = managed(host, { confirm: false });
    await ch.start();
    host.last.brokerClose(404);
    const reopened = await ch.whenOpen(1000);
    expect(host.channels).toHaveLength(2);
    expect(reopened).toBe(host.channels[1]);
    host.drop();
    await expect(ch.whenOpen(1000)).rejects.toBeInstanceOf(BrokerUnavailableError);
  });
});
