// Bounds at the HTTP edge: open connections, request-body bytes being read at once, time to answer.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Connections past the cap are still accepted and their requests answered 503 (so clients learn
 * why and when to retry), up to this many; beyond it node closes new connections at accept,
 * unanswered (`server.maxConnections`), so idle sockets cannot exhaust file descriptors.
 */
export function hardConnectionLimit(cap: number): number {
  return cap + Math.max(10, Math.ceil(cap / 10));
}

/** Counts open connections and marks the ones opened past the cap. */
export class ConnectionGuard {
  private open = 0;
  private readonly over = new WeakSet<Socket>();
  private overCount = 0;

  constructor(
    private readonly cap: number,
    /** A connection was closed at accept (past the hard limit). */
    private readonly onDropped: () => void,
  ) {}

  attach(server: Server): void {
    server.maxConnections = hardConnectionLimit(this.cap);
    server.on('connection', (socket: Socket) => this.opened(socket));
    server.on('drop', () => this.onDropped());
  }

  get openConnections(): number {
    return this.open;
  }

  /** True for a request on a connection opened while `cap` others were open: answer it 503. */
  refuses(req: IncomingMessage): boolean {
    return this.overCount > 0 && this.over.has(req.socket);
  }

  private opened(socket: Socket): void {
    this.open++;
    const over = this.open > this.cap;
    if (over) {
      this.over.add(socket);
      this.overCount++;
    }
    socket.on('close', () => {
      this.open--;
      if (over) {
        this.over.delete(socket);
        this.overCount--;
      }
    });
  }
}

/** A shared allowance of bytes: request bodies being read take their share and give it back. */
export class ByteBudget {
  private used = 0;

  constructor(
    readonly limit: number,
    /** A request did not fit (it is answered 503). */
    private readonly onRefused: () => void,
  ) {}

  get inUse(): number {
    return this.used;
  }

  /** Takes `n` bytes if they fit under the limit; false (and counted) when they do not. */
  take(n: number): boolean {
    if (this.used + n > this.limit) {
      this.onRefused();
      return false;
    }
    this.used += n;
    return true;
  }

  release(n: number): void {
    this.used -= n;
  }
}

export interface ResponseDeadlineOptions {
  timeoutMs: number;
  /** A response not answered in time whose headers are not sent yet: answer it (504). */
  onExpired: (res: ServerResponse) => void;
  /** Clock (tests). */
  now?: () => number;
  /** Sweep period; 0 = no timer (tests call sweep()). Default: a tenth of the timeout, 50 ms to 1 s. */
  intervalMs?: number;
}

/** One watched response (what `track` returns and `forget` takes). */
export class ResponseWatch {
  /** @internal */ prev: ResponseWatch | undefined;
  /** @internal */ next: ResponseWatch | undefined;
  /** @internal */ linked = false;
  /** @internal */ expired = false;
  constructor(
    /** @internal */ public res: ServerResponse | undefined,
    /** @internal */ public deadline: number,
  ) {}
}

/**
 * Every response must be finished within `timeoutMs` of its request's last byte (the time to
 * receive the request is node's requestTimeout's business). One timer sweeps all open responses:
 * an expired one that has not started is handed to `onExpired` (the gateway answers 504 and
 * closes); one that started (a reply stuck on a client that does not read) or is still not done
 * one more `timeoutMs` after its 504 has its socket destroyed. Nothing outlives the bound.
 *
 * The open responses are a doubly linked list whose nodes are unlinked and emptied when their
 * response closes, not a Map keyed by response: a Map that gains and loses an entry per request
 * rebuilds its table every few hundred requests, and V8 keeps each discarded table (with the
 * responses it held) linked to its successor. Once one such table had reached the old
 * generation, every later table and the requests it held survived the young-generation
 * collections too: about 2 MB moved to the old generation per collection, a full collection
 * every second or two, and the gateway's RSS climbing (docs/performance/notes.md).
 */
export class ResponseDeadlines {
  private head: ResponseWatch | undefined;
  private tail: ResponseWatch | undefined;
  private count = 0;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(private readonly options: ResponseDeadlineOptions) {
    this.now = options.now ?? Date.now;
    const interval =
      options.intervalMs ?? Math.min(1000, Math.max(50, Math.floor(options.timeoutMs / 10)));
    if (interval > 0) {
      this.timer = setInterval(() => this.sweep(), interval);
      this.timer.unref();
    }
  }

  /** Responses being watched. */
  get size(): number {
    return this.count;
  }

  /** Starts watching a response; its owner passes the watch to forget() on the response's 'close'. */
  track(res: ServerResponse): ResponseWatch {
    const w = new ResponseWatch(res, this.now() + this.options.timeoutMs);
    w.linked = true;
    w.prev = this.tail;
    if (this.tail) this.tail.next = w;
    else this.head = w;
    this.tail = w;
    this.count++;
    return w;
  }

  /** The response closed: no longer watched. Idempotent. */
  forget(w: ResponseWatch): void {
    if (!w.linked) return;
    w.linked = false;
    if (w.prev) w.prev.next = w.next;
    else this.head = w.next;
    if (w.next) w.next.prev = w.prev;
    else this.tail = w.prev;
    w.prev = w.next = undefined;
    w.res = undefined;
    this.count--;
  }

  sweep(): void {
    const now = this.now();
    const { timeoutMs } = this.options;
    // A response's 'close' comes on a later tick, so nothing below unlinks another watch; should
    // one be unlinked anyway, the sweep stops there and the next one goes on.
    for (let w = this.head; w && w.linked;) {
      const next = w.next;
      const res = w.res as ServerResponse;
      if (!res.req.complete && !res.headersSent) {
        // Still receiving the request: the clock starts at its last byte.
        w.deadline = now + timeoutMs;
      } else if (now >= w.deadline) {
        if (res.headersSent || w.expired) {
          this.forget(w);
          res.destroy();
        } else {
          w.expired = true;
          w.deadline = now + timeoutMs;
          try {
            this.options.onExpired(res);
          } catch {
            res.destroy();
          }
        }
      }
      w = next;
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}
