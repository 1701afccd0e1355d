// The live stack the dashboards are checked against (tests/infra/live.test.ts) and drawn from
// (`npm run dashboards:snapshot`): a throwaway vhost, the built gateway and services as child
// processes, fixture services that fail and that are slow, a mixed load through the gateway, and
// the real Prometheus binary running the project's own prometheus.yml and rules — rewritten only
// for ports, paths, targets and intervals (see rewritePrometheusConfig).
import { type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { testAmqpUrl } from '../support/broker';
import { freePort, startNode, startProcess, waitForHttp, type Proc } from '../support/processes';
import { eventually, sleep } from '../support/time';
import { createVhost, type TestVhost } from '../support/vhost';
import { PROMETHEUS_CONFIG, findPrometheusTool, loadRuleFile, ruleFiles } from './promql';

// ---------------------------------------------------------------- Prometheus config

interface StaticConfig {
  targets: string[];
  labels?: Record<string, string>;
}

interface ScrapeConfig {
  job_name: string;
  metrics_path?: string;
  params?: Record<string, string[]>;
  static_configs?: StaticConfig[];
  http_sd_configs?: { url: string; refresh_interval?: string }[];
  [key: string]: unknown;
}

export interface PrometheusConfig {
  global?: Record<string, string>;
  rule_files?: string[];
  scrape_configs: ScrapeConfig[];
  [key: string]: unknown;
}

export interface LiveAddresses {
  /** host:port of the gateway's ops port (METRICS_PORT). */
  gatewayOps: string;
  /** host:port of the gateway's HTTP port (PORT). */
  gatewayHttp: string;
  /** host:port of rabbitmq_prometheus. */
  rabbitmq: string;
  /** host:port Prometheus itself listens on. */
  prometheus: string;
  /** The vhost whose queues the per-queue job scrapes (the broker is shared with other tests). */
  vhost: string;
  /** scrape_interval, scrape_timeout, evaluation_interval and the SD refresh interval. */
  interval: string;
}

/** The compose stack's addresses in infra/prometheus/prometheus.yml -> the live ones. */
function addressFor(original: string, a: LiveAddresses): string {
  const map: Record<string, string> = {
    'gateway:9400': a.gatewayOps,
    'rabbitmq:15692': a.rabbitmq,
    'localhost:9090': a.prometheus,
  };
  const to = map[original];
  if (!to) throw new Error(`prometheus.yml scrapes ${original}: tell live-stack.ts where that is`);
  return to;
}

/**
 * The project's prometheus.yml for a local run. Changes ONLY: the intervals, every target
 * address, the HTTP SD URL (the gateway's /sd/prometheus on its local ops port) and, on the
 * rabbitmq_prometheus detailed endpoint, a `vhost` parameter so the per-queue series are this
 * run's queues only. Everything else (jobs, relabelling, metrics paths, families, rule files) is
 * kept; configChanges() lists what differs and the live test asserts it is nothing more.
 */
export function rewritePrometheusConfig(
  original: PrometheusConfig,
  a: LiveAddresses,
): PrometheusConfig {
  const c = structuredClone(original);
  c.global = {
    ...c.global,
    scrape_interval: a.interval,
    scrape_timeout: a.interval,
    evaluation_interval: a.interval,
  };
  for (const job of c.scrape_configs) {
    for (const sc of job.static_configs ?? []) sc.targets = sc.targets.map((t) => addressFor(t, a));
    for (const sd of job.http_sd_configs ?? []) {
      const u = new URL(sd.url);
      if (u.pathname !== '/sd/prometheus') throw new Error(`unexpected HTTP SD URL ${sd.url}`);
      sd.url = `http://${addressFor(u.host, a)}${u.pathname}${u.search}`;
      sd.refresh_interval = a.interval;
    }
    if (job.metrics_path === '/metrics/detailed') job.params = { ...job.params, vhost: [a.vhost] };
  }
  return c;
}

/** JSON-pointer-like paths where two configs differ (for asserting what the rewrite touched). */
export function configChanges(a: unknown, b: unknown, at = ''): string[] {
  if (a === b) return [];
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
  if (!isObj(a) || !isObj(b) || Array.isArray(a) !== Array.isArray(b)) return [at || '/'];
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].flatMap((k) => configChanges(a[k], b[k], `${at}/${k}`));
}

/** What rewritePrometheusConfig may change (configChanges paths, indices as \d+). */
export const ALLOWED_CONFIG_CHANGES: readonly RegExp[] = [
  /^\/global\/(scrape_interval|scrape_timeout|evaluation_interval)$/,
  /^\/scrape_configs\/\d+\/static_configs\/\d+\/targets\/\d+$/,
  /^\/scrape_configs\/\d+\/http_sd_configs\/\d+\/(url|refresh_interval)$/,
  /^\/scrape_configs\/\d+\/params\/vhost$/,
];

