// OpenAPI 3.1 and AsyncAPI 3 documents of this gateway, generated from what the live services advertise in their heartbeats.
import {
  ERRORS,
  EVENTS_EXCHANGE,
  HEADERS,
  MAX_TOPIC_LENGTH,
  PROBLEM_CONTENT_TYPE,
  TOPIC,
} from '@warren/protocol';
import type { DescribedService } from '@warren/registry';
import { DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS } from './input';

export type { DescribedService };

export interface ApiDocOptions {
  /** Whether API keys are configured (the documents then declare the security schemes). */
  apiKeys: boolean;
}

/** The version of the HTTP API these documents describe (`/v1`). */
export const API_VERSION = '1.0.0';

const PROBLEM = {
  type: 'object',
  description: 'RFC 9457 problem details; `type` is urn:warren:error:<kebab-code>',
  required: ['type', 'title', 'status', 'detail'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer', minimum: 400, maximum: 599 },
    detail: { type: 'string' },
    requestId: { type: 'string' },
  },
};

/** One response per problem status of the protocol's registry, naming its titles. */
function problemResponses(): Record<string, unknown> {
  const titles = new Map<number, Set<string>>();
  for (const spec of Object.values(ERRORS)) {
    const set = titles.get(spec.status) ?? new Set<string>();
    set.add(spec.title);
    titles.set(spec.status, set);
  }
  const out: Record<string, unknown> = {};
  for (const status of [...titles.keys()].sort((a, b) => a - b))
    out[String(status)] = {
      description: [...(titles.get(status) ?? [])].join('; '),
      content: { [PROBLEM_CONTENT_TYPE]: { schema: { $ref: '#/components/schemas/Problem' } } },
    };
  return out;
}

const operationId = (name: string): string =>
  `call_${name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase())}`;

/** The input schema as a schema inside another document (its own `$schema` dropped). */
function embedded(schema: Record<string, unknown>): Record<string, unknown> {
  const { $schema: _dialect, ...rest } = schema;
  return rest;
}

const ANY_BODY = {
  'application/json': {},
  'text/plain': {},
  'application/octet-stream': {},
};

export function openApiDocument(
  services: readonly DescribedService[],
  options: ApiDocOptions,
): Record<string, unknown> {
  const problems = problemResponses();
  const paths: Record<string, unknown> = {
    '/v1/services': {
      get: {
        operationId: 'listServices',
        summary: 'The live registry: services and their instances',
        responses: {
          '200': { description: 'live services', content: { 'application/json': {} } },
          '401': problems['401'],
        },
      },
    },
  };
  paths['/v1/events/{topic}'] = {
    post: {
      operationId: 'publishEvent',
      summary: `Publish an event to every service subscribed to its topic (${EVENTS_EXCHANGE})`,
      parameters: [
        {
          name: 'topic',
          in: 'path',
          required: true,
          description: 'dot-separated words (order.created); subscribers match it with * and #',
          schema: { type: 'string', pattern: TOPIC.source, maxLength: MAX_TOPIC_LENGTH },
        },
        {
          name: HEADERS.requestId,
          in: 'header',
          description: 'kept when well formed, else a new one; always echoed',
          schema: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{7,127}$' },
        },
        { name: HEADERS.traceparent, in: 'header', schema: { type: 'string' } },
      ],
      requestBody: { required: true, content: ANY_BODY },
      responses: {
        '202': {
          description: 'confirmed by the broker, routed to at least one subscriber',
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Accepted' } } },
        },
        ...problems,
      },
    },
  };
  for (const s of services) {
    paths[`/v1/${s.name}`] = {
      post: {
        operationId: operationId(s.name),
        summary: s.description ?? `Send a message to ${s.name}`,
        parameters: [
          {
            name: 'wait',
            in: 'query',
            description: 'true: wait for the reply (200); absent or false: 202 once confirmed',
            schema: { type: 'boolean' },
          },
          {
            name: 'timeoutMs',
            in: 'query',
            description: `how long to wait for the reply (default ${DEFAULT_TIMEOUT_MS}, capped at ${MAX_TIMEOUT_MS})`,
            schema: { type: 'integer', minimum: 1 },
          },
          {
            name: 'type',
            in: 'query',
            description: 'an action, sent as the AMQP `type`',
            schema: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9._:-]{0,127}$' },
          },
          {
            name: HEADERS.requestId,
            in: 'header',
            description: 'kept when well formed, else a new one; always echoed',
            schema: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{7,127}$' },
          },
          { name: HEADERS.traceparent, in: 'header', schema: { type: 'string' } },
        ],
        requestBody: {
          required: true,
          content: s.inputSchema
            ? { 'application/json': { schema: embedded(s.inputSchema) } }
            : ANY_BODY,
        },
        responses: {
          '200': {
            description: `${s.name}'s reply (?wait=true): its status, body and content type`,
            content: { '*/*': {} },
          },
          '202': {
            description: 'confirmed by the broker',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Accepted' } } },
          },
          ...problems,
        },
      },
    };
  }
  const doc: Record<string, unknown> = {
    openapi: '3.1.0',
    info: {
      title: 'Warren gateway',
      version: API_VERSION,
      description:
        'HTTP -> RabbitMQ. One POST operation per live service, generated from what its instances announce.',
    },
    paths,
    components: {
      schemas: {
        Problem: PROBLEM,
        Accepted: {
          type: 'object',
          required: ['requestId'],
          properties: {
            requestId: { type: 'string' },
            messageId: { type: 'string' },
            duplicate: {
              type: 'boolean',
              description:
                'true: a retry (same x-request-id and body) of a publish that was answered 503 with its outcome unknown and was confirmed since; not sent again',
            },
          },
        },
      },
      ...(options.apiKeys
        ? {
            securitySchemes: {
              bearer: { type: 'http', scheme: 'bearer' },
              apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' },
            },
          }
        : {}),
    },
  };
  if (options.apiKeys) doc.security = [{ bearer: [] }, { apiKey: [] }];
  return doc;
}

