// Per-client fixed-window rate limit: hits counted in express-rate-limit's MemoryStore, draft-7 RateLimit headers.
import { MemoryStore, ipKeyGenerator, type Options } from 'express-rate-limit';

export interface RateDecision {
  allowed: boolean;
  /** Seconds until the client's window resets (the Retry-After of a refusal). */
  resetS: number;
  /** `RateLimit-Policy` and `RateLimit` (IETF draft 7) as name, value pairs. */
  headers: [string, string, string, string];
}

/**
 * A limit of `limit` requests per `windowMs` per client. The counting is the library's store (the
 * same one its middleware uses, and replaceable by its shared stores); this class only calls it,
 * without the middleware's per-request option lookups, validations and express request object.
 */
export class RateLimiter {
  private readonly store = new MemoryStore();
  private readonly policy: string;

  constructor(
    readonly limit: number,
    readonly windowMs = 60_000,
  ) {
    // The store reads only windowMs (and sets up its expiry timer, unref'd).
    this.store.init({ windowMs } as Options);
    this.policy = `${limit};w=${Math.ceil(windowMs / 1000)}`;
  }

  /** The client a request counts against: its API key's index, else its IP (IPv6 per /56). */
  static clientKey(keyId: number | undefined, ip: string): string {
    return keyId !== undefined ? `key:${keyId}` : ipKeyGenerator(ip);
  }

  async hit(client: string): Promise<RateDecision> {
    const { totalHits, resetTime } = await this.store.increment(client);
    const resetS = resetTime
      ? Math.max(0, Math.ceil((resetTime.getTime() - Date.now()) / 1000))
      : Math.ceil(this.windowMs / 1000);
    const remaining = Math.max(this.limit - totalHits, 0);
    return {
      allowed: totalHits <= this.limit,
      resetS,
      headers: [
        'ratelimit-policy',
        this.policy,
        'ratelimit',
        `limit=${this.limit}, remaining=${remaining}, reset=${resetS}`,
      ],
    };
  }

  close(): void {
    this.store.shutdown();
  }
}
