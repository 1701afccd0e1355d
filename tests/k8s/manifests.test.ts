// infra/k8s: every manifest validates against the Kubernetes / CRD schemas (offline), and the
// invariants that make scaling safe hold: probes on the ops port's /readyz and /healthz, a grace
// period longer than the drain, a PodDisruptionBudget per Deployment, quorum queues, AMQP_URL from a
// Secret, Prometheus discovery, and a KEDA ScaledObject per consumer service counting unacked messages;
// and the gateway fails closed (required API-key Secret, GATEWAY_REQUIRE_API_KEYS) behind its ingress.
import fs from 'node:fs';
import path from 'node:path';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import type { ITriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication';
import type { ISecret } from 'kubernetes-models/v1/Secret';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { serviceEnvSchema, DEFAULTS, type ServiceDefinition } from '@warren/service-kit';
import { parseGatewayConfig } from '../../services/gateway/src/config';
import {
  ROOT,
  consumerServices,
  loadManifests,
  ofKind,
  schemaErrors,
  type Manifest,
} from './manifests';

const OPS_PORT = 9400;
/** A Kustomization lists resources; secret.example.yaml is documentation, applied by hand. */
const NOT_IN_KUSTOMIZATION = /\.example\.ya?ml$/;

const all = loadManifests();
const as = <T>(m: Manifest) => m.doc as unknown as T;
const deployments = ofKind(all, 'Deployment').map((m) => as<IDeployment>(m));
const scaledObjects = ofKind(all, 'ScaledObject').map((m) => as<IScaledObject>(m));
const deployment = (name: string) => deployments.find((d) => d.metadata?.name === name);
const mainContainer = (d: IDeployment): IContainer => {
  const c = d.spec?.template.spec?.containers[0];
  if (!c) throw new Error(`${d.metadata?.name}: no container`);
  return c;
};
const envOf = (c: IContainer, name: string) => c.env?.find((e) => e.name === name);
/** A port given by number or by the container's port name, as a number. */
const portNumber = (c: IContainer, port: number | string | undefined) =>
  typeof port === 'number' ? port : c.ports?.find((p) => p.name === port)?.containerPort;

/** A service's definition (services/<name>/src/service.ts), for its prefetch. */
function loadDefinition(name: string): ServiceDefinition {
  const file = path.join(ROOT, 'services', name, 'src/service.ts');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require(file) as { default: ServiceDefinition }).default;
}

/** Default DRAIN_TIMEOUT_MS of the service-kit config schema (what a missing env means). */
const defaultDrainMs = Number(serviceEnvSchema.shape.DRAIN_TIMEOUT_MS.parse(undefined));

test('the manifests are there: kinds Warren needs, all parsed', () => {
  const kinds = new Set(all.map((m) => m.doc.kind));
  for (const k of [
    'Kustomization',
    'Namespace',
    'Deployment',
    'Service',
    'PodDisruptionBudget',
    'HorizontalPodAutoscaler',
    'ScaledObject',
    'TriggerAuthentication',
    'RabbitmqCluster',
    'Secret',
    'PodMonitor',
  ])
    expect(kinds).toContain(k);
});

describe.each(
  all.map((m) => [`${m.file}#${m.index} ${m.doc.kind} ${m.doc.metadata?.name ?? ''}`, m]),
)('schema: %s', (_label, m) => {
  test('validates', () => {
    expect(schemaErrors((m as Manifest).doc)).toEqual([]);
  });
});

test('the schema check catches mistakes (a wrong type, a missing field, an unknown CRD field)', () => {
  const d = structuredClone(deployment('echo')) as unknown as Manifest['doc'];
  const spec = d.spec as { template: { spec: { containers: { ports: unknown[] }[] } } };
  (spec.template.spec.containers[0] as { ports: unknown[] }).ports = [{ containerPort: 'ops' }];
  expect(schemaErrors(d).join()).toMatch(/containerPort must be integer/);

  const so = structuredClone(scaledObjects[0]) as unknown as Manifest['doc'];
  delete (so.spec as { scaleTargetRef?: unknown }).scaleTargetRef;
  expect(schemaErrors(so).join()).toMatch(/scaleTargetRef/);

  const rmq = structuredClone(ofKind(all, 'RabbitmqCluster')[0]?.doc) as Manifest['doc'];
  (rmq.spec as Record<string, unknown>).replica = 3;
  expect(schemaErrors(rmq).join()).toMatch(/additional properties/);
  (rmq.spec as Record<string, unknown>).replica = undefined;
  delete (rmq.spec as Record<string, unknown>).replica;
  (rmq.spec as { rabbitmq: { additionalPlugins: string[] } }).rabbitmq.additionalPlugins = [
    'rabbitmq prometheus',
  ];
  expect(schemaErrors(rmq).join()).toMatch(/pattern/);
});

