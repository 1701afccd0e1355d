// Pino logger factory: one JSON line per event, `service` on every line, secrets redacted.
import pino, { type Logger, type DestinationStream } from 'pino';
import { LineBatch } from './line-batch';

export type { Logger } from 'pino';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface LoggerOptions {
  service: string;
  level: LogLevel;
  /** Where lines go; stdout when omitted (tests pass a stream to read them back). */
  destination?: DestinationStream;
}

/** Paths whose values never reach a log line. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-api-key"]',
  'password',
  '*.password',
  'apiKey',
  '*.apiKey',
  'apiKeys',
  '*.apiKeys',
];

const URL_PASSWORD = /\b(amqps?|https?):\/\/([^:/@\s]+):([^@\s]+)@/g;

/** Replaces the password part of any URL in a string (`amqp://user:***@host`). */
export function redactUrl(text: string): string {
  // Most lines have no '@' at all: one scan instead of the regex's.
  return text.includes('@') ? text.replace(URL_PASSWORD, '$1://$2:***@') : text;
}

let minute = Number.NaN;
let minutePrefix = '';

/**
 * pino's `time` field as `Date#toISOString()` writes it, with the date and minute made once a
 * minute: `new Date().toISOString()` costs about 2 µs on this machine, on every line.
 */
export function isoTime(now: number = Date.now()): string {
  const m = Math.floor(now / 60000);
  if (m !== minute) {
    minute = m;
    minutePrefix = new Date(m * 60000).toISOString().slice(0, 17); // YYYY-MM-DDTHH:MM:
  }
  const ms = now - m * 60000;
  const s = Math.floor(ms / 1000);
  const milli = ms - s * 1000;
  return `,"time":"${minutePrefix}${s < 10 ? '0' : ''}${s}.${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z"`;
}

/**
 * Where lines go by default: stdout, through pino's asynchronous destination (sonic-boom, one
 * `fs.write` on libuv's thread pool at a time), with `LineBatch` in front so that write carries
 * the lines of up to 10 ms (or 64 K characters). Per line, sonic-boom alone cost a thread-pool
 * write every line or two (5-16 % of the gateway's CPU per request); pino's worker-thread
 * transport copied every line twice and woke its thread for each batch (the gateway's CPU per RPC
 * 0.90 of that, paired runs; docs/performance/notes.md). Lines still waiting when the process
 * exits are written first: the batch hands them on in the first 'exit' listener, and pino's own
 * exit hook then writes whatever sonic-boom holds synchronously.
 */
export function stdoutDestination(): DestinationStream {
  const boom = pino.destination({ dest: 1, sync: false });
  return new LineBatch(boom as DestinationStream, { maxDelayMs: 10, maxChars: 64 * 1024 });
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: options.service },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: () => isoTime(),
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        // Error messages and strings may carry a broker URL with its password.
        logMethod(args, method) {
          for (let i = 0; i < args.length; i++) {
            const a: unknown = args[i];
            if (typeof a === 'string') args[i] = redactUrl(a) as never;
            else if (a instanceof Error) a.message = redactUrl(a.message);
            else if (a && typeof a === 'object' && 'err' in a && a.err instanceof Error) {
              a.err.message = redactUrl(a.err.message);
            }
          }
          method.apply(this, args);
        },
      },
    },
    options.destination ?? stdoutDestination(),
  );
}
