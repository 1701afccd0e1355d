// Poison messages that crash the process: redelivered at most MAX_REDELIVERIES times, then dead-lettered
// with REDELIVERY_LIMIT instead of crash-looping forever. Classic queues count in the x-redeliveries
// header of a republished copy (the count survives the restarts), quorum queues in x-delivery-count.
import { connect } from 'amqplib';
import { retryQueueName } from '@warren/protocol';
import { uniqueName } from '../support/broker';
import { startNode, type Proc } from '../support/processes';
import { useTestBroker } from '../messaging/helpers';
import { eventually } from '../support/time';

jest.setTimeout(120_000);

const mq = useTestBroker('crash-loop.test');
const MAX_REDELIVERIES = 2;

test.each(['classic', 'quorum'] as const)(
  '%s queue: a message that kills its consumer goes to the DLQ after MAX_REDELIVERIES redeliveries',
  async (queueType) => {
    const name = uniqueName(`crashloop-${queueType}`);
    const dlq = `${name}.dlq`;
    mq.cleanup(name, dlq, retryQueueName(name, 1000));
    const start = () =>
      startNode('tests/fixtures/crash-service.js', {
        AMQP_URL: mq.url(),
        SERVICE_NAME: name,
        METRICS_PORT: '0',
        QUEUE_TYPE: queueType,
        MAX_REDELIVERIES: String(MAX_REDELIVERIES),
      });
    const procs: Proc[] = [];
    const first = start();
    procs.push(first);
    await first.waitFor(/service ready/);
    await mq.publisher().send(name, Buffer.from('crash'), {
      messageId: 'poison-1',
      persistent: true,
      headers: { 'x-request-id': 'req-poison-1', 'x-attempt': 1 },
    });

    // A supervisor's restart loop: start the service again each time the message killed it.
    let survivor: Proc | undefined;
    while (!survivor && procs.length <= MAX_REDELIVERIES + 3) {
      const last = procs[procs.length - 1] as Proc;
      let ended: 'exited' | 'dead-lettered' | undefined;
      await eventually(
        async () => {
          if (last.child.exitCode !== null || last.child.signalCode !== null) ended = 'exited';
          else if ((await mq.depth(dlq)) === 1) ended = 'dead-lettered';
          return ended !== undefined;
        },
        30_000,
        'a crash or the dead letter',
      );
      if (ended === 'dead-lettered') survivor = last;
      else procs.push(start());
    }
    const crashes = procs.map((p) => p.output().match(/crashing on req-poison-1/g)?.length ?? 0);
    // The handler ran once and then once per allowed redelivery; each run killed its process.
    expect(crashes.reduce((a, b) => a + b, 0)).toBe(MAX_REDELIVERIES + 1);
    expect(survivor).toBeDefined();

    const conn = await connect(mq.url());
    const dead = await (await conn.createChannel()).get(dlq, { noAck: true });
    await conn.close();
    expect(dead && dead.properties.messageId).toBe('poison-1');
    const headers = (dead && dead.properties.headers) ?? {};
    expect(headers).toMatchObject({
      'x-request-id': 'req-poison-1',
      'x-error-code': 'REDELIVERY_LIMIT',
      'x-original-queue': name,
      'x-redeliveries': MAX_REDELIVERIES + 1,
    });
    expect(String(headers['x-error-message'])).toMatch(/redelivered 3 times/);

    // The loop is over: the surviving process handles the next message.
    await mq.publisher().send(name, Buffer.from('fine'), {
      persistent: true,
      headers: { 'x-request-id': 'req-fine' },
    });
    await (survivor as Proc).waitFor(/done req-fine/);
    await (survivor as Proc).stop();
  },
);
