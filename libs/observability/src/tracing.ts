// OpenTelemetry tracing from the standard OTEL_* variables: off unless asked for, spans parented by W3C traceparent strings.
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  trace,
  type Attributes,
  type AttributeValue,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';

export type SpanRole = 'server' | 'client' | 'producer' | 'consumer' | 'internal';

/** One span as Warren's code handles it: its W3C traceparent to pass on, attributes, outcome, end. */
export interface SpanHandle {
  /** The span's own context as a traceparent (the parent's, unchanged, when tracing is off). */
  readonly traceparent: string | undefined;
  set(key: string, value: AttributeValue): void;
  /** Marks the span failed (status ERROR, the exception recorded). */
  fail(err: unknown): void;
  end(): void;
}

export interface Tracing {
  /** False: no span is made anywhere; callers skip tracing work behind this one check. */
  readonly enabled: boolean;
  /** A span child of `parent` (a W3C traceparent; none = a new trace). */
  start(
    name: string,
    role: SpanRole,
    parent: string | undefined,
    attributes?: Attributes,
  ): SpanHandle;
  /** Sends what is buffered and stops. */
  shutdown(): Promise<void>;
}

export class TracingConfigError extends Error {}

const KINDS: Record<SpanRole, SpanKind> = {
  server: SpanKind.SERVER,
  client: SpanKind.CLIENT,
  producer: SpanKind.PRODUCER,
  consumer: SpanKind.CONSUMER,
  internal: SpanKind.INTERNAL,
};

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The parent context of a W3C traceparent (version 00), or the root context. */
function parentContext(traceparent: string | undefined) {
  const m = traceparent === undefined ? null : TRACEPARENT.exec(traceparent.slice(0, 55));
  if (!m) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: m[1] as string,
    spanId: m[2] as string,
    traceFlags: parseInt(m[3] as string, 16) & TraceFlags.SAMPLED,
    isRemote: true,
  });
}

class OtelSpan implements SpanHandle {
  readonly traceparent: string;
  constructor(private readonly span: Span) {
    const c = span.spanContext();
    this.traceparent = `00-${c.traceId}-${c.spanId}-0${c.traceFlags & TraceFlags.SAMPLED}`;
  }
  set(key: string, value: AttributeValue): void {
    this.span.setAttribute(key, value);
  }
  fail(err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    this.span.recordException(e);
    this.span.setStatus({ code: SpanStatusCode.ERROR, message: e.message.slice(0, 200) });
  }
  end(): void {
    this.span.end();
  }
}

/** Off: nothing is recorded, the parent's traceparent passes through. */
export const NO_TRACING: Tracing = {
  enabled: false,
  start: (_name, _role, parent) => ({
    traceparent: parent,
    set: () => undefined,
    fail: () => undefined,
    end: () => undefined,
  }),
  shutdown: () => Promise.resolve(),
};

class OtelTracing implements Tracing {
  readonly enabled = true;
  constructor(
    private readonly provider: BasicTracerProvider,
    private readonly tracer: Tracer,
  ) {}

  start(
    name: string,
    role: SpanRole,
    parent: string | undefined,
    attributes?: Attributes,
  ): SpanHandle {
    const span = this.tracer.startSpan(
      name,
      { kind: KINDS[role], attributes },
      parentContext(parent),
    );
    return new OtelSpan(span);
  }

  async shutdown(): Promise<void> {
    await this.provider.shutdown();
  }
}

export interface TracingOptions {
  /** The process's own name (OTEL_SERVICE_NAME overrides it). */
  serviceName: string;
  instanceId: string;
  version?: string;
}

const OTLP_DEFAULT = 'http://localhost:4318';

/** `k=v,k2=v2` (percent-encoded values) -> attributes; malformed pairs are skipped, as the SDK does. */
function resourceAttributes(text: string | undefined): Attributes {
  const out: Attributes = {};
  for (const pair of (text ?? '').split(',')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    try {
      out[pair.slice(0, eq).trim()] = decodeURIComponent(pair.slice(eq + 1).trim());
    } catch {
      // not percent-encoded properly: skipped
    }
  }
  return out;
}

