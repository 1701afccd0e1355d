// Unit: log lines carry the service name and never a secret; on stdout none is held back or lost at exit.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createLogger, isoTime, redactUrl } from './logger';

function capture() {
  let text = '';
  const destination = new Writable({
    write(chunk: Buffer, _e, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return { logger: createLogger({ service: 'svc', level: 'info', destination }), text: () => text };
}

test('every line is JSON with service, level label and time', () => {
  const { logger, text } = capture();
  logger.info({ requestId: 'r1' }, 'hello');
  const line = JSON.parse(text()) as Record<string, unknown>;
  expect(line).toMatchObject({ service: 'svc', level: 'info', requestId: 'r1', msg: 'hello' });
  expect(typeof line.time).toBe('string');
});

test('authorization headers, api keys and passwords are redacted', () => {
  const { logger, text } = capture();
  logger.info(
    { req: { headers: { authorization: 'Bearer s3cret', 'x-api-key': 'k3y' } }, password: 'pw' },
    'req',
  );
  expect(text()).not.toMatch(/s3cret|k3y|"pw"/);
  expect(text()).toContain('[redacted]');
});

test('passwords inside URLs are masked in messages and errors', () => {
  const { logger, text } = capture();
  logger.warn('cannot reach amqp://app:hunter2@rabbit:5672/v');
  logger.error({ err: new Error('connect to amqps://u:p4ss@h failed') }, 'boom');
  expect(text()).not.toMatch(/hunter2|p4ss/);
  expect(redactUrl('amqp://guest:guest@127.0.0.1:5672')).toBe('amqp://guest:***@127.0.0.1:5672');
  expect(redactUrl('http://example.test/path')).toBe('http://example.test/path');
});

test('the time field is what Date#toISOString writes, for every millisecond of a minute and across days and years', () => {
  const expected = (ms: number) => `,"time":"${new Date(ms).toISOString()}"`;
  const base = Date.UTC(2026, 11, 6, 23, 59, 0, 0);
  for (let ms = base; ms < base + 61000; ms += 7) expect(isoTime(ms)).toBe(expected(ms));
  for (const ms of [
    0,
    999,
    1000,
    59999,
    60000,
    Date.UTC(2024, 1, 29, 12, 0, 5, 9),
    Date.UTC(2099, 11, 31, 23, 59, 59, 999),
  ])
    expect(isoTime(ms)).toBe(expected(ms));
  // Back in time (a clock step) as well as forward.
  expect(isoTime(base + 5)).toBe(expected(base + 5));
  expect(isoTime()).toMatch(/^,"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"$/);
});

// The default destination (stdout: batches through pino's asynchronous destination), in child processes.
describe('stdout', () => {
  const dist = path.resolve(__dirname, '../dist/logger.js');
  const child = (script: string) =>
    spawn(
      process.execPath,
      ['-e', `const { createLogger } = require(${JSON.stringify(dist)}); ${script}`],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
  const lines = (text: string) =>
    text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  test('a line is written while the process runs on, not held for more', async () => {
    const proc = child(
      "createLogger({ service: 's', level: 'info' }).info('alone'); setInterval(() => {}, 1000);",
    );
    let timer: NodeJS.Timeout | undefined;
    try {
      const first = await new Promise<string>((resolve, reject) => {
        proc.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString()));
        proc.once('exit', () => reject(new Error('the child exited without writing')));
        timer = setTimeout(() => reject(new Error('no line within 5 s')), 5000);
      });
      expect(lines(first)).toEqual([expect.objectContaining({ msg: 'alone', service: 's' })]);
    } finally {
      clearTimeout(timer);
      proc.kill('SIGKILL');
    }
  });

  test('every line logged before process.exit is written, in order', async () => {
    const proc = child(
      "const log = createLogger({ service: 's', level: 'info' }); for (let i = 0; i < 2000; i++) log.info({ i }, 'line'); process.exit(3);",
    );
    let out = '';
    proc.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => proc.once('close', resolve));
    expect(code).toBe(3);
    expect(lines(out).map((l) => l.i)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
  });
});
