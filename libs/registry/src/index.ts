// Public surface of @warren/registry.
export {
  ServiceRegistry,
  scrapeTarget,
  DROP_REASONS,
  REGISTRY_DEFAULTS,
  type BeatVerdict,
  type DescribedService,
  type HeartbeatMessage,
  type InstanceView,
  type RegistryOptions,
  type SdTargetGroup,
  type ServiceView,
} from './registry';
export { RegistryListener, type RegistryListenerOptions } from './registry-listener';
export { Throttle } from './throttle';
