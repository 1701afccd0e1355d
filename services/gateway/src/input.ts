// Pure request checks: service names, media types, request ids, W3C traceparent, call options.
import { randomFillSync, randomUUID } from 'node:crypto';
import { SERVICE_NAME_RULE, isMediaType, serviceNameProblem } from '@warren/protocol';
import { describeJsonFault, jsonFault } from './json';
import { problems } from './problems';

/** Throws a 400 (malformed) or 404 (reserved) problem unless `name` can be a service's queue. */
export function checkServiceName(name: string): void {
  const problem = serviceNameProblem(name);
  if (problem === 'invalid')
    throw problems.invalidService(
      `"${name.slice(0, 80)}" is not a service name: ${SERVICE_NAME_RULE}`,
    );
  if (problem === 'reserved') throw problems.reservedService(name);
}

export type BodyKind = 'json' | 'text' | 'binary';

/** AMQP `content-type` is a short string (255 bytes). */
const MAX_CONTENT_TYPE = 255;
const PRINTABLE = /^[\x20-\x7e]+$/;

/**
 * Classifies a Content-Type header: JSON (`application/json`, `application/*+json`) is validated,
 * `text/*` and `application/octet-stream` pass as they are; anything else is a 415.
 */
export function classifyContentType(header: string | undefined): BodyKind {
  if (!header) throw problems.unsupportedType(undefined);
  if (header.length > MAX_CONTENT_TYPE || !PRINTABLE.test(header))
    throw problems.badRequest('the Content-Type header is longer than 255 characters or not ASCII');
  const semi = header.indexOf(';');
  const type = (semi === -1 ? header : header.slice(0, semi)).trim().toLowerCase();
  let kind: BodyKind;
  if (type === 'application/json') kind = 'json';
  else if (type.startsWith('text/') && type.length > 5) kind = 'text';
  else if (type === 'application/octet-stream') kind = 'binary';
  else if (type.startsWith('application/') && type.endsWith('+json')) kind = 'json';
  else throw problems.unsupportedType(header);
  // The protocol's media-type rule, the one replies are held to: a service echoing it back (as
  // echo does) always writes a valid Content-Type.
  if (!isMediaType(header.trim()))
    throw problems.badRequest('the Content-Type header is not a valid media type (RFC 9110)');
  return kind;
}

/**
 * Deepest nesting of arrays/objects a JSON body may have. V8 parses any depth, but consumers may
 * not (Python's json stops near 1000 levels, recursive validators overflow their stacks), so a
 * body nested deeper than any real payload is refused here instead of poisoning a queue.
 */
export const MAX_JSON_DEPTH = 128;

/**
 * A JSON body must be one JSON text in UTF-8, nested at most MAX_JSON_DEPTH levels; it is
 * forwarded as the original bytes, never re-serialised. Checked by a byte-level scan (json.ts)
 * that builds no values, so a body of a million tiny objects costs no more memory than its bytes.
 */
export function checkJson(body: Buffer): void {
  const fault = jsonFault(body, MAX_JSON_DEPTH);
  if (fault !== undefined)
    throw problems.invalidJson(`the body is not valid JSON: ${describeJsonFault(body, fault)}`);
}

const REQUEST_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{7,127}$/;

/** The client's `x-request-id` when well formed (8-128 of `A-Z a-z 0-9 . _ : -`), else a new uuid. */
export function requestIdFrom(header: string | string[] | undefined): string {
  return typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** True for a W3C traceparent this gateway can propagate (version 00, or a later one's first 4 fields). */
export function isValidTraceparent(value: string): boolean {
  const m = TRACEPARENT.exec(value);
  if (!m) return false;
  const [, version, traceId, spanId] = m;
  if (version === 'ff' || traceId === ZERO_TRACE || spanId === ZERO_SPAN) return false;
  // Version 00 has exactly four fields; later versions may append more.
  return version !== '00' || m[5] === undefined;
}

/** The client's traceparent when valid (a later version's first four fields), else undefined. */
export function clientTraceparent(header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string' || header.length < 55 || !isValidTraceparent(header))
    return undefined;
  return header.length === 55 ? header : header.slice(0, 55);
}

/** The client's traceparent, propagated unchanged, or a new sampled trace started here. */
export function traceparentFrom(header: string | string[] | undefined): string {
  return clientTraceparent(header) ?? newTraceparent();
}

/** Random bytes drawn in blocks: one getrandom call per 170 new traces, not one per request. */
const POOL = Buffer.allocUnsafe(24 * 170);
let poolOffset = POOL.length;

export function newTraceparent(): string {
  if (poolOffset + 24 > POOL.length) {
    randomFillSync(POOL);
    poolOffset = 0;
  }
  const o = poolOffset;
  poolOffset += 24;
  return `00-${POOL.toString('hex', o, o + 16)}-${POOL.toString('hex', o + 16, o + 24)}-01`;
}

export const DEFAULT_TIMEOUT_MS = 5000;
export const MAX_TIMEOUT_MS = 30_000;

export interface CallMode {
  wait: boolean;
  timeoutMs: number;
}

type QueryValue = unknown;

/** `wait` = true|1|false|0 (absent = false); `timeoutMs` = integer >= 1, capped at 30000. */
export function callModeFrom(wait: QueryValue, timeoutMs: QueryValue): CallMode {
  let w = false;
  if (wait !== undefined) {
    if (wait === 'true' || wait === '1' || wait === '') w = true;
    else if (wait === 'false' || wait === '0') w = false;
    else throw problems.badRequest('query parameter "wait" must be true or false');
  }
  let t = DEFAULT_TIMEOUT_MS;
  if (timeoutMs !== undefined) {
    if (typeof timeoutMs !== 'string' || !/^\d{1,9}$/.test(timeoutMs) || Number(timeoutMs) < 1)
      throw problems.badRequest('query parameter "timeoutMs" must be a positive integer (ms)');
    t = Math.min(Number(timeoutMs), MAX_TIMEOUT_MS);
  }
  return { wait: w, timeoutMs: t };
}

const ACTION = /^[A-Za-z][A-Za-z0-9._:-]{0,127}$/;

/** The optional action (AMQP `type`) from `?type=` or the `x-warren-action` header. */
export function actionFrom(
  query: QueryValue,
  header: string | string[] | undefined,
): string | undefined {
  const value = query !== undefined ? query : header;
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !ACTION.test(value))
    throw problems.badRequest(
      'the action (?type= or x-warren-action) must be 1-128 characters of letters, digits, ".", "_", ":" or "-", starting with a letter',
    );
  return value;
}
