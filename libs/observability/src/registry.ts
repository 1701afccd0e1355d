// One prom-client registry per process: Node process defaults plus a `service` default label.
import { Registry, collectDefaultMetrics } from 'prom-client';

/**
 * prom-client's gauges that carry a counter's `_total` suffix; `promtool check metrics` flags them,
 * and the same facts are in nodejs_active_{handles,requests,resources} by type.
 */
const MISNAMED_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

export function createRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(name);
  return registry;
}
