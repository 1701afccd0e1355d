// Pino logger factory: one JSON line per event, `service` on every line, secrets redacted.
import pino, { type Logger, type DestinationStream } from 'pino';

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
  return text.replace(URL_PASSWORD, '$1://$2:***@');
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: options.service },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
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
    options.destination ?? pino.destination({ sync: false }),
  );
}
