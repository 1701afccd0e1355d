// Per-message pipeline: redelivery check, decode, validate, run the handler, then reply / ack / retry / dead-letter.
import {
  messagingAttributes,
  withSpan,
  type ConsumerMetrics,
  type Logger,
  type SpanHandle,
  type Tracing,
} from '@warren/observability';
import type { z } from 'zod';
import type {
  Delivery,
  MessagePropertyHeaders,
  Publisher,
  PublishOptions,
  QueueType,
} from '@warren/messaging';
import {
  HEADERS,
  MAX_ERROR_MESSAGE,
  PROBLEM_CONTENT_TYPE,
  WarrenError,
  deadLetterQueueName,
  errorCode,
  eventTopicOf,
  isRetryable,
  topicMatches,
  problemJson,
  REPLY_TO,
  replyHeaders,
  retryQueueName,
  type ReplyTiming,
} from '@warren/protocol';
import {
  DEFAULTS,
  RawReply,
  eventPatterns,
  type HandlerContext,
  type ServiceDefinition,
} from './define';
import { HandlerTimeoutError, PermanentError, ValidationError } from './errors';
import { encodeBody, type EventClient, type ServiceClient } from './client';
import { Deadlines, type Deadline } from './deadlines';
import { redeliveryAction, ttlLeft } from './redelivery';

export interface ProcessorDeps {
  def: ServiceDefinition;
  queue: string;
  /** The queue's type: how redeliveries are counted (default classic, as a 'plain' queue is). */
  queueType?: QueueType;
  /** Redeliveries before a message goes to the DLQ (env MAX_REDELIVERIES); else the definition's. */
  maxRedeliveries?: number;
  publisher: Publisher;
  /** This process's broker user, stamped as AMQP `user-id` on replies (the broker checks it). */
  userId: string;
  /** A CONSUMER span per message, a PRODUCER span per reply (when tracing is on). */
  tracing: Tracing;
  metrics: ConsumerMetrics;
  logger: Logger;
  services: (requestId: string, traceparent: string | undefined) => ServiceClient;
  /**
   * How long a message whose retry or DLQ copy could not be published (the broker refuses
   * publishes: an alarm, a lost connection) waits before it is requeued. Default 1000 ms.
   */
  requeueDelayMs?: number;
  /** ctx.events: publishing events from a handler. */
  events?: (requestId: string, traceparent: string | undefined) => EventClient;
}

/** How the events a message may be are decoded and counted: the definition's subscriptions. */
interface Subscription {
  pattern: string;
  /** The events' own schema; undefined = the service's. */
  schema: z.ZodType | undefined;
}

type Outcome = 'success' | 'retry' | 'dead_letter' | 'rejected';

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/**
 * Tracks in-flight messages so shutdown can drain them. A message stays in flight until it is
 * acked, and a message whose handler ran past its deadline is acked only when the handler really
 * ends (its retry/DLQ copy or its 504 reply goes out at the deadline): unacked, it keeps its
 * prefetch slot, so running handlers never outnumber the prefetch, overdue ones included.
 */
export class Processor {
  private inFlight = 0;
  private idle: (() => void)[] = [];
  /** Each traced message's span, as the traceparent its reply is parented to. */
  private readonly spans = new WeakMap<Delivery, string | undefined>();
  /** Handlers running past their deadline, and the acks waiting for them. */
  private overdue = 0;
  private readonly overdueWaits = new Set<() => void>();
  /** Messages waiting to be requeued (their copy could not be published), released by drain(). */
  private readonly requeueWaits = new Set<() => void>();
  /** Set when shutdown starts: no new message will arrive, so acks no longer wait for overdue handlers. */
  private draining = false;
  /** One timer for every in-flight message's time limit (and the shutdown abort). */
  private readonly deadlines: Deadlines;
  private readonly maxAttempts: number;
  private readonly delays: readonly number[];
  private readonly timeoutMs: number;
  private readonly queueType: QueueType;
  private readonly maxRedeliveries: number;
  private readonly messages;
  private readonly processing;
  private readonly queueWait;
  private readonly expiredCalls;
  private readonly subscriptions: Subscription[];
  private readonly matched = new Map<string, Subscription | undefined>();

