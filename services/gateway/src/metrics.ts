// Gateway metric recording: bounded label values, and hot children (plain number updates) on the per-request families.
import type {
  GatewayMetrics,
  OverloadReason,
  PublishOutcome,
  RpcOutcome,
  UnconfirmedOutcome,
} from '@warren/observability';

export type RouteLabel =
  '/v1/:service' | '/v1/services' | '/v1/events/:topic' | '/sd/prometheus' | 'other';

const METHODS: ReadonlySet<string> = new Set([
  'GET',
  'POST',
  'HEAD',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
]);

/** The route label of a request: templates only, so client-chosen paths never become label values. */
export function routeLabel(path: string): RouteLabel {
  if (path.startsWith('/v1/')) {
    if (path === '/v1/services') return '/v1/services';
    return path.startsWith('/v1/events/') ? '/v1/events/:topic' : '/v1/:service';
  }
  if (path === '/sd/prometheus') return '/sd/prometheus';
  return 'other';
}

export const methodLabel = (method: string): string => (METHODS.has(method) ? method : 'other');

/** Most distinct service label values kept; past it new names are counted under "other". */
const MAX_SERVICE_LABELS = 2000;

export class GatewayRecorder {
  private readonly services = new Set<string>();

  constructor(
    private readonly metrics: GatewayMetrics,
    /** Whether a name may become a label value (known to exist); others count as "unknown". */
    private readonly isKnown: (service: string) => boolean,
  ) {}

  http(method: string, route: RouteLabel, status: number, seconds: number): void {
    const m = methodLabel(method);
    this.metrics.httpRequests.child(m, route, String(status)).inc();
    this.metrics.httpDuration.child(m, route).observe(seconds);
  }

  publish(service: string, outcome: PublishOutcome): void {
    const s = this.serviceLabel(service, outcome === 'confirmed' || outcome === 'nacked');
    this.metrics.published.child(s, outcome).inc();
  }

  /** A request refused at the edge (a cap was reached); rare, so no child cache. */
  overload(reason: OverloadReason): void {
    this.metrics.overloadRejections.labels(reason).inc();
  }

  unconfirmed(outcome: UnconfirmedOutcome): void {
    this.metrics.unconfirmed.labels(outcome).inc();
  }

  rpcDone(service: string, outcome: RpcOutcome, seconds: number, exists: boolean): void {
    this.metrics.rpcDuration.child(this.serviceLabel(service, exists), outcome).observe(seconds);
  }

  /** A reply refused by the RPC client (the call's queue exists: a message was routed to it). */
  rejectedReply(service: string, reason: string): void {
    this.metrics.rejectedReplies.labels(this.serviceLabel(service, true), reason).inc();
  }

  /**
   * Service names come from clients: a name becomes a label value only once the broker took a
   * message for it or the registry knows it, so probing random names cannot blow up the series.
   */
  private serviceLabel(service: string, exists: boolean): string {
    if (this.services.has(service)) return service;
    if (!exists && !this.isKnown(service)) return 'unknown';
    if (this.services.size >= MAX_SERVICE_LABELS) return 'other';
    this.services.add(service);
    return service;
  }
}
