// Unit: env parsing gives typed defaults and one clear line for every bad value.
import { parseServiceConfig } from './config';
import { ConfigError } from './errors';
import { defineService } from './define';

test('defaults when nothing is set', () => {
  expect(parseServiceConfig({})).toEqual({
    amqpUrl: 'amqp://guest:guest@127.0.0.1:5672',
    metricsPort: 0,
    logLevel: 'info',
    prefetch: undefined,
    advertiseHost: '127.0.0.1',
    heartbeatIntervalMs: 5000,
    drainTimeoutMs: 25000,
    connectRetries: 5,
    queueType: undefined,
    serviceUsers: new Map(),
  });
});

test('WARREN_SERVICE_USERS maps services to broker users; a malformed entry is one clear line', () => {
  expect(parseServiceConfig({ WARREN_SERVICE_USERS: 'echo=svc-echo' }).serviceUsers).toEqual(
    new Map([['echo', 'svc-echo']]),
  );
  expect(() => parseServiceConfig({ WARREN_SERVICE_USERS: 'echo' })).toThrow(
    /WARREN_SERVICE_USERS: "echo" is not service=user/,
  );
});

test('values are coerced and empty strings count as unset', () => {
  const c = parseServiceConfig({
    METRICS_PORT: '9401',
    PREFETCH: '20',
    LOG_LEVEL: '',
    AMQP_URL: 'amqps://u:p@h/v',
  });
  expect(c).toMatchObject({
    metricsPort: 9401,
    prefetch: 20,
    logLevel: 'info',
    amqpUrl: 'amqps://u:p@h/v',
  });
});

test('every bad variable is named in one line, and a URL (it may hold a password) is not echoed', () => {
  let err: unknown;
  try {
    parseServiceConfig({ METRICS_PORT: '70000', LOG_LEVEL: 'loud', AMQP_URL: 'http://u:secret@h' });
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ConfigError);
  const message = (err as Error).message;
  expect(message.split('\n')).toHaveLength(1);
  expect(message).toMatch(/^invalid configuration: /);
  expect(message).toMatch(/METRICS_PORT: .*\(got "70000"\)/);
  expect(message).toMatch(/LOG_LEVEL: .*\(got "loud"\)/);
  expect(message).toMatch(/AMQP_URL: must be an amqp:\/\/ or amqps:\/\/ URL/);
  expect(message).not.toContain('secret');
});

test('defineService refuses bad names and bad retry settings', () => {
  const handler = () => undefined;
  expect(() => defineService({ name: 'Bad_Name', handler })).toThrow(/invalid service name/);
  expect(() => defineService({ name: 'ok', maxAttempts: 0, handler })).toThrow(/maxAttempts/);
  expect(() => defineService({ name: 'ok', retryDelaysMs: [100, -1], handler })).toThrow(
    /retryDelaysMs/,
  );
  expect(defineService({ name: 'ok-1', handler }).name).toBe('ok-1');
});

test('MAX_REDELIVERIES: a count (0 allowed), overriding the definition; anything else is one clear line', () => {
  expect(parseServiceConfig({ MAX_REDELIVERIES: '0' }).maxRedeliveries).toBe(0);
  expect(parseServiceConfig({ MAX_REDELIVERIES: '12' }).maxRedeliveries).toBe(12);
  expect(parseServiceConfig({}).maxRedeliveries).toBeUndefined();
  expect(() => parseServiceConfig({ MAX_REDELIVERIES: '-1' })).toThrow(/MAX_REDELIVERIES/);
  expect(() => parseServiceConfig({ MAX_REDELIVERIES: 'many' })).toThrow(/MAX_REDELIVERIES/);
  expect(() =>
    defineService({ name: 'svc', maxRedeliveries: 1.5, handler: () => undefined }),
  ).toThrow('svc: maxRedeliveries must be an integer >= 0');
});