/**
 * The rule files, copied as they are except for the `for:` of the alerts named in `forOverrides`
 * (alerts the test expects to fire, whose `for:` is longer than the test). Returns file -> YAML.
 */
export function rewriteRules(forOverrides: Record<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  const unused = new Set(Object.keys(forOverrides));
  for (const file of ruleFiles()) {
    const rules = loadRuleFile(file);
    for (const group of rules.groups)
      for (const rule of group.rules) {
        const override = rule.alert ? forOverrides[rule.alert] : undefined;
        if (rule.alert && override !== undefined) {
          rule.for = override;
          unused.delete(rule.alert);
        }
      }
    out.set(path.basename(file), stringifyYaml(rules, { lineWidth: 0 }));
  }
  if (unused.size > 0) throw new Error(`no alert named ${[...unused].join(', ')} in the rules`);
  return out;
}

// ---------------------------------------------------------------- Prometheus HTTP API

export interface PromSeries {
  metric: Record<string, string>;
  value?: [number, string];
  values?: [number, string][];
}

export interface PromAlert {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
  value: string;
  activeAt: string;
}

export interface PromRule {
  name: string;
  query: string;
  type: 'recording' | 'alerting';
  health: string;
  lastError?: string;
  state?: string;
  labels?: Record<string, string>;
}

export interface PromRuleGroup {
  name: string;
  file: string;
  lastEvaluation: string;
  rules: PromRule[];
}

export interface PromTarget {
  labels: Record<string, string>;
  scrapePool: string;
  scrapeUrl: string;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
}

/** A query Prometheus refused (parse or execution error). */
export class PromQueryError extends Error {
  constructor(
    readonly errorType: string,
    message: string,
  ) {
    super(message);
    this.name = 'PromQueryError';
  }
}

export class PromApi {
  constructor(readonly base: string) {}

  private async get<T>(pathAndQuery: string): Promise<T> {
    const res = await fetch(`${this.base}${pathAndQuery}`, { signal: AbortSignal.timeout(15_000) });
    const body = (await res.json()) as {
      status: string;
      data: T;
      errorType?: string;
      error?: string;
    };
    if (body.status !== 'success')
      throw new PromQueryError(body.errorType ?? `http ${res.status}`, body.error ?? 'no error');
    return body.data;
  }

  /** Instant query at `time` (seconds, default now). */
  async query(expr: string, time?: number): Promise<PromSeries[]> {
    const q = new URLSearchParams({ query: expr });
    if (time !== undefined) q.set('time', String(time));
    const data = await this.get<{ resultType: string; result: PromSeries[] | [number, string] }>(
      `/api/v1/query?${q}`,
    );
    if (data.resultType === 'scalar')
      return [{ metric: {}, value: data.result as [number, string] }];
    return data.result as PromSeries[];
  }

  /** Range query; start and end in seconds, step in seconds. */
  async queryRange(expr: string, start: number, end: number, step: number): Promise<PromSeries[]> {
    const q = new URLSearchParams({
      query: expr,
      start: String(start),
      end: String(end),
      step: String(step),
    });
    const data = await this.get<{ result: PromSeries[] }>(`/api/v1/query_range?${q}`);
    return data.result;
  }

  async alerts(): Promise<PromAlert[]> {
    return (await this.get<{ alerts: PromAlert[] }>('/api/v1/alerts')).alerts;
  }

  async rules(): Promise<PromRuleGroup[]> {
    return (await this.get<{ groups: PromRuleGroup[] }>('/api/v1/rules')).groups;
  }

  async targets(): Promise<PromTarget[]> {
    return (await this.get<{ activeTargets: PromTarget[] }>('/api/v1/targets?state=active'))
      .activeTargets;
  }
}

/** A sample value as a number (Prometheus sends them as strings: "NaN", "+Inf", "0.25"). */
export const sampleValue = (s: PromSeries): number => Number(s.value?.[1] ?? NaN);

// ---------------------------------------------------------------- processes

export interface PrometheusProc {
  child: ChildProcess;
  port: number;
  api: PromApi;
  dir: string;
  configFile: string;
  config: PrometheusConfig;
  original: PrometheusConfig;
  output(): string;
  stop(): Promise<void>;
}