test('every manifest file is listed in a kustomization, and every listed file exists', () => {
  const listed = new Set<string>();
  for (const k of ofKind(all, 'Kustomization')) {
    const dir = path.dirname(path.join(ROOT, k.file));
    for (const r of (k.doc as unknown as { resources: string[] }).resources) {
      const file = path.join(dir, r);
      expect(fs.existsSync(file)).toBe(true);
      listed.add(path.relative(ROOT, file));
    }
  }
  const files = new Set(all.filter((m) => m.doc.kind !== 'Kustomization').map((m) => m.file));
  for (const f of files) if (!NOT_IN_KUSTOMIZATION.test(f)) expect([...listed]).toContain(f);
});

describe('consumer services', () => {
  const services = consumerServices();

  test('every service under services/ except the gateway has a Deployment and a ScaledObject', () => {
    expect(services.length).toBeGreaterThanOrEqual(3);
    for (const name of services) {
      expect(deployment(name)).toBeDefined();
      expect(scaledObjects.map((s) => s.spec.scaleTargetRef.name)).toContain(name);
    }
  });

  test.each(services)('%s: KEDA scales on queue length counting unacked messages', (name) => {
    const so = scaledObjects.find((s) => s.spec.scaleTargetRef.name === name);
    expect(so).toBeDefined();
    const triggers = so?.spec.triggers ?? [];
    expect(triggers).toHaveLength(1);
    const t = triggers[0];
    expect(t?.type).toBe('rabbitmq');
    const meta = (t?.metadata ?? {}) as Record<string, string>;
    expect(meta.queueName).toBe(name);
    expect(meta.mode).toBe('QueueLength');
    // Only the management API (http) counts unacked messages; AMQP reports ready ones only.
    expect(meta.protocol).toBe('http');
    expect(meta.excludeUnacknowledged).toBe('false');
    // The target per replica is at least the prefetch: one pod's in-flight work alone does not scale.
    const def = loadDefinition(name);
    expect(Number(meta.value)).toBeGreaterThanOrEqual(def.prefetch ?? DEFAULTS.prefetch);
    // Never below one consumer, or RPC calls would find no live instance.
    expect(so?.spec.minReplicaCount ?? 0).toBeGreaterThanOrEqual(1);
    // The authentication it names exists and reads the management URL from a Secret.
    const authName = t?.authenticationRef?.name;
    const auth = ofKind(all, 'TriggerAuthentication')
      .map((m) => as<ITriggerAuthentication>(m))
      .find((a) => a.metadata?.name === authName);
    expect(auth?.spec.secretTargetRef?.map((r) => r.parameter)).toContain('host');
  });

  test.each(services)('%s: quorum queue, drain inside the grace period', (name) => {
    const d = deployment(name) as IDeployment;
    const c = mainContainer(d);
    expect(envOf(c, 'QUEUE_TYPE')?.value).toBe('quorum');
    const drainMs = Number(envOf(c, 'DRAIN_TIMEOUT_MS')?.value ?? defaultDrainMs);
    const graceS = d.spec?.template.spec?.terminationGracePeriodSeconds ?? 30;
    // The drain, the 1 s wait for late acks after it, closing: all before the SIGKILL.
    expect(graceS * 1000).toBeGreaterThanOrEqual(drainMs + 5000);
  });
});

