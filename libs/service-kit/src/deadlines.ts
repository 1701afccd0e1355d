// Per-message time limits with one timer per processor, instead of a timer and two AbortSignals
// (AbortSignal.timeout + AbortSignal.any) per message, which profiling showed as a hot spot.
//
// Every message of a processor has the same time limit, so deadlines expire in the order the
// messages started: a doubly linked list in start order and one timer armed for its head suffice.
// Adding and removing are O(1); the timer re-arms only when it fires. A handler's AbortSignal is
// created only when the handler reads it.

/** One message's deadline. */
export class Deadline {
  /** @internal */ prev: Deadline | undefined;
  /** @internal */ next: Deadline | undefined;
  /** @internal */ linked = false;
  private controller: AbortController | undefined;
  private listener: ((reason: unknown) => void) | undefined;
  private expired: { reason: unknown; signalReason: unknown } | undefined;

  constructor(readonly expiresAt: number) {}

  /** The handler's AbortSignal: made on first use, already aborted if the deadline has passed. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.expired) this.controller.abort(this.expired.signalReason);
    }
    return this.controller.signal;
  }

  get hasExpired(): boolean {
    return this.expired !== undefined;
  }

  /** Calls `listener` once with the reason when the deadline passes (at once if it already has). */
  onExpire(listener: (reason: unknown) => void): void {
    if (this.expired) listener(this.expired.reason);
    else this.listener = listener;
  }

  /** @internal */
  expire(reason: unknown, signalReason: unknown): void {
    if (this.expired) return;
    this.expired = { reason, signalReason };
    this.controller?.abort(signalReason);
    const l = this.listener;
    this.listener = undefined;
    l?.(reason);
  }
}

export interface ExpiryReasons {
  /** What the timed-out work is rejected with. */
  reason: unknown;
  /** What the handler's signal is aborted with. */
  signalReason: unknown;
}

export class Deadlines {
  private head: Deadline | undefined;
  private tail: Deadline | undefined;
  private timer: NodeJS.Timeout | undefined;
  private count = 0;
  private closed: ExpiryReasons | undefined;

  constructor(
    private readonly timeoutMs: number,
    private readonly timeoutReasons: () => ExpiryReasons,
    private readonly now: () => number = Date.now,
  ) {}

  /** Deadlines still running. */
  get size(): number {
    return this.count;
  }

  /** Starts one message's clock. After abortAll(), the deadline comes back already expired. */
  add(): Deadline {
    const d = new Deadline(this.now() + this.timeoutMs);
    if (this.closed) {
      d.expire(this.closed.reason, this.closed.signalReason);
      return d;
    }
    d.linked = true;
    d.prev = this.tail;
    if (this.tail) this.tail.next = d;
    else this.head = d;
    this.tail = d;
    this.count++;
    if (!this.timer) this.arm(d.expiresAt);
    return d;
  }

  /** The message's work finished (either way): its deadline no longer applies. Idempotent. */
  remove(d: Deadline): void {
    if (!d.linked) return;
    d.linked = false;
    if (d.prev) d.prev.next = d.next;
    else this.head = d.next;
    if (d.next) d.next.prev = d.prev;
    else this.tail = d.prev;
    d.prev = d.next = undefined;
    this.count--;
    if (this.count === 0) this.disarm();
    // Otherwise the armed timer stays: when it fires it re-arms for the new head (about once per
    // time limit under steady load), cheaper than re-arming on every removal.
  }

  /** Expires every running deadline now, and every later one at once (shutdown gave up waiting). */
  abortAll(reasons: ExpiryReasons): void {
    this.closed = reasons;
    this.disarm();
    for (let d = this.head; d; d = this.head) {
      this.remove(d);
      d.expire(reasons.reason, reasons.signalReason);
    }
  }

  private arm(at: number): void {
    this.timer = setTimeout(() => this.fire(), Math.max(0, at - this.now()));
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private fire(): void {
    this.timer = undefined;
    const now = this.now();
    for (let d = this.head; d && d.expiresAt <= now; d = this.head) {
      this.remove(d);
      const { reason, signalReason } = this.timeoutReasons();
      d.expire(reason, signalReason);
    }
    if (this.head && !this.timer) this.arm(this.head.expiresAt);
  }
}
