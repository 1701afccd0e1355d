// Process entry point of the gateway: start, or print one clear line and exit 1; the runtime drains on SIGTERM/SIGINT.
import { BrokerUnavailableError } from '@warren/messaging';
import { startGateway } from './gateway';

startGateway({ handleSignals: true }).catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  const hint =
    err instanceof BrokerUnavailableError
      ? ' (start one with `docker compose up -d rabbitmq` or `rabbitmq-server -detached`, or set AMQP_URL)'
      : '';
  process.stderr.write(`gateway: ${message}${hint}\n`);
  process.exit(1);
});
