// A process's parts and their stop order: readiness from every part, then quiesce (in order), one bounded drain, close (reverse order).
import type { Logger } from '@warren/observability';

/** One part of a process (a consumer, a publisher, an HTTP server, the broker connections). */
export interface ProcessPart {
  /** For logs. */
  readonly name: string;
  /** Part of readiness (/readyz): false makes the process not ready. */
  isReady?(): boolean;
  /** First phase, parts in registration order: stop taking new work. */
  quiesce?(): Promise<void> | void;
  /**
   * Second phase, all parts at once: finish in-flight work within `timeoutMs`; true when it all
   * finished in time. Past the bound a part cuts what is left (aborts handlers, closes sockets).
   */
  drain?(timeoutMs: number): Promise<boolean>;
  /** Last phase, parts in reverse registration order: release what the part holds. */
  close?(): Promise<void> | void;
}

/** How long past the drain bound drains may take to cut what is left before stop goes on. */
export const DRAIN_GRACE_MS = 2000;

export class Lifecycle {
  private readonly parts: ProcessPart[] = [];
  private stopping: Promise<boolean> | undefined;

  constructor(private readonly logger: Logger) {}

  /** Registers a part; parts registered later close earlier. */
  add<T extends ProcessPart>(part: T): T {
    this.parts.push(part);
    return part;
  }

  get isStopping(): boolean {
    return this.stopping !== undefined;
  }

  /** Every part ready, and not stopping. */
  isReady(): boolean {
    if (this.stopping) return false;
    for (const part of this.parts) if (part.isReady && !part.isReady()) return false;
    return true;
  }

  /**
   * Quiesce in order, drain (all at once, bounded by `drainTimeoutMs` plus DRAIN_GRACE_MS), close
   * in reverse order; a failing step is logged and the stop goes on. Resolves true when every
   * drain finished in time. Idempotent: later calls get the first call's promise.
   */
  stop(drainTimeoutMs: number): Promise<boolean> {
    return (this.stopping ??= this.run(drainTimeoutMs));
  }

  private async run(drainTimeoutMs: number): Promise<boolean> {
    for (const part of this.parts) await this.step(part, 'quiesce', () => part.quiesce?.());
    const drained = await this.drain(drainTimeoutMs);
    for (const part of [...this.parts].reverse())
      await this.step(part, 'close', () => part.close?.());
    return drained;
  }

  private async step(
    part: ProcessPart,
    phase: 'quiesce' | 'close',
    fn: () => Promise<void> | void,
  ): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.logger.error({ err, part: part.name, phase }, 'stop step failed; going on');
    }
  }

  private async drain(timeoutMs: number): Promise<boolean> {
    const drains: Promise<boolean>[] = [];
    for (const part of this.parts) {
      if (!part.drain) continue;
      drains.push(
        part.drain(timeoutMs).catch((err: unknown) => {
          this.logger.error({ err, part: part.name }, 'drain failed');
          return false;
        }),
      );
    }
    if (drains.length === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const cap = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs + DRAIN_GRACE_MS);
    });
    const drained = await Promise.race([
      Promise.all(drains).then((done) => done.every(Boolean)),
      cap,
    ]);
    clearTimeout(timer);
    return drained;
  }
}
