// Admission at the door: while the gateway's own event loop runs late, a limit on requests in progress; past it, refused before any work.
import { monitorEventLoopDelay } from 'node:perf_hooks';

/** The event loop's lateness: the least delay seen since the last take (ms); NaN with no sample. */
export interface LoopDelaySource {
  takeMinMs(): number;
  close(): void;
}

/**
 * perf_hooks' native monitor: a libuv timer every `resolutionMs` records the time between its
 * firings; what exceeds the resolution is how late the loop ran (a turn longer than the
 * resolution makes the next firing late by the excess).
 */
export function loopDelayMonitor(resolutionMs = 10): LoopDelaySource {
  const h = monitorEventLoopDelay({ resolution: resolutionMs });
  h.enable();
  return {
    takeMinMs(): number {
      // The histogram's min is a huge sentinel until it holds a sample.
      const min = h.count > 0 ? Math.max(0, h.min / 1e6 - resolutionMs) : NaN;
      h.reset();
      return min;
    },
    close(): void {
      h.disable();
    },
  };
}

export interface AdmissionOptions {
  /** Loop delay (ms) past which the gateway counts itself overloaded; 0 turns admission off. */
  targetMs: number;
  /** Requests in progress now (answers not yet closed). */
  inProgress: () => number;
  /** How often the loop's delay is read and the limit revisited (ms). Default 100. */
  intervalMs?: number;
  /** The limit never goes below this. Default 8. */
  minLimit?: number;
  /** Quiet intervals (not late, limit not reached) before the limit is lifted. Default 10. */
  liftAfter?: number;
  delay?: LoopDelaySource;
  now?: () => number;
}

/** What one interval saw, for the summary line. */
export interface AdmissionInterval {
  delayMs: number;
  limit: number;
  refused: number;
}

/**
 * Why: when the gateway's single thread is the bottleneck, requests wait in its sockets, where
 * nothing can shed them, and refusing a call after it has been read, parsed, logged and checked
 * costs almost as much CPU as serving it (docs/performance.md's overload notes: about 140 µs
 * against 160-180). So the decision is made first, on one figure the gateway measures of itself.
 *
 * The signal is the event loop's delay (perf_hooks' monitor), and as in CoDel the *least* delay
 * over an interval (100 ms): a burst that passes leaves some turns short; a standing backlog makes
 * every turn long. Each interval: while it exceeds `targetMs`, the limit on requests in progress
 * drops to three quarters of what was in progress (or of the limit, if lower), but not below what
 * Little's law gives at the rate admitted while the loop was on time (that rate x `targetMs`), nor
 * below `minLimit`; while it stays within `targetMs`, a limit that was reached grows by a quarter,
 * and a limit neither reached nor needed for `liftAfter` intervals is lifted. A request past the limit
 * is refused at once (503 overloaded, Retry-After), before its body, its context or its log line.
 * The admitted ones keep the loop near `targetMs` late; the rest learn at once to come back later.
 * A refusal still costs its HTTP handling (about 57 µs here, a bare node server's 35-38), which
 * bounds what one process can serve while refusing (docs/performance.md, "Why one process cannot
 * meet the 2x goals here").
 */
export class LoopAdmission {
  private limit = Infinity;
  private windowStart: number;
  private refusedInWindow = 0;
  private hitLimit = false;
  private lateNow = false;
  private quiet = 0;
  private admittedInWindow = 0;
  /** Requests admitted per second: the best quiet interval's, decaying 1 % per quiet interval. */
  private peakRate = 0;
  private readonly intervalMs: number;
  private readonly minLimit: number;
  private readonly liftAfter: number;
  private readonly now: () => number;
  private readonly delay: LoopDelaySource | undefined;

  constructor(
    private readonly options: AdmissionOptions,
    /** Told at the end of every interval in which requests were refused. */
    private readonly onRefusals?: (interval: AdmissionInterval) => void,
  ) {
    this.intervalMs = options.intervalMs ?? 100;
    this.minLimit = options.minLimit ?? 8;
    this.liftAfter = options.liftAfter ?? 10;
    this.now = options.now ?? Date.now;
    this.windowStart = this.now();
    this.delay = options.targetMs > 0 ? (options.delay ?? loopDelayMonitor()) : undefined;
  }

  get enabled(): boolean {
    return this.delay !== undefined;
  }

  /** True when the last interval found the loop later than the target. */
  get late(): boolean {
    return this.lateNow;
  }

  /** The current limit on requests in progress (Infinity: none). */
  get currentLimit(): number {
    return this.limit;
  }

  /** True: refuse this request now (it is counted); false: let it in. */
  refuses(): boolean {
    if (this.delay === undefined) return false;
    if (this.now() - this.windowStart >= this.intervalMs) this.roll();
    if (this.limit === Infinity || this.options.inProgress() < this.limit) {
      this.admittedInWindow++;
      return false;
    }
    this.hitLimit = true;
    this.refusedInWindow++;
    return true;
  }

  close(): void {
    this.delay?.close();
  }

  private roll(): void {
    const delayMs = this.delay!.takeMinMs();
    const { targetMs } = this.options;
    const refused = this.refusedInWindow;
    const now = this.now();
    const rate = (this.admittedInWindow * 1000) / Math.max(1, now - this.windowStart);
    if (Number.isNaN(delayMs)) {
      // No sample in this interval: nothing learned, nothing changed.
    } else if (delayMs > targetMs) {
      this.lateNow = true;
      // Little's law: at the rate the gateway served while it kept up, this many in progress wait
      // about targetMs. Cutting below it would not make the loop faster when the arrivals
      // themselves (refused or not) are the load, only serve fewer.
      const floor = Math.max(this.minLimit, Math.ceil((this.peakRate * targetMs) / 1000));
      const base = Math.min(this.limit, this.options.inProgress());
      this.limit = Math.max(floor, Math.floor(base * 0.75));
      this.quiet = 0;
    } else {
      this.lateNow = false;
      this.peakRate = Math.max(rate, this.peakRate * 0.99);
      if (this.limit !== Infinity) this.relax();
    }
    if (refused > 0) this.onRefusals?.({ delayMs, limit: this.limit, refused });
    this.windowStart = now;
    this.refusedInWindow = 0;
    this.admittedInWindow = 0;
    this.hitLimit = false;
  }

  /** On time with a limit set: grow it if it was reached, lift it after `liftAfter` quiet intervals. */
  private relax(): void {
    if (this.hitLimit) {
      this.limit += Math.max(1, Math.ceil(this.limit / 4));
      this.quiet = 0;
    } else if (++this.quiet >= this.liftAfter) {
      this.limit = Infinity;
      this.quiet = 0;
    }
  }
}
