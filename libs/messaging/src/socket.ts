// Fewer socket writes: amqplib hands every frame to the socket with its own write() call.
import type { ChannelModel } from 'amqplib';

interface Muxer {
  _readIncoming: (this: Muxer) => void;
}

interface CorkableStream {
  cork(): void;
  uncork(): void;
}

/**
 * amqplib's muxer moves outgoing frames from the channels' buffers to the socket on setImmediate,
 * one `write()` per frame: one syscall each (publishes, acks, confirms' methods). Corking the
 * socket for the length of each muxer pass turns a pass into one `writev`: the same bytes in the
 * same order, flushed before the pass returns, with fewer syscalls and TCP segments. Backpressure
 * is unchanged (a corked write still returns false past the high-water mark, and 'drain' follows).
 *
 * Uses amqplib internals (`connection.muxer`, `connection.stream`); when their shape is not the
 * expected one it changes nothing and returns false.
 */
export function coalesceWrites(model: ChannelModel): boolean {
  const connection = (model as unknown as { connection?: { muxer?: unknown; stream?: unknown } })
    .connection;
  const muxer = connection?.muxer as Partial<Muxer> | undefined;
  const stream = connection?.stream as Partial<CorkableStream> | undefined;
  if (
    !muxer ||
    typeof muxer._readIncoming !== 'function' ||
    !stream ||
    typeof stream.cork !== 'function' ||
    typeof stream.uncork !== 'function'
  )
    return false;
  const pass = muxer._readIncoming;
  const s = stream as CorkableStream;
  muxer._readIncoming = function (this: Muxer) {
    s.cork();
    try {
      pass.call(this);
    } finally {
      s.uncork();
    }
  };
  return true;
}
