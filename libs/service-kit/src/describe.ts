// What a service advertises about its input in its heartbeats: its description and the JSON Schema of its zod schema, bounded.
import { z } from 'zod';
import { MAX_DESCRIPTION, MAX_EVENT_PATTERNS, MAX_INPUT_SCHEMA_BYTES } from '@warren/protocol';
import { eventPatterns, type ServiceDefinition } from './define';

export interface InputDescription {
  description?: string;
  inputSchema?: Record<string, unknown>;
  /** Its event subscriptions (topic patterns). */
  events?: string[];
  /** Why the schema is not advertised, when the definition has one (logged at start). */
  omitted?: string;
}

/**
 * The definition's input as JSON Schema (zod 4's `z.toJSONSchema`, the input side: defaults are
 * optional for callers). Types JSON cannot express (dates, functions) become "any"; a schema
 * larger than the heartbeat allows is left out, and the reason returned.
 */
export function describeInput(def: ServiceDefinition): InputDescription {
  const out: InputDescription = {};
  if (def.description) out.description = oneLine(def.description).slice(0, MAX_DESCRIPTION);
  const events = eventPatterns(def.events);
  if (events.length > 0) out.events = events.slice(0, MAX_EVENT_PATTERNS);
  if (!def.schema) return out;
  let schema: Record<string, unknown>;
  try {
    schema = z.toJSONSchema(def.schema, { io: 'input', unrepresentable: 'any' }) as Record<
      string,
      unknown
    >;
  } catch (err) {
    return { ...out, omitted: `cannot be expressed as JSON Schema: ${(err as Error).message}` };
  }
  const size = JSON.stringify(schema).length;
  if (size > MAX_INPUT_SCHEMA_BYTES)
    return { ...out, omitted: `its JSON Schema is ${size} bytes, over ${MAX_INPUT_SCHEMA_BYTES}` };
  return { ...out, inputSchema: schema };
}

/** Printable ASCII on one line (what a heartbeat may carry). */
function oneLine(text: string): string {
  return text
    .replace(/\s+/g, ' ')
    .replace(/[^\x20-\x7e]/g, '?')
    .trim();
}
