import { MAX_HEARTBEAT_BYTES, MAX_INPUT_SCHEMA_BYTES, parseHeartbeat } from './heartbeat';

const beat = {
  service: 'echo',
  instanceId: '0b8e5a3c-1111-4222-8333-944445555666',
  host: 'node-1',
  metricsUrl: 'http://127.0.0.1:9401/metrics',
  version: '1.0.0',
  queue: 'echo',
  pid: 42,
  startedAt: '2026-12-02T00:00:00.000Z',
  intervalMs: 5000,
  state: 'up',
};
const wire = (v: unknown) => Buffer.from(JSON.stringify(v));

test('accepts a service-kit heartbeat and ignores unknown fields', () => {
  const r = parseHeartbeat(wire({ ...beat, extra: { nested: true } }));
  expect(r).toEqual({ ok: true, beat });
});

test.each([
  ['a reserved service name', { service: 'services' }],
  ['a malformed service name', { service: 'Bad.Name' }],
  ['an instance id with spaces', { instanceId: 'a b' }],
  ['a metrics URL that is not http(s)', { metricsUrl: 'file:///etc/passwd' }],
  ['a metrics URL that is not a URL', { metricsUrl: 'not a url' }],
  ['a control character in the host', { host: 'a\u0000b' }],
  ['an interval out of range', { intervalMs: 5 }],
  ['an unknown state', { state: 'maybe' }],
])('refuses %s', (_what, over) => {
  expect(parseHeartbeat(wire({ ...beat, ...over }))).toEqual({ ok: false, reason: 'invalid' });
});

test('refuses non-JSON and oversized bodies before parsing them', () => {
  expect(parseHeartbeat(Buffer.from('nope'))).toEqual({ ok: false, reason: 'not-json' });
  const big = wire({ ...beat, host: 'x'.repeat(MAX_HEARTBEAT_BYTES) });
  expect(parseHeartbeat(big)).toEqual({ ok: false, reason: 'too-large' });
});

test('carries an optional description and input schema, both bounded', () => {
  const schema = { type: 'object', properties: { text: { type: 'string' } } };
  const r = parseHeartbeat(wire({ ...beat, description: 'Counts words', inputSchema: schema }));
  expect(r).toEqual({
    ok: true,
    beat: { ...beat, description: 'Counts words', inputSchema: schema },
  });
  const huge = { type: 'object', description: 'x'.repeat(MAX_INPUT_SCHEMA_BYTES) };
  expect(parseHeartbeat(wire({ ...beat, inputSchema: huge }))).toMatchObject({ ok: false });
  expect(parseHeartbeat(wire({ ...beat, inputSchema: 'not an object' }))).toMatchObject({
    ok: false,
    reason: 'invalid',
  });
  expect(parseHeartbeat(wire({ ...beat, description: 'x'.repeat(501) }))).toMatchObject({
    ok: false,
  });
});
