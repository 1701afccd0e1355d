import { familyOf, parsePrometheusText } from './prom-text';

test('reads samples with labels, escapes, +Inf and timestamps; skips comments and bad lines', () => {
  const text = [
    '# HELP mq_consumer_messages_total Messages handled',
    '# TYPE mq_consumer_messages_total counter',
    'mq_consumer_messages_total{service="echo",queue="echo",outcome="success"} 42',
    'mq_consumer_processing_seconds_bucket{service="echo",le="+Inf"} 7 1700000000000',
    'weird{a="x\\"y\\\\z",b="line\\nbreak"} 1.5e3',
    'mq_consumer_in_flight 3',
    'not a sample line',
    'nan_metric NaN',
  ].join('\n');
  expect(parsePrometheusText(text)).toEqual([
    {
      name: 'mq_consumer_messages_total',
      labels: { service: 'echo', queue: 'echo', outcome: 'success' },
      value: 42,
    },
    {
      name: 'mq_consumer_processing_seconds_bucket',
      labels: { service: 'echo', le: '+Inf' },
      value: 7,
    },
    { name: 'weird', labels: { a: 'x"y\\z', b: 'line\nbreak' }, value: 1500 },
    { name: 'mq_consumer_in_flight', labels: {}, value: 3 },
  ]);
  expect(
    parsePrometheusText(text, new Set(['mq_consumer_processing_seconds'])).map((s) => s.name),
  ).toEqual(['mq_consumer_processing_seconds_bucket']);
  expect(familyOf('x_count')).toBe('x');
});
