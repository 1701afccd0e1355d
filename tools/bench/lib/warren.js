// What bench.js and soak.js both run: the Warren echo and gateway process specs (production
// defaults), the request body, one autocannon run, and the probe that waits for a 2xx.
'use strict';
const path = require('node:path');
const autocannon = require('autocannon');
const procs = require('./procs');

const SMALL_BODY = JSON.stringify({ msg: 'hello', n: 42 });

/** The echo service as shipped (`services/echo/dist/main.js` under `root`). */
function echoSpec({ root, amqpUrl, opsPort, name = 'echo', env = {} }) {
  return {
    name,
    file: path.join(root, 'services/echo/dist/main.js'),
    cwd: root,
    env: { AMQP_URL: amqpUrl, METRICS_PORT: String(opsPort), ...env },
    readyUrl: `http://127.0.0.1:${opsPort}/readyz`,
  };
}

/**
 * The gateway with production defaults except: loopback bind, and the per-client rate limit
 * (6000/min by default, which one load generator on one IP would hit in a second) raised so the
 * limiter still runs.
 */
function gatewaySpec({ root, amqpUrl, port, opsPort, name = 'gateway' }) {
  return {
    name,
    file: path.join(root, 'services/gateway/dist/main.js'),
    cwd: root,
    env: {
      AMQP_URL: amqpUrl,
      PORT: String(port),
      METRICS_PORT: String(opsPort),
      HOST: '127.0.0.1',
      GATEWAY_RATE_LIMIT: '100000000',
    },
    readyUrl: `http://127.0.0.1:${opsPort}/readyz`,
  };
}

/** One autocannon run posting SMALL_BODY as JSON; `options` adds duration or amount, connections, ... */
function postLoad(url, options) {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: SMALL_BODY,
        timeout: 10,
        ...options,
      },
      (err, r) => (err ? reject(err) : resolve(r)),
    );
  });
}

/** Waits (at most 20 s) until `url` answers a POST of SMALL_BODY with a 2xx. */
async function probe(url) {
  let last = 0;
  for (let i = 0; i < 80; i++) {
    last = await procs.httpStatus('POST', url, SMALL_BODY, { 'content-type': 'application/json' });
    if (last >= 200 && last < 300) return;
    await procs.sleep(250);
  }
  throw new Error(`${url} never answered 2xx (last status ${last})`);
}

module.exports = { SMALL_BODY, echoSpec, gatewaySpec, postLoad, probe };
