// defineService(): the whole of a consumer service is its definition; the runtime does the plumbing.
import type { z } from 'zod';
import type { Logger } from '@warren/observability';
import type { MessageProperties, QueueType } from '@warren/messaging';
import {
  MAX_EVENT_PATTERNS,
  SERVICE_NAME_RULE,
  serviceNameProblem,
  topicPatternProblem,
} from '@warren/protocol';
import type { EventClient, ServiceClient } from './client';

export interface HandlerContext {
  /** Per-message logger carrying requestId and traceparent. */
  log: Logger;
  requestId: string;
  traceparent: string | undefined;
  /** 1 on first delivery, counted up by retries (`x-attempt`). */
  attempt: number;
  /** True when the sender waits for a reply. */
  isCall: boolean;
  /** Fires on handler timeout, or when shutdown's drain timeout runs out. */
  signal: AbortSignal;
  /** The raw body and AMQP properties, for handlers that need more than the decoded input. */
  body: Buffer;
  properties: MessageProperties;
  /** Publish to or call other services, propagating requestId and traceparent. */
  services: ServiceClient;
  /** The event's topic when this message is an event (it came through `warren.events`). */
  event: string | undefined;
  /** Publish events (confirmed), propagating requestId and traceparent. */
  events: EventClient;
}

/** A reply with explicit bytes and content type (the default encodes a returned value as JSON). */
export class RawReply {
  constructor(
    readonly body: Buffer,
    readonly contentType: string,
  ) {}
}

export const rawReply = (body: Buffer | string, contentType: string): RawReply =>
  new RawReply(typeof body === 'string' ? Buffer.from(body) : body, contentType);

export type Handler<In, Out> = (input: In, ctx: HandlerContext) => Out | Promise<Out>;

export interface QueueOptions {
  /** 'plain' = non-durable, no arguments (pika-compatible); default 'durable'. */
  kind?: 'plain' | 'durable';
  queueType?: QueueType;
  /**
   * @deprecated Quorum queues declared by earlier Warren versions only: the `x-delivery-limit` they
   * were declared with (default 20), so re-declaring them matches. Use `maxRedeliveries`.
   */
  deliveryLimit?: number;
  maxLength?: number;
  overflow?: 'reject-publish' | 'drop-head';
}

interface BaseDefinition {
  /** Service name = queue name: @warren/protocol's SERVICE_NAME, not a reserved name. */
  name: string;
  version?: string;
  description?: string;
  queue?: QueueOptions;
  /** Unacked messages per consumer (PREFETCH env overrides). Default 50. */
  prefetch?: number;
  /** Deliveries before a failing message goes to the DLQ. Default 5. */
  maxAttempts?: number;
  /**
   * Redeliveries (the broker handing a message out again because it was never settled: a crash,
   * a lost connection) before it goes to the DLQ without running the handler again (a call is
   * answered 500 `REDELIVERY_LIMIT`). The env MAX_REDELIVERIES overrides it. Default 5.
   */
  maxRedeliveries?: number;
  /** Backoff delays between attempts; attempt n waits retryDelaysMs[min(n-1, last)]. */
  retryDelaysMs?: readonly number[];
  /** Per-message time limit; the handler's signal fires at it. Default 30 s. */
  handlerTimeoutMs?: number;
  /**
   * Event subscriptions: topic patterns (`order.created`, `order.*`, `audit.#`), each bound to the
   * service's queue on the `warren.events` topic exchange, so events are handled like direct
   * messages (same handler, retries, DLQ, deadline, metrics) with `ctx.event` set. In the object
   * form a pattern can have its own schema for the events it matches (null: the service's schema).
   */
  events?: EventSubscriptions;
}

/** Patterns, or patterns each with the schema of their events (null = the service's schema). */
export type EventSubscriptions = readonly string[] | Readonly<Record<string, z.ZodType | null>>;

/** The patterns of a definition's subscriptions, in order. */
export function eventPatterns(events: EventSubscriptions | undefined): string[] {
  if (events === undefined) return [];
  return Array.isArray(events) ? [...(events as readonly string[])] : Object.keys(events);
}

export interface JsonServiceDefinition<S extends z.ZodType, Out> extends BaseDefinition {
  /** JSON input validated by this schema; invalid input is a permanent error (no retries). */
  schema: S;
  handler: Handler<z.output<S>, Out>;
}

export interface RawServiceDefinition<Out> extends BaseDefinition {
  schema?: undefined;
  /** Receives the body bytes as sent. */
  handler: Handler<Buffer, Out>;
}

export type ServiceDefinition =
  JsonServiceDefinition<z.ZodType, unknown> | RawServiceDefinition<unknown>;

export const DEFAULTS = {
  prefetch: 50,
  maxAttempts: 5,
  maxRedeliveries: 5,
  retryDelaysMs: [1000, 4000, 16000, 60000] as readonly number[],
  handlerTimeoutMs: 30_000,
};

export function defineService<S extends z.ZodType, Out>(
  def: JsonServiceDefinition<S, Out>,
): ServiceDefinition;
export function defineService<Out>(def: RawServiceDefinition<Out>): ServiceDefinition;
export function defineService(def: ServiceDefinition): ServiceDefinition {
  if (serviceNameProblem(def.name)) {
    throw new Error(`invalid service name "${def.name}": ${SERVICE_NAME_RULE}`);
  }
  if (
    def.maxAttempts !== undefined &&
    (!Number.isInteger(def.maxAttempts) || def.maxAttempts < 1)
  ) {
    throw new Error(`${def.name}: maxAttempts must be an integer >= 1`);
  }
  if (
    def.maxRedeliveries !== undefined &&
    (!Number.isInteger(def.maxRedeliveries) || def.maxRedeliveries < 0)
  ) {
    throw new Error(`${def.name}: maxRedeliveries must be an integer >= 0`);
  }
  const patterns = eventPatterns(def.events);
  if (patterns.length > MAX_EVENT_PATTERNS)
    throw new Error(`${def.name}: events: at most ${MAX_EVENT_PATTERNS} patterns`);
  for (const pattern of patterns) {
    const problem = topicPatternProblem(pattern);
    if (problem) throw new Error(`${def.name}: events: ${problem}`);
  }
  if (def.retryDelaysMs?.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new Error(`${def.name}: retryDelaysMs must be positive integers`);
  }
  return def;
}
