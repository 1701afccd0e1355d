// The gateway's request pipeline: direct POST /v1/<name> vs express routes, access log lines, rate-limit headers, trust proxy.
import { testAmqpUrl, uniqueName } from '../support/broker';
import { RawAmqp, expectProblem, post, startTestGateway, type TestGateway } from './helpers';
import { sleep } from '../support/time';

const queue = uniqueName('gw-pipe');

let amqp: RawAmqp;
let gw: TestGateway;
let proxied: TestGateway;

interface AccessLine {
  level: string;
  msg: string;
  requestId: string;
  traceparent: string;
  req: { method: string; url: string; remoteAddress: string };
  res: { statusCode: number };
  responseTime: number;
}

/** The access-log line of one request (pino writes asynchronously: poll briefly). */
async function accessLine(g: TestGateway, requestId: string): Promise<AccessLine> {
  for (let i = 0; i < 50; i++) {
    for (const raw of g.logs().split('\n')) {
      if (!raw.includes(requestId)) continue;
      const line = JSON.parse(raw) as AccessLine;
      if (line.req !== undefined) return line;
    }
    await sleep(20);
  }
  throw new Error(`no access line for ${requestId}`);
}

beforeAll(async () => {
  const url = await testAmqpUrl();
  amqp = await RawAmqp.open(url);
  await amqp.ch.assertQueue(queue, { durable: false });
  gw = await startTestGateway(url, { GATEWAY_RATE_LIMIT: '1000' });
  proxied = await startTestGateway(url, { GATEWAY_RATE_LIMIT: '2', GATEWAY_TRUST_PROXY: '1' });
});

afterAll(async () => {
  await gw?.stop();
  await proxied?.stop();
  await amqp?.deleteQueues(queue);
  await amqp?.close();
});

it('serves the direct path and the express routes with the same headers and log lines', async () => {
  const direct = await post(gw, `/v1/${queue}?wait=false`, '{"a":1}', {
    headers: { 'x-request-id': 'pipe-direct-1' },
  });
  expect(direct.status).toBe(202);
  const routed = await fetch(gw.url('/v1/services'), {
    headers: { 'x-request-id': 'pipe-routed-1' },
  });
  expect(routed.status).toBe(200);
  const missing = await fetch(gw.url('/nowhere'), { headers: { 'x-request-id': 'pipe-404-1' } });
  await expectProblem(missing, 404);
  for (const res of [direct, routed, missing]) {
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(res.headers.get('x-powered-by')).toBeNull();
  }
  // /v1 answers carry the rate-limit state (IETF draft 7); others are not limited.
  expect(direct.headers.get('ratelimit-policy')).toBe('1000;w=60');
  expect(direct.headers.get('ratelimit')).toMatch(/^limit=1000, remaining=\d+, reset=\d+$/);
  expect(routed.headers.get('ratelimit')).toMatch(/^limit=1000, remaining=\d+, reset=\d+$/);
  expect(missing.headers.get('ratelimit')).toBeNull();

  const line = await accessLine(gw, 'pipe-direct-1');
  expect(line).toMatchObject({
    level: 'info',
    msg: 'request completed',
    req: { method: 'POST', url: `/v1/${queue}?wait=false`, remoteAddress: '127.0.0.1' },
    res: { statusCode: 202 },
  });
  expect(line.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  expect(line.responseTime).toBeGreaterThanOrEqual(0);
  expect((await accessLine(gw, 'pipe-routed-1')).res.statusCode).toBe(200);
  expect((await accessLine(gw, 'pipe-404-1')).res.statusCode).toBe(404);
});

it('decodes percent-encoded names like express did, and refuses broken escapes with 400', async () => {
  const encoded = `/v1/${queue.replace(/-/g, '%2D')}`;
  expect((await post(gw, encoded, '{}')).status).toBe(202);
  const broken = await post(gw, '/v1/%E0%A4%A', '{}');
  const problem = await expectProblem(broken, 400);
  expect(problem.detail).toContain('percent-encoded');
});

it('routes the forms the direct path leaves to express: trailing slash, other methods, deeper paths', async () => {
  expect((await post(gw, `/v1/${queue}/`, '{}')).status).toBe(202);
  const put = await fetch(gw.url(`/v1/${queue}`), { method: 'PUT', body: '{}' });
  await expectProblem(put, 405);
  expect(put.headers.get('allow')).toBe('POST');
  await expectProblem(await post(gw, `/v1/${queue}/x`, '{}'), 404);
  const reserved = await expectProblem(await post(gw, '/v1/services', '{}'), 404);
  expect(reserved.detail).toContain('reserved');
  await expectProblem(await post(gw, '/v1/', '{}'), 404);
});

it('takes the client address from X-Forwarded-For behind a trusted proxy (log and limit)', async () => {
  const from = (ip: string, id: string) =>
    post(proxied, `/v1/${queue}`, '{}', { headers: { 'x-forwarded-for': ip, 'x-request-id': id } });
  expect((await from('203.0.113.7', 'pipe-xff-1')).status).toBe(202);
  expect((await from('203.0.113.7', 'pipe-xff-2')).status).toBe(202);
  await expectProblem(await from('203.0.113.7', 'pipe-xff-3'), 429);
  // Another client behind the same proxy has its own budget.
  expect((await from('198.51.100.9', 'pipe-xff-4')).status).toBe(202);
  expect((await accessLine(proxied, 'pipe-xff-1')).req.remoteAddress).toBe('203.0.113.7');
  const refused = await accessLine(proxied, 'pipe-xff-3');
  expect(refused.res.statusCode).toBe(429);
  expect(refused.msg).toBe('request completed');
});
