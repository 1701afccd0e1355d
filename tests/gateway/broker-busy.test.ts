// A broker memory alarm on a private RabbitMQ node: the gateway answers 503 broker-busy + Retry-After at once, /readyz 503, and recovers.
import { connect, type ChannelModel } from 'amqplib';
import { startPrivateBroker, type PrivateBroker } from '../support/private-broker';
import { expectProblem, post, startTestGateway, type TestGateway } from './helpers';
import { eventually } from '../support/time';

jest.setTimeout(90_000);

const name = 'busy-svc';
/** A queue with a consumer (that never answers), so calls to it pass the gateway's liveness check. */
const called = 'busy-rpc';
let node: PrivateBroker;
let raw: ChannelModel;
let gw: TestGateway;

beforeAll(async () => {
  node = await startPrivateBroker('warren-busy');
  raw = await connect(node.url);
  const ch = await raw.createChannel();
  await ch.assertQueue(name, { durable: true });
  await ch.assertQueue(called, { durable: true });
  await ch.consume(called, () => undefined);
  gw = await startTestGateway(node.url, { GATEWAY_CONFIRM_TIMEOUT_MS: '1000' });
});

afterAll(async () => {
  await gw?.stop().catch(() => undefined);
  await raw?.close().catch(() => undefined);
  await node?.stop();
});

const ready = async (): Promise<number> =>
  (await fetch(`http://127.0.0.1:${gw.opsPort}/readyz`)).status;

/** Ready messages in the queue, asked on a connection that never publishes (never blocked). */
async function depth(): Promise<number> {
  const ch = await raw.createChannel();
  const { messageCount } = await ch.checkQueue(name);
  await ch.close();
  return messageCount;
}

it('answers 503 broker-busy with Retry-After while the broker blocks publishing, sends none of them, recovers', async () => {
  expect((await post(gw, `/v1/${name}`, '{"n":1}')).status).toBe(202);

  await node.ctl('set_vm_memory_high_watermark', '0.0000001');
  try {
    await eventually(
      async () => (await node.ctl('eval', 'rabbit_alarm:get_alarms().')).includes('memory'),
      15_000,
      'memory alarm',
    );
    // The publish that makes RabbitMQ block the connection is held, unconfirmed: 503, outcome unknown.
    const held = await expectProblem(await post(gw, `/v1/${name}`, '{"n":2}'), 503);
    expect(held.type).toBe('urn:warren:error:broker-unavailable');
    expect(held.detail).toMatch(/may still be delivered/);
    await eventually(() => gw.connections.publish.isBlocked, 10_000, 'connection.blocked');
    expect(await ready()).toBe(503);

    for (const path of [`/v1/${name}`, `/v1/${called}?wait=true&timeoutMs=5000`]) {
      const res = await post(gw, path, '{"n":3}');
      const problem = await expectProblem(res, 503);
      expect(problem.type).toBe('urn:warren:error:broker-busy');
      expect(problem.title).toBe('Broker busy');
      expect(res.headers.get('retry-after')).toBe('1');
    }
  } finally {
    await node.ctl('set_vm_memory_high_watermark', '0.4');
  }
  await eventually(async () => (await ready()) === 200, 15_000, '/readyz 200 after the alarm');
  expect((await post(gw, `/v1/${name}`, '{"n":4}')).status).toBe(202);
  // n=1, the held n=2 (delivered once the alarm cleared) and n=4: none of the busy answers.
  expect(await depth()).toBe(3);
});
