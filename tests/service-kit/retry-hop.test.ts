// At-least-once on the retry hop, on a private broker node (its dead-letter worker re-sends a refused
// copy after 1 s instead of 3 min): a retry copy whose delay ends while the service's queue is full,
// or missing, waits in its retry queue and reaches the queue once there is room: nothing is lost.
import { connect, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { retryQueueName } from '@warren/protocol';
import { defineService, runService, type RunningService } from '@warren/service-kit';
import { uniqueName } from '../support/broker';

import { startPrivateBroker, type PrivateBroker } from '../support/private-broker';
import { eventually } from '../support/time';

jest.setTimeout(120_000);

/** Long enough to stop the service and fill its queue before the copy's delay ends. */
const RETRY_MS = 4000;
const MAX_LENGTH = 3;

let node: PrivateBroker;
let conn: ChannelModel;
let ch: ConfirmChannel;
const running: RunningService[] = [];

beforeAll(async () => {
  node = await startPrivateBroker('warren-retryhop', {
    advancedConfig: '[{rabbit, [{dead_letter_worker_publisher_confirm_timeout, 1000}]}].',
  });
  conn = await connect(node.url);
  ch = await conn.createConfirmChannel();
});

afterAll(async () => {
  for (const s of running) await s.stop().catch(() => undefined);
  await conn?.close().catch(() => undefined);
  await node?.stop();
});

/** A service whose handler fails the first attempt of the message "victim" and records each attempt. */
async function start(name: string, queueType: 'classic' | 'quorum', attempts: number[]) {
  const svc = await runService(
    defineService({
      name,
      queue: { queueType, maxLength: MAX_LENGTH },
      maxAttempts: 3,
      retryDelaysMs: [RETRY_MS],
      handler: (body, ctx) => {
        if (body.toString() !== 'victim') return;
        attempts.push(ctx.attempt);
        if (ctx.attempt === 1) throw new Error('the first attempt fails');
      },
    }),
    {
      env: { AMQP_URL: node.url, METRICS_PORT: '0', LOG_LEVEL: 'silent' },
      handleSignals: false,
    },
  );
  running.push(svc);
  return svc;
}

const depth = async (queue: string) => (await ch.checkQueue(queue)).messageCount;

function publish(queue: string, body: string): Promise<boolean> {
  return new Promise((resolve) =>
    ch.sendToQueue(queue, Buffer.from(body), { persistent: true }, (err) => resolve(!err)),
  );
}

/** Runs the service until the victim's first attempt failed and its copy waits in the retry queue. */
async function victimWaitingForRetry(name: string, queueType: 'classic' | 'quorum') {
  const attempts: number[] = [];
  const svc = await start(name, queueType, attempts);
  expect(await publish(name, 'victim')).toBe(true);
  const retryQueue = retryQueueName(name, RETRY_MS);
  await eventually(async () => (await depth(retryQueue)) === 1, 10_000, 'the retry copy');
  await svc.stop();
  return { attempts, retryQueue };
}

test.each(['classic', 'quorum'] as const)(
  '%s queue full when a retry copy is due: the copy waits, then arrives (nothing lost)',
  async (queueType) => {
    const name = uniqueName(`hop-full-${queueType}`);
    const { attempts, retryQueue } = await victimWaitingForRetry(name, queueType);
    expect(attempts).toEqual([1]);

    // Fill the queue until the broker refuses a publish (reject-publish; a quorum queue takes one
    // message past its limit).
    let fillers = 0;
    while (fillers <= MAX_LENGTH + 1 && (await publish(name, `filler-${fillers}`))) fillers++;
    expect(fillers).toBeGreaterThanOrEqual(MAX_LENGTH);
    expect(fillers).toBeLessThanOrEqual(MAX_LENGTH + 1);
    if ((await depth(retryQueue)) !== 1)
      throw new Error(`the copy's delay ended before the queue was full: raise RETRY_MS`);

    // The delay ends while the queue is full: the broker cannot move the copy, and keeps it.
    await eventually(async () => (await depth(retryQueue)) === 0, 15_000, 'the delay to end');
    expect(await depth(name)).toBe(fillers);
    expect(await publish(name, 'one more')).toBe(false);

    // Room again (the fillers go): the copy reaches the queue and its second attempt runs.
    await ch.purgeQueue(name);
    await start(name, queueType, attempts);
    await eventually(() => attempts.length === 2, 20_000, 'the second attempt');
    expect(attempts).toEqual([1, 2]);
  },
);

test('queue missing when a retry copy is due: the copy waits until the service declares it again', async () => {
  const name = uniqueName('hop-gone');
  const { attempts, retryQueue } = await victimWaitingForRetry(name, 'classic');
  await ch.deleteQueue(name);
  await eventually(async () => (await depth(retryQueue)) === 0, 15_000, 'the delay to end');
  await start(name, 'classic', attempts);
  await eventually(() => attempts.length === 2, 20_000, 'the second attempt');
  expect(attempts).toEqual([1, 2]);
});