/** Runs the real Prometheus binary on its own free port and temp dir (config, rules, TSDB). */
export async function startPrometheus(
  addresses: Omit<LiveAddresses, 'prometheus'>,
  forOverrides: Record<string, string> = {},
): Promise<PrometheusProc> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'warren-live-prometheus-'));
  const original = parseYaml(readFileSync(PROMETHEUS_CONFIG, 'utf8')) as PrometheusConfig;
  const config = rewritePrometheusConfig(original, {
    ...addresses,
    prometheus: `127.0.0.1:${port}`,
  });
  const configFile = path.join(dir, 'prometheus.yml');
  writeFileSync(configFile, stringifyYaml(config, { lineWidth: 0 }));
  // rule_files stays `rules/*.yml`, relative to the config file, as in the repository.
  mkdirSync(path.join(dir, 'rules'));
  for (const [name, text] of rewriteRules(forOverrides))
    writeFileSync(path.join(dir, 'rules', name), text);

  const proc = startProcess(
    findPrometheusTool('prometheus'),
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { cwd: dir, label: 'prometheus' },
  );
  const stop = async () => {
    await proc.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForHttp(`http://127.0.0.1:${port}/-/ready`, 200, 30_000);
  } catch (err) {
    await stop();
    throw new Error(
      `${(err as Error).message}\nprometheus output:\n${proc.output().slice(-3000)}`,
      {
        cause: err,
      },
    );
  }
  return {
    child: proc.child,
    port,
    api: new PromApi(`http://127.0.0.1:${port}`),
    dir,
    configFile,
    config,
    original,
    output: proc.output,
    stop,
  };
}

export interface ServiceProc {
  name: string;
  proc: Proc;
  opsPort: number;
}

export interface LiveStack {
  vhost: TestVhost;
  gateway: { proc: Proc; port: number; opsPort: number; url: (p: string) => string };
  services: ServiceProc[];
  prometheus: PrometheusProc;
  /** Starts one more fixture service (tests/fixtures/live-service.js) under `name`. */
  startFixture(name: string, env?: Record<string, string>): Promise<ServiceProc>;
  /** Service names in the gateway's registry with a live instance. */
  registered(): Promise<string[]>;
  stop(): Promise<void>;
}

export interface LiveStackOptions {
  /** Names of the fixture services: one that fails, one that is slow. */
  flaky: string;
  slow: string;
  /** Alerts whose `for:` is shortened in Prometheus' temp copy of the rules. */
  forOverrides?: Record<string, string>;
  /** Scrape and evaluation interval (default 1s). */
  interval?: string;
  log?: (line: string) => void;
}

/** The project's own services, run from their built dist (npm run build). */
export const PROJECT_SERVICES = ['hello', 'echo', 'wordcount'] as const;

const QUIET = { LOG_LEVEL: 'warn' };
/** The local broker's rabbitmq_prometheus plugin. */
const RABBITMQ_PROMETHEUS = '127.0.0.1:15692';

