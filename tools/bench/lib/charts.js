// PNG charts of the concurrency sweep: vega-lite -> vega (SVG renderer, no canvas) -> resvg (PNG).
// Everything installs from npm as prebuilt packages; fonts come from the system (DejaVu on Debian).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const FONT = 'DejaVu Sans';

/** What every chart shares: schema, title, size, white background, fonts. */
function frame(title) {
  const axes = { labelFont: FONT, titleFont: FONT };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, font: FONT, fontSize: 14 },
    width: 520,
    height: 300,
    background: 'white',
    config: { font: FONT, axis: axes, legend: { ...axes, labelLimit: 320 } },
  };
}

/** Vega-lite spec: one line per scenario, x = connections (log2), y = `field`. Pure, for the smoke test. */
function lineSpec({ title, points, field, yTitle, yLog = false, strokeDashBy }) {
  const values = points
    .filter((p) => !p.failed && Number.isFinite(p[field]))
    .map((p) => ({
      connections: p.connections,
      value: p[field],
      series: p.series || p.scenario,
      ...(strokeDashBy ? { dash: p[strokeDashBy] } : {}),
    }));
  return {
    ...frame(title),
    data: { values },
    mark: { type: 'line', point: true, strokeWidth: 2 },
    encoding: {
      x: {
        field: 'connections',
        type: 'quantitative',
        title: 'concurrent connections',
        scale: { type: 'log', base: 2 },
        axis: { values: [...new Set(values.map((v) => v.connections))].sort((a, b) => a - b) },
      },
      y: {
        field: 'value',
        type: 'quantitative',
        title: yTitle,
        scale: yLog ? { type: 'symlog', constant: 1 } : { zero: true },
        ...(yLog
          ? { axis: { values: [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000] } }
          : {}),
      },
      color: {
        field: 'series',
        type: 'nominal',
        title: null,
        legend: { orient: 'bottom', columns: 2 },
      },
      ...(strokeDashBy ? { strokeDash: { field: 'dash', type: 'nominal', title: null } } : {}),
    },
  };
}

async function renderPng(spec, file) {
  const vega = await import('vega');
  const vl = await import('vega-lite');
  const { Resvg } = require('@resvg/resvg-js');
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  const svg = await view.toSVG(1);
  view.finalize();
  const png = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: 2 },
    font: { loadSystemFonts: true, defaultFontFamily: FONT },
  })
    .render()
    .asPng();
  fs.writeFileSync(file, png);
  return file;
}

/**
 * Writes the sweep charts into `dir`: throughput, and p50/p99 latency, vs concurrency, for gateway
 * async and RPC. Returns the file names written (relative to `dir`).
 */
async function renderSweepCharts(points, dir) {
  const ok = points.filter((p) => !p.failed);
  if (ok.length === 0) return [];
  const written = [];
  const thr = lineSpec({
    title: 'Gateway throughput vs concurrency',
    points: ok,
    field: 'rps',
    yTitle: 'requests / s',
  });
  written.push(
    path.basename(await renderPng(thr, path.join(dir, 'throughput-vs-concurrency.png'))),
  );
  const lat = [];
  for (const p of ok) {
    lat.push({ ...p, series: p.scenario, v: p.p50, q: 'p50' });
    lat.push({ ...p, series: p.scenario, v: p.p99, q: 'p99' });
  }
  const latSpec = lineSpec({
    title: 'Gateway latency vs concurrency (p50 and p99)',
    points: lat,
    field: 'v',
    yTitle: 'latency ms (symlog scale)',
    yLog: true,
    strokeDashBy: 'q',
  });
  written.push(
    path.basename(await renderPng(latSpec, path.join(dir, 'latency-vs-concurrency.png'))),
  );
  return written;
}

/**
 * Vega-lite spec of a soak run: RSS (MB) of each process vs requests sent, with the end of warm-up
 * marked. `samples` = [{ sent, rss: { gateway, echo } }]. Pure, for the smoke test.
 */
function soakRssSpec({ samples, warmupRequests, title = 'RSS vs requests sent (soak)' }) {
  const values = [];
  for (const s of samples)
    for (const [proc, mb] of Object.entries(s.rss || {}))
      if (Number.isFinite(mb)) values.push({ sent: s.sent, value: mb, series: proc });
  return {
    ...frame(title),
    layer: [
      {
        data: { values },
        mark: { type: 'line', point: true, strokeWidth: 2 },
        encoding: {
          x: { field: 'sent', type: 'quantitative', title: 'requests sent' },
          y: { field: 'value', type: 'quantitative', title: 'RSS MB', scale: { zero: true } },
          color: { field: 'series', type: 'nominal', title: null, legend: { orient: 'bottom' } },
        },
      },
      ...(Number.isFinite(warmupRequests) && warmupRequests > 0
        ? [
            {
              data: { values: [{ sent: warmupRequests, label: 'end of warm-up' }] },
              layer: [
                {
                  mark: { type: 'rule', strokeDash: [4, 4], color: 'gray' },
                  encoding: { x: { field: 'sent', type: 'quantitative' } },
                },
                {
                  mark: { type: 'text', align: 'left', dx: 4, dy: -130, color: 'gray', font: FONT },
                  encoding: {
                    x: { field: 'sent', type: 'quantitative' },
                    text: { field: 'label' },
                  },
                },
              ],
            },
          ]
        : []),
    ],
  };
}

/** Writes the soak RSS chart to `file`. */
async function renderSoakChart(samples, warmupRequests, file) {
  return renderPng(soakRssSpec({ samples, warmupRequests }), file);
}

module.exports = { lineSpec, renderPng, renderSweepCharts, soakRssSpec, renderSoakChart };
