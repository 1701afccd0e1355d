// Public surface of @warren/protocol: everything that crosses a process boundary, defined once.
export {
  SERVICE_NAME,
  SERVICE_NAME_RULE,
  RESERVED_NAMES,
  serviceNameProblem,
  HEARTBEAT_EXCHANGE,
  HEARTBEAT_TYPE,
  REPLY_TO,
  GATEWAY_APP_ID,
  retryQueueName,
  legacyRetryQueueName,
  deadLetterQueueName,
  registryQueueName,
} from './names';
export {
  HEADERS,
  FAILURE_HEADERS,
  MAX_ERROR_MESSAGE,
  requestHeaders,
  callHeaders,
  eventHeaders,
  replyHeaders,
  replyTiming,
  type ReplyTiming,
  type RequestHeaders,
} from './headers';
export {
  ERRORS,
  WarrenError,
  errorSpec,
  errorCode,
  isRetryable,
  problemType,
  problemTitle,
  problemOf,
  problemJson,
  PROBLEM_CONTENT_TYPE,
  type ErrorCode,
  type ErrorSpec,
  type WarrenErrorOptions,
  type Problem,
} from './errors';
export {
  heartbeatSchema,
  parseHeartbeat,
  MAX_HEARTBEAT_BYTES,
  MAX_INPUT_SCHEMA_BYTES,
  MAX_DESCRIPTION,
  MAX_EVENT_PATTERNS,
  type Heartbeat,
} from './heartbeat';
export {
  checkReply,
  isMediaType,
  SenderPolicy,
  parseServiceUsers,
  DEFAULT_REPLY_STATUS,
  DEFAULT_REPLY_CONTENT_TYPE,
  type BadReplyReason,
  type ReplyFields,
  type ReplyVerdict,
  type SenderPolicyOptions,
} from './reply';
export {
  EVENTS_EXCHANGE,
  MAX_TOPIC_LENGTH,
  TOPIC,
  TOPIC_PATTERN,
  TOPIC_RULE,
  TOPIC_PATTERN_RULE,
  topicProblem,
  topicPatternProblem,
  topicMatches,
  eventTopicOf,
} from './events';
export { newCorrelationId, CORRELATION_ID_BITS } from './correlation';
export { newMessageId, isCall, expiredIn, type MessageKindFields } from './message';
