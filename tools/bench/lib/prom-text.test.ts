// The benchmark's /metrics reader on a sample exposition: names, labels, the first match, NaN if none.
import { metricValue } from './prom-text';

const TEXT = [
  '# TYPE mq_consumer_messages_total counter',
  'mq_consumer_messages_total{service="echo",outcome="success"} 50000',
  'mq_consumer_messages_total{service="echo",outcome="retry"} 3',
  'mq_consumer_messages_total_extra 9',
  'mq_rpc_pending_calls 0',
  'odd{path="a \\"b\\"",outcome="x"} 1e3',
].join('\n');

test('the first sample with the name and labels, NaN when there is none', () => {
  expect(metricValue(TEXT, 'mq_consumer_messages_total', { outcome: 'success' })).toBe(50000);
  expect(metricValue(TEXT, 'mq_consumer_messages_total', { outcome: 'retry' })).toBe(3);
  expect(metricValue(TEXT, 'mq_consumer_messages_total')).toBe(50000);
  expect(metricValue(TEXT, 'mq_consumer_messages_total', { outcome: 'rejected' })).toBeNaN();
  expect(metricValue(TEXT, 'mq_rpc_pending_calls')).toBe(0);
  expect(metricValue(TEXT, 'odd', { path: 'a "b"' })).toBe(1000);
  expect(metricValue('', 'mq_rpc_pending_calls')).toBeNaN();
  expect(metricValue(undefined, 'x')).toBeNaN();
});
