// The heartbeat message: what a service instance announces, and the one schema every reader checks it against.
import { z } from 'zod';
import { RESERVED_NAMES, SERVICE_NAME } from './names';
import { MAX_TOPIC_LENGTH, TOPIC_PATTERN } from './events';

/** Event subscriptions a heartbeat may list. */
export const MAX_EVENT_PATTERNS = 64;

/** A heartbeat body larger than this is not read at all. */
export const MAX_HEARTBEAT_BYTES = 32 * 1024;
/** The input schema a service advertises, serialised, at most this large (else it is left out). */
export const MAX_INPUT_SCHEMA_BYTES = 16 * 1024;
/** A service's description, at most this many characters. */
export const MAX_DESCRIPTION = 500;

/** A JSON Schema object (draft 2020-12), bounded when serialised. */
const jsonSchemaObject = z
  .record(z.string(), z.unknown())
  .refine(
    (v) => JSON.stringify(v).length <= MAX_INPUT_SCHEMA_BYTES,
    `is larger than ${MAX_INPUT_SCHEMA_BYTES} bytes`,
  );

const PRINTABLE = /^[\x20-\x7e]*$/;
const INSTANCE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

const httpUrl = z
  .string()
  .max(2048)
  .refine((v) => {
    try {
      const u = new URL(v);
      return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
    } catch {
      return false;
    }
  }, 'must be an http(s) URL');

/** What a heartbeat may carry; unknown fields are ignored, bounds keep one beat small. */
export const heartbeatSchema = z.object({
  service: z
    .string()
    .regex(SERVICE_NAME)
    .refine((s) => !RESERVED_NAMES.has(s), 'is a reserved name'),
  instanceId: z.string().regex(INSTANCE_ID),
  host: z.string().max(255).regex(PRINTABLE).default(''),
  metricsUrl: httpUrl,
  version: z.string().max(64).regex(PRINTABLE).default('0.0.0'),
  queue: z.string().max(255).optional(),
  pid: z
    .number()
    .int()
    .min(0)
    .max(2 ** 31)
    .optional(),
  startedAt: z.string().max(64).regex(PRINTABLE).optional(),
  intervalMs: z.number().int().min(100).max(600_000),
  state: z.enum(['up', 'stopping']),
  /** What the service does, for API descriptions (one line). */
  description: z.string().max(MAX_DESCRIPTION).regex(PRINTABLE).optional(),
  /** JSON Schema of the JSON input the service accepts; absent = any bytes. */
  inputSchema: jsonSchemaObject.optional(),
  /** The event topic patterns its queue is bound to (`warren.events`). */
  events: z
    .array(z.string().max(MAX_TOPIC_LENGTH).regex(TOPIC_PATTERN))
    .max(MAX_EVENT_PATTERNS)
    .optional(),
  /**
   * JSON Schemas of the events of the patterns that have their own (the others' events are
   * checked by `inputSchema`); with `inputSchema`, at most MAX_INPUT_SCHEMA_BYTES serialised.
   */
  eventSchemas: z
    .record(
      z.string().max(MAX_TOPIC_LENGTH).regex(TOPIC_PATTERN),
      z.record(z.string(), z.unknown()),
    )
    .refine(
      (v) => JSON.stringify(v).length <= MAX_INPUT_SCHEMA_BYTES,
      `is larger than ${MAX_INPUT_SCHEMA_BYTES} bytes`,
    )
    .optional(),
});

export type Heartbeat = z.output<typeof heartbeatSchema>;

/** A heartbeat body as read off the wire, or why it is not one. */
export function parseHeartbeat(
  body: Buffer,
): { ok: true; beat: Heartbeat } | { ok: false; reason: 'too-large' | 'not-json' | 'invalid' } {
  if (body.length > MAX_HEARTBEAT_BYTES) return { ok: false, reason: 'too-large' };
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return { ok: false, reason: 'not-json' };
  }
  const parsed = heartbeatSchema.safeParse(json);
  return parsed.success ? { ok: true, beat: parsed.data } : { ok: false, reason: 'invalid' };
}
