// The shared test helpers on their own: TEST_TIME_SCALE, the poller, the Prometheus text reader.
import { eventually, parseTimeScale, scaled, TIME_SCALE } from './time';
import { metricSum, parsePromText, promSamples } from './prom-text';

describe('time', () => {
  it('reads TEST_TIME_SCALE: 1 when unset, a positive number otherwise', () => {
    expect(parseTimeScale(undefined)).toBe(1);
    expect(parseTimeScale('')).toBe(1);
    expect(parseTimeScale('2.5')).toBe(2.5);
    for (const bad of ['0', '-1', 'fast', 'Infinity'])
      expect(() => parseTimeScale(bad)).toThrow(/TEST_TIME_SCALE must be a positive number/);
    expect(scaled(1000)).toBe(Math.ceil(1000 * TIME_SCALE));
  });

  it('eventually resolves with the value that held', async () => {
    let n = 0;
    await expect(eventually(() => ++n, 1000, 'n >= 3', { until: (v) => v >= 3 })).resolves.toBe(3);
    await expect(eventually(async () => 'ok')).resolves.toBe('ok');
  });

  it('eventually times out naming what it waited for and the last value', async () => {
    await expect(
      eventually(() => ({ n: 1 }), 100, 'n to be 2', { until: (v) => v.n === 2 }),
    ).rejects.toThrow(/timed out after \d+ ms waiting for n to be 2; last value: \{"n":1\}/);
  });

  it('eventually fails at once on an error, or retries it when asked', async () => {
    const boom = () => {
      throw new Error('boom');
    };
    await expect(eventually(boom, 10_000)).rejects.toThrow('boom');
    let n = 0;
    const flaky = () => {
      if (++n < 3) throw new Error('not yet');
      return true;
    };
    await expect(eventually(flaky, 1000, 'flaky', { retryErrors: true })).resolves.toBe(true);
    await expect(eventually(boom, 100, 'boom', { retryErrors: true })).rejects.toThrow(
      /waiting for boom; last error: Error: boom/,
    );
  });
});

describe('prom-text', () => {
  const TEXT = [
    '# HELP mq_consumer_messages_total Messages handled.',
    '# TYPE mq_consumer_messages_total counter',
    'mq_consumer_messages_total{service="echo",outcome="success"} 41',
    'mq_consumer_messages_total{service="echo",outcome="retry"} 2',
    'mq_consumer_messages_total{service="hello",outcome="success"} 5',
    'mq_rpc_pending_calls 0',
    'weird_total{path="a \\"quoted\\" \\\\ path\\n",le="+Inf",} 1.5e3 1700000000000',
    '',
  ].join('\n');

  it('reads names, labels (escapes included) and values', () => {
    expect(parsePromText(TEXT)).toEqual([
      {
        name: 'mq_consumer_messages_total',
        labels: { service: 'echo', outcome: 'success' },
        value: 41,
      },
      {
        name: 'mq_consumer_messages_total',
        labels: { service: 'echo', outcome: 'retry' },
        value: 2,
      },
      {
        name: 'mq_consumer_messages_total',
        labels: { service: 'hello', outcome: 'success' },
        value: 5,
      },
      { name: 'mq_rpc_pending_calls', labels: {}, value: 0 },
      { name: 'weird_total', labels: { path: 'a "quoted" \\ path\n', le: '+Inf' }, value: 1500 },
    ]);
  });

  it('sums the samples whose labels include the given ones', () => {
    expect(metricSum(TEXT, 'mq_consumer_messages_total')).toBe(48);
    expect(metricSum(TEXT, 'mq_consumer_messages_total', { service: 'echo' })).toBe(43);
    expect(metricSum(TEXT, 'mq_consumer_messages_total', { outcome: 'dead_letter' })).toBe(0);
    expect(promSamples(TEXT, 'mq_rpc_pending_calls')).toHaveLength(1);
    expect(promSamples(TEXT, 'mq_rpc_pending')).toHaveLength(0);
  });

  it('refuses a line that is not a sample', () => {
    expect(() => parsePromText('not a sample line at all')).toThrow(/not a Prometheus sample line/);
    expect(() => parsePromText('x{a=b} 1')).toThrow(/not a Prometheus label set/);
  });
});
