// Message identity and kind: a fresh messageId per message, and whether a message is (or was) a call.
import { randomUUID } from 'node:crypto';
import { HEADERS } from './headers';

/**
 * A new `messageId`: a UUID v4, unique per message Warren publishes. The request id travels in
 * `x-request-id`; copies of one message (retry, redelivery, dead-letter and replay copies) keep
 * their original's messageId, since they are the same message.
 */
export const newMessageId = (): string => randomUUID();

/** The AMQP properties this module reads (amqplib's MessageProperties fits). */
export interface MessageKindFields {
  replyTo?: unknown;
  headers?: Readonly<Record<string, unknown>> | undefined;
}

/** A call: the sender waits for a reply (`replyTo` set), or a copy of one (the `x-call` marker). */
export function isCall(properties: MessageKindFields): boolean {
  const { replyTo } = properties;
  if (typeof replyTo === 'string' && replyTo.length > 0) return true;
  const marker = properties.headers?.[HEADERS.call];
  return marker !== undefined && marker !== null && marker !== 0 && marker !== false;
}

/**
 * Whether the broker dead-lettered this message because its TTL ran out in `queue` (an `x-death`
 * entry with reason `expired` for that queue): a call whose caller gave up, or a message its
 * publisher wanted dropped. Expiry in a retry queue (`<queue>.retry.<ms>.v2`) does not count.
 */
export function expiredIn(
  headers: Readonly<Record<string, unknown>> | undefined,
  queue: string,
): boolean {
  const deaths = headers?.['x-death'];
  if (!Array.isArray(deaths)) return false;
  return deaths.some(
    (d: unknown) =>
      typeof d === 'object' &&
      d !== null &&
      (d as { reason?: unknown }).reason === 'expired' &&
      (d as { queue?: unknown }).queue === queue,
  );
}
