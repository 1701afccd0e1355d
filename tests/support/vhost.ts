// A throwaway vhost per test file on the local broker, for tests that need fixed queue names (e.g. `hello`).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { uniqueName } from './broker';

const run = promisify(execFile);

export interface TestVhost {
  name: string;
  url: string;
  remove(): Promise<void>;
}

/** Creates a vhost with full permissions for guest (needs rabbitmqctl, i.e. the broker on this machine). */
export async function createVhost(baseUrl: string, prefix = 'warren-test'): Promise<TestVhost> {
  const name = uniqueName(prefix);
  await run('rabbitmqctl', ['-q', 'add_vhost', name]);
  await run('rabbitmqctl', ['-q', 'set_permissions', '-p', name, 'guest', '.*', '.*', '.*']);
  const u = new URL(baseUrl);
  u.pathname = `/${encodeURIComponent(name)}`;
  return {
    name,
    url: u.toString(),
    remove: async () =>
      void (await run('rabbitmqctl', ['-q', 'delete_vhost', name]).catch(() => undefined)),
  };
}
