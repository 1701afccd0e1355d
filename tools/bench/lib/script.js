// What bench.js and soak.js share as scripts: the run's facts (machine, versions, commit), and a
// main() whose children are killed and whose vhost is dropped however the script ends.
'use strict';
const os = require('node:os');
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

/**
 * Runs `main` when the file is the entry point. On SIGINT/SIGTERM every child is killed and the
 * vhost `state()` names (once it exists) is dropped, best effort within 10 s; on exit children are
 * killed; a failure prints and exits 1.
 */
function runScript(module, main, state) {
  for (const s of ['SIGINT', 'SIGTERM'])
    process.on(s, () => {
      procs.killAllSync();
      const done = () => process.exit(130);
      setTimeout(done, 10000).unref();
      const { amqpUrl, vhost } = state();
      if (amqpUrl) mq.deleteVhost(vhost).finally(done);
      else done();
    });
  process.on('exit', procs.killAllSync);
  if (require.main === module)
    main().catch((e) => {
      console.error(e);
      procs.killAllSync();
      process.exit(1);
    });
}

module.exports = { sh, machineFacts, gitFacts, runScript };
