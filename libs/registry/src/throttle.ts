// Rate-limits repeated log lines: one per interval, with the count of the ones it held back.

export class Throttle {
  private last = Number.NEGATIVE_INFINITY;
  private suppressed = 0;
  constructor(private readonly intervalMs: number) {}

  /** The number held back since the last line when one may be written now, else undefined. */
  take(now = Date.now()): number | undefined {
    if (now - this.last < this.intervalMs) {
      this.suppressed++;
      return undefined;
    }
    const n = this.suppressed;
    this.last = now;
    this.suppressed = 0;
    return n;
  }
}
