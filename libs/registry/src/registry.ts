// Live service registry built from heartbeats: believed only from the service's broker user, bounded, instances expire after missed beats.
import { parseHeartbeat, type Heartbeat, type SenderPolicy } from '@warren/protocol';

export type HeartbeatMessage = Heartbeat;

/** A live service as the registry knows it from its newest heartbeat. */
export interface DescribedService {
  name: string;
  description?: string;
  /** JSON Schema of its JSON input; absent = any bytes (a raw service). */
  inputSchema?: Record<string, unknown>;
  /** The event topic patterns it subscribes to. */
  events?: string[];
  /** JSON Schemas of the events of the patterns that have their own (else `inputSchema`). */
  eventSchemas?: Record<string, Record<string, unknown>>;
}

/** What became of one heartbeat: applied, or why it was dropped (the reasons are metric labels). */
export type BeatVerdict =
  'accepted' | 'too-large' | 'not-json' | 'invalid' | 'sender' | 'service-cap' | 'instance-cap';

export const DROP_REASONS: readonly Exclude<BeatVerdict, 'accepted'>[] = [
  'too-large',
  'not-json',
  'invalid',
  'sender',
  'service-cap',
  'instance-cap',
];

export interface InstanceView {
  instanceId: string;
  host: string;
  metricsUrl: string;
  version: string;
  queue: string;
  pid: number | undefined;
  startedAt: string | undefined;
  intervalMs: number;
  firstSeen: string;
  lastSeen: string;
}

export interface ServiceView {
  name: string;
  instances: InstanceView[];
}

/** One Prometheus HTTP SD target group. */
export interface SdTargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

interface Entry {
  beat: HeartbeatMessage;
  firstSeen: number;
  lastSeen: number;
  expiresAt: number;
}

export interface RegistryOptions {
  /** Beats an instance may miss before it counts as gone. Default 3. */
  missedBeats?: number;
  now?: () => number;
  /** Told the live instance count of a service whenever it changes (0 = gone). */
  onCount?: (service: string, count: number) => void;
  /** Whose beats are believed (AMQP `user-id`); unset = anyone's (tests). */
  senders?: SenderPolicy;
  /** Most services tracked (default 256); beats of more are dropped. */
  maxServices?: number;
  /** Most instances tracked per service (default 64); beats of more are dropped. */
  maxInstances?: number;
}

export const REGISTRY_DEFAULTS = { maxServices: 256, maxInstances: 64 };

export class ServiceRegistry {
  private readonly byService = new Map<string, Map<string, Entry>>();
  private readonly missedBeats: number;
  private readonly now: () => number;
  private readonly maxServices: number;
  private readonly maxInstances: number;

  constructor(private readonly options: RegistryOptions = {}) {
    this.missedBeats = options.missedBeats ?? 3;
    this.now = options.now ?? Date.now;
    this.maxServices = options.maxServices ?? REGISTRY_DEFAULTS.maxServices;
    this.maxInstances = options.maxInstances ?? REGISTRY_DEFAULTS.maxInstances;
  }

  /** Applies one heartbeat off the wire (body and AMQP `user-id`); no change unless 'accepted'. */
  apply(body: Buffer, userId?: unknown): BeatVerdict {
    const parsed = parseHeartbeat(body);
    if (!parsed.ok) return parsed.reason;
    const { senders } = this.options;
    if (senders && !senders.accepts(parsed.beat.service, userId)) return 'sender';
    return this.applyBeat(parsed.beat);
  }

  applyBeat(beat: HeartbeatMessage): BeatVerdict {
    const now = this.now();
    let instances = this.byService.get(beat.service);
    if (beat.state === 'stopping') {
      if (instances?.delete(beat.instanceId)) this.changed(beat.service, instances);
      return 'accepted';
    }
    if (!instances) {
      if (this.byService.size >= this.maxServices) {
        this.sweep();
        if (this.byService.size >= this.maxServices) return 'service-cap';
      }
      instances = new Map();
      this.byService.set(beat.service, instances);
    }
    const prev = instances.get(beat.instanceId);
    if (!prev && instances.size >= this.maxInstances) {
      this.sweepService(beat.service, instances, now);
      if (instances.size >= this.maxInstances) return 'instance-cap';
    }
    instances.set(beat.instanceId, {
      beat,
      firstSeen: prev?.firstSeen ?? now,
      lastSeen: now,
      expiresAt: now + this.missedBeats * beat.intervalMs,
    });
    if (!prev) this.changed(beat.service, instances);
    return 'accepted';
  }

