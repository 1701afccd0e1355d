// Grafana provisioning and dashboards: every panel query goes to the provisioned Prometheus
// datasource by uid and has an expression, units and legends are set, variables resolve, the
// layout fits the grid, and the overview covers what the design promises.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  REPO_ROOT,
  dashboardFiles,
  loadDashboard,
  panelsOf,
  type GrafanaDashboard,
  type GrafanaPanel,
} from './promql';

const PROVISIONING = path.join(REPO_ROOT, 'infra/grafana/provisioning');
const DATASOURCE_UID = 'prometheus';
const GRAFANA_BUILTINS = new Set(['__rate_interval', '__interval', '__range', '__range_s']);
/** Grafana unit ids the dashboards may use (`count:msg/s` is Grafana's custom count unit). */
const UNITS = new Set(['count:msg/s', 'reqps', 's', 'short', 'percentunit', 'bytes']);

const readYaml = <T>(file: string): T => parseYaml(readFileSync(file, 'utf8')) as T;
const uidOf = (ds: GrafanaPanel['datasource']): string | undefined =>
  typeof ds === 'object' && ds !== null ? ds.uid : undefined;

const dashboards: [string, GrafanaDashboard][] = dashboardFiles().map((f) => [
  path.basename(f),
  loadDashboard(f),
]);
const byName = (name: string): GrafanaDashboard => {
  const found = dashboards.find(([f]) => f === name);
  if (!found) throw new Error(`no dashboard ${name}`);
  return found[1];
};
const queryPanels = (d: GrafanaDashboard): GrafanaPanel[] =>
  panelsOf(d).filter((p) => p.type !== 'row' && p.type !== 'text');
const exprsOf = (d: GrafanaDashboard): string[] =>
  queryPanels(d).flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ''));

describe('Grafana provisioning', () => {
  it('provisions Prometheus at http://prometheus:9090 with uid prometheus', () => {
    const config = readYaml<{
      datasources: { uid: string; type: string; url: string; isDefault?: boolean }[];
    }>(path.join(PROVISIONING, 'datasources/prometheus.yml'));
    expect(config.datasources).toEqual([
      expect.objectContaining({
        uid: DATASOURCE_UID,
        type: 'prometheus',
        url: 'http://prometheus:9090',
        isDefault: true,
      }),
    ]);
  });

  it('loads the dashboards from /var/lib/grafana/dashboards into the Warren folder', () => {
    const config = readYaml<{
      providers: { folder: string; type: string; options: { path: string } }[];
    }>(path.join(PROVISIONING, 'dashboards/warren.yml'));
    expect(config.providers).toEqual([
      expect.objectContaining({
        folder: 'Warren',
        type: 'file',
        options: expect.objectContaining({ path: '/var/lib/grafana/dashboards' }),
      }),
    ]);
  });
});

