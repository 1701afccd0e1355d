// Process entry point of the console: start, or print one clear line and exit 1.
import { startConsole } from './console';

startConsole().catch((err: unknown) => {
  process.stderr.write(`console: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
