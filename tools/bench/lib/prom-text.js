// Prometheus text exposition (a /metrics body) as the benchmark and the soak read it: the value of
// one sample, chosen by name and labels. (The tests' reader is tests/support/prom-text.ts.)
'use strict';

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?\s*$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"/g;

/**
 * The value of the first sample named `name` whose labels include `labels`; NaN when there is
 * none (or `text` is empty).
 */
function metricValue(text, name, labels = {}) {
  for (const raw of (text || '').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || !line.startsWith(name)) continue;
    const m = SAMPLE.exec(line);
    if (!m || m[1] !== name) continue;
    const have = {};
    for (const [, k, v] of (m[2] || '').matchAll(LABEL))
      have[k] = v.replace(/\\(["\\n])/g, (_s, c) => (c === 'n' ? '\n' : c));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return NaN;
}

module.exports = { metricValue };
