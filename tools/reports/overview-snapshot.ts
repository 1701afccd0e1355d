// The overview dashboard without Grafana: the main panels' own queries (read from
// infra/grafana/dashboards/overview.json, not copied) run as range queries against a live
// Prometheus, laid out as a vega-lite grid; tools/reports/render-png.js draws it to PNG (vega's
// SVG renderer + resvg, the renderer tools/bench uses for its charts). Used by the live test and
// by `npm run dashboards:snapshot` (tools/reports/dashboards-snapshot.js).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  DASHBOARD_DIR,
  loadDashboard,
  panelsOf,
  substituteGrafanaVariables,
  type GrafanaPanel,
} from '../../tests/infra/promql';
import type { PromApi } from '../../tests/infra/live-stack';

export interface SnapshotPanel {
  /** Panel title in overview.json. */
  title: string;
  /** Which of its targets to draw (default all). */
  refIds?: string[];
}

/** The overview's main panels, two per row. */
export const OVERVIEW_SNAPSHOT_PANELS: readonly SnapshotPanel[] = [
  { title: 'Throughput by service' },
  { title: 'Outcomes by service' },
  { title: 'Processing time p50 / p95 / p99', refIds: ['B', 'C'] },
  { title: 'Queue wait p50 / p95 / p99', refIds: ['B', 'C'] },
  { title: 'Requests by status' },
  { title: 'RPC calls by outcome' },
];

export interface PanelPoint {
  /** ms since the epoch */
  t: number;
  v: number;
  /** The series' legend, as Grafana shows it (`echo p95`). */
  series: string;
  /** What the line's colour stands for (`echo`), and its dash (`p95`) on multi-query panels. */
  color: string;
  dash: string;
}

export interface PanelData {
  title: string;
  /** Axis title for the panel's Grafana unit. */
  unit: string;
  /** The PromQL sent to Prometheus, one per drawn target. */
  queries: string[];
  points: PanelPoint[];
  series: string[];
}

export interface RangeOptions {
  /** seconds since the epoch */
  start: number;
  end: number;
  /** seconds */
  step: number;
  /** Grafana's $__rate_interval for this range (e.g. `15s`). */
  rateInterval: string;
}

const FONT = 'DejaVu Sans';

/** Grafana unit -> axis title, and the factor values are multiplied by. */
function unitOf(panel: GrafanaPanel): { title: string; factor: number } {
  const unit = panel.fieldConfig?.defaults?.unit;
  switch (unit) {
    case 'count:msg/s':
      return { title: 'messages / s', factor: 1 };
    case 'reqps':
      return { title: 'requests / s', factor: 1 };
    case 's':
      return { title: 'milliseconds', factor: 1000 };
    case 'percentunit':
      return { title: '%', factor: 100 };
    default:
      return { title: typeof unit === 'string' ? unit : '', factor: 1 };
  }
}

/** A multi-query panel's legend `{{service}} p95` -> colour by `{{service}}`, dash by `p95`. */
function splitLegend(format: string | undefined): { color: string | undefined; dash: string } {
  if (!format) return { color: undefined, dash: '' };
  const labels = format.match(/\{\{[^}]*\}\}/g) ?? [];
  return { color: labels.join(' '), dash: format.replace(/\{\{[^}]*\}\}/g, '').trim() };
}

/** Grafana's legend format: `{{service}} p95` with the series' labels. */
export function legendOf(format: string | undefined, labels: Record<string, string>): string {
  if (!format) return JSON.stringify(labels);
  return format.replace(
    /\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g,
    (_m, l: string) => labels[l] ?? '',
  );
}

export function overviewPanels(
  wanted: readonly SnapshotPanel[] = OVERVIEW_SNAPSHOT_PANELS,
): { panel: GrafanaPanel; refIds: string[] | undefined }[] {
  const all = panelsOf(loadDashboard(path.join(DASHBOARD_DIR, 'overview.json')));
  return wanted.map((w) => {
    const panel = all.find((p) => p.title === w.title);
    if (!panel) throw new Error(`overview.json has no panel "${w.title}"`);
    return { panel, refIds: w.refIds };
  });
}

/** Runs each panel's targets as range queries. */
export async function fetchPanels(
  api: PromApi,
  range: RangeOptions,
  wanted: readonly SnapshotPanel[] = OVERVIEW_SNAPSHOT_PANELS,
): Promise<PanelData[]> {
  const vars = {
    __rate_interval: range.rateInterval,
    __interval: `${range.step}s`,
    __range: `${Math.max(1, Math.round(range.end - range.start))}s`,
  };
  const out: PanelData[] = [];
  for (const { panel, refIds } of overviewPanels(wanted)) {
    const { title: unit, factor } = unitOf(panel);
    const data: PanelData = {
      title: panel.title ?? '',
      unit,
      queries: [],
      points: [],
      series: [],
    };
    const targets = (panel.targets ?? []).filter(
      (t) => t.expr && (!refIds || refIds.includes(t.refId ?? '')),
    );
    for (const target of targets) {
      const expr = substituteGrafanaVariables(target.expr ?? '', vars);
      data.queries.push(expr);
      const split = targets.length > 1 ? splitLegend(target.legendFormat) : undefined;
      for (const s of await api.queryRange(expr, range.start, range.end, range.step)) {
        const series = legendOf(target.legendFormat, s.metric);
        const color = split?.color ? legendOf(split.color, s.metric) : series;
        const dash = split?.dash ?? '';
        let any = false;
        for (const [t, v] of s.values ?? []) {
          const n = Number(v);
          if (!Number.isFinite(n)) continue;
          data.points.push({ t: t * 1000, v: n * factor, series, color, dash });
          any = true;
        }
        if (any && !data.series.includes(series)) data.series.push(series);
      }
    }
    data.series.sort();
    out.push(data);
  }
  return out;
}

