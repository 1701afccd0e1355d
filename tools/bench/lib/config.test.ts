// The benchmark's configuration and scenario list without running anything: env knobs, ports,
// the scenarios a run would measure, and the alternating order of an A/B run.
import path from 'node:path';
import { REPO, benchPorts, loadConfig, ratioDefs, roundOrder } from './config';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const bench = require('../bench.js') as {
  createRun(session: object, cfg: ReturnType<typeof loadConfig>): { cfg: unknown };
  scenarios(run: unknown): { id: string }[];
};

const ids = (env: Record<string, string>, argv: string[] = []) =>
  bench.scenarios(bench.createRun({}, loadConfig(env, argv))).map((s) => s.id);

describe('bench config', () => {
  it('has the defaults of the header, and reads the environment', () => {
    const cfg = loadConfig({}, []);
    expect(cfg).toMatchObject({
      rounds: 3,
      warmup: 2,
      duration: 7,
      connections: 64,
      drainN: 50000,
      sweep: true,
      sweepConnections: [1, 4, 16, 64, 256],
      peers: false,
      vhost: 'warren-bench',
      warrenRoot: REPO,
      compareWith: null,
      outDir: path.join(REPO, 'docs/performance'),
      scale: true,
      portBase: null,
    });
    expect(REPO).toBe(path.resolve(__dirname, '../../..'));
    const custom = loadConfig({ ROUNDS: '1', ONLY: 'raw-rpc, warren-rpc', SCALE: '0' }, [
      '--peers',
    ]);
    expect(custom).toMatchObject({
      rounds: 1,
      only: ['raw-rpc', 'warren-rpc'],
      scale: false,
      peers: true,
    });
  });

  it('moves every port with BENCH_PORT_BASE and refuses a bad one', () => {
    expect(benchPorts(null)).toMatchObject({ gateway: 3210, gateway2: 3211, gatewayOps: 9470 });
    expect(benchPorts(3610)).toMatchObject({ gateway: 3610, nest: 3614, echo2Ops: 3623 });
    expect(() => benchPorts(80)).toThrow(/BENCH_PORT_BASE/);
  });

  it('lists the scenarios of a default run, a subset, and without the scale-out rows', () => {
    expect(ids({})).toEqual([
      'warren-async',
      'warren-rpc',
      'warren-async-x2',
      'warren-rpc-x2',
      'raw-rpc',
      'raw-publish',
      'http-plain',
      'gw-202',
      'gw-rpc',
      'drain-raw',
      'drain-kit',
    ]);
    expect(ids({}, ['--peers'])).toContain('moleculer-tuned');
    expect(ids({ SCALE: '0' })).not.toContain('warren-rpc-x2');
    expect(ids({ ONLY: 'warren-rpc-x2,raw-rpc', SCALE: '0' })).toEqual([
      'warren-rpc-x2',
      'raw-rpc',
    ]);
  });

  it('puts each "before" variant next to its counterpart and alternates them by round', () => {
    const env = {
      COMPARE_WITH: '/tmp/warren-before',
      SCALE: '0',
      ONLY: 'warren-async,warren-async@before,drain-kit,drain-kit@before',
    };
    const cfg = loadConfig(env, []);
    const list = bench.scenarios(bench.createRun({}, cfg));
    expect(list.map((s) => s.id)).toEqual([
      'warren-async',
      'warren-async@before',
      'drain-kit',
      'drain-kit@before',
    ]);
    expect(roundOrder(cfg, list, 2).map((s) => s.id)).toEqual([
      'warren-async@before',
      'warren-async',
      'drain-kit@before',
      'drain-kit',
    ]);
    expect(roundOrder(cfg, list, 3)).toEqual(list);
    expect(ratioDefs('/tmp/warren-before', 'before').map((d: { id: string }) => d.id)).toContain(
      'ab-rpc-p99',
    );
    expect(ratioDefs(null, 'before').map((d: { id: string }) => d.id)).not.toContain('ab-rpc-p99');
  });
});
