// Jest global setup: builds the workspace (tsc -b, incremental) so child-process tests never run a stale dist/.
'use strict';
const { execFileSync } = require('node:child_process');
const path = require('node:path');

module.exports = function globalSetup() {
  const root = path.resolve(__dirname, '..');
  const tsc = require.resolve('typescript/bin/tsc');
  try {
    execFileSync(process.execPath, [tsc, '-b'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const out = `${err.stdout ?? ''}${err.stderr ?? ''}`.trim();
    throw new Error(`tsc -b failed, so dist/ would be stale; fix the build first:\n${out}`, {
      cause: err,
    });
  }
};
