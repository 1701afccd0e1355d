// Crash-loop protection: how often a message has been redelivered, and what the processor does next.
import { HEADERS } from '@warren/protocol';

/**
 * What to do with a delivery before its handler runs:
 * - `process`: handle it;
 * - `count`: classic queues only: a redelivery. Republish a copy carrying `x-redeliveries` =
 *   `redeliveries` (confirmed), then ack this one: the count travels with the message, so it
 *   survives the process restarts of a crash loop;
 * - `limit`: redelivered more than `maxRedeliveries` times: to the DLQ (a call is answered).
 */
export type RedeliveryAction =
  | { readonly kind: 'process' }
  | { readonly kind: 'count'; readonly redeliveries: number }
  | { readonly kind: 'limit'; readonly redeliveries: number };

const PROCESS: RedeliveryAction = { kind: 'process' };

function count(v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
  return Number.isInteger(n) && n > 0 ? n : 0;
}

/**
 * Quorum queues count returns themselves (`x-delivery-count`, 0 or absent on the first delivery).
 * Classic queues only flag a redelivery (`redelivered`), so the count is the `x-redeliveries`
 * header of the copy plus this redelivery; a message that is not redelivered is processed whatever
 * its header says (a client cannot make a first delivery count as a redelivery).
 */
export function redeliveryAction(
  queueType: 'classic' | 'quorum',
  redelivered: boolean,
  headers: Readonly<Record<string, unknown>>,
  maxRedeliveries: number,
): RedeliveryAction {
  if (queueType === 'quorum') {
    const n = count(headers['x-delivery-count']);
    return n > maxRedeliveries ? { kind: 'limit', redeliveries: n } : PROCESS;
  }
  if (!redelivered) return PROCESS;
  const n = count(headers[HEADERS.redeliveries]) + 1;
  return n > maxRedeliveries
    ? { kind: 'limit', redeliveries: n }
    : { kind: 'count', redeliveries: n };
}

/**
 * Milliseconds left of a message's TTL (`expiration`) for a copy that should expire when the
 * original would have: undefined when it has none or its publish time is unknown (then the copy
 * keeps the original `expiration`); 0 or less when it has run out (drop it, as the broker would).
 */
export function ttlLeft(
  expiration: unknown,
  publishedAtMs: number | undefined,
  now: number,
): number | undefined {
  const ttl =
    typeof expiration === 'string' || typeof expiration === 'number' ? Number(expiration) : NaN;
  if (!Number.isFinite(ttl) || ttl < 0 || publishedAtMs === undefined) return undefined;
  return Math.floor(publishedAtMs + ttl - now);
}
