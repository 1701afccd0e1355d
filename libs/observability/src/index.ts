// Public surface of @warren/observability.
export {
  createLogger,
  redactUrl,
  REDACT_PATHS,
  type Logger,
  type LogLevel,
  type LoggerOptions,
} from './logger';
export { createRegistry } from './registry';
export {
  HotCounter,
  HotHistogram,
  type HotCounterChild,
  type HotHistogramChild,
} from './hot-metrics';
export {
  consumerMetrics,
  gatewayMetrics,
  eventPublishMetrics,
  eventHandledMetrics,
  BoundedLabel,
  type EventPublishMetrics,
  type EventPublishOutcome,
  messagingMetrics,
  type ConsumerMetrics,
  type ConsumerOutcome,
  type GatewayEdgeReadings,
  type GatewayMetrics,
  type MessagingMetrics,
  type OverloadReason,
  type UnconfirmedOutcome,
  type PublishOutcome,
  type RpcOutcome,
} from './metrics';
export { startOpsServer, type OpsServer, type OpsServerOptions } from './ops-server';
export type { Registry } from 'prom-client';
export {
  tracingFromEnv,
  withSpan,
  messagingAttributes,
  NO_TRACING,
  TracingConfigError,
  type Tracing,
  type SpanHandle,
  type SpanRole,
  type TracingOptions,
} from './tracing';
