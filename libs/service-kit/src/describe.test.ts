import { z } from 'zod';
import { MAX_INPUT_SCHEMA_BYTES, heartbeatSchema } from '@warren/protocol';
import { defineService } from './define';
import { describeInput } from './describe';

test('advertises the input side of the zod schema and a one-line description', () => {
  const def = defineService({
    name: 'counter',
    description: 'Counts\nwords — fast',
    schema: z.object({ text: z.string().max(10), top: z.number().int().default(5) }),
    handler: () => null,
  });
  const d = describeInput(def);
  expect(d.description).toBe('Counts words ? fast');
  expect(d.inputSchema).toMatchObject({
    type: 'object',
    properties: { text: { type: 'string', maxLength: 10 } },
    required: ['text'],
  });
  // What the heartbeat schema accepts.
  expect(heartbeatSchema.shape.inputSchema.safeParse(d.inputSchema).success).toBe(true);
});

test('a raw service advertises no schema; an oversized one is left out with the reason', () => {
  expect(describeInput(defineService({ name: 'raw', handler: () => null }))).toEqual({});
  const big = z.object(
    Object.fromEntries(
      Array.from({ length: 2000 }, (_, i) => [`field_${i}`, z.string().describe('a long field')]),
    ),
  );
  const d = describeInput(defineService({ name: 'big', schema: big, handler: () => null }));
  expect(d.inputSchema).toBeUndefined();
  expect(d.omitted).toMatch(new RegExp(`over ${MAX_INPUT_SCHEMA_BYTES}`));
});

test('event patterns are advertised, with the JSON Schema of each pattern that has its own', () => {
  const d = describeInput(
    defineService({
      name: 'subscriber',
      schema: z.object({ id: z.number() }),
      events: {
        'order.created': z.object({ id: z.number(), address: z.string() }),
        'audit.#': null,
      },
      handler: () => null,
    }),
  );
  expect(d.events).toEqual(['order.created', 'audit.#']);
  expect(Object.keys(d.eventSchemas ?? {})).toEqual(['order.created']);
  expect(d.eventSchemas?.['order.created']).toMatchObject({ required: ['id', 'address'] });
  expect(d.omitted).toBeUndefined();
});

test('event schemas that do not fit beside the input schema are left out, with the reason', () => {
  const big = z.object(
    Object.fromEntries(
      Array.from({ length: 300 }, (_, i) => [`field_${i}_${'x'.repeat(20)}`, z.string()]),
    ),
  );
  const d = describeInput(
    defineService({
      name: 'subscriber',
      schema: z.object({ id: z.number() }),
      events: { 'order.created': big },
      handler: () => null,
    }),
  );
  expect(d.inputSchema).toBeDefined();
  expect(d.eventSchemas).toBeUndefined();
  expect(d.omitted).toMatch(/event schemas: \d+ bytes, over what the input schema leaves/);
});
