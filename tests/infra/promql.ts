// Every PromQL expression the project ships: dashboard panels and variables, recording and
// alerting rules. Used by the static checks in tests/infra and by the live verification
// against a real Prometheus, so both look at exactly the same expressions.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';

export const REPO_ROOT = path.resolve(__dirname, '../..');
export const DASHBOARD_DIR = path.join(REPO_ROOT, 'infra/grafana/dashboards');
export const RULES_DIR = path.join(REPO_ROOT, 'infra/prometheus/rules');
export const PROMETHEUS_CONFIG = path.join(REPO_ROOT, 'infra/prometheus/prometheus.yml');

export type ExpressionKind = 'panel' | 'variable' | 'recording' | 'alert';

export interface PromqlExpression {
  kind: ExpressionKind;
  /** File relative to the repository root. */
  file: string;
  /** Human-readable origin, e.g. `overview.json › Throughput by service › A`. */
  source: string;
  /** As written; dashboard expressions may contain Grafana variables. */
  raw: string;
  /** Ready for Prometheus: Grafana variables substituted. */
  expr: string;
  /** Recording rule name or alert name. */
  name?: string;
}

/** Values for Grafana's built-in and dashboard variables when an expression leaves Grafana. */
export type GrafanaVariables = Record<string, string>;

export const DEFAULT_GRAFANA_VARIABLES: Readonly<GrafanaVariables> = {
  __rate_interval: '1m',
  __interval: '15s',
  __range: '1h',
  service: 'echo',
};

// ---------------------------------------------------------------- Grafana dashboards

export interface GrafanaTarget {
  refId?: string;
  expr?: string;
  datasource?: { type?: string; uid?: string } | string | null;
  legendFormat?: string;
  format?: string;
}

export interface GrafanaPanel {
  id?: number;
  type: string;
  title?: string;
  datasource?: { type?: string; uid?: string } | string | null;
  gridPos?: { x: number; y: number; w: number; h: number };
  targets?: GrafanaTarget[];
  panels?: GrafanaPanel[];
  fieldConfig?: { defaults?: Record<string, unknown>; overrides?: unknown[] };
  options?: Record<string, unknown>;
}

export interface GrafanaVariable {
  name: string;
  type: string;
  datasource?: { type?: string; uid?: string } | string | null;
  query?: string | { query?: string };
  definition?: string;
}

export interface GrafanaDashboard {
  uid: string;
  title: string;
  panels: GrafanaPanel[];
  templating?: { list?: GrafanaVariable[] };
}

export function dashboardFiles(): string[] {
  return readdirSync(DASHBOARD_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => path.join(DASHBOARD_DIR, f));
}

export function loadDashboard(file: string): GrafanaDashboard {
  return JSON.parse(readFileSync(file, 'utf8')) as GrafanaDashboard;
}

/** Every panel, with the panels of collapsed rows flattened in. */
export function panelsOf(dashboard: GrafanaDashboard): GrafanaPanel[] {
  const out: GrafanaPanel[] = [];
  const walk = (panels: GrafanaPanel[] | undefined): void => {
    for (const p of panels ?? []) {
      out.push(p);
      walk(p.panels);
    }
  };
  walk(dashboard.panels);
  return out;
}

/** The PromQL inside a Prometheus variable query (`label_values(metric, label)`, `query_result(q)`). */
export function variableQueryExpression(query: string): string | undefined {
  const q = query.trim();
  const labelValues = /^label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)$/s.exec(q);
  if (labelValues?.[1]) return labelValues[1].trim();
  if (/^label_values\(\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)$/.test(q)) return undefined;
  const queryResult = /^query_result\((.+)\)$/s.exec(q);
  if (queryResult?.[1]) return queryResult[1].trim();
  throw new Error(`unsupported Grafana variable query: ${query}`);
}

/**
 * Replaces `$name`, `${name}`, `${name:format}` and `[[name]]` with values. Throws on a variable
 * it has no value for, so no expression reaches Prometheus with a `$` left in it.
 */
export function substituteGrafanaVariables(
  expr: string,
  vars: GrafanaVariables = DEFAULT_GRAFANA_VARIABLES,
): string {
  const value = (name: string): string => {
    const v = vars[name];
    if (v === undefined) throw new Error(`no value for Grafana variable $${name} in: ${expr}`);
    return v;
  };
  return expr
    .replace(/\$\{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-z]+)?\}/g, (_m, name: string) => value(name))
    .replace(/\[\[([a-zA-Z_][a-zA-Z0-9_]*)\]\]/g, (_m, name: string) => value(name))
    .replace(/\$([a-zA-Z_][a-zA-Z0-9_]*)/g, (_m, name: string) => value(name));
}

