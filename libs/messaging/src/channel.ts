// ManagedChannel: one amqplib channel kept usable across losses — setups re-run and consumers re-registered on every (re)open, one reopen policy, flow control on publish.
import { EventEmitter } from 'node:events';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import type { Logger } from '@warren/observability';
import type { Attachment, BrokerState } from './broker';
import { ConfirmedChannel, type PublishOptions } from './confirm';
import { BrokerBusyError, BrokerUnavailableError, ClosedError } from './errors';

/** Runs on every newly opened channel, in registration order, before it counts as open. */
export type ChannelSetup = (channel: Channel) => Promise<void>;

/** The channel a delivery came from, and whether it is still open: its acks go there or nowhere. */
export interface ChannelLink {
  readonly channel: Channel;
  readonly open: boolean;
}

export type ConsumeHandler = (msg: ConsumeMessage, link: ChannelLink) => void;

/** What a ManagedChannel needs from its connection supervisor (Broker; a fake in unit tests). */
export interface ChannelHost {
  readonly state: BrokerState;
  readonly isBlocked: boolean;
  connection(): ChannelModel;
  add(attachment: Attachment): Promise<void>;
  remove(attachment: Attachment): void;
  on(event: 'blocked', listener: (reason: string) => void): unknown;
  off(event: 'blocked', listener: (reason: string) => void): unknown;
  on(event: 'unblocked', listener: () => void): unknown;
  off(event: 'unblocked', listener: () => void): unknown;
}

export interface ManagedChannelOptions {
  /** Used in logs. */
  name: string;
  logger: Logger;
  /** A confirm channel: `publish()` resolves on the broker's confirm. Default false. */
  confirm?: boolean;
  /** First setup (more with addSetup). */
  setup?: ChannelSetup;
  /** Bound on the wait for a broker confirm (confirm channels). Default 10 s. */
  confirmTimeoutMs?: number;
  /**
   * Longest wait of a publish for room: amqplib's buffer below its high-water mark again
   * (`drain`), or the channel reopened after the broker closed it. Default 1000 ms.
   */
  flowTimeoutMs?: number;
  /** Most publishes waiting for room at once; past it a publish fails at once. Default 10 000. */
  maxWaiting?: number;
  /** Most body bytes waiting for room at once; past it a publish fails at once. Default 16 MiB. */
  maxWaitingBytes?: number;
  /** amqplib's write buffer for this channel, in frames: publish() returns false past it. */
  highWaterMark?: number;
  /** Reopen backoff after failed attempts: first delay, doubled up to the max. Default 100 / 5000 ms. */
  reopenDelayMs?: number;
  maxReopenDelayMs?: number;
  /** Channel-close codes that are expected answers (e.g. 404 for passive declares): logged at debug. */
  quietCloseCodes?: readonly number[];
}

/**
 * `idle` before start(); `opening` while an open runs or a reopen waits (connection up);
 * `disconnected` while the connection is down (the Broker re-attaches on reconnect); `closed` by
 * its owner.
 */
export type ManagedChannelState = 'idle' | 'opening' | 'open' | 'disconnected' | 'closed';

export interface ManagedChannelEvents {
  /** Opened, setups done, consumers registered: after every (re)open. */
  open: [];
  /** The open channel went away (closed by the broker, a consumer cancelled, the connection lost). Not emitted by close(). */
  lost: [reason: Error];
  /** The broker cancelled the consumer of `queue` (its queue deleted): the channel is reopened, re-running setups. */
  cancelled: [queue: string];
  /** A reopen on a live connection failed; the next attempt comes after `delayMs`. */
  'reopen-failed': [err: Error, delayMs: number];
}

interface ConsumerSpec {
  readonly queue: string;
  readonly onMessage: ConsumeHandler;
  readonly options: Options.Consume;
  /** Server-assigned tag on the current channel, undefined when not consuming. */
  tag: string | undefined;
}

/** A channel this object opened; `open` turns false for good when it closes or is superseded. */
interface Link extends ChannelLink {
  open: boolean;
  readonly confirmed: ConfirmedChannel | undefined;
}