/** Starts everything; on failure stops what it started. */
export async function startLiveStack(options: LiveStackOptions): Promise<LiveStack> {
  const log = options.log ?? (() => undefined);
  const rabbitmqMetrics = await fetch(`http://${RABBITMQ_PROMETHEUS}/metrics`, {
    signal: AbortSignal.timeout(5000),
  }).then(
    (res) => res.arrayBuffer().then(() => res.status),
    () => 0,
  );
  if (rabbitmqMetrics !== 200)
    throw new Error(
      `rabbitmq_prometheus does not answer on ${RABBITMQ_PROMETHEUS}: ` +
        '`rabbitmq-plugins enable rabbitmq_prometheus` (works offline) and retry',
    );
  const vhost = await createVhost(await testAmqpUrl(), 'warren-live');
  const started: Proc[] = [];
  let prometheus: PrometheusProc | undefined;
  const services: ServiceProc[] = [];
  const serviceEnv = (opsPort: number) => ({
    ...QUIET,
    AMQP_URL: vhost.url,
    METRICS_PORT: String(opsPort),
    ADVERTISE_HOST: '127.0.0.1',
    HEARTBEAT_INTERVAL_MS: '1000',
    AMQP_CONNECT_RETRIES: '5',
  });
  const startService = async (
    name: string,
    script: string,
    env: Record<string, string> = {},
  ): Promise<ServiceProc> => {
    const opsPort = await freePort();
    const proc = startNode(script, { ...serviceEnv(opsPort), ...env });
    started.push(proc);
    const s = { name, proc, opsPort };
    services.push(s);
    return s;
  };
  const ready = async (s: { proc: Proc; opsPort: number }) => {
    await Promise.race([
      waitForHttp(`http://127.0.0.1:${s.opsPort}/readyz`, 200, 60_000),
      s.proc.exited.then((code) => {
        throw new Error(`process exited (${code}) before ready:\n${s.proc.output().slice(-2000)}`);
      }),
    ]);
  };
  const stopAllStarted = async () => {
    await Promise.all(started.map((p) => p.stop()));
    await prometheus?.stop();
    await vhost.remove();
  };

  try {
    const port = await freePort();
    const opsPort = await freePort();
    const gatewayProc = startNode('services/gateway/dist/main.js', {
      ...QUIET,
      AMQP_URL: vhost.url,
      PORT: String(port),
      METRICS_PORT: String(opsPort),
      HOST: '127.0.0.1',
      GATEWAY_ACCESS_LOG: 'false',
      AMQP_CONNECT_RETRIES: '5',
    });
    started.push(gatewayProc);
    const gateway = {
      proc: gatewayProc,
      port,
      opsPort,
      url: (p: string) => `http://127.0.0.1:${port}${p}`,
    };
    for (const name of PROJECT_SERVICES) await startService(name, `services/${name}/dist/main.js`);
    await startService(options.flaky, 'tests/fixtures/live-service.js', {
      SERVICE_NAME: options.flaky,
      EVENTS: 'live.*',
    });
    await startService(options.slow, 'tests/fixtures/live-service.js', {
      SERVICE_NAME: options.slow,
    });
    const promStarted = startPrometheus(
      {
        gatewayOps: `127.0.0.1:${opsPort}`,
        gatewayHttp: `127.0.0.1:${port}`,
        rabbitmq: RABBITMQ_PROMETHEUS,
        vhost: vhost.name,
        interval: options.interval ?? '1s',
      },
      options.forOverrides,
    ).then((p) => (prometheus = p));
    await ready(gateway);
    await Promise.all(services.map(ready));
    await promStarted;
    log(
      `stack up on vhost ${vhost.name}: gateway :${port} (ops :${opsPort}), ${services.length} services, prometheus :${prometheus?.port}`,
    );

    const registered = async (): Promise<string[]> => {
      const res = await fetch(gateway.url('/v1/services'));
      const body = (await res.json()) as { services: { name: string; instances: unknown[] }[] };
      return body.services.filter((s) => s.instances.length > 0).map((s) => s.name);
    };
    const want = services.map((s) => s.name);
    await eventually(registered, 30_000, `${want.join(', ')} in the registry`, {
      until: (have) => want.every((n) => have.includes(n)),
      intervalMs: 200,
    });
    const prom = prometheus as unknown as PrometheusProc;
    return {
      vhost,
      gateway,
      services,
      prometheus: prom,
      registered,
      startFixture: async (name, env = {}) => {
        const s = await startService(name, 'tests/fixtures/live-service.js', {
          SERVICE_NAME: name,
          ...env,
        });
        await ready(s);
        return s;
      },
      stop: stopAllStarted,
    };
  } catch (err) {
    await stopAllStarted().catch(() => undefined);
    throw err;
  }
}

// ---------------------------------------------------------------- load

export interface LoadOp {
  /** What the request is for, e.g. `rpc echo`; counts are kept per op and status. */
  name: string;
  path: string;
  body: string;
  contentType?: string;
}

/** The mixed load of the live check: one cycle of requests, repeated. */
export function mixedLoadCycle(flaky: string, slow: string): LoadOp[] {
  const json = (name: string, p: string, body: unknown): LoadOp => ({
    name,
    path: p,
    body: JSON.stringify(body),
  });
  const text = 'the quick brown fox jumps over the lazy dog and the dog sleeps';
  const accepted: LoadOp[] = [
    { name: 'async hello', path: '/v1/hello', body: 'world', contentType: 'text/plain' },
    json('async echo', '/v1/echo', { n: 1 }),
    json('async wordcount', '/v1/wordcount', { text }),
    json(`async ${flaky}`, `/v1/${flaky}`, { ms: 5 }),
    json(`async ${slow}`, `/v1/${slow}`, { ms: 40 }),
  ];
  const calls: LoadOp[] = [
    json('rpc echo', '/v1/echo?wait=true', { hello: 'world' }),
    json('rpc wordcount', '/v1/wordcount?wait=true', { text, top: 3 }),
    { name: 'rpc hello', path: '/v1/hello?wait=true', body: 'rpc', contentType: 'text/plain' },
    json(`rpc ${flaky}`, `/v1/${flaky}?wait=true`, { ms: 2 }),
  ];
  return [
    ...accepted,
    ...calls,
    ...accepted,
    json(`transient failure ${flaky}`, `/v1/${flaky}`, { fail: 'transient' }),
    ...calls,
    json(`rpc ok ${slow}`, `/v1/${slow}?wait=true&timeoutMs=5000`, { ms: 30 }),
    ...accepted,
    json(`rpc invalid ${flaky}`, `/v1/${flaky}?wait=true`, { fail: 'invalid' }),
    // Events: through the gateway to flaky (live.*) and echo (echo.#), and from flaky's handler.
    json('event live.tick', '/v1/events/live.tick', { n: 1 }),
    json('event echo.hello', '/v1/events/echo.hello', { n: 2 }),
    json(`rpc publish ${flaky}`, `/v1/${flaky}?wait=true`, { publish: 'echo.from-flaky' }),
    { name: 'bad json', path: '/v1/echo', body: '{"oops": ', contentType: 'application/json' },
    ...calls,
    json('unknown service', '/v1/no-such-service', {}),
    { name: 'bad media type', path: '/v1/echo', body: '<a/>', contentType: 'application/xml' },
    ...accepted,
    ...calls,
    // Last in the cycle, 1 request in 43: a 504 share (~2%) well under the 5xx alert's 5%.
    json(`rpc timeout ${slow}`, `/v1/${slow}?wait=true&timeoutMs=150`, { ms: 600 }),
  ];
}

