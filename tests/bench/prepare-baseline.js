'use strict';
// Builds a "before" tree for an A/B run: the current working tree (services, configs) with libs/
// taken from git revision <rev>, its own node_modules/@warren links, compiled with tsc -b.
//   node tests/bench/prepare-baseline.js <rev> <dir>
//   COMPARE_WITH=<dir> COMPARE_LABEL=before npm run bench
// Both variants then run interleaved in the same benchmark run.
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const REPO = path.resolve(__dirname, '..', '..');
const [rev, dirArg] = process.argv.slice(2);
if (!rev || !dirArg) {
  console.error('usage: node tests/bench/prepare-baseline.js <git rev for libs/> <dir>');
  process.exit(2);
}
const dir = path.resolve(dirArg);
if (dir === REPO || dir.startsWith(REPO + path.sep))
  throw new Error('the baseline tree must live outside the repository');

fs.rmSync(dir, { recursive: true, force: true });
fs.mkdirSync(dir, { recursive: true });
const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], {
  cwd: REPO,
  encoding: 'utf8',
})
  .split('\0')
  .filter(
    (f) =>
      f && !f.startsWith('docs/') && !f.startsWith('libs/') && fs.existsSync(path.join(REPO, f)),
  );
for (const f of files) {
  fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
  fs.copyFileSync(path.join(REPO, f), path.join(dir, f));
}
const tar = execFileSync('git', ['archive', '--format=tar', rev, 'libs'], {
  cwd: REPO,
  maxBuffer: 1 << 28,
});
execFileSync('tar', ['-x', '-C', dir], { input: tar });

// node_modules: every package of the repository's, except the workspace links, which point into `dir`.
const nm = path.join(dir, 'node_modules');
fs.mkdirSync(path.join(nm, '@warren'), { recursive: true });
for (const e of fs.readdirSync(path.join(REPO, 'node_modules'))) {
  if (e === '@warren' || e === '.bin' || e === '.package-lock.json') continue;
  fs.symlinkSync(path.join(REPO, 'node_modules', e), path.join(nm, e));
}
for (const group of ['libs', 'services', 'tools']) {
  const g = path.join(dir, group);
  if (!fs.existsSync(g)) continue;
  for (const p of fs.readdirSync(g)) {
    const pj = path.join(g, p, 'package.json');
    if (!fs.existsSync(pj)) continue;
    const name = JSON.parse(fs.readFileSync(pj, 'utf8')).name;
    if (name && name.startsWith('@warren/')) fs.symlinkSync(path.join(g, p), path.join(nm, name));
  }
}
execFileSync(process.execPath, [path.join(REPO, 'node_modules/typescript/bin/tsc'), '-b'], {
  cwd: dir,
  stdio: 'inherit',
});
console.log(`baseline tree ready: ${dir} (libs from ${rev}); run with COMPARE_WITH=${dir}`);
