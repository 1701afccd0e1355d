// The open-loop load generator against a small local HTTP server: requests on schedule, answers classified, latency from when due, timeouts.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { openLoop, percentile, summarizeOpenLoop } from './open-loop';
import { renderOverload, shedCell } from './overload-report';

let server: http.Server;
let url: string;
/** Per request path: how the server answers. */
let behaviour: (n: number, res: http.ServerResponse) => void;
let seen = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => behaviour(++seen, res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/echo?wait=true`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

beforeEach(() => {
  seen = 0;
});

test('sends rate x seconds requests whatever the answers; 2xx, shed (503/429, Retry-After) and others counted apart', async () => {
  behaviour = (n, res) => {
    if (n % 4 === 0) res.writeHead(503, { 'retry-after': '1', 'content-length': '2' }).end('{}');
    else if (n % 4 === 1) res.writeHead(429, { 'content-length': '0' }).end();
    else if (n % 8 === 2) res.writeHead(500, { 'content-length': '0' }).end();
    else
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' }).end('{}');
  };
  const r = await openLoop({ url, rate: 200, seconds: 1, warmupS: 0, body: '{"a":1}' });
  expect(r.sent).toBe(200);
  expect(r.counted).toBe(200);
  expect(seen).toBe(200);
  expect(r.ok + r.shed + r.otherStatus).toBe(200);
  expect(r.shed).toBe(100);
  // Half the shed answers (the 503s) carried Retry-After.
  expect(r.shedWithRetryAfter).toBe(50);
  expect(r.otherStatus).toBe(25);
  const s = summarizeOpenLoop(r);
  expect(s.offeredPerS).toBe(200);
  expect(s.shedShare).toBeCloseTo(0.5);
  expect(s.timeouts).toBe(0);
});

test('a request is timed from when it was due and times out at timeoutMs, waiting for a connection or not', async () => {
  // Never answers: with one connection, the first request holds it and the rest wait for it.
  behaviour = () => undefined;
  const r = await openLoop({
    url,
    rate: 50,
    seconds: 0.2,
    warmupS: 0,
    body: '{}',
    sockets: 1,
    timeoutMs: 300,
  });
  expect(r.sent).toBe(10);
  expect(r.timeout).toBe(10);
  expect(r.ok).toBe(0);
  expect(seen).toBe(1);
});

test('percentile is nearest rank; the report renders a row per stack', () => {
  expect(percentile([], 99)).toBeUndefined();
  expect(percentile([5, 1, 3, 2, 4], 50)).toBe(3);
  expect(percentile([5, 1, 3, 2, 4], 99)).toBe(5);
  const md = renderOverload(
    {
      meta: {
        date: '2026-12-06T08:00:00.000Z',
        command: 'npm run bench:overload',
        elapsedS: 100,
        knobs: {
          factor: 2,
          seconds: 20,
          openWarmup: 3,
          sockets: 1024,
          timeoutMs: 5000,
          warmup: 3,
          duration: 7,
          connections: 64,
        },
        machine: { cpus: 2, loadavgEnd: [1, 1, 1] },
        git: { commit: 'abcdef1234', dirty: false },
      },
      scenarios: [
        { id: 'a', label: 'Stack A' },
        { id: 'b', label: 'Stack B' },
      ],
      results: {
        a: {
          capacity: { rps: 4000, rpsAtConnections: 3800, rpsWide: 4000, p99: 30 },
          open: {
            offeredPerS: 8000,
            goodputPerS: 3600,
            okP50Ms: 20,
            okP99Ms: 60,
            shedShare: 0.5,
            shedP50Ms: 2,
            shedP99Ms: 9,
            shedWithRetryAfter: 1,
            timeouts: 0,
            cpu: { gateway: 90, busy: 190 },
          },
          goodputRatio: 0.9,
          p99Ratio: 2,
        },
        b: { failed: 'no answer' },
      },
    },
    'overload-x.json',
  );
  expect(md).toContain(
    '| Stack A | 4,000 (3,800 / 4,000) | 30 | 8,000 | **0.90** | 20 / 60 | **2.0** | 50 % | 2 / 9 | 100 % | 0 | gateway 90, busy 190 |',
  );
  expect(md).toContain('| Stack B | failed: no answer |');
});

test("the shed cell names Warren's refusal causes that refused something", () => {
  expect(shedCell(0.7, { event_loop: 47466, queue_delay: 1128, pending_calls: 0 })).toBe(
    '70 % (event_loop 47,466, queue_delay 1,128)',
  );
  // A peer (no causes known), or nothing refused by any cause.
  expect(shedCell(0.2, undefined)).toBe('20 %');
  expect(shedCell(0, { event_loop: 0 })).toBe('0 %');
});
