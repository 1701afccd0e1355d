// The soak test's verdict math on made-up samples: no broker, no processes, no load.
import { afterWarmup, growth, metric, slope, soakMarkdown, verdict } from './soak-stats';
import { soakRssSpec } from './charts';

interface Sample {
  chunk: number;
  sent: number;
  requests: number;
  mode?: string;
  errors?: number;
  non2xx?: number;
  rss: { gateway: number; echo: number };
  heapUsedMb: { gateway: number; echo: number };
  pendingRpc: number;
  pendingRpcMax?: number;
}

/** A soak of `total` requests in `chunks` chunks; RSS per chunk from the two functions. */
function soak(
  total: number,
  chunks: number,
  gw: (i: number) => number,
  echo: (i: number) => number,
): Sample[] {
  const size = total / chunks;
  const out: Sample[] = [
    {
      chunk: 0,
      sent: 0,
      requests: 0,
      rss: { gateway: 70, echo: 60 },
      heapUsedMb: { gateway: 10, echo: 10 },
      pendingRpc: 0,
    },
  ];
  for (let i = 1; i <= chunks; i++)
    out.push({
      chunk: i,
      sent: i * size,
      requests: size,
      mode: 'async+rpc',
      errors: 0,
      non2xx: 0,
      rss: { gateway: gw(i), echo: echo(i) },
      heapUsedMb: { gateway: 40, echo: 20 },
      pendingRpc: 0,
      pendingRpcMax: 32,
    });
  return out;
}