/** HTTP status codes coloured as the dashboard does (2xx green, 4xx orange, 5xx red); else a palette. */
function colorScale(p: PanelData): Record<string, unknown> {
  const colors = [...new Set(p.points.map((pt) => pt.color))].sort();
  if (colors.length > 0 && colors.every((c) => /^[1-5]\d\d$/.test(c))) {
    const shades: Record<string, string[]> = {
      '2': ['#37872d', '#56a64b', '#73bf69', '#96d98d'],
      '4': ['#fa6400', '#ff9830', '#ffb357', '#c4162a'],
      '5': ['#c4162a', '#e02f44', '#f2495c', '#ff7383'],
    };
    const used: Record<string, number> = {};
    const range = colors.map((c) => {
      const cls = c[0] as string;
      const i = used[cls] ?? 0;
      used[cls] = i + 1;
      const palette = shades[cls] ?? ['#8e8e8e', '#b0b0b0', '#5a5a5a'];
      return palette[i % palette.length] as string;
    });
    return { domain: colors, range };
  }
  return { scheme: colors.length > 10 ? 'tableau20' : 'tableau10' };
}

/** One vega-lite chart per panel, two per row, like the dashboard's grid. */
export function overviewSpec(
  panels: readonly PanelData[],
  heading: { title: string; subtitle?: string | string[] },
): Record<string, unknown> {
  const chart = (p: PanelData) => ({
    title: { text: p.title, anchor: 'start', fontSize: 13, font: FONT },
    width: 430,
    height: 180,
    data: { values: p.points },
    mark: { type: 'line', strokeWidth: 1.6, interpolate: 'monotone', clip: true },
    encoding: {
      x: {
        field: 't',
        type: 'temporal',
        scale: { type: 'utc' },
        title: null,
        axis: { format: '%H:%M:%S', labelAngle: 0, tickCount: 6, grid: true },
      },
      y: { field: 'v', type: 'quantitative', title: p.unit, scale: { zero: true } },
      color: {
        field: 'color',
        type: 'nominal',
        title: null,
        scale: colorScale(p),
        legend: { orient: 'right', labelLimit: 190, symbolType: 'stroke' },
      },
      ...(p.points.some((pt) => pt.dash)
        ? {
            strokeDash: {
              field: 'dash',
              type: 'nominal',
              title: null,
              legend: { orient: 'right', symbolType: 'stroke' },
            },
          }
        : {}),
    },
  });
  const rows: Record<string, unknown>[] = [];
  for (let i = 0; i < panels.length; i += 2)
    rows.push({
      hconcat: panels.slice(i, i + 2).map(chart),
      resolve: { scale: { color: 'independent', strokeDash: 'independent', y: 'independent' } },
    });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    background: 'white',
    padding: 16,
    title: {
      text: heading.title,
      ...(heading.subtitle ? { subtitle: heading.subtitle } : {}),
      anchor: 'start',
      font: FONT,
      fontSize: 18,
      subtitleFont: FONT,
      subtitleFontSize: 11,
      subtitleColor: '#555',
      offset: 12,
    },
    config: {
      font: FONT,
      axis: { labelFont: FONT, titleFont: FONT, gridColor: '#ececec', titleFontWeight: 'normal' },
      legend: { labelFont: FONT, titleFont: FONT, labelFontSize: 10 },
      view: { stroke: '#d0d0d0' },
      concat: { spacing: 24 },
    },
    vconcat: rows,
    spacing: 22,
    resolve: { scale: { color: 'independent', strokeDash: 'independent', y: 'independent' } },
  };
}

/**
 * Renders a spec to PNG in a child process (vega and vega-lite are ES modules, which jest's
 * CommonJS runtime cannot import()).
 */
export async function renderSpecToPng(spec: Record<string, unknown>, file: string): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'warren-snapshot-'));
  try {
    const specFile = path.join(dir, 'spec.json');
    writeFileSync(specFile, JSON.stringify(spec));
    const script = path.join(__dirname, 'render-png.js');
    const child = spawn(process.execPath, [script, specFile, file], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    if (code !== 0) throw new Error(`render-png.js exited ${code}:\n${out}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Width and height from a PNG's IHDR chunk (throws if the bytes are not a PNG). */
export function pngSize(png: Buffer): { width: number; height: number } {
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  if (png.length < 24 || !png.subarray(0, 8).equals(signature)) throw new Error('not a PNG');
  if (png.subarray(12, 16).toString('latin1') !== 'IHDR') throw new Error('PNG without IHDR');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}
