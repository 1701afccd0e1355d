// Raw body reading with a byte limit and a shared in-flight budget: one Buffer, no parsing, 413 past the limit.
import type { IncomingMessage } from 'node:http';
import type { ByteBudget } from './edge';
import { problems } from './problems';

const EMPTY = Buffer.alloc(0);

/**
 * Past the limit, up to this many more bytes are read and dropped before the 413 is sent. Closing
 * a socket while the client is still sending makes the kernel reset the connection, and the reset
 * can destroy the 413 before the client reads it; a body this far over is closed on regardless.
 */
export const DISCARD_BYTES = 8 * 1024 * 1024;

/**
 * Reads the request body once. Over the limit, the rest is read and dropped (at most
 * DISCARD_BYTES, nothing is kept) and then it fails with 413; a declared Content-Length beyond
 * that fails before reading. With a `budget`, the body first takes its share of the bytes all
 * requests may be reading at once: its declared length (at most `limit`: nothing past it is
 * kept), or `limit` when the length is unknown (chunked); if that does not fit it fails with 503
 * before reading anything, and the share is given back as soon as the reading ends, however it
 * ends. Rejects with a problem (413, 400, 503).
 */
export function readBody(
  req: IncomingMessage,
  limit: number,
  budget?: ByteBudget,
): Promise<Buffer> {
  const declared = req.headers['content-length'];
  let share = limit;
  if (declared !== undefined) {
    const expected = Number(declared);
    if (!Number.isSafeInteger(expected) || expected < 0)
      return Promise.reject(problems.badRequest('invalid Content-Length'));
    if (expected > limit + DISCARD_BYTES) return Promise.reject(problems.tooLarge(limit));
    if (expected === 0) return Promise.resolve(EMPTY);
    share = Math.min(expected, limit);
  }
  if (budget && !budget.take(share)) return Promise.reject(problems.overloaded('inflight_bytes'));
  return new Promise<Buffer>((resolve, reject) => {
    let chunks: Buffer[] = [];
    let size = 0;
    const settle = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onAborted);
      budget?.release(share);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit + DISCARD_BYTES) {
        settle();
        // Stop reading: the answer closes the connection (sendProblem: a large body is unread).
        req.pause();
        reject(problems.tooLarge(limit));
        return;
      }
      // Over the limit: keep nothing, read on to the end (or the bound above), then answer 413.
      if (size > limit) chunks = [];
      else chunks.push(chunk);
    };
    const onEnd = (): void => {
      settle();
      if (size > limit) reject(problems.tooLarge(limit));
      else resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => {
      settle();
      reject(problems.badRequest(`request body could not be read: ${err.message}`));
    };
    // 'close' before 'end': the client aborted, or the connection went away (or was cut by a timeout) mid-body.
    const onAborted = (): void => {
      settle();
      reject(problems.badRequest('request aborted by the client'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onAborted);
  });
}
