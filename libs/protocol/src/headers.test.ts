import { HEADERS, replyHeaders, requestHeaders } from './headers';

test('the header builders use the names HEADERS defines', () => {
  const h = requestHeaders('r-1', '00-abc', 5);
  expect(Object.keys(h).sort()).toEqual(
    [HEADERS.traceparent, HEADERS.requestId, HEADERS.attempt, HEADERS.publishedAt].sort(),
  );
  expect(h[HEADERS.attempt]).toBe(1);
  expect(Object.keys(requestHeaders('r-1', undefined, 5))).not.toContain(HEADERS.traceparent);
  expect(Object.keys(replyHeaders(502))).toEqual([HEADERS.status]);
});
