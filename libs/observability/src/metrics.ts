// Warren's metric families, names and labels exactly as the design contract fixes them.
import { Counter, Gauge, type Registry } from 'prom-client';
import { HotCounter, HotHistogram } from './hot-metrics';

const LATENCY_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];
const WAIT_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900];

export type ConsumerOutcome = 'success' | 'retry' | 'dead_letter' | 'rejected';

export interface ConsumerMetrics {
  /** Counted once per message: children from `child(queue, outcome)`. */
  messages: HotCounter<'queue' | 'outcome'>;
  processing: HotHistogram<'queue'>;
  queueWait: HotHistogram<'queue'>;
  inFlight: Gauge;
  overdueHandlers: Gauge;
  expiredCalls: Counter<'queue'>;
  /** mq_events_handled_total (absent in fakes: events are then counted only as messages). */
  events?: Counter<'queue' | 'pattern' | 'outcome'>;
}

/** Families every consumer service registers (the `service` label comes from the registry). */
export function consumerMetrics(registry: Registry): ConsumerMetrics {
  return {
    messages: new HotCounter({
      name: 'mq_consumer_messages_total',
      help: 'Messages handled by a consumer, by outcome (success, retry, dead_letter, rejected)',
      labelNames: ['queue', 'outcome'],
      registers: [registry],
    }),
    processing: new HotHistogram({
      name: 'mq_consumer_processing_seconds',
      help: 'Handler time per message, from handler start to ack',
      labelNames: ['queue'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    queueWait: new HotHistogram({
      name: 'mq_consumer_queue_wait_seconds',
      help: 'Time from publish (message timestamp) to handler start',
      labelNames: ['queue'],
      buckets: WAIT_BUCKETS,
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: 'mq_consumer_in_flight',
      help: 'Messages being handled right now',
      registers: [registry],
    }),
    overdueHandlers: new Gauge({
      name: 'mq_consumer_overdue_handlers',
      help: 'Handlers still running past their deadline; each keeps its message unacked (a prefetch slot) until it ends',
      registers: [registry],
    }),
    expiredCalls: new Counter({
      name: 'mq_consumer_expired_calls_total',
      help: 'Calls dropped unrun because their deadline had passed when they arrived (the caller had been answered)',
      labelNames: ['queue'],
      registers: [registry],
    }),
    events: eventHandledMetrics(registry),
  };
}

export type PublishOutcome = 'confirmed' | 'nacked' | 'unroutable' | 'failed';
export type RpcOutcome = 'ok' | 'error' | 'timeout' | 'unavailable';

/** Why the gateway refused a request at its HTTP edge (503 overloaded, or closed at accept). */
/**
 * Async publishes whose confirm timed out (the client was answered 503, outcome unknown): what
 * became of them (`confirmed`, `refused`, `lost`), and what the gateway did with a retry of one
 * (`retry_held`: 503, nothing sent, its outcome still unknown; `retry_deduplicated`: 202, nothing
 * sent, it had been delivered).
 */
export type UnconfirmedOutcome =
  'confirmed' | 'refused' | 'lost' | 'retry_held' | 'retry_deduplicated';

export type OverloadReason =
  | 'connections'
  | 'connections_dropped'
  | 'event_loop'
  | 'inflight_bytes'
  | 'pending_calls'
  | 'queue_delay';

export interface GatewayMetrics {
  httpRequests: HotCounter<'method' | 'route' | 'status'>;
  httpDuration: HotHistogram<'method' | 'route'>;
  published: HotCounter<'service' | 'outcome'>;
  rpcDuration: HotHistogram<'service' | 'outcome'>;
  registryInstances: Gauge<'service'>;
  rejectedReplies: Counter<'service' | 'reason'>;
  droppedBeats: Counter<'reason'>;
  answerFailures: Counter;
  overloadRejections: Counter<'reason'>;
  unconfirmed: Counter<'outcome'>;
  openConnections: Gauge;
  inflightBodyBytes: Gauge;
}

/** Where the gateway's edge gauges read their values at scrape time (nothing on the request path). */
export interface GatewayEdgeReadings {
  openConnections(): number;
  inflightBodyBytes(): number;
}

/**
 * Gateway families. `service` here names the *target* service and overrides the default
 * label (which would say "gateway") on these series. The edge gauges read `edge` when scraped
 * (0 without it).
 */
export function gatewayMetrics(registry: Registry, edge?: GatewayEdgeReadings): GatewayMetrics {
  return {
    httpRequests: new HotCounter({
      name: 'gateway_http_requests_total',
      help: 'HTTP requests answered by the gateway',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    httpDuration: new HotHistogram({
      name: 'gateway_http_request_duration_seconds',
      help: 'HTTP request duration at the gateway',
      labelNames: ['method', 'route'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    published: new HotCounter({
      name: 'gateway_published_messages_total',
      help: 'Messages the gateway published, by broker outcome',
      labelNames: ['service', 'outcome'],
      registers: [registry],
    }),
    rpcDuration: new HotHistogram({
      name: 'gateway_rpc_duration_seconds',
      help: 'Request/reply calls through the gateway, by outcome (ok, error, timeout, unavailable)',
      labelNames: ['service', 'outcome'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    registryInstances: new Gauge({
      name: 'warren_registry_instances',
      help: 'Live instances per service, as seen by this gateway from heartbeats (services capped by GATEWAY_REGISTRY_MAX_SERVICES)',
      labelNames: ['service'],
      registers: [registry],
    }),
    rejectedReplies: new Counter({
      name: 'gateway_rejected_replies_total',
      help: 'Replies refused: malformed (status, content-type, too-large: the client got 502) or from a sender other than the called service (sender: dropped)',
      labelNames: ['service', 'reason'],
      registers: [registry],
    }),
    droppedBeats: new Counter({
      name: 'gateway_registry_dropped_beats_total',
      help: 'Heartbeats the registry dropped, by reason (too-large, not-json, invalid, sender, service-cap, instance-cap)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    answerFailures: new Counter({
      name: 'gateway_answer_failures_total',
      help: 'Answers that could not be written (the connection was destroyed instead)',
      registers: [registry],
    }),
    overloadRejections: new Counter({
      name: 'gateway_overload_rejections_total',
      help: 'Requests refused under overload, by cause: connections (503), connections_dropped (closed at accept), event_loop (503 at the door), inflight_bytes (503), pending_calls (503), queue_delay (503)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    unconfirmed: new Counter({
      name: 'gateway_unconfirmed_publishes_total',
      help: 'Async publishes whose confirm timed out: what became of them (confirmed, refused, lost) and retries of them (retry_held: 503, retry_deduplicated: 202, neither sent again)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    openConnections: new Gauge({
      name: 'gateway_open_connections',
      help: 'HTTP connections open at the gateway',
      registers: [registry],
      collect() {
        if (edge) this.set(edge.openConnections());
      },
    }),
    inflightBodyBytes: new Gauge({
      name: 'gateway_inflight_body_bytes',
      help: 'Request-body bytes reserved by the bodies being read right now',
      registers: [registry],
      collect() {
        if (edge) this.set(edge.inflightBodyBytes());
      },
    }),
  };
}

export interface MessagingMetrics {
  /** By `connection`: every process has a `publish` and a `consume` connection. */
  reconnects: Counter<'connection'>;
  rpcPending: Gauge;
  rpcLateReplies: Counter;
}

/** Connection and RPC client health, registered by every process that talks to the broker. */
export function messagingMetrics(registry: Registry): MessagingMetrics {
  const reconnects = new Counter({
    name: 'mq_connection_reconnects_total',
    help: 'Broker connections re-established after a loss, by connection (publish, consume)',
    labelNames: ['connection'] as const,
    registers: [registry],
  });
  // Both series exist from the start (at 0), so increase() sees the first reconnect.
  // (labels() alone creates no series: inc by 0 does.)
  reconnects.inc({ connection: 'publish' }, 0);
  reconnects.inc({ connection: 'consume' }, 0);
  return {
    reconnects,
    rpcPending: new Gauge({
      name: 'mq_rpc_pending_calls',
      help: 'RPC calls waiting for a reply',
      registers: [registry],
    }),
    rpcLateReplies: new Counter({
      name: 'mq_rpc_late_replies_total',
      help: 'Replies that arrived after their call timed out (dropped)',
      registers: [registry],
    }),
  };
}

/**
 * A label whose values come from outside (event topics): the first `max` distinct values are kept
 * as they are, later ones counted as `_other`, so a client cannot grow the series without bound.
 */
export class BoundedLabel {
  private readonly seen = new Set<string>();
  constructor(
    readonly max = 100,
    readonly other = '_other',
  ) {}

  value(v: string): string {
    if (this.seen.has(v)) return v;
    if (this.seen.size >= this.max) return this.other;
    this.seen.add(v);
    return v;
  }
}

export type EventPublishOutcome = PublishOutcome;

export interface EventPublishMetrics {
  /** Events published, by topic and outcome. */
  published: Counter<'topic' | 'outcome'>;
  /**
   * Counts one publish. A topic becomes a label value only once the broker routed an event for
   * it (someone subscribes), and then only the first 100 distinct ones (later ones `_other`);
   * the others count as `unknown`: clients cannot grow the series.
   */
  count(topic: string, outcome: EventPublishOutcome): void;
}

/**
 * Events published: `gateway_events_published_total` at the gateway (POST /v1/events/<topic>),
 * `mq_events_published_total` in services (ctx.events.publish).
 */
export function eventPublishMetrics(
  registry: Registry,
  where: 'gateway' | 'service',
): EventPublishMetrics {
  const published = new Counter({
    name: where === 'gateway' ? 'gateway_events_published_total' : 'mq_events_published_total',
    help: 'Events published, by topic (the first 100 routed topics; later ones _other, unrouted ones unknown) and outcome (confirmed, unroutable = no subscriber, nacked, failed)',
    labelNames: ['topic', 'outcome'] as const,
    registers: [registry],
  });
  const topics = new BoundedLabel();
  return {
    published,
    count: (topic, outcome) =>
      published.labels(outcome === 'confirmed' ? topics.value(topic) : 'unknown', outcome).inc(),
  };
}

/** Events a service handled, by the subscription pattern that matched (bounded by its definition). */
export function eventHandledMetrics(registry: Registry): Counter<'queue' | 'pattern' | 'outcome'> {
  return new Counter({
    name: 'mq_events_handled_total',
    help: 'Events handled by a consumer, by queue, the subscription pattern the topic matched, and outcome (success, retry, dead_letter, rejected)',
    labelNames: ['queue', 'pattern', 'outcome'] as const,
    registers: [registry],
  });
}
