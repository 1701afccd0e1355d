// GET /openapi.json and /asyncapi.json from the running system: the live services' schemas, valid documents.
import { runService, type RunningService } from '@warren/service-kit';
import echo from '../../services/echo/src/service';
import wordcount from '../../services/wordcount/src/service';
import { testAmqpUrl, uniqueName } from '../support/broker';
import { validateAsyncApi, validateOpenApi } from '../support/api-docs';
import { RawAmqp, serviceEnv, startTestGateway, type TestGateway } from './helpers';
import { eventually } from '../support/time';

const wcName = uniqueName('gw-doc-wc');
const echoName = uniqueName('gw-doc-echo');
let gw: TestGateway;
const services: RunningService[] = [];

beforeAll(async () => {
  const url = await testAmqpUrl();
  gw = await startTestGateway(url);
  for (const def of [
    { ...wordcount, name: wcName },
    { ...echo, name: echoName },
  ])
    services.push(await runService(def, { env: serviceEnv(url), handleSignals: false }));
  await eventually(
    () => gw.registry.hasLive(wcName) && gw.registry.hasLive(echoName),
    10_000,
    'services registered',
  );
});

afterAll(async () => {
  for (const s of services) await s.stop();
  await gw?.stop();
  const amqp = await RawAmqp.open(await testAmqpUrl());
  for (const n of [wcName, echoName]) await amqp.deleteServiceQueues(n);
  await amqp.close();
});

type Json = Record<string, unknown>;
const get = async (path: string): Promise<Json> => {
  const res = await fetch(gw.url(path));
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/json');
  return (await res.json()) as Json;
};

it('serves an OpenAPI 3.1 document with each live service and its request schema', async () => {
  const doc = await get('/openapi.json');
  expect(await validateOpenApi(doc)).toBe(true);
  const paths = doc.paths as Record<string, { post?: Json }>;
  const wc = paths[`/v1/${wcName}`]?.post as {
    summary: string;
    requestBody: { content: Record<string, { schema?: Json }> };
  };
  expect(wc.summary).toBe(wordcount.description);
  // The schema wordcount declares with zod, as its instances announce it.
  expect(wc.requestBody.content['application/json']?.schema).toMatchObject({
    type: 'object',
    properties: { text: { type: 'string' } },
    required: expect.arrayContaining(['text']),
  });
  // echo takes any bytes: no schema.
  expect(
    Object.keys(
      (paths[`/v1/${echoName}`]?.post as { requestBody: { content: Json } }).requestBody.content,
    ),
  ).toContain('application/octet-stream');
});

it('serves an AsyncAPI 3 document with a channel per service queue', async () => {
  const doc = await get('/asyncapi.json');
  expect(validateAsyncApi(doc)).toBe(true);
  const channels = doc.channels as Record<
    string,
    { address: string; messages: Record<string, { payload: Json }> }
  >;
  expect(channels[wcName]?.address).toBe(wcName);
  expect(channels[wcName]?.messages.request?.payload).toMatchObject({
    properties: { text: { type: 'string' } },
  });
  expect(channels[echoName]?.address).toBe(echoName);
});
