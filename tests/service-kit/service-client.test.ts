// ctx.services between two running services: send (confirmed, one-way) and call (request/reply), carrying the request id.
import { z } from 'zod';
import { Broker, RpcClient } from '@warren/messaging';
import { createLogger } from '@warren/observability';
import { defineService, runService, type RunningService } from '@warren/service-kit';
import { testAmqpUrl, uniqueName } from '../support/broker';
import { eventually } from '../support/time';
import { RawAmqp, serviceEnv } from '../gateway/helpers';

const upper = uniqueName('sc-upper');
const front = uniqueName('sc-front');
const seen: { text: string; requestId: string; traceparent: string | undefined }[] = [];
const running: RunningService[] = [];
const TRACE = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

beforeAll(async () => {
  const url = await testAmqpUrl();
  running.push(
    await runService(
      defineService({
        name: upper,
        schema: z.object({ text: z.string() }),
        handler: (input, ctx) => {
          seen.push({ text: input.text, requestId: ctx.requestId, traceparent: ctx.traceparent });
          return { upper: input.text.toUpperCase() };
        },
      }),
      { env: serviceEnv(url), handleSignals: false },
    ),
  );
  running.push(
    await runService(
      defineService({
        name: front,
        schema: z.object({ text: z.string(), mode: z.enum(['call', 'send']) }),
        handler: async (input, ctx) => {
          if (input.mode === 'send')
            return { messageId: await ctx.services.send(upper, { text: input.text }) };
          const reply = await ctx.services.call(upper, { text: input.text }, { timeoutMs: 5000 });
          return { status: reply.status, body: JSON.parse(reply.body.toString()) as unknown };
        },
      }),
      { env: serviceEnv(url), handleSignals: false },
    ),
  );
});

afterAll(async () => {
  for (const s of running) await s.stop();
  const amqp = await RawAmqp.open(await testAmqpUrl());
  for (const n of [upper, front]) await amqp.deleteServiceQueues(n);
  await amqp.close();
});

/** Calls `front` as a client would, with a request id and a trace of its own. */
async function callFront(body: unknown, requestId: string): Promise<Record<string, unknown>> {
  const logger = createLogger({ service: 'test', level: 'silent' });
  const broker = await Broker.connect({
    url: await testAmqpUrl(),
    logger,
    connectionName: 'sc.test',
  });
  const rpc = await RpcClient.create(broker, { logger });
  try {
    const reply = await rpc.call(front, Buffer.from(JSON.stringify(body)), {
      timeoutMs: 10_000,
      contentType: 'application/json',
      headers: { 'x-request-id': requestId, traceparent: TRACE },
    });
    return JSON.parse(reply.body.toString()) as Record<string, unknown>;
  } finally {
    await rpc.close();
    await broker.close();
  }
}

it('a handler calls another service and gets its reply, with the request id and trace carried', async () => {
  const out = await callFront({ text: 'hi', mode: 'call' }, 'req-sc-call-1');
  expect(out).toEqual({ status: 200, body: { upper: 'HI' } });
  expect(seen.find((s) => s.text === 'hi')).toEqual({
    text: 'hi',
    requestId: 'req-sc-call-1',
    traceparent: TRACE,
  });
});

it('a handler sends a one-way message another service handles', async () => {
  const out = await callFront({ text: 'fire', mode: 'send' }, 'req-sc-send-1');
  expect(typeof out.messageId).toBe('string');
  await eventually(() => seen.some((s) => s.text === 'fire'), 10_000, 'the sent message handled');
  expect(seen.find((s) => s.text === 'fire')?.requestId).toBe('req-sc-send-1');
});
