// POST /v1/events/<topic>: checks and reads the request, then a confirmed, mandatory publish to the events exchange (202; 404 when nobody subscribes).
import type { IncomingMessage } from 'node:http';
import type { EventPublishMetrics, Tracing } from '@warren/observability';
import { PublishTimeoutError } from '@warren/messaging';
import { GATEWAY_APP_ID, newMessageId, topicProblem } from '@warren/protocol';
import { publishEvent, type EventPublisherLike } from '@warren/service-kit';
import { readBody } from './body';
import { answer, type ContextResponse } from './context';
import type { ByteBudget } from './edge';
import { checkJson, classifyContentType } from './input';
import { problems, toProblem } from './problems';
import { fingerprint, type UnconfirmedPublishes } from './unconfirmed';

export interface EventPublisher extends EventPublisherLike {
  readonly isReady: boolean;
}

export interface EventDeps {
  maxBodyBytes: number;
  bodyBudget?: ByteBudget;
  publisher: EventPublisher;
  metrics: EventPublishMetrics;
  isShuttingDown: () => boolean;
  tracing: Tracing;
  /** Events whose confirm timed out, for their retries (none: every retry is sent). */
  unconfirmed?: UnconfirmedPublishes;
}

/** The handler: answers 202 itself, rejects with the error to answer otherwise. */
export type EventHandler = (
  req: IncomingMessage,
  res: ContextResponse,
  topic: string,
) => Promise<void>;

export function eventHandler(deps: EventDeps): EventHandler {
  const { publisher, metrics } = deps;
  return async (req, res, topic) => {
    const { requestId, traceparent } = res.locals;
    const problem = topicProblem(topic);
    if (problem !== undefined) throw problems.invalidTopic(problem);
    const contentType = req.headers['content-type'] as string;
    const kind = classifyContentType(contentType);
    const body = await readBody(req, deps.maxBodyBytes, deps.bodyBudget);
    if (kind === 'json') checkJson(body);
    if (deps.isShuttingDown()) throw problems.shuttingDown();
    // A retry of an event whose confirm timed out is not sent twice (see UnconfirmedPublishes);
    // event topics are kept apart from service names by the prefix ("/" is in no service name).
    const key = `events/${topic}`;
    const held = deps.unconfirmed;
    let print: string | undefined;
    const printOf = (): string => (print ??= fingerprint(body, contentType, undefined));
    const delivered = held?.retry(key, requestId, printOf);
    if (delivered !== undefined) {
      answer(
        res,
        202,
        'application/json',
        JSON.stringify({ requestId, messageId: delivered.messageId, duplicate: true }),
      );
      return;
    }
    if (!publisher.isReady) {
      metrics.count(topic, 'failed');
      throw problems.brokerUnavailable();
    }
    const messageId = newMessageId();
    let result;
    try {
      result = await publishEvent(publisher, deps.tracing, metrics, {
        topic,
        body,
        contentType,
        requestId,
        traceparent,
        appId: GATEWAY_APP_ID,
        messageId,
      });
    } catch (err) {
      if (held !== undefined && err instanceof PublishTimeoutError)
        held.track(key, requestId, printOf(), err.late, messageId);
      throw toProblem(err, { service: key });
    }
    // basic.return: no queue is bound for the topic, so the event was not accepted.
    if (!result.delivered) throw problems.noSubscriber(topic);
    // requestId is validated to [A-Za-z0-9._:-], messageId is a UUID: no JSON escaping needed.
    answer(
      res,
      202,
      'application/json',
      `{"requestId":"${requestId}","messageId":"${result.messageId}"}`,
    );
  };
}
