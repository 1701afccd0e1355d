// DLQ tool against the real broker: list and show leave every dead letter in place, in order; purge asks.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { fixture, ids, type Fixture } from './helpers';
import { ROOT } from '../support/processes';
import { eventually, scaled } from '../support/time';

const run = promisify(execFile);
// Broker round trips and child processes on a loaded 2-core machine: more than jest's 5 s default.
jest.setTimeout(scaled(30_000));

describe('dlq list / show / purge', () => {
  let f: Fixture;
  let seeded: string[];
  beforeEach(async () => {
    f = await fixture();
    seeded = await f.seed(3);
  });
  afterEach(async () => {
    await f.close();
  });

  /** Order and count of the DLQ, read without consuming (through the tool itself). */
  async function dlqIds(): Promise<string[]> {
    const { stdout } = await f.cli('list', f.service, '--json', '--limit', '1000');
    return (JSON.parse(stdout) as { letters: { messageId: string }[] }).letters.map(
      (l) => l.messageId,
    );
  }

  it('lists dead letters with their error headers and leaves them in order', async () => {
    const { code, stdout, stderr } = await f.cli('list', f.service);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`${f.dlq}: 3 dead letters`);
    expect(lines[1]).toMatch(/^#\s+MESSAGE ID\s+FAILED AT\s+ATTEMPTS\s+CODE\s+ERROR\s+BYTES$/);
    for (const [i, id] of seeded.entries()) {
      expect(lines[i + 2]).toMatch(
        new RegExp(`^${i + 1}\\s+${id}\\s+\\S+Z\\s+5\\s+HANDLER_ERROR\\s+boom ${i}\\s+7$`),
      );
    }
    // Twice more, once limited: still all three, same order.
    expect((await f.cli('list', f.service, '--limit', '2')).stdout).toContain(
      '(showing 2; --limit N)',
    );
    expect(await dlqIds()).toEqual(seeded);
    expect(await f.depth(f.dlq)).toBe(3);
    expect(ids(await f.drain(f.dlq))).toEqual(seeded);
  });

  it('lists as JSON with every error header and the body', async () => {
    const { code, stdout } = await f.cli('list', f.service, '--json');
    expect(code).toBe(0);
    const out = JSON.parse(stdout) as { queue: string; depth: number; letters: unknown[] };
    expect(out.queue).toBe(f.dlq);
    expect(out.depth).toBe(3);
    expect(out.letters[1]).toMatchObject({
      position: 2,
      messageId: seeded[1],
      attempt: 5,
      errorCode: 'HANDLER_ERROR',
      errorMessage: 'boom 1',
      originalQueue: f.service,
      contentType: 'application/json',
      appId: 'gateway',
      bodyEncoding: 'utf8',
      body: '{"n":1}',
      headers: { 'x-request-id': seeded[1], 'x-error-code': 'HANDLER_ERROR' },
    });
    expect(await f.depth(f.dlq)).toBe(3);
  });

  it('shows one dead letter by id, in full, without removing it', async () => {
    const { code, stdout } = await f.cli('show', f.service, '--id', String(seeded[2]));
    expect(code).toBe(0);
    expect(stdout).toContain(`── #3 of 3 in ${f.dlq} ──`);
    expect(stdout).toContain(`message id:     ${seeded[2]}`);
    expect(stdout).toContain('error:          HANDLER_ERROR: boom 2');
    expect(stdout).toContain(`original queue: ${f.service}`);
    expect(stdout).toContain(
      '  traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"',
    );
    expect(stdout).toMatch(/body \(7 bytes\):\n\{"n":2\}\n$/);
    expect(stdout).not.toContain(String(seeded[0]));
    expect(await dlqIds()).toEqual(seeded);
  });

  it('shows every dead letter without --id; binary bodies as base64', async () => {
    await f.ch.sendToQueue(f.dlq, Buffer.from([0, 1, 2, 255]), { messageId: 'binary-1' });
    await f.ch.waitForConfirms();
    const { code, stdout } = await f.cli('show', f.service);
    expect(code).toBe(0);
    expect(stdout.match(/^── #\d of 4/gm)).toHaveLength(4);
    expect(stdout).toContain('body (4 bytes, base64):\nAAEC/w==');
    expect(await f.depth(f.dlq)).toBe(4);
  });

  it('fails with one line for an unknown id, an unknown service, and bad usage', async () => {
    const missing = await f.cli('show', f.service, '--id', 'nope');
    expect(missing).toMatchObject({
      code: 1,
      stdout: '',
      stderr: `dlq: no dead letter with messageId "nope" in ${f.dlq}\n`,
    });
    const unknown = await f.cli('list', `${f.service}-x`);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe(
      `dlq: no dead-letter queue "${f.service}-x.dlq": unknown service "${f.service}-x", or it has never started\n`,
    );
    expect((await f.cli('list')).code).toBe(2);
    expect((await f.cli('frobnicate', f.service)).stderr).toMatch(
      /^dlq: unknown command "frobnicate"/,
    );
    expect((await f.cli('list', 'Not.A.Service')).code).toBe(2);
    expect((await f.cli('list', f.service, '--limit', '0')).code).toBe(2);
    expect((await f.cli('replay', f.service)).stderr).toBe(
      'dlq: replay needs exactly one of --all or --id <messageId> (see --help)\n',
    );
    expect((await f.cli('replay', f.service, '--all', '--id', 'x')).code).toBe(2);
    expect((await f.cli('list', f.service, '--bogus')).code).toBe(2);
    expect((await f.cli('--help')).stdout).toContain('Usage: npm run dlq --');
    expect(await f.depth(f.dlq)).toBe(3);
  });

  it('refuses to purge without --yes, then purges with it', async () => {
    const refused = await f.cli('purge', f.service);
    expect(refused).toMatchObject({
      code: 2,
      stderr: `dlq: refusing to purge 3 dead letters from ${f.dlq} without --yes\n`,
    });
    expect(await f.depth(f.dlq)).toBe(3);
    const done = await f.cli('purge', f.service, '--yes');
    expect(done).toMatchObject({ code: 0, stdout: `purged 3 dead letters from ${f.dlq}\n` });
    expect(await f.depth(f.dlq)).toBe(0);
  });

  it('accepts a cluster AMQP_URL (comma-separated nodes): the first node that answers', async () => {
    const env = { ...process.env, AMQP_URL: `amqp://guest:guest@127.0.0.1:1,${f.url}` };
    const main = path.join(ROOT, 'tools/dlq/dist/main.js');
    const ok = await run(process.execPath, [main, 'list', f.service, '--json'], { env });
    expect(JSON.parse(ok.stdout)).toMatchObject({ queue: f.dlq, depth: 3 });
    const down = await run(process.execPath, [main, 'list', f.service], {
      env: {
        ...process.env,
        AMQP_URL: 'amqp://guest:guest@127.0.0.1:1,amqp://guest:guest@127.0.0.1:2',
      },
    }).catch((err: { code: number; stderr: string }) => err);
    expect(down).toMatchObject({ code: 1 });
    expect('stderr' in down && down.stderr).toMatch(/^dlq: cannot connect to RabbitMQ at /);
  });

  it(
    'runs as `npm run dlq` with exit codes',
    async () => {
      const env = { ...process.env, AMQP_URL: f.url };
      const ok = await run('npm', ['run', '-s', 'dlq', '--', 'list', f.service, '--json'], {
        cwd: ROOT,
        env,
      });
      expect(JSON.parse(ok.stdout)).toMatchObject({ queue: f.dlq, depth: 3 });
      const main = path.join(ROOT, 'tools/dlq/dist/main.js');
      const failed = await run(process.execPath, [main, 'list', 'no-such-service'], { env }).catch(
        (err: { code: number; stdout: string; stderr: string }) => err,
      );
      expect(failed).toMatchObject({
        code: 1,
        stdout: '',
        stderr:
          'dlq: no dead-letter queue "no-such-service.dlq": unknown service "no-such-service", or it has never started\n',
      });
    },
    scaled(60_000),
  );

  it('reads a quorum DLQ in order without removing anything, and warns once letters were returned often', async () => {
    const q = await fixture('dlqquorum', 'quorum');
    try {
      const seeded = await q.seed(2);
      for (let i = 0; i < 10; i++) {
        await eventually(async () => (await q.depth(q.dlq)) === 2, 5000, 'both letters ready');
        const r = await q.cli('list', q.service, '--json');
        expect(r.code).toBe(0);
        expect(
          (JSON.parse(r.stdout) as { letters: { messageId: string }[] }).letters.map(
            (l) => l.messageId,
          ),
        ).toEqual(seeded);
      }
      // Each read returned the letters once: quorum queues count that in x-delivery-count.
      await eventually(async () => (await q.depth(q.dlq)) === 2, 5000, 'both letters ready');
      const r = await q.cli('list', q.service);
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(
        /^dlq: warning: dead letters in .*\.dlq were returned 10 times \(x-delivery-count\)/,
      );
      // Quorum queues count returned messages as ready again a moment after the channel closed.
      await eventually(async () => (await q.depth(q.dlq)) === 2, 5000, 'both letters ready again');
    } finally {
      await q.close();
    }
  });
});
