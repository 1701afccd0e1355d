import { CORRELATION_ID_BITS, newCorrelationId } from './correlation';

test('correlation ids carry 128 random bits and do not repeat', () => {
  expect(CORRELATION_ID_BITS).toBeGreaterThanOrEqual(122);
  const ids = Array.from({ length: 5000 }, newCorrelationId);
  expect(new Set(ids).size).toBe(ids.length);
  for (const id of ids.slice(0, 10)) {
    expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(Buffer.from(id, 'base64url')).toHaveLength(CORRELATION_ID_BITS / 8);
  }
  // Consecutive ids share no predictable structure (unlike pid.time.seq).
  const [a = '', b = ''] = ids;
  expect(a.slice(0, 8)).not.toBe(b.slice(0, 8));
});
