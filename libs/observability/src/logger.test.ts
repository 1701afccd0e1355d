// Unit: log lines carry the service name and never a secret.
import { Writable } from 'node:stream';
import { createLogger, redactUrl } from './logger';

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