/**
 * Tracing as the standard variables ask (parsed once, at start): on when OTEL_TRACES_EXPORTER
 * names an exporter (`otlp`, `console`), or, unset, when an OTLP endpoint is set
 * (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); off with
 * OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. OTLP over HTTP with protobuf (the default)
 * or JSON (`http/json`); gRPC is refused with a clear error.
 */
export function tracingFromEnv(env: NodeJS.ProcessEnv, options: TracingOptions): Tracing {
  const get = (k: string): string | undefined => (env[k] === '' ? undefined : env[k]);
  if (get('OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return NO_TRACING;
  const endpoint = get('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const base = get('OTEL_EXPORTER_OTLP_ENDPOINT');
  const exporterName =
    get('OTEL_TRACES_EXPORTER')?.split(',')[0]?.trim().toLowerCase() ??
    (endpoint || base ? 'otlp' : 'none');
  if (exporterName === 'none') return NO_TRACING;

  let exporter: SpanExporter;
  if (exporterName === 'console') exporter = new ConsoleSpanExporter();
  else if (exporterName === 'otlp') {
    const protocol =
      get('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ??
      get('OTEL_EXPORTER_OTLP_PROTOCOL') ??
      'http/protobuf';
    const url = endpoint ?? `${(base ?? OTLP_DEFAULT).replace(/\/+$/, '')}/v1/traces`;
    if (protocol === 'http/protobuf') exporter = new OtlpProtoExporter({ url });
    else if (protocol === 'http/json') exporter = new OtlpJsonExporter({ url });
    else
      throw new TracingConfigError(
        `OTEL_EXPORTER_OTLP_PROTOCOL: "${protocol}" is not supported (http/protobuf or http/json)`,
      );
  } else
    throw new TracingConfigError(
      `OTEL_TRACES_EXPORTER: "${exporterName}" is not supported (otlp, console or none)`,
    );

  const delay = Number(get('OTEL_BSP_SCHEDULE_DELAY'));
  const resource = resourceFromAttributes({
    ...resourceAttributes(get('OTEL_RESOURCE_ATTRIBUTES')),
    'service.name': get('OTEL_SERVICE_NAME') ?? options.serviceName,
    'service.instance.id': options.instanceId,
    ...(options.version ? { 'service.version': options.version } : {}),
  });
  const provider = new BasicTracerProvider({
    resource,
    spanProcessors: [
      new BatchSpanProcessor(
        exporter,
        Number.isFinite(delay) && delay > 0 ? { scheduledDelayMillis: delay } : {},
      ),
    ],
  });
  return new OtelTracing(provider, provider.getTracer('warren'));
}

/** Messaging semantic-convention attributes of a RabbitMQ publish or process span. */
export function messagingAttributes(
  operation: 'send' | 'process',
  destination: string,
  messageId: unknown,
  correlationId?: unknown,
): Attributes {
  const a: Attributes = {
    'messaging.system': 'rabbitmq',
    'messaging.operation.type': operation,
    'messaging.operation.name': operation === 'send' ? 'publish' : 'process',
    'messaging.destination.name': destination,
    'messaging.rabbitmq.destination.routing_key': destination,
  };
  if (typeof messageId === 'string') a['messaging.message.id'] = messageId;
  if (typeof correlationId === 'string') a['messaging.message.conversation_id'] = correlationId;
  return a;
}

/**
 * Runs `work` in a span child of `parent`, handing it the span's traceparent to carry on (the
 * parent's when tracing is off: then nothing else happens), and ends the span with the outcome.
 */
export function withSpan<T>(
  tracing: Tracing,
  name: string,
  role: SpanRole,
  parent: string | undefined,
  attributes: Attributes,
  work: (traceparent: string | undefined) => Promise<T>,
): Promise<T> {
  if (!tracing.enabled) return work(parent);
  const span = tracing.start(name, role, parent, attributes);
  return work(span.traceparent).then(
    (result) => {
      span.end();
      return result;
    },
    (err: unknown) => {
      span.fail(err);
      span.end();
      throw err;
    },
  );
}
