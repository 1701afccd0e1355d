// Public surface of @warren/messaging.
export { Broker, type BrokerOptions, type BrokerState } from './broker';
export { Connections, type ConnectionRole, type ConnectionsOptions } from './connections';
export {
  ManagedChannel,
  type ChannelHost,
  type ChannelLink,
  type ChannelSetup,
  type ConsumeHandler,
  type ManagedChannelEvents,
  type ManagedChannelOptions,
  type ManagedChannelState,
} from './channel';
export { ConfirmedChannel, type PublishOptions } from './confirm';
export { Publisher, type PublisherOptions } from './publisher';
export { Consumer, type ConsumerOptions, type Delivery } from './consumer';
export { QueueInspector, type QueueInspectorOptions, type QueueState } from './inspector';
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
  declareEventsExchange,
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
  BrokerBusyError,
  PublishNackedError,
  PublishTimeoutError,
  UnroutableError,
  RpcTimeoutError,
  ClosedError,
  toBrokerError,
  type LateOutcome,
} from './errors';
export { safeUrl, parseAmqpUrls } from './url';
export type { Channel, ChannelModel, MessageProperties, MessagePropertyHeaders } from 'amqplib';
