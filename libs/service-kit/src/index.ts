// Public surface of @warren/service-kit.
export {
  defineService,
  rawReply,
  RawReply,
  SERVICE_NAME,
  DEFAULTS,
  type ServiceDefinition,
  type HandlerContext,
  type Handler,
  type QueueOptions,
} from './define';
export {
  PermanentError,
  ValidationError,
  HandlerTimeoutError,
  ConfigError,
  errorCode,
} from './errors';
export {
  parseServiceConfig,
  parseEnv,
  serviceEnvSchema,
  amqpUrlSchema,
  type ServiceConfig,
} from './config';
export { runService, main, type RunOptions, type RunningService } from './run';
export type { ServiceClient, CallOptions } from './client';
export type { Heartbeat } from './heartbeat';
