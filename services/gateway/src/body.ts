// Raw body reading with a byte limit: one Buffer, no parsing, 413 as soon as the limit is passed.
import type { IncomingMessage } from 'node:http';
import { problems } from './problems';

const EMPTY = Buffer.alloc(0);

/**
 * Reads the request body once. A declared Content-Length over the limit fails before reading;
 * a streamed body fails as soon as it passes the limit. Rejects with an HttpProblem (413, 400).
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined) {
    const expected = Number(declared);
    if (!Number.isSafeInteger(expected) || expected < 0)
      return Promise.reject(problems.badRequest('invalid Content-Length'));
    if (expected > limit) return Promise.reject(problems.tooLarge(limit));
    if (expected === 0) return Promise.resolve(EMPTY);
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        // Stop reading: the response closes the connection (see the caller's Connection: close).
        req.pause();
        reject(problems.tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(problems.badRequest(`request body could not be read: ${err.message}`));
    };
    const onAborted = (): void => {
      cleanup();
      reject(problems.badRequest('request aborted by the client'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}
