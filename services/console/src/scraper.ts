// Scrapes every live instance's /metrics and the broker's queue depths once per interval, into the history.
import http from 'node:http';
import type { Logger } from '@warren/observability';
import type { History, Scrape } from './history';
import { parsePrometheusText } from './prom-text';
import { FAMILIES, countersOf, type Counters } from './stats';

/** The instances to scrape: the registry's live view. */
export interface Directory {
  list(): { name: string; instances: { instanceId: string; metricsUrl: string }[] }[];
}

export interface ScraperOptions {
  directory: Directory;
  history: History;
  logger: Logger;
  intervalMs: number;
  /** The gateway's /metrics (it does not announce itself); none = not scraped. */
  gatewayMetricsUrl: string | undefined;
  /** rabbitmq_prometheus's per-queue endpoint; none = no queue depths. */
  brokerMetricsUrl: string | undefined;
  /** Only queues of this vhost (the broker may serve several). */
  vhost: string;
  /** Told after each round (the live page's push). */
  onRound?: () => void;
}

const DEPTH = 'rabbitmq_detailed_queue_messages';

/** Kept-alive connections to every target: a scrape every interval should not cost a TCP setup. */
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

/** The body of a 200 answer, or undefined (error, other status, timeout); plain http, https via fetch. */
function fetchText(url: string, timeoutMs: number): Promise<string | undefined> {
  if (!url.startsWith('http:'))
    return fetch(url, { signal: AbortSignal.timeout(timeoutMs) }).then(
      (res) => (res.ok ? res.text() : undefined),
      () => undefined,
    );
  return new Promise((resolve) => {
    const req = http.get(url, { agent, timeout: timeoutMs }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return resolve(undefined);
      }
      res.setEncoding('utf8');
      let body = '';
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

export class Scraper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** Rounds done (tests and /api/overview read it). */
  rounds = 0;

  constructor(private readonly options: ScraperOptions) {}

  start(): void {
    const tick = () => {
      // A slow round is not overlapped by the next one.
      this.running ??= this.round().finally(() => (this.running = undefined));
    };
    tick();
    this.timer = setInterval(tick, this.options.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  async round(): Promise<void> {
    const { directory, history, intervalMs } = this.options;
    const timeout = Math.max(500, Math.floor(intervalMs / 2));
    const targets: { service: string; instanceId: string; url: string }[] = [];
    for (const s of directory.list())
      for (const i of s.instances)
        targets.push({ service: s.name, instanceId: i.instanceId, url: i.metricsUrl });
    if (this.options.gatewayMetricsUrl)
      targets.push({
        service: 'gateway',
        instanceId: 'gateway',
        url: this.options.gatewayMetricsUrl,
      });
    const [scrapes, depths] = await Promise.all([
      Promise.all(
        targets.map(async (t): Promise<Scrape> => {
          const text = await fetchText(t.url, timeout);
          const counters: Counters | undefined =
            text === undefined ? undefined : countersOf(parsePrometheusText(text, FAMILIES));
          return { service: t.service, instanceId: t.instanceId, counters };
        }),
      ),
      this.depths(timeout),
    ]);
    // The gateway's row exists only while its /metrics answers.
    history.record(
      Date.now(),
      scrapes.filter((s) => s.service !== 'gateway' || s.counters !== undefined),
      depths,
    );
    this.rounds++;
    this.options.onRound?.();
  }

  /** Messages per queue of the vhost, from rabbitmq_prometheus (empty when it does not answer). */
  private async depths(timeoutMs: number): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (!this.options.brokerMetricsUrl) return out;
    const text = await fetchText(this.options.brokerMetricsUrl, timeoutMs);
    if (text === undefined) return out;
    for (const s of parsePrometheusText(text, new Set([DEPTH])))
      if (s.labels.vhost === this.options.vhost && s.labels.queue) out.set(s.labels.queue, s.value);
    return out;
  }
}
