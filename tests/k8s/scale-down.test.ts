// Scale-down on Kubernetes (KEDA/HPA removes a pod, or a node drains): the kubelet sends SIGTERM and,
// after terminationGracePeriodSeconds, SIGKILL. tests/service-kit/crash-and-drain.test.ts shows the
// drain that finishes in time (in-flight messages acked, exit 0). This covers the rest of the
// Kubernetes path: a drain that runs out of DRAIN_TIMEOUT_MS still loses nothing (unfinished
// messages go back to the queue) and the process is gone well inside the grace period the manifests
// set (DRAIN_TIMEOUT_MS + 5 s, checked in manifests.test.ts); while it drains, liveness stays 200 (so
// the kubelet does not restart it mid-drain) and readiness is 503.
import { retryQueueName } from '@warren/protocol';
import { uniqueName } from '../support/broker';
import { freePort, startNode } from '../support/processes';
import { eventually, scaled } from '../support/time';
import { useTestBroker } from '../messaging/helpers';

/** The margin manifests.test.ts requires between DRAIN_TIMEOUT_MS and the grace period. */
const GRACE_MARGIN_MS = 5000;
const DRAIN_TIMEOUT_MS = 1000;

const mq = useTestBroker('scale-down.test');

const status = (port: number, path: string) =>
  fetch(`http://127.0.0.1:${port}${path}`).then(
    (r) => r.status,
    () => 0,
  );

test('SIGTERM with work longer than DRAIN_TIMEOUT_MS: live while draining, exits in time, nothing lost', async () => {
  const name = uniqueName('scaledown');
  mq.cleanup(
    name,
    `${name}.dlq`,
    ...[1000, 4000, 16000, 60000].map((d) => retryQueueName(name, d)),
  );
  const ops = await freePort();
  const proc = startNode('tests/fixtures/slow-service.js', {
    AMQP_URL: mq.url(),
    SERVICE_NAME: name,
    METRICS_PORT: String(ops),
    QUEUE_TYPE: 'quorum',
    HANDLER_MS: '4000',
    SERVICE_PREFETCH: '4',
    DRAIN_TIMEOUT_MS: String(DRAIN_TIMEOUT_MS),
  });
  await proc.waitFor(/service ready/);
  await Promise.all(
    Array.from({ length: 8 }, (_, i) =>
      mq.publisher().send(name, Buffer.from('x'), { messageId: `s${i}`, persistent: true }),
    ),
  );
  // Four messages in the handler (prefetch 4), four waiting in the queue.
  await eventually(async () => (await mq.depth(name)) === 4, 10_000, 'four messages in flight');

  const sent = Date.now();
  proc.child.kill('SIGTERM');
  await proc.waitFor(/draining in-flight messages/);
  expect(await status(ops, '/healthz')).toBe(200);
  expect(await status(ops, '/readyz')).toBe(503);

  const code = await proc.exited;
  const tookMs = Date.now() - sent;
  expect(code).toBe(1); // drained: false
  expect(proc.output()).toMatch(/drain timeout; unfinished messages return to the queue/);
  expect(tookMs).toBeLessThan(DRAIN_TIMEOUT_MS + scaled(GRACE_MARGIN_MS));
  // None finished (4 s of work against a 1 s drain), and all eight are back in the queue.
  expect(proc.output()).not.toMatch(/done s\d/);
  await eventually(async () => (await mq.depth(name)) === 8, 10_000, 'all eight messages queued');
});