export function dashboardExpressions(
  vars: GrafanaVariables = DEFAULT_GRAFANA_VARIABLES,
): PromqlExpression[] {
  const out: PromqlExpression[] = [];
  for (const file of dashboardFiles()) {
    const rel = path.relative(REPO_ROOT, file);
    const dashboard = loadDashboard(file);
    const base = path.basename(file);
    for (const v of dashboard.templating?.list ?? []) {
      if (v.type !== 'query') continue;
      const query = typeof v.query === 'string' ? v.query : (v.query?.query ?? v.definition ?? '');
      const raw = variableQueryExpression(query);
      if (raw === undefined) continue;
      out.push({
        kind: 'variable',
        file: rel,
        source: `${base} › variable $${v.name}`,
        raw,
        expr: substituteGrafanaVariables(raw, vars),
      });
    }
    for (const panel of panelsOf(dashboard)) {
      for (const target of panel.targets ?? []) {
        if (!target.expr) continue;
        out.push({
          kind: 'panel',
          file: rel,
          source: `${base} › ${panel.title ?? `panel ${panel.id}`} › ${target.refId ?? '?'}`,
          raw: target.expr,
          expr: substituteGrafanaVariables(target.expr, vars),
        });
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------- Prometheus rules

export interface PrometheusRule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface RuleFile {
  groups: { name: string; interval?: string; rules: PrometheusRule[] }[];
}

export function ruleFiles(): string[] {
  return readdirSync(RULES_DIR)
    .filter((f) => f.endsWith('.yml') || f.endsWith('.yaml'))
    .sort()
    .map((f) => path.join(RULES_DIR, f));
}

export function loadRuleFile(file: string): RuleFile {
  return parseYaml(readFileSync(file, 'utf8')) as RuleFile;
}

export function ruleExpressions(): PromqlExpression[] {
  const out: PromqlExpression[] = [];
  for (const file of ruleFiles()) {
    const rel = path.relative(REPO_ROOT, file);
    for (const group of loadRuleFile(file).groups) {
      for (const rule of group.rules) {
        const name = rule.record ?? rule.alert ?? '?';
        const quantile = rule.labels?.quantile ? ` (quantile ${rule.labels.quantile})` : '';
        out.push({
          kind: rule.alert ? 'alert' : 'recording',
          file: rel,
          source: `${path.basename(file)} › ${group.name} › ${name}${quantile}`,
          raw: rule.expr,
          expr: rule.expr.trim(),
          name,
        });
      }
    }
  }
  return out;
}

/** Dashboard panels and variables first, then recording and alerting rules. */
export function allExpressions(
  vars: GrafanaVariables = DEFAULT_GRAFANA_VARIABLES,
): PromqlExpression[] {
  return [...dashboardExpressions(vars), ...ruleExpressions()];
}

// ---------------------------------------------------------------- metric names

const PROMQL_KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'inf',
  'nan',
]);

/**
 * Metric names an expression selects (a lexical scan, enough for the expressions here):
 * identifiers outside strings, label matchers, grouping clauses and ranges that are neither
 * function calls nor keywords.
 */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/#.*$/gm, ' ')
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' "" ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  const re = /(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g;
  for (let m = re.exec(stripped); m; m = re.exec(stripped)) {
    const [, ident, call] = m;
    if (!ident || call || PROMQL_KEYWORDS.has(ident.toLowerCase())) continue;
    names.add(ident);
  }
  return [...names].sort();
}

// ---------------------------------------------------------------- promtool

const execFileAsync = promisify(execFile);

/** Absolute path of a Prometheus tool (`promtool`, `prometheus`), or a clear error. */
export function findPrometheusTool(name: 'promtool' | 'prometheus'): string {
  const fromEnv = process.env[name.toUpperCase()];
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`${name.toUpperCase()}=${fromEnv} does not exist`);
    return fromEnv;
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, name);
    if (dir && existsSync(candidate)) return candidate;
  }
  throw new Error(
    `${name} not found on PATH: install Debian's prometheus package ` +
      `(apt-get install -y prometheus) or set ${name.toUpperCase()}=/path/to/${name}`,
  );
}

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runPromtool(args: string[], cwd = REPO_ROOT): Promise<ToolResult> {
  const promtool = findPrometheusTool('promtool');
  try {
    const { stdout, stderr } = await execFileAsync(promtool, args, { cwd, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

export interface ParseFailure {
  expression: PromqlExpression;
  error: string;
}

/**
 * Parses every expression with Prometheus' own parser: each becomes a recording rule in a
 * temporary rules file checked by `promtool check rules`. Returns the expressions that failed.
 */
export async function checkExpressionsParse(
  expressions: readonly PromqlExpression[],
): Promise<ParseFailure[]> {
  const dir = mkdtempSync(path.join(tmpdir(), 'warren-promql-'));
  try {
    const failures: ParseFailure[] = [];
    // One group per expression so promtool's error names the group, i.e. the index.
    const groups = expressions.map((e, i) => ({
      name: `expr_${i}`,
      rules: [{ record: `warren_check:expr_${i}`, expr: e.expr }],
    }));
    const file = path.join(dir, 'expressions.yml');
    writeFileSync(file, stringifyYaml({ groups }, { lineWidth: 0 }));
    const result = await runPromtool(['check', 'rules', file]);
    if (result.code === 0) return failures;
    const output = `${result.stdout}\n${result.stderr}`;
    const seen = new Set<number>();
    for (const m of output.matchAll(/group "expr_(\d+)"[^\n]*/g)) {
      const index = Number(m[1]);
      const expression = expressions[index];
      if (!expression || seen.has(index)) continue;
      seen.add(index);
      failures.push({ expression, error: m[0] });
    }
    if (failures.length === 0) {
      throw new Error(`promtool check rules failed without naming an expression:\n${output}`);
    }
    return failures;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
