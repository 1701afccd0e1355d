// Service-to-service client: send to or call another service, carrying requestId and traceparent.
import type { Publisher, RpcClient, RpcReply } from '@warren/messaging';
import { messagingAttributes, withSpan, type Tracing } from '@warren/observability';
import { callHeaders, newMessageId, requestHeaders } from '@warren/protocol';

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

export interface ClientDeps {
  publisher: Publisher;
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
