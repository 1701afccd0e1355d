// POST /v1/events/<topic>: checks and reads the request, then a confirmed, mandatory publish to the events exchange (202; 404 when nobody subscribes).
import type { IncomingMessage } from 'node:http';
import type { EventPublishMetrics } from '@warren/observability';
import { messagingAttributes, withSpan, type Tracing } from '@warren/observability';
import {
  EVENTS_EXCHANGE,
  GATEWAY_APP_ID,
  WarrenError,
  eventHeaders,
  newMessageId,
  topicProblem,
} from '@warren/protocol';
import type { PublishOptions } from '@warren/messaging';
import { readBody } from './body';
import { answer, type ContextResponse } from './context';
import type { ByteBudget } from './edge';
import { checkJson, classifyContentType } from './input';
import { problems, toProblem } from './problems';

export interface EventPublisher {
  readonly isReady: boolean;
  publish(
    exchange: string,
    routingKey: string,
    body: Buffer,
    options?: PublishOptions,
  ): Promise<void>;
}

export interface EventDeps {
  maxBodyBytes: number;
  bodyBudget?: ByteBudget;
  publisher: EventPublisher;
  metrics: EventPublishMetrics;
  isShuttingDown: () => boolean;
  tracing: Tracing;
}

/** The handler: answers 202 itself, rejects with the error to answer otherwise. */
export type EventHandler = (
  req: IncomingMessage,
  res: ContextResponse,
  topic: string,
) => Promise<void>;

export function eventHandler(deps: EventDeps): EventHandler {
  const { publisher, metrics } = deps;
  // A topic becomes a label value only once the broker routed an event for it (someone
  // subscribes), and then only the first 100 distinct ones: clients cannot grow the series.
  const count = (topic: string, outcome: 'confirmed' | 'unroutable' | 'nacked' | 'failed') =>
    metrics.published
      .labels(outcome === 'confirmed' ? metrics.topics.value(topic) : 'unknown', outcome)
      .inc();
  return async (req, res, topic) => {
    const { requestId, traceparent } = res.locals;
    const problem = topicProblem(topic);
    if (problem !== undefined) throw problems.invalidTopic(problem);
    const contentType = req.headers['content-type'] as string;
    const kind = classifyContentType(contentType);
    const body = await readBody(req, deps.maxBodyBytes, deps.bodyBudget);
    if (kind === 'json') checkJson(body);
    if (deps.isShuttingDown()) throw problems.shuttingDown();
    if (!publisher.isReady) {
      count(topic, 'failed');
      throw problems.brokerUnavailable();
    }
    const now = Date.now();
    const messageId = newMessageId();
    const options: PublishOptions = {
      messageId,
      contentType,
      timestamp: Math.floor(now / 1000),
      appId: GATEWAY_APP_ID,
      persistent: true,
      // basic.return when no queue is bound for the topic: the client gets a 404, not a 202.
      mandatory: true,
      headers: eventHeaders(topic, requestId, traceparent, now),
    };
    try {
      await withSpan(
        deps.tracing,
        `publish ${EVENTS_EXCHANGE} ${topic}`,
        'producer',
        traceparent,
        messagingAttributes('send', EVENTS_EXCHANGE, messageId),
        (tp) => {
          if (tp !== undefined) options.headers = eventHeaders(topic, requestId, tp, now);
          return publisher.publish(EVENTS_EXCHANGE, topic, body, options);
        },
      );
    } catch (err) {
      const code = err instanceof WarrenError ? err.code : undefined;
      if (code === 'UNROUTABLE') {
        count(topic, 'unroutable');
        throw problems.noSubscriber(topic);
      }
      count(topic, code === 'PUBLISH_NACKED' ? 'nacked' : 'failed');
      throw toProblem(err, { service: `events/${topic}` });
    }
    count(topic, 'confirmed');
    // requestId is validated to [A-Za-z0-9._:-], messageId is a UUID: no JSON escaping needed.
    answer(res, 202, 'application/json', `{"requestId":"${requestId}","messageId":"${messageId}"}`);
  };
}