  constructor(private readonly deps: ProcessorDeps) {
    this.maxAttempts = deps.def.maxAttempts ?? DEFAULTS.maxAttempts;
    this.delays = deps.def.retryDelaysMs ?? DEFAULTS.retryDelaysMs;
    this.timeoutMs = deps.def.handlerTimeoutMs ?? DEFAULTS.handlerTimeoutMs;
    this.queueType = deps.queueType ?? 'classic';
    this.maxRedeliveries =
      deps.maxRedeliveries ?? deps.def.maxRedeliveries ?? DEFAULTS.maxRedeliveries;
    const timeoutMs = this.timeoutMs;
    this.deadlines = new Deadlines(timeoutMs, () => ({
      reason: new HandlerTimeoutError(timeoutMs),
      // The same reason AbortSignal.timeout() gives.
      signalReason: new DOMException('The operation was aborted due to timeout', 'TimeoutError'),
    }));
    // Label children are resolved once, not per message.
    const q = deps.queue;
    this.messages = {
      success: deps.metrics.messages.child(q, 'success'),
      retry: deps.metrics.messages.child(q, 'retry'),
      dead_letter: deps.metrics.messages.child(q, 'dead_letter'),
      rejected: deps.metrics.messages.child(q, 'rejected'),
    };
    this.processing = deps.metrics.processing.child(q);
    this.queueWait = deps.metrics.queueWait.child(q);
    this.expiredCalls = deps.metrics.expiredCalls.labels(q);
    const { events } = deps.def;
    this.subscriptions = eventPatterns(events).map((pattern) => ({
      pattern,
      schema:
        events !== undefined && !Array.isArray(events)
          ? ((events as Record<string, z.ZodType | null>)[pattern] ?? undefined)
          : undefined,
    }));
  }

  /** The first subscription whose pattern matches `topic` (undefined: a binding the definition no longer has). */
  private subscriptionOf(topic: string): Subscription | undefined {
    if (this.matched.has(topic)) return this.matched.get(topic);
    const sub = this.subscriptions.find((s) => topicMatches(s.pattern, topic));
    // Topics repeat: each is matched once (the cache is bounded; past it, matched every time).
    if (this.matched.size < 1000) this.matched.set(topic, sub);
    return sub;
  }

  get inFlightCount(): number {
    return this.inFlight;
  }

  /** Handlers still running past their deadline (their messages not yet acked). */
  get overdueCount(): number {
    return this.overdue;
  }

  /** Consumer callback: never throws, never leaves a message unsettled unless the channel died. */
  readonly onMessage = (delivery: Delivery): void => {
    this.inFlight++;
    this.deps.metrics.inFlight.set(this.inFlight);
    this.handle(delivery).then(this.settled, (err: unknown) => {
      // Only reached when a dead-letter copy of an over-limit message failed, or on a bug: leave
      // the message to the broker.
      this.deps.logger.error({ err }, 'message could not be settled; requeueing');
      void this.requeueLater(delivery).then(this.settled);
    });
  };

  private readonly settled = (): void => {
    this.inFlight--;
    this.deps.metrics.inFlight.set(this.inFlight);
    if (this.inFlight === 0) for (const resolve of this.idle.splice(0)) resolve();
  };

