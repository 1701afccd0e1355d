'use strict';
// `node tests/infra/live-render.js <spec.json> <out.png>`: a vega-lite spec -> PNG with the
// renderer of tools/bench (vega SVG + resvg). Its own process because vega and vega-lite are ES
// modules, which jest's CommonJS runtime cannot import(); tests/infra/live-snapshot.ts calls it.
const fs = require('node:fs');
const { renderPng } = require('../../tools/bench/lib/charts');

async function main() {
  const [specFile, out] = process.argv.slice(2);
  if (!specFile || !out) {
    process.stderr.write('usage: node tests/infra/live-render.js <spec.json> <out.png>\n');
    process.exit(2);
  }
  await renderPng(JSON.parse(fs.readFileSync(specFile, 'utf8')), out);
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
