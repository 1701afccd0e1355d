// Process-level guarantees: a crash between the retry copy and the ack loses nothing; SIGTERM drains in-flight work.
import { retryQueueName } from '@warren/protocol';
import { uniqueName } from '../support/broker';
import { startNode } from '../support/processes';
import { eventually } from '../support/time';
import { useTestBroker } from '../messaging/helpers';

const mq = useTestBroker('crash.test');

test('killed after the retry copy is confirmed but before the ack: the message exists twice, never zero times', async () => {
  const name = uniqueName('crash');
  mq.cleanup(name, `${name}.dlq`, retryQueueName(name, 60000));
  const proc = startNode('tests/fixtures/crash-after-republish.js', {
    AMQP_URL: mq.url(),
    SERVICE_NAME: name,
    METRICS_PORT: '0',
  });
  await proc.waitFor(/service ready/);
  await mq
    .publisher()
    .send(name, Buffer.from('payload'), { messageId: 'crash-1', persistent: true });
  await proc.waitFor(/crashing before ack/);
  expect(await proc.exited).toBeNull(); // killed by a signal
  // The unacked original returns to the queue; the confirmed retry copy waits in the delay queue.
  await eventually(async () => (await mq.depth(name)) === 1, 10_000, 'original requeued');
  expect(await mq.depth(retryQueueName(name, 60000))).toBe(1);
});

test('SIGTERM mid-load: in-flight messages finish and are acked, no new ones are taken, exit 0', async () => {
  const name = uniqueName('drain');
  mq.cleanup(name, `${name}.dlq`);
  const proc = startNode('tests/fixtures/slow-service.js', {
    AMQP_URL: mq.url(),
    SERVICE_NAME: name,
    METRICS_PORT: '0',
    HANDLER_MS: '400',
    SERVICE_PREFETCH: '5',
  });
  await proc.waitFor(/service ready/);
  await Promise.all(
    Array.from({ length: 40 }, (_, i) =>
      mq.publisher().send(name, Buffer.from('x'), { messageId: `d${i}` }),
    ),
  );
  await proc.waitFor(/done d\d+/);
  proc.child.kill('SIGTERM');
  expect(await proc.exited).toBe(0);
  const done = new Set(proc.output().match(/done d\d+/g) ?? []);
  expect(proc.output()).toMatch(/"drained":true/);
  // Everything not finished is still in the queue: processed + queued = published.
  expect(done.size + (await mq.depth(name))).toBe(40);
  expect(done.size).toBeLessThan(40);
});
