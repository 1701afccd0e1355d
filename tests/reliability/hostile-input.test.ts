// Scenario 7 — hostile input: over 2,000 generated malformed requests, sent as raw bytes (so the
// client library cannot tidy them up), against a gateway with API keys on a throwaway vhost whose
// queues wait, without consumers, for anything that slips through. Every answer must be a 4xx
// problem+json in bounded time, the process stays up, its memory stays bounded and no queue gets
// a message.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { isUtf8 } from 'node:buffer';
import { declareServiceTopology } from '@warren/messaging';
import { testAmqpUrl } from '../support/broker';
import { createVhost, type TestVhost } from '../support/vhost';
import { stopAll } from '../support/processes';
import { Amqp } from './support/amqp';
import { rawRequest, type RawAnswer, type RawRequest } from './support/raw-http';
import { startGatewayProc, type GatewayProc } from './support/stack';
import { mb, recordScenario, seconds } from './support/results';
import { metricSum } from '../support/prom-text';
import { sleep, scaled } from '../support/time';

const run = promisify(execFile);
jest.setTimeout(scaled(240_000));

const KEY = 'reliability-hostile-0123456789abcdef';
const MAX_BODY = 1024 * 1024;
const ANSWER_TIMEOUT_MS = 10_000;
const CONCURRENCY = 16;
/**
 * Memory bound: bodies are buffered up to the 1 MB limit, 16 requests at a time (a body and its
 * decoded string, several MB each, plus parser buffers): far below this however long it runs.
 */
const RSS_CEILING = 256 * 1024 * 1024;
const ROUNDS = 2;
const STALLED = 8;
/** Queues the gateway must never put a hostile request on (declared before the run). */
const DECOYS = ['victim', 'hello', 'hello.dlq', 'victim.x', 'ünïcödé', 'victim/dlq', 'Victim'];

interface Case {
  category: string;
  req: RawRequest;
}

// ------------------------------------------------------------------ the generator (seeded)

function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rnd = prng(7);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
const int = (n: number) => Math.floor(rnd() * n);

