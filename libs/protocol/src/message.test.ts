import { HEADERS } from './headers';
import { expiredIn, isCall, newMessageId } from './message';

test('newMessageId: a UUID v4, a new one each time', () => {
  const ids = new Set(Array.from({ length: 1000 }, () => newMessageId()));
  expect(ids.size).toBe(1000);
  for (const id of ids)
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

test.each([
  [{ replyTo: 'amq.rabbitmq.reply-to.abc' }, true],
  [{ replyTo: '', headers: {} }, false],
  [{ headers: { [HEADERS.call]: 1 } }, true],
  [{ headers: { [HEADERS.call]: 0 } }, false],
  [{ replyTo: undefined, headers: { 'x-request-id': 'r' } }, false],
  [{}, false],
])('isCall(%p) = %p', (props, expected) => {
  expect(isCall(props)).toBe(expected);
});

test('expiredIn: an x-death entry with reason expired for that very queue', () => {
  const death = (queue: string, reason: string) => ({ count: 1, queue, reason, exchange: '' });
  expect(expiredIn({ 'x-death': [death('orders', 'expired')] }, 'orders')).toBe(true);
  // Expiring in a retry queue is how retries work, not a dropped call.
  expect(expiredIn({ 'x-death': [death('orders.retry.1000.v2', 'expired')] }, 'orders')).toBe(
    false,
  );
  expect(expiredIn({ 'x-death': [death('orders', 'delivery_limit')] }, 'orders')).toBe(false);
  expect(
    expiredIn(
      { 'x-death': [death('orders', 'delivery_limit'), death('orders', 'expired')] },
      'orders',
    ),
  ).toBe(true);
  expect(expiredIn({ 'x-death': 'garbage' }, 'orders')).toBe(false);
  expect(expiredIn({ 'x-death': [null, 3] }, 'orders')).toBe(false);
  expect(expiredIn(undefined, 'orders')).toBe(false);
});
