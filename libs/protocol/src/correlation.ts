// Correlation ids for calls: 128 random bits each, so a reply cannot be addressed to a call its sender did not see.
import { randomFillSync } from 'node:crypto';

const ID_BYTES = 16;
/** Random bytes drawn in blocks: one getrandom call per 256 ids, not one per call. */
const POOL = Buffer.allocUnsafe(ID_BYTES * 256);
let offset = POOL.length;

/** 22 characters of base64url: 128 bits from the system CSPRNG (a UUID v4 has 122). */
export function newCorrelationId(): string {
  if (offset + ID_BYTES > POOL.length) {
    randomFillSync(POOL);
    offset = 0;
  }
  const id = POOL.toString('base64url', offset, offset + ID_BYTES);
  offset += ID_BYTES;
  return id;
}

/** Bits of entropy in an id of newCorrelationId (documented, and checked by its test). */
export const CORRELATION_ID_BITS = ID_BYTES * 8;
