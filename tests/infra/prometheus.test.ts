// Prometheus config and rules, checked by Prometheus' own promtool (Debian package
// `prometheus`; the tests fail, not skip, without it), plus the rules' conventions: rule unit
// tests cover every rule, every alert links to its runbook section, every expression in rules
// and dashboards parses and selects only metrics that exist.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  consumerMetrics,
  createRegistry,
  gatewayMetrics,
  messagingMetrics,
  eventPublishMetrics,
} from '@warren/observability';
import { parse as parseYaml } from 'yaml';
import {
  PROMETHEUS_CONFIG,
  REPO_ROOT,
  allExpressions,
  checkExpressionsParse,
  findPrometheusTool,
  loadRuleFile,
  metricNames,
  ruleFiles,
  runPromtool,
  type PrometheusRule,
} from './promql';
import { scaled } from '../support/time';

jest.setTimeout(scaled(60_000));

const TESTS_DIR = path.join(REPO_ROOT, 'infra/prometheus/tests');
const DOCS = path.join(REPO_ROOT, 'docs/observability.md');

/** The metric families of the design contract (DESIGN.md), by type. */
const CONTRACT = {
  counters: [
    'mq_consumer_messages_total',
    'gateway_http_requests_total',
    'gateway_published_messages_total',
    'mq_connection_reconnects_total',
    'mq_rpc_late_replies_total',
  ],
  gauges: ['mq_consumer_in_flight', 'mq_rpc_pending_calls', 'warren_registry_instances'],
  histograms: [
    'mq_consumer_processing_seconds',
    'mq_consumer_queue_wait_seconds',
    'gateway_http_request_duration_seconds',
    'gateway_rpc_duration_seconds',
  ],
};

/** What rabbitmq_prometheus (3.10 to 3.13) exposes and the dashboards and rules use. */
const RABBITMQ_METRICS = [
  // /metrics/detailed?family=queue_coarse_metrics&family=queue_consumer_count, {vhost, queue}
  'rabbitmq_detailed_queue_messages',
  'rabbitmq_detailed_queue_messages_ready',
  'rabbitmq_detailed_queue_messages_unacked',
  'rabbitmq_detailed_queue_consumers',
  // /metrics, aggregated per node
  'rabbitmq_connections',
  'rabbitmq_channels',
  'rabbitmq_global_messages_received_total',
  'rabbitmq_global_messages_delivered_total',
  'rabbitmq_global_messages_acknowledged_total',
];

interface UnitTestFile {
  rule_files: string[];
  tests: {
    alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[];
    promql_expr_test?: { expr: string }[];
  }[];
}

function unitTestFiles(): string[] {
  return readdirSync(TESTS_DIR)
    .filter((f) => f.endsWith('.yml'))
    .map((f) => path.join(TESTS_DIR, f));
}

