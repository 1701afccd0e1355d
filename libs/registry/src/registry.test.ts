import { SenderPolicy } from '@warren/protocol';
import { ServiceRegistry, scrapeTarget, type HeartbeatMessage } from './registry';

const beat = (over: Partial<HeartbeatMessage> = {}): HeartbeatMessage => ({
  service: 'echo',
  instanceId: 'i1',
  host: 'h',
  metricsUrl: 'http://10.0.0.5:9464/metrics',
  version: '1.0.0',
  queue: 'echo',
  pid: 1,
  startedAt: '2024-01-01T00:00:00.000Z',
  intervalMs: 1000,
  state: 'up',
  ...over,
});

function setup() {
  let now = 1_000_000;
  const counts: [string, number][] = [];
  const registry = new ServiceRegistry({
    now: () => now,
    onCount: (s, n) => counts.push([s, n]),
  });
  return { registry, counts, advance: (ms: number) => (now += ms) };
}

describe('ServiceRegistry', () => {
  it('tracks instances from beats and reports count changes', () => {
    const { registry, counts } = setup();
    registry.applyBeat(beat());
    registry.applyBeat(beat());
    registry.applyBeat(beat({ instanceId: 'i2' }));
    expect(registry.hasLive('echo')).toBe(true);
    expect(registry.hasLive('other')).toBe(false);
    expect(registry.list()).toHaveLength(1);
    expect(registry.list()[0]?.instances.map((i) => i.instanceId)).toEqual(['i1', 'i2']);
    expect(counts).toEqual([
      ['echo', 1],
      ['echo', 2],
    ]);
  });

  it('expires an instance after 3 missed intervals, not before', () => {
    const { registry, counts, advance } = setup();
    registry.applyBeat(beat({ intervalMs: 1000 }));
    advance(3000);
    expect(registry.hasLive('echo')).toBe(true);
    registry.sweep();
    expect(registry.list()).toHaveLength(1);
    advance(1);
    expect(registry.hasLive('echo')).toBe(false);
    expect(registry.list()).toEqual([]);
    registry.sweep();
    expect(counts.at(-1)).toEqual(['echo', 0]);
  });

  it('a beat renews the lease; lastSeen moves, firstSeen stays', () => {
    const { registry, advance } = setup();
    registry.applyBeat(beat());
    const first = registry.list()[0]?.instances[0];
    advance(2500);
    registry.applyBeat(beat());
    advance(2500);
    expect(registry.hasLive('echo')).toBe(true);
    const now = registry.list()[0]?.instances[0];
    expect(now?.firstSeen).toBe(first?.firstSeen);
    expect(Date.parse(now?.lastSeen ?? '')).toBe(Date.parse(first?.lastSeen ?? '') + 2500);
  });

  it("drops an instance at once on 'stopping'", () => {
    const { registry, counts } = setup();
    registry.applyBeat(beat());
    registry.applyBeat(beat({ state: 'stopping' }));
    expect(registry.hasLive('echo')).toBe(false);
    expect(counts.at(-1)).toEqual(['echo', 0]);
    // A 'stopping' beat for an unknown instance changes nothing.
    registry.applyBeat(beat({ instanceId: 'ghost', state: 'stopping' }));
    expect(counts).toHaveLength(2);
  });

  it('parses wire beats, saying why it drops malformed ones; unknown fields are ignored', () => {
    const { registry } = setup();
    const wire = (v: unknown) => Buffer.from(JSON.stringify(v));
    expect(registry.apply(Buffer.from('nope'))).toBe('not-json');
    expect(registry.apply(wire({ ...beat(), service: 'Bad.Name' }))).toBe('invalid');
    expect(registry.apply(wire({ ...beat(), intervalMs: 'x' }))).toBe('invalid');
    expect(registry.apply(wire({ ...beat(), state: 'maybe' }))).toBe('invalid');
    expect(registry.hasLive('echo')).toBe(false);
    expect(registry.apply(wire({ ...beat(), extra: { nested: true } }))).toBe('accepted');
    expect(registry.hasLive('echo')).toBe(true);
  });

  it("believes a beat only from the service's broker user (or its own), a 'stopping' one too", () => {
    const registry = new ServiceRegistry({
      senders: new SenderPolicy({ ownUser: 'gateway', users: new Map([['hello', 'svc-hello']]) }),
    });
    const wire = (over: Partial<HeartbeatMessage>) => Buffer.from(JSON.stringify(beat(over)));
    expect(registry.apply(wire({}), 'rogue')).toBe('sender');
    expect(registry.apply(wire({}), undefined)).toBe('sender');
    expect(registry.hasLive('echo')).toBe(false);
    expect(registry.apply(wire({}), 'echo')).toBe('accepted');
    expect(registry.apply(wire({ service: 'hello' }), 'hello')).toBe('sender');
    expect(registry.apply(wire({ service: 'hello' }), 'svc-hello')).toBe('accepted');
    // A forged 'stopping' beat from another user leaves the instance listed.
    expect(registry.apply(wire({ state: 'stopping' }), 'rogue')).toBe('sender');
    expect(registry.hasLive('echo')).toBe(true);
    expect(registry.apply(wire({ state: 'stopping' }), 'gateway')).toBe('accepted');
    expect(registry.hasLive('echo')).toBe(false);
  });

  it('caps services and instances per service; expired entries make room', () => {
    let now = 1_000_000;
    const registry = new ServiceRegistry({ maxServices: 2, maxInstances: 2, now: () => now });
    expect(registry.applyBeat(beat({ service: 'a' }))).toBe('accepted');
    expect(registry.applyBeat(beat({ service: 'b' }))).toBe('accepted');
    expect(registry.applyBeat(beat({ service: 'c' }))).toBe('service-cap');
    expect(registry.applyBeat(beat({ service: 'a', instanceId: 'i2' }))).toBe('accepted');
    expect(registry.applyBeat(beat({ service: 'a', instanceId: 'i3' }))).toBe('instance-cap');
    // Known instances keep beating at the cap.
    expect(registry.applyBeat(beat({ service: 'a', instanceId: 'i2' }))).toBe('accepted');
    expect(registry.list().map((s) => [s.name, s.instances.length])).toEqual([
      ['a', 2],
      ['b', 1],
    ]);
    now += 60_000; // every instance missed its beats
    expect(registry.applyBeat(beat({ service: 'c' }))).toBe('accepted');
    expect(registry.applyBeat(beat({ service: 'c', instanceId: 'i2' }))).toBe('accepted');
    expect(registry.list().map((s) => s.name)).toEqual(['c']);
  });

  it('renders Prometheus HTTP SD groups, one per instance', () => {
    const { registry } = setup();
    registry.applyBeat(beat());
    registry.applyBeat(
      beat({ service: 'hello', instanceId: 'h1', metricsUrl: 'https://[::1]:8443/m' }),
    );
    registry.applyBeat(beat({ service: 'hello', instanceId: 'h2', metricsUrl: 'not a url' }));
    expect(registry.sdGroups()).toEqual([
      {
        targets: ['10.0.0.5:9464'],
        labels: { service: 'echo', instance_id: 'i1', __metrics_path__: '/metrics' },
      },
      {
        targets: ['[::1]:8443'],
        labels: {
          service: 'hello',
          instance_id: 'h1',
          __metrics_path__: '/m',
          __scheme__: 'https',
        },
      },
    ]);
  });
});

describe('scrapeTarget', () => {
  it('splits metrics URLs into host:port and path', () => {
    expect(scrapeTarget('http://a:1/metrics')).toEqual({
      hostPort: 'a:1',
      path: '/metrics',
      scheme: 'http',
    });
    expect(scrapeTarget('http://a/x')).toEqual({ hostPort: 'a:80', path: '/x', scheme: 'http' });
    expect(scrapeTarget('ftp://a/x')).toBeUndefined();
    expect(scrapeTarget('')).toBeUndefined();
  });
});
