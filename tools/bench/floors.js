// The floors under a Warren RPC's cost on this machine, at a fixed rate: HTTP serving, and the broker per call.
//
//   npm run bench:floors                     # RATE 6000 requests (calls)/s, SECONDS 8 each
//   RATE=3000 SECONDS=10 node tools/bench/floors.js
//
// HTTP: a bare node:http server (a child process; no framework, no broker, no logging) reads a
// small JSON POST, parses it and answers 200 with a JSON body, (a) with content type and length
// only, (b) with the gateway's header set as well (helmet's, x-request-id, the two RateLimit
// headers). Load: autocannon at RATE over 64 connections, as `npm run bench` (2 s warm-up, not
// measured). Its CPU per request (from /proc/<pid>/stat) is the least any gateway in one node
// process pays to serve a request here, before any messaging.
// Broker: RPC over direct reply-to with amqplib, open loop at RATE (at most 64 calls outstanding),
// a server in the same process answering each call; the broker's CPU per call, (a) with the raw
// RPC's properties (the peers' raw client: reply-to, correlation id, content type; plain channel,
// non-durable queue), (b) with Warren's (the gateway's call: confirm channel, mandatory, message
// id, timestamp, app id, the call headers, expiration; a durable queue; the reply's x-status and
// user-id), each made with @warren/protocol's own functions. Each case runs twice, in the
// order a b b a. In a vhost of its own (BENCH_VHOST, default warren-floors), deleted afterwards.
// docs/performance/notes.md uses these to show which of issue 17's ratios this machine allows.
'use strict';
const { fork } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const path = require('node:path');
const amqp = require('amqplib');
const procs = require('./lib/procs');
const mq = require('./lib/amqp');
const { runScript } = require('./lib/script');
const { SMALL_BODY: BODY, postLoad } = require('./lib/warren');

const ROOT = path.join(__dirname, '../..');
const RATE = Number(process.env.RATE ?? 6000);
const SECONDS = Number(process.env.SECONDS ?? 8);
const VHOST = process.env.BENCH_VHOST || 'warren-floors';
const AMQP_BASE = process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672';

/** The child: answers every POST 200 with its body re-serialized; with the gateway's headers when asked. */
function serve(withGatewayHeaders) {
  const http = require('node:http');
  const { securityHeaders } = require(path.join(ROOT, 'services/gateway/dist/app.js'));
  const extra = withGatewayHeaders
    ? [
        ...securityHeaders(),
        'x-request-id',
        '7b0c3f0e-2a4d-4c1e-9f6b-1d2e3f4a5b6c',
        'ratelimit-policy',
        '6000;w=60',
        'ratelimit',
        'limit=6000, remaining=5999, reset=60',
      ]
    : [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const out = JSON.stringify(JSON.parse(Buffer.concat(chunks).toString()));
      res.writeHead(200, [
        ...extra,
        'content-type',
        'application/json',
        'content-length',
        String(Buffer.byteLength(out)),
      ]);
      res.end(out);
    });
  });
  server.listen(0, '127.0.0.1', () => process.send(server.address().port));
}

/** Autocannon at RATE for `seconds`, posting the benchmark's body (lib/warren.js). */
function load(url, seconds) {
  return postLoad(url, { connections: 64, overallRate: RATE, duration: seconds });
}

async function httpFloor(withGatewayHeaders) {
  const child = fork(__filename, ['--serve', withGatewayHeaders ? 'gateway-headers' : 'plain']);
  try {
    const port = await new Promise((resolve) => child.once('message', resolve));
    const url = `http://127.0.0.1:${port}/v1/echo`;
    await load(url, 2); // warm-up, not measured
    const before = procs.cpuSnap({ server: child.pid });
    const r = await load(url, SECONDS);
    const after = procs.cpuSnap({ server: child.pid });
    const secs = (after.t - before.t) / 1000;
    const us = ((procs.cpuDelta(before, after).server / 100) * secs * 1e6) / r.requests.total;
    return { answered: r.requests.total, us };
  } finally {
    child.kill();
  }
}

