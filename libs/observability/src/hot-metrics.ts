// Metric families for per-message paths: a child's inc() or observe() updates plain numbers; prom-client reads them when scraped.
import {
  Counter,
  type CounterConfiguration,
  type Metric,
  type MetricValueWithName,
  type Registry,
} from 'prom-client';

/*
 * Why: prom-client re-validates and re-hashes the labels on every inc() and observe() of a label
 * child, and keys histogram buckets by the bound as a string: about 0.35 µs per counter increment
 * and 0.7 µs per observation on this machine, 1.5-2 µs of each message a consumer handles (of
 * 19 µs in all). These children cost a few nanoseconds; the families stay prom-client's (counter)
 * or are read by prom-client's registry like its own (histogram), so the exposition, default
 * labels and the cluster aggregation are unchanged (hot-metrics.test.ts compares them).
 */

/** A label child of a HotCounter. */
export interface HotCounterChild {
  inc(): void;
}

/** A label child of a HotHistogram. */
export interface HotHistogramChild {
  observe(seconds: number): void;
}

type Labels = Record<string, string>;

/** The cell for these label values (in `names` order) from `cells`, made once by `make`. */
function cellFor<C>(
  cells: Map<string, C>,
  names: readonly string[],
  values: readonly string[],
  make: (labels: Labels) => C,
): C {
  const key = values.join('\u0000');
  let cell = cells.get(key);
  if (cell === undefined) {
    if (values.length !== names.length)
      throw new Error(
        `expected ${names.length} label values (${names.join(', ')}), got ${values.length}`,
      );
    const labels: Labels = {};
    names.forEach((name, i) => (labels[name] = values[i] as string));
    cell = make(labels);
    cells.set(key, cell);
  }
  return cell;
}

class CounterCell implements HotCounterChild {
  pending = 0;
  constructor(readonly labels: Labels) {}
  inc(): void {
    this.pending++;
  }
}

/**
 * A prom-client Counter with cached children (`child(...values)`) whose increments are summed in
 * the child and added to the family when it is read (its `collect`), so before every scrape.
 */
export class HotCounter<T extends string> extends Counter<T> {
  private readonly cells: Map<string, CounterCell>;
  private readonly names: readonly string[];

  constructor(config: CounterConfiguration<T>) {
    const cells = new Map<string, CounterCell>();
    const own = config.collect;
    super({
      ...config,
      collect(this: Counter<T>) {
        for (const cell of cells.values()) {
          if (cell.pending === 0) continue;
          this.inc(cell.labels as Partial<Record<T, string>>, cell.pending);
          cell.pending = 0;
        }
        return own?.call(this);
      },
    });
    this.cells = cells;
    this.names = config.labelNames ?? [];
  }

  /** The child for these label values (in labelNames order), made once. */
  child(...values: string[]): HotCounterChild {
    return cellFor(this.cells, this.names, values, (labels) => new CounterCell(labels));
  }

  override reset(): void {
    super.reset();
    // Called by prom-client's constructor too, before the cells exist.
    this.cells?.forEach((cell) => (cell.pending = 0));
  }
}

class HistogramCell implements HotHistogramChild {
  /** Observations per bucket (not cumulative); the last counts those above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(
    readonly labels: Labels,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }
  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    (this.counts[i] as number)++;
    this.sum += value;
    this.count++;
  }
}

/** What prom-client's Histogram#get() returns, which its registry formats and aggregates. */
export interface HistogramReading {
  name: string;
  help: string;
  type: 'histogram';
  aggregator: 'sum';
  values: MetricValueWithName<string>[];
}

export interface HotHistogramConfiguration<T extends string> {
  name: string;
  help: string;
  labelNames: readonly T[];
  /** Upper bounds, ascending. */
  buckets: readonly number[];
  registers: Registry[];
}

/**
 * A histogram family read by prom-client's registry: `get()` returns what a prom-client Histogram
 * returns (buckets, `+Inf`, `_sum`, `_count` per child), and the registry formats, labels and
 * aggregates it as its own. Only children (`child(...values)`) observe.
 */
export class HotHistogram<T extends string> {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  private readonly labelNames: readonly T[];
  private readonly bounds: readonly number[];
  private readonly cells = new Map<string, HistogramCell>();

  constructor(config: HotHistogramConfiguration<T>) {
    this.name = config.name;
    this.help = config.help;
    this.labelNames = config.labelNames;
    this.bounds = [...config.buckets];
    if (this.bounds.some((b, i) => i > 0 && b <= (this.bounds[i - 1] as number)))
      throw new Error(`${config.name}: buckets must ascend`);
    // prom-client's registry reads any metric through get() (registry.js, getMetricsAsString).
    for (const registry of config.registers) registry.registerMetric(this as unknown as Metric);
  }

  /** The child for these label values (in labelNames order), made once. */
  child(...values: string[]): HotHistogramChild {
    return cellFor(
      this.cells,
      this.labelNames,
      values,
      (labels) => new HistogramCell(labels, this.bounds),
    );
  }

  get(): Promise<HistogramReading> {
    const values: MetricValueWithName<string>[] = [];
    const bucket = `${this.name}_bucket`;
    for (const cell of this.cells.values()) {
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += cell.counts[i] as number;
        values.push({ labels: { le, ...cell.labels }, value: acc, metricName: bucket });
      });
      values.push(
        { labels: { le: '+Inf', ...cell.labels }, value: cell.count, metricName: bucket },
        { labels: { ...cell.labels }, value: cell.sum, metricName: `${this.name}_sum` },
        { labels: { ...cell.labels }, value: cell.count, metricName: `${this.name}_count` },
      );
    }
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values,
    });
  }

  /** Back to no series (prom-client's Registry.resetMetrics). */
  reset(): void {
    this.cells.clear();
  }
}
