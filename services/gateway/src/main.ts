// Process entry point of the gateway: start, or print one clear line and exit 1; drain on SIGTERM/SIGINT.
import { BrokerUnavailableError } from '@warren/messaging';
import { startGateway } from './gateway';

startGateway().then(
  (gateway) => {
    const onSignal = (signal: NodeJS.Signals) => {
      gateway.logger.info({ signal }, 'signal received');
      gateway.stop().then(
        () => setTimeout(() => process.exit(0), 50),
        (err: unknown) => {
          gateway.logger.error({ err }, 'shutdown failed');
          setTimeout(() => process.exit(1), 50);
        },
      );
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  },
  (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    const hint =
      err instanceof BrokerUnavailableError
        ? ' (start one with `docker compose up -d rabbitmq` or `rabbitmq-server -detached`, or set AMQP_URL)'
        : '';
    process.stderr.write(`gateway: ${message}${hint}\n`);
    process.exit(1);
  },
);
