// Smoke test of the benchmark's pure report functions on sample data: no broker, no timing, no load.
import { cell, median, ratios, ratiosTable, resultsTable, spread, sweepTable } from './lib/report';
import { summarize } from './lib/profile';
import { lineSpec } from './lib/charts';

const http = (rps: number, p50: number, p99: number) => ({
  rps,
  p50,
  p99,
  errors: 0,
  non2xx: 0,
  cpu: { gateway: 90, broker: 40 },
  rssMb: { gateway: 100 },
});

const results = {
  'warren-async': [http(6000, 9, 20), http(5000, 10, 22), http(5500, 9, 21)],
  'warren-rpc': [http(4000, 14, 30), http(4200, 13, 28), { failed: 'boom' }],
  'gw-202': [http(3000, 18, 33), http(3500, 17, 35), http(3200, 18, 34)],
  'http-plain': [http(6500, 10, 24), http(6400, 10, 25), http(6600, 10, 24)],
  'raw-rpc': [http(13000, 4, 12), http(13500, 4, 13), http(12800, 4, 12)],
  'drain-kit': [{ n: 1000, drainRate: 9000, errors: 0, cpu: { echo: 80 }, rssMb: { echo: 90 } }],
  'drain-raw': [{ n: 1000, drainRate: 10000, errors: 0, cpu: { raw: 40 }, rssMb: { raw: 50 } }],
};

const scenarios = [
  { id: 'warren-async', label: 'W1 async', type: 'http' },
  { id: 'warren-rpc', label: 'W2 rpc', type: 'http' },
  { id: 'gw-202', label: 'B1', type: 'http' },
  { id: 'drain-kit', label: 'D1', type: 'drain' },
  { id: 'not-run', label: 'absent', type: 'http' },
];

describe('bench report', () => {
  it('computes medians and spreads of finite values', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(median([NaN])).toBeNaN();
    expect(spread([5, 1, NaN, 3])).toEqual({ median: 3, min: 1, max: 5, n: 3 });
    expect(cell([5500, 5000, 6000])).toBe('5 500 (5 000-6 000)');
  });

  it('builds the results table, with failed runs counted and absent scenarios left out', () => {
    const table = resultsTable(scenarios, results);
    const lines = table.split('\n');
    expect(lines).toHaveLength(2 + 4);
    expect(table).toContain(
      '| W1 async | 5 500 (5 000-6 000) | 9.0 (9.0-10.0) | 21.0 (20.0-22.0) |',
    );
    expect(table).toContain('1 failed run');
    expect(table).toContain('| D1 (1 000 msgs) | 9 000 msg/s |');
    expect(table).not.toContain('absent');
  });

  it('computes the ratios vs targets from medians, with per-round spreads', () => {
    const list = ratios(results);
    const byId = Object.fromEntries(list.map((r) => [r.id, r]));
    expect(byId['async-vs-naive']!.value).toBeCloseTo(5500 / 3200, 5);
    expect(byId['async-vs-naive']!.verdict).toBe('met');
    expect(byId['async-vs-naive']!.perRound).toHaveLength(3);
    expect(byId['async-vs-express']!.verdict).toBe('NOT met');
    expect(byId['rpc-p99-vs-raw']!.value).toBeCloseTo(29 / 12, 5);
    expect(byId['rpc-p99-vs-raw']!.verdict).toBe('met');
    expect(byId['drain']!.value).toBeCloseTo(0.9, 5);
    expect(byId['rpc-vs-nest']).toBeUndefined();
    const md = ratiosTable(list);
    expect(md).toContain('| Warren async / naive gateway 202 (req/s) | 1.72 |');
    expect(byId['async-vs-naive']!.bestValue).toBeCloseTo(6000 / 3500, 5);
    expect(byId['rpc-p99-vs-raw']!.bestValue).toBeCloseTo(28 / 12, 5);
  });

  it('renders the sweep table and a chart spec', () => {
    const points = [
      { scenario: 'async', connections: 1, ...http(900, 1, 2) },
      { scenario: 'async', connections: 4, failed: 'x' },
    ];
    expect(sweepTable(points).split('\n')).toHaveLength(4);
    const spec = lineSpec({ title: 't', points, field: 'rps', yTitle: 'req/s' }) as {
      data: { values: unknown[] };
    };
    expect(spec.data.values).toEqual([{ connections: 1, value: 900, series: 'async' }]);
  });

  it('summarises a cpu profile by package and function', () => {
    const node = (id: number, functionName: string, url: string, children: number[] = []) => ({
      id,
      callFrame: { functionName, url, lineNumber: 0, columnNumber: 0, scriptId: '0' },
      hitCount: 0,
      children,
    });
    const profile = {
      nodes: [
        node(1, '(root)', '', [2, 4]),
        node(2, 'handle', 'file:///w/node_modules/express/lib/router.js', [3]),
        node(3, 'write', 'file:///w/node_modules/pino/lib/proto.js'),
        node(4, '(idle)', ''),
      ],
      samples: [2, 3, 3, 4],
      timeDeltas: [0, 1000, 1000, 1000],
    };
    const s = summarize(profile);
    expect(s.owners.find((o: { owner: string }) => o.owner === 'pino')!.ms).toBeCloseTo(2, 5);
    expect(s.inclusiveTop[0]!.name).toContain('handle');
    expect(s.inclusiveTop[0]!.ms).toBeCloseTo(3, 5);
  });
});
