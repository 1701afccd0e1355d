// Prometheus text exposition (what /metrics serves) read by tests: its samples, and sums over them.

export interface PromSample {
  /** The sample's name as written: `x_total`, or `x_bucket` / `x_sum` / `x_count` of a histogram. */
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?\s*$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/y;

/** `a="x",b="y\"z"` -> { a: 'x', b: 'y"z' }; throws on anything else. */
function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const at = LABEL.lastIndex;
    const m = LABEL.exec(text);
    if (!m) {
      if (text.slice(at).trim() === '') break;
      throw new Error(`not a Prometheus label set: ${line}`);
    }
    labels[m[1] as string] = (m[2] as string).replace(/\\(["\\n])/g, (_s, c: string) =>
      c === 'n' ? '\n' : c,
    );
  }
  return labels;
}

/** Every sample of a text exposition, in order (comments and blank lines skipped). */
export function parsePromText(text: string): PromSample[] {
  const samples: PromSample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    samples.push({
      name: m[1] as string,
      labels: m[2] === undefined ? {} : parseLabels(m[2], line),
      value: Number(m[3]),
    });
  }
  return samples;
}

/** The samples named `name` whose labels include `labels`. */
export function promSamples(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): PromSample[] {
  return parsePromText(text).filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
}

/** Sum of the samples named `name` whose labels include `labels` (0 when there is none). */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  return promSamples(text, name, labels).reduce((sum, s) => sum + s.value, 0);
}
