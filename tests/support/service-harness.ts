// The service test harness for this repository's tests: @warren/service-kit/testing on the test broker (testcontainers where none runs).
import type { ServiceDefinition } from '@warren/service-kit';
import {
  startServiceForTest as start,
  type HarnessOptions,
  type ServiceHarness,
} from '@warren/service-kit/testing';
import { testAmqpUrl } from './broker';

export type { DeadLetter, Reply, ServiceHarness } from '@warren/service-kit/testing';

export async function startServiceForTest(
  def: ServiceDefinition,
  options: HarnessOptions = {},
): Promise<ServiceHarness> {
  return start(def, { ...options, url: options.url ?? (await testAmqpUrl()) });
}
