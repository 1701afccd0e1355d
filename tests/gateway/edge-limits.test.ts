// The gateway's HTTP edge on real sockets and the real broker: early 401/429 without reading the body, JSON shape limits, connection and body-byte caps, timeouts.
import { testAmqpUrl, uniqueName } from '../support/broker';
import {
  RawAmqp,
  RawConnection,
  expectProblem,
  metricValue,
  post,
  rawHead,
  startTestGateway,
  type RawResponse,
  type TestGateway,
} from './helpers';
import { eventually, sleep } from '../support/time';

const KEY = 'edge-key-0123456789abcdef';
const MiB = 1024 * 1024;
const TEN_GB = String(10 * 1024 ** 3);
/** A client writing a body nobody reads gets this far at most (socket buffers), not 10 GB. */
const FEW_BYTES = 64 * MiB;
const queue = uniqueName('gw-edge');
const silent = uniqueName('gw-edge-silent');

let amqp: RawAmqp;
let keyed: TestGateway;

beforeAll(async () => {
  const url = await testAmqpUrl();
  amqp = await RawAmqp.open(url);
  await amqp.ch.assertQueue(queue, { durable: false });
  await amqp.ch.assertQueue(silent, { durable: false });
  keyed = await startTestGateway(url, { GATEWAY_API_KEYS: KEY, GATEWAY_RATE_LIMIT: '0' });
});

afterAll(async () => {
  await keyed?.stop();
  await amqp?.deleteQueues(queue, silent);
  await amqp?.close();
});

function expectRawProblem(res: RawResponse, status: number, slug: string): void {
  expect([res.status, res.headers['content-type']]).toEqual([status, 'application/problem+json']);
  const p = JSON.parse(res.body) as { type: string; status: number; requestId: string };
  expect(p.type).toBe(`urn:warren:error:${slug}`);
  expect(p.status).toBe(status);
  expect(p.requestId).toBe(res.headers['x-request-id']);
}

/** Sends headers declaring a huge body, then body bytes for as long as the server takes them. */
async function endlessUpload(
  gw: TestGateway,
  headers: Record<string, string>,
  chunk = Buffer.alloc(64 * 1024, 0x20),
): Promise<{ res: RawResponse; written: number; conn: RawConnection }> {
  const conn = await RawConnection.open(gw.port);
  await conn.write(rawHead('POST', `/v1/${queue}`, headers));
  const [written, res] = await Promise.all([conn.pump(chunk, 16 * FEW_BYTES), conn.response()]);
  await conn.whenClosed();
  return { res, written, conn };
}