/** A publish waiting for room: never handed to amqplib unless room comes within the bound. */
interface Waiter {
  readonly exchange: string;
  readonly routingKey: string;
  readonly body: Buffer;
  readonly options: PublishOptions | undefined;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

const noop = (): void => undefined;

/**
 * One amqplib channel under supervision, in the spirit of amqp-connection-manager's ChannelWrapper
 * but failing fast instead of buffering while disconnected:
 *
 * - Setups (declares, prefetch, bindings) run on every open, in order, then consumers are
 *   registered again; only then is the channel `open`. The Broker attaches it inside amqplib's
 *   recovery, so a connection counts as up only once its channels are.
 * - One reopen policy: a channel the broker closes (or whose consumer it cancels) on a live
 *   connection is reopened at once, then after 100 ms, 200 ms, … up to 5 s while attempts fail;
 *   after a connection loss it waits for the Broker's re-attach.
 * - Flow control: a message is handed to amqplib only when amqplib can take it without queueing
 *   it behind a full buffer — channel open, connection not blocked by a resource alarm, and the
 *   last `publish()` returned true (or `drain` came since). Otherwise the publish waits in this
 *   object's bounded list for at most `flowTimeoutMs` and then fails with BROKER_BUSY; a blocked
 *   connection fails it at once; a lost connection fails it at once with BROKER_UNAVAILABLE. A
 *   publish that failed before it was handed over is never sent. A publish that was handed over
 *   cannot be recalled (it is in amqplib's buffer, the socket or the broker): its confirm timeout
 *   (PUBLISH_TIMEOUT) means "outcome unknown".
 */
export class ManagedChannel extends EventEmitter<ManagedChannelEvents> implements Attachment {
  readonly name: string;
  private _state: ManagedChannelState = 'idle';
  private link: Link | undefined;
  /** Bumped by every open and loss: an open that finds it changed was superseded. */
  private generation = 0;
  /** Consecutive failed reopens (backoff). */
  private failures = 0;
  /** Opens under way (a reopen does not start while the host's re-attach opens). */
  private opening = 0;
  private reopenTimer: NodeJS.Timeout | undefined;
  private readonly setups: ChannelSetup[] = [];
  private readonly consumers: ConsumerSpec[] = [];
  private readonly waiting: Waiter[] = [];
  private waitingBytes = 0;
  private readonly openWaiters = new Set<() => void>();
  private readonly flowTimeoutMs: number;
  private readonly maxWaiting: number;
  private readonly maxWaitingBytes: number;

  constructor(
    private readonly host: ChannelHost,
    private readonly options: ManagedChannelOptions,
  ) {
    super();
    this.name = options.name;
    if (options.setup) this.setups.push(options.setup);
    this.flowTimeoutMs = options.flowTimeoutMs ?? 1000;
    this.maxWaiting = options.maxWaiting ?? 10_000;
    this.maxWaitingBytes = options.maxWaitingBytes ?? 16 * 1024 * 1024;
  }

  get state(): ManagedChannelState {
    return this._state;
  }

  /** Open on a connected connection (it may still be blocked by a resource alarm). */
  get isOpen(): boolean {
    return this._state === 'open' && this.host.state === 'connected';
  }

  /** Open, and every registered consumer is consuming. */
  get isConsuming(): boolean {
    return this.isOpen && this.consumers.length > 0 && this.consumers.every((c) => c.tag);
  }

  /** The open amqplib channel, if any (for acks and one-off operations). */
  get channel(): Channel | undefined {
    return this.link?.channel;
  }

  /** Publishes waiting for room (flow control). */
  get waitingCount(): number {
    return this.waiting.length;
  }

  /** Registers with the host; opens at once when it is connected. Rejects when that open fails. */
  async start(): Promise<void> {
    if (this._state !== 'idle') return;
    this._state = this.host.state === 'connected' ? 'opening' : 'disconnected';
    this.host.on('blocked', this.onBlocked);
    this.host.on('unblocked', this.pump);
    try {
      await this.host.add(this);
    } catch (err) {
      this.stop();
      throw err;
    }
  }

