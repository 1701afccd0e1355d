// Log lines handed on in batches: one write to the destination per `maxDelayMs` (or `maxChars`), not one per event-loop turn.
import type { DestinationStream } from 'pino';

export interface LineBatchOptions {
  /** The longest a line waits before it is handed on. */
  maxDelayMs: number;
  /** Handed on at once when this many characters wait. */
  maxChars: number;
}

interface Flushable extends DestinationStream {
  flush?: (cb: (err?: Error | null) => void) => void;
  flushSync?: () => void;
}

const batches = new Set<LineBatch>();
let exitHooked = false;

/**
 * Collects pino's lines and writes them to `destination` together. Each write to stdout's
 * destination is a thread-pool `fs.write` and its completion (for pino's worker-thread transport,
 * a wake-up of the worker), so a write per event-loop turn cost more than the lines themselves
 * under load (docs/performance/notes.md). The lines still waiting when the process exits are
 * handed on by an 'exit' listener placed before every other, so before pino's own exit hook
 * writes out (or a transport flushes) what the destination holds.
 */
export class LineBatch implements DestinationStream {
  private pending = '';
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly destination: Flushable,
    private readonly options: LineBatchOptions,
  ) {
    batches.add(this);
    if (!exitHooked) {
      exitHooked = true;
      process.prependListener('exit', () => {
        for (const b of batches) b.handOn();
      });
    }
  }

  write(line: string): void {
    this.pending += line;
    if (this.pending.length >= this.options.maxChars) this.handOn();
    else if (this.timer === undefined) {
      this.timer = setTimeout(this.handOn, this.options.maxDelayMs);
      this.timer.unref();
    }
  }

  /** Hands the waiting lines to the destination now. */
  readonly handOn = (): void => {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.pending === '') return;
    const lines = this.pending;
    this.pending = '';
    this.destination.write(lines);
  };

  /** pino's `logger.flush()`: the waiting lines, then the destination's own flush. */
  flush(cb: (err?: Error | null) => void): void {
    this.handOn();
    if (this.destination.flush) this.destination.flush(cb);
    else cb();
  }

  flushSync(): void {
    this.handOn();
    this.destination.flushSync?.();
  }
}
