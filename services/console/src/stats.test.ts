import { parsePrometheusText } from './prom-text';
import { addBuckets, countersOf, deltaOf, quantile, type Buckets } from './stats';

const scrape = (success: number, b1: number, inf: number) =>
  countersOf(
    parsePrometheusText(
      [
        `mq_consumer_messages_total{service="s",queue="s",outcome="success"} ${success}`,
        'mq_consumer_messages_total{service="s",queue="s",outcome="retry"} 2',
        `mq_consumer_processing_seconds_bucket{service="s",queue="s",le="0.1"} ${b1}`,
        `mq_consumer_processing_seconds_bucket{service="s",queue="s",le="+Inf"} ${inf}`,
        'mq_consumer_in_flight{service="s"} 4',
        'gateway_http_requests_total{method="POST",route="/v1/:service",status="202"} 9',
      ].join('\n'),
    ),
  );

test('reads counters, sums label sets, and takes deltas with reset detection', () => {
  const a = scrape(10, 5, 10);
  expect(a.messages).toEqual({ success: 10, retry: 2, dead_letter: 0, rejected: 0 });
  expect(a.inFlight).toBe(4);
  expect(a.http).toEqual({ '202': 9 });
  const b = scrape(25, 12, 25);
  expect(deltaOf(b, a).messages.success).toBe(15);
  expect(deltaOf(b, a).processing).toEqual([
    [0.1, 7],
    [Infinity, 15],
  ]);
  // The instance restarted: its counters went down, everything it reports now is new.
  expect(deltaOf(scrape(3, 1, 3), b).messages.success).toBe(3);
  // First sight of an instance: its whole count since start.
  expect(deltaOf(a, undefined).messages.success).toBe(10);
});

test('quantiles interpolate inside buckets like histogram_quantile', () => {
  const b: Buckets = [
    [0.01, 50],
    [0.1, 90],
    [1, 100],
    [Infinity, 100],
  ];
  expect(quantile(0.5, b)).toBeCloseTo(0.01);
  expect(quantile(0.7, b)).toBeCloseTo(0.01 + (0.09 * 20) / 40);
  expect(quantile(0.99, b)).toBeCloseTo(0.1 + 0.9 * 0.9);
  expect(quantile(0.5, [[Infinity, 0]])).toBeUndefined();
  expect(
    quantile(0.99, [
      [0.5, 1],
      [Infinity, 10],
    ]),
  ).toBe(0.5);
  expect(
    addBuckets(
      [[1, 2]],
      [
        [1, 3],
        [2, 4],
      ],
    ),
  ).toEqual([
    [1, 5],
    [2, 4],
  ]);
});