/** AsyncAPI 3: a channel per service queue, the message its consumers receive, the operation that sends it. */
export function asyncApiDocument(services: readonly DescribedService[]): Record<string, unknown> {
  const channels: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  for (const s of services) {
    channels[s.name] = {
      address: s.name,
      ...(s.description ? { description: s.description } : {}),
      messages: {
        request: {
          name: `${s.name}.request`,
          contentType: s.inputSchema ? 'application/json' : 'application/octet-stream',
          headers: {
            type: 'object',
            properties: {
              [HEADERS.requestId]: { type: 'string' },
              [HEADERS.traceparent]: { type: 'string' },
              [HEADERS.attempt]: { type: 'integer', minimum: 1 },
              [HEADERS.publishedAt]: { type: 'integer' },
            },
          },
          payload: s.inputSchema ? embedded(s.inputSchema) : {},
        },
      },
      bindings: { amqp: { is: 'queue', queue: { name: s.name }, bindingVersion: '0.3.0' } },
    };
    operations[`send_${s.name}`] = {
      action: 'send',
      channel: { $ref: `#/channels/${s.name}` },
      messages: [{ $ref: `#/channels/${s.name}/messages/request` }],
    };
  }
  // Events: a channel per subscribed topic pattern on the topic exchange, and per subscriber a
  // message (the payload its events are checked against: the pattern's own schema, else the
  // service's) and a receive operation: each service's queue gets every matching event, its
  // instances compete for it.
  const subscribers = new Map<string, DescribedService[]>();
  for (const s of services)
    for (const pattern of s.events ?? [])
      subscribers.set(pattern, [...(subscribers.get(pattern) ?? []), s]);
  for (const [pattern, subs] of [...subscribers].sort(([a], [b]) => a.localeCompare(b))) {
    const id = eventChannelId(pattern);
    const messages: Record<string, unknown> = {};
    for (const s of subs) {
      const schema = s.eventSchemas?.[pattern] ?? s.inputSchema;
      messages[`event_${s.name}`] = {
        name: `${pattern} (${s.name})`,
        contentType: schema ? 'application/json' : 'application/octet-stream',
        headers: {
          type: 'object',
          properties: {
            [HEADERS.event]: { type: 'string', description: 'the topic' },
            [HEADERS.requestId]: { type: 'string' },
            [HEADERS.traceparent]: { type: 'string' },
          },
        },
        payload: schema ? embedded(schema) : {},
      };
      operations[`receive_${s.name}_${id}`] = {
        action: 'receive',
        title: `${s.name} subscribes to ${pattern}`,
        channel: { $ref: `#/channels/${id}` },
        messages: [{ $ref: `#/channels/${id}/messages/event_${s.name}` }],
      };
    }
    channels[id] = {
      address: pattern,
      title: `events ${pattern}`,
      description: `Events whose topic matches "${pattern}" (${EVENTS_EXCHANGE}); subscribers: ${subs.map((s) => s.name).join(', ')}`,
      messages,
      bindings: {
        amqp: {
          is: 'routingKey',
          exchange: { name: EVENTS_EXCHANGE, type: 'topic', durable: true, autoDelete: false },
          bindingVersion: '0.3.0',
        },
      },
    };
  }
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'Warren services',
      version: API_VERSION,
      description: `The queues of the live services and the messages they consume (default exchange), and the event topics they subscribe to (${EVENTS_EXCHANGE}).`,
    },
    defaultContentType: 'application/json',
    channels,
    operations,
  };
}

/** A channel id for a topic pattern: letters, digits, "_" and "-" only (it goes into $refs). */
function eventChannelId(pattern: string): string {
  return `events_${pattern.replace(/\./g, '_').replace(/\*/g, 'star').replace(/#/g, 'hash')}`;
}