  /**
   * Adds a setup, run on every open from now on; when the channel is open it runs at once on it
   * (and its failure rejects, leaving it registered).
   */
  async addSetup(setup: ChannelSetup): Promise<void> {
    this.setups.push(setup);
    const link = this.link;
    if (link) await setup(link.channel);
  }

  removeSetup(setup: ChannelSetup): void {
    const i = this.setups.indexOf(setup);
    if (i >= 0) this.setups.splice(i, 1);
  }

  /**
   * Registers a consumer, consumed again on every open. When the channel is open it consumes at
   * once; otherwise on the next open.
   */
  async consume(
    queue: string,
    onMessage: ConsumeHandler,
    options: Options.Consume = {},
  ): Promise<void> {
    const spec: ConsumerSpec = { queue, onMessage, options, tag: undefined };
    this.consumers.push(spec);
    const link = this.link;
    if (link) await this.startConsumer(spec, link);
  }

  /** Stops every consumer (basic.cancel) and forgets them; the channel stays open so acks still go out. */
  async cancelConsumers(): Promise<void> {
    const specs = this.consumers.splice(0);
    const link = this.link;
    for (const spec of specs) {
      const tag = spec.tag;
      spec.tag = undefined;
      if (link && tag) await link.channel.cancel(tag).catch(noop);
    }
  }

