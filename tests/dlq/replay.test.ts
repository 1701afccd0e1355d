// DLQ replay against the real broker: --id and --all move dead letters back, confirmed before removal,
// and a replay killed between the confirm and the ack leaves a duplicate, never a loss.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { defineService } from '@warren/service-kit';
import { fixture, ids, type Fixture } from './helpers';
import { startServiceForTest } from '../support/service-harness';
import { ROOT, startProcess } from '../support/processes';
import { eventually, scaled } from '../support/time';
import { replay } from '@warren/dead-letters';

// Broker round trips, a tsc build and child processes on a loaded 2-core machine.
jest.setTimeout(scaled(30_000));

describe('dlq replay', () => {
  let f: Fixture;
  beforeEach(async () => {
    f = await fixture('dlqreplay');
  });
  afterEach(async () => {
    await f.close();
  });

  it('--id moves that dead letter back as a fresh attempt, the others stay in order', async () => {
    const seeded = await f.seed(3);
    const { code, stdout } = await f.cli('replay', f.service, '--id', String(seeded[1]));
    expect(code).toBe(0);
    expect(stdout).toBe(
      `replayed 1 dead letter from ${f.dlq} to ${f.service}; 2 left in ${f.dlq}\n`,
    );

    const [copy, ...more] = await f.drain(f.service);
    expect(more).toHaveLength(0);
    expect(copy?.properties).toMatchObject({
      messageId: seeded[1],
      contentType: 'application/json',
      appId: 'gateway',
      deliveryMode: 2,
    });
    expect(copy?.content.toString()).toBe('{"n":1}');
    const headers = copy?.properties.headers ?? {};
    expect(headers).toMatchObject({
      'x-attempt': 1,
      'x-replay-count': 1,
      'x-request-id': seeded[1],
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
    expect(Date.parse(String(headers['x-replayed-at']))).not.toBeNaN();
    for (const h of ['x-error-message', 'x-error-code', 'x-failed-at', 'x-original-queue']) {
      expect(headers).not.toHaveProperty(h);
    }
    expect(ids(await f.drain(f.dlq))).toEqual([seeded[0], seeded[2]]);
  });

  it('--id of a message that is not there fails and changes nothing', async () => {
    const seeded = await f.seed(2);
    const r = await f.cli('replay', f.service, '--id', 'missing');
    expect(r).toMatchObject({
      code: 1,
      stderr: `dlq: no dead letter with messageId "missing" in ${f.dlq}\n`,
    });
    expect(await f.depth(f.service)).toBe(0);
    expect(ids(await f.drain(f.dlq))).toEqual(seeded);
  });

  it('--all --limit N replays the N oldest', async () => {
    const seeded = await f.seed(5);
    const r = await f.cli('replay', f.service, '--all', '--limit', '2', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      queue: f.dlq,
      target: f.service,
      replayed: 2,
      skippedCalls: 0,
      skippedExpired: 0,
      left: 3,
      interrupted: false,
      error: null,
    });
    expect(ids(await f.drain(f.service))).toEqual(seeded.slice(0, 2));
    expect(ids(await f.drain(f.dlq))).toEqual(seeded.slice(2));
  });

  it('never replays a call or a message that expired in the queue: they stay, and it says so', async () => {
    const seededPlain = await f.seed(1);
    // A copy of a call whose reply fields were removed (the x-call marker stays) ...
    const calls = await f.seed(1, () => ({ 'x-call': 1 }));
    // ... a message whose TTL ran out in the service's queue ...
    const expired = await f.seed(1, () => ({
      'x-death': [{ count: 1, reason: 'expired', queue: f.service, exchange: '' }],
    }));
    // ... and a call as a broker dead-letters it (reply-to kept).
    f.ch.sendToQueue(f.dlq, Buffer.from('{}'), {
      messageId: 'rpc-1',
      replyTo: 'amq.rabbitmq.reply-to.g1h2AA5yZXQ',
      correlationId: 'c-1',
    });
    await f.ch.waitForConfirms();

    const r = await f.cli('replay', f.service, '--all');
    expect(r).toMatchObject({
      code: 0,
      stdout:
        `replayed 1 dead letter from ${f.dlq} to ${f.service}; skipped 2 calls and 1 expired ` +
        `(never replayed: a call was answered or its caller gave up; an expired message was meant ` +
        `to be dropped); 3 left in ${f.dlq}\n`,
    });
    expect(ids(await f.drain(f.service))).toEqual(seededPlain);

    const one = await f.cli('replay', f.service, '--id', 'rpc-1');
    expect(one).toMatchObject({
      code: 1,
      stderr: `dlq: dead letter "rpc-1" in ${f.dlq} was a call: not replayed (a call is answered or dropped, never replayed)\n`,
    });
    expect(await f.depth(f.service)).toBe(0);
    expect(ids(await f.drain(f.dlq))).toEqual([...calls, ...expired, 'rpc-1']);
  });

  it('refuses to replay when the service queue does not exist', async () => {
    await f.seed(1);
    await f.ch.deleteQueue(f.service);
    const r = await f.cli('replay', f.service, '--all');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `dlq: queue "${f.service}" does not exist: start the service once, then replay\n`,
    );
    expect(await f.depth(f.dlq)).toBe(1);
  });

  it('--all hands every dead letter back to the (now fixed) service, which processes them', async () => {
    let broken = true;
    const handled: number[] = [];
    const h = await startServiceForTest(
      defineService({
        name: 'flaky',
        maxAttempts: 1,
        retryDelaysMs: [100],
        handler: (body) => {
          if (broken) throw new Error('downstream is down');
          handled.push(Number(body.toString()));
        },
      }),
    );
    try {
      for (let i = 0; i < 4; i++) await h.send(String(i));
      await eventually(async () => (await h.messageCount('.dlq')) === 4, 10_000, '4 dead letters');
      const listed = await f.cli('list', h.name, '--json');
      const letters = (JSON.parse(listed.stdout) as { letters: Record<string, unknown>[] }).letters;
      expect(letters).toHaveLength(4);
      expect(letters[0]).toMatchObject({
        attempt: 1,
        errorCode: 'HANDLER_ERROR',
        errorMessage: 'downstream is down',
        originalQueue: h.name,
      });

      broken = false;
      const r = await f.cli('replay', h.name, '--all');
      expect(r).toMatchObject({
        code: 0,
        stdout: `replayed 4 dead letters from ${h.name}.dlq to ${h.name}\n`,
      });
      await eventually(() => handled.length === 4, 10_000, 'replayed messages handled');
      expect(handled).toEqual([0, 1, 2, 3]);
      expect(await h.messageCount('.dlq')).toBe(0);
      await eventually(async () => (await h.outcomes()).success === 4, 5000, 'success x4');
    } finally {
      await h.stop();
    }
  });

  it('stops at a refused publish and keeps the unconfirmed dead letters', async () => {
    const seeded = await f.seed(3);
    // A full service queue (reject-publish) nacks the copy: nothing may be acked from the DLQ.
    await f.ch.deleteQueue(f.service);
    await f.ch.assertQueue(f.service, {
      durable: true,
      arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' },
    });
    const r = await f.cli('replay', f.service, '--all');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^dlq: replay stopped: .*; replayed 1 dead letter from .* \(nothing lost\)\n$/,
    );
    const inQueue = ids(await f.drain(f.service));
    const inDlq = ids(await f.drain(f.dlq));
    expect(inQueue).toEqual([seeded[0]]);
    expect(inDlq.sort()).toEqual([seeded[1], seeded[2]].sort());
  });

  it('interrupted between confirm and ack (connection dies): a duplicate, nothing lost', async () => {
    const seeded = await f.seed(3);
    const { connect } = await import('amqplib');
    const conn = await connect(f.url);
    conn.on('error', () => undefined);
    const dying = replay(conn, f.service, {
      onConfirmed: async () => {
        // The copies are confirmed; the connection goes away before any ack is sent.
        await conn.close();
        throw new Error('crashed');
      },
    });
    await expect(dying).rejects.toThrow('crashed');
    await eventually(async () => (await f.depth(f.dlq)) === 3, 5000, 'unacked back in the DLQ');
    expect(ids(await f.drain(f.service))).toEqual(seeded);
    expect(ids(await f.drain(f.dlq))).toEqual(seeded);
  });

  it('killed (SIGKILL) after the first confirm: every message still in the DLQ, one copy queued', async () => {
    execFileSync(
      process.execPath,
      [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-b', 'tools/dlq'],
      {
        cwd: ROOT,
      },
    );
    const seeded = await f.seed(4);
    const child = startProcess(
      process.execPath,
      [path.join(__dirname, 'fixtures/kill-after-confirm.js'), f.service],
      { env: { AMQP_URL: f.url }, label: 'kill-after-confirm.js' },
    );
    await child.exited;
    const signal = child.child.signalCode;
    const out = child.output();
    expect({ signal, out }).toEqual({ signal: 'SIGKILL', out: `confirmed ${seeded[0]}\n` });
    await eventually(async () => (await f.depth(f.dlq)) === 4, 10_000, 'unacked back in the DLQ');
    const inQueue = ids(await f.drain(f.service));
    const inDlq = ids(await f.drain(f.dlq));
    // The first copy was confirmed, its dead letter never acked: it is in both places.
    expect(inQueue).toEqual([seeded[0]]);
    expect(inDlq).toEqual(seeded);
    expect(new Set([...inQueue, ...inDlq])).toEqual(new Set(seeded));
  });
});
