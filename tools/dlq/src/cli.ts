// `npm run dlq -- <command> <service> [options]`: argument parsing, output, exit codes.
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline/promises';
import { connect, type ChannelModel } from 'amqplib';
import { parseAmqpUrls, safeUrl } from '@warren/messaging';
import {
  DlqError,
  checkServiceName,
  openDlq,
  peek,
  purge,
  replay,
  type ReplayResult,
} from '@warren/dead-letters';
import { details, peekJson, table } from './format';

/** x-delivery-count from which list/show warn (RabbitMQ 4.0-4.2 quorum queues default to a limit of 20). */
const DELIVERY_COUNT_WARNING = 10;

export const DEFAULT_URL = 'amqp://guest:guest@127.0.0.1:5672';

export const USAGE = `Usage: npm run dlq -- <command> <service> [options]

Inspect and repair the dead-letter queue <service>.dlq. list and show never remove a message;
replay acks a dead letter only after the broker confirmed its copy in <service>'s queue.

Commands:
  list <service>                     one line per dead letter: id, time, attempts, error
  show <service> [--id ID]           every header and the body
  replay <service> --all | --id ID   move dead letters back to the queue <service>
                                     (never calls, nor messages that expired in the queue)
  purge <service> --yes              delete every dead letter of <service>

Options:
  --id ID      only the dead letter(s) with this messageId
  --all        replay: every dead letter (up to --limit)
  --limit N    list/show: at most N (default 100); replay: at most N messages
  --json       JSON output
  --yes        purge: do it (otherwise it asks on a terminal, or refuses)
  --url URL    broker URL (default: $AMQP_URL, else ${DEFAULT_URL})
  -h, --help   this text

Exit codes: 0 done, 1 failed (broker, unknown service, no such message), 2 usage, 130 interrupted.
`;

export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  /** A terminal to ask for purge confirmation; undefined = never ask. */
  prompt?: (question: string) => Promise<string>;
  /** Aborts a running replay after its current batch (SIGINT). */
  signal?: AbortSignal;
}

type Command = 'list' | 'show' | 'replay' | 'purge';
const COMMANDS: readonly Command[] = ['list', 'show', 'replay', 'purge'];

interface Parsed {
  command: Command;
  service: string;
  id?: string;
  all: boolean;
  limit?: number;
  json: boolean;
  yes: boolean;
  url: string;
}

const usageError = (message: string) => new DlqError(`${message} (see --help)`, 2);

function parse(argv: string[], env: NodeJS.ProcessEnv): Parsed | 'help' {
  let values;
  let positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        id: { type: 'string' },
        all: { type: 'boolean', default: false },
        limit: { type: 'string' },
        json: { type: 'boolean', default: false },
        yes: { type: 'boolean', default: false },
        url: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    throw usageError(err instanceof Error ? err.message : String(err));
  }
  if (values.help || positionals.length === 0) return 'help';
  const [command, service, ...extra] = positionals;
  if (!COMMANDS.includes(command as Command)) {
    throw usageError(`unknown command "${command}": use ${COMMANDS.join(', ')}`);
  }
  if (!service) throw usageError(`${command}: which service?`);
  if (extra.length) throw usageError(`unexpected argument "${extra[0]}"`);
  checkServiceName(service);
  let limit: number | undefined;
  if (values.limit !== undefined) {
    limit = Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1) {
      throw usageError(`--limit must be a positive integer, got "${values.limit}"`);
    }
  }
  if (values.id !== undefined && values.id === '') throw usageError('--id needs a messageId');
  const cmd = command as Command;
  if (cmd === 'replay' && values.all === (values.id !== undefined)) {
    throw usageError('replay needs exactly one of --all or --id <messageId>');
  }
  if (values.all && cmd !== 'replay') throw usageError('--all is only for replay');
  if (values.yes && cmd !== 'purge') throw usageError('--yes is only for purge');
  if (values.id !== undefined && cmd !== 'show' && cmd !== 'replay') {
    throw usageError(`--id is only for show and replay`);
  }
  if (limit !== undefined && cmd === 'purge') throw usageError('--limit is not for purge');
  return {
    command: cmd,
    service,
    id: values.id,
    all: values.all,
    limit,
    json: values.json,
    yes: values.yes,
    url: values.url ?? (env.AMQP_URL || DEFAULT_URL),
  };
}