describe('dashboards', () => {
  it('are overview.json and service.json, with distinct uids', () => {
    expect(dashboards.map(([f]) => f)).toEqual(['overview.json', 'service.json']);
    const uids = dashboards.map(([, d]) => d.uid);
    expect(new Set(uids).size).toBe(uids.length);
    for (const [, d] of dashboards) expect(d.title).toMatch(/^Warren /);
  });

  describe.each(dashboards)('%s', (_file, dashboard) => {
    const panels = queryPanels(dashboard);
    const variables = new Set((dashboard.templating?.list ?? []).map((v) => v.name));

    it('has unique panel ids', () => {
      const ids = panelsOf(dashboard).map((p) => p.id);
      expect(ids.every((id) => typeof id === 'number')).toBe(true);
      expect(new Set(ids).size).toBe(ids.length);
    });

    it('queries the prometheus datasource by uid, with an expression, in every target', () => {
      const problems: string[] = [];
      for (const p of panels) {
        if (uidOf(p.datasource) !== DATASOURCE_UID) problems.push(`${p.title}: panel datasource`);
        if (!p.targets?.length) problems.push(`${p.title}: no targets`);
        const refIds = new Set<string>();
        for (const t of p.targets ?? []) {
          const where = `${p.title} › ${t.refId}`;
          if (uidOf(t.datasource) !== DATASOURCE_UID) problems.push(`${where}: target datasource`);
          if (!t.expr?.trim()) problems.push(`${where}: empty expr`);
          if (!t.refId || refIds.has(t.refId)) problems.push(`${where}: missing or repeated refId`);
          refIds.add(t.refId ?? '');
        }
      }
      expect(problems).toEqual([]);
    });

    it('sets a unit, thresholds and a legend on every panel', () => {
      const problems: string[] = [];
      for (const p of panels.filter((p) => p.type === 'timeseries' || p.type === 'stat')) {
        const unit = p.fieldConfig?.defaults?.unit;
        if (typeof unit !== 'string' || !UNITS.has(unit)) {
          problems.push(`${p.title}: unit ${String(unit)}`);
        }
        if (!p.fieldConfig?.defaults?.thresholds) problems.push(`${p.title}: thresholds`);
        for (const t of p.targets ?? []) {
          if (!t.legendFormat || t.legendFormat === '__auto') {
            problems.push(`${p.title} › ${t.refId}: legend`);
          }
        }
      }
      for (const p of panels.filter((p) => p.type === 'timeseries')) {
        const legend = (p.options?.legend ?? {}) as { showLegend?: boolean };
        if (!legend.showLegend) problems.push(`${p.title}: legend hidden`);
      }
      expect(problems).toEqual([]);
    });

    it('uses only variables it defines or Grafana provides', () => {
      const used = panels
        .flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ''))
        .flatMap((e) => [...e.matchAll(/\$\{?([a-zA-Z_][a-zA-Z0-9_]*)/g)].map((m) => m[1] ?? ''));
      const undefinedVars = used.filter((v) => !GRAFANA_BUILTINS.has(v) && !variables.has(v));
      expect(undefinedVars).toEqual([]);
    });

    it('lays panels out within the 24-column grid without overlaps', () => {
      const boxes = panelsOf(dashboard).map((p) => ({ title: p.title, ...p.gridPos }));
      const problems: string[] = [];
      boxes.forEach((a, i) => {
        if (a.x === undefined || a.y === undefined || a.w === undefined || a.h === undefined) {
          problems.push(`${a.title}: no gridPos`);
          return;
        }
        if (a.x < 0 || a.w < 1 || a.x + a.w > 24) problems.push(`${a.title}: outside the grid`);
        for (const b of boxes.slice(i + 1)) {
          if (b.x === undefined || b.y === undefined || b.w === undefined || b.h === undefined) {
            continue;
          }
          const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
          if (overlap) problems.push(`${a.title} overlaps ${b.title}`);
        }
      });
      expect(problems).toEqual([]);
    });

    it('links only to dashboards that exist', () => {
      const uids = new Set(dashboards.map(([, d]) => d.uid));
      const urls = JSON.stringify(dashboard).match(/\/d\/[a-z0-9-]+/g) ?? [];
      for (const url of urls) expect(uids).toContain(url.slice(3));
    });
  });

  it('overview shows services, the gateway and RabbitMQ', () => {
    const exprs = exprsOf(byName('overview.json')).join('\n');
    for (const needle of [
      'sum by (service) (rate(mq_consumer_messages_total',
      'sum by (service, outcome) (rate(mq_consumer_messages_total',
      'mq_consumer_in_flight',
      'mq_consumer_processing_seconds_bucket',
      'mq_consumer_queue_wait_seconds_bucket',
      'sum by (status) (rate(gateway_http_requests_total',
      'histogram_quantile(0.99, sum by (le) (rate(gateway_http_request_duration_seconds_bucket',
      'gateway_rpc_duration_seconds_count{outcome="timeout"}',
      'gateway_published_messages_total',
      'warren_registry_instances',
      'rabbitmq_detailed_queue_messages_ready',
      'rabbitmq_detailed_queue_consumers',
    ]) {
      expect(exprs).toContain(needle);
    }
  });

  it('service drill-down is driven by a service variable, and every query uses it', () => {
    const service = byName('service.json');
    expect(service.templating?.list).toEqual([
      expect.objectContaining({
        name: 'service',
        type: 'query',
        datasource: expect.objectContaining({ uid: DATASOURCE_UID }),
        definition: 'label_values(mq_consumer_messages_total, service)',
        query: expect.objectContaining({
          query: 'label_values(mq_consumer_messages_total, service)',
        }),
      }),
    ]);
    expect(exprsOf(service).filter((e) => !e.includes('$service'))).toEqual([]);
  });
});