  /**
   * Resolves when no message is in flight, or after `timeoutMs` (then aborts handlers' signals).
   * Call it once consuming has stopped: from then on, the acks of overdue handlers no longer wait
   * (their copies are out, and no new message can take the freed slots).
   */
  async drain(timeoutMs: number): Promise<boolean> {
    this.draining = true;
    for (const release of [...this.overdueWaits]) release();
    for (const release of [...this.requeueWaits]) release();
    if (this.inFlight === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      new Promise<true>((resolve) => this.idle.push(() => resolve(true))),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (!drained)
      this.deadlines.abortAll({
        reason: new HandlerTimeoutError(this.timeoutMs),
        signalReason: new Error('shutdown drain timeout'),
      });
    return drained;
  }

  private async handle(delivery: Delivery): Promise<void> {
    const { properties } = delivery;
    const headers: MessagePropertyHeaders = properties.headers ?? {};
    const requestId = String(headers[HEADERS.requestId] ?? properties.messageId ?? 'unknown');
    const tp = headers[HEADERS.traceparent];
    const traceparent = typeof tp === 'string' ? tp : undefined;
    const attempt = positiveInt(headers[HEADERS.attempt]) ?? 1;
    const isCall = typeof properties.replyTo === 'string' && properties.replyTo.length > 0;
    const event = eventTopicOf(headers[HEADERS.event], delivery.exchange, delivery.routingKey);
    // Copies of an event (retry, DLQ, redelivery count) carry its topic: their routing key is a queue's.
    const eventHeader = event === undefined ? NO_HEADERS : { [HEADERS.event]: event };

    const publishedAt = publishedAtMs(headers, properties.timestamp);
    // The caller's own ms timestamp (not the AMQP one, whole seconds): a reply's time queued.
    const sentAt = typeof headers[HEADERS.publishedAt] === 'number' ? publishedAt : undefined;
    const start = Date.now();

    if (isCall && this.pastDeadline(delivery, headers, start, requestId)) return;

    const check = redeliveryAction(
      this.queueType,
      delivery.redelivered,
      headers,
      this.maxRedeliveries,
    );
    if (
      check.kind === 'count' &&
      (await this.countRedelivery(
        delivery,
        check.redeliveries,
        publishedAt,
        requestId,
        eventHeader,
      ))
    )
      return;
    if (check.kind === 'limit') {
      const outcome = await this.overLimit(
        delivery,
        check.redeliveries,
        attempt,
        isCall,
        requestId,
        eventHeader,
      );
      delivery.ack();
      this.count(outcome, event);
      return;
    }

    if (publishedAt !== undefined && publishedAt <= start)
      this.queueWait.observe((start - publishedAt) / 1000);

    // One branch when tracing is off: the message's traceparent passes through unchanged.
    let span: SpanHandle | undefined;
    if (this.deps.tracing.enabled) {
      span = this.deps.tracing.start(
        `process ${this.deps.queue}`,
        'consumer',
        traceparent,
        messagingAttributes(
          'process',
          this.deps.queue,
          properties.messageId,
          properties.correlationId,
        ),
      );
      span.set('messaging.rabbitmq.attempt', attempt);
      this.spans.set(delivery, span.traceparent);
    }

    // The time limit starts now; the handler's signal is only made if the handler reads it.
    const deadline = this.deadlines.add();
    const ctx = new MessageContext(
      this.deps,
      delivery,
      deadline,
      requestId,
      span ? span.traceparent : traceparent,
      attempt,
      isCall,
      event,
    );

    let run: HandlerRun | undefined;
    /** Undefined when the message could not be settled (its retry/DLQ copy was not confirmed). */
    let outcome: Outcome | undefined;
    try {
      let result: unknown;
      try {
        const input = this.decode(delivery, event);
        run = new HandlerRun(this.invoke(input, ctx), deadline);
        result = await run.result;
      } finally {
        this.deadlines.remove(deadline);
      }
      if (isCall)
        await this.reply(
          delivery,
          200,
          encodeResult(result),
          // Timing only for callers that stamp their calls (Warren's): others do not read it.
          sentAt === undefined
            ? undefined
            : { queueMs: Math.max(0, start - sentAt), serviceMs: Date.now() - start },
        );
      outcome = 'success';
    } catch (err) {
      span?.fail(err);
      try {
        outcome = await this.fail(delivery, err, attempt, isCall, ctx.log, eventHeader);
      } catch (publishErr) {
        // The retry/DLQ copy could not be published: the broker keeps the message.
        ctx.log.error({ err: publishErr }, 'message could not be settled; requeueing');
      }
    }
    // A handler still running past its deadline keeps its message (and prefetch slot) until it ends.
    if (run && !run.ended) await this.waitForOverdue(run, ctx.log, start);
    if (span) {
      span.set('warren.outcome', outcome ?? 'unsettled');
      span.end();
    }
    if (outcome === undefined) {
      await this.requeueLater(delivery);
      return;
    }
    delivery.ack();
    this.processing.observe((Date.now() - start) / 1000);
    this.count(outcome, event);
  }

  /** Counts a settled message, and an event also by the subscription pattern it matched. */
  /**
   * A call past its TTL by its caller's clock (`x-published-at`, ms, + `expiration`) is dropped
   * unrun: its caller has been answered (504, or 503 when the publish was not confirmed in time).
   * The broker drops such calls itself while they wait in the queue; this catches those it enqueued
   * late (RabbitMQ holds the publish that makes it block a connection during a resource alarm, and
   * starts its TTL only when it enqueues it). Relies on the hosts' clocks agreeing (NTP); calls
   * without the header (plain AMQP callers) are never dropped here.
   */
  private pastDeadline(
    delivery: Delivery,
    headers: MessagePropertyHeaders,
    now: number,
    requestId: string,
  ): boolean {
    const sentAt = headers[HEADERS.publishedAt];
    const { expiration } = delivery.properties;
    if (typeof sentAt !== 'number' || expiration === undefined || expiration === null) return false;
    const left = ttlLeft(expiration, sentAt, now);
    if (left === undefined || left > 0) return false;
    this.deps.logger.info(
      { requestId, lateMs: -left },
      'call past its deadline (its caller has been answered); dropped, not run',
    );
    delivery.ack();
    this.expiredCalls.inc();
    return true;
  }

  private count(outcome: Outcome, event: string | undefined): void {
    this.messages[outcome].inc();
    if (event === undefined) return;
    const pattern = this.subscriptionOf(event)?.pattern ?? '_other';
    this.deps.metrics.events?.labels(this.deps.queue, pattern, outcome).inc();
  }

  /**
   * Classic queues: a redelivered message is republished (confirmed) with its redelivery count and
   * the original acked, so the count survives a crash loop's restarts. The copy waits out the first
   * retry delay in its retry queue (a pause between the runs of a crash loop, and time for the ack
   * to reach the broker before the copy is handled: an ack lost with a crashing process would bring
   * the original back too); a message with a TTL (a call) goes straight back to the queue with what
   * is left of it, since a dead-lettered copy would lose its expiration. True when that was done
   * (or the message was dropped because its TTL has run out); false to handle it as it is (the copy
   * could not be published: the count then does not advance).
   */
  private async countRedelivery(
    delivery: Delivery,
    redeliveries: number,
    publishedAt: number | undefined,
    requestId: string,
    eventHeader: Readonly<Record<string, string>>,
  ): Promise<boolean> {
    const { properties } = delivery;
    const log = this.deps.logger;
    const options = copyProperties(delivery);
    const hasTtl =
      properties.expiration !== undefined &&
      properties.expiration !== null &&
      properties.expiration !== '';
    const left = hasTtl ? ttlLeft(properties.expiration, publishedAt, Date.now()) : undefined;
    if (left !== undefined && left <= 0) {
      // Past its TTL (a call whose caller gave up): dropped, as the broker would have done.
      log.info({ requestId, redeliveries }, 'redelivered message past its expiration; dropped');
      delivery.ack();
      return true;
    }
    if (hasTtl) options.expiration = String(left ?? properties.expiration);
    const target = hasTtl
      ? this.deps.queue
      : retryQueueName(this.deps.queue, this.delays[0] ?? 1000);
    try {
      await this.deps.publisher.send(target, delivery.body, {
        ...options,
        headers: carriedHeaders(properties.headers, {
          ...eventHeader,
          [HEADERS.redeliveries]: redeliveries,
        }),
      });
    } catch (err) {
      log.warn(
        { err, requestId, redeliveries },
        'could not requeue a redelivered message with its count; handling it as it is',
      );
      return false;
    }
    delivery.ack();
    log.warn(
      { requestId, redeliveries, maxRedeliveries: this.maxRedeliveries, queue: target },
      'message redelivered (did it crash or stall a consumer?); requeued with its redelivery count',
    );
    return true;
  }

  /** Redelivered more than maxRedeliveries times: a message goes to the DLQ, a call is answered 500. */
  private async overLimit(
    delivery: Delivery,
    redeliveries: number,
    attempt: number,
    isCall: boolean,
    requestId: string,
    eventHeader: Readonly<Record<string, string>>,
  ): Promise<Outcome> {
    const err = new WarrenError(
      'REDELIVERY_LIMIT',
      `redelivered ${redeliveries} times without being settled (maxRedeliveries ${this.maxRedeliveries}): ` +
        'it may crash or stall the consumer',
    );
    this.deps.logger.error(
      { requestId, redeliveries, maxRedeliveries: this.maxRedeliveries },
      isCall
        ? 'call redelivered too often; answered, not handled again'
        : 'message redelivered too often; dead-lettered, not handled again',
    );
    if (isCall) await this.reply(delivery, err.status, failureBody(err)).catch(() => undefined);
    else await this.deadLetter(delivery, err, attempt, eventHeader, redeliveries);
    return 'dead_letter';
  }

  /**
   * Requeues a message that could not be settled, after a pause: requeued at once it would come
   * straight back and fail the same way for as long as the broker refuses publishes (a memory or
   * disk alarm blocks the publish connection while the consume connection still delivers): a hot
   * loop. Meanwhile it keeps its prefetch slot, so the consumer slows down with the broker. No
   * pause once draining (shutdown).
   */
  private async requeueLater(delivery: Delivery): Promise<void> {
    if (!this.draining) {
      let release: (() => void) | undefined;
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        release = resolve;
        this.requeueWaits.add(resolve);
        timer = setTimeout(resolve, this.deps.requeueDelayMs ?? 1000);
      });
      clearTimeout(timer);
      if (release) this.requeueWaits.delete(release);
    }
    delivery.nack(true);
  }

  /** Waits for an overdue handler to end (counted in mq_consumer_overdue_handlers), unless draining. */
  private async waitForOverdue(run: HandlerRun, log: Logger, start: number): Promise<void> {
    if (this.draining) return;
    this.overdue++;
    this.deps.metrics.overdueHandlers.set(this.overdue);
    log.warn(
      { timeoutMs: this.timeoutMs, overdueHandlers: this.overdue },
      'handler still running past its deadline; its message stays unacked, holding a prefetch slot, until it ends',
    );
    let release: (() => void) | undefined;
    await Promise.race([
      run.whenEnded(),
      new Promise<void>((resolve) => {
        release = resolve;
        this.overdueWaits.add(resolve);
      }),
    ]);
    if (release) this.overdueWaits.delete(release);
    this.overdue--;
    this.deps.metrics.overdueHandlers.set(this.overdue);
    log.info({ ms: Date.now() - start, ended: run.ended }, 'overdue handler released its message');
  }

  private decode(delivery: Delivery, event: string | undefined): unknown {
    // An event is checked by its subscription's own schema, if it has one, else the service's.
    const schema =
      (event !== undefined ? this.subscriptionOf(event)?.schema : undefined) ??
      this.deps.def.schema;
    if (!schema) return delivery.body;
    let json: unknown;
    try {
      json = JSON.parse(delivery.body.toString('utf8'));
    } catch {
      throw new ValidationError('body is not valid JSON');
    }
    const parsed = schema.safeParse(json);
    if (parsed.success) return parsed.data;
    const issues = parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw new ValidationError(
      `invalid input: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ')}`,
      issues,
    );
  }

  private invoke(input: unknown, ctx: HandlerContext): Promise<unknown> {
    // The definition's union is resolved at runtime: a schema means a decoded value, else the bytes.
    const handler = this.deps.def.handler as (i: unknown, c: HandlerContext) => unknown;
    return Promise.resolve().then(() => handler(input, ctx));
  }

  /**
   * Decides and performs what happens to a failed message; the caller acks once this resolves, so
   * the copy is confirmed before the ack. Retries follow the error's `retryable` (protocol): a
   * PermanentError or any non-retryable error (e.g. an unroutable downstream send) is not retried.
   * A call is answered and never dead-lettered: its caller has its answer, or has given up.
   */
  private async fail(
    delivery: Delivery,
    err: unknown,
    attempt: number,
    isCall: boolean,
    log: Logger,
    eventHeader: Readonly<Record<string, string>>,
  ): Promise<Outcome> {
    const message = err instanceof Error ? err.message : String(err);
    const retryable = isRetryable(err);
    if (err instanceof PermanentError) {
      log.warn({ code: err.code, error: message }, 'message rejected');
      if (isCall) await this.reply(delivery, err.status, failureBody(err));
      else await this.deadLetter(delivery, err, attempt, eventHeader);
      return 'rejected';
    }
    if (isCall) {
      log.error({ err, attempts: attempt, retryable }, 'call failed; answered with its error');
      const failure = callFailure(err, message);
      await this.reply(delivery, failure.status, failureBody(failure)).catch(() => undefined);
      return 'dead_letter';
    }
    if (retryable && attempt < this.maxAttempts) {
      const delay = this.delays[Math.min(attempt - 1, this.delays.length - 1)] ?? 1000;
      log.warn({ err, delayMs: delay }, 'handler failed; retrying');
      await this.deps.publisher.send(retryQueueName(this.deps.queue, delay), delivery.body, {
        ...copyProperties(delivery),
        // A new attempt: the redelivery count starts again, as a quorum queue's does.
        headers: carriedHeaders(
          delivery.properties.headers,
          { ...eventHeader, [HEADERS.attempt]: attempt + 1 },
          HEADERS.redeliveries,
        ),
      });
      return 'retry';
    }
    log.error({ err, attempts: attempt, retryable }, 'handler failed; dead-lettered');
    await this.deadLetter(delivery, err, attempt, eventHeader);
    return 'dead_letter';
  }

  private deadLetter(
    delivery: Delivery,
    err: unknown,
    attempt: number,
    eventHeader: Readonly<Record<string, string>>,
    redeliveries?: number,
  ): Promise<void> {
    const { replyTo: _r, correlationId: _c, expiration: _e, ...props } = copyProperties(delivery);
    const failure: Record<string, unknown> = {
      ...eventHeader,
      [HEADERS.attempt]: attempt,
      [HEADERS.errorMessage]: (err instanceof Error ? err.message : String(err)).slice(
        0,
        MAX_ERROR_MESSAGE,
      ),
      [HEADERS.errorCode]: errorCode(err),
      [HEADERS.originalQueue]: this.deps.queue,
      [HEADERS.failedAt]: new Date().toISOString(),
    };
    if (redeliveries !== undefined) failure[HEADERS.redeliveries] = redeliveries;
    return this.deps.publisher.send(deadLetterQueueName(this.deps.queue), delivery.body, {
      ...props,
      persistent: true,
      headers: carriedHeaders(delivery.properties.headers, failure),
    });
  }

  /** `timing`: sent along (x-queue-ms, x-service-ms) so the caller can tell queueing from work. */
  private reply(
    delivery: Delivery,
    status: number,
    payload: { bytes: Buffer; contentType: string },
    timing?: ReplyTiming,
  ): Promise<void> {
    const { replyTo, correlationId } = delivery.properties;
    const options: PublishOptions = {
      correlationId: correlationId as string | undefined,
      contentType: payload.contentType,
      // x-status even on a 200 (absent also means 200): pika and other plain clients read it.
      headers: replyHeaders(status, timing),
      userId: this.deps.userId,
      mandatory: false,
    };
    const to = String(replyTo);
    if (!this.deps.tracing.enabled) return this.deps.publisher.send(to, payload.bytes, options);
    return withSpan(
      this.deps.tracing,
      'publish reply',
      'producer',
      this.spans.get(delivery),
      messagingAttributes('send', REPLY_TO, undefined, correlationId),
      () => this.deps.publisher.send(to, payload.bytes, options),
    );
  }
}

