// `node tools/reports/render-png.js <spec.json> <out.png>`: a vega-lite spec -> PNG with the
// renderer of tools/bench (vega SVG + resvg). Its own process because vega and vega-lite are ES
// modules, which jest's CommonJS runtime cannot import(); tools/reports/overview-snapshot.ts calls it.
'use strict';
const fs = require('node:fs');
const { renderPng } = require('../bench/lib/charts');

async function main() {
  const [specFile, out] = process.argv.slice(2);
  if (!specFile || !out) {
    process.stderr.write('usage: node tools/reports/render-png.js <spec.json> <out.png>\n');
    process.exit(2);
  }
  await renderPng(JSON.parse(fs.readFileSync(specFile, 'utf8')), out);
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
