// Reads the Prometheus text exposition format (what /metrics serves) into samples: name, labels, value.
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

// name{label="value",...} value [timestamp]
const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/g;

function unescape(v: string): string {
  return v.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

function number(text: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  return Number(text);
}

/** Every sample of the families named in `wanted` (all when omitted); comments and bad lines are skipped. */
export function parsePrometheusText(text: string, wanted?: ReadonlySet<string>): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const name = m[1] as string;
    if (wanted && !wanted.has(familyOf(name))) continue;
    const labels: Record<string, string> = {};
    if (m[2])
      for (const l of m[2].matchAll(LABEL)) labels[l[1] as string] = unescape(l[2] as string);
    const value = number(m[3] as string);
    if (!Number.isNaN(value)) out.push({ name, labels, value });
  }
  return out;
}

/** The family of a histogram or summary series (`x_bucket`, `x_sum`, `x_count` -> `x`). */
export function familyOf(name: string): string {
  return name.replace(/_(bucket|sum|count)$/, '');
}
