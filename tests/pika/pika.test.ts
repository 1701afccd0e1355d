// Interop with plain Python pika clients (Debian's python3-pika), in both directions, on a private vhost.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { Broker, Publisher } from '@warren/messaging';
import { testAmqpUrl } from '../support/broker';
import { createVhost, type TestVhost } from '../support/vhost';
import { startNode, startProcess, stopAll, type Proc } from '../support/processes';
import { memoryLogger } from '../messaging/helpers';

const PY = '/usr/bin/python3'; // Debian's interpreter, where python3-pika is importable
const script = (name: string) => path.join(__dirname, name);
const run = promisify(execFile);

let vhost: TestVhost;
let hello: Proc;

beforeAll(async () => {
  vhost = await createVhost(await testAmqpUrl(), 'warren-pika');
  hello = startNode('services/hello/dist/main.js', { AMQP_URL: vhost.url, METRICS_PORT: '0' });
  await hello.waitFor(/service ready/);
});

afterAll(async () => {
  await stopAll();
  await vhost.remove();
});

test('python3-pika is installed for /usr/bin/python3', async () => {
  const { stdout } = await run(PY, ['-c', 'import pika; print(pika.__version__)']);
  expect(stdout.trim()).toMatch(/^\d+\.\d+/);
});

test("the pika tutorial's send.py reaches the TypeScript hello service, which logs `Received <body>`", async () => {
  const { stdout } = await run(PY, [script('send.py'), vhost.url, 'Hello World!']);
  expect(stdout).toContain('[x] Sent');
  const line = await hello.waitFor(/"msg":"Received Hello World!"/);
  expect(line).toBeTruthy();
});

test('a pika RPC client gets a greeting from hello over direct reply-to', async () => {
  const { stdout } = await run(PY, [script('call.py'), vhost.url, 'pika']);
  expect(stdout.trim()).toBe('reply Hello, pika! status 200');
});

test("a message the TypeScript side publishes to `hello` reaches pika's receive.py byte for byte", async () => {
  await hello.stop();
  const receiver = startProcess(PY, [script('receive.py'), vhost.url], { label: 'receive.py' });
  await receiver.waitFor(/ready/);

  const { logger } = memoryLogger();
  const broker = await Broker.connect({ url: vhost.url, logger, connectionName: 'pika.test' });
  const publisher = await Publisher.create(broker, { logger });
  const body = Buffer.from([0x00, 0xff, 0x10, 0x7b, 0x22, 0xc3, 0xa9, 0x0a]);
  await publisher.send('hello', body, { contentType: 'application/octet-stream' });
  expect(await receiver.exited).toBe(0);
  expect(receiver.output()).toContain(`received ${body.toString('hex')} application/octet-stream`);
  await broker.close();
});
