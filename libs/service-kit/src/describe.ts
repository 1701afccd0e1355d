// What a service advertises about its input in its heartbeats: its description, event subscriptions, and the JSON Schemas of its zod schemas, bounded.
import { z } from 'zod';
import { MAX_DESCRIPTION, MAX_EVENT_PATTERNS, MAX_INPUT_SCHEMA_BYTES } from '@warren/protocol';
import { eventPatterns, type ServiceDefinition } from './define';

export interface InputDescription {
  description?: string;
  inputSchema?: Record<string, unknown>;
  /** Its event subscriptions (topic patterns). */
  events?: string[];
  /** JSON Schemas of the events of the patterns with a schema of their own. */
  eventSchemas?: Record<string, Record<string, unknown>>;
  /** Why a schema is not advertised, when the definition has one (logged at start). */
  omitted?: string;
}

/** A zod schema's input side as JSON Schema, or why it cannot be one. */
function jsonSchema(schema: z.ZodType): Record<string, unknown> | string {
  try {
    // The input side: defaults are optional for callers. Types JSON cannot express (dates,
    // functions) become "any".
    return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<
      string,
      unknown
    >;
  } catch (err) {
    return `cannot be expressed as JSON Schema: ${(err as Error).message}`;
  }
}

/**
 * The definition's input as JSON Schema (zod 4's `z.toJSONSchema`), and the schemas of the event
 * patterns that have their own. The schemas together must fit MAX_INPUT_SCHEMA_BYTES (a heartbeat
 * stays small): the input schema first, then the event schemas as a whole; what does not fit is
 * left out and the reason returned.
 */
export function describeInput(def: ServiceDefinition): InputDescription {
  const out: InputDescription = {};
  const omitted: string[] = [];
  if (def.description) out.description = oneLine(def.description).slice(0, MAX_DESCRIPTION);
  const events = eventPatterns(def.events);
  if (events.length > 0) out.events = events.slice(0, MAX_EVENT_PATTERNS);
  let room = MAX_INPUT_SCHEMA_BYTES;
  if (def.schema) {
    const schema = jsonSchema(def.schema);
    const size = typeof schema === 'string' ? 0 : JSON.stringify(schema).length;
    if (typeof schema === 'string') omitted.push(`input schema ${schema}`);
    else if (size > room)
      omitted.push(
        `input schema: its JSON Schema is ${size} bytes, over ${MAX_INPUT_SCHEMA_BYTES}`,
      );
    else {
      out.inputSchema = schema;
      room -= size;
    }
  }
  if (def.events !== undefined && !Array.isArray(def.events)) {
    const own: Record<string, Record<string, unknown>> = {};
    for (const [pattern, schema] of Object.entries(
      def.events as Record<string, z.ZodType | null>,
    )) {
      if (!schema) continue;
      const s = jsonSchema(schema);
      if (typeof s === 'string') omitted.push(`event schema of ${pattern} ${s}`);
      else own[pattern] = s;
    }
    if (Object.keys(own).length > 0) {
      const size = JSON.stringify(own).length;
      if (size > room)
        omitted.push(`event schemas: ${size} bytes, over what the input schema leaves (${room})`);
      else out.eventSchemas = own;
    }
  }
  if (omitted.length > 0) out.omitted = omitted.join('; ');
  return out;
}

/** Printable ASCII on one line (what a heartbeat may carry). */
function oneLine(text: string): string {
  return text
    .replace(/\s+/g, ' ')
    .replace(/[^\x20-\x7e]/g, '?')
    .trim();
}
