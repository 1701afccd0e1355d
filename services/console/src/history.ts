// The console's memory: one step per scrape and service (deltas, gauges, depths), bounded in time, and the summaries read from it.
import {
  OUTCOMES,
  addBuckets,
  deltaOf,
  quantile,
  type Buckets,
  type Counters,
  type Outcome,
} from './stats';

export interface Step {
  /** ms since the epoch, end of the step. */
  t: number;
  /** Seconds the step covers. */
  dt: number;
  instances: number;
  messages: Record<Outcome, number>;
  processing: Buckets;
  queueWait: Buckets;
  http: Record<string, number>;
  rpc: Buckets;
  inFlight: number;
  pending: number;
  queueDepth: number | undefined;
  dlqDepth: number | undefined;
  events: number;
  eventsPublished: number;
}

export interface Scrape {
  service: string;
  instanceId: string;
  /** undefined: the scrape failed (the instance is counted, its numbers are not). */
  counters: Counters | undefined;
}

export interface Quantiles {
  p50: number | undefined;
  p95: number | undefined;
  p99: number | undefined;
}

export interface ServiceSummary {
  name: string;
  instances: number;
  /** Messages handled per second (every outcome), and per outcome. */
  rate: number;
  rates: Record<Outcome, number>;
  /** Events handled per second (part of `rate`), and events published per second (confirmed). */
  eventRate: number;
  eventsPublishedRate: number;
  processing: Quantiles;
  queueWait: Quantiles;
  inFlight: number;
  queueDepth: number | undefined;
  dlqDepth: number | undefined;
  /** Gateway: requests per second by status, RPC latency, pending calls. */
  http?: Record<string, number>;
  rpc?: Quantiles;
  pending?: number;
}

export interface HistoryOptions {
  /** How long steps are kept (default 15 minutes). */
  retentionMs?: number;
  /** Window of the rates in summaries (default 10 s). */
  rateWindowMs?: number;
  /** Window of the quantiles in summaries (default 60 s). */
  quantileWindowMs?: number;
}

const emptyMessages = (): Record<Outcome, number> => ({
  success: 0,
  retry: 0,
  dead_letter: 0,
  rejected: 0,
});

export class History {
  private readonly last = new Map<string, Counters>();
  private readonly steps = new Map<string, Step[]>();
  private lastT: number | undefined;
  private readonly retentionMs: number;
  private readonly rateWindowMs: number;
  private readonly quantileWindowMs: number;

  constructor(options: HistoryOptions = {}) {
    this.retentionMs = options.retentionMs ?? 15 * 60_000;
    this.rateWindowMs = options.rateWindowMs ?? 10_000;
    this.quantileWindowMs = options.quantileWindowMs ?? 60_000;
  }

  /** One scrape round at `t`: every live instance's counters, and queue depths by queue name. */
  record(t: number, scrapes: readonly Scrape[], depths: ReadonlyMap<string, number>): void {
    const dt = this.lastT === undefined ? 0 : (t - this.lastT) / 1000;
    this.lastT = t;
    const byService = new Map<string, Step>();
    const seen = new Set<string>();
    for (const s of scrapes) {
      let step = byService.get(s.service);
      if (!step) {
        step = {
          t,
          dt,
          instances: 0,
          messages: emptyMessages(),
          processing: [],
          queueWait: [],
          http: {},
          rpc: [],
          inFlight: 0,
          pending: 0,
          queueDepth: depths.get(s.service),
          dlqDepth: depths.get(`${s.service}.dlq`),
          events: 0,
          eventsPublished: 0,
        };
        byService.set(s.service, step);
      }
      step.instances++;
      if (!s.counters) continue;
      seen.add(s.instanceId);
      // The first sight of an instance sets its baseline: its past is not this step's traffic.
      const before = this.last.get(s.instanceId);
      this.last.set(s.instanceId, s.counters);
      step.inFlight += s.counters.inFlight;
      step.pending += s.counters.pending;
      if (!before || dt === 0) continue;
      const d = deltaOf(s.counters, before);
      for (const o of OUTCOMES) step.messages[o] += d.messages[o];
      step.events += d.events;
      step.eventsPublished += d.eventsPublished;
      step.processing = addBuckets(step.processing, d.processing);
      step.queueWait = addBuckets(step.queueWait, d.queueWait);
      step.rpc = addBuckets(step.rpc, d.rpc);
      for (const [k, v] of Object.entries(d.http)) step.http[k] = (step.http[k] ?? 0) + v;
    }
    for (const id of [...this.last.keys()]) if (!seen.has(id)) this.last.delete(id);
    for (const [service, step] of byService) {
      const list = this.steps.get(service) ?? [];
      list.push(step);
      this.steps.set(service, list);
    }
    // A service gone from the registry keeps its history until it ages out.
    for (const [service, list] of this.steps) {
      while (list.length > 0 && (list[0] as Step).t < t - this.retentionMs) list.shift();
      if (list.length === 0) this.steps.delete(service);
    }
  }

  /** Steps of one service in the last `ms` (oldest first). */
  stepsOf(service: string, ms = this.retentionMs): Step[] {
    const list = this.steps.get(service) ?? [];
    const from = (this.lastT ?? 0) - ms;
    return list.filter((s) => s.t > from);
  }

  /** The latest view of every service seen in the last scrape. */
  summaries(): ServiceSummary[] {
    const out: ServiceSummary[] = [];
    for (const [name, list] of this.steps) {
      const latest = list.at(-1);
      if (!latest || latest.t !== this.lastT) continue;
      const rateSteps = this.stepsOf(name, this.rateWindowMs);
      const seconds = rateSteps.reduce((a, s) => a + s.dt, 0);
      const rates = emptyMessages();
      const http: Record<string, number> = {};
      let events = 0;
      let eventsPublished = 0;
      for (const s of rateSteps) {
        events += s.events;
        eventsPublished += s.eventsPublished;
        for (const o of OUTCOMES) rates[o] += s.messages[o];
        for (const [k, v] of Object.entries(s.http)) http[k] = (http[k] ?? 0) + v;
      }
      for (const o of OUTCOMES) rates[o] = seconds > 0 ? rates[o] / seconds : 0;
      for (const k of Object.keys(http)) http[k] = seconds > 0 ? (http[k] as number) / seconds : 0;
      const qSteps = this.stepsOf(name, this.quantileWindowMs);
      const sum = (pick: (s: Step) => Buckets) =>
        qSteps.reduce((a, s) => addBuckets(a, pick(s)), [] as Buckets);
      const summary: ServiceSummary = {
        name,
        instances: latest.instances,
        rate: OUTCOMES.reduce((a, o) => a + rates[o], 0),
        rates,
        eventRate: seconds > 0 ? events / seconds : 0,
        eventsPublishedRate: seconds > 0 ? eventsPublished / seconds : 0,
        processing: quantiles(sum((s) => s.processing)),
        queueWait: quantiles(sum((s) => s.queueWait)),
        inFlight: latest.inFlight,
        queueDepth: latest.queueDepth,
        dlqDepth: latest.dlqDepth,
      };
      if (Object.keys(http).length > 0 || latest.rpc.length > 0) {
        summary.http = http;
        summary.rpc = quantiles(sum((s) => s.rpc));
        summary.pending = latest.pending;
      }
      out.push(summary);
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }
}

function quantiles(b: Buckets): Quantiles {
  return { p50: quantile(0.5, b), p95: quantile(0.95, b), p99: quantile(0.99, b) };
}
