// Per-client fixed-window rate limit: hits counted in express-rate-limit's MemoryStore, draft-7 RateLimit headers.
import { MemoryStore, ipKeyGenerator, type Options } from 'express-rate-limit';

export interface RateDecision {
  allowed: boolean;
  /** Seconds until the client's window resets (the Retry-After of a refusal). */
  resetS: number;
  /** `RateLimit-Policy` and `RateLimit` (IETF draft 7) as name, value pairs. */
  headers: [string, string, string, string];
}

const MAX_IPV6_KEYS = 4096;
const ipv6Keys = new Map<string, string>();

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
    if (keyId !== undefined) return `key:${keyId}`;
    // An IPv4 address is its own key (the library returns it unchanged after an IPv6 regex test);
    // an IPv6 one is parsed to its /56 once, then kept (a bounded map, emptied when full).
    if (!ip.includes(':')) return ip;
    let key = ipv6Keys.get(ip);
    if (key === undefined) {
      if (ipv6Keys.size >= MAX_IPV6_KEYS) ipv6Keys.clear();
      key = ipKeyGenerator(ip);
      ipv6Keys.set(ip, key);
    }
    return key;
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
