// Gateway config parsing: defaults, edge limits, API keys (env, file, required), one-line errors, sizes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '@warren/service-kit';
import { parseKeys } from '@warren/service-kit';
import { parseGatewayConfig, parseSize } from './config';

describe('parseGatewayConfig', () => {
  it('has the documented defaults', () => {
    const c = parseGatewayConfig({});
    expect(c).toMatchObject({
      amqpUrl: 'amqp://guest:guest@127.0.0.1:5672',
      port: 3000,
      metricsPort: 9400,
      logLevel: 'info',
      apiKeys: [],
      maxBodyBytes: 1024 * 1024,
      rateLimitPerMinute: 6000,
      registryGraceMs: 6000,
      maxInflightBytes: 64 * 1024 * 1024,
      maxConnections: 10_000,
      maxPendingCalls: 10_000,
      headersTimeoutMs: 20_000,
      requestTimeoutMs: 60_000,
      responseTimeoutMs: 35_000,
    });
  });

  it('reads the edge limits; the response timeout defaults past the longest wait', () => {
    const c = parseGatewayConfig({
      GATEWAY_MAX_INFLIGHT_BYTES: '1gb',
      GATEWAY_MAX_CONNECTIONS: '50',
      GATEWAY_MAX_PENDING_CALLS: '7',
      GATEWAY_HEADERS_TIMEOUT_MS: '500',
      GATEWAY_REQUEST_TIMEOUT_MS: '800',
      GATEWAY_RESPONSE_TIMEOUT_MS: '900',
    });
    expect(c).toMatchObject({
      maxInflightBytes: 1024 ** 3,
      maxConnections: 50,
      maxPendingCalls: 7,
      headersTimeoutMs: 500,
      requestTimeoutMs: 800,
      responseTimeoutMs: 900,
    });
    // A confirm timeout longer than the longest call moves the default with it.
    expect(parseGatewayConfig({ GATEWAY_CONFIRM_TIMEOUT_MS: '60000' }).responseTimeoutMs).toBe(
      65_000,
    );
  });

  it('refuses edge limits that cannot work together', () => {
    expect(() =>
      parseGatewayConfig({
        GATEWAY_HEADERS_TIMEOUT_MS: '30000',
        GATEWAY_REQUEST_TIMEOUT_MS: '20000',
      }),
    ).toThrow(/GATEWAY_HEADERS_TIMEOUT_MS \(30000\) must not exceed GATEWAY_REQUEST_TIMEOUT_MS/);
    expect(() =>
      parseGatewayConfig({ GATEWAY_MAX_BODY: '2mb', GATEWAY_MAX_INFLIGHT_BYTES: '1mb' }),
    ).toThrow(/GATEWAY_MAX_INFLIGHT_BYTES \(1048576\) must be at least GATEWAY_MAX_BODY/);
    for (const [k, v] of [
      ['GATEWAY_MAX_CONNECTIONS', '0'],
      ['GATEWAY_HEADERS_TIMEOUT_MS', '0'],
      ['GATEWAY_REQUEST_TIMEOUT_MS', '99'],
      ['GATEWAY_RESPONSE_TIMEOUT_MS', 'soon'],
      ['GATEWAY_MAX_INFLIGHT_BYTES', '17gb'],
    ] as const)
      expect(() => parseGatewayConfig({ [k]: v })).toThrow(
        new RegExp(`^invalid configuration: ${k}`),
      );
  });

  it('reads keys from GATEWAY_API_KEYS and GATEWAY_API_KEYS_FILE', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gwcfg-'));
    const file = path.join(dir, 'keys');
    fs.writeFileSync(file, '# comment\nfile-key-0123456789abc\n\n');
    try {
      const c = parseGatewayConfig({
        GATEWAY_API_KEYS: 'env-key-0123456789abc, env-key-0123456789abd',
        GATEWAY_API_KEYS_FILE: file,
      });
      expect(c.apiKeys).toEqual([
        'env-key-0123456789abc',
        'env-key-0123456789abd',
        'file-key-0123456789abc',
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('GATEWAY_REQUIRE_API_KEYS=true refuses to start without a key, in one line', () => {
    const missing =
      /^invalid configuration: GATEWAY_REQUIRE_API_KEYS: no API key configured \(set GATEWAY_API_KEYS or GATEWAY_API_KEYS_FILE, or GATEWAY_REQUIRE_API_KEYS=false to run open\)$/;
    // Unset, empty (a Secret with an empty value) or only separators: no key, so no start.
    for (const env of [
      { GATEWAY_REQUIRE_API_KEYS: 'true' },
      { GATEWAY_REQUIRE_API_KEYS: '1' },
      { GATEWAY_REQUIRE_API_KEYS: 'true', GATEWAY_API_KEYS: '' },
      { GATEWAY_REQUIRE_API_KEYS: 'true', GATEWAY_API_KEYS: ' , ,\n' },
    ]) {
      expect(() => parseGatewayConfig(env)).toThrow(ConfigError);
      expect(() => parseGatewayConfig(env)).toThrow(missing);
    }
    // With a key from either source it starts, and the keys are the ones given.
    expect(
      parseGatewayConfig({
        GATEWAY_REQUIRE_API_KEYS: 'true',
        GATEWAY_API_KEYS: 'env-key-0123456789abc',
      }).apiKeys,
    ).toEqual(['env-key-0123456789abc']);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gwcfg-'));
    const file = path.join(dir, 'keys');
    fs.writeFileSync(file, 'file-key-0123456789abc\n');
    try {
      expect(
        parseGatewayConfig({ GATEWAY_REQUIRE_API_KEYS: 'true', GATEWAY_API_KEYS_FILE: file })
          .apiKeys,
      ).toEqual(['file-key-0123456789abc']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('GATEWAY_REQUIRE_API_KEYS defaults to false: no key runs open; only true|false|1|0', () => {
    for (const env of [
      {},
      { GATEWAY_REQUIRE_API_KEYS: 'false' },
      { GATEWAY_REQUIRE_API_KEYS: '0' },
    ])
      expect(parseGatewayConfig(env).apiKeys).toEqual([]);
    expect(() => parseGatewayConfig({ GATEWAY_REQUIRE_API_KEYS: 'yes' })).toThrow(
      /^invalid configuration: GATEWAY_REQUIRE_API_KEYS: /,
    );
  });

  it('fails with one line naming the variable, never echoing a key', () => {
    const fail = (env: NodeJS.ProcessEnv) => {
      try {
        parseGatewayConfig(env);
      } catch (err) {
        return (err as Error).message;
      }
      return 'no error';
    };
    expect(fail({ PORT: 'abc' })).toMatch(/^invalid configuration: PORT: .*\(got "abc"\)$/);
    expect(fail({ GATEWAY_MAX_BODY: '10gb' })).toMatch(/GATEWAY_MAX_BODY/);
    expect(fail({ AMQP_URL: 'http://x' })).toMatch(/AMQP_URL/);
    const short = fail({ GATEWAY_API_KEYS: 'tiny-secret' });
    expect(short).toMatch(/GATEWAY_API_KEYS/);
    expect(short).not.toContain('tiny-secret');
    expect(fail({ GATEWAY_API_KEYS_FILE: '/nonexistent/keys' })).toMatch(
      /GATEWAY_API_KEYS_FILE: cannot read/,
    );
    for (const m of [short, fail({ PORT: 'abc' })]) expect(m).not.toContain('\n');
  });
});

describe('parseSize', () => {
  it('reads bytes and binary units', () => {
    expect(parseSize('1048576')).toBe(1048576);
    expect(parseSize('512kb')).toBe(524288);
    expect(parseSize('1MB')).toBe(1048576);
    expect(parseSize('2 mib')).toBe(2097152);
    expect(parseSize('1gb')).toBe(1024 ** 3);
    expect(parseSize('1.5mb')).toBeUndefined();
    expect(parseSize('lots')).toBeUndefined();
  });
});

describe('parseKeys', () => {
  it('splits on commas and newlines, skips blanks and comments', () => {
    expect(parseKeys(' a ,b\n# c\r\n\nd')).toEqual(['a', 'b', 'd']);
  });
});

test('AMQP_URL may list several cluster nodes, as the libs accept', () => {
  const c = parseGatewayConfig({ AMQP_URL: 'amqp://u:p@a:5672,amqp://u:p@b:5672' });
  expect(c.amqpUrl).toBe('amqp://u:p@a:5672,amqp://u:p@b:5672');
  expect(() => parseGatewayConfig({ AMQP_URL: 'amqp://a,http://b' })).toThrow(/AMQP_URL/);
});
