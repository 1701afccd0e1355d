// What the console keeps per scrape: counters read from a process's /metrics, deltas between scrapes, histogram quantiles.
import type { Sample } from './prom-text';

export const OUTCOMES = ['success', 'retry', 'dead_letter', 'rejected'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** Cumulative bucket counts by upper bound (`le`), ascending, +Inf last. */
export type Buckets = [le: number, count: number][];

/** The counters and gauges the console reads from one instance's /metrics. */
export interface Counters {
  messages: Record<Outcome, number>;
  processing: Buckets;
  queueWait: Buckets;
  inFlight: number;
  /** Gateway only: requests by HTTP status, RPC latency, pending calls. */
  http: Record<string, number>;
  rpc: Buckets;
  pending: number;
  /** Events handled (any outcome; they are also in `messages`) and events published (confirmed). */
  events: number;
  eventsPublished: number;
}

export const FAMILIES: ReadonlySet<string> = new Set([
  'mq_consumer_messages_total',
  'mq_consumer_processing_seconds',
  'mq_consumer_queue_wait_seconds',
  'mq_consumer_in_flight',
  'gateway_http_requests_total',
  'gateway_rpc_duration_seconds',
  'mq_rpc_pending_calls',
  'mq_events_handled_total',
  'mq_events_published_total',
  'gateway_events_published_total',
]);

function buckets(samples: Sample[], name: string): Buckets {
  const byLe = new Map<number, number>();
  for (const s of samples) {
    if (s.name !== name || s.labels.le === undefined) continue;
    const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
    byLe.set(le, (byLe.get(le) ?? 0) + s.value);
  }
  return [...byLe].sort((a, b) => a[0] - b[0]);
}

/** The console's view of one scrape (series of every label set summed). */
export function countersOf(samples: Sample[]): Counters {
  const messages = { success: 0, retry: 0, dead_letter: 0, rejected: 0 };
  const http: Record<string, number> = {};
  let inFlight = 0;
  let pending = 0;
  let events = 0;
  let eventsPublished = 0;
  for (const s of samples) {
    if (s.name === 'mq_consumer_messages_total') {
      const o = s.labels.outcome as Outcome;
      if (o in messages) messages[o] += s.value;
    } else if (s.name === 'mq_consumer_in_flight') inFlight += s.value;
    else if (s.name === 'mq_rpc_pending_calls') pending += s.value;
    else if (s.name === 'mq_events_handled_total') events += s.value;
    else if (
      (s.name === 'mq_events_published_total' || s.name === 'gateway_events_published_total') &&
      s.labels.outcome === 'confirmed'
    )
      eventsPublished += s.value;
    else if (s.name === 'gateway_http_requests_total') {
      const status = s.labels.status ?? '?';
      http[status] = (http[status] ?? 0) + s.value;
    }
  }
  return {
    messages,
    processing: buckets(samples, 'mq_consumer_processing_seconds_bucket'),
    queueWait: buckets(samples, 'mq_consumer_queue_wait_seconds_bucket'),
    inFlight,
    http,
    rpc: buckets(samples, 'gateway_rpc_duration_seconds_bucket'),
    pending,
    events,
    eventsPublished,
  };
}

/** Counter increases between two scrapes of one instance; a counter that went down was reset (a restart): all of `now` is new. */
export interface Delta {
  messages: Record<Outcome, number>;
  processing: Buckets;
  queueWait: Buckets;
  http: Record<string, number>;
  rpc: Buckets;
  events: number;
  eventsPublished: number;
}

const diff = (now: number, before: number | undefined): number =>
  before === undefined || now < before ? now : now - before;

function bucketDiff(now: Buckets, before: Buckets | undefined): Buckets {
  const prev = new Map(before ?? []);
  return now.map(([le, c]) => [le, diff(c, prev.get(le))]);
}

export function deltaOf(now: Counters, before: Counters | undefined): Delta {
  const messages = { success: 0, retry: 0, dead_letter: 0, rejected: 0 };
  for (const o of OUTCOMES) messages[o] = diff(now.messages[o], before?.messages[o]);
  const http: Record<string, number> = {};
  for (const [k, v] of Object.entries(now.http)) http[k] = diff(v, before?.http[k]);
  return {
    messages,
    processing: bucketDiff(now.processing, before?.processing),
    queueWait: bucketDiff(now.queueWait, before?.queueWait),
    http,
    rpc: bucketDiff(now.rpc, before?.rpc),
    events: diff(now.events, before?.events),
    eventsPublished: diff(now.eventsPublished, before?.eventsPublished),
  };
}

/** Sums bucket lists (same or different bounds). */
export function addBuckets(a: Buckets, b: Buckets): Buckets {
  const m = new Map(a);
  for (const [le, c] of b) m.set(le, (m.get(le) ?? 0) + c);
  return [...m].sort((x, y) => x[0] - y[0]);
}

/**
 * The q-quantile of cumulative buckets, interpolated linearly inside the bucket as Prometheus'
 * histogram_quantile does; undefined without observations. In the +Inf bucket: the largest bound.
 */
export function quantile(q: number, b: Buckets): number | undefined {
  const total = b.at(-1)?.[1] ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of b) {
    if (count >= rank) {
      if (le === Infinity) return prevLe;
      if (count === prevCount) return le;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / (count - prevCount);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}