  /**
   * The open channel; while the connection is up and the channel (re)opening, waits for it up to
   * `timeoutMs` (default flowTimeoutMs). Rejects at once when disconnected or closed.
   */
  whenOpen(timeoutMs = this.flowTimeoutMs): Promise<Channel> {
    const link = this.link;
    if (link) return Promise.resolve(link.channel);
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    return new Promise<Channel>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.openWaiters.delete(done);
        const now = this.link;
        if (now) resolve(now.channel);
        else reject(this.refusal() ?? new BrokerUnavailableError(`${this.name}: channel not open`));
      };
      const timer = setTimeout(done, timeoutMs);
      this.openWaiters.add(done);
    });
  }

  /**
   * Confirmed publish (confirm channels only), with flow control: see the class comment. `exchange`
   * '' is the default exchange (routing key = queue name).
   */
  publish(
    exchange: string,
    routingKey: string,
    body: Buffer,
    options?: PublishOptions,
  ): Promise<void> {
    const confirmed = this.link?.confirmed;
    // The fast path: room now and nobody waiting before this one.
    if (confirmed?.writable && this.waiting.length === 0 && !this.host.isBlocked)
      return confirmed.publish(exchange, routingKey, body, options);
    if (!this.options.confirm)
      return Promise.reject(new TypeError(`${this.name}: publish needs a confirm channel`));
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    if (this.host.isBlocked)
      return Promise.reject(
        new BrokerBusyError(`${this.name}: the broker blocked publishing (resource alarm)`),
      );
    if (
      this.waiting.length >= this.maxWaiting ||
      this.waitingBytes + body.length > this.maxWaitingBytes
    )
      return Promise.reject(
        new BrokerBusyError(`${this.name}: too many publishes already waiting for room`),
      );
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        exchange,
        routingKey,
        body,
        options,
        resolve,
        reject,
        timer: setTimeout(() => this.expire(waiter), this.flowTimeoutMs),
      };
      this.waiting.push(waiter);
      this.waitingBytes += body.length;
    });
  }

  /** Closes for good: rejects waiting publishes, closes the channel (pending confirms fail). */
  async close(): Promise<void> {
    if (this._state === 'closed') return;
    const link = this.link;
    this.stop();
    if (link) await link.channel.close().catch(noop);
  }

  // --- Attachment (called by the host) ---

  /** Opens on a new connection (inside amqplib's recovery): throws when a setup or consume fails. */
  async attach(connection: ChannelModel): Promise<void> {
    if (this._state === 'closed') return;
    this.cancelReopen();
    if (this.link) this.lose(new Error('re-attached to a new connection'));
    this._state = 'opening';
    await this.open(connection);
  }

  /** The connection is gone: everything waiting fails at once; the host re-attaches on reconnect. */
  detach(reason: Error): void {
    if (this._state === 'closed') return;
    this.cancelReopen();
    this.lose(reason);
    this._state = 'disconnected';
    this.failWaiting(
      new BrokerUnavailableError(`${this.name}: connection lost: ${reason.message}`, {
        cause: reason,
      }),
    );
    this.wakeOpenWaiters();
  }

  // --- internals ---

  /** Why a publish or whenOpen cannot wait for the channel now, or undefined when it can. */
  private refusal(): Error | undefined {
    if (this._state === 'closed') return new ClosedError(`${this.name} closed`);
    if (this._state === 'idle' || this._state === 'disconnected' || this.host.state !== 'connected')
      return new BrokerUnavailableError(`${this.name}: not connected to the broker`);
    return undefined;
  }

  private async open(connection: ChannelModel): Promise<void> {
    this.opening++;
    try {
      await this.openChannel(connection);
    } finally {
      this.opening--;
    }
  }

  private async openChannel(connection: ChannelModel): Promise<void> {
    const generation = ++this.generation;
    const { confirm, highWaterMark, logger } = this.options;
    const channelOptions = highWaterMark === undefined ? undefined : { highWaterMark };
    const channel = confirm
      ? await connection.createConfirmChannel(channelOptions)
      : await connection.createChannel(channelOptions);
    const confirmed = confirm
      ? new ConfirmedChannel(channel as ConfirmChannel, this.options.confirmTimeoutMs ?? 10_000)
      : undefined;
    const link: Link = { channel, open: true, confirmed };
    let closeError: (Error & { code?: unknown }) | undefined;
    channel.on('error', (err: Error & { code?: unknown }) => {
      closeError = err;
    });
    channel.on('close', () => {
      link.open = false;
      this.onChannelClose(link, closeError);
    });
    if (confirmed) channel.on('drain', this.pump);
    try {
      if (generation !== this.generation) throw new Error('superseded');
      // Indexed loops over the live lists: a setup or consumer added meanwhile runs too.
      for (let i = 0; i < this.setups.length; i++) await (this.setups[i] as ChannelSetup)(channel);
      for (let i = 0; i < this.consumers.length; i++)
        await this.startConsumer(this.consumers[i] as ConsumerSpec, link);
      if (generation !== this.generation) throw new Error('superseded');
    } catch (err) {
      link.open = false;
      await channel.close().catch(noop);
      if (generation !== this.generation) return;
      throw err;
    }
    this.link = link;
    this._state = 'open';
    this.failures = 0;
    logger.debug({ channel: this.name }, 'channel open');
    this.emit('open');
    this.wakeOpenWaiters();
    this.pump();
  }

  private async startConsumer(spec: ConsumerSpec, link: Link): Promise<void> {
    const { consumerTag } = await link.channel.consume(
      spec.queue,
      (msg) => {
        if (msg === null) this.onCancelled(spec, link);
        else spec.onMessage(msg, link);
      },
      spec.options,
    );
    spec.tag = consumerTag;
  }

  private onChannelClose(link: Link, err: (Error & { code?: unknown }) | undefined): void {
    if (this.link !== link) return;
    if (err) {
      const quiet =
        typeof err.code === 'number' && this.options.quietCloseCodes?.includes(err.code) === true;
      this.options.logger[quiet ? 'debug' : 'warn'](
        { channel: this.name, err: { message: err.message, code: err.code } },
        'channel closed by the broker; reopening',
      );
    }
    this.lose(err ?? new Error('channel closed'));
    this._state = 'opening';
    // Without an error it is the connection closing: its loss (detach) follows in this same turn.
    setImmediate(() => this.scheduleReopen());
  }

  private onCancelled(spec: ConsumerSpec, link: Link): void {
    if (this.link !== link) return;
    spec.tag = undefined;
    this.options.logger.warn(
      { channel: this.name, queue: spec.queue },
      'consumer cancelled by the broker (queue deleted?); reopening, which declares and consumes again',
    );
    this.emit('cancelled', spec.queue);
    this.lose(new BrokerUnavailableError(`consumer of "${spec.queue}" cancelled by the broker`));
    this._state = 'opening';
    link.channel.close().catch(noop);
    this.scheduleReopen();
  }

  /** Forgets the open channel (if any) and tells listeners. */
  private lose(reason: Error): void {
    this.generation++;
    const link = this.link;
    if (!link) return;
    this.link = undefined;
    link.open = false;
    for (const spec of this.consumers) spec.tag = undefined;
    this.emit('lost', reason);
  }

  /** 0 after a loss, then 100 ms, 200 ms, … up to 5 s (defaults) while attempts fail. */
  private reopenDelay(): number {
    if (this.failures === 0) return 0;
    const base = this.options.reopenDelayMs ?? 100;
    return Math.min(this.options.maxReopenDelayMs ?? 5000, base * 2 ** (this.failures - 1));
  }

  private scheduleReopen(): void {
    if (this._state !== 'opening' || this.link || this.reopenTimer) return;
    const delay = this.reopenDelay();
    this.reopenTimer = setTimeout(() => {
      this.reopenTimer = undefined;
      this.reopen();
    }, delay);
  }

  private reopen(): void {
    if (this._state !== 'opening' || this.link || this.opening > 0) return;
    if (this.host.state !== 'connected') return;
    let connection: ChannelModel;
    try {
      connection = this.host.connection();
    } catch {
      return; // the connection is going: detach follows
    }
    this.open(connection).then(
      () => {
        if (this.link) this.options.logger.info({ channel: this.name }, 'channel reopened');
      },
      (err: unknown) => {
        if (this._state !== 'opening' || this.link || this.opening > 0) return;
        this.failures++;
        const error = err instanceof Error ? err : new Error(String(err));
        const next = this.reopenDelay();
        this.options.logger.warn(
          { channel: this.name, err: { message: error.message }, retryInMs: next },
          'cannot reopen channel; retrying',
        );
        this.emit('reopen-failed', error, next);
        this.scheduleReopen();
      },
    );
  }

  private cancelReopen(): void {
    clearTimeout(this.reopenTimer);
    this.reopenTimer = undefined;
  }

  /** Hands waiting publishes to amqplib, in order, while it has room. */
  private readonly pump = (): void => {
    while (this.waiting.length > 0) {
      const confirmed = this.link?.confirmed;
      if (!confirmed?.writable || this.host.isBlocked) return;
      const w = this.waiting.shift() as Waiter;
      clearTimeout(w.timer);
      this.waitingBytes -= w.body.length;
      confirmed.publish(w.exchange, w.routingKey, w.body, w.options).then(w.resolve, w.reject);
    }
  };

  private expire(waiter: Waiter): void {
    const i = this.waiting.indexOf(waiter);
    if (i < 0) return;
    this.waiting.splice(i, 1);
    this.waitingBytes -= waiter.body.length;
    waiter.reject(
      this.link
        ? new BrokerBusyError(
            `${this.name}: no room to publish within ${this.flowTimeoutMs} ms (flow control); not sent`,
          )
        : new BrokerUnavailableError(
            `${this.name}: channel not reopened within ${this.flowTimeoutMs} ms; not sent`,
          ),
    );
  }

  /** A resource alarm blocks the connection: nothing waits for it to end. */
  private readonly onBlocked = (): void => {
    this.failWaiting(
      new BrokerBusyError(`${this.name}: the broker blocked publishing (resource alarm); not sent`),
    );
  };

  private failWaiting(err: Error): void {
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.waitingBytes = 0;
  }

  private wakeOpenWaiters(): void {
    for (const done of [...this.openWaiters]) done();
  }

  private stop(): void {
    this._state = 'closed';
    this.cancelReopen();
    this.generation++;
    this.host.remove(this);
    this.host.off('blocked', this.onBlocked);
    this.host.off('unblocked', this.pump);
    const link = this.link;
    this.link = undefined;
    if (link) link.open = false;
    for (const spec of this.consumers) spec.tag = undefined;
    this.failWaiting(new ClosedError(`${this.name} closed`));
    this.wakeOpenWaiters();
  }
}
