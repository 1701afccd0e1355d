// Process entry point of the gateway: start, or print one clear line and exit 1; drain on SIGTERM/SIGINT.
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
    process.stderr.write(`gateway: ${message}\n`);
    process.exit(1);
  },
);