  /** True when at least one instance of `service` beat recently enough. */
  hasLive(service: string): boolean {
    const instances = this.byService.get(service);
    if (!instances) return false;
    const now = this.now();
    for (const e of instances.values()) if (e.expiresAt >= now) return true;
    return false;
  }

  /** Drops expired instances (run periodically; reads skip expired ones anyway). */
  sweep(): void {
    const now = this.now();
    for (const [service, instances] of this.byService) this.sweepService(service, instances, now);
  }

  private sweepService(service: string, instances: Map<string, Entry>, now: number): void {
    let removed = false;
    for (const [id, e] of instances) {
      if (e.expiresAt < now) {
        instances.delete(id);
        removed = true;
      }
    }
    if (removed) this.changed(service, instances);
  }

  /** Live services and their instances, sorted by name, then instance id. */
  list(): ServiceView[] {
    const now = this.now();
    const out: ServiceView[] = [];
    for (const [name, instances] of this.byService) {
      const live = [...instances.values()].filter((e) => e.expiresAt >= now);
      if (live.length === 0) continue;
      out.push({
        name,
        instances: live
          .map((e) => ({
            instanceId: e.beat.instanceId,
            host: e.beat.host,
            metricsUrl: e.beat.metricsUrl,
            version: e.beat.version,
            queue: e.beat.queue ?? name,
            pid: e.beat.pid,
            startedAt: e.beat.startedAt,
            intervalMs: e.beat.intervalMs,
            firstSeen: new Date(e.firstSeen).toISOString(),
            lastSeen: new Date(e.lastSeen).toISOString(),
          }))
          .sort((a, b) => a.instanceId.localeCompare(b.instanceId)),
      });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Live services with what their newest beat advertises (description, input schema). */
  described(): DescribedService[] {
    const now = this.now();
    const out: DescribedService[] = [];
    for (const [name, instances] of this.byService) {
      let newest: Entry | undefined;
      for (const e of instances.values())
        if (e.expiresAt >= now && (!newest || e.lastSeen > newest.lastSeen)) newest = e;
      if (!newest) continue;
      const { description, inputSchema, events, eventSchemas } = newest.beat;
      out.push({
        name,
        ...(description !== undefined ? { description } : {}),
        ...(inputSchema !== undefined ? { inputSchema } : {}),
        ...(events !== undefined && events.length > 0 ? { events } : {}),
        ...(eventSchemas !== undefined ? { eventSchemas } : {}),
      });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Prometheus HTTP SD: one target group per live instance with a usable http(s) metrics URL. */
  sdGroups(): SdTargetGroup[] {
    const groups: SdTargetGroup[] = [];
    for (const service of this.list()) {
      for (const i of service.instances) {
        const target = scrapeTarget(i.metricsUrl);
        if (!target) continue;
        groups.push({
          targets: [target.hostPort],
          labels: {
            service: service.name,
            instance_id: i.instanceId,
            __metrics_path__: target.path,
            ...(target.scheme === 'https' ? { __scheme__: 'https' } : {}),
          },
        });
      }
    }
    return groups;
  }

  private changed(service: string, instances: Map<string, Entry>): void {
    if (instances.size === 0) this.byService.delete(service);
    this.options.onCount?.(service, instances.size);
  }
}

/** `http://10.0.0.5:9464/metrics` -> host:port and path; undefined for anything else. */
export function scrapeTarget(
  metricsUrl: string,
): { hostPort: string; path: string; scheme: 'http' | 'https' } | undefined {
  let u: URL;
  try {
    u = new URL(metricsUrl);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
  if (!u.hostname) return undefined;
  const scheme = u.protocol === 'https:' ? 'https' : 'http';
  const port = u.port || (scheme === 'https' ? '443' : '80');
  return { hostPort: `${u.hostname}:${port}`, path: u.pathname || '/metrics', scheme };
}
