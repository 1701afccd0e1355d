// Smoke test of the benchmark's pure report functions on sample data: no broker, no timing, no load.
import {
  cell,
  instanceCost,
  median,
  ratios,
  ratiosTable,
  resultsTable,
  scaleOut,
  spread,
  sweepTable,
} from './report';
import { machineSection, scaleSection } from './docs';
import { summarize } from './profile';
import { lineSpec } from './charts';

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

// Scale-out fixture: 1+1 and 2+2 rows of the same two rounds, and the broker's own rate (raw RPC).
const one = (rps: number, gateway: number, echo: number, broker: number, busy: number) => ({
  rps,
  p50: 10,
  p99: 30,
  errors: 0,
  non2xx: 0,
  cpu: { broker, echo, gateway, loadgen: 50, busy, other: 5 },
  rssMb: { gateway: 100, echo: 80 },
});
const two = (rps: number, g: number, e: number, broker: number, busy: number) => ({
  rps,
  p50: 12,
  p99: 40,
  errors: 1,
  non2xx: 2,
  cpu: {
    broker,
    'echo-1': e,
    'echo-2': e,
    'gateway-1': g,
    'gateway-2': g,
    loadgen: 40,
    busy,
    other: 2,
  },
  cost: instanceCost({ broker, 'echo-1': e, 'echo-2': e, 'gateway-1': g, 'gateway-2': g }, rps),
  rssMb: { 'gateway-1': 100, 'gateway-2': 100 },
});
const scaleResults = {
  'warren-async': [one(5000, 90, 20, 30, 185), one(5000, 90, 20, 30, 185)],
  'warren-async-x2': [two(5500, 50, 12, 36, 199), two(5500, 50, 12, 36, 199)],
  'warren-rpc': [one(4000, 80, 40, 40, 180), one(4000, 80, 40, 40, 180)],
  'warren-rpc-x2': [two(3800, 45, 22, 45, 200), two(3800, 45, 22, 45, 200)],
  'raw-rpc': [{ rps: 12000, p50: 5, p99: 12, errors: 0, cpu: { broker: 90, busy: 190 } }],
};
const scaleSaved = {
  meta: { config: { connections: 64 }, machine: { cpus: 2 } },
  scenarios: [
    { id: 'warren-async', label: 'W1 async', type: 'http' },
    { id: 'warren-rpc', label: 'W2 rpc', type: 'http' },
    { id: 'warren-async-x2', label: 'W1x2 async', type: 'http' },
    { id: 'warren-rpc-x2', label: 'W2x2 rpc', type: 'http' },
    { id: 'raw-rpc', label: 'A3n raw', type: 'rpc' },
    { id: 'gw-202', label: 'B1', type: 'http' },
  ],
  results: scaleResults,
  ratios: ratios(scaleResults),
};

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

  it('sums the CPU of the instances of a process per request (2+2 rows)', () => {
    const c = instanceCost(
      { 'gateway-1': 50, 'gateway-2': 50, 'echo-1': 10, broker: 40, loadgen: 30, busy: 200 },
      5000,
    );
    expect(Object.keys(c).sort()).toEqual(['broker', 'echo', 'gateway']);
    expect(c.gateway).toBeCloseTo(200, 5); // 100 % of a core / 5000 req/s = 200 µs
    expect(c.echo).toBeCloseTo(20, 5);
    expect(instanceCost({ gateway: 50 }, 0)).toEqual({});
  });

  it('computes the 2+2 / 1+1 ratios, informational (no target)', () => {
    const byId = Object.fromEntries(ratios(scaleResults).map((r) => [r.id, r]));
    expect(byId['scale-async']!.value).toBeCloseTo(1.1, 5);
    expect(byId['scale-rpc']!.value).toBeCloseTo(0.95, 5);
    expect(byId['scale-rpc']!.verdict).toBe('');
    expect(ratiosTable([byId['scale-async']!])).toContain(
      '| Warren async 2+2 / 1+1 (req/s) | 1.10 | 1.10-1.10 | 1.10 |  |  |',
    );
  });

  it('projects the scale-out from CPU per request, capped at the broker rate', () => {
    const s = scaleOut(scaleResults, [2, 8]);
    const rpc = s.modes.find((m: { mode: string }) => m.mode === 'rpc')!;
    // 1+1 RPC: gateway 80 % / 4000 = 200 µs, echo 100 µs, broker 100 µs per request.
    expect(rpc.perReq).toBeCloseTo(400, 5);
    expect(rpc.two.gatewaysCpu).toBe(90);
    expect(rpc.two.busy).toBe(200);
    expect(rpc.projection[0]).toMatchObject({ cores: 2, rps: 5000, brokerBound: false });
    expect(rpc.projection[1]).toMatchObject({ cores: 8, rps: 12000, brokerBound: true });
    expect(rpc.projection[1].cpuBound).toBeCloseTo(20000, 5);
    expect(rpc.projection[1]).toMatchObject({ gateways: 3, echos: 2 }); // 12000 x 200 µs = 2.4 cores
    expect(rpc.atBound.gatewayCores).toBeCloseTo(2.4, 5);
    expect(s.raw).toEqual({ rps: 12000, broker: 90, busy: 190 });
  });

  it('renders the scale-out section from the saved results only', () => {
    const md = scaleSection(scaleSaved);
    expect(md).toContain('| W1x2 async | 5 500 | 12.0 | 40.0 | 2 (4 non-2xx) |');
    expect(md).toContain('| Warren RPC 2+2 / 1+1 (req/s) | 0.95 |');
    expect(md).toContain('| RPC 2+2 | 45 | 45 | 22 | 22 | 45 | 40 | 2 | 200 |');
    expect(md).toContain('| async 1+1 | 90 |  | 20 |  | 30 | 50 | 5 | 185 |');
    expect(md).toContain('all 2 cores saturated');
    expect(md).toContain('x1.10, gained 10 %');
    expect(md).toContain('x0.95, lost 5 %');
    expect(md).toContain('reached 12 000 req/s with the broker at 90 % of a core');
    expect(md).toContain('| RPC | 200 + 100 + 100 = 400 | 8 | 20 000 | 12 000 (broker) | 3 | 2 |');
    expect(md).not.toContain('B1');
    expect(md).not.toContain('NaN');
    expect(
      scaleSection({ ...scaleSaved, results: { 'warren-rpc': scaleResults['warren-rpc'] } }),
    ).toBe('');
  });

  it('sums every process per request and says what the async target would need of the gateway', () => {
    const run = (rps: number, cpu: Record<string, number>) => ({ rps, p50: 1, p99: 2, cpu });
    const saved = {
      meta: { machine: { cpus: 2 } },
      results: {
        // Warren: 100 + 50 + 100 + 50 = 300 µs; naive: 150 + 25 + 100 + 50 = 325 µs (at 4 000 req/s).
        'warren-async': [run(4000, { gateway: 40, echo: 20, broker: 40, loadgen: 20, busy: 120 })],
        'gw-202': [
          run(4000, {
            'naive-gateway': 60,
            'echo-consumer': 10,
            broker: 40,
            loadgen: 20,
            busy: 130,
          }),
        ],
      },
    };
    const md = machineSection(saved);
    expect(md).toContain('| Warren async (gateway + echo) | 300 | 100 | 6 667 | 4 000 | 60 |');
    expect(md).toContain('| naive gateway, 202 | 325 | 150 | 6 154 | 4 000 | 65 |');
    // 325 / 1.5 = 216.7, minus the 200 µs Warren's other processes take.
    expect(md).toContain('tends to 1.08 (their summed costs, 325 / 300 µs)');
    expect(md).toContain('needs the gateway at or below 17 µs per request (now 100)');
    expect(md).not.toContain('RPC vs');
    // When the rest alone is too expensive, the target is called unreachable on this machine.
    const heavy = JSON.parse(JSON.stringify(saved)) as typeof saved;
    heavy.results['warren-async'][0].cpu.broker = 120;
    expect(machineSection(heavy)).toContain('even a gateway that cost nothing would reach only');
    expect(machineSection({ meta: { machine: { cpus: 2 } }, results: {} })).toBe('');
  });

  it('compares all processes, load generator included, against the raw client (issue 17)', () => {
    const run = (rps: number, cpu: Record<string, number>) => ({ rps, p50: 1, p99: 2, cpu });
    const results = {
      // Warren: (40 + 20 + 40 + 20) % of a core at 4 000 req/s = 300 µs per request.
      'warren-rpc': [run(4000, { gateway: 40, echo: 20, broker: 40, loadgen: 20, busy: 120 })],
      // Raw RPC: (60 + 20 + 20) % at 10 000 calls/s = 100 µs per call.
      'raw-rpc': [run(10000, { broker: 60, 'rpc-server': 20, 'rpc-client': 20, busy: 100 })],
    };
    const all = ratios(results).find((r) => r.id === 'all-rpc-vs-raw');
    expect(all?.value).toBeCloseTo(3, 6);
    expect(all?.verdict).toBe('NOT met');
    // Without the broker: (40 + 20 + 20) % at 4 000 req/s = 200 µs, the load generator still counted.
    results['warren-rpc'][0].cpu.broker = 0;
    expect(ratios(results).find((r) => r.id === 'all-rpc-vs-raw')?.value).toBeCloseTo(2, 6);
  });
});
