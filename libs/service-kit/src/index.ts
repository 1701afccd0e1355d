// Public surface of @warren/service-kit.
export {
  defineService,
  rawReply,
  RawReply,
  DEFAULTS,
  type ServiceDefinition,
  type HandlerContext,
  type Handler,
  type QueueOptions,
} from './define';
export { PermanentError, ValidationError, HandlerTimeoutError, ConfigError } from './errors';
export { WarrenError, errorCode } from '@warren/protocol';
export {
  parseServiceConfig,
  parseEnv,
  serviceEnvSchema,
  amqpUrlSchema,
  serviceUsersSchema,
  startTracing,
  type ServiceConfig,
} from './config';
export { runService, main, type RunOptions, type RunningService } from './run';
export { startRuntime, type ProcessRuntime, type RuntimeOptions } from './runtime';
export { Lifecycle, DRAIN_GRACE_MS, type ProcessPart } from './lifecycle';
export type { ServiceClient, CallOptions, EventClient, EventPublishResult } from './client';
export { publishEvent, type EventPublisherLike, type EventMessage } from './client';
export type { Heartbeat } from './heartbeat';
export { ApiKeys, apiKeysFromEnv, parseKeys, presentedKey } from './api-keys';
