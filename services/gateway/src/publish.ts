// POST /v1/<service>: checks and reads the request, then a confirmed publish (202) or a call answered with the reply.
import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import {
  PublishTimeoutError,
  type PublishOptions,
  type RpcCallOptions,
  type RpcReply,
} from '@warren/messaging';
import { messagingAttributes, withSpan, type Tracing } from '@warren/observability';
import {
  GATEWAY_APP_ID,
  WarrenError,
  callHeaders,
  newMessageId,
  problemTitle,
  problemType,
  replyTiming,
  type ReplyTiming,
  requestHeaders,
} from '@warren/protocol';
import { readBody } from './body';
import { answer, type ContextResponse } from './context';
import {
  actionFrom,
  callModeFrom,
  checkJson,
  checkServiceName,
  classifyContentType,
} from './input';
import type { ByteBudget } from './edge';
import type { GatewayRecorder } from './metrics';
import { PROBLEM_CONTENT_TYPE, problems, toProblem } from './problems';
import type { ServiceRegistry } from '@warren/registry';
import { fingerprint, type UnconfirmedPublishes } from './unconfirmed';
import type { CallShedder } from './shedding';

/** What the gateway needs from the messaging layer (one Publisher and one RpcClient per process). */
export interface MessagePublisher {
  readonly isReady: boolean;
  send(queue: string, body: Buffer, options?: PublishOptions): Promise<void>;
}

export interface MessageCaller {
  readonly isReady: boolean;
  /** Calls waiting for their reply. */
  readonly pendingCalls: number;
  call(queue: string, body: Buffer, options: RpcCallOptions): Promise<RpcReply>;
}

export interface PublishDeps {
  maxBodyBytes: number;
  /**
   * Calls that may wait for replies at once (GATEWAY_MAX_PENDING_CALLS): past it a call is refused
   * at once, 503 overloaded + Retry-After, instead of queueing behind the others.
   */
  maxPendingCalls?: number;
  /** Bytes all request bodies being read may take together (GATEWAY_MAX_INFLIGHT_BYTES). */
  bodyBudget?: ByteBudget;
  publisher: MessagePublisher;
  rpc: MessageCaller;
  registry: ServiceRegistry;
  /**
   * True when calls to `service` may get a reply: a live instance in the registry, the registry
   * still warming up, or else (the registry is a hint, not the truth) consumers on its queue.
   */
  mayReply: (service: string) => boolean | Promise<boolean>;
  recorder: GatewayRecorder;
  /** Sheds calls to a service whose calls queue too long (none: only maxPendingCalls bounds them). */
  shedder?: CallShedder;
  /** Async publishes whose confirm timed out, for their retries (none: every retry is sent). */
  unconfirmed?: UnconfirmedPublishes;
  isShuttingDown: () => boolean;
  /** A PRODUCER span per publish or call (when tracing is on). */
  tracing: Tracing;
}

export type Query = Record<string, unknown>;

/** The handler: answers itself on success, rejects with the error to answer on failure. */
export type PublishHandler = (
  req: IncomingMessage,
  res: ContextResponse,
  service: string,
  query: Query,
) => Promise<void>;

