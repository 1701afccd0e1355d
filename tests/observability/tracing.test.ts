// One trace across the gateway and a service, exported over OTLP/HTTP (JSON) to a receiver in this test: parent/child links checked.
import { execFile } from 'node:child_process';
import http from 'node:http';
import { promisify } from 'node:util';
import type { AddressInfo } from 'node:net';
import { testAmqpUrl } from '../support/broker';
import { ROOT, freePort, startNode, stopAll } from '../support/processes';
import { createVhost, type TestVhost } from '../support/vhost';
import { eventually } from '../support/time';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: Record<string, unknown> }[];
  status?: { code?: number };
}
interface Received {
  service: string;
  span: OtlpSpan;
}

const KIND = { SERVER: 2, PRODUCER: 4, CONSUMER: 5 };
let receiver: http.Server;
let endpoint: string;
const received: Received[] = [];
const contentTypes = new Set<string>();
const protobufBodies: Buffer[] = [];
let vhost: TestVhost;

/** A minimal OTLP/HTTP trace receiver: POST /v1/traces with JSON (ExportTraceServiceRequest). */
beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    const raw = () => Buffer.concat(chunks);
    req.on('end', () => {
      contentTypes.add(String(req.headers['content-type']));
      if (req.headers['content-type'] === 'application/x-protobuf') protobufBodies.push(raw());
      else if (req.url === '/v1/traces' && req.method === 'POST') {
        const doc = JSON.parse(raw().toString()) as {
          resourceSpans: {
            resource: { attributes: { key: string; value: { stringValue?: string } }[] };
            scopeSpans: { spans: OtlpSpan[] }[];
          }[];
        };
        for (const rs of doc.resourceSpans) {
          const service =
            rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '?';
          for (const ss of rs.scopeSpans)
            for (const span of ss.spans) received.push({ service, span });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  vhost = await createVhost(await testAmqpUrl(), 'warren-trace');
});

afterAll(async () => {
  await stopAll();
  await vhost?.remove();
  await new Promise((r) => receiver.close(r));
});

const attr = (s: OtlpSpan, key: string): unknown => {
  const v = s.attributes.find((a) => a.key === key)?.value;
  return v === undefined ? undefined : Object.values(v)[0];
};

it('follows one call from the HTTP client through the gateway, the broker and echo, and back', async () => {
  const otel = {
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '100',
  };
  const port = await freePort();
  const gateway = startNode('services/gateway/dist/main.js', {
    ...otel,
    AMQP_URL: vhost.url,
    PORT: String(port),
    METRICS_PORT: '0',
    HOST: '127.0.0.1',
  });
  const echo = startNode('services/echo/dist/main.js', {
    ...otel,
    AMQP_URL: vhost.url,
    METRICS_PORT: '0',
  });
  await Promise.all([
    gateway.waitFor(/gateway ready/, 30_000),
    echo.waitFor(/service ready/, 30_000),
  ]);

  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const clientSpan = '00f067aa0ba902b7';
  let res: Response | undefined;
  await eventually(
    async () => {
      res = await fetch(`http://127.0.0.1:${port}/v1/echo?wait=true`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          traceparent: `00-${traceId}-${clientSpan}-01`,
        },
        body: '{"hi":1}',
      });
      return res.status === 200;
    },
    15_000,
    'echo answering',
  );
  expect(await res?.text()).toBe('{"hi":1}');

  const inTrace = () => received.filter((r) => r.span.traceId === traceId);
  const find = (service: string, kind: number, name: string) =>
    inTrace().find((r) => r.service === service && r.span.kind === kind && r.span.name === name)
      ?.span;
  await eventually(
    () =>
      !!find('gateway', KIND.SERVER, 'POST /v1/:service') &&
      !!find('gateway', KIND.PRODUCER, 'publish echo') &&
      !!find('echo', KIND.CONSUMER, 'process echo') &&
      !!find('echo', KIND.PRODUCER, 'publish reply'),
    15_000,
    'the four spans of the call exported',
  );
  const server = find('gateway', KIND.SERVER, 'POST /v1/:service') as OtlpSpan;
  const publish = find('gateway', KIND.PRODUCER, 'publish echo') as OtlpSpan;
  const process = find('echo', KIND.CONSUMER, 'process echo') as OtlpSpan;
  const reply = find('echo', KIND.PRODUCER, 'publish reply') as OtlpSpan;
  // The chain: client -> gateway server -> gateway publish -> echo process -> echo reply.
  expect(server.parentSpanId).toBe(clientSpan);
  expect(publish.parentSpanId).toBe(server.spanId);
  expect(process.parentSpanId).toBe(publish.spanId);
  expect(reply.parentSpanId).toBe(process.spanId);
  // Messaging semantic conventions.
  expect(attr(publish, 'messaging.system')).toBe('rabbitmq');
  expect(attr(publish, 'messaging.destination.name')).toBe('echo');
  expect(attr(publish, 'messaging.operation.type')).toBe('send');
  expect(typeof attr(publish, 'messaging.message.id')).toBe('string');
  expect(attr(process, 'messaging.operation.type')).toBe('process');
  expect(attr(process, 'messaging.message.id')).toBe(attr(publish, 'messaging.message.id'));
  expect(attr(process, 'warren.outcome')).toBe('success');
  expect(attr(server, 'http.response.status_code')).toBe(200);
  expect(contentTypes.has('application/json')).toBe(true);

  // A request without a traceparent starts a new trace at the gateway (a root server span).
  const plain = await fetch(`http://127.0.0.1:${port}/v1/echo`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"n":2}',
  });
  expect(plain.status).toBe(202);
  await eventually(
    () =>
      received.some(
        (r) =>
          r.service === 'echo' &&
          r.span.kind === KIND.CONSUMER &&
          r.span.traceId !== traceId &&
          received.some(
            (g) =>
              g.service === 'gateway' &&
              g.span.kind === KIND.SERVER &&
              g.span.traceId === r.span.traceId &&
              !g.span.parentSpanId,
          ),
      ),
    15_000,
    'a new trace rooted at the gateway',
  );
});

it('exports with protobuf by default, named after the process unless OTEL_SERVICE_NAME says', async () => {
  const before = received.length;
  const script = `
    const { tracingFromEnv } = require('./libs/observability/dist/tracing.js');
    const t = tracingFromEnv(process.env, { serviceName: 'svc', instanceId: 'i-1' });
    const span = t.start('work', 'internal', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    process.stdout.write(span.traceparent);
    span.end();
    t.shutdown();`;
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], {
    cwd: ROOT,
    env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SERVICE_NAME: 'renamed' },
  });
  expect(stdout).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
  await eventually(() => protobufBodies.length > 0, 10_000, 'a protobuf export');
  expect(contentTypes.has('application/x-protobuf')).toBe(true);
  const body = Buffer.concat(protobufBodies);
  expect(body.includes(Buffer.from('renamed'))).toBe(true);
  expect(body.includes(Buffer.from('work'))).toBe(true);
  expect(received.length).toBe(before);
});