function randomJson(depth = 0): unknown {
  const k = int(depth > 3 ? 3 : 6);
  if (k === 0) return int(1e6) - 5e5;
  if (k === 1) return pick(['', 'héllo', 'a"b', 'x\\y', '\u2603', 'line\nbreak']);
  if (k === 2) return pick([true, false, null]);
  if (k === 3) return Array.from({ length: int(4) }, () => randomJson(depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = 0; i < int(5); i++) o[`k${i}`] = randomJson(depth + 1);
  return o;
}

const isJson = (b: Buffer): boolean => {
  if (!isUtf8(b)) return false;
  try {
    JSON.parse(b.toString('utf8'));
    return true;
  } catch {
    return false;
  }
};

interface Shape {
  method?: string;
  path?: string;
  /** Header lines after Host; `null` value = leave the header out. */
  headers?: Record<string, string | null>;
  body?: Buffer | string;
  key?: boolean;
  host?: boolean;
  /** Override Content-Length (`null` = none). */
  contentLength?: string | null;
  chunks?: number;
  pauseMs?: number;
  extra?: string[];
}

function request(s: Shape): RawRequest {
  const body = s.body === undefined ? Buffer.from('{"ok":true}') : Buffer.from(s.body);
  const lines = [`${s.method ?? 'POST'} ${s.path ?? '/v1/victim'} HTTP/1.1`];
  if (s.host !== false) lines.push('Host: 127.0.0.1');
  const headers: Record<string, string | null> = {
    'Content-Type': 'application/json',
    ...(s.key === false ? {} : { 'X-Api-Key': KEY }),
    ...s.headers,
  };
  for (const [k, v] of Object.entries(headers)) if (v !== null) lines.push(`${k}: ${v}`);
  const cl = s.contentLength === undefined ? String(body.length) : s.contentLength;
  if (cl !== null) lines.push(`Content-Length: ${cl}`);
  lines.push(...(s.extra ?? []));
  return {
    head: lines.join('\r\n'),
    body,
    chunks: s.chunks,
    pauseMs: s.pauseMs,
    timeoutMs: ANSWER_TIMEOUT_MS,
  };
}

/** A service name that matches the pattern but has no queue: a request that got through answers 404. */
let nosuchSeq = 0;
const nosuch = () => `/v1/nosuch-${nosuchSeq++}`;

function brokenJson(n: number): Case[] {
  const types = [
    'application/json',
    'application/json; charset=utf-8',
    'application/vnd.warren+json',
    'APPLICATION/JSON',
  ];
  const out: Case[] = [];
  for (let i = 0; i < n; i++) {
    const good = Buffer.from(JSON.stringify({ n: i, v: randomJson() }));
    const text = good.toString('utf8');
    const at = 1 + int(text.length - 1);
    let bad: Buffer;
    switch (i % 10) {
      case 0:
        bad = Buffer.from(text.slice(0, at));
        break;
      case 1:
        bad = Buffer.from(
          text.slice(0, at) + pick(['{', '[', ',', ':', '"', "'", '\\']) + text.slice(at),
        );
        break;
      case 2:
        bad = Buffer.from(text.replace(/"/g, "'"));
        break;
      case 3:
        bad = Buffer.from(text + pick(['x', '}', ',', ' 1', ']', '\u0000']));
        break;
      case 4:
        bad = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), good]);
        break;
      case 5:
        bad = Buffer.from(
          pick([
            '{"a":NaN}',
            '{"a":Infinity}',
            '{"a":undefined}',
            '{"a":1,}',
            '[1,]',
            '/* c */{}',
            '{a:1}',
            "{'a':1}",
            '{"a":01}',
            '{"a":0x10}',
            '{"a":.5}',
            '{"a":"\\x41"}',
          ]),
        );
        break;
      case 6: {
        const inv = pick([
          [0xc3, 0x28],
          [0xff],
          [0xed, 0xa0, 0x80],
          [0xf8, 0x88, 0x80, 0x80, 0x80],
          [0xc0, 0xaf],
        ]);
        bad = Buffer.concat([Buffer.from('{"s":"'), Buffer.from(inv), Buffer.from('"}')]);
        break;
      }
      case 7:
        bad = Buffer.alloc(0);
        break;
      case 8:
        bad = Buffer.from(`{"s":"${'x'.repeat(1000 + int(300_000))}`);
        break;
      default:
        bad = Buffer.from(`{"s":"a${String.fromCharCode(1 + int(31))}b"}`);
    }
    if (isJson(bad)) bad = Buffer.concat([bad, Buffer.from('}')]);
    out.push({
      category: 'broken JSON',
      req: request({
        path: i % 4 === 0 ? '/v1/victim?wait=true' : '/v1/victim',
        headers: { 'Content-Type': pick(types) },
        body: bad,
      }),
    });
  }
  return out;
}

function deepJson(n: number): Case[] {
  const depths = [129, 130, 200, 1000, 5000, 20_000, 100_000, 400_000];
  const shapes: [string, string][] = [
    ['[', ']'],
    ['{"a":', '}'],
    ['[{"a":', '}]'],
    ['{"a":[', ']}'],
  ];
  return Array.from({ length: n }, (_, i) => {
    const d = depths[i % depths.length] as number;
    const [open, close] = shapes[Math.floor(i / depths.length) % shapes.length] as [string, string];
    const body = `${open.repeat(d)}1${close.repeat(d)}`;
    return { category: 'deeply nested JSON', req: request({ body }) };
  });
}

function hugeBodies(n: number): Case[] {
  const big = Buffer.alloc(MAX_BODY + 512 * 1024, 0x61);
  const variants: Shape[] = [
    { contentLength: '10737418240', body: '{"a":' },
    { body: Buffer.concat([Buffer.from('{"a":"'), big, Buffer.from('"}')]), chunks: 24 },
    {
      contentLength: null,
      extra: ['Transfer-Encoding: chunked'],
      body: chunked(Buffer.concat([Buffer.from('["'), big, Buffer.from('"]')]), 65_536),
      chunks: 24,
    },
    { contentLength: '-1' },
    { contentLength: '1e3' },
    { contentLength: '0x10' },
    { contentLength: '99999999999999999999999' },
    { contentLength: '1,2' },
    { contentLength: '11', extra: ['Content-Length: 12'] },
  ];
  return Array.from({ length: n }, (_, i) => ({
    category: 'huge bodies and lying lengths',
    req: request(variants[i % variants.length] as Shape),
  }));
}