/** Broker CPU per call of RPC at RATE with the raw (`warren` false) or Warren's properties. */
async function brokerFloor(url, warren, brokerPid) {
  const protocol = require(path.join(ROOT, 'libs/protocol/dist/index.js'));
  const serverConn = await amqp.connect(url, { noDelay: true });
  const clientConn = await amqp.connect(url, { noDelay: true });
  const queue = `floor-${warren ? 'warren' : 'raw'}`;
  try {
    const server = await serverConn.createChannel();
    await server.assertQueue(queue, warren ? { durable: true } : { durable: false });
    await server.prefetch(100);
    const replyHeaders = protocol.replyHeaders(200);
    await server.consume(queue, (m) => {
      if (!m) return;
      JSON.parse(m.content.toString());
      const props = { correlationId: m.properties.correlationId, contentType: 'application/json' };
      if (warren) Object.assign(props, { headers: replyHeaders, userId: 'guest' });
      server.sendToQueue(m.properties.replyTo, m.content, props);
      server.ack(m);
    });
    const client = warren
      ? await clientConn.createConfirmChannel()
      : await clientConn.createChannel();
    const pending = new Set();
    let answered = 0;
    await client.consume(
      'amq.rabbitmq.reply-to',
      (m) => {
        if (m && pending.delete(m.properties.correlationId)) answered++;
      },
      { noAck: true },
    );
    const body = Buffer.from(BODY);
    const traceparent = `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
    const call = () => {
      const id = protocol.newCorrelationId();
      pending.add(id);
      const props = {
        replyTo: 'amq.rabbitmq.reply-to',
        correlationId: id,
        contentType: 'application/json',
      };
      if (!warren) return client.sendToQueue(queue, body, props);
      const now = Date.now();
      Object.assign(props, {
        messageId: protocol.newMessageId(),
        timestamp: Math.floor(now / 1000),
        appId: protocol.GATEWAY_APP_ID,
        persistent: false,
        headers: protocol.callHeaders(id.slice(0, 16), traceparent, now),
        expiration: '30000',
        mandatory: true,
      });
      return client.sendToQueue(queue, body, props, () => undefined);
    };
    const t0 = Date.now();
    let sent = 0;
    const tick = setInterval(() => {
      const due = Math.floor(((Date.now() - t0) * RATE) / 1000);
      while (sent < due && pending.size < 64) {
        call();
        sent++;
      }
      sent = Math.max(sent, due);
    }, 1);
    await procs.sleep(1000);
    const before = procs.cpuSnap({ broker: brokerPid });
    const answeredBefore = answered;
    await procs.sleep(SECONDS * 1000);
    const after = procs.cpuSnap({ broker: brokerPid });
    const calls = answered - answeredBefore;
    clearInterval(tick);
    const secs = (after.t - before.t) / 1000;
    const us = ((procs.cpuDelta(before, after).broker / 100) * secs * 1e6) / calls;
    await server.deleteQueue(queue);
    return { calls: calls / secs, us };
  } finally {
    await clientConn.close().catch(() => undefined);
    await serverConn.close().catch(() => undefined);
  }
}

async function main(session) {
  if (process.argv[2] === '--serve') return serve(process.argv[3] === 'gateway-headers');
  for (const gatewayHeaders of [false, true, true, false]) {
    const r = await httpFloor(gatewayHeaders);
    console.log(
      `HTTP floor, ${gatewayHeaders ? "the gateway's header set" : 'content type and length only'}: ${r.us.toFixed(1)} µs CPU per request at ${RATE}/s (${r.answered} answered)`,
    );
  }
  await mq.ensureBroker(AMQP_BASE, (m) => console.log(m));
  const brokerPid = procs.brokerPid(Number(new URL(AMQP_BASE).port || 5672));
  if (!brokerPid) throw new Error('cannot find the broker process (ss -ltnp) for its CPU');
  await mq.createVhost(VHOST);
  session.vhost = VHOST;
  session.amqpUrl = mq.benchUrl(AMQP_BASE, VHOST);
  try {
    for (let round = 1; round <= 2; round++)
      for (const warren of round === 1 ? [false, true] : [true, false]) {
        const r = await brokerFloor(session.amqpUrl, warren, brokerPid);
        console.log(
          `broker per RPC call, ${warren ? "Warren's call and reply properties" : "raw RPC's properties"} (round ${round}): ${r.us.toFixed(1)} µs CPU at ${r.calls.toFixed(0)} calls/s`,
        );
      }
  } finally {
    await mq.deleteVhost(VHOST);
  }
}

runScript(module, main);
