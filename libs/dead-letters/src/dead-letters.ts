// Dead-letter queue operations that never lose a message: read without acking, ack only after a confirm (the CLI and the console share them).
import type { Channel, ChannelModel, GetMessage, MessageProperties } from 'amqplib';
import { ConfirmedChannel, type PublishOptions } from '@warren/messaging';
import {
  FAILURE_HEADERS,
  HEADERS,
  SERVICE_NAME_RULE,
  WarrenError,
  deadLetterQueueName,
  expiredIn,
  isCall,
  serviceNameProblem,
} from '@warren/protocol';

/** A failure the CLI reports as one line and a non-zero exit code (2 = usage). */
export class DlqError extends WarrenError {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(exitCode === 2 ? 'BAD_REQUEST' : 'INTERNAL', message, { expose: true, retryable: false });
  }
}

/** One dead letter as read from `<service>.dlq`, with the error headers the service-kit wrote. */
export interface DeadLetter {
  /** 1-based position in the DLQ when it was read. */
  position: number;
  messageId: string | undefined;
  failedAt: string | undefined;
  attempt: number | undefined;
  errorCode: string | undefined;
  errorMessage: string | undefined;
  originalQueue: string | undefined;
  properties: MessageProperties;
  headers: Record<string, unknown>;
  body: Buffer;
}

export function checkServiceName(service: string): void {
  if (serviceNameProblem(service)) {
    throw new DlqError(`invalid service name "${service}": ${SERVICE_NAME_RULE}`, 2);
  }
}

/** A channel whose errors (e.g. 404 on checkQueue) reject the operation instead of crashing the process. */
async function openChannel(conn: ChannelModel): Promise<Channel> {
  const ch = await conn.createChannel();
  ch.on('error', () => undefined);
  return ch;
}

/** Message count of a queue, or undefined when it does not exist (checked on a throwaway channel). */
export async function queueDepth(conn: ChannelModel, queue: string): Promise<number | undefined> {
  const ch = await openChannel(conn);
  try {
    return (await ch.checkQueue(queue)).messageCount;
  } catch (err) {
    if (/NOT_FOUND|404/.test(err instanceof Error ? err.message : String(err))) return undefined;
    throw err;
  } finally {
    await ch.close().catch(() => undefined);
  }
}

/** The DLQ name and depth of a service; a clear error when the service has none. */
export async function openDlq(
  conn: ChannelModel,
  service: string,
): Promise<{ queue: string; depth: number }> {
  checkServiceName(service);
  const queue = deadLetterQueueName(service);
  const depth = await queueDepth(conn, queue);
  if (depth === undefined) {
    throw new DlqError(
      `no dead-letter queue "${queue}": unknown service "${service}", or it has never started`,
    );
  }
  return { queue, depth };
}

function toDeadLetter(msg: GetMessage, position: number): DeadLetter {
  const headers = (msg.properties.headers ?? {}) as Record<string, unknown>;
  const str = (v: unknown) => (v === undefined || v === null ? undefined : String(v));
  const attempt = Number(headers[HEADERS.attempt]);
  return {
    position,
    messageId: str(msg.properties.messageId),
    failedAt: str(headers[HEADERS.failedAt]),
    attempt: Number.isFinite(attempt) ? attempt : undefined,
    errorCode: str(headers[HEADERS.errorCode]),
    errorMessage: str(headers[HEADERS.errorMessage]),
    originalQueue: str(headers[HEADERS.originalQueue]),
    properties: msg.properties,
    headers,
    body: msg.content,
  };
}

export interface PeekOptions {
  /** Most dead letters returned (default 100). */
  limit?: number;
  /** Only dead letters with this messageId (the whole queue is scanned). */
  id?: string;
}

export interface PeekResult {
  queue: string;
  /** Messages ready in the DLQ when reading started. */
  depth: number;
  letters: DeadLetter[];
}

/**
 * Reads dead letters without removing them: basic.get without ack, then the channel is closed, which
 * hands every unacked message back to the queue in its original order (no nack-requeue one by one,
 * which would put each back at the head and have basic.get return it again).
 */
export async function peek(
  conn: ChannelModel,
  service: string,
  options: PeekOptions = {},
): Promise<PeekResult> {
  const { queue, depth } = await openDlq(conn, service);
  const limit = options.limit ?? 100;
  const letters: DeadLetter[] = [];
  const ch = await openChannel(conn);
  try {
    // At most `depth` gets: messages dead-lettered meanwhile are not waited for.
    for (let position = 1; position <= depth; position++) {
      if (letters.length >= limit) break;
      const msg = await ch.get(queue, { noAck: false });
      if (msg === false) break;
      if (options.id === undefined || msg.properties.messageId === options.id) {
        letters.push(toDeadLetter(msg, position));
      }
    }
  } finally {
    await ch.close().catch(() => undefined);
  }
  return { queue, depth, letters };
}

/** The copy a replay publishes: same body and identity, a fresh attempt count, failure headers dropped. */
export function replayProperties(letter: DeadLetter, now = new Date()): PublishOptions {
  const p = letter.properties;
  const headers: Record<string, unknown> = { ...letter.headers };
  for (const h of FAILURE_HEADERS) delete headers[h];
  const replays = Number(letter.headers[HEADERS.replayCount]);
  headers[HEADERS.attempt] = 1;
  headers[HEADERS.replayedAt] = now.toISOString();
  headers[HEADERS.replayCount] = (Number.isInteger(replays) && replays > 0 ? replays : 0) + 1;
  const out: PublishOptions = { persistent: true, mandatory: true, headers };
  if (p.messageId) out.messageId = String(p.messageId);
  if (p.contentType) out.contentType = String(p.contentType);
  if (p.contentEncoding) out.contentEncoding = String(p.contentEncoding);
  if (p.type) out.type = String(p.type);
  if (p.appId) out.appId = String(p.appId);
  if (typeof p.timestamp === 'number') out.timestamp = p.timestamp;
  if (typeof p.priority === 'number') out.priority = p.priority;
  if (p.correlationId) out.correlationId = String(p.correlationId);
  return out;
}

