// Async publishes whose confirm timed out, by service and request id: a retry of one is held or deduplicated, never sent twice.
import { createHash } from 'node:crypto';
import type { LateOutcome } from '@warren/messaging';
import { problems } from './problems';

/**
 * What to do with a publish: send it, or answer without sending (its earlier copy's outcome is
 * unknown, or it was delivered: then with that copy's message id when it was tracked with one).
 */
export type UnconfirmedCheck =
  { state: 'send' } | { state: 'pending' } | { state: 'delivered'; messageId: string | undefined };

const SEND: UnconfirmedCheck = Object.freeze({ state: 'send' });
const PENDING: UnconfirmedCheck = Object.freeze({ state: 'pending' });

export interface UnconfirmedOptions {
  /** Entries kept at most; past it the oldest goes (a retry of it is then sent again). */
  maxEntries?: number;
  /** How long a late-confirmed publish is remembered for its retries. */
  rememberMs?: number;
  now?: () => number;
  /** Called once per publish with what became of it. */
  onLate?: (outcome: LateOutcome) => void;
  /** Called for each retry answered without sending: held (503) or deduplicated (202). */
  onRetry?: (outcome: 'retry_held' | 'retry_deduplicated') => void;
}

interface Entry {
  fingerprint: string;
  messageId: string | undefined;
  state: 'pending' | 'delivered';
  /** For `delivered`: forgotten after this time. */
  until: number;
}

/** The same request again: the same content type, action and bytes. */
export function fingerprint(body: Buffer, contentType: string, action: string | undefined): string {
  return createHash('sha256')
    .update(contentType)
    .update('\u0000')
    .update(action ?? '')
    .update('\u0000')
    .update(body)
    .digest('base64');
}

/**
 * A publish whose confirm timed out was answered 503 with its outcome unknown: RabbitMQ may still
 * take it (it holds the publish that makes it block a connection during a resource alarm until the
 * alarm clears; a stalled socket delivers what it holds later). The client is told to retry with
 * the same `x-request-id`; this remembers such publishes until their late confirm, so that a retry
 * (same service, request id and bytes) is answered without a second copy: 503 again while the
 * outcome is unknown, 202 once the first copy was confirmed; sent anew only when the broker refused
 * it or its channel closed first. Empty (and free: one `size` check per publish) in normal running.
 */
export class UnconfirmedPublishes {
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;
  private readonly rememberMs: number;
  private readonly now: () => number;

  constructor(private readonly options: UnconfirmedOptions = {}) {
    this.maxEntries = options.maxEntries ?? 10_000;
    this.rememberMs = options.rememberMs ?? 10 * 60_000;
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  /** `print` is computed only when an earlier publish under this key is remembered. */
  check(service: string, requestId: string, print: () => string): UnconfirmedCheck {
    if (this.entries.size === 0) return SEND;
    const key = keyOf(service, requestId);
    const entry = this.entries.get(key);
    if (entry === undefined) return SEND;
    if (entry.state === 'delivered' && entry.until <= this.now()) {
      this.entries.delete(key);
      return SEND;
    }
    // Same request id, other bytes: another request (ids are the client's, not unique).
    if (entry.fingerprint !== print()) return SEND;
    return entry.state === 'pending' ? PENDING : { state: 'delivered', messageId: entry.messageId };
  }

  /**
   * Before a publish (POST /v1/<service> one-way, or an event; `key` names the destination):
   * undefined to send it; a retry of a publish whose outcome is still unknown throws the 503;
   * one of a publish delivered since returns that copy (answer 202 duplicate, send nothing).
   */
  retry(
    key: string,
    requestId: string,
    print: () => string,
  ): { messageId: string | undefined } | undefined {
    const prior = this.check(key, requestId, print);
    if (prior.state === 'send') return undefined;
    if (prior.state === 'pending') {
      this.options.onRetry?.('retry_held');
      throw problems.unconfirmedRetry();
    }
    this.options.onRetry?.('retry_deduplicated');
    return prior;
  }

  /** A publish timed out: remember it until `late` tells what became of it. */
  track(
    service: string,
    requestId: string,
    print: string,
    late: Promise<LateOutcome>,
    messageId?: string,
  ): void {
    const key = keyOf(service, requestId);
    const entry: Entry = { fingerprint: print, messageId, state: 'pending', until: Infinity };
    this.entries.delete(key);
    this.entries.set(key, entry);
    this.evict();
    void late.then((outcome) => {
      this.options.onLate?.(outcome);
      if (this.entries.get(key) !== entry) return;
      if (outcome === 'confirmed') {
        entry.state = 'delivered';
        entry.until = this.now() + this.rememberMs;
      } else {
        // Refused, or its channel closed first: a retry is sent again (at least once).
        this.entries.delete(key);
      }
    });
  }

  private evict(): void {
    const now = this.now();
    for (const [key, entry] of this.entries) {
      if (
        this.entries.size <= this.maxEntries &&
        !(entry.state === 'delivered' && entry.until <= now)
      )
        break;
      this.entries.delete(key);
    }
  }
}

const keyOf = (service: string, requestId: string): string => `${service}\u0000${requestId}`;
