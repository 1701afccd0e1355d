// Service-to-service client: send to or call another service, carrying requestId and traceparent.
import type { Publisher, PublishOptions, RpcClient, RpcReply } from '@warren/messaging';
import {
  messagingAttributes,
  withSpan,
  type EventPublishMetrics,
  type Tracing,
} from '@warren/observability';
import {
  EVENTS_EXCHANGE,
  WarrenError,
  callHeaders,
  eventHeaders,
  newMessageId,
  requestHeaders,
  topicProblem,
} from '@warren/protocol';

export interface CallOptions {
  contentType?: string;
  timeoutMs?: number;
  type?: string;
}

export interface ServiceClient {
  /** Publishes (confirmed) to a service's queue; resolves with the new message id. */
  send(service: string, body: unknown, options?: CallOptions): Promise<string>;
  /** Calls a service and waits for its reply. */
  call(service: string, body: unknown, options?: CallOptions): Promise<RpcReply>;
}

export interface EventPublishResult {
  messageId: string;
  /** False when no queue is bound for the topic (nobody subscribes): the event went nowhere. */
  delivered: boolean;
}

export interface EventClient {
  /**
   * Publishes an event to `warren.events` with routing key `topic`, persistent and confirmed.
   * Resolves once the broker confirmed; `delivered` says whether any service subscribes. An
   * invalid topic rejects with a non-retryable INVALID_TOPIC error.
   */
  publish(
    topic: string,
    body: unknown,
    options?: Omit<CallOptions, 'timeoutMs'>,
  ): Promise<EventPublishResult>;
}

export interface ClientDeps {
  publisher: Publisher;
  /** Counts ctx.events.publish outcomes (mq_events_published_total). */
  events?: EventPublishMetrics;
  rpc: () => Promise<RpcClient>;
  appId: string;
  /** A PRODUCER span per send and call (when tracing is on). */
  tracing: Tracing;
}

export function encodeBody(
  body: unknown,
  contentType?: string,
): { bytes: Buffer; contentType: string } {
  if (Buffer.isBuffer(body))
    return { bytes: body, contentType: contentType ?? 'application/octet-stream' };
  if (typeof body === 'string')
    return { bytes: Buffer.from(body), contentType: contentType ?? 'text/plain' };
  return {
    bytes: Buffer.from(JSON.stringify(body ?? null)),
    contentType: contentType ?? 'application/json',
  };
}

export function createServiceClient(
  deps: ClientDeps,
  requestId: string,
  traceparent: string | undefined,
): ServiceClient {
  // A fresh messageId per message; the request id travels in x-request-id.
  const props = (
    messageId: string,
    contentType: string,
    type: string | undefined,
    tp: string | undefined,
    call: boolean,
  ) => ({
    messageId,
    contentType,
    type,
    appId: deps.appId,
    timestamp: Math.floor(Date.now() / 1000),
    persistent: true,
    headers: (call ? callHeaders : requestHeaders)(requestId, tp, Date.now()),
  });
  // Each publish is a PRODUCER span (when tracing is on) whose context the message carries.
  const traced = <T>(
    service: string,
    messageId: string,
    work: (tp: string | undefined) => Promise<T>,
  ) =>
    withSpan(
      deps.tracing,
      `publish ${service}`,
      'producer',
      traceparent,
      messagingAttributes('send', service, messageId),
      work,
    );
  return {
    send(service, body, options = {}) {
      const { bytes, contentType } = encodeBody(body, options.contentType);
      const messageId = newMessageId();
      return traced(service, messageId, async (tp) => {
        await deps.publisher.send(
          service,
          bytes,
          props(messageId, contentType, options.type, tp, false),
        );
        return messageId;
      });
    },
    async call(service, body, options = {}) {
      const { bytes, contentType } = encodeBody(body, options.contentType);
      const rpc = await deps.rpc();
      const messageId = newMessageId();
      return traced(service, messageId, (tp) =>
        rpc.call(service, bytes, {
          ...props(messageId, contentType, options.type, tp, true),
          timeoutMs: options.timeoutMs ?? 5000,
        }),
      );
    },
  };
}

/** What publishEvent needs of a publisher (a Publisher fits). */
export interface EventPublisherLike {
  publish(
    exchange: string,
    routingKey: string,
    body: Buffer,
    options?: PublishOptions,
  ): Promise<void>;
}

export interface EventMessage {
  topic: string;
  body: Buffer;
  contentType: string;
  requestId: string;
  traceparent: string | undefined;
  appId: string;
  type?: string;
  /** The event's message id (default: a new one). */
  messageId?: string;
}

/**
 * Publishes one event to `warren.events` (persistent, `mandatory`, confirmed) as a PRODUCER span
 * and counts it (`metrics`, when given). Resolves `delivered: false` when no queue is bound for
 * the topic; rejects on any other failure. The topic must already be valid (topicProblem).
 * The one event publish of the gateway (POST /v1/events) and of handlers (ctx.events).
 */
export function publishEvent(
  publisher: EventPublisherLike,
  tracing: Tracing,
  metrics: EventPublishMetrics | undefined,
  event: EventMessage,
): Promise<EventPublishResult> {
  const { topic } = event;
  const messageId = event.messageId ?? newMessageId();
  return withSpan(
    tracing,
    `publish ${EVENTS_EXCHANGE} ${topic}`,
    'producer',
    event.traceparent,
    messagingAttributes('send', EVENTS_EXCHANGE, messageId),
    async (tp) => {
      const now = Date.now();
      try {
        await publisher.publish(EVENTS_EXCHANGE, topic, event.body, {
          messageId,
          contentType: event.contentType,
          type: event.type,
          appId: event.appId,
          timestamp: Math.floor(now / 1000),
          persistent: true,
          mandatory: true,
          headers: eventHeaders(topic, event.requestId, tp, now),
        });
      } catch (err) {
        const code = err instanceof WarrenError ? err.code : undefined;
        if (code === 'UNROUTABLE') {
          metrics?.count(topic, 'unroutable');
          return { messageId, delivered: false };
        }
        metrics?.count(topic, code === 'PUBLISH_NACKED' ? 'nacked' : 'failed');
        throw err;
      }
      metrics?.count(topic, 'confirmed');
      return { messageId, delivered: true };
    },
  );
}

/** ctx.events: events from a handler, carrying its requestId and traceparent. */
export function createEventClient(
  deps: ClientDeps,
  requestId: string,
  traceparent: string | undefined,
): EventClient {
  return {
    publish(topic, body, options = {}) {
      const problem = topicProblem(topic);
      if (problem !== undefined)
        return Promise.reject(new WarrenError('INVALID_TOPIC', problem, { retryable: false }));
      const { bytes, contentType } = encodeBody(body, options.contentType);
      return publishEvent(deps.publisher, deps.tracing, deps.events, {
        topic,
        body: bytes,
        contentType,
        requestId,
        traceparent,
        appId: deps.appId,
        type: options.type,
      });
    },
  };
}
