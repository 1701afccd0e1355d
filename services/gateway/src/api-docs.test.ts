import { validateAsyncApi, validateOpenApi } from '../../../tests/support/api-docs';
import { asyncApiDocument, openApiDocument, type DescribedService } from './api-docs';

const services: DescribedService[] = [
  { name: 'echo', description: 'Replies with the body it received' },
  {
    name: 'word-count',
    inputSchema: {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      properties: { text: { type: 'string', maxLength: 10 } },
      required: ['text'],
    },
  },
];

describe('OpenAPI 3.1', () => {
  const doc = openApiDocument(services, { apiKeys: true });

  it('is valid against the official schema (and the validator refuses a broken one)', async () => {
    expect(await validateOpenApi(doc)).toBe(true);
    expect(await validateOpenApi({ ...doc, info: undefined })).toBe(false);
  });

  it('has one POST per live service with its request schema, 202/200 and every problem status', () => {
    const paths = doc.paths as Record<string, { post: Record<string, unknown> }>;
    expect(Object.keys(paths).sort()).toEqual([
      '/v1/echo',
      '/v1/events/{topic}',
      '/v1/services',
      '/v1/word-count',
    ]);
    const wc = paths['/v1/word-count']?.post as {
      operationId: string;
      requestBody: { content: Record<string, { schema?: unknown }> };
      responses: Record<string, unknown>;
    };
    expect(wc.operationId).toBe('call_wordCount');
    expect(wc.requestBody.content['application/json']?.schema).toEqual({
      type: 'object',
      properties: { text: { type: 'string', maxLength: 10 } },
      required: ['text'],
    });
    expect(Object.keys(wc.responses)).toEqual(
      expect.arrayContaining([
        '200',
        '202',
        '400',
        '401',
        '404',
        '413',
        '415',
        '429',
        '502',
        '503',
        '504',
      ]),
    );
    const echo = paths['/v1/echo']?.post as { summary: string; requestBody: { content: object } };
    expect(echo.summary).toBe('Replies with the body it received');
    expect(Object.keys(echo.requestBody.content)).toContain('application/octet-stream');
    expect(doc.security).toEqual([{ bearer: [] }, { apiKey: [] }]);
    expect(openApiDocument(services, { apiKeys: false }).security).toBeUndefined();
  });
});

describe('AsyncAPI 3', () => {
  const doc = asyncApiDocument(services);

  it('is valid against the official schema (and the validator refuses a broken one)', () => {
    expect(validateAsyncApi(doc)).toBe(true);
    expect(validateAsyncApi({ ...doc, asyncapi: '9.9.9' })).toBe(false);
  });

  it('has a channel per service queue with its payload schema and a send operation', () => {
    const channels = doc.channels as Record<
      string,
      { address: string; messages: Record<string, { payload: unknown }> }
    >;
    expect(channels['word-count']?.address).toBe('word-count');
    expect(channels['word-count']?.messages.request?.payload).toMatchObject({
      properties: { text: { type: 'string' } },
    });
    expect(Object.keys(doc.operations as object).sort()).toEqual(['send_echo', 'send_word-count']);
  });
});
