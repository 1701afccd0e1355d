// Public surface of @warren/messaging.
export { Broker, type Attachment, type BrokerOptions, type BrokerState } from './broker';
export { ConfirmedChannel, type PublishOptions } from './confirm';
export { Publisher, type PublisherOptions } from './publisher';
export { Consumer, type ConsumerOptions, type Delivery } from './consumer';
export { QueueInspector, type QueueState } from './inspector';
export {
  RpcClient,
  BadReplyError,
  type RejectedReplyReason,
  type RpcCallOptions,
  type RpcClientOptions,
  type RpcReply,
} from './rpc';
export {
  declareServiceTopology,
  resolveServiceTopology,
  mainQueueOptions,
  legacyMainQueueArguments,
  retryQueueOptions,
  deadLetterQueueOptions,
  QUORUM_DELIVERY_LIMIT,
  type QueueSpec,
  type QueueType,
} from './topology';
export {
  WarrenError,
  BrokerUnavailableError,
  PublishNackedError,
  PublishTimeoutError,
  UnroutableError,
  RpcTimeoutError,
  ClosedError,
  toBrokerError,
} from './errors';
export { safeUrl, parseAmqpUrls } from './url';
export type { ChannelModel, MessageProperties, MessagePropertyHeaders } from 'amqplib';
