import { EventEmitter } from 'node:events';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import { readBody } from './body';
import {
  ByteBudget,
  ConnectionGuard,
  ResponseDeadlines,
  type ResponseWatch,
  hardConnectionLimit,
} from './edge';
import { WarrenError } from '@warren/protocol';

describe('ConnectionGuard', () => {
  it('marks connections opened past the cap, until they close; sets the hard limit', () => {
    const server = new EventEmitter() as unknown as Server;
    let dropped = 0;
    const guard = new ConnectionGuard(2, () => dropped++);
    guard.attach(server);
    expect(server.maxConnections).toBe(hardConnectionLimit(2));
    const sockets = [1, 2, 3].map(() => new EventEmitter());
    for (const s of sockets) server.emit('connection', s);
    const reqOn = (s: EventEmitter) => ({ socket: s }) as unknown as IncomingMessage;
    expect(guard.openConnections).toBe(3);
    expect(sockets.map((s) => guard.refuses(reqOn(s)))).toEqual([false, false, true]);
    // The third stays refused when an earlier one closes; new ones are served again.
    sockets[0]?.emit('close');
    const fourth = new EventEmitter();
    server.emit('connection', fourth);
    expect(guard.refuses(reqOn(fourth))).toBe(true); // 3 open: the cap of 2 is still passed
    sockets[2]?.emit('close');
    fourth.emit('close');
    const fifth = new EventEmitter();
    server.emit('connection', fifth);
    expect(guard.openConnections).toBe(2);
    expect(guard.refuses(reqOn(fifth))).toBe(false);
    server.emit('drop');
    expect(dropped).toBe(1);
  });

  it('answers up to 10 % (at least 10) past the cap before closing at accept', () => {
    expect(hardConnectionLimit(2)).toBe(12);
    expect(hardConnectionLimit(10_000)).toBe(11_000);
  });
});

describe('ByteBudget', () => {
  it('takes what fits, refuses (and counts) what does not, gets bytes back', () => {
    let refused = 0;
    const b = new ByteBudget(100, () => refused++);
    expect(b.take(60)).toBe(true);
    expect(b.take(40)).toBe(true);
    expect(b.take(1)).toBe(false);
    b.release(60);
    expect(b.inUse).toBe(40);
    expect(b.take(60)).toBe(true);
    expect(refused).toBe(1);
  });
});

/** A request whose body arrives through `body` (write/end/destroy), with the given headers. */
function fakeRequest(headers: Record<string, string>) {
  const body = new PassThrough();
  const req = Object.assign(body, { headers, complete: false }) as unknown as IncomingMessage;
  return { req, body };
}

async function failure(p: Promise<unknown>): Promise<WarrenError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof WarrenError) return err;
    throw err;
  }
  throw new Error('resolved');
}

describe('readBody with a byte budget', () => {
  it('reserves the declared length while reading, and gives it back at the end', async () => {
    const budget = new ByteBudget(1000, () => undefined);
    const { req, body } = fakeRequest({ 'content-length': '300' });
    const reading = readBody(req, 500, budget);
    expect(budget.inUse).toBe(300);
    body.end(Buffer.alloc(300, 0x61));
    expect((await reading).length).toBe(300);
    expect(budget.inUse).toBe(0);
  });

  it('reserves the body limit for an unknown length, and at most the limit for a larger one', async () => {
    const budget = new ByteBudget(1000, () => undefined);
    const chunked = fakeRequest({ 'transfer-encoding': 'chunked' });
    const a = readBody(chunked.req, 500, budget);
    expect(budget.inUse).toBe(500);
    const over = fakeRequest({ 'content-length': '700' });
    const b = readBody(over.req, 400, budget);
    expect(budget.inUse).toBe(900);
    over.body.end(Buffer.alloc(700));
    expect((await failure(b)).status).toBe(413);
    expect(budget.inUse).toBe(500);
    chunked.body.end('x');
    await a;
    expect(budget.inUse).toBe(0);
  });

  it('refuses with 503 overloaded, before reading, a body that does not fit', async () => {
    let refused = 0;
    const budget = new ByteBudget(1000, () => refused++);
    const first = fakeRequest({ 'content-length': '800' });
    const reading = readBody(first.req, 1000, budget);
    const second = fakeRequest({ 'content-length': '201' });
    const problem = await failure(readBody(second.req, 1000, budget));
    expect([problem.status, problem.type, problem.headers?.connection]).toEqual([
      503,
      'urn:warren:error:overloaded',
      'close',
    ]);
    expect(problem.retryAfterS).toBe(1);
    expect(refused).toBe(1);
    expect(second.body.listenerCount('data')).toBe(0);
    // Empty bodies take nothing and always pass.
    expect((await readBody(fakeRequest({ 'content-length': '0' }).req, 1000, budget)).length).toBe(
      0,
    );
    first.body.end(Buffer.alloc(800));
    await reading;
    expect(budget.inUse).toBe(0);
  });

  it('gives the bytes back when the client goes away mid-body', async () => {
    const budget = new ByteBudget(1000, () => undefined);
    const { req, body } = fakeRequest({ 'content-length': '500' });
    const reading = readBody(req, 1000, budget);
    body.write(Buffer.alloc(100));
    body.destroy();
    expect((await failure(reading)).status).toBe(400);
    expect(budget.inUse).toBe(0);
  });
});

