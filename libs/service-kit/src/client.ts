// Service-to-service client: send to or call another service, carrying requestId and traceparent.
import type { Publisher, RpcClient, RpcReply } from '@warren/messaging';
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
  const props = (contentType: string, type: string | undefined, call: boolean) => ({
    messageId: newMessageId(),
    contentType,
    type,
    appId: deps.appId,
    timestamp: Math.floor(Date.now() / 1000),
    persistent: true,
    headers: (call ? callHeaders : requestHeaders)(requestId, traceparent, Date.now()),
  });
  return {
    async send(service, body, options = {}) {
      const { bytes, contentType } = encodeBody(body, options.contentType);
      const p = props(contentType, options.type, false);
      await deps.publisher.send(service, bytes, p);
      return p.messageId;
    },
    async call(service, body, options = {}) {
      const { bytes, contentType } = encodeBody(body, options.contentType);
      const rpc = await deps.rpc();
      return rpc.call(service, bytes, {
        ...props(contentType, options.type, true),
        timeoutMs: options.timeoutMs ?? 5000,
      });
    },
  };
}