describe('every Deployment', () => {
  test.each(deployments.map((d) => [d.metadata?.name, d]))(
    '%s: probes, ops port, secret, metrics discovery, disruption budget',
    (name, dep) => {
      const d = dep as IDeployment;
      const c = mainContainer(d);
      const pod = d.spec?.template;

      expect(envOf(c, 'METRICS_PORT')?.value).toBe(String(OPS_PORT));
      expect(c.readinessProbe?.httpGet?.path).toBe('/readyz');
      expect(portNumber(c, c.readinessProbe?.httpGet?.port)).toBe(OPS_PORT);
      expect(c.livenessProbe?.httpGet?.path).toBe('/healthz');
      expect(portNumber(c, c.livenessProbe?.httpGet?.port)).toBe(OPS_PORT);

      // The broker URL (credentials included) only ever comes from a Secret.
      const url = envOf(c, 'AMQP_URL');
      expect(url?.value).toBeUndefined();
      expect(url?.valueFrom?.secretKeyRef?.name).toBe('warren-amqp');

      const annotations = pod?.metadata?.annotations ?? {};
      expect(annotations['prometheus.io/scrape']).toBe('true');
      expect(annotations['prometheus.io/port']).toBe(String(OPS_PORT));
      expect(annotations['prometheus.io/path']).toBe('/metrics');

      // The selector picks the template's pods, and a PodDisruptionBudget covers the same pods.
      const selector = d.spec?.selector.matchLabels ?? {};
      expect(Object.keys(selector).length).toBeGreaterThan(0);
      for (const [k, v] of Object.entries(selector)) expect(pod?.metadata?.labels?.[k]).toBe(v);
      const pdbs = ofKind(all, 'PodDisruptionBudget')
        .map((m) => as<IPodDisruptionBudget>(m))
        .filter((p) =>
          Object.entries(p.spec?.selector?.matchLabels ?? {}).every(
            ([k, v]) => pod?.metadata?.labels?.[k] === v,
          ),
        );
      expect(pdbs).toHaveLength(1);

      expect(c.securityContext?.allowPrivilegeEscalation).toBe(false);
      expect(pod?.spec?.securityContext?.runAsNonRoot).toBe(true);
      expect(c.name).toBe(name);
    },
  );

  test('gateway: the grace period covers preStop + SHUTDOWN_TIMEOUT_MS', () => {
    const d = deployment('gateway') as IDeployment;
    const c = mainContainer(d);
    const shutdownMs = Number(envOf(c, 'SHUTDOWN_TIMEOUT_MS')?.value ?? 10_000);
    const preStop = c.lifecycle?.preStop?.exec?.command ?? [];
    const preStopS = preStop[0] === 'sleep' ? Number(preStop[1]) : 0;
    const graceS = d.spec?.template.spec?.terminationGracePeriodSeconds ?? 30;
    expect(graceS * 1000).toBeGreaterThan(preStopS * 1000 + shutdownMs + 5000);
    expect((d.spec?.replicas ?? 1) >= 2).toBe(true);
  });

  test('every Secret key the Deployments and KEDA read is in secret.example.yaml', () => {
    const examples = all
      .filter((m) => m.file.endsWith('secret.example.yaml'))
      .map((m) => as<ISecret>(m));
    const exampleKeys = (name: string) =>
      Object.keys(examples.find((e) => e.metadata?.name === name)?.stringData ?? {});
    const refs = deployments.flatMap(
      (d) =>
        mainContainer(d)
          .env?.map((e) => e.valueFrom?.secretKeyRef)
          .filter((r) => r !== undefined) ?? [],
    );
    const kedaRefs = ofKind(all, 'TriggerAuthentication').flatMap(
      (m) => as<ITriggerAuthentication>(m).spec.secretTargetRef ?? [],
    );
    // Both Secrets are read: warren-amqp (broker URLs) and warren-gateway (API keys).
    expect(new Set(refs.map((r) => r.name))).toEqual(new Set(['warren-amqp', 'warren-gateway']));
    expect(kedaRefs.length).toBeGreaterThan(0);
    for (const r of [...refs, ...kedaRefs]) expect(exampleKeys(r.name ?? '')).toContain(r.key);
    // Placeholders only: no real credential is committed.
    for (const e of examples)
      for (const v of Object.values(e.stringData ?? {})) expect(v).toMatch(/CHANGE-ME/);
  });

  test('gateway: fails closed without API keys; the client IP is the ingress hop', () => {
    const c = mainContainer(deployment('gateway') as IDeployment);
    // The keys come from the Secret warren-gateway, which is required: without it the container
    // is not started, rather than started open.
    const keyEnv = c.env?.filter((e) => e.name === 'GATEWAY_API_KEYS') ?? [];
    expect(keyEnv).toHaveLength(1);
    expect(keyEnv[0]?.value).toBeUndefined();
    const ref = keyEnv[0]?.valueFrom?.secretKeyRef;
    expect(ref).toMatchObject({ name: 'warren-gateway', key: 'GATEWAY_API_KEYS' });
    expect(ref?.optional ?? false).toBe(false);
    // A Secret whose value holds no key stops the gateway too.
    expect(envOf(c, 'GATEWAY_REQUIRE_API_KEYS')?.value).toBe('true');
    // X-Forwarded-For from the ingress is believed, for the rate limit and the access log: a hop
    // count of at least 1, or the proxies' addresses/subnets.
    expect(envOf(c, 'GATEWAY_TRUST_PROXY')?.value).toMatch(
      /^([1-9]\d*|[0-9a-f.:/]+(,\s*[0-9a-f.:/]+)*)$/i,
    );

    // The gateway's own config parser agrees: the manifest's literal values, with the Secret's
    // value absent or empty, are refused; with a key they start with the proxy trusted.
    const literal = Object.fromEntries(
      (c.env ?? []).flatMap((e) => (e.value === undefined ? [] : [[e.name, e.value]])),
    ) as NodeJS.ProcessEnv;
    expect(() => parseGatewayConfig(literal)).toThrow(/GATEWAY_REQUIRE_API_KEYS: no API key/);
    expect(() => parseGatewayConfig({ ...literal, GATEWAY_API_KEYS: '' })).toThrow(
      /GATEWAY_REQUIRE_API_KEYS: no API key/,
    );
    const config = parseGatewayConfig({ ...literal, GATEWAY_API_KEYS: 'k8s-test-key-0123456789' });
    expect(config.apiKeys).toHaveLength(1);
    const trust = config.trustProxy;
    expect(typeof trust === 'number' ? trust >= 1 : typeof trust === 'string' && trust !== '').toBe(
      true,
    );
  });
});

test('RabbitmqCluster: 3 replicas with the prometheus plugin', () => {
  const [rmq] = ofKind(all, 'RabbitmqCluster');
  const spec = rmq?.doc.spec as { replicas: number; rabbitmq: { additionalPlugins: string[] } };
  expect(spec.replicas).toBe(3);
  expect(spec.rabbitmq.additionalPlugins).toContain('rabbitmq_prometheus');
});