function chunked(body: Buffer, size: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < body.length; i += size) {
    const c = body.subarray(i, i + size);
    parts.push(Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

function slowBodies(n: number): Case[] {
  return Array.from({ length: n }, (_, i) => ({
    category: 'slow bodies',
    req: request({
      // 2 KB over 2 s, then it turns out not to be JSON (or to be far too deep).
      body: i % 2 ? `{"s":"${'x'.repeat(2000)}` : `${'['.repeat(1000)}${']'.repeat(1000)}`,
      chunks: 20,
      pauseMs: 100,
    }),
  }));
}

function contentTypes(n: number): Case[] {
  const bad: (string | null)[] = [
    null,
    '',
    'application/xml',
    'text',
    'text/',
    'json',
    'application/jsonp',
    'application/json+xml',
    'multipart/form-data; boundary=x',
    'application/x-www-form-urlencoded',
    'image/png',
    '*/*',
    'application/*',
    'application',
    ';',
    '; charset=utf-8',
    `application/json; x=${'a'.repeat(300)}`,
    'application/json\u00e9',
    'application/\u007fjson',
    'app/json',
    'application/javascript',
    'application/yaml',
    'application/cbor',
    'video/mp4',
    'application/ json',
  ];
  return Array.from({ length: n }, (_, i) => {
    const ct = bad[i % bad.length] as string | null;
    return {
      category: 'wrong or missing content type',
      req: request({
        path: i % 3 === 0 ? '/v1/victim?wait=true' : '/v1/victim',
        headers: { 'Content-Type': ct },
      }),
    };
  });
}

function names(n: number): Case[] {
  const paths = [
    '/v1/amq.rabbitmq.reply-to',
    '/v1/amq.default',
    '/v1/amq.gen-abc',
    '/v1/hello.dlq',
    '/v1/victim.dlq',
    '/v1/victim.retry.1000',
    '/v1/warren.heartbeat',
    '/v1/warren.gateway.registry.x',
    '/v1/services',
    '/v1/gateway',
    '/v1/registry',
    '/v1/heartbeat',
    '/v1/warren',
    '/v1/.',
    '/v1/..',
    '/v1/%2e',
    '/v1/%2e%2e',
    '/v1/victim%2Edlq',
    '/v1/victim%2edlq',
    '/v1/victim%2Fdlq',
    '/v1/victim%2fx',
    '/v1/%2F',
    '/v1/%2e%2e%2fvictim',
    '/v1/victim%00',
    '/v1/%00',
    '/v1/victim%20',
    '/v1/%20victim',
    '/v1/victim%0d%0aX-Injected:%201',
    '/v1/VICTIM',
    '/v1/%C3%BCn%C3%AFc%C3%B6d%C3%A9',
    '/v1/\u00fcn\u00efc\u00f6d\u00e9',
    '/v1/%F0%9F%90%87',
    '/v1/victim%',
    '/v1/%zz',
    '/v1/%252e%252e',
    '/v1/victim%252Fdlq',
    `/v1/${'a'.repeat(64)}`,
    `/v1/${'a'.repeat(5000)}`,
    '/v1/1victim',
    '/v1/-victim',
    '/v1/victim_x',
    '/v1/victim;x',
    '/v1/victim.x',
    '/v1//victim',
    '/v1/victim/..',
    '/v1/victim/extra',
    '/v1/../v1/victim.dlq',
    '/v1/./victim.dlq',
    '/v1',
    '/v1/',
    '/',
    '/metrics',
    '/sd/prometheus',
    '//v1/victim.dlq',
    '/v1/victim\\..\\dlq',
    '/v1/hello%2Edlq',
    '/v1/Victim',
  ];
  return Array.from({ length: n }, (_, i) => ({
    category: 'invalid and reserved service names',
    req: request({
      path: `${paths[i % paths.length] as string}${i % 5 === 4 ? '?wait=true' : ''}`,
    }),
  }));
}

function malformedHeaders(n: number): Case[] {
  const variants: Shape[] = [
    { path: nosuch(), headers: { 'X-Big': 'a'.repeat(20_000) } },
    { path: nosuch(), extra: Array.from({ length: 300 }, (_, i) => `X-H${i}: ${'v'.repeat(80)}`) },
    { path: `/v1/victim?pad=${'p'.repeat(20_000)}` },
    { path: nosuch(), extra: ['Bad Header: x'] },
    { path: nosuch(), extra: ['NoColonHere'] },
    { path: nosuch(), extra: ['X-Nul: a\u0000b'] },
    { path: nosuch(), extra: ['X-Ctl: a\u0001b'] },
    { path: nosuch(), extra: ['X-Del: a\u007fb'] },
    { path: nosuch(), extra: ['X-Fold: a', ' folded'] },
    { path: nosuch(), extra: ['Transfer-Encoding: chunked'] },
    { path: nosuch(), contentLength: null, extra: ['Transfer-Encoding: gzip'] },
    {
      path: nosuch(),
      contentLength: null,
      extra: ['Transfer-Encoding: chunked'],
      body: 'zz\r\nab\r\n0\r\n\r\n',
    },
    { path: nosuch(), host: false },
    { path: nosuch(), extra: ['Host: other.example'] },
    { path: nosuch(), extra: [': empty-name'] },
    { path: nosuch(), extra: ['X-Space : x'] },
    { path: nosuch(), headers: { 'X-Unicode': '\u00e9\u00e8' } },
    { path: nosuch(), headers: { Expect: '100-continue-please' } },
    { path: nosuch(), extra: ['Connection: Upgrade', 'Upgrade: websocket'] },
  ];
  // Lines Node's parser may take leniently go to a name without a queue (a 404 if parsed); the
  // version-less (HTTP/0.9) and HTTP/2.0 lines go to the real queue: they must be refused.
  const lines: ((nosuchPath: string) => string)[] = [
    () => 'POST /v1/victim HTTP/2.0',
    () => 'POST /v1/victim',
    () => 'POST /v1/victim HTTP/0.9',
    (p) => `POST ${p} HTTP/1.1 extra`,
    (p) => `post ${p} HTTP/1.1`,
    (p) => `P\u0000ST ${p} HTTP/1.1`,
    (p) => `POST\t${p} HTTP/1.1`,
    (p) => `POST  ${p} HTTP/1.1`,
    (p) => `POST ${p} HTTP/1.1\r`,
    (p) => `BREW ${p} HTTP/1.1`,
    (p) => `POST http://evil.example${p} HTTP/1.1`,
    () => 'CONNECT 127.0.0.1:5672 HTTP/1.1',
    () => '\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u0001\u00fc\u0003\u0003',
  ];
  const out: Case[] = [];
  for (let i = 0; i < n; i++) {
    if (i % 3 === 2) {
      const path = nosuch();
      const line = (lines[Math.floor(i / 3) % lines.length] as (p: string) => string)(path);
      const req = request({ path });
      req.head = [line, ...req.head.split('\r\n').slice(1)].join('\r\n');
      out.push({ category: 'malformed request lines', req });
    } else {
      const v = variants[i % variants.length] as Shape;
      out.push({
        category: 'oversized and malformed headers',
        req: request({ ...v, path: v.path?.startsWith('/v1/nosuch') ? nosuch() : v.path }),
      });
    }
  }
  return out;
}

function badIds(n: number): Case[] {
  const ids = [
    '',
    'short',
    'a'.repeat(200),
    'has space in it',
    '<script>alert(1)</script>',
    '../../etc/passwd',
    '-leading-dash-id',
    'semi;colon;id;x',
    '"},{"injected":1',
    'id\u00e9\u00e9\u00e9\u00e9\u00e9',
    'x'.repeat(8000),
    '${jndi:ldap://x}',
    '00000000-0000-0000-0000-000000000000, other',
  ];
  const traces = [
    '',
    'garbage',
    `00-${'0'.repeat(32)}-${'1'.repeat(16)}-01`,
    `00-${'1'.repeat(32)}-${'0'.repeat(16)}-01`,
    `ff-${'1'.repeat(32)}-${'1'.repeat(16)}-01`,
    `00-${'A'.repeat(32)}-${'1'.repeat(16)}-01`,
    `00-${'1'.repeat(31)}-${'1'.repeat(16)}-01`,
    `00-${'1'.repeat(32)}-${'1'.repeat(16)}-01-extra`,
    `00-${'1'.repeat(32)}-${'1'.repeat(16)}-01${'x'.repeat(5000)}`,
    '00-zz-zz-zz',
  ];
  const queries = [
    '?wait=maybe',
    '?wait=true&timeoutMs=abc',
    '?wait=true&timeoutMs=-1',
    '?wait=true&timeoutMs=0',
    '?wait=true&timeoutMs=1e3',
    '?wait=true&timeoutMs=9999999999',
    '?type=1bad',
    `?type=${'a'.repeat(200)}`,
    '?type=a%20b',
    '?wait=true&wait=false',
    '?type=a&type=b',
  ];
  const out: Case[] = [];
  for (let i = 0; i < n; i++) {
    const k = i % 4;
    if (k === 0 || k === 1)
      // A bad id or trace alone is replaced, not refused: these go to a name with no queue (404).
      out.push({
        category: 'bad x-request-id / traceparent',
        req: request({
          path: nosuch(),
          headers: { 'X-Request-Id': pick(ids), traceparent: pick(traces) },
        }),
      });
    else if (k === 2)
      out.push({
        category: 'bad x-request-id / traceparent',
        req: request({
          headers: {
            'X-Request-Id': pick(ids),
            'X-Warren-Action': pick(['1x', '', 'a b', 'é', 'x'.repeat(300)]),
          },
        }),
      });
    else
      out.push({
        category: 'bad query parameters',
        req: request({
          path: `/v1/victim${pick(queries)}`,
          headers: { traceparent: pick(traces) },
        }),
      });
  }
  return out;
}

function badKeys(n: number): Case[] {
  const variants: Record<string, string | null>[] = [
    { 'X-Api-Key': null },
    { 'X-Api-Key': '' },
    { 'X-Api-Key': 'wrong-key-0123456789' },
    { 'X-Api-Key': `${KEY}x` },
    { 'X-Api-Key': KEY.slice(0, -1) },
    { 'X-Api-Key': KEY.toUpperCase() },
    { 'X-Api-Key': 'k'.repeat(5000) },
    { 'X-Api-Key': `${KEY}\u00e9` },
    { 'X-Api-Key': null, Authorization: 'Bearer ' },
    { 'X-Api-Key': null, Authorization: 'Bearer wrong-key-0123456789' },
    { 'X-Api-Key': null, Authorization: `Basic ${Buffer.from(`user:${KEY}`).toString('base64')}` },
    { 'X-Api-Key': null, Authorization: KEY },
    { 'X-Api-Key': null, Authorization: `Bearer${KEY}` },
    { 'X-Api-Key': null, 'Api-Key': KEY },
    { 'X-Api-Key': null, Authorization: `Bearer ${KEY.slice(1)}` },
  ];
  return Array.from({ length: n }, (_, i) => ({
    category: 'bad API keys',
    req: request({
      path: i % 2 ? '/v1/victim' : '/v1/victim?wait=true',
      headers: variants[i % variants.length],
    }),
  }));
}

function methods(n: number): Case[] {
  const ms = ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE'];
  const paths = ['/v1/victim', '/v1/hello.dlq', '/v1/services', '/sd/prometheus', '/'];
  return Array.from({ length: n }, (_, i) => ({
    category: 'wrong methods',
    req: request({
      method: ms[i % ms.length],
      path: paths[Math.floor(i / ms.length) % paths.length],
    }),
  })).filter((c) => !/^GET \/(v1\/services|sd\/prometheus) /.test(c.req.head));
}

function generate(): Case[] {
  return [
    ...brokenJson(500),
    ...deepJson(120),
    ...hugeBodies(40),
    ...slowBodies(30),
    ...contentTypes(250),
    ...names(400),
    ...malformedHeaders(240),
    ...badIds(320),
    ...badKeys(300),
    ...methods(60),
  ];
}

// ------------------------------------------------------------------ the run

interface Verdict {
  category: string;
  answer: RawAnswer;
  ok: boolean;
  why?: string;
  head: string;
}

function judge(c: Case, a: RawAnswer): Verdict {
  const v = { category: c.category, answer: a, head: c.req.head.slice(0, 120) };
  if (a.status === -1) return { ...v, ok: false, why: 'no answer (hang)' };
  if (a.status === 0) return { ...v, ok: false, why: 'connection closed without an answer' };
  if (a.status < 400 || a.status > 499) return { ...v, ok: false, why: `status ${a.status}` };
  if (a.headers['content-type'] !== 'application/problem+json')
    return { ...v, ok: false, why: `content-type ${a.headers['content-type']}` };
  let p: { status?: unknown; requestId?: unknown; type?: unknown };
  try {
    p = JSON.parse(a.body) as typeof p;
  } catch {
    return { ...v, ok: false, why: 'body is not JSON' };
  }
  if (p.status !== a.status || typeof p.type !== 'string')
    return { ...v, ok: false, why: 'problem fields' };
  if (typeof p.requestId !== 'string' || p.requestId !== a.headers['x-request-id'])
    return { ...v, ok: false, why: 'requestId missing or not echoed' };
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]{7,127}$/.test(p.requestId))
    return { ...v, ok: false, why: `unsafe requestId echoed: ${p.requestId.slice(0, 40)}` };
  return { ...v, ok: true };
}

