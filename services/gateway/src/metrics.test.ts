import { Registry } from 'prom-client';
import { gatewayMetrics } from '@warren/observability';
import { GatewayRecorder, methodLabel, routeLabel } from './metrics';

describe('labels', () => {
  it('uses route templates and a bounded method set', () => {
    expect(routeLabel('/v1/echo')).toBe('/v1/:service');
    expect(routeLabel('/v1/services')).toBe('/v1/services');
    expect(routeLabel('/sd/prometheus')).toBe('/sd/prometheus');
    expect(routeLabel('/random/thing')).toBe('other');
    expect(methodLabel('POST')).toBe('POST');
    expect(methodLabel('BREW')).toBe('other');
  });
});

describe('GatewayRecorder', () => {
  it('labels unknown services "unknown" and caches children', async () => {
    const registry = new Registry();
    const m = gatewayMetrics(registry);
    const known = new Set(['echo']);
    const rec = new GatewayRecorder(m, (s) => known.has(s));
    rec.publish('echo', 'confirmed');
    rec.publish('echo', 'confirmed');
    rec.publish('random-probe-1', 'unroutable');
    rec.publish('random-probe-2', 'unroutable');
    rec.publish('new-svc', 'confirmed'); // confirmed = the queue exists
    rec.http('POST', '/v1/:service', 202, 0.01);
    const values = (await m.published.get()).values;
    const get = (service: string, outcome: string) =>
      values.find((v) => v.labels.service === service && v.labels.outcome === outcome)?.value;
    expect(get('echo', 'confirmed')).toBe(2);
    expect(get('unknown', 'unroutable')).toBe(2);
    expect(get('new-svc', 'confirmed')).toBe(1);
    expect(values.some((v) => String(v.labels.service).startsWith('random'))).toBe(false);
    const http = (await m.httpRequests.get()).values;
    expect(http).toEqual([
      { value: 1, labels: { method: 'POST', route: '/v1/:service', status: '202' } },
    ]);
  });
});
