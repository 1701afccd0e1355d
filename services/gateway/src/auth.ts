// API key check: Bearer or x-api-key, compared in constant time against every configured key.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

const digest = (key: string): Buffer => createHash('sha256').update(key, 'utf8').digest();

export class ApiKeys {
  private readonly digests: readonly Buffer[];

  constructor(keys: readonly string[]) {
    this.digests = keys.map(digest);
  }

  /** No keys configured: the gateway is open (local use). */
  get enabled(): boolean {
    return this.digests.length > 0;
  }

  /**
   * The index of the matching key (a label that is safe to use as a rate-limit key or in logs),
   * or -1. Hashing first makes every comparison the same length; all keys are always compared.
   */
  match(candidate: string | undefined): number {
    if (candidate === undefined || candidate.length === 0 || candidate.length > 1024) return -1;
    const d = digest(candidate);
    let found = -1;
    for (let i = 0; i < this.digests.length; i++) {
      if (timingSafeEqual(d, this.digests[i] as Buffer) && found === -1) found = i;
    }
    return found;
  }
}

/** The key a request presents: `Authorization: Bearer <key>`, else `x-api-key`. */
export function presentedKey(headers: IncomingHttpHeaders): string | undefined {
  const auth = headers.authorization;
  if (auth !== undefined && auth.length > 7 && auth.slice(0, 7).toLowerCase() === 'bearer ')
    return auth.slice(7).trim();
  const x = headers['x-api-key'];
  return typeof x === 'string' ? x.trim() : undefined;
}
