import {
  FAILURE_HEADERS,
  HEADERS,
  callHeaders,
  replyHeaders,
  replyTiming,
  requestHeaders,
} from './headers';

test('the header builders use the names HEADERS defines', () => {
  const h = requestHeaders('r-1', '00-abc', 5);
  expect(Object.keys(h).sort()).toEqual(
    [HEADERS.traceparent, HEADERS.requestId, HEADERS.attempt, HEADERS.publishedAt].sort(),
  );
  expect(h[HEADERS.attempt]).toBe(1);
  expect(Object.keys(requestHeaders('r-1', undefined, 5))).not.toContain(HEADERS.traceparent);
  expect(Object.keys(replyHeaders(502))).toEqual([HEADERS.status]);
});

test('a call carries the same headers plus the call marker', () => {
  expect(callHeaders('r-1', '00-abc', 5)).toEqual({
    ...requestHeaders('r-1', '00-abc', 5),
    [HEADERS.call]: 1,
  });
  expect(callHeaders('r-1', undefined, 5)).toEqual({
    ...requestHeaders('r-1', undefined, 5),
    [HEADERS.call]: 1,
  });
  expect(requestHeaders('r-1', undefined, 5)).not.toHaveProperty(HEADERS.call);
});

test('a replay drops the redelivery count with the other failure headers', () => {
  expect(FAILURE_HEADERS).toContain(HEADERS.redeliveries);
  expect(FAILURE_HEADERS).not.toContain(HEADERS.call);
});

test('a reply may carry its timing; only numbers of ms (finite, >= 0) are read back', () => {
  const timing = { queueMs: 3, serviceMs: 12 };
  expect(replyHeaders(200, timing)).toEqual({
    [HEADERS.status]: 200,
    [HEADERS.queueMs]: 3,
    [HEADERS.serviceMs]: 12,
  });
  expect(replyTiming(replyHeaders(200, timing))).toEqual(timing);
  expect(replyTiming(replyHeaders(200))).toBeUndefined();
  for (const bad of [-1, Infinity, NaN, '12', null, { n: 1 }]) {
    expect(replyTiming({ [HEADERS.queueMs]: bad, [HEADERS.serviceMs]: 1 })).toBeUndefined();
    expect(replyTiming({ [HEADERS.queueMs]: 1, [HEADERS.serviceMs]: bad })).toBeUndefined();
  }
  expect(replyTiming(undefined)).toBeUndefined();
});
