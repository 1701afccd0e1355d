// RPC client over direct reply-to against the real broker: reply, timeout, late replies, no leaks.
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { Broker, RpcClient, RpcTimeoutError, UnroutableError } from '@warren/messaging';
import { testAmqpUrl, uniqueName } from '../support/broker';
import { memoryLogger, rawConnection } from './helpers';

let broker: Broker;
let rpc: RpcClient;
let raw: ChannelModel;
let server: Channel;
const queue = uniqueName('rpc');
let lateReplies = 0;
const pendingSeen: number[] = [];

beforeAll(async () => {
  const url = await testAmqpUrl();
  const { logger } = memoryLogger();
  broker = await Broker.connect({ url, logger, connectionName: 'rpc.test' });
  rpc = await RpcClient.create(broker, {
    logger,
    onLateReply: () => lateReplies++,
    onPendingChange: (n) => pendingSeen.push(n),
  });
  raw = await rawConnection(url);
  server = await raw.createChannel();
  await server.assertQueue(queue, { durable: false, autoDelete: true });
  // A server that echoes, except "slow:<ms>" bodies which it answers late.
  await server.consume(queue, (msg: ConsumeMessage | null) => {
    if (!msg) return;
    const text = msg.content.toString();
    const delay = text.startsWith('slow:') ? Number(text.slice(5)) : 0;
    setTimeout(() => {
      server.sendToQueue(String(msg.properties.replyTo), msg.content, {
        correlationId: msg.properties.correlationId as string,
        contentType: msg.properties.contentType as string,
        headers: text === 'teapot' ? { 'x-status': 418 } : {},
      });
      server.ack(msg);
    }, delay);
  });
});

afterAll(async () => {
  await raw.close();
  await rpc.close();
  await broker.close();
});

test('a call resolves with the reply body, content type and x-status', async () => {
  const reply = await rpc.call(queue, Buffer.from('{"a":1}'), {
    timeoutMs: 2000,
    contentType: 'application/json',
  });
  expect(reply.body.toString()).toBe('{"a":1}');
  expect(reply.contentType).toBe('application/json');
  expect(reply.status).toBe(200);
  const teapot = await rpc.call(queue, Buffer.from('teapot'), { timeoutMs: 2000 });
  expect(teapot.status).toBe(418);
});

test('many concurrent calls each get their own reply', async () => {
  const replies = await Promise.all(
    Array.from({ length: 300 }, (_, i) =>
      rpc.call(queue, Buffer.from(`n${i}`), { timeoutMs: 5000 }),
    ),
  );
  replies.forEach((r, i) => expect(r.body.toString()).toBe(`n${i}`));
  expect(rpc.pendingCalls).toBe(0);
});

test('a late reply is dropped and counted, never given to a later call', async () => {
  const before = lateReplies;
  await expect(rpc.call(queue, Buffer.from('slow:400'), { timeoutMs: 100 })).rejects.toBeInstanceOf(
    RpcTimeoutError,
  );
  expect(rpc.pendingCalls).toBe(0);
  // A call made while the late reply arrives must get its own answer.
  const next = await rpc.call(queue, Buffer.from('slow:500'), { timeoutMs: 2000 });
  expect(next.body.toString()).toBe('slow:500');
  expect(lateReplies).toBe(before + 1);
});

test('a call to a queue that does not exist fails at once with UnroutableError', async () => {
  await expect(
    rpc.call(uniqueName('none'), Buffer.from('x'), { timeoutMs: 5000 }),
  ).rejects.toBeInstanceOf(UnroutableError);
  expect(rpc.pendingCalls).toBe(0);
  expect(pendingSeen.at(-1)).toBe(0);
});
