// Process entry point of the gateway: start (one process, or a primary and GATEWAY_WORKERS workers), or print one clear line and exit 1.
import cluster from 'node:cluster';
import { BrokerUnavailableError } from '@warren/messaging';
import { parseGatewayConfig } from './config';
import { startGateway } from './gateway';
import { reportToPrimary, runPrimary } from './workers';

function fail(err: unknown): never {
  const message = err instanceof Error ? err.message : String(err);
  const hint =
    err instanceof BrokerUnavailableError
      ? ' (start one with `docker compose up -d rabbitmq` or `rabbitmq-server -detached`, or set AMQP_URL)'
      : '';
  process.stderr.write(`gateway: ${message}${hint}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  if (cluster.isPrimary) {
    const config = parseGatewayConfig(process.env);
    if (config.workers > 1) return runPrimary(config);
  }
  // One gateway in this process (the runtime drains on SIGTERM/SIGINT); a worker also reports to
  // its primary.
  const gateway = await startGateway({ handleSignals: true });
  if (cluster.isWorker) reportToPrimary(gateway);
}

main().catch(fail);
