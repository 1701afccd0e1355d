import { NO_TRACING, TracingConfigError, tracingFromEnv, withSpan } from './tracing';

const opts = { serviceName: 'svc', instanceId: 'i-1' };

describe('tracingFromEnv', () => {
  it('is off by default and with OTEL_SDK_DISABLED or OTEL_TRACES_EXPORTER=none', () => {
    expect(tracingFromEnv({}, opts).enabled).toBe(false);
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1' };
    expect(tracingFromEnv({ ...endpoint, OTEL_SDK_DISABLED: 'true' }, opts).enabled).toBe(false);
    expect(tracingFromEnv({ ...endpoint, OTEL_TRACES_EXPORTER: 'none' }, opts).enabled).toBe(false);
  });

  // The export itself (OTLP/HTTP, protobuf by default) runs in a child process: the exporter loads
  // node:http with import(), which jest's module sandbox refuses. tests/observability covers it.
  it('is on with an OTLP endpoint or an exporter named', async () => {
    for (const env of [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1' },
      { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:1/v1/traces' },
      { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' },
    ]) {
      const t = tracingFromEnv(env, opts);
      expect(t.enabled).toBe(true);
      await t.shutdown();
    }
  });

  it('refuses what it cannot do with one clear line', () => {
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1' };
    expect(() =>
      tracingFromEnv({ ...endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, opts),
    ).toThrow(
      new TracingConfigError(
        'OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" is not supported (http/protobuf or http/json)',
      ),
    );
    expect(() => tracingFromEnv({ OTEL_TRACES_EXPORTER: 'zipkin' }, opts)).toThrow(
      TracingConfigError,
    );
  });
});

test('off: spans cost nothing and the parent passes through', async () => {
  const parent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  expect(NO_TRACING.start('x', 'producer', parent).traceparent).toBe(parent);
  await expect(withSpan(NO_TRACING, 'x', 'producer', parent, {}, async (tp) => tp)).resolves.toBe(
    parent,
  );
});