/** Connects to the first node that answers: every AMQP_URL form the services accept (one URL, or a cluster's comma-separated list). */
async function open(url: string): Promise<ChannelModel> {
  let nodes: ReturnType<typeof parseAmqpUrls>;
  try {
    nodes = parseAmqpUrls(url);
  } catch (err) {
    throw new DlqError(`invalid broker URL ${safeUrl(url)}: ${(err as Error).message}`, 2);
  }
  let last: unknown = new Error('no URL given');
  for (const node of nodes) {
    try {
      const conn = await connect(node, { clientProperties: { connection_name: 'warren-dlq' } });
      conn.on('error', () => undefined);
      return conn;
    } catch (err) {
      last = err;
    }
  }
  const detail = last instanceof Error ? last.message : String(last);
  throw new DlqError(`cannot connect to RabbitMQ at ${safeUrl(url)}: ${detail}`);
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** What a replay left alone on purpose: calls and expired messages are never replayed. */
function skippedText(r: ReplayResult): string {
  const parts: string[] = [];
  if (r.skippedCalls > 0) parts.push(plural(r.skippedCalls, 'call'));
  if (r.skippedExpired > 0) parts.push(`${r.skippedExpired} expired`);
  if (parts.length === 0) return '';
  return (
    `; skipped ${parts.join(' and ')} (never replayed: a call was answered or its caller ` +
    'gave up; an expired message was meant to be dropped)'
  );
}

function replaySummary(r: ReplayResult, id: string | undefined): { line: string; code: number } {
  const moved = `replayed ${plural(r.replayed, 'dead letter')} from ${r.queue} to ${r.target}${skippedText(r)}`;
  const left = r.depth - r.replayed;
  const rest = left > 0 ? `; ${left} left in ${r.queue}` : '';
  if (r.error) {
    return {
      line: `replay stopped: ${r.error.message}; ${moved}${rest} (nothing lost)`,
      code: 1,
    };
  }
  if (r.interrupted) return { line: `interrupted: ${moved}${rest} (nothing lost)`, code: 130 };
  if (id !== undefined && r.replayed === 0) {
    if (r.skippedCalls + r.skippedExpired > 0) {
      const what = r.skippedCalls > 0 ? 'was a call' : 'expired in the queue';
      return {
        line: `dead letter "${id}" in ${r.queue} ${what}: not replayed (a call is answered or dropped, never replayed)`,
        code: 1,
      };
    }
    return { line: `no dead letter with messageId "${id}" in ${r.queue}`, code: 1 };
  }
  return { line: moved + rest, code: 0 };
}

async function execute(p: Parsed, conn: ChannelModel, io: CliIo): Promise<number> {
  const out = (s: string) => io.stdout.write(s);
  switch (p.command) {
    case 'list':
    case 'show': {
      const result = await peek(conn, p.service, { limit: p.limit ?? 100, id: p.id });
      if (p.id !== undefined && result.letters.length === 0) {
        throw new DlqError(`no dead letter with messageId "${p.id}" in ${result.queue}`);
      }
      if (p.json) out(peekJson(result));
      else if (p.command === 'list') out(table(result));
      else out(result.letters.length ? details(result) : `${result.queue}: no dead letters\n`);
      const reads = Math.max(
        0,
        ...result.letters.map((l) => Number(l.headers['x-delivery-count']) || 0),
      );
      if (reads >= DELIVERY_COUNT_WARNING) {
        // Quorum queues count every return; one with a delivery limit drops a message past it.
        io.stderr.write(
          `dlq: warning: dead letters in ${result.queue} were returned ${reads} times (x-delivery-count); ` +
            'if this quorum queue has a delivery limit, replay or purge them rather than listing again\n',
        );
      }
      return 0;
    }
    case 'replay': {
      const result = await replay(conn, p.service, {
        id: p.id,
        limit: p.limit,
        signal: io.signal,
      });
      const { line, code } = replaySummary(result, p.id);
      if (p.json) {
        out(
          JSON.stringify({
            queue: result.queue,
            target: result.target,
            replayed: result.replayed,
            skippedCalls: result.skippedCalls,
            skippedExpired: result.skippedExpired,
            left: result.depth - result.replayed,
            interrupted: result.interrupted,
            error: result.error?.message ?? null,
          }) + '\n',
        );
      } else if (code === 0) {
        out(line + '\n');
      }
      if (code !== 0) io.stderr.write(`dlq: ${line}\n`);
      return code;
    }
    case 'purge': {
      const { queue, depth } = await openDlq(conn, p.service);
      if (!p.yes) {
        if (depth === 0) {
          out(`${queue}: no dead letters, nothing to purge\n`);
          return 0;
        }
        const question = `Delete ${plural(depth, 'dead letter')} from ${queue} for good? Type "${p.service}" to confirm: `;
        const answer = io.prompt ? (await io.prompt(question)).trim() : undefined;
        if (answer === undefined) {
          throw new DlqError(
            `refusing to purge ${plural(depth, 'dead letter')} from ${queue} without --yes`,
            2,
          );
        }
        if (answer !== p.service) {
          io.stderr.write('dlq: purge cancelled\n');
          return 1;
        }
      }
      const purged = await purge(conn, p.service);
      if (p.json) out(JSON.stringify({ queue, purged }) + '\n');
      else out(`purged ${plural(purged, 'dead letter')} from ${queue}\n`);
      return 0;
    }
  }
}

/** Runs one command; resolves with the exit code. Never throws. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let conn: ChannelModel | undefined;
  try {
    const parsed = parse(argv, io.env);
    if (parsed === 'help') {
      io.stdout.write(USAGE);
      return 0;
    }
    conn = await open(parsed.url);
    return await execute(parsed, conn, io);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    io.stderr.write(`dlq: ${message.split('\n')[0]}\n`);
    return err instanceof DlqError ? err.exitCode : 1;
  } finally {
    await conn?.close().catch(() => undefined);
  }
}

/** Asks on the terminal (purge confirmation). */
export async function terminalPrompt(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const cancel = new AbortController();
  rl.on('SIGINT', () => cancel.abort());
  try {
    return await rl.question(question, { signal: cancel.signal });
  } catch {
    return ''; // Ctrl-C: no confirmation
  } finally {
    rl.close();
  }
}
