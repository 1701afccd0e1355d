#!/usr/bin/env node
// Entry point of the DLQ tool: Ctrl-C stops a replay after its current batch, a second one at once.
import { runCli, terminalPrompt } from './cli';

const interrupt = new AbortController();
process.on('SIGINT', () => {
  if (interrupt.signal.aborted) process.exit(130);
  process.stderr.write('dlq: stopping after the current batch (Ctrl-C again to quit now)\n');
  interrupt.abort();
});

runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  prompt: process.stdin.isTTY ? terminalPrompt : undefined,
  signal: interrupt.signal,
}).then((code) => {
  process.exitCode = code;
});
