// Shared helpers for the gateway integration tests: in-process gateway, raw AMQP access, metric reads.
import { connect, type Channel, type ChannelModel, type GetMessage } from 'amqplib';
import net from 'node:net';
import { Writable } from 'node:stream';
import { retryQueueName } from '@warren/protocol';
import { DEFAULTS } from '@warren/service-kit';
import { startGateway, type RunningGateway } from '../../services/gateway/src/gateway';
import { eventually } from '../support/time';

export interface TestGateway extends RunningGateway {
  url: (path: string) => string;
  logs: () => string;
}

/**
 * A gateway in this process on free ports; logs are kept in memory (read them with logs()).
 * Queue-delay shedding is off unless `env` sets GATEWAY_SHED_TARGET_MS.
 */
export async function startTestGateway(
  amqpUrl: string,
  env: Record<string, string> = {},
): Promise<TestGateway> {
  let out = '';
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out += chunk.toString();
      cb();
    },
  });
  const gw = await startGateway({
    env: {
      AMQP_URL: amqpUrl,
      PORT: '0',
      METRICS_PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      GATEWAY_REGISTRY_GRACE_MS: '0',
      AMQP_CONNECT_RETRIES: '0',
      // Queue-delay shedding off unless a test turns it on (shedding.test.ts): a burst of calls
      // from a test, on a machine busy with the other suites, may queue past its target and be shed.
      GATEWAY_SHED_TARGET_MS: '0',
      ...env,
    },
    logDestination: destination,
  });
  return Object.assign(gw, {
    url: (path: string) => `http://127.0.0.1:${gw.port}${path}`,
    logs: () => out,
  });
}

export interface PostOptions {
  contentType?: string | null;
  headers?: Record<string, string>;
}

export function post(
  gw: TestGateway,
  path: string,
  body: string | Buffer,
  options: PostOptions = {},
): Promise<Response> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.contentType !== null)
    headers['content-type'] = options.contentType ?? 'application/json';
  return fetch(gw.url(path), { method: 'POST', body, headers });
}

/** Reads one sample of a metric from the gateway's registry (0 when the series does not exist). */
export async function metricValue(
  gw: RunningGateway,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = gw.metrics.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  const hit = values.find(
    (v) =>
      (v as { metricName?: string }).metricName === undefined &&
      Object.entries(labels).every(([k, val]) => String(v.labels[k]) === val),
  );
  return hit?.value ?? 0;
}

/** Sum of a histogram's _count samples matching the labels. */
export async function histogramCount(
  gw: RunningGateway,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const metric = gw.metrics.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  return values
    .filter(
      (v) =>
        (v as { metricName?: string }).metricName === `${name}_count` &&
        Object.entries(labels).every(([k, val]) => String(v.labels[k]) === val),
    )
    .reduce((a, v) => a + v.value, 0);
}

/** A plain amqplib connection for declaring queues and reading raw messages. */
export class RawAmqp {
  private constructor(
    readonly conn: ChannelModel,
    readonly ch: Channel,
    /** The broker user of this connection (what an AMQP `user-id` must say). */
    readonly user: string,
  ) {}

  static async open(url: string): Promise<RawAmqp> {
    const conn = await connect(url);
    const ch = await conn.createChannel();
    return new RawAmqp(conn, ch, decodeURIComponent(new URL(url).username) || 'guest');
  }

  /** Waits for the next message on `queue` (acked), or fails after `timeoutMs`. */
  async take(queue: string, timeoutMs = 5000): Promise<GetMessage> {
    const msg = await eventually(
      () => this.ch.get(queue, { noAck: true }),
      timeoutMs,
      `a message on ${queue}`,
      {
        intervalMs: 25,
      },
    );
    return msg as GetMessage;
  }

  /** Whether a queue exists: 'exclusive' when another connection owns it (RESOURCE_LOCKED). */
  async queueState(name: string): Promise<'missing' | 'exists' | 'exclusive'> {
    const ch = await this.conn.createChannel();
    ch.on('error', () => undefined);
    try {
      await ch.checkQueue(name);
      await ch.close();
      return 'exists';
    } catch (err) {
      return (err as { code?: number }).code === 405 ? 'exclusive' : 'missing';
    }
  }

  async queueExists(name: string): Promise<boolean> {
    return (await this.queueState(name)) !== 'missing';
  }

  async deleteQueues(...names: string[]): Promise<void> {
    for (const n of names) await this.ch.deleteQueue(n).catch(() => undefined);
  }

  /** Deletes what runService declares for a service: its queue, retry queues and DLQ. */
  async deleteServiceQueues(name: string): Promise<void> {
    await this.deleteQueues(
      name,
      `${name}.dlq`,
      ...DEFAULTS.retryDelaysMs.map((d) => retryQueueName(name, d)),
    );
  }

  async close(): Promise<void> {
    await this.conn.close().catch(() => undefined);
  }
}