function allRules(): PrometheusRule[] {
  return ruleFiles().flatMap((f) => loadRuleFile(f).groups.flatMap((g) => g.rules));
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function markdownAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  for (const m of markdown.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const text = (m[1] ?? '').replace(/`/g, '');
    anchors.add(
      text
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\s_-]/gu, '')
        .replace(/\s/g, '-'),
    );
  }
  return anchors;
}

/** Metric families (name -> type) a Warren process registers, from libs/observability itself. */
async function warrenFamilies(): Promise<Map<string, string>> {
  const registry = createRegistry('infra-test');
  consumerMetrics(registry);
  gatewayMetrics(registry);
  messagingMetrics(registry);
  eventPublishMetrics(registry, 'gateway');
  eventPublishMetrics(registry, 'service');
  const families = new Map<string, string>();
  for (const m of await registry.getMetricsAsJSON()) families.set(m.name, String(m.type));
  registry.clear();
  return families;
}

async function knownMetricNames(): Promise<Set<string>> {
  const known = new Set<string>(['up', ...RABBITMQ_METRICS]);
  for (const [name, type] of await warrenFamilies()) {
    known.add(name);
    if (type === 'histogram') {
      for (const suffix of ['_bucket', '_count', '_sum']) known.add(name + suffix);
    }
  }
  for (const rule of allRules()) if (rule.record) known.add(rule.record);
  return known;
}

describe('promtool', () => {
  it('is installed', () => {
    expect(findPrometheusTool('promtool')).toMatch(/promtool$/);
  });

  it('accepts infra/prometheus/prometheus.yml and the rule files it loads', async () => {
    const r = await runPromtool(['check', 'config', PROMETHEUS_CONFIG]);
    expect({ code: r.code, output: r.stdout + r.stderr }).toEqual({
      code: 0,
      output: expect.stringContaining('is valid prometheus config file syntax'),
    });
    // Every rule file is picked up by rule_files.
    for (const file of ruleFiles()) expect(r.stdout).toContain(path.relative(REPO_ROOT, file));
  });

  it('accepts every rule file', async () => {
    const r = await runPromtool(['check', 'rules', ...ruleFiles()]);
    expect({ code: r.code, output: r.stdout + r.stderr }).toEqual({
      code: 0,
      output: expect.stringContaining('SUCCESS'),
    });
  });

  it('passes the rule unit tests in infra/prometheus/tests', async () => {
    const files = unitTestFiles();
    expect(files.length).toBeGreaterThan(0);
    const r = await runPromtool(['test', 'rules', ...files]);
    expect({ code: r.code, output: r.stdout + r.stderr }).toEqual({
      code: 0,
      output: expect.not.stringContaining('FAILED'),
    });
  });
});

describe('prometheus.yml', () => {
  interface ScrapeConfig {
    job_name: string;
    honor_labels?: boolean;
    metrics_path?: string;
    params?: Record<string, string[]>;
    static_configs?: { targets: string[]; labels?: Record<string, string> }[];
    http_sd_configs?: { url: string }[];
  }
  const config = parseYaml(readFileSync(PROMETHEUS_CONFIG, 'utf8')) as {
    scrape_configs: ScrapeConfig[];
  };
  const job = (name: string): ScrapeConfig => {
    const found = config.scrape_configs.find((c) => c.job_name === name);
    if (!found) throw new Error(`no scrape job ${name}`);
    return found;
  };

  it('scrapes the gateway and keeps the service label its series carry', () => {
    const gateway = job('warren-gateway');
    expect(gateway.honor_labels).toBe(true);
    expect(gateway.static_configs?.[0]?.labels).toEqual({ service: 'gateway' });
  });

  it('discovers service instances through the gateway registry', () => {
    const services = job('warren-services');
    expect(services.honor_labels).toBe(true);
    expect(services.http_sd_configs?.map((c) => new URL(c.url).pathname)).toEqual([
      '/sd/prometheus',
    ]);
  });

  it('scrapes rabbitmq_prometheus both aggregated and per queue', () => {
    expect(job('rabbitmq').metrics_path ?? '/metrics').toBe('/metrics');
    const queues = job('rabbitmq-queues');
    expect(queues.metrics_path).toBe('/metrics/detailed');
    expect([...(queues.params?.family ?? [])].sort()).toEqual([
      'queue_coarse_metrics',
      'queue_consumer_count',
    ]);
    expect(queues.static_configs?.[0]?.targets).toEqual(
      job('rabbitmq').static_configs?.[0]?.targets,
    );
  });
});

describe('rules', () => {
  const rules = allRules();
  const alerts = rules.filter((r) => r.alert);
  const records = rules.filter((r) => r.record);
  const unitTests = unitTestFiles().map((f) => parseYaml(readFileSync(f, 'utf8')) as UnitTestFile);

  it('has recording rules and alerts', () => {
    expect(records.length).toBeGreaterThan(0);
    expect(alerts.map((a) => a.alert)).toEqual(
      expect.arrayContaining([
        'WarrenServiceNoLiveInstance',
        'WarrenQueueBacklogGrowing',
        'WarrenDeadLetters',
        'WarrenServiceErrorRatioHigh',
        'WarrenGateway5xxHigh',
        'WarrenRpcTimeouts',
      ]),
    );
  });

  it('names recordings level:metric:operations', () => {
    for (const r of records) expect(r.record).toMatch(/^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$/);
  });

  it('gives every alert a severity, summary, description and a runbook section that exists', () => {
    const anchors = markdownAnchors(readFileSync(DOCS, 'utf8'));
    for (const a of alerts) {
      const name = a.alert ?? '';
      expect({ name, severity: a.labels?.severity }).toEqual({
        name,
        severity: expect.stringMatching(/^(critical|warning)$/),
      });
      expect(Object.keys(a.annotations ?? {}).sort()).toEqual([
        'description',
        'runbook',
        'summary',
      ]);
      const runbook = a.annotations?.runbook ?? '';
      expect(runbook).toBe(`docs/observability.md#${name.toLowerCase()}`);
      expect({ name, anchorInDocs: anchors.has(name.toLowerCase()) }).toEqual({
        name,
        anchorInDocs: true,
      });
    }
  });

  it('has unit tests loading every rule file, for every alert (firing and silent) and recording', () => {
    const loaded = new Set(
      unitTestFiles().flatMap((f, i) =>
        (unitTests[i]?.rule_files ?? []).map((r) => path.resolve(path.dirname(f), r)),
      ),
    );
    expect([...loaded].sort()).toEqual(ruleFiles());

    const alertTests = unitTests.flatMap((u) => u.tests.flatMap((t) => t.alert_rule_test ?? []));
    for (const a of alerts) {
      const tests = alertTests.filter((t) => t.alertname === a.alert);
      expect({ alert: a.alert, fires: tests.some((t) => (t.exp_alerts ?? []).length > 0) }).toEqual(
        { alert: a.alert, fires: true },
      );
      expect({
        alert: a.alert,
        silent: tests.some((t) => (t.exp_alerts ?? []).length === 0),
      }).toEqual({ alert: a.alert, silent: true });
    }

    const tested = unitTests
      .flatMap((u) => u.tests.flatMap((t) => t.promql_expr_test ?? []))
      .flatMap((t) => metricNames(t.expr));
    const untested = records.map((r) => r.record ?? '').filter((r) => !tested.includes(r));
    expect(untested).toEqual([]);
  });
});