export class Load {
  /** op name -> status -> count (status 0: no answer). */
  readonly counts = new Map<string, Map<number, number>>();
  private readonly extra: LoadOp[] = [];
  private running = false;
  private loop: Promise<void> | undefined;
  private inFlight = new Set<Promise<void>>();

  constructor(
    private readonly baseUrl: string,
    private readonly cycle: readonly LoadOp[],
    /** Pause between requests in ms; a function of elapsed ms lets the rate vary over time. */
    private readonly pauseMs: number | ((elapsedMs: number) => number) = 60,
    private readonly maxInFlight = 8,
  ) {}

  /** Adds ops sent once per cycle from now on (e.g. to a service started mid-run). */
  add(...ops: LoadOp[]): void {
    this.extra.push(...ops);
  }

  total(filter: (op: string, status: number) => boolean = () => true): number {
    let n = 0;
    for (const [op, byStatus] of this.counts)
      for (const [status, c] of byStatus) if (filter(op, status)) n += c;
    return n;
  }

  byStatus(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const byStatus of this.counts.values())
      for (const [status, c] of byStatus) out[status] = (out[status] ?? 0) + c;
    return out;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const began = Date.now();
    this.loop = (async () => {
      while (this.running) {
        for (const op of [...this.cycle, ...this.extra]) {
          if (!this.running) break;
          while (this.inFlight.size >= this.maxInFlight) await Promise.race(this.inFlight);
          const p = this.send(op).finally(() => this.inFlight.delete(p));
          this.inFlight.add(p);
          const pause =
            typeof this.pauseMs === 'number' ? this.pauseMs : this.pauseMs(Date.now() - began);
          await sleep(pause);
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await Promise.all(this.inFlight);
  }

  private async send(op: LoadOp): Promise<void> {
    let status: number;
    try {
      const res = await fetch(`${this.baseUrl}${op.path}`, {
        method: 'POST',
        body: op.body,
        headers: { 'content-type': op.contentType ?? 'application/json' },
        signal: AbortSignal.timeout(15_000),
      });
      await res.arrayBuffer();
      status = res.status;
    } catch {
      status = 0;
    }
    const byStatus = this.counts.get(op.name) ?? new Map<number, number>();
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
    this.counts.set(op.name, byStatus);
  }
}

// ---------------------------------------------------------------- alert expressions

/**
 * The expression with every comparison made a `bool` comparison (`x > 3` -> `x > bool 3`), so it
 * returns its input series with 0 or 1 instead of filtering them: a silent alert whose bool form
 * returns series is silent over data that exists, not because a metric is missing.
 */
export function boolComparisons(expr: string): string {
  let out = '';
  let braces = 0;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i] as string;
    if (c === '"' || c === "'" || c === '`') {
      let j = i + 1;
      while (j < expr.length && expr[j] !== c) j += expr[j] === '\\' && c !== '`' ? 2 : 1;
      out += expr.slice(i, j + 1);
      i = j;
      continue;
    }
    if (c === '{') braces++;
    if (c === '}') braces--;
    if (braces === 0) {
      const op = /^(==|!=|>=|<=|>|<)/.exec(expr.slice(i))?.[1];
      if (op) {
        out += op;
        i += op.length - 1;
        if (!/^\s*bool\b/.test(expr.slice(i + 1))) out += ' bool';
        continue;
      }
    }
    out += c;
  }
  return out;
}