async function pool<T, R>(items: T[], n: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i] as T);
      }
    }),
  );
  return out;
}

async function queueDepths(vhost: string): Promise<Map<string, number>> {
  const { stdout } = await run('rabbitmqctl', [
    '-q',
    'list_queues',
    '-p',
    vhost,
    '--no-table-headers',
    'name',
    'messages',
  ]);
  const out = new Map<string, number>();
  for (const line of stdout.split('\n')) {
    const m = /^(.*)\t(\d+)$/.exec(line);
    if (m) out.set(m[1] as string, Number(m[2]));
  }
  return out;
}

let vhost: TestVhost;
let amqp: Amqp;
let gateway: GatewayProc;

beforeAll(async () => {
  vhost = await createVhost(await testAmqpUrl(), 'warren-rel-hostile');
  amqp = await Amqp.open(vhost.url);
  const ch = await amqp.conn.createChannel();
  await declareServiceTopology(ch, { name: 'victim', kind: 'durable', retryDelaysMs: [1000] });
  for (const q of DECOYS) await ch.assertQueue(q, { durable: true });
  await ch.close();
  gateway = await startGatewayProc(vhost.url, { GATEWAY_API_KEYS: KEY });
});

afterAll(async () => {
  await stopAll();
  await amqp?.close();
  await vhost?.remove();
});

