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

function parseLine(line: string, out: Sample[]): void {
  const m = LINE.exec(line.trim());
  if (!m) return;
  const labels: Record<string, string> = {};
  if (m[2]) for (const l of m[2].matchAll(LABEL)) labels[l[1] as string] = unescape(l[2] as string);
  const value = number(m[3] as string);
  if (!Number.isNaN(value)) out.push({ name: m[1] as string, labels, value });
}

/**
 * Every sample of the families named in `wanted` (all when omitted); comments and bad lines are
 * skipped. With `wanted`, only the lines of those families are looked at (found with indexOf: a
 * scrape is mostly other families, and the console reads many every interval).
 */
export function parsePrometheusText(text: string, wanted?: ReadonlySet<string>): Sample[] {
  const out: Sample[] = [];
  if (!wanted) {
    for (const line of text.split('\n')) if (line !== '' && line[0] !== '#') parseLine(line, out);
    return out;
  }
  const doc = `\n${text}`;
  for (const family of wanted) {
    const needle = `\n${family}`;
    for (let at = doc.indexOf(needle); at !== -1; at = doc.indexOf(needle, at + 1)) {
      const end = doc.indexOf('\n', at + 1);
      const line = doc.slice(at + 1, end === -1 ? undefined : end);
      const cut = line.search(/[{\s]/);
      if (familyOf(cut === -1 ? line : line.slice(0, cut)) === family) parseLine(line, out);
    }
  }
  return out;
}

/** The family of a histogram or summary series (`x_bucket`, `x_sum`, `x_count` -> `x`). */
export function familyOf(name: string): string {
  return name.replace(/_(bucket|sum|count)$/, '');
}
