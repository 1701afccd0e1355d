// Unit: hot families read exactly like prom-client's own (text, JSON, cluster aggregation), fed the same values.
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { HotCounter, HotHistogram } from './hot-metrics';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Samples of an exposition, each `name{labels sorted} value`, sorted (label order is not meaning). */
function samples(text: string): string[] {
  return text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const m = /^([^{ ]+)(?:\{(.*)\})? (.+)$/.exec(line);
      if (!m) throw new Error(`not a sample: ${line}`);
      const labels = (m[2] ?? '').split(',').filter(Boolean).sort().join(',');
      return `${m[1]}{${labels}} ${m[3]}`;
    })
    .sort();
}

function pair() {
  const real = new Registry();
  const hot = new Registry();
  for (const r of [real, hot]) r.setDefaultLabels({ service: 'svc' });
  return { real, hot };
}

// Bounds themselves (le is inclusive), values between, below the first and above the last.
const VALUES = [0, 0.001, 0.0011, 0.003, 0.01, 0.7, 1, 29.9, 30, 31, 1e6, 0.0004, 2.5];

describe('HotHistogram', () => {
  function fed() {
    const { real, hot } = pair();
    const h = new Histogram({
      name: 'x_seconds',
      help: 'x',
      labelNames: ['queue', 'outcome'],
      buckets: BUCKETS,
      registers: [real],
    });
    const hh = new HotHistogram({
      name: 'x_seconds',
      help: 'x',
      labelNames: ['queue', 'outcome'],
      buckets: BUCKETS,
      registers: [hot],
    });
    const a = hh.child('echo', 'ok');
    const b = hh.child('echo', 'error');
    VALUES.forEach((v, i) => {
      h.labels('echo', 'ok').observe(v);
      a.observe(v);
      if (i % 3 === 0) {
        h.labels('echo', 'error').observe(v * 2);
        b.observe(v * 2);
      }
    });
    return { real, hot, hh };
  }

  test('the exposition has the same samples as a prom-client Histogram fed the same values', async () => {
    const { real, hot } = fed();
    const text = await hot.metrics();
    expect(samples(text)).toEqual(samples(await real.metrics()));
    expect(text).toContain('# TYPE x_seconds histogram');
    expect(text).toContain(
      'x_seconds_bucket{le="+Inf",queue="echo",outcome="ok",service="svc"} 13',
    );
  });

  test('the JSON reading and the cluster aggregation are the same as prom-client’s', async () => {
    const { real, hot } = fed();
    const strip = (json: Awaited<ReturnType<Registry['getMetricsAsJSON']>>) =>
      json.map((m) => ({
        ...m,
        values: (
          m as unknown as { values: { metricName?: string; labels: object; value: number }[] }
        ).values.map(({ metricName, labels, value }) => ({ metricName, labels, value })),
      }));
    const realJson = await real.getMetricsAsJSON();
    const hotJson = await hot.getMetricsAsJSON();
    expect(strip(hotJson)).toEqual(strip(realJson));
    // Two workers' readings summed by the primary (GATEWAY_WORKERS).
    const realSum = AggregatorRegistry.aggregate([realJson, realJson]);
    const hotSum = AggregatorRegistry.aggregate([hotJson, hotJson]);
    expect(samples(await hotSum.metrics())).toEqual(samples(await realSum.metrics()));
    expect(await hotSum.metrics()).toMatch(
      /x_seconds_count\{queue="echo",outcome="ok",service="svc"\} 26/,
    );
  });

  test('a child is made once per label values; wrong arity and unordered buckets are refused', () => {
    const hh = new HotHistogram({
      name: 'y',
      help: 'y',
      labelNames: ['queue'],
      buckets: [1, 2],
      registers: [],
    });
    expect(hh.child('a')).toBe(hh.child('a'));
    expect(hh.child('a')).not.toBe(hh.child('b'));
    expect(() => hh.child('a', 'b')).toThrow(/expected 1 label values/);
    expect(
      () =>
        new HotHistogram({ name: 'z', help: 'z', labelNames: [], buckets: [2, 1], registers: [] }),
    ).toThrow(/ascend/);
  });

  test('non-finite values are not counted; reset() forgets every series', async () => {
    const { hot, hh } = fed();
    const before = samples(await hot.metrics());
    hh.child('echo', 'ok').observe(Number.NaN);
    hh.child('echo', 'ok').observe(Number.POSITIVE_INFINITY);
    expect(samples(await hot.metrics())).toEqual(before);
    hot.resetMetrics();
    expect(samples(await hot.metrics())).toEqual([]);
  });
});

describe('HotCounter', () => {
  test('increments reach the family when it is read, as prom-client’s own would', async () => {
    const { real, hot } = pair();
    const c = new Counter({
      name: 'n_total',
      help: 'n',
      labelNames: ['queue', 'outcome'],
      registers: [real],
    });
    const hc = new HotCounter({
      name: 'n_total',
      help: 'n',
      labelNames: ['queue', 'outcome'],
      registers: [hot],
    });
    const ok = hc.child('echo', 'success');
    for (let i = 0; i < 5; i++) {
      ok.inc();
      c.labels('echo', 'success').inc();
    }
    hc.child('echo', 'retry').inc();
    c.labels('echo', 'retry').inc();
    hc.child('echo', 'rejected'); // a child never incremented makes no series, as labels() alone
    expect(samples(await hot.metrics())).toEqual(samples(await real.metrics()));
    // Read twice: nothing counted twice; later increments add on.
    ok.inc();
    c.labels('echo', 'success').inc();
    expect(samples(await hot.metrics())).toEqual(samples(await real.metrics()));
    expect(await hot.metrics()).toContain(
      'n_total{queue="echo",outcome="success",service="svc"} 6',
    );
  });

  test('its own collect still runs; reset() drops increments not yet read', async () => {
    const registry = new Registry();
    let collected = 0;
    const hc = new HotCounter({
      name: 'm_total',
      help: 'm',
      labelNames: ['k'],
      registers: [registry],
      collect() {
        collected++;
      },
    });
    hc.child('a').inc();
    registry.resetMetrics();
    expect(await registry.metrics()).not.toContain('m_total{');
    hc.child('a').inc();
    expect(await registry.metrics()).toContain('m_total{k="a"} 1');
    expect(collected).toBe(2);
    expect(() => hc.child()).toThrow(/expected 1 label values/);
  });
});
