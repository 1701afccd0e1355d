// Unit: redelivery counting on quorum (x-delivery-count) and classic (redelivered + x-redeliveries) queues.
import { redeliveryAction, ttlLeft } from './redelivery';

describe('redeliveryAction', () => {
  it('quorum: the broker count decides; at most maxRedeliveries redeliveries are handled', () => {
    expect(redeliveryAction('quorum', false, {}, 2)).toEqual({ kind: 'process' });
    expect(redeliveryAction('quorum', true, { 'x-delivery-count': 2 }, 2)).toEqual({
      kind: 'process',
    });
    expect(redeliveryAction('quorum', true, { 'x-delivery-count': 3 }, 2)).toEqual({
      kind: 'limit',
      redeliveries: 3,
    });
    // A classic-style count on a quorum queue is ignored: the broker's is the truth there.
    expect(redeliveryAction('quorum', true, { 'x-redeliveries': 9 }, 2)).toEqual({
      kind: 'process',
    });
  });

  it('classic: a redelivery is counted into a copy until the count passes the limit', () => {
    expect(redeliveryAction('classic', false, {}, 2)).toEqual({ kind: 'process' });
    expect(redeliveryAction('classic', true, {}, 2)).toEqual({ kind: 'count', redeliveries: 1 });
    expect(redeliveryAction('classic', true, { 'x-redeliveries': 1 }, 2)).toEqual({
      kind: 'count',
      redeliveries: 2,
    });
    expect(redeliveryAction('classic', true, { 'x-redeliveries': '2' }, 2)).toEqual({
      kind: 'limit',
      redeliveries: 3,
    });
  });

  it('classic: a first delivery is handled whatever its header claims', () => {
    expect(redeliveryAction('classic', false, { 'x-redeliveries': 99 }, 2)).toEqual({
      kind: 'process',
    });
    // Nonsense counts read as 0.
    expect(redeliveryAction('classic', true, { 'x-redeliveries': -4 }, 2)).toEqual({
      kind: 'count',
      redeliveries: 1,
    });
    expect(redeliveryAction('classic', true, { 'x-redeliveries': 'x' }, 0)).toEqual({
      kind: 'limit',
      redeliveries: 1,
    });
  });
});

describe('ttlLeft', () => {
  it('is what remains of the original TTL, from its publish time', () => {
    expect(ttlLeft('5000', 1_000, 3_000)).toBe(3000);
    expect(ttlLeft(5000, 1_000, 7_000)).toBe(-1000);
  });

  it('is unknown without a TTL or a publish time', () => {
    expect(ttlLeft(undefined, 1_000, 3_000)).toBeUndefined();
    expect(ttlLeft('soon', 1_000, 3_000)).toBeUndefined();
    expect(ttlLeft('5000', undefined, 3_000)).toBeUndefined();
  });
});
