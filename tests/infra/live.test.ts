// The dashboards and rules against real data: on a throwaway vhost, the built gateway, hello, echo,
// wordcount and two fixture services (one that fails, one that is slow) take a mixed load through
// the gateway, while the real Prometheus binary runs the project's own prometheus.yml and rules
// (rewritten only for addresses, intervals and this run's vhost). Then every PromQL expression of
// every dashboard panel and variable and of every rule goes through Prometheus' HTTP API and must
// parse and return data; the alerts the load causes fire (for the right services only) and the
// others are silent over series that exist. A service started mid-run must be discovered,
// scraped and shown without any config edit. Finally the overview's main panels are drawn to PNG
// from the same data (what `npm run dashboards:snapshot` commits).
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stopAll } from '../support/processes';
import {
  ALLOWED_CONFIG_CHANGES,
  Load,
  PromQueryError,
  boolComparisons,
  configChanges,
  mixedLoadCycle,
  sampleValue,
  startLiveStack,
  type LiveStack,
  type LoadOp,
  type PromApi,
  type PromSeries,
} from './live-stack';
import {
  fetchPanels,
  overviewSpec,
  pngSize,
  renderSpecToPng,
} from '../../tools/reports/overview-snapshot';
import {
  DEFAULT_GRAFANA_VARIABLES,
  dashboardExpressions,
  loadRuleFile,
  ruleExpressions,
  ruleFiles,
  type PromqlExpression,
} from './promql';
import { eventually, scaled, sleep } from '../support/time';

jest.setTimeout(scaled(120_000));

const FLAKY = 'flaky';
const SLOW = 'slow';
const FRESH = 'fresh';

/**
 * Alerts the load triggers, and the only services they may name. Their `for:` (10m and 5m in the
 * repository) is shortened in Prometheus' temp copy of the rules so they can fire within the test.
 */
const EXPECTED_FIRING: Record<string, string[]> = {
  WarrenDeadLetters: [FLAKY],
  WarrenServiceErrorRatioHigh: [FLAKY],
  WarrenRpcTimeouts: [SLOW],
};
const FOR_OVERRIDES = { WarrenServiceErrorRatioHigh: '5s', WarrenRpcTimeouts: '5s' };
/** Everything else must stay silent (a new alert must be added to one list or the other). */
const EXPECTED_SILENT = [
  'WarrenServiceNoLiveInstance',
  'WarrenGatewayDown',
  'WarrenQueueBacklogGrowing',
  'WarrenGateway5xxHigh',
  'WarrenBrokerConnectionFlapping',
];
/** Values of the per-service dashboard's $service variable to check it with. */
const SERVICE_VARIABLE_VALUES = ['echo', FLAKY];

let stack: LiveStack;
let api: PromApi;
let load: Load;
let loadStartedAt = 0;

beforeAll(async () => {
  stack = await startLiveStack({ flaky: FLAKY, slow: SLOW, forOverrides: FOR_OVERRIDES });
  api = stack.prometheus.api;
  load = new Load(stack.gateway.url(''), mixedLoadCycle(FLAKY, SLOW));
  loadStartedAt = Date.now();
  load.start();
}, scaled(120_000));

afterAll(async () => {
  await load?.stop();
  await stack?.stop();
  await stopAll();
}, scaled(60_000));

const labelSet = (series: PromSeries[], label: string): string[] =>
  [...new Set(series.map((s) => s.metric[label] ?? ''))].sort();

/** Result has at least one series with a finite value; else a reason. */
function hasData(result: PromSeries[]): string | undefined {
  if (result.length === 0) return 'no series';
  if (!result.some((s) => Number.isFinite(sampleValue(s))))
    return `${result.length} series, none with a finite value`;
  return undefined;
}

interface Check {
  source: string;
  expr: string;
  check: (result: PromSeries[]) => string | undefined;
}

/**
 * Evaluates every check, retrying the unsatisfied ones each second until `timeoutMs` × TEST_TIME_SCALE (windows
 * fill up as the scrapes come in); a query Prometheus rejects fails at once. Returns the failures.
 */
async function evaluate(checks: Check[], timeoutMs: number): Promise<string[]> {
  const failures = new Map<Check, string>();
  let pending = checks;
  const deadline = Date.now() + scaled(timeoutMs);
  for (;;) {
    const retry: Check[] = [];
    for (const c of pending) {
      try {
        const problem = c.check(await api.query(c.expr));
        if (problem === undefined) failures.delete(c);
        else {
          failures.set(c, problem);
          retry.push(c);
        }
      } catch (err) {
        if (!(err instanceof PromQueryError)) throw err;
        failures.set(c, `rejected by Prometheus (${err.errorType}): ${err.message}`);
      }
    }
    pending = retry;
    if (pending.length === 0 || Date.now() > deadline) break;
    await sleep(1000);
  }
  return [...failures].map(([c, problem]) => `${c.source}\n    ${c.expr}\n    -> ${problem}`);
}