/**
 * Why a dead letter is never replayed: it is (or was) a call — `replyTo` set or the `x-call`
 * marker; its caller has had its answer or given up, and a replayed call would run with nobody
 * waiting — or it expired in the service's queue (its TTL ran out: the publisher wanted it
 * dropped). Both reach a DLQ only through queues declared by earlier Warren versions (a quorum
 * queue that dead-lettered expired messages, a processor that dead-lettered failed calls) or
 * through other software.
 */
export function skipReason(letter: DeadLetter, service: string): 'call' | 'expired' | undefined {
  if (isCall(letter.properties)) return 'call';
  if (expiredIn(letter.headers, letter.originalQueue ?? service)) return 'expired';
  return undefined;
}

export interface ReplayOptions {
  /** Replay only dead letters with this messageId; otherwise every one (up to `limit`). */
  id?: string;
  /** Most messages replayed. */
  limit?: number;
  /** Messages published before waiting for their confirms (default 50). */
  batchSize?: number;
  /** Stops after the current batch (its confirmed messages are still acked). */
  signal?: AbortSignal;
  /** Called after a copy is confirmed, before the original is acked (progress output; fault injection in tests). */
  onConfirmed?: (letter: DeadLetter) => void | Promise<void>;
}

export interface ReplayResult {
  queue: string;
  target: string;
  depth: number;
  replayed: number;
  /** Dead letters read but left in the DLQ (not matching --id, or after a failed publish). */
  kept: number;
  /** Calls left in the DLQ instead of being replayed (see skipReason). */
  skippedCalls: number;
  /** Messages that expired in the service's queue, left in the DLQ (see skipReason). */
  skippedExpired: number;
  /** Set when a publish failed (queue full, unroutable, broker gone): the run stopped there. */
  error?: Error;
  interrupted: boolean;
}

/**
 * Moves dead letters back to the service's queue. Each copy is published on a confirm channel
 * (mandatory, so a missing queue is an error) and the DLQ original is acked only after the broker
 * confirmed the copy. Interrupted anywhere, a message is in the DLQ, the service queue, or both
 * (a duplicate, which at-least-once handlers tolerate) — never in neither. Calls and messages
 * that expired in the queue are never replayed (skipReason): they stay in the DLQ, counted.
 */
export async function replay(
  conn: ChannelModel,
  service: string,
  options: ReplayOptions = {},
): Promise<ReplayResult> {
  const { queue, depth } = await openDlq(conn, service);
  if ((await queueDepth(conn, service)) === undefined) {
    throw new DlqError(`queue "${service}" does not exist: start the service once, then replay`);
  }
  const limit = options.limit ?? Infinity;
  const batchSize = Math.max(1, options.batchSize ?? 50);
  const getter = await openChannel(conn);
  const confirmChannel = await conn.createConfirmChannel();
  confirmChannel.on('error', () => undefined);
  const publisher = new ConfirmedChannel(confirmChannel, 30_000);
  const result: ReplayResult = {
    queue,
    target: service,
    depth,
    replayed: 0,
    kept: 0,
    skippedCalls: 0,
    skippedExpired: 0,
    interrupted: false,
  };
  let read = 0;
  try {
    while (result.replayed < limit && read < depth && !result.error) {
      if (options.signal?.aborted) {
        result.interrupted = true;
        break;
      }
      // Read a batch; dead letters that do not match stay unacked and return to the DLQ at the end.
      const batch: { msg: GetMessage; letter: DeadLetter }[] = [];
      while (batch.length < Math.min(batchSize, limit - result.replayed) && read < depth) {
        const msg = await getter.get(queue, { noAck: false });
        if (msg === false) {
          read = depth;
          break;
        }
        read++;
        if (options.id !== undefined && msg.properties.messageId !== options.id) {
          result.kept++;
          continue;
        }
        const letter = toDeadLetter(msg, read);
        const skip = skipReason(letter, service);
        if (skip === 'call') result.skippedCalls++;
        if (skip === 'expired') result.skippedExpired++;
        if (skip) continue;
        batch.push({ msg, letter });
      }
      const now = new Date();
      const confirms = await Promise.allSettled(
        batch.map(({ msg, letter }) =>
          publisher.publish('', service, msg.content, replayProperties(letter, now)),
        ),
      );
      for (const [i, outcome] of confirms.entries()) {
        const item = batch[i];
        if (!item) continue;
        if (outcome.status === 'rejected') {
          result.error ??=
            outcome.reason instanceof Error ? outcome.reason : new Error(String(outcome.reason));
          result.kept++;
          continue;
        }
        await options.onConfirmed?.(item.letter);
        getter.ack(item.msg);
        result.replayed++;
      }
    }
  } finally {
    // Closing requeues what was read but not acked, in its original order.
    await getter.close().catch(() => undefined);
    await confirmChannel.close().catch(() => undefined);
  }
  return result;
}

/** Deletes every ready message of the DLQ; resolves with how many. */
export async function purge(conn: ChannelModel, service: string): Promise<number> {
  const { queue } = await openDlq(conn, service);
  const ch = await openChannel(conn);
  try {
    return (await ch.purgeQueue(queue)).messageCount;
  } finally {
    await ch.close().catch(() => undefined);
  }
}