describe('early answers leave the body unread', () => {
  it('answers 401 to a keyless 10 GB upload at once and closes without reading it', async () => {
    const { res, written } = await endlessUpload(keyed, {
      'Content-Type': 'application/json',
      'Content-Length': TEN_GB,
    });
    expectRawProblem(res, 401, 'unauthorized');
    expect(res.headers.connection).toBe('close');
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(written).toBeLessThan(FEW_BYTES);
  });

  it('does the same for a keyless chunked upload of unknown length', async () => {
    const data = Buffer.alloc(64 * 1024 - 16, 0x20);
    const frame = Buffer.concat([
      Buffer.from(`${data.length.toString(16)}\r\n`),
      data,
      Buffer.from('\r\n'),
    ]);
    const { res, written } = await endlessUpload(
      keyed,
      { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' },
      frame,
    );
    expectRawProblem(res, 401, 'unauthorized');
    expect(res.headers.connection).toBe('close');
    expect(written).toBeLessThan(FEW_BYTES);
  });

  it('closes after any other early refusal of a large body, but keeps a small one’s connection', async () => {
    const { res, written } = await endlessUpload(keyed, {
      'Content-Type': 'application/xml',
      'Content-Length': TEN_GB,
      'X-Api-Key': KEY,
    });
    expectRawProblem(res, 415, 'unsupported-media-type');
    expect(res.headers.connection).toBe('close');
    expect(written).toBeLessThan(FEW_BYTES);

    // A few bytes of unread body are cheaper to drop than a new connection: it stays open.
    const conn = await RawConnection.open(keyed.port);
    const small = '<a>tiny</a>';
    await conn.write(
      rawHead('POST', `/v1/${queue}`, {
        'Content-Type': 'application/xml',
        'Content-Length': String(small.length),
        'X-Api-Key': KEY,
      }) + small,
    );
    const refused = await conn.response();
    expectRawProblem(refused, 415, 'unsupported-media-type');
    expect(refused.headers.connection).toBe('keep-alive');
    await conn.write(
      rawHead('POST', `/v1/${queue}`, {
        'Content-Type': 'application/json',
        'Content-Length': '2',
        'X-Api-Key': KEY,
      }) + '{}',
    );
    expect((await conn.response()).status).toBe(202);
    conn.destroy();
    await amqp.take(queue);
  });

  it('answers 429 past the rate limit at once, with Retry-After, and closes without reading the body', async () => {
    const limited = await startTestGateway(await testAmqpUrl(), { GATEWAY_RATE_LIMIT: '1' });
    try {
      const first = await post(limited, `/v1/${queue}`, '{}', {
        headers: { connection: 'close' },
      });
      expect(first.status).toBe(202);
      const { res, written } = await endlessUpload(limited, {
        'Content-Type': 'application/json',
        'Content-Length': TEN_GB,
      });
      expectRawProblem(res, 429, 'rate-limited');
      expect(res.headers.connection).toBe('close');
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      expect(written).toBeLessThan(FEW_BYTES);
    } finally {
      await limited.stop();
    }
    await amqp.take(queue);
  });
});

describe('JSON bodies: shape limits without building the object', () => {
  const send = (body: string) =>
    post(keyed, `/v1/${queue}`, body, { headers: { 'x-api-key': KEY } });

  it('refuses nesting past 128 levels where it happens, accepts 128', async () => {
    const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
    const problem = await expectProblem(await send(deep(129)), 400);
    expect(problem.type).toBe('urn:warren:error:invalid-json');
    expect(problem.detail).toBe(
      'the body is not valid JSON: at byte 128: expected no deeper nesting (at most 128 levels of arrays/objects), found "["',
    );
    expect((await send(deep(128))).status).toBe(202);
    expect((await amqp.take(queue)).content.toString()).toBe(deep(128));
  });

  it('accepts wide bodies up to the 1 MB limit and forwards their bytes', async () => {
    const items = Array.from({ length: (MiB - 2) / 3 - 1 }, () => '{}');
    const wide = `[${items.join(',')}]`;
    expect(wide.length).toBeLessThanOrEqual(MiB);
    expect((await send(wide)).status).toBe(202);
    expect((await amqp.take(queue)).content.equals(Buffer.from(wide))).toBe(true);
    const members = Array.from({ length: 40_000 }, (_, i) => `"k${i}":${i}`);
    expect((await send(`{${members.join(',')}}`)).status).toBe(202);
    await amqp.take(queue);
  });

  it('says where a large body stops being JSON', async () => {
    const body = `[${Array.from({ length: 100_000 }, () => '1').join(',')},]`;
    const problem = await expectProblem(await send(body), 400);
    expect(problem.detail).toBe(
      `the body is not valid JSON: at byte ${body.length - 1}: expected a value, found "]"`,
    );
  });
});

describe('caps', () => {
  it('answers requests on connections past GATEWAY_MAX_CONNECTIONS 503 with Retry-After, closes at accept past the hard limit', async () => {
    const gw = await startTestGateway(await testAmqpUrl(), { GATEWAY_MAX_CONNECTIONS: '2' });
    const open: RawConnection[] = [];
    const openConnections = () => metricValue(gw, 'gateway_open_connections');
    try {
      for (let i = 0; i < 2; i++) open.push(await RawConnection.open(gw.port));
      await eventually(async () => (await openConnections()) === 2, 10_000, '2 open connections');

      const third = await RawConnection.open(gw.port);
      await third.write(
        rawHead('POST', `/v1/${queue}`, {
          'Content-Type': 'application/json',
          'Content-Length': '2',
        }) + '{}',
      );
      const res = await third.response();
      expectRawProblem(res, 503, 'overloaded');
      expect(res.headers['retry-after']).toBe('1');
      expect(res.headers.connection).toBe('close');
      await third.whenClosed();
      expect(
        await metricValue(gw, 'gateway_overload_rejections_total', { reason: 'connections' }),
      ).toBe(1);

      // The first two are served as usual.
      const first = open[0] as RawConnection;
      await first.write(
        rawHead('POST', `/v1/${queue}`, {
          'Content-Type': 'application/json',
          'Content-Length': '2',
        }) + '{}',
      );
      expect((await first.response()).status).toBe(202);
      await amqp.take(queue);

      // Up to the hard limit (2 + 10) connections are accepted (and refused as above); past it
      // node closes them at once, unanswered.
      await eventually(async () => (await openConnections()) === 2, 10_000, 'the third to close');
      for (let i = 2; i < 12; i++) open.push(await RawConnection.open(gw.port));
      await eventually(async () => (await openConnections()) === 12, 10_000, '12 open connections');
      const dropped = await RawConnection.open(gw.port);
      await dropped.whenClosed();
      expect(dropped.bytesReceived).toBe(0);
      expect(
        await metricValue(gw, 'gateway_overload_rejections_total', {
          reason: 'connections_dropped',
        }),
      ).toBe(1);

      // Once connections close, new ones are served again.
      for (const c of open) c.destroy();
      await eventually(
        async () => (await openConnections()) === 0,
        10_000,
        'all connections closed',
      );
      const again = await RawConnection.open(gw.port);
      await again.write(
        rawHead('POST', `/v1/${queue}`, {
          'Content-Type': 'application/json',
          'Content-Length': '2',
          Connection: 'close',
        }) + '{}',
      );
      expect((await again.response()).status).toBe(202);
      await amqp.take(queue);
    } finally {
      for (const c of open) c.destroy();
      await gw.stop();
    }
  });

  it('answers 503 with Retry-After when the bodies being read would pass GATEWAY_MAX_INFLIGHT_BYTES', async () => {
    const gw = await startTestGateway(await testAmqpUrl(), {
      GATEWAY_MAX_BODY: '16kb',
      GATEWAY_MAX_INFLIGHT_BYTES: '32kb',
    });
    const inflight = () => metricValue(gw, 'gateway_inflight_body_bytes');
    const KB16 = 16 * 1024;
    const full = `{"pad":"${'x'.repeat(KB16 - 10)}"}`;
    expect(full.length).toBe(KB16);
    const upload = async (length: number, first: string) => {
      const c = await RawConnection.open(gw.port);
      await c.write(
        rawHead('POST', `/v1/${queue}`, {
          'Content-Type': 'application/json',
          'Content-Length': String(length),
          Connection: 'close',
        }) + first,
      );
      return c;
    };
    const conns: RawConnection[] = [];
    try {
      // Two stalled uploads of 16 KB each hold the whole 32 KB.
      conns.push(await upload(KB16, full.slice(0, 100)), await upload(KB16, full.slice(0, 100)));
      await eventually(async () => (await inflight()) === 2 * KB16, 10_000, '32 KB in flight');

      const third = await upload(2, '{}');
      const res = await third.response();
      expectRawProblem(res, 503, 'overloaded');
      expect(res.headers['retry-after']).toBe('1');
      expect(res.headers.connection).toBe('close');
      expect(
        await metricValue(gw, 'gateway_overload_rejections_total', { reason: 'inflight_bytes' }),
      ).toBe(1);

      // The first finishes: its share comes back, and the next request fits.
      const first = conns[0] as RawConnection;
      await first.write(full.slice(100));
      expect((await first.response()).status).toBe(202);
      await amqp.take(queue);
      await eventually(async () => (await inflight()) === KB16, 10_000, '16 KB in flight');
      expect((await (await upload(2, '{}')).response()).status).toBe(202);
      await amqp.take(queue);

      // A client that leaves mid-body gives its share back too.
      (conns[1] as RawConnection).destroy();
      await eventually(async () => (await inflight()) === 0, 10_000, 'nothing in flight');

      // A body of unknown length (chunked) holds GATEWAY_MAX_BODY while it is read.
      const chunked = await RawConnection.open(gw.port);
      conns.push(chunked);
      await chunked.write(
        rawHead('POST', `/v1/${queue}`, {
          'Content-Type': 'application/json',
          'Transfer-Encoding': 'chunked',
        }) + '1\r\n[\r\n',
      );
      await eventually(async () => (await inflight()) === KB16, 10_000, 'a chunked body in flight');
      await chunked.write('1\r\n]\r\n0\r\n\r\n');
      expect((await chunked.response()).status).toBe(202);
      expect((await amqp.take(queue)).content.toString()).toBe('[]');
      await eventually(async () => (await inflight()) === 0, 10_000, 'nothing in flight');
    } finally {
      for (const c of conns) c.destroy();
      await gw.stop();
    }
  });
});

describe('pending calls', () => {
  it('answers a call past GATEWAY_MAX_PENDING_CALLS 503 at once, with Retry-After, keeping the connection', async () => {
    const gw = await startTestGateway(await testAmqpUrl(), {
      GATEWAY_MAX_PENDING_CALLS: '2',
      GATEWAY_RATE_LIMIT: '0',
    });
    // A consumer that never replies: calls to it stay pending until their timeout.
    const { consumerTag } = await amqp.ch.consume(silent, () => undefined, { noAck: true });
    try {
      const path = `/v1/${silent}?wait=true&timeoutMs=2000`;
      const waiting = [post(gw, path, '{}'), post(gw, path, '{}')];
      await eventually(
        async () => (await metricValue(gw, 'mq_rpc_pending_calls')) === 2,
        10_000,
        'two calls pending',
      );
      // Refused, not queued: a pending call would be answered 504 after its 2 s.
      const refused = await post(gw, path, '{}');
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(refused.headers.get('connection')).not.toBe('close');
      expect((await expectProblem(refused, 503)).type).toBe('urn:warren:error:overloaded');
      expect(
        await metricValue(gw, 'gateway_overload_rejections_total', { reason: 'pending_calls' }),
      ).toBe(1);
      // One-way messages are not calls: still accepted.
      expect((await post(gw, `/v1/${silent}`, '{}')).status).toBe(202);
      // The two time out (504); then a call is taken again.
      for (const res of await Promise.all(waiting)) expect(res.status).toBe(504);
      const again = post(gw, `/v1/${silent}?wait=true&timeoutMs=200`, '{}');
      expect((await again).status).toBe(504);
    } finally {
      await amqp.ch.cancel(consumerTag);
      await gw.stop();
    }
  });
});

describe('timeouts with slow clients', () => {
  let slow: TestGateway;

  beforeAll(async () => {
    slow = await startTestGateway(await testAmqpUrl(), {
      GATEWAY_HEADERS_TIMEOUT_MS: '500',
      GATEWAY_REQUEST_TIMEOUT_MS: '3000',
      GATEWAY_RESPONSE_TIMEOUT_MS: '1000',
      // Calls to the consumer-less queue are published (as if an instance were announcing itself).
      GATEWAY_REGISTRY_GRACE_MS: '600000',
    });
  });

  afterAll(async () => {
    await slow?.stop();
  });

  it('answers 408 and closes when the headers do not arrive within GATEWAY_HEADERS_TIMEOUT_MS', async () => {
    const conn = await RawConnection.open(slow.port);
    await conn.write(`POST /v1/${queue} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: applic`);
    const res = await conn.response();
    expectRawProblem(res, 408, 'request-timeout');
    await conn.whenClosed();
  });

  it('answers 408 and closes when the body stalls past GATEWAY_REQUEST_TIMEOUT_MS, and frees its bytes', async () => {
    const conn = await RawConnection.open(slow.port);
    await conn.write(
      rawHead('POST', `/v1/${queue}`, {
        'Content-Type': 'application/json',
        'Content-Length': '100',
      }) + '{"a":',
    );
    await eventually(
      async () => (await metricValue(slow, 'gateway_inflight_body_bytes')) === 100,
      10_000,
      'the body being read',
    );
    const res = await conn.response();
    expectRawProblem(res, 408, 'request-timeout');
    await conn.whenClosed();
    await eventually(
      async () => (await metricValue(slow, 'gateway_inflight_body_bytes')) === 0,
      10_000,
      'the share given back',
    );
  });

  it('answers 504 and closes when no answer is ready within GATEWAY_RESPONSE_TIMEOUT_MS', async () => {
    const res = await post(slow, `/v1/${silent}?wait=true&timeoutMs=30000`, '{"q":1}');
    const problem = await expectProblem(res, 504);
    expect(problem.type).toBe('urn:warren:error:response-timeout');
    expect(res.headers.get('connection')).toBe('close');
    await eventually(() => slow.logs().includes('response timeout: answered 504'), 5000, 'the log');
  });

  it('starts the response clock at the last byte: a slow upload within the request timeout is answered', async () => {
    const conn = await RawConnection.open(slow.port);
    const body = '{"slow":"upload"}';
    await conn.write(
      rawHead('POST', `/v1/${queue}`, {
        'Content-Type': 'application/json',
        'Content-Length': String(body.length),
      }),
    );
    // Four parts 400 ms apart: longer than the response timeout, within the request timeout.
    for (let i = 0; i < 4; i++) {
      await sleep(400);
      await conn.write(body.slice(i * 5, i === 3 ? undefined : (i + 1) * 5));
    }
    expect((await conn.response()).status).toBe(202);
    expect((await amqp.take(queue)).content.toString()).toBe(body);
    conn.destroy();
  });
});