/** A response stand-in: `req.complete`, `headersSent`, close and destroy. */
class FakeResponse extends EventEmitter {
  headersSent = false;
  destroyed = false;
  req = { complete: true };
  destroy(): void {
    this.destroyed = true;
  }
}

describe('ResponseDeadlines', () => {
  let now = 0;
  const expiredSeen: FakeResponse[] = [];
  const make = () =>
    new ResponseDeadlines({
      timeoutMs: 1000,
      now: () => now,
      intervalMs: 0,
      onExpired: (res) => expiredSeen.push(res as unknown as FakeResponse),
    });
  const track = (d: ResponseDeadlines, res: FakeResponse) =>
    d.track(res as unknown as ServerResponse);

  beforeEach(() => {
    now = 0;
    expiredSeen.length = 0;
  });

  it('hands an unanswered response over once its deadline passes, then destroys it if still open', () => {
    const d = make();
    const res = new FakeResponse();
    track(d, res);
    now = 999;
    d.sweep();
    expect(expiredSeen).toEqual([]);
    now = 1000;
    d.sweep();
    expect(expiredSeen).toEqual([res]);
    expect(res.destroyed).toBe(false);
    // The 504 could not be written out within another timeout: the socket is cut.
    now = 1999;
    d.sweep();
    expect(res.destroyed).toBe(false);
    now = 2000;
    d.sweep();
    expect(res.destroyed).toBe(true);
    expect(d.size).toBe(0);
    expect(expiredSeen).toHaveLength(1);
  });

  it('destroys a response whose headers went out but whose end did not', () => {
    const d = make();
    const res = new FakeResponse();
    track(d, res);
    res.headersSent = true;
    now = 1000;
    d.sweep();
    expect(expiredSeen).toEqual([]);
    expect(res.destroyed).toBe(true);
  });

  it('forgets finished responses', () => {
    const d = make();
    const res = new FakeResponse();
    const watch = track(d, res);
    d.forget(watch);
    d.forget(watch); // twice (idempotent)
    expect(d.size).toBe(0);
    now = 5000;
    d.sweep();
    expect(expiredSeen).toEqual([]);
  });

  it('keeps the others watched whichever responses close first, and holds nothing of a closed one', () => {
    const d = make();
    const all = Array.from({ length: 6 }, () => new FakeResponse());
    const watches = all.map((res) => track(d, res));
    // Close the first, the last and one in the middle (in that order).
    for (const i of [0, 5, 2]) d.forget(watches[i] as ResponseWatch);
    expect(d.size).toBe(3);
    for (const i of [0, 5, 2]) {
      const w = watches[i] as ResponseWatch;
      // Unlinked and emptied: a closed response's watch reaches neither it nor its neighbours.
      expect([w.res, w.prev, w.next]).toEqual([undefined, undefined, undefined]);
    }
    now = 1000;
    d.sweep();
    expect(expiredSeen).toEqual([all[1], all[3], all[4]]);
    // A response that closes during the sweep period after its 504 is forgotten, the rest are cut.
    d.forget(watches[3] as ResponseWatch);
    now = 2000;
    d.sweep();
    expect(all.map((r) => r.destroyed)).toEqual([false, true, false, false, true, false]);
    expect(d.size).toBe(0);
    // The list is usable again from empty.
    const later = new FakeResponse();
    track(d, later);
    now = 3000;
    d.sweep();
    expect(expiredSeen.at(-1)).toBe(later);
  });

  it('starts the clock when the request has arrived in full (slow uploads are the request timeout’s)', () => {
    const d = make();
    const res = new FakeResponse();
    res.req.complete = false;
    track(d, res);
    now = 5000;
    d.sweep();
    expect(expiredSeen).toEqual([]);
    res.req.complete = true;
    now = 5999;
    d.sweep();
    expect(expiredSeen).toEqual([]);
    now = 6000;
    d.sweep();
    expect(expiredSeen).toEqual([res]);
  });
});