export function publishHandler(deps: PublishDeps): PublishHandler {
  const { publisher, rpc, recorder } = deps;
  return async (req, res, service, query) => {
    const { requestId, traceparent } = res.locals;
    // Refusals before the body is read leave it unread: the answer closes the connection when
    // more than a little is left (sendProblem), so node does not read it to the end.
    checkServiceName(service);
    const { wait, timeoutMs } = callModeFrom(query.wait, query.timeoutMs);
    const type = actionFrom(query.type, req.headers['x-warren-action']);
    const contentType = req.headers['content-type'] as string;
    const kind = classifyContentType(contentType);
    const body = await readBody(req, deps.maxBodyBytes, deps.bodyBudget);
    if (kind === 'json') checkJson(body);
    if (deps.isShuttingDown()) throw problems.shuttingDown();

    const now = Date.now();
    // messageId: unique per message; the request id (client-chosen, not unique) is in x-request-id.
    const headersFor = wait ? callHeaders : requestHeaders;
    const options: PublishOptions = {
      messageId: newMessageId(),
      contentType,
      timestamp: Math.floor(now / 1000),
      appId: GATEWAY_APP_ID,
      persistent: !wait,
      headers: headersFor(requestId, traceparent, now),
    };
    if (type !== undefined) options.type = type;
    // With tracing on, the publish is a PRODUCER span and the message carries its context.
    const traced = <T>(work: () => Promise<T>): Promise<T> =>
      deps.tracing.enabled
        ? withSpan(
            deps.tracing,
            `publish ${service}`,
            'producer',
            traceparent,
            messagingAttributes('send', service, options.messageId),
            (tp) => {
              options.headers = headersFor(requestId, tp, now);
              return work();
            },
          )
        : work();

    if (!wait) {
      // A retry of a publish whose confirm timed out is not sent twice (see UnconfirmedPublishes).
      const held = deps.unconfirmed;
      let print: string | undefined;
      const printOf = (): string => (print ??= fingerprint(body, contentType, type));
      if (held?.retry(service, requestId, printOf) !== undefined) {
        answer(res, 202, 'application/json', `{"requestId":"${requestId}","duplicate":true}`);
        return;
      }
      if (!publisher.isReady) {
        recorder.publish(service, 'failed');
        throw problems.brokerUnavailable();
      }
      try {
        await traced(() => publisher.send(service, body, options));
      } catch (err) {
        recorder.publish(service, publishOutcome(err));
        if (held !== undefined && err instanceof PublishTimeoutError)
          held.track(service, requestId, printOf(), err.late);
        throw toProblem(err, { service, live: deps.registry.hasLive(service) });
      }
      recorder.publish(service, 'confirmed');
      // requestId is validated to [A-Za-z0-9._:-]: no JSON escaping needed.
      answer(res, 202, 'application/json', `{"requestId":"${requestId}"}`);
      return;
    }

    const start = performance.now();
    if (!rpc.isReady) {
      recorder.rpcDone(service, 'unavailable', (performance.now() - start) / 1000, false);
      throw problems.brokerUnavailable();
    }
    if (deps.maxPendingCalls !== undefined && rpc.pendingCalls >= deps.maxPendingCalls) {
      recorder.overload('pending_calls');
      throw problems.overloaded('pending_calls');
    }
    const shedder = deps.shedder;
    if (shedder !== undefined && !shedder.admit(service)) {
      recorder.overload('queue_delay');
      throw problems.overloaded('queue_delay');
    }
    let reply: RpcReply;
    // Set once a reply came with its timing (time queued, time in the service).
    let timing: ReplyTiming | undefined;
    try {
      const may = deps.mayReply(service);
      if (may !== true && !(await may)) {
        recorder.rpcDone(service, 'unavailable', (performance.now() - start) / 1000, false);
        throw problems.noLiveInstance(service);
      }
      try {
        (options as RpcCallOptions).timeoutMs = timeoutMs;
        reply = await traced(() => rpc.call(service, body, options as RpcCallOptions));
        timing = replyTiming(reply.headers);
      } catch (err) {
        const outcome = publishOutcome(err);
        const timedOut = codeOf(err) === 'RPC_TIMEOUT';
        recorder.publish(service, timedOut ? 'confirmed' : outcome);
        recorder.rpcDone(
          service,
          timedOut ? 'timeout' : outcome === 'failed' ? 'unavailable' : 'error',
          (performance.now() - start) / 1000,
          timedOut || outcome === 'nacked' || outcome === 'confirmed',
        );
        throw toProblem(err, { service, timeoutMs, live: deps.registry.hasLive(service) });
      }
    } finally {
      shedder?.done(service, performance.now() - start, timing);
    }
    recorder.publish(service, 'confirmed');
    recorder.rpcDone(
      service,
      reply.status < 400 ? 'ok' : 'error',
      (performance.now() - start) / 1000,
      true,
    );
    sendReply(res, reply);
  };
}

/** Defaults for a service's error reply whose body is not a problem of its own. */
const SERVICE_ERROR_TYPE = problemType('SERVICE_ERROR');
const SERVICE_ERROR_TITLE = problemTitle('SERVICE_ERROR');

const codeOf = (err: unknown): string | undefined =>
  err instanceof WarrenError ? err.code : undefined;

function publishOutcome(err: unknown): 'nacked' | 'unroutable' | 'failed' | 'confirmed' {
  const code = codeOf(err);
  // A bad reply was still a message the broker took.
  if (code === 'BAD_REPLY') return 'confirmed';
  if (code === 'UNROUTABLE') return 'unroutable';
  if (code === 'PUBLISH_NACKED') return 'nacked';
  return 'failed';
}

/**
 * The service's reply as the HTTP answer: its status (`x-status`), bytes and content type, all
 * checked by the RPC client against the protocol's reply rules. A failed call's problem body gets
 * the requestId added, so every error the client sees is problem+json.
 */
function sendReply(res: ContextResponse, reply: RpcReply): void {
  const { status } = reply;
  if (status < 400) {
    answer(res, status, reply.contentType, reply.body);
    return;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(reply.body.toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const base =
    parsed && typeof parsed === 'object' && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : { detail: reply.body.toString('utf8').slice(0, 2000) };
  const out = JSON.stringify({
    type: SERVICE_ERROR_TYPE,
    title: SERVICE_ERROR_TITLE,
    ...base,
    status,
    requestId: res.locals.requestId,
  });
  answer(res, status, PROBLEM_CONTENT_TYPE, out);
}
