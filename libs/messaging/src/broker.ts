// Connection supervisor: amqplib's built-in recovery plus re-attachment of channels after each reconnect.
import { EventEmitter } from 'node:events';
import { connect, type ChannelModel, type Options, type RecoveringChannelModel } from 'amqplib';
import type { Logger } from '@warren/observability';
import { nodeLabel, parseAmqpUrls, safeUrl } from './url';
import { BrokerUnavailableError, ClosedError } from './errors';

/**
 * Something that lives on a connection (in Warren: a ManagedChannel, the one implementation).
 * `attach` runs on every (re)connect before the connection counts as up; `detach` runs when it is
 * lost.
 */
export interface Attachment {
  readonly name: string;
  attach(connection: ChannelModel): Promise<void>;
  detach(reason: Error): void;
}

export interface BrokerOptions {
  /** One AMQP URL, or several comma-separated (cluster nodes): tried in turn, rotated after a loss. */
  url: string;
  logger: Logger;
  /** Shown in the management UI's connection list. */
  connectionName: string;
  /** What this connection is for ('publish', 'consume'): a `connection` field on its log lines. */
  role?: string;
  /** Retries before the first connection succeeds; Infinity waits forever. Default 0 = fail fast. */
  initialRetries?: number;
  /** Called after each successful reconnect (not the first connect). */
  onReconnect?: () => void;
  initialDelayMs?: number;
  /**
   * Longest wait between reconnect attempts (jitter included). Default 2000: after a broker comes
   * back, clients are connected again within about 2 s (tests/reliability, scenario 1, asserts 5 s);
   * an attempt against a node that is down costs a refused TCP connect.
   */
  maxDelayMs?: number;
}

export type BrokerState = 'connecting' | 'connected' | 'disconnected' | 'closed';

export interface BrokerEvents {
  connected: [];
  disconnected: [Error];
  blocked: [string];
  unblocked: [];
}

export class Broker extends EventEmitter<BrokerEvents> {
  private readonly attachments = new Set<Attachment>();
  /** Cluster nodes; `target` is the object amqplib reads on every (re)connect attempt. */
  private readonly nodes: Options.Connect[];
  private readonly target: Options.Connect;
  private nodeIndex = 0;
  private model: RecoveringChannelModel | undefined;
  private current: ChannelModel | undefined;
  private connectedOnce = false;
  private _state: BrokerState = 'connecting';
  private _blocked = false;
  private readonly logger: Logger;

  private constructor(private readonly options: BrokerOptions) {
    super();
    this.logger = options.role
      ? options.logger.child({ connection: options.role })
      : options.logger;
    this.nodes = parseAmqpUrls(options.url);
    if (this.nodes.length === 0) throw new BrokerUnavailableError('no AMQP URL given');
    // Start at a random node so many clients spread over a cluster.
    this.nodeIndex = Math.floor(Math.random() * this.nodes.length);
    this.target = { ...this.nodes[this.nodeIndex] };
  }

  /**
   * The broker user this client connects as: what RabbitMQ checks a message's AMQP `user-id`
   * against, so the user-id a process stamps on its replies and heartbeats.
   */
  get user(): string {
    return this.target.username ?? 'guest';
  }

  /** The node in use (or tried next), as host:port. */
  get node(): string {
    return nodeLabel(this.target);
  }

  /** Points the next connection attempt at the next node of the list. */
  private rotate(): void {
    if (this.nodes.length < 2) return;
    this.nodeIndex = (this.nodeIndex + 1) % this.nodes.length;
    Object.assign(this.target, this.nodes[this.nodeIndex]);
  }

  /** Connects (failing fast with a clear error unless `initialRetries` says otherwise) and keeps reconnecting. */
  static async connect(options: BrokerOptions): Promise<Broker> {
    const broker = new Broker(options);
    await broker.start();
    return broker;
  }

  get state(): BrokerState {
    return this._state;
  }

  /** Connected and not blocked by a broker resource alarm. */
  get isUsable(): boolean {
    return this._state === 'connected' && !this._blocked;
  }

  /** The broker said `connection.blocked` (a memory or disk alarm) and not yet `unblocked`. */
  get isBlocked(): boolean {
    return this._blocked;
  }