const expressionChecks = (expressions: PromqlExpression[]): Check[] =>
  expressions.map((e) => ({ source: e.source, expr: e.expr, check: hasData }));

function overviewExpr(title: string, refId = 'A'): string {
  const found = dashboardExpressions().find(
    (e) => e.source === `overview.json › ${title} › ${refId}`,
  );
  if (!found) throw new Error(`overview.json has no panel "${title}" target ${refId}`);
  return found.expr;
}

describe('boolComparisons', () => {
  it('turns comparisons outside label matchers and strings into bool comparisons', () => {
    expect(boolComparisons('sum(x{a!="b",c=~"d>e"}) > 3 and y == 0')).toBe(
      'sum(x{a!="b",c=~"d>e"}) > bool 3 and y == bool 0',
    );
    expect(boolComparisons('label_replace(x, "s", "$1", "q", "(.+)>") >= bool 1')).toBe(
      'label_replace(x, "s", "$1", "q", "(.+)>") >= bool 1',
    );
  });
});

describe('live stack and Prometheus', () => {
  it('runs the repository prometheus.yml, rewritten only for addresses, intervals and the vhost', async () => {
    const changes = configChanges(stack.prometheus.original, stack.prometheus.config);
    expect(changes.filter((c) => !ALLOWED_CONFIG_CHANGES.some((re) => re.test(c)))).toEqual([]);
    expect(changes).toContain('/global/scrape_interval');

    // Every rule of the repository is loaded, with its own `for:` except the listed overrides.
    const loaded = new Map(
      (await api.rules()).flatMap((g) =>
        g.rules.map((r) => [`${r.type}:${r.name}:${JSON.stringify(r.labels ?? {})}`, r]),
      ),
    );
    const seconds = (d: string | undefined) => {
      const m = /^(\d+)([smh])$/.exec(d ?? '0s');
      return m ? Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2] as 's' | 'm' | 'h'] : NaN;
    };
    for (const file of ruleFiles())
      for (const group of loadRuleFile(file).groups)
        for (const rule of group.rules) {
          const type = rule.alert ? 'alerting' : 'recording';
          const name = rule.alert ?? rule.record ?? '?';
          const key = `${type}:${name}:${JSON.stringify(rule.labels ?? {})}`;
          const got = loaded.get(key) as unknown as { duration?: number } | undefined;
          expect({ rule: key, loaded: got !== undefined }).toEqual({ rule: key, loaded: true });
          if (rule.alert) {
            const want =
              rule.alert in FOR_OVERRIDES
                ? FOR_OVERRIDES[rule.alert as keyof typeof FOR_OVERRIDES]
                : rule.for;
            expect({ rule: name, for: got?.duration ?? 0 }).toEqual({
              rule: name,
              for: seconds(want),
            });
          }
        }
    expect(
      Object.keys({ ...EXPECTED_FIRING })
        .concat(EXPECTED_SILENT)
        .sort(),
    ).toEqual(
      ruleExpressions()
        .filter((e) => e.kind === 'alert')
        .map((e) => e.name)
        .sort(),
    );
  });

  it('scrapes the gateway, every service found through /sd/prometheus, and RabbitMQ', async () => {
    const want = stack.services.map((s) => s.name).sort();
    const targets = await eventually(() => api.targets(), 30_000, 'every target up', {
      until: (ts) =>
        ts.every((t) => t.health === 'up') &&
        want.every((n) =>
          ts.some((t) => t.scrapePool === 'warren-services' && t.labels.service === n),
        ),
      intervalMs: 500,
      retryErrors: true,
    });
    expect([...new Set(targets.map((t) => t.scrapePool))].sort()).toEqual([
      'prometheus',
      'rabbitmq',
      'rabbitmq-queues',
      'warren-gateway',
      'warren-services',
    ]);
    const up = await api.query('up{job="warren-services"} == 1');
    expect(labelSet(up, 'service')).toEqual(want);
  });

  it('discovers, scrapes and shows a service started mid-run, without a config edit', async () => {
    const fresh = await stack.startFixture(FRESH);
    const ops: LoadOp[] = [
      { name: `async ${FRESH}`, path: `/v1/${FRESH}`, body: '{"ms": 3}' },
      { name: `rpc ${FRESH}`, path: `/v1/${FRESH}?wait=true`, body: '{}' },
    ];
    load.add(...ops);

    const sd = await eventually(
      async () =>
        (await (await fetch(`http://127.0.0.1:${stack.gateway.opsPort}/sd/prometheus`)).json()) as {
          targets: string[];
          labels: Record<string, string>;
        }[],
      30_000,
      `${FRESH} in the gateway's /sd/prometheus`,
      {
        until: (groups) => groups.some((g) => g.labels.service === FRESH),
        intervalMs: 500,
        retryErrors: true,
      },
    );
    expect(sd.find((g) => g.labels.service === FRESH)?.targets).toEqual([
      `127.0.0.1:${fresh.opsPort}`,
    ]);
    await eventually(
      () => api.query(`up{service="${FRESH}"} == 1`),
      30_000,
      `up{service="${FRESH}"} == 1`,
      { until: (r) => r.length === 1, intervalMs: 500, retryErrors: true },
    );
    const throughput = overviewExpr('Throughput by service');
    const shown = await eventually(
      () => api.query(throughput),
      30_000,
      `${FRESH} in the overview's throughput query`,
      {
        until: (r) => r.some((s) => s.metric.service === FRESH),
        intervalMs: 500,
        retryErrors: true,
      },
    );
    expect(labelSet(shown, 'service')).toEqual(expect.arrayContaining([FRESH, FLAKY, 'echo']));
  });

  it('drives a mixed load: accepted, answered, rejected and timed-out requests', async () => {
    const want = ['200', '202', '400', '404', '415', '504'];
    const statuses = await eventually(
      () => Promise.resolve(load.byStatus()),
      30_000,
      `answers ${want.join(', ')} to the load`,
      {
        until: (seen) => want.every((s) => (seen[s] ?? 0) > 0),
        intervalMs: 500,
        retryErrors: true,
      },
    );
    expect(Object.keys(statuses).sort()).toEqual(want);
    expect(load.total((op, status) => op.startsWith('rpc timeout') && status !== 504)).toBe(0);
  });

  it('every dashboard panel and variable expression parses and returns data', async () => {
    const seen = new Set<string>();
    const checks: Check[] = [];
    for (const service of SERVICE_VARIABLE_VALUES)
      for (const c of expressionChecks(
        dashboardExpressions({ ...DEFAULT_GRAFANA_VARIABLES, service }),
      )) {
        if (seen.has(c.expr)) continue;
        // echo subscribes to events but publishes none: that panel is empty for it by design.
        if (service === 'echo' && c.source.startsWith('service.json › Events published by topic'))
          continue;
        seen.add(c.expr);
        checks.push({ ...c, source: `${c.source} [service=${service}]` });
      }
    expect(checks.length).toBeGreaterThan(60);
    expect(await evaluate(checks, 45_000)).toEqual([]);

    // The check itself catches a query that returns nothing and one Prometheus cannot parse.
    const canaries = await evaluate(
      [
        { source: 'canary', expr: 'sum(rate(warren_no_such_metric_total[1m]))', check: hasData },
        { source: 'canary', expr: 'sum by (service (up)', check: hasData },
      ],
      0,
    );
    expect(canaries).toEqual([
      expect.stringContaining('-> no series'),
      expect.stringContaining('-> rejected by Prometheus (bad_data)'),
    ]);
  });

  it('every recording rule parses, returns data and is recorded', async () => {
    const rules = ruleFiles().flatMap((f) => loadRuleFile(f).groups.flatMap((g) => g.rules));
    const recorded: Check[] = rules
      .filter((r) => r.record)
      .map((r) => {
        const matchers = Object.entries(r.labels ?? {}).map(([k, v]) => `${k}="${v}"`);
        return {
          source: `recorded series ${r.record}`,
          expr: `${r.record}{${matchers.join(',')}}`,
          check: hasData,
        };
      });
    const exprs = expressionChecks(ruleExpressions().filter((e) => e.kind === 'recording'));
    expect(await evaluate([...exprs, ...recorded], 45_000)).toEqual([]);
    for (const group of await api.rules())
      for (const rule of group.rules)
        expect({ rule: rule.name, health: rule.health, error: rule.lastError ?? '' }).toEqual({
          rule: rule.name,
          health: 'ok',
          error: '',
        });
  });

  it('the RabbitMQ panels find this vhost’s queues', async () => {
    const raw = await api.query('rabbitmq_detailed_queue_messages_ready');
    expect(labelSet(raw, 'vhost')).toEqual([stack.vhost.name]);
    const serviceQueues = ['hello', 'echo', 'wordcount', FLAKY, SLOW, FRESH].sort();
    const depth = await api.query(overviewExpr('Queue depth'));
    expect(labelSet(depth, 'queue')).toEqual(expect.arrayContaining(serviceQueues));
    const consumers = await api.query(overviewExpr('Consumers per queue'));
    for (const q of serviceQueues)
      expect({
        q,
        consumers: sampleValue(consumers.find((s) => s.metric.queue === q) ?? { metric: {} }),
      }).toEqual({
        q,
        consumers: 1,
      });
    const dlq = await eventually(
      () => api.query(overviewExpr('Retry and dead-letter queues')),
      30_000,
      `${FLAKY}.dlq holding dead letters`,
      {
        until: (r) =>
          sampleValue(r.find((s) => s.metric.queue === `${FLAKY}.dlq`) ?? { metric: {} }) > 0,
        intervalMs: 500,
        retryErrors: true,
      },
    );
    expect(labelSet(dlq, 'queue')).toEqual(
      expect.arrayContaining([`${FLAKY}.dlq`, `${FLAKY}.retry.300.v2`, 'echo.dlq']),
    );
  });

  it('the alerts the load triggers fire, naming only the services concerned', async () => {
    const rules = new Map(ruleExpressions().map((e) => [e.name, e]));
    for (const [alert, services] of Object.entries(EXPECTED_FIRING)) {
      const expr = rules.get(alert)?.expr ?? '';
      const result = await eventually(
        () => api.query(expr),
        30_000,
        `${alert} expression non-empty`,
        { until: (r) => r.length > 0, intervalMs: 500, retryErrors: true },
      );
      expect({ alert, services: labelSet(result, 'service') }).toEqual({ alert, services });
      const firing = await eventually(() => api.alerts(), 30_000, `${alert} firing`, {
        until: (as) => as.some((a) => a.labels.alertname === alert && a.state === 'firing'),
        intervalMs: 500,
        retryErrors: true,
      });
      expect({
        alert,
        services: [
          ...new Set(
            firing.filter((a) => a.labels.alertname === alert).map((a) => a.labels.service),
          ),
        ].sort(),
      }).toEqual({ alert, services });
    }
  });

  it('the other alerts are silent, over series that exist', async () => {
    const rules = new Map(ruleExpressions().map((e) => [e.name, e]));
    const witnesses: Check[] = EXPECTED_SILENT.map((alert) => ({
      source: `${alert} with bool comparisons`,
      expr: boolComparisons(rules.get(alert)?.expr ?? ''),
      check: hasData,
    }));
    expect(await evaluate(witnesses, 20_000)).toEqual([]);
    const silent: Check[] = EXPECTED_SILENT.map((alert) => ({
      source: alert,
      expr: rules.get(alert)?.expr ?? '',
      check: (r) =>
        r.length === 0 ? undefined : `fires for ${JSON.stringify(r.map((s) => s.metric))}`,
    }));
    // Retried for a few seconds: one scrape missed on a busy machine is not an outage.
    expect(await evaluate(silent, 10_000)).toEqual([]);
    const active = (await api.alerts()).filter(
      (a) => !((a.labels.alertname ?? '') in EXPECTED_FIRING),
    );
    expect(
      active.map((a) => `${a.labels.alertname} ${a.state} ${JSON.stringify(a.labels)}`),
    ).toEqual([]);
  });

  it('draws the overview’s main panels from the live data to PNG', async () => {
    const end = Date.now() / 1000;
    const panels = await fetchPanels(api, {
      start: loadStartedAt / 1000,
      end,
      step: 1,
      rateInterval: '10s',
    });
    for (const p of panels)
      expect({ panel: p.title, series: p.series.length > 0 }).toEqual({
        panel: p.title,
        series: true,
      });
    const throughput = panels.find((p) => p.title === 'Throughput by service');
    expect(throughput?.series).toEqual(expect.arrayContaining([FLAKY, FRESH, 'echo', 'wordcount']));
    const dir = mkdtempSync(path.join(tmpdir(), 'warren-live-png-'));
    try {
      const file = path.join(dir, 'overview.png');
      await renderSpecToPng(overviewSpec(panels, { title: 'Warren overview (live test)' }), file);
      const png = readFileSync(file);
      const { width, height } = pngSize(png);
      expect(width).toBeGreaterThan(1000);
      expect(height).toBeGreaterThan(800);
      expect(png.length).toBeGreaterThan(30_000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