describe('every PromQL expression of the dashboards and rules', () => {
  const expressions = allExpressions();

  it('is found', () => {
    expect(expressions.filter((e) => e.kind === 'panel').length).toBeGreaterThan(20);
    expect(expressions.filter((e) => e.kind === 'variable').length).toBeGreaterThan(0);
    expect(expressions.filter((e) => e.kind === 'recording').length).toBeGreaterThan(0);
    expect(expressions.filter((e) => e.kind === 'alert').length).toBeGreaterThan(0);
  });

  it("parses with Prometheus' parser", async () => {
    const failures = await checkExpressionsParse(expressions);
    expect(failures.map((f) => `${f.expression.source}: ${f.error}`)).toEqual([]);
  });

  it('finds the contract metric families registered by libs/observability', async () => {
    const families = await warrenFamilies();
    const expected = [
      ...CONTRACT.counters.map((n) => [n.replace(/_total$/, ''), 'counter']),
      ...CONTRACT.gauges.map((n) => [n, 'gauge']),
      ...CONTRACT.histograms.map((n) => [n, 'histogram']),
    ];
    // prom-client lists counters without their _total suffix.
    const got = expected.map(([n = '']) => [
      n,
      families.get(n) ?? families.get(`${n}_total`) ?? 'missing',
    ]);
    expect(got).toEqual(expected);
  });

  it('selects only metrics that Warren, Node.js, RabbitMQ or the recording rules produce', async () => {
    const known = await knownMetricNames();
    const unknown = expressions.flatMap((e) =>
      metricNames(e.expr)
        .filter((m) => !known.has(m))
        .map((m) => `${e.source}: ${m}`),
    );
    expect(unknown).toEqual([]);
  });

  it('finds the metric names of an expression', () => {
    expect(
      metricNames(
        'sum by (service, le) (rate(a_bucket{queue=~"x|y", le!="1"}[5m])) / on (service) group_left b or vector(0) > bool 1 and up offset 5m',
      ),
    ).toEqual(['a_bucket', 'b', 'up']);
    expect(
      metricNames('label_replace(delta(q{queue=~".+[.]dlq"}[5m]), "s", "$1", "queue", "(.+)")'),
    ).toEqual(['q']);
  });
});
