// Load shedding for calls, per service: the least time calls spent queued in each interval (CoDel's signal) sets how many may wait.
import type { ReplyTiming } from '@warren/protocol';

export interface ShedderOptions {
  /** Queueing a call may meet before new calls to its service are shed (ms); 0 turns shedding off. */
  targetMs: number;
  /** How often the limit is revisited (ms). */
  intervalMs?: number;
  /** The limit with no congestion seen (GATEWAY_MAX_PENDING_CALLS). */
  maxLimit: number;
  /** The limit never goes below this: a few calls always get through to measure the queue. */
  minLimit?: number;
  /** Services tracked at most; calls to others are not shed (they meet GATEWAY_MAX_PENDING_CALLS). */
  maxServices?: number;
  /**
   * True while the gateway's own event loop runs late (admission.ts): its publishes then leave
   * late too, which the replies' `x-queue-ms` counts as queueing; no limit is cut meanwhile.
   */
  gatewayLate?: () => boolean;
  now?: () => number;
}

interface ServiceLoad {
  pending: number;
  limit: number;
  windowStart: number;
  /** Least queueing seen in this interval (Infinity: no sample). */
  windowMin: number;
  /** Samples (replies with x-service-ms) in this interval, and their service time summed. */
  samples: number;
  serviceMsSum: number;
  /** Replies per second: the highest interval's, decaying 5 % per interval. */
  peakRate: number;
  /** A call was refused at the limit in this interval. */
  hitLimit: boolean;
}

/**
 * The signal is the time calls spent queued, as their service measured it (`x-queue-ms` on the
 * reply: from the gateway's publish timestamp to the delivery to the handler, so time in the
 * broker's queue, in the consumer's prefetch buffer and on the wire, and not the time the gateway
 * itself took to read the reply: a gateway short of CPU is not a queue that shedding calls
 * empties; nor is the time its own late loop adds before a publish leaves, so no limit is cut
 * while the gateway's admission says its loop is late: that overload is admission's). As in CoDel, a queue that is only passing through empties now and then, so the
 * *least* queueing over an interval (100 ms) is the standing queue.
 *
 * Each interval: while that stays within `targetMs`, the limit on calls waiting only grows (by a
 * quarter when it was reached); when it exceeds `targetMs`, the limit drops to what Little's law
 * says keeps a call's wait near `targetMs` at the rate the service answers: peak reply rate x
 * (mean time in the service, `x-service-ms`, + `targetMs`), never below `minLimit`. The peak rate
 * decays 5 % per interval. A call past the limit is refused at once (503 overloaded,
 * Retry-After), so the admitted ones wait about `targetMs` instead of everyone waiting longer and
 * longer behind a queue that only grows.
 *
 * Both figures are bounded by the call's own duration (a service cannot claim more). They compare
 * two hosts' clocks: a service whose clock runs ahead makes every call look queued, which only
 * caps its calls waiting at the Little's-law figure; one whose clock runs behind is never shed this
 * way. Replies without the headers (plain AMQP services) give no sample, so their services are
 * never shed this way; timed-out calls give none either.
 */
export class CallShedder {
  private readonly services = new Map<string, ServiceLoad>();
  private readonly intervalMs: number;
  private readonly minLimit: number;
  private readonly maxServices: number;
  private readonly now: () => number;

  constructor(private readonly options: ShedderOptions) {
    this.intervalMs = options.intervalMs ?? 100;
    this.minLimit = options.minLimit ?? 4;
    this.maxServices = options.maxServices ?? 2000;
    this.now = options.now ?? Date.now;
  }

  get enabled(): boolean {
    return this.options.targetMs > 0;
  }

  /** True: the call may go (call `done` when it ends); false: shed it. */
  admit(service: string): boolean {
    const load = this.loadOf(service);
    if (load === undefined) return true;
    this.roll(load);
    if (load.pending >= load.limit) {
      load.hitLimit = true;
      return false;
    }
    load.pending++;
    return true;
  }

  /** An admitted call ended, after `durationMs`; `timing` from its reply when it had one. */
  done(service: string, durationMs: number, timing: ReplyTiming | undefined): void {
    const load = this.services.get(service);
    if (load === undefined) return;
    load.pending--;
    if (timing !== undefined) {
      const queued = Math.min(timing.queueMs, durationMs);
      if (queued < load.windowMin) load.windowMin = queued;
      load.samples++;
      load.serviceMsSum += Math.min(timing.serviceMs, durationMs);
    }
    this.roll(load);
  }

  /** The current limit for `service` (tests, diagnostics). */
  limitOf(service: string): number {
    return this.services.get(service)?.limit ?? this.options.maxLimit;
  }

  private loadOf(service: string): ServiceLoad | undefined {
    if (!this.enabled) return undefined;
    let load = this.services.get(service);
    if (load === undefined) {
      if (this.services.size >= this.maxServices) return undefined;
      load = {
        pending: 0,
        limit: this.options.maxLimit,
        windowStart: this.now(),
        windowMin: Infinity,
        samples: 0,
        serviceMsSum: 0,
        peakRate: 0,
        hitLimit: false,
      };
      this.services.set(service, load);
    }
    return load;
  }

  private roll(load: ServiceLoad): void {
    const now = this.now();
    const elapsed = now - load.windowStart;
    if (elapsed < this.intervalMs) return;
    if (load.samples > 0) {
      const rate = (load.samples * 1000) / elapsed;
      load.peakRate = Math.max(rate, load.peakRate * 0.95);
      const { targetMs, maxLimit } = this.options;
      if (load.windowMin > targetMs && this.options.gatewayLate?.() !== true) {
        const serviceMs = load.serviceMsSum / load.samples;
        const fits = Math.ceil((load.peakRate * (serviceMs + targetMs)) / 1000);
        load.limit = Math.max(this.minLimit, Math.min(load.limit, fits));
      } else if (load.hitLimit) {
        load.limit = Math.min(maxLimit, load.limit + Math.max(1, Math.ceil(load.limit / 4)));
      }
    }
    load.windowStart = now;
    load.windowMin = Infinity;
    load.samples = 0;
    load.serviceMsSum = 0;
    load.hitLimit = false;
  }
}