it('answers 2,000+ malformed requests with 4xx problem+json, stays up and bounded, enqueues nothing', async () => {
  const cases = generate();
  const before = await queueDepths(vhost.name);
  await sleep(500);
  const rssStart = gateway.rss();

  // Stalled uploads: headers and part of a body, then nothing. Held open during the whole run.
  // (Half of them declare a body over the limit: the gateway reads on to answer 413 at the end.)
  let stalledAnswered = 0;
  for (let i = 0; i < STALLED; i++)
    void rawRequest('127.0.0.1', gateway.port, {
      ...request({ contentLength: String(i % 2 ? 1000 : MAX_BODY + 1), body: '{"a":' }),
      timeoutMs: 600_000,
    }).then(() => stalledAnswered++);

  // Highest RSS seen in each round (it saw-tooths with garbage collection).
  const roundPeak: number[] = [];
  let round = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      roundPeak[round] = Math.max(roundPeak[round] ?? 0, gateway.rss());
      await sleep(100);
    }
  })();
  // Two rounds of the same requests: memory must stay under the ceiling, round after round.
  const started = Date.now();
  const verdicts: Verdict[] = [];
  const rssAfterRound: number[] = [];
  for (; round < ROUNDS; round++) {
    verdicts.push(
      ...(await pool(cases, CONCURRENCY, async (c) =>
        judge(c, await rawRequest('127.0.0.1', gateway.port, c.req)),
      )),
    );
    await sleep(500);
    rssAfterRound.push(gateway.rss());
  }
  const tookMs = Date.now() - started;
  sampling = false;
  await sampler;
  const [rssRound1 = 0, rssRound2 = 0] = rssAfterRound;
  const [peak1 = 0, peak2 = 0] = roundPeak;
  const rssPeak = Math.max(peak1, peak2);

  // While uploads are stalled, everything else is still served.
  const health = await fetch(`http://127.0.0.1:${gateway.opsPort}/healthz`);
  const ready = await gateway.readyz();
  const alive = gateway.proc.child.exitCode === null && gateway.proc.child.signalCode === null;
  const after = await queueDepths(vhost.name);
  const metrics = await gateway.metrics();
  const confirmed = metricSum(metrics, 'gateway_published_messages_total', {
    outcome: 'confirmed',
  });
  const nonEmpty = [...after].filter(([, n]) => n > 0).map(([q, n]) => `${q}: ${n}`);
  const newQueues = [...after.keys()].filter(
    (q) => !before.has(q) && !q.startsWith('warren.gateway.registry.'),
  );

  // Control: one valid request does land on the victim queue (so the check above can see one).
  const control = await rawRequest('127.0.0.1', gateway.port, request({ body: '{"control":1}' }));
  const controlDepth = (await queueDepths(vhost.name)).get('victim');
  const stalledOpen = STALLED - stalledAnswered;
  const unhandled = /unhandled error/.test(gateway.proc.output());

  const failures = verdicts.filter((v) => !v.ok);
  const byCategory: Record<string, { requests: number; statuses: Record<string, number> }> = {};
  for (const v of verdicts) {
    const c = (byCategory[v.category] ??= { requests: 0, statuses: {} });
    c.requests++;
    c.statuses[v.answer.status] = (c.statuses[v.answer.status] ?? 0) + 1;
  }
  const slowest = Math.max(...verdicts.map((v) => v.answer.ms));

  const checks = {
    'at least 2,000 malformed requests (× 2 rounds)': cases.length >= 2000,
    'every answer a 4xx problem+json with an echoed, well-formed requestId': failures.length === 0,
    'no hang (every answer within 10 s)': verdicts.every((v) => v.answer.status !== -1),
    'no 5xx': verdicts.every((v) => v.answer.status < 500),
    'process still up, /healthz and /readyz 200': alive && health.status === 200 && ready === 200,
    'memory bounded: RSS peak < 256 MB': rssPeak < RSS_CEILING,
    'no message on any queue of the vhost': nonEmpty.length === 0,
    'no queue created': newQueues.length === 0,
    'no publish confirmed (gateway_published_messages_total{outcome="confirmed"} = 0)':
      confirmed === 0,
    'no "unhandled error" in the gateway log': !unhandled,
    'control: one valid request is accepted and shows up on the queue':
      control.status === 202 && controlDepth === 1,
  };
  const failed = recordScenario(
    {
      id: 7,
      key: 'hostile-input',
      title: 'Hostile input',
      load: `${cases.length} generated malformed requests × ${ROUNDS} rounds (raw bytes), ${CONCURRENCY} at a time, + ${STALLED} stalled uploads`,
      fault: `${Object.keys(byCategory).length} kinds of malformed input; API keys on`,
      accepted: 0,
      processed: 0,
      lost: 0,
      duplicates: 0,
      recovery: `slowest answer ${slowest} ms; RSS ${mb(rssStart)} MB, peak ${mb(rssPeak)} MB`,
      checks,
      notes: [
        `${cases.length} distinct requests, sent twice: ${verdicts.length} in ${seconds(tookMs)}, answered ${verdicts.length - failures.length} × 4xx problem+json; none accepted, so accepted/processed/lost are 0 by design. Categories and statuses are in the figures.`,
        `Queues of the throwaway vhost (\`victim\` with its retry queue and DLQ, and decoys named like the attacks: ${DECOYS.map((d) => `\`${d}\``).join(', ')}) held ${nonEmpty.length ? nonEmpty.join(', ') : 'no message'} after the run; a control request afterwards did land on \`victim\`.`,
        `Gateway RSS ${mb(rssStart)} MB at start, highest ${mb(peak1)} MB in the first round and ${mb(peak2)} MB in the second (${mb(rssRound2)} MB at the end), under the ${mb(RSS_CEILING)} MB ceiling: bodies up to the 1 MB limit are buffered, larger ones are read and dropped, nothing is kept after the answer. Where under the ceiling the peak lands depends on how many 1 MB bodies happen to be in flight together and on garbage collection.`,
        `Stalled uploads (${STALLED} sockets that sent part of a body and stopped; half of them declared more than the 1 MB limit) were held open for the whole run without slowing the other requests; the server cuts them at its 60 s request timeout (408 problem+json, through the same clientError path), which the suite does not wait for.`,
      ],
      figures: {
        requests: verdicts.length,
        categories: byCategory,
        failures: failures
          .slice(0, 20)
          .map((f) => ({ why: f.why, category: f.category, request: f.head })),
        slowestAnswerMs: slowest,
        gatewayRssMb: {
          start: mb(rssStart),
          afterRound1: mb(rssRound1),
          afterRound2: mb(rssRound2),
          peakRound1: mb(peak1),
          peakRound2: mb(peak2),
        },
        queuesAfter: Object.fromEntries(after),
        stalledUploadsStillOpenAtEnd: stalledOpen,
      },
    },
    __filename,
  );
  expect(
    failures.slice(0, 10).map((f) => `${f.why} <- ${f.category}: ${JSON.stringify(f.head)}`),
  ).toEqual([]);
  expect(failed).toEqual([]);
});
