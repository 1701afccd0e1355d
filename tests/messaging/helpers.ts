// Shared bits for the messaging integration tests: a silent logger and a raw amqplib connection.
import { Writable } from 'node:stream';
import { connect, type ChannelModel } from 'amqplib';
import { createLogger, type Logger } from '@warren/observability';

/** A logger whose lines are kept in memory (for assertions) instead of printed. */
export function memoryLogger(service = 'test'): {
  logger: Logger;
  lines: () => Record<string, unknown>[];
} {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const logger = createLogger({ service, level: 'debug', destination });
  return {
    logger,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

export async function rawConnection(url: string): Promise<ChannelModel> {
  return connect(url);
}
