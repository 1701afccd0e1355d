// Broker-side helpers of the benchmark: its own vhost (so no other test's consumers or heartbeats
// touch its queues), queue deletion, pre-filling a durable queue, and watching a queue's depth.
'use strict';
const { execFile } = require('node:child_process');
const { promisify } = require('node:util');
const { randomUUID } = require('node:crypto');
const amqp = require('amqplib');

const run = promisify(execFile);
const LOOPBACK = /^amqps?:\/\/([^@/]*@)?(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?(\/.*)?$/;

/** The broker URL with the benchmark's vhost; refuses anything but loopback. */
function benchUrl(base, vhost) {
  if (!LOOPBACK.test(base))
    throw new Error(
      `AMQP_URL must point at a loopback address (got ${base.replace(/:[^:@/]*@/, ':***@')})`,
    );
  const u = new URL(base);
  u.pathname = `/${encodeURIComponent(vhost)}`;
  return u.toString();
}

async function reachable(base) {
  try {
    const c = await amqp.connect(base);
    await c.close();
    return true;
  } catch {
    return false;
  }
}

/** Makes sure a broker answers on `base`; starts the local rabbitmq-server when none does. Returns whether it started one. */
async function ensureBroker(base, log) {
  if (await reachable(base)) return false;
  log('no broker answers; starting rabbitmq-server -detached');
  await run('rabbitmq-server', ['-detached']);
  for (let i = 0; i < 40; i++) {
    await new Promise((r) => setTimeout(r, 1500));
    if (await reachable(base)) return true;
  }
  throw new Error(`RabbitMQ did not come up on ${base}; start it with: rabbitmq-server -detached`);
}

async function createVhost(name) {
  await run('rabbitmqctl', ['-q', 'add_vhost', name]).catch((e) => {
    if (!/already exists|vhost_already_exists/.test(String(e.stderr || e.message))) throw e;
  });
  await run('rabbitmqctl', ['-q', 'set_permissions', '-p', name, 'guest', '.*', '.*', '.*']);
}

async function deleteVhost(name) {
  await run('rabbitmqctl', ['-q', 'delete_vhost', name]).catch(() => undefined);
}

/** Deletes queues (missing ones are fine). */
async function deleteQueues(url, names) {
  const conn = await amqp.connect(url);
  try {
    for (const q of names) {
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      await ch.deleteQueue(q).catch(() => undefined);
      await ch.close().catch(() => undefined);
    }
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/**
 * Publishes `n` persistent messages to durable `queue` on a confirm channel (at most 1000
 * unconfirmed), with the properties the gateway sets. Resolves with the confirmed rate.
 */
async function prefill(url, queue, n, body) {
  const conn = await amqp.connect(url, { noDelay: true });
  try {
    const ch = await conn.createConfirmChannel();
    const t0 = process.hrtime.bigint();
    let inflight = 0;
    let sent = 0;
    let confirmed = 0;
    let nacked = 0;
    await new Promise((resolve, reject) => {
      const onConfirm = (err) => {
        inflight--;
        if (err) nacked++;
        else confirmed++;
        if (confirmed + nacked === n) resolve();
        else pump();
      };
      let waiting = false;
      const pump = () => {
        while (!waiting && sent < n && inflight < 1000) {
          const id = randomUUID();
          const now = Date.now();
          inflight++;
          sent++;
          const ok = ch.publish(
            '',
            queue,
            body,
            {
              persistent: true,
              mandatory: true,
              messageId: id,
              contentType: 'application/json',
              timestamp: Math.floor(now / 1000),
              appId: 'warren-bench',
              headers: { 'x-attempt': 1, 'x-request-id': id, 'x-published-at': now },
            },
            onConfirm,
          );
          if (!ok) {
            waiting = true;
            ch.once('drain', () => {
              waiting = false;
              pump();
            });
          }
        }
      };
      ch.on('error', reject);
      pump();
    });
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    await ch.close();
    if (nacked > 0) throw new Error(`prefill: ${nacked} of ${n} messages nacked`);
    return { rate: n / secs, secs };
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/** A watcher of one queue's ready-message count (passive declare), for drain timing. */
async function queueWatcher(url, queue) {
  const conn = await amqp.connect(url, { noDelay: true });
  const ch = await conn.createChannel();
  return {
    count: async () => (await ch.checkQueue(queue)).messageCount,
    close: () => conn.close().catch(() => undefined),
  };
}

module.exports = {
  benchUrl,
  ensureBroker,
  createVhost,
  deleteVhost,
  deleteQueues,
  prefill,
  queueWatcher,
};