function encodeResult(result: unknown): { bytes: Buffer; contentType: string } {
  if (result instanceof RawReply) return { bytes: result.body, contentType: result.contentType };
  return encodeBody(result);
}

/**
 * The error a failed call's caller sees: 504 for a timeout, else 500; the handler's message only
 * when it threw a WarrenError marked public (`expose`), else the code's generic detail (the
 * message is in the log, with the request id).
 */
function callFailure(err: unknown, message: string): WarrenError {
  if (err instanceof HandlerTimeoutError) return err;
  if (err instanceof WarrenError && err.status >= 500) return err;
  return new WarrenError(errorCode(err), message, { status: 500, expose: false });
}

function failureBody(err: WarrenError): { bytes: Buffer; contentType: string } {
  return { bytes: Buffer.from(problemJson(err)), contentType: PROBLEM_CONTENT_TYPE };
}

/** Properties carried over to a retry or DLQ copy (AMQP fields, not the routing). */
function copyProperties(delivery: Delivery): PublishOptions {
  const p = delivery.properties;
  const out: PublishOptions = { persistent: p.deliveryMode === 2 || p.deliveryMode === undefined };
  if (p.contentType) out.contentType = p.contentType as string;
  if (p.contentEncoding) out.contentEncoding = p.contentEncoding as string;
  if (p.messageId) out.messageId = p.messageId as string;
  if (p.correlationId) out.correlationId = p.correlationId as string;
  if (p.replyTo) out.replyTo = p.replyTo as string;
  if (p.timestamp) out.timestamp = p.timestamp as number;
  if (p.type) out.type = p.type as string;
  if (p.appId) out.appId = p.appId as string;
  return out;
}

