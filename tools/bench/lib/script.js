// What bench.js and soak.js share as scripts: the run's facts (machine, versions, commit), their
// command line (--help prints the file's header), and a main() whose children are killed and whose
// vhost is dropped however the script ends.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const procs = require('./procs');
const mq = require('./amqp');

/** A command's trimmed output, or undefined when it fails (15 s at most). */
function sh(cwd, cmd, args) {
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8',
      cwd,
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 15000,
    }).trim();
  } catch {
    return undefined;
  }
}

/** The machine a run measured on, with the load average at its start. */
function machineFacts() {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0] && os.cpus()[0].model,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    loadavgStart: os.loadavg().map((x) => Number(x.toFixed(2))),
  };
}

/** The commit measured, and whether libs/ or services/ had uncommitted changes. */
function gitFacts(repo) {
  return {
    commit: sh(repo, 'git', ['rev-parse', '--short', 'HEAD']),
    dirty: (sh(repo, 'git', ['status', '--porcelain', '--', 'libs', 'services']) || '').length > 0,
  };
}

/** The comment block at the top of `file`, without the comment markers (a script's --help). */
function headerOf(file) {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const end = lines.findIndex((l) => !l.startsWith('//'));
  return lines
    .slice(0, end < 0 ? lines.length : end)
    .map((l) => l.replace(/^\/\/ ?/, ''))
    .join('\n');
}

/**
 * The command line of the script `file`: `flags` (no value) and `values` (followed by a value).
 * --help or -h prints the comment at the top of `file` and returns { help: true }; any other
 * argument throws before anything runs.
 */
function parseArgs(file, argv, { flags = [], values = [] } = {}) {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(headerOf(file));
    return { help: true, flags: new Set(), values: {} };
  }
  const out = { help: false, flags: new Set(), values: {} };
  const bad = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (flags.includes(a)) out.flags.add(a);
    else if (values.includes(a) && argv[i + 1] !== undefined) out.values[a] = argv[++i];
    else bad.push(values.includes(a) ? `${a} without a value` : a);
  }
  if (bad.length > 0)
    throw new Error(
      `unknown argument(s) ${bad.join(' ')}; see node ${path.relative(process.cwd(), file)} --help`,
    );
  return out;
}

/**
 * Runs `main(session)` when the file is the entry point (nothing happens when it is required).
 * `session` is the run's state object: once main has set its `amqpUrl`, a SIGINT/SIGTERM kills
 * every child and drops its `vhost`, best effort within 10 s; on exit children are killed; a
 * failure prints and exits 1.
 */
function runScript(module, main) {
  if (require.main !== module) return;
  const session = {};
  for (const s of ['SIGINT', 'SIGTERM'])
    process.on(s, () => {
      procs.killAllSync();
      const done = () => process.exit(130);
      setTimeout(done, 10000).unref();
      if (session.amqpUrl) mq.deleteVhost(session.vhost).finally(done);
      else done();
    });
  process.on('exit', procs.killAllSync);
  main(session).catch((e) => {
    console.error(e);
    procs.killAllSync();
    process.exit(1);
  });
}

module.exports = { sh, machineFacts, gitFacts, headerOf, parseArgs, runScript };
