// API keys: read from GATEWAY_API_KEYS / _FILE once, presented as Bearer or x-api-key, compared in constant time against every key.
import { createHash, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { ConfigError } from './errors';

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

const MIN_KEY_LENGTH = 16;

/** Keys from a comma/newline separated text; `#` starts a comment line. */
export function parseKeys(text: string): string[] {
  return text
    .split(/[,\n\r]+/)
    .map((k) => k.trim())
    .filter((k) => k.length > 0 && !k.startsWith('#'));
}

/**
 * The keys of GATEWAY_API_KEYS (comma/newline separated) and GATEWAY_API_KEYS_FILE together,
 * each at least 16 characters without spaces; a bad source is one ConfigError line. Shared by
 * the gateway and the console (whose actions take the gateway's keys).
 */
export function apiKeysFromEnv(inline: string | undefined, file: string | undefined): string[] {
  const keys = new Set<string>();
  if (inline) for (const key of parseKeys(inline)) keys.add(key);
  if (file) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      const reason = err instanceof Error && 'code' in err ? String(err.code) : 'unreadable';
      throw new ConfigError(
        `invalid configuration: GATEWAY_API_KEYS_FILE: cannot read ${file} (${reason})`,
      );
    }
    const fromFile = parseKeys(text);
    if (fromFile.length === 0)
      throw new ConfigError(`invalid configuration: GATEWAY_API_KEYS_FILE: ${file} holds no key`);
    for (const key of fromFile) keys.add(key);
  }
  const short = [...keys].filter((key) => key.length < MIN_KEY_LENGTH || /\s/.test(key)).length;
  if (short > 0)
    throw new ConfigError(
      `invalid configuration: GATEWAY_API_KEYS: ${short} key(s) shorter than ${MIN_KEY_LENGTH} characters or containing spaces`,
    );
  return [...keys];
}