/** Env for an in-process consumer service started with runService. */
export function serviceEnv(amqpUrl: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    AMQP_URL: amqpUrl,
    METRICS_PORT: '0',
    HEARTBEAT_INTERVAL_MS: '200',
    LOG_LEVEL: 'silent',
    AMQP_CONNECT_RETRIES: '0',
    ...extra,
  };
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  requestId: string;
}

/** Asserts a problem+json answer and returns its body. */
export async function expectProblem(res: Response, status: number): Promise<Problem> {
  const text = await res.text();
  if (res.status !== status)
    throw new Error(`expected status ${status}, got ${res.status}: ${text.slice(0, 500)}`);
  const ct = res.headers.get('content-type');
  if (ct !== 'application/problem+json') throw new Error(`expected problem+json, got ${ct}`);
  const body = JSON.parse(text) as Problem;
  for (const k of ['type', 'title', 'status', 'detail', 'requestId'] as const)
    if (body[k] === undefined) throw new Error(`problem lacks ${k}: ${text}`);
  if (body.status !== status) throw new Error(`problem.status ${body.status} != ${status}`);
  if (body.requestId !== res.headers.get('x-request-id'))
    throw new Error('problem requestId differs from the x-request-id header');
  return body;
}

export interface FakeBeat {
  service: string;
  instanceId: string;
  intervalMs?: number;
  state?: 'up' | 'stopping';
  metricsUrl?: string;
}

/** Publishes one heartbeat as a service instance would (service-kit's Heartbeat JSON). */
export async function sendHeartbeat(amqp: RawAmqp, beat: FakeBeat): Promise<void> {
  await amqp.ch.assertExchange('warren.heartbeat', 'fanout', { durable: true });
  const body = {
    service: beat.service,
    instanceId: beat.instanceId,
    host: 'test-host',
    metricsUrl: beat.metricsUrl ?? 'http://10.1.2.3:9464/metrics',
    version: '1.2.3',
    queue: beat.service,
    pid: 1,
    startedAt: new Date().toISOString(),
    intervalMs: beat.intervalMs ?? 200,
    state: beat.state ?? 'up',
  };
  amqp.ch.publish('warren.heartbeat', '', Buffer.from(JSON.stringify(body)), {
    contentType: 'application/json',
    type: 'warren.heartbeat',
    // As the service-kit does: the broker checks it against this connection's user (the
    // gateway's own here, so it is believed).
    userId: amqp.user,
  });
}

export interface RawResponse {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string>;
  body: string;
}

/** Request line and headers as raw HTTP/1.1 bytes (Host added), ending with the blank line. */
export function rawHead(
  method: string,
  path: string,
  headers: Record<string, string> = {},
): string {
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1'];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/**
 * A raw TCP client for edge tests: sends exactly the bytes it is given (partial heads, stalled or
 * endless bodies), counts the bytes the kernel took, and parses the responses that come back.
 */
export class RawConnection {
  private received = Buffer.alloc(0);
  private consumed = 0;
  /** The server ended or reset the connection (or it was destroyed here). */
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.received = Buffer.concat([this.received, d]);
    });
    socket.on('end', () => (this.closed = true));
    socket.on('close', () => (this.closed = true));
    // A reset after the server answered and closed is expected (it will not read the rest).
    socket.on('error', () => (this.closed = true));
  }

  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('connect', () => resolve(new RawConnection(socket)));
      socket.once('error', reject);
    });
  }

  /** Bytes received so far. */
  get bytesReceived(): number {
    return this.received.length;
  }

  /** Resolves when the kernel took `data`; false if the connection failed instead. */
  write(data: string | Buffer): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.socket.destroyed || !this.socket.writable) return resolve(false);
      this.socket.write(data, (err) => resolve(!err));
    });
  }

  /**
   * Writes `chunk` over and over until the connection fails or closes, or `max` bytes went out;
   * resolves with the number of bytes the kernel took.
   */
  async pump(chunk: Buffer, max: number): Promise<number> {
    let written = 0;
    while (written < max && !this.closed && (await this.write(chunk))) written += chunk.length;
    return written;
  }

  /** The next complete response on this connection (waits up to `timeoutMs`). */
  async response(timeoutMs = 10_000): Promise<RawResponse> {
    const next = () => parseResponse(this.received.subarray(this.consumed));
    await eventually(() => next() !== undefined, timeoutMs, 'a response');
    const parsed = next();
    if (!parsed) throw new Error('no response');
    this.consumed += parsed.size;
    return parsed.res;
  }

  /** Waits until the server has closed the connection. */
  async whenClosed(timeoutMs = 10_000): Promise<void> {
    await eventually(() => this.closed, timeoutMs, 'the server to close the connection');
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function parseResponse(buf: Buffer): { res: RawResponse; size: number } | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(lines[0] ?? '')?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const length = Number(headers['content-length'] ?? 0);
  if (buf.length < end + 4 + length) return undefined;
  const body = buf.subarray(end + 4, end + 4 + length).toString('utf8');
  return { res: { status, headers, body }, size: end + 4 + length };
}
