// RPC client over direct reply-to: unguessable correlation ids, replies checked (sender, status, type, size), no leaks.
import { randomUUID } from 'node:crypto';
import type { ConsumeMessage, MessagePropertyHeaders } from 'amqplib';
import type { Logger } from '@warren/observability';
import {
  REPLY_TO,
  WarrenError,
  checkReply,
  newCorrelationId,
  type BadReplyReason,
  type SenderPolicy,
} from '@warren/protocol';
import type { Broker } from './broker';
import { ManagedChannel } from './channel';
import { IdTable } from './id-table';
import { copyPublishOptions, type PublishOptions } from './confirm';
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
  /** Bound on a request's wait for room in amqplib's buffer (flow control). Default 1 s. */
  flowTimeoutMs?: number;
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

export class RpcClient {
  private readonly pending = new IdTable<Pending>();
  private readonly maxReplyBytes: number;
  private readonly channel: ManagedChannel;

  private constructor(
    broker: Broker,
    private readonly options: RpcClientOptions,
  ) {
    this.maxReplyBytes = options.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES;
    this.channel = new ManagedChannel(broker, {
      name: 'rpc-client',
      logger: options.logger,
      confirm: true,
      confirmTimeoutMs: options.confirmTimeoutMs,
      flowTimeoutMs: options.flowTimeoutMs,
    });
    // Replies come only to the channel that published the request: when it goes, so do they.
    this.channel.on('lost', (reason) =>
      this.rejectAll(
        new BrokerUnavailableError(`rpc channel lost: ${reason.message}`, { cause: reason }),
      ),
    );
  }

  static async create(broker: Broker, options: RpcClientOptions): Promise<RpcClient> {
    const client = new RpcClient(broker, options);
    // Direct reply-to: consume the pseudo-queue in no-ack mode on the channel that publishes,
    // registered again on every (re)open before the channel counts as open.
    await client.channel.consume(REPLY_TO, (msg) => client.onReply(msg), { noAck: true });
    await client.channel.start();
    return client;
  }

  get pendingCalls(): number {
    return this.pending.size;
  }

  /** True while its channel is open (and consuming replies) on a live connection. */
  get isReady(): boolean {
    return this.channel.isConsuming;
  }

  /** Publishes a request to `queue` and resolves with its reply, or rejects typed (timeout, unroutable, down). */
  call(queue: string, body: Buffer, options: RpcCallOptions): Promise<RpcReply> {
    const { timeoutMs } = options;
    const correlationId = newCorrelationId();
    // One copy of the caller's options (without `timeoutMs`); with messageId and mandatory set
    // here, the publish passes it on without copying again.
    const publishOptions = copyPublishOptions(options);
    publishOptions.messageId = options.messageId ?? randomUUID();
    publishOptions.mandatory = options.mandatory ?? true;
    publishOptions.correlationId = correlationId;
    publishOptions.replyTo = REPLY_TO;
    publishOptions.expiration = String(timeoutMs);
    return new Promise<RpcReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.settle(correlationId)) reject(new RpcTimeoutError(timeoutMs));
      }, timeoutMs);
      this.pending.set(correlationId, { resolve, reject, timer, queue });
      this.options.onPendingChange?.(this.pending.size);
      this.channel.publish('', queue, body, publishOptions).catch((err: Error) => {
        if (this.settle(correlationId)) reject(err);
      });
    });
  }

  async close(): Promise<void> {
    this.rejectAll(new BrokerUnavailableError('rpc client closed'));
    await this.channel.close();
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
    const entry = this.pending.take(id);
    if (!entry) return false;
    clearTimeout(entry.timer);
    this.options.onPendingChange?.(this.pending.size);
    return true;
  }

  private rejectAll(reason: Error): void {
    for (const entry of this.pending.takeAll()) {
      clearTimeout(entry.timer);
      entry.reject(reason);
    }
    this.options.onPendingChange?.(0);
  }
}