function positiveInt(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
  return Number.isInteger(n) && n >= 1 ? n : undefined;
}

/** Publish time in ms: the `x-published-at` header (ms), else the AMQP timestamp (seconds, or ms if large). */
function publishedAtMs(headers: MessagePropertyHeaders, timestamp: unknown): number | undefined {
  const h = headers[HEADERS.publishedAt];
  if (typeof h === 'number' && h > 0) return h;
  if (typeof timestamp === 'number' && timestamp > 0)
    return timestamp > 1e11 ? timestamp : timestamp * 1000;
  return undefined;
}

/**
 * A message's headers for a copy of it: all of them but the broker's per-delivery count (and
 * `drop`), with `extra` set on top.
 */
function carriedHeaders(
  headers: MessagePropertyHeaders | undefined,
  extra: Record<string, unknown>,
  drop?: string,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (headers)
    for (const key of Object.keys(headers))
      if (key !== 'x-delivery-count' && key !== drop) out[key] = headers[key] as unknown;
  return Object.assign(out, extra);
}

/**
 * One handler run: `result` settles with the handler, or rejects with the deadline's reason (a
 * HandlerTimeoutError) if it passes first; `ended` says whether the handler itself has settled.
 */
class HandlerRun {
  ended = false;
  readonly result: Promise<unknown>;
  private onEnd: (() => void) | undefined;

