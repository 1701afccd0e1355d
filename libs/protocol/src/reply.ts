// The reply rules: which status, content type and size a service's reply may carry, and whose replies and beats are believed.

/** A reply's status when it carries no `x-status` header. */
export const DEFAULT_REPLY_STATUS = 200;
/** A reply's content type when it carries none. */
export const DEFAULT_REPLY_CONTENT_TYPE = 'application/octet-stream';
/** AMQP short strings are at most 255 bytes. */
const MAX_CONTENT_TYPE = 255;

// RFC 9110 §8.3.1: type "/" subtype *( OWS ";" OWS parameter ); printable ASCII only, so the value
// is always a valid HTTP header value.
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const QUOTED = '"(?:[\\t\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]|\\\\[\\t\\x20-\\x7e])*"';
const MEDIA_TYPE = new RegExp(
  `^${TOKEN}/${TOKEN}(?:[ \\t]*;[ \\t]*${TOKEN}=(?:${TOKEN}|${QUOTED}))*$`,
);

/** True when `value` is a media type that can be written as a Content-Type header as it is. */
export function isMediaType(value: string): boolean {
  return value.length <= MAX_CONTENT_TYPE && MEDIA_TYPE.test(value);
}

export type BadReplyReason = 'status' | 'content-type' | 'too-large';

export type ReplyVerdict =
  | { ok: true; status: number; contentType: string }
  | { ok: false; reason: BadReplyReason; detail: string };

/** The reply's AMQP properties that the rules read. */
export interface ReplyFields {
  contentType?: unknown;
  headers?: Record<string, unknown> | undefined;
}

// The same content type arrives on nearly every reply: the last accepted one skips the regex.
let lastAccepted = 'application/json';

/**
 * Checks a reply before anything of it reaches a client: `x-status` absent (200) or an integer
 * 200-599, a content type that is a valid media type (absent = application/octet-stream), a body
 * of at most `maxBytes`. Any other reply is bad (the gateway answers 502).
 */
export function checkReply(fields: ReplyFields, size: number, maxBytes: number): ReplyVerdict {
  if (size > maxBytes)
    return { ok: false, reason: 'too-large', detail: `the reply exceeds ${maxBytes} bytes` };
  const raw = fields.headers?.['x-status'];
  let status = DEFAULT_REPLY_STATUS;
  if (raw !== undefined) {
    const n =
      typeof raw === 'number'
        ? raw
        : typeof raw === 'string' && /^\d{3}$/.test(raw)
          ? Number(raw)
          : NaN;
    if (!Number.isInteger(n) || n < 200 || n > 599)
      return { ok: false, reason: 'status', detail: 'the reply carries an invalid x-status' };
    status = n;
  }
  const ct = fields.contentType;
  if (ct === undefined || ct === null || ct === '')
    return { ok: true, status, contentType: DEFAULT_REPLY_CONTENT_TYPE };
  if (ct === lastAccepted) return { ok: true, status, contentType: ct };
  if (typeof ct !== 'string' || !isMediaType(ct))
    return {
      ok: false,
      reason: 'content-type',
      detail: 'the reply carries an invalid content type',
    };
  lastAccepted = ct;
  return { ok: true, status, contentType: ct };
}

export interface SenderPolicyOptions {
  /** The broker user of the process that checks. */
  ownUser: string;
  /** Service -> broker user where it is not the user named like the service; `*` = every other service. */
  users?: ReadonlyMap<string, string>;
}

/**
 * Whose replies and heartbeats are believed. RabbitMQ refuses a message whose AMQP `user-id`
 * differs from the publishing connection's user, so `user-id` names its sender. A message about
 * service S is accepted from S's user (the user named like S unless mapped) and from the
 * checking process's own user; a message without `user-id` is refused. Where S's user is the
 * checker's own (one shared user, e.g. `*=guest`), nothing can be told apart and everything is
 * accepted, unsigned messages too.
 */
export class SenderPolicy {
  private readonly users: ReadonlyMap<string, string>;
  constructor(private readonly options: SenderPolicyOptions) {
    this.users = options.users ?? new Map();
  }

  userOf(service: string): string {
    return this.users.get(service) ?? this.users.get('*') ?? service;
  }

  accepts(service: string, userId: unknown): boolean {
    const { ownUser } = this.options;
    const expected = this.userOf(service);
    if (expected === ownUser) return true;
    return typeof userId === 'string' && (userId === expected || userId === ownUser);
  }
}

/** `echo=svc-echo,*=shared` -> a service -> user map (`*`: every other service); throws on a malformed entry. */
export function parseServiceUsers(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of text.split(',')) {
    const entry = part.trim();
    if (!entry) continue;
    const eq = entry.indexOf('=');
    const service = entry.slice(0, eq).trim();
    const user = entry.slice(eq + 1).trim();
    if (eq <= 0 || !user) throw new Error(`"${entry}" is not service=user`);
    out.set(service, user);
  }
  return out;
}
