// Gateway API keys (env and file), constant-time check, keys never logged, per-key / per-IP rate limit.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { testAmqpUrl, uniqueName } from '../support/broker';
import { RawAmqp, expectProblem, post, startTestGateway, type TestGateway } from './helpers';
import { sleep } from '../support/time';

const KEY_A = 'key-a-0123456789abcdef';
const KEY_B = 'key-b-fedcba9876543210';
const KEY_FILE = 'key-f-from-the-file-0001';
const queue = uniqueName('gw-auth');

let amqp: RawAmqp;
let keyed: TestGateway;
let open: TestGateway;
let dir: string;

beforeAll(async () => {
  const url = await testAmqpUrl();
  amqp = await RawAmqp.open(url);
  await amqp.ch.assertQueue(queue, { durable: false });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-keys-'));
  fs.writeFileSync(path.join(dir, 'keys'), `# gateway keys\n${KEY_FILE}\n\n`);
  keyed = await startTestGateway(url, {
    GATEWAY_API_KEYS: `${KEY_A}, ${KEY_B}`,
    GATEWAY_API_KEYS_FILE: path.join(dir, 'keys'),
    GATEWAY_RATE_LIMIT: '5',
  });
  open = await startTestGateway(url, { GATEWAY_RATE_LIMIT: '3' });
});

afterAll(async () => {
  await keyed?.stop();
  await open?.stop();
  await amqp?.deleteQueues(queue);
  await amqp?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('API keys', () => {
  it('answers 401 problem+json without a key or with a wrong one', async () => {
    let res = await post(keyed, `/v1/${queue}`, '{}');
    const problem = await expectProblem(res, 401);
    expect(problem.type).toBe('urn:warren:error:unauthorized');
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    res = await post(keyed, `/v1/${queue}`, '{}', {
      headers: { authorization: `Bearer ${KEY_A}x` },
    });
    await expectProblem(res, 401);
    res = await post(keyed, `/v1/${queue}`, '{}', { headers: { 'x-api-key': KEY_A.slice(0, -1) } });
    await expectProblem(res, 401);
    res = await post(keyed, `/v1/${queue}`, '{}', { headers: { authorization: `Basic ${KEY_A}` } });
    await expectProblem(res, 401);
    await expectProblem(await fetch(keyed.url('/v1/services')), 401);
  });

  it('accepts Bearer and x-api-key, keys from the env and from the file', async () => {
    const variants: Record<string, string>[] = [
      { authorization: `Bearer ${KEY_A}` },
      { authorization: `bearer ${KEY_B}` },
      { 'x-api-key': KEY_A },
      { 'x-api-key': KEY_FILE },
    ];
    for (const headers of variants) {
      const res = await post(keyed, `/v1/${queue}`, '{}', { headers });
      expect(res.status).toBe(202);
    }
    expect(
      (await fetch(keyed.url('/v1/services'), { headers: { 'x-api-key': KEY_B } })).status,
    ).toBe(200);
  });

  it('serves /sd/prometheus on the public port only with a key (the ops port serves it to Prometheus)', async () => {
    const anonymous = await fetch(keyed.url('/sd/prometheus'));
    await expectProblem(anonymous, 401);
    const keyedRes = await fetch(keyed.url('/sd/prometheus'), { headers: { 'x-api-key': KEY_A } });
    expect(keyedRes.status).toBe(200);
    expect(Array.isArray(await keyedRes.json())).toBe(true);
    expect((await fetch(`http://127.0.0.1:${keyed.opsPort}/sd/prometheus`)).status).toBe(200);
  });

  it('never logs a key', async () => {
    await sleep(200); // pino writes asynchronously
    const logs = keyed.logs();
    expect(logs).toContain('request completed');
    for (const k of [KEY_A, KEY_B, KEY_FILE]) expect(logs).not.toContain(k);
    expect(logs).not.toContain('key-');
  });

  it('rate-limits per key: 429 + Retry-After past GATEWAY_RATE_LIMIT, other keys unaffected', async () => {
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 8; i++) {
      last = await post(keyed, `/v1/${queue}`, '{}', { headers: { 'x-api-key': KEY_FILE } });
      statuses.push(last.status);
      if (last.status !== 429) await last.body?.cancel();
    }
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    expect(statuses.slice(0, 4)).toEqual([202, 202, 202, 202]); // 1 earlier request + 4 = limit 5
    const problem = await expectProblem(last as Response, 429);
    expect(problem.type).toBe('urn:warren:error:rate-limited');
    const retryAfter = Number(last?.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // KEY_B has its own budget.
    const res = await post(keyed, `/v1/${queue}`, '{}', { headers: { 'x-api-key': KEY_B } });
    expect(res.status).toBe(202);
  });

  it('counts requests without a valid key against the client IP (key guessing is throttled)', async () => {
    // 5 wrong-key attempts earlier in this file already used this IP's budget of 5.
    const res = await post(keyed, `/v1/${queue}`, '{}', {
      headers: { 'x-api-key': 'guess-0123456789abcdef' },
    });
    await expectProblem(res, 429);
    // A valid key is unaffected.
    const ok = await post(keyed, `/v1/${queue}`, '{}', {
      headers: { authorization: `Bearer ${KEY_A}` },
    });
    expect(ok.status).toBe(202);
  });

  it('rate-limits per client IP when the gateway is open', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await post(open, `/v1/${queue}`, '{}');
      statuses.push(res.status);
      if (res.status === 429) await expectProblem(res, 429);
      else await res.body?.cancel();
    }
    expect(statuses).toEqual([202, 202, 202, 429, 429]);
  });
});