  /** The live connection, or a typed error saying why there is none. */
  connection(): ChannelModel {
    if (this._state === 'closed') throw new ClosedError('broker client closed');
    if (!this.current) throw new BrokerUnavailableError('not connected to the broker');
    return this.current;
  }

  /**
   * Registers an attachment; attaches it at once when connected, and again after each reconnect.
   * When that first attach fails it is not kept (a failing setup must not fail every reconnect).
   */
  async add(attachment: Attachment): Promise<void> {
    this.attachments.add(attachment);
    if (!this.current) return;
    try {
      await attachment.attach(this.current);
    } catch (err) {
      this.attachments.delete(attachment);
      throw err;
    }
  }

  remove(attachment: Attachment): void {
    this.attachments.delete(attachment);
  }

  async close(): Promise<void> {
    if (this._state === 'closed') return;
    this._state = 'closed';
    const reason = new ClosedError('broker client closed');
    for (const a of this.attachments) a.detach(reason);
    this.current = undefined;
    await this.model?.close().catch(() => undefined);
  }

  private async start(): Promise<void> {
    const { logger } = this;
    const { url } = this.options;
    // amqplib re-reads this object on every attempt, so rotating its fields moves to another node.
    const model = await connect(this.target, {
      noDelay: true,
      clientProperties: { connection_name: this.options.connectionName },
      recovery: {
        waitForConnect: false,
        initialDelay: this.options.initialDelayMs ?? 100,
        maxDelay: this.options.maxDelayMs ?? 2000,
        factor: 2,
        jitter: 0.3,
        initialMaxRetries: this.options.initialRetries ?? 0,
        maxRetries: Infinity,
        setup: (conn: ChannelModel) => this.setup(conn),
      },
    });
    this.model = model;
    model.on('connect', (conn: ChannelModel) => this.onConnect(conn));
    model.on('disconnect', (err: Error) => this.onDisconnect(err));
    model.on('reconnect-scheduled', ({ attempt, delay }: { attempt: number; delay: number }) =>
      logger.debug({ attempt, delayMs: delay }, 'broker reconnect scheduled'),
    );
    model.on('connect-failed', (err: Error) => {
      logger.warn(
        { err: { message: err.message }, node: this.node },
        'broker connection attempt failed',
      );
      this.rotate();
    });
    model.on('blocked', (reason: string) => {
      this._blocked = true;
      logger.warn({ reason }, 'broker blocked publishing (resource alarm)');
      this.emit('blocked', reason);
    });
    model.on('unblocked', () => {
      this._blocked = false;
      logger.info('broker unblocked publishing');
      this.emit('unblocked');
    });
    model.on('error', (err: Error) =>
      logger.warn({ err: { message: err.message } }, 'broker connection error'),
    );
    try {
      await model.waitForConnect();
    } catch (err) {
      this._state = 'closed';
      const detail = err instanceof Error ? err.message : String(err);
      throw new BrokerUnavailableError(`cannot connect to RabbitMQ at ${safeUrl(url)}: ${detail}`, {
        cause: err,
      });
    }
  }

  /** Runs inside amqplib's recovery before the connection is published: a failure here reconnects. */
  private async setup(conn: ChannelModel): Promise<void> {
    for (const a of this.attachments) await a.attach(conn);
  }

  private onConnect(conn: ChannelModel): void {
    if (this._state === 'closed') return;
    this.current = conn;
    this._blocked = false;
    this._state = 'connected';
    const { logger } = this;
    if (this.connectedOnce) {
      logger.info({ url: safeUrl(this.options.url), node: this.node }, 'broker reconnected');
      this.options.onReconnect?.();
    } else {
      logger.info({ url: safeUrl(this.options.url), node: this.node }, 'broker connected');
    }
    this.connectedOnce = true;
    this.emit('connected');
  }

  private onDisconnect(err: Error): void {
    if (this._state === 'closed') return;
    this.current = undefined;
    this._state = 'disconnected';
    this.logger.warn({ err: { message: err.message } }, 'broker connection lost; reconnecting');
    const reason = new BrokerUnavailableError(`connection lost: ${err.message}`, { cause: err });
    for (const a of this.attachments) a.detach(reason);
    this.emit('disconnected', err);
  }
}
