// Minimal raw amqplib consumer for the drain comparison: the same queue, the same prefetch as the
// service, manual ack, JSON.parse of each body (the service-kit echo does no more work than that).
// Env: AMQP_URL, QUEUE, PREFETCH. Tells its parent {ready}, and {count} when asked with {cmd:'count'}.
'use strict';
const amqp = require('amqplib');

const url = process.env.AMQP_URL;
const queue = process.env.QUEUE || 'echo';
const prefetch = Number(process.env.PREFETCH_RAW || 100);

(async () => {
  const conn = await amqp.connect(url, { noDelay: true });
  const ch = await conn.createChannel();
  await ch.prefetch(prefetch, false);
  let consumed = 0;
  let bad = 0;
  await ch.consume(
    queue,
    (msg) => {
      if (!msg) return;
      try {
        JSON.parse(msg.content.toString('utf8'));
      } catch {
        bad++;
      }
      consumed++;
      ch.ack(msg);
    },
    { noAck: false },
  );
  process.on('message', (m) => {
    if (m.cmd === 'count') process.send({ count: consumed, bad });
    else if (m.cmd === 'stop') conn.close().finally(() => process.exit(0));
  });
  process.send({ ready: true });
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
