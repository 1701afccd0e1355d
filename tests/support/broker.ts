// Test broker resolution: AMQP_URL if set, else a broker on 127.0.0.1:5672, else one from testcontainers.
import net from 'node:net';
import { randomBytes } from 'node:crypto';

const LOCAL = 'amqp://guest:guest@127.0.0.1:5672';
let resolved: Promise<string> | undefined;

function reachable(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function resolveUrl(): Promise<string> {
  if (process.env.AMQP_URL) return process.env.AMQP_URL;
  if (await reachable('127.0.0.1', 5672)) return LOCAL;
  // Machines with Docker: start a throwaway RabbitMQ (stopped by Ryuk when the run ends).
  const { RabbitMQContainer } = await import('@testcontainers/rabbitmq');
  const container = await new RabbitMQContainer('rabbitmq:3.13-management').start();
  return container.getAmqpUrl();
}

/** The broker URL every integration test uses (resolved once per test file). */
export function testAmqpUrl(): Promise<string> {
  return (resolved ??= resolveUrl());
}

/** A name no other test (or parallel test file) uses: `prefix-<random>`, valid as a service name. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}