describe('soak stats', () => {
  it('fits a least-squares slope', () => {
    expect(
      slope([
        [0, 1],
        [1, 3],
        [2, 5],
      ]),
    ).toBeCloseTo(2);
    expect(
      slope([
        [0, 10],
        [100, 10],
      ]),
    ).toBe(0);
    expect(slope([[1, 1]])).toBeNaN();
    expect(
      slope([
        [1, 1],
        [1, 2],
      ]),
    ).toBeNaN();
    expect(
      slope([
        [0, 0],
        [1, NaN],
        [2, 4],
      ]),
    ).toBeCloseTo(2);
  });

  it('drops the warm-up (first 10 % of the requests) and the sample before load', () => {
    const s = soak(
      1_000_000,
      20,
      () => 100,
      () => 80,
    );
    const post = afterWarmup(s, 1_000_000);
    expect(post.map((x) => x.sent)[0]).toBe(100_000);
    expect(post).toHaveLength(19);
  });

  it('compares the medians of the first and last 3 samples after warm-up', () => {
    const s = soak(
      1_000_000,
      20,
      (i) => [0, 300, 250, 100, 104, 200, 100][i] ?? 108,
      () => 80,
    );
    const post = afterWarmup(s, 1_000_000);
    const g = growth(post, (x) => x.rss.gateway);
    // After warm-up: 100k..200k = 104, 200, 100 (median 104), last three 108 (median 108).
    expect(g.baseAt).toEqual([100_000, 150_000, 200_000]);
    expect(g.endAt).toEqual([900_000, 950_000, 1_000_000]);
    expect(g.base).toBe(104);
    expect(g.end).toBe(108);
    expect(g.growth).toBeCloseTo(108 / 104 - 1);
    expect(g.overlap).toBe(false);
  });

  it('passes a flat run and reports the slope per 100k requests', () => {
    const s = soak(
      1_000_000,
      20,
      (i) => 150 + (i % 2),
      () => 100,
    );
    const v = verdict({ total: 1_000_000, samples: s, finalPending: 0 });
    expect(v.pass).toBe(true);
    expect(v.targets.map((t) => [t.id, t.pass])).toEqual([
      ['rss-gateway', true],
      ['rss-echo', true],
      ['pending-rpc', true],
      ['errors', true],
    ]);
    expect(v.rss.echo.slopePer100k).toBe(0);
    expect(v.pendingMax).toBe(32);
    expect(v.warmupRequests).toBe(100_000);
  });

  it('fails steady growth beyond 10 %, in either direction', () => {
    // +2 MB per 50k requests from 100 MB: 100k..200k median 104, 900k..1M median 136 (+30.8 %).
    const up = soak(
      1_000_000,
      20,
      (i) => 100 + 2 * (i - 1),
      () => 100,
    );
    const v = verdict({ total: 1_000_000, samples: up, finalPending: 0 });
    expect(v.pass).toBe(false);
    expect(v.targets.find((t) => t.id === 'rss-gateway')?.pass).toBe(false);
    expect(v.targets.find((t) => t.id === 'rss-echo')?.pass).toBe(true);
    expect(v.rss.gateway.growth).toBeCloseTo(136 / 104 - 1);
    expect(v.rss.gateway.slopePer100k).toBeCloseTo(4);
    const down = soak(
      1_000_000,
      20,
      () => 100,
      (i) => 200 - 3 * i,
    );
    expect(verdict({ total: 1_000_000, samples: down, finalPending: 0 }).targets[1].pass).toBe(
      false,
    );
    // Exactly 10 % is still within the target.
    const edge = soak(
      1_000_000,
      20,
      (i) => (i < 10 ? 100 : 110),
      () => 100,
    );
    expect(verdict({ total: 1_000_000, samples: edge, finalPending: 0 }).pass).toBe(true);
  });

  it('fails on pending RPCs left, errors, non-2xx or missing requests', () => {
    const flat = () =>
      soak(
        100_000,
        10,
        () => 100,
        () => 100,
      );
    expect(verdict({ total: 100_000, samples: flat(), finalPending: 3 }).pass).toBe(false);
    expect(verdict({ total: 100_000, samples: flat(), finalPending: NaN }).pass).toBe(false);
    const err = flat();
    err[4].errors = 1;
    expect(verdict({ total: 100_000, samples: err, finalPending: 0 }).pass).toBe(false);
    const bad = flat();
    bad[7].non2xx = 2;
    const v = verdict({ total: 100_000, samples: bad, finalPending: 0 });
    expect(v.non2xx).toBe(2);
    expect(v.targets.find((t) => t.id === 'errors')?.pass).toBe(false);
    const short = flat();
    short[3].requests -= 1;
    expect(verdict({ total: 100_000, samples: short, finalPending: 0 }).pass).toBe(false);
  });

  it('needs at least two samples after warm-up and flags overlapping windows', () => {
    const one = soak(
      10_000,
      1,
      () => 100,
      () => 100,
    );
    const v = verdict({ total: 10_000, samples: one, finalPending: 0 });
    expect(v.pass).toBe(false);
    expect(v.targets[0].detail).toMatch(/only 1 sample/);
    const few = soak(
      40_000,
      4,
      () => 100,
      () => 100,
    );
    const w = verdict({ total: 40_000, samples: few, finalPending: 0 });
    expect(w.pass).toBe(true);
    expect(w.rss.gateway.overlap).toBe(true);
  });

  it('reads gauges from the Prometheus text format', () => {
    const text = [
      '# HELP mq_rpc_pending_calls RPC calls waiting for a reply',
      '# TYPE mq_rpc_pending_calls gauge',
      'mq_rpc_pending_calls_other 9',
      'mq_rpc_pending_calls{service="gateway"} 7',
      'nodejs_heap_size_used_bytes{service="gateway"} 12345678',
    ].join('\n');
    expect(metric(text, 'mq_rpc_pending_calls')).toBe(7);
    expect(metric(text, 'nodejs_heap_size_used_bytes')).toBe(12345678);
    expect(metric(text, 'absent')).toBeNaN();
    expect(metric('', 'mq_rpc_pending_calls')).toBeNaN();
  });

  it('renders the report and the chart spec from the samples', () => {
    const samples = soak(
      1_000_000,
      20,
      () => 150,
      () => 100,
    );
    const v = verdict({ total: 1_000_000, samples, finalPending: 0 });
    const md = soakMarkdown(
      {
        meta: {
          stamp: 'x',
          date: '2026-01-01T00:00:00Z',
          command: 'npm run bench:soak',
          config: {
            n: 1_000_000,
            chunk: 50_000,
            mode: 'mixed',
            connections: 64,
            drainMaxS: 120,
            vhost: 'warren-soak',
          },
          machine: { cpus: 2, cpuModel: 'cpu', memGiB: 4, kernel: 'k', loadavgStart: [1, 1, 1] },
          versions: { node: 'v20' },
          git: { commit: 'abc', dirty: false },
          elapsedS: 300,
        },
        samples,
        finalPending: 0,
        verdict: v,
      },
      { json: 'soak-x.json', chart: 'soak-rss.png' },
    );
    expect(md).toContain('**Verdict: PASS** (4 of 4 targets met)');
    expect(md).toContain('\\|growth\\| <= 10.0 %');
    expect(md).toContain('![RSS of gateway and echo vs requests sent](soak-rss.png)');
    expect(md.split('\n').filter((l) => /^\| \d+ \|/.test(l))).toHaveLength(21);
    const spec = soakRssSpec({ samples, warmupRequests: v.warmupRequests });
    expect(spec.layer[0].data.values).toHaveLength(42);
    expect(spec.layer[1].data.values[0].sent).toBe(100_000);
  });
});
