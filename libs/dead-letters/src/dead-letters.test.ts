// Unit: which dead letters a replay leaves alone (calls, expired messages), on hand-made letters.
import type { MessageProperties } from 'amqplib';
import { replayProperties, skipReason, type DeadLetter } from './dead-letters';

function letter(
  props: Partial<MessageProperties>,
  headers: Record<string, unknown> = {},
): DeadLetter {
  return {
    position: 1,
    messageId: 'm-1',
    failedAt: undefined,
    attempt: undefined,
    errorCode: undefined,
    errorMessage: undefined,
    originalQueue:
      typeof headers['x-original-queue'] === 'string' ? headers['x-original-queue'] : undefined,
    properties: { headers, ...props } as MessageProperties,
    headers,
    body: Buffer.from('{}'),
  };
}

describe('skipReason', () => {
  it('skips calls: a reply address, or the call marker where the address was removed', () => {
    expect(skipReason(letter({ replyTo: 'amq.rabbitmq.reply-to.x' }), 'orders')).toBe('call');
    expect(skipReason(letter({}, { 'x-call': 1, 'x-error-code': 'HANDLER_ERROR' }), 'orders')).toBe(
      'call',
    );
  });

  it('skips what expired in the service queue, not what went through a retry queue', () => {
    const death = (queue: string, reason: string) => ({ queue, reason, count: 1 });
    expect(skipReason(letter({}, { 'x-death': [death('orders', 'expired')] }), 'orders')).toBe(
      'expired',
    );
    expect(
      skipReason(
        letter(
          {},
          {
            'x-death': [death('orders', 'delivery_limit'), death('orders.retry.1000', 'expired')],
          },
        ),
        'orders',
      ),
    ).toBeUndefined();
  });

  it('replays a plain dead letter', () => {
    expect(
      skipReason(
        letter({}, { 'x-error-code': 'HANDLER_ERROR', 'x-original-queue': 'orders' }),
        'orders',
      ),
    ).toBeUndefined();
  });
});

test('a replayed copy drops the redelivery count with the other failure headers', () => {
  const copy = replayProperties(
    letter(
      { messageId: 'm-1' },
      { 'x-redeliveries': 6, 'x-error-code': 'REDELIVERY_LIMIT', 'x-request-id': 'r' },
    ),
  );
  expect(copy.headers).toMatchObject({ 'x-request-id': 'r', 'x-attempt': 1, 'x-replay-count': 1 });
  expect(copy.headers).not.toHaveProperty('x-redeliveries');
  expect(copy.headers).not.toHaveProperty('x-error-code');
});
