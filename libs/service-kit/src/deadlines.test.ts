// Unit: the shared deadline list (one timer for all in-flight messages) and the processor's time
// limit and shutdown abort built on it. Fake timers: nothing here depends on real time.
import pino from 'pino';
import { NO_TRACING, consumerMetrics } from '@warren/observability';
import { Registry } from 'prom-client';
import type { Delivery, Publisher } from '@warren/messaging';
import { Deadlines } from './deadlines';
import { Processor } from './processor';
import { defineService } from './define';
import { HandlerTimeoutError } from './errors';

beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
afterEach(() => jest.useRealTimers());

const reasons = () => ({ reason: new Error('late'), signalReason: new Error('late signal') });

describe('Deadlines', () => {
  it('expires entries in start order with one timer, and never the removed ones', () => {
    const list = new Deadlines(1000, reasons);
    const fired: string[] = [];
    const a = list.add();
    a.onExpire(() => fired.push('a'));
    jest.advanceTimersByTime(400);
    const b = list.add();
    b.onExpire(() => fired.push('b'));
    const c = list.add();
    c.onExpire(() => fired.push('c'));
    expect(jest.getTimerCount()).toBe(1);
    list.remove(b);
    jest.advanceTimersByTime(600);
    expect(fired).toEqual(['a']);
    expect(a.hasExpired).toBe(true);
    jest.advanceTimersByTime(400);
    expect(fired).toEqual(['a', 'c']);
    expect(list.size).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('drops its timer when the last entry is removed', () => {
    const list = new Deadlines(1000, reasons);
    const a = list.add();
    list.remove(a);
    list.remove(a);
    expect(list.size).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('makes the signal lazily, aborted with the signal reason', () => {
    const list = new Deadlines(1000, reasons);
    const a = list.add();
    const early = a.signal;
    jest.advanceTimersByTime(1000);
    expect(early.aborted).toBe(true);
    expect((early.reason as Error).message).toBe('late signal');
    const b = list.add();
    jest.advanceTimersByTime(1000);
    // Read only after it expired: made already aborted.
    expect(b.signal.aborted).toBe(true);
  });

  it('abortAll expires everything running and everything added later', () => {
    const list = new Deadlines(1000, reasons);
    const seen: unknown[] = [];
    list.add().onExpire((r) => seen.push(r));
    list.add().onExpire((r) => seen.push(r));
    const stop = { reason: new Error('stop'), signalReason: new Error('stop signal') };
    list.abortAll(stop);
    expect(seen).toEqual([stop.reason, stop.reason]);
    const later = list.add();
    expect(later.hasExpired).toBe(true);
    expect(later.signal.aborted).toBe(true);
    expect(jest.getTimerCount()).toBe(0);
  });
});

describe('Processor time limit', () => {
  function setup(handler: (body: Buffer, ctx: { signal: AbortSignal }) => Promise<unknown>) {
    const sent: { queue: string; headers: unknown }[] = [];
    const publisher = {
      send: (queue: string, _body: Buffer, options?: { headers?: unknown }) => {
        sent.push({ queue, headers: options?.headers });
        return Promise.resolve();
      },
    } as unknown as Publisher;
    const processor = new Processor({
      def: defineService({ name: 'slow', handlerTimeoutMs: 1000, retryDelaysMs: [500], handler }),
      queue: 'slow',
      publisher,
      userId: 'guest',
      tracing: NO_TRACING,
      metrics: consumerMetrics(new Registry()),
      logger: pino({ level: 'silent' }),
      services: () => {
        throw new Error('unused');
      },
    });
    const settled: string[] = [];
    const delivery = (id: string): Delivery => ({
      body: Buffer.from('{}'),
      properties: { messageId: id, headers: {} } as unknown as Delivery['properties'],
      exchange: '',
      routingKey: 'slow',
      redelivered: false,
      ack: () => settled.push(`ack ${id}`),
      nack: () => settled.push(`nack ${id}`),
    });
    return { processor, sent, settled, delivery };
  }

  it('fails a handler past its limit as a timeout (retry copy) and aborts its signal; the ack waits for the handler to end', async () => {
    let signal: AbortSignal | undefined;
    let finish: (() => void) | undefined;
    const { processor, sent, settled, delivery } = setup(
      (_b, ctx) =>
        new Promise<void>((resolve) => {
          signal = ctx.signal;
          finish = resolve;
        }),
    );
    processor.onMessage(delivery('m1'));
    await jest.advanceTimersByTimeAsync(999);
    expect(settled).toEqual([]);
    await jest.advanceTimersByTimeAsync(1);
    expect(sent).toEqual([{ queue: 'slow.retry.500.v2', headers: { 'x-attempt': 2 } }]);
    expect(signal?.aborted).toBe(true);
    expect((signal?.reason as DOMException).name).toBe('TimeoutError');
    // The handler ignores its signal: its message stays unacked (in flight) until it ends.
    await jest.advanceTimersByTimeAsync(5000);
    expect(settled).toEqual([]);
    expect(processor.inFlightCount).toBe(1);
    expect(processor.overdueCount).toBe(1);
    finish?.();
    await jest.advanceTimersByTimeAsync(0);
    expect(settled).toEqual(['ack m1']);
    expect(processor.inFlightCount).toBe(0);
    expect(processor.overdueCount).toBe(0);
  });

  it('a handler that finishes in time is acked and leaves no timer behind', async () => {
    const { processor, sent, settled, delivery } = setup(async () => 'ok');
    processor.onMessage(delivery('m2'));
    await jest.advanceTimersByTimeAsync(0);
    expect(settled).toEqual(['ack m2']);
    expect(sent).toEqual([]);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('a drain timeout aborts in-flight handlers with the shutdown reason and acks (their copies are out)', async () => {
    let signal: AbortSignal | undefined;
    const { processor, settled, delivery } = setup(
      (_b, ctx) =>
        new Promise(() => {
          signal = ctx.signal;
        }),
    );
    processor.onMessage(delivery('m3'));
    const drained = processor.drain(100);
    await jest.advanceTimersByTimeAsync(100);
    expect(await drained).toBe(false);
    await jest.advanceTimersByTimeAsync(0);
    expect(signal?.aborted).toBe(true);
    expect((signal?.reason as Error).message).toBe('shutdown drain timeout');
    expect(settled).toEqual(['ack m3']);
    expect(new HandlerTimeoutError(1000).code).toBe('HANDLER_TIMEOUT');
  });
});
