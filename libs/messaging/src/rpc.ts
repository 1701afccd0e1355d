// RPC client over direct reply-to: unguessable correlation ids, replies checked (sender, status, type, size), no leaks.
import { randomUUID } from 'node:crypto';
import type { ChannelModel, ConsumeMessage, MessagePropertyHeaders } from 'amqplib';
import type { Logger } from '@warren/observability';
import {
  REPLY_TO,
  WarrenError,
  checkReply,
  newCorrelationId,
  type BadReplyReason,
  type SenderPolicy,
} from '@warren/protocol';
import type { Attachment, Broker } from './broker';
import { ConfirmedChannel, type PublishOptions } from './confirm';
import { BrokerUnavailableError, RpcTimeoutError } from './errors';

/** A reply that passed the protocol's reply rules. */
export interface RpcReply {
  body: Buffer;
  /** A valid media type (application/octet-stream when the reply had none). */
  contentType: string;
  headers: MessagePropertyHeaders;
  /** From the reply's `x-status` header (200-599); 200 when absent. */
  status: number;
}

/** Why a reply was not delivered to its call: it broke the reply rules, or came from the wrong sender. */
export type RejectedReplyReason = BadReplyReason | 'sender';

/** The called service's reply broke the reply rules (the caller answers 502). */
export class BadReplyError extends WarrenError {
  constructor(
    readonly reason: BadReplyReason,
    message: string,
  ) {
    super('BAD_REPLY', message, { expose: true });
  }
}

export interface RpcCallOptions extends Omit<
  PublishOptions,
  'replyTo' | 'correlationId' | 'expiration'
> {
  timeoutMs: number;
}

export interface RpcClientOptions {
  logger: Logger;
  confirmTimeoutMs?: number;
  /** Told about pending-call count changes and late replies (metrics). */
  onPendingChange?: (pending: number) => void;
  onLateReply?: () => void;
  /** Told about each reply refused: a malformed one (its call fails) or one from the wrong sender (dropped). */
  onRejectedReply?: (queue: string, reason: RejectedReplyReason) => void;
  /** Largest reply body accepted (default 16 MiB). */
  maxReplyBytes?: number;
  /** Whose replies are believed (AMQP `user-id`); unset = any sender's. */
  senders?: SenderPolicy;
}

interface Pending {
  resolve: (reply: RpcReply) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  /** The called queue (= service): whose reply this call waits for. */
  queue: string;
}

const DEFAULT_MAX_REPLY_BYTES = 16 * 1024 * 1024;

export class RpcClient implements Attachment {
  readonly name = 'rpc-client';
  private confirmed: ConfirmedChannel | undefined;
  private readonly pending = new Map<string, Pending>();
  private readonly maxReplyBytes: number;

  private constructor(
    private readonly broker: Broker,
    private readonly options: RpcClientOptions,
  ) {
    this.maxReplyBytes = options.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES;
  }

  static async create(broker: Broker, options: RpcClientOptions): Promise<RpcClient> {
    const client = new RpcClient(broker, options);
    await broker.add(client);
    return client;
  }

  get pendingCalls(): number {
    return this.pending.size;
  }

  get isReady(): boolean {
    return this.broker.isUsable && this.confirmed?.isOpen === true;
  }

  async attach(connection: ChannelModel): Promise<void> {
    const channel = await connection.createConfirmChannel();
    channel.on('error', (err: Error) =>
      this.options.logger.warn({ err: { message: err.message } }, 'rpc channel error'),
    );
    const confirmed = new ConfirmedChannel(channel, this.options.confirmTimeoutMs ?? 10_000);
    channel.on('close', () => {
      if (this.confirmed !== confirmed) return;
      this.confirmed = undefined;
      this.rejectAll(new BrokerUnavailableError('rpc channel closed'));
      if (this.broker.state === 'connected') {
        try {
          this.attach(this.broker.connection()).catch((err: unknown) =>
            this.options.logger.error({ err }, 'rpc client: cannot reopen channel'),
          );
        } catch {
          // Disconnected meanwhile: the supervisor re-attaches on reconnect.
        }
      }
    });
    // Direct reply-to: consume the pseudo-queue in no-ack mode on the channel that publishes.
    await channel.consume(REPLY_TO, (msg) => msg && this.onReply(msg), { noAck: true });
    this.confirmed = confirmed;
  }

  detach(reason: Error): void {
    this.confirmed = undefined;
    this.rejectAll(reason);
  }

  /** Publishes a request to `queue` and resolves with its reply, or rejects typed (timeout, unroutable, down). */
  call(queue: string, body: Buffer, options: RpcCallOptions): Promise<RpcReply> {
    const confirmed = this.confirmed;
    if (!confirmed || !this.broker.isUsable) {
      return Promise.reject(
        new BrokerUnavailableError('broker unavailable: not connected or blocked'),
      );
    }
    const { timeoutMs } = options;
    const correlationId = newCorrelationId();
    // One copy of the caller's options (amqplib ignores the extra `timeoutMs`); with messageId
    // and mandatory set here, ConfirmedChannel.publish passes it on without copying again.
    const publishOptions: PublishOptions = {
      ...options,
      messageId: options.messageId ?? randomUUID(),
      mandatory: options.mandatory ?? true,
      correlationId,
      replyTo: REPLY_TO,
      expiration: String(timeoutMs),
    };
    return new Promise<RpcReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.settle(correlationId)) reject(new RpcTimeoutError(timeoutMs));
      }, timeoutMs);
      this.pending.set(correlationId, { resolve, reject, timer, queue });
      this.options.onPendingChange?.(this.pending.size);
      confirmed.publish('', queue, body, publishOptions).catch((err: Error) => {
        if (this.settle(correlationId)) reject(err);
      });
    });
  }

  async close(): Promise<void> {
    this.broker.remove(this);
    const c = this.confirmed;
    this.confirmed = undefined;
    this.rejectAll(new BrokerUnavailableError('rpc client closed'));
    await c?.channel.close().catch(() => undefined);
  }

  private onReply(msg: ConsumeMessage): void {
    const { properties } = msg;
    const id: unknown = properties.correlationId;
    const entry = typeof id === 'string' ? this.pending.get(id) : undefined;
    if (!entry || typeof id !== 'string') {
      this.options.onLateReply?.();
      return;
    }
    const { senders } = this.options;
    if (senders && !senders.accepts(entry.queue, properties.userId)) {
      // Not the called service's reply: dropped, the call still waits for the real one.
      this.options.onRejectedReply?.(entry.queue, 'sender');
      return;
    }
    this.settle(id);
    const headers = properties.headers ?? {};
    const verdict = checkReply(properties, msg.content.length, this.maxReplyBytes);
    if (!verdict.ok) {
      this.options.onRejectedReply?.(entry.queue, verdict.reason);
      entry.reject(
        new BadReplyError(verdict.reason, `"${entry.queue}" sent a bad reply: ${verdict.detail}`),
      );
      return;
    }
    entry.resolve({
      body: msg.content,
      contentType: verdict.contentType,
      headers,
      status: verdict.status,
    });
  }

  /** Removes a pending call; true when it was still pending (the caller settles its promise). */
  private settle(id: string): boolean {
    const entry = this.pending.get(id);
    if (!entry) return false;
    clearTimeout(entry.timer);
    this.pending.delete(id);
    this.options.onPendingChange?.(this.pending.size);
    return true;
  }

  private rejectAll(reason: Error): void {
    for (const [id, entry] of this.pending) {
      clearTimeout(entry.timer);
      this.pending.delete(id);
      entry.reject(reason);
    }
    this.options.onPendingChange?.(0);
  }
}