  constructor(work: Promise<unknown>, deadline: Deadline) {
    this.result = new Promise<unknown>((resolve, reject) => {
      deadline.onExpire(reject);
      work.then(
        (value) => {
          this.end();
          resolve(value);
        },
        (err: unknown) => {
          this.end();
          reject(err);
        },
      );
    });
  }

  /** Resolves once the handler has settled, however long after its deadline. */
  whenEnded(): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise<void>((resolve) => (this.onEnd = resolve));
  }

  private end(): void {
    this.ended = true;
    const onEnd = this.onEnd;
    this.onEnd = undefined;
    onEnd?.();
  }
}

/**
 * What a handler sees of its message. A class (getters on the prototype) rather than an object
 * literal with closures per message: the logger, the AbortSignal and the service client are made
 * only when the handler reads them, and nothing else is allocated for the ones it does not.
 */
class MessageContext implements HandlerContext {
  private logger: Logger | undefined;
  private client: ServiceClient | undefined;
  private eventClient: EventClient | undefined;
  readonly body: Buffer;
  readonly properties: Delivery['properties'];

  constructor(
    private readonly deps: ProcessorDeps,
    delivery: Delivery,
    private readonly deadline: Deadline,
    readonly requestId: string,
    readonly traceparent: string | undefined,
    readonly attempt: number,
    readonly isCall: boolean,
    readonly event: string | undefined,
  ) {
    this.body = delivery.body;
    this.properties = delivery.properties;
  }

  get log(): Logger {
    return (this.logger ??= this.deps.logger.child({
      requestId: this.requestId,
      traceparent: this.traceparent,
      attempt: this.attempt,
    }));
  }

  get signal(): AbortSignal {
    return this.deadline.signal;
  }

  get services(): ServiceClient {
    return (this.client ??= this.deps.services(this.requestId, this.traceparent));
  }

  get events(): EventClient {
    const make = this.deps.events;
    if (!make) throw new Error('this processor publishes no events (no event client configured)');
    return (this.eventClient ??= make(this.requestId, this.traceparent));
  }
}
