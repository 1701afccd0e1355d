// Builds a tree for an A/B run: services and configs from the working tree (or from another
// prepared tree, --from), libs/ from git revision <rev> (or from the working tree: "worktree"),
// its own node_modules/@warren links, compiled with tsc -b. Two trees made from one snapshot
// differ only in libs/, even while other engineers keep editing services in the checkout:
//   node tools/bench/prepare-baseline.js worktree /tmp/warren-after
//   node tools/bench/prepare-baseline.js HEAD /tmp/warren-before --from /tmp/warren-after
//   WARREN_ROOT=/tmp/warren-after COMPARE_WITH=/tmp/warren-before npm run bench
// Both variants then run interleaved in the same benchmark run.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const REPO = path.resolve(__dirname, '..', '..');
const args = process.argv.slice(2);
const fromIdx = args.indexOf('--from');
const from = fromIdx >= 0 ? path.resolve(args[fromIdx + 1]) : null;
const [rev, dirArg] = args.filter((_, i) => fromIdx < 0 || (i !== fromIdx && i !== fromIdx + 1));
if (!rev || !dirArg) {
  console.error(
    'usage: node tools/bench/prepare-baseline.js <git rev | worktree> <dir> [--from <tree>]',
  );
  process.exit(2);
}
const dir = path.resolve(dirArg);
if (dir === REPO || dir.startsWith(REPO + path.sep))
  throw new Error('the tree must live outside the repository');

const SKIP = new Set(['node_modules', 'dist', '.git', 'bench-results', 'coverage', '.tmp']);
function walk(root, rel = '', out = []) {
  for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
    if (SKIP.has(e.name) || e.name.endsWith('.tsbuildinfo')) continue;
    const r = path.join(rel, e.name);
    if (e.isDirectory()) walk(root, r, out);
    else if (e.isFile()) out.push(r);
  }
  return out;
}
const worktreeFiles = () =>
  execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], {
    cwd: REPO,
    encoding: 'utf8',
  })
    .split('\0')
    .filter((f) => f && fs.existsSync(path.join(REPO, f)));
const copy = (srcRoot, files) => {
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.copyFileSync(path.join(srcRoot, f), path.join(dir, f));
  }
};

fs.rmSync(dir, { recursive: true, force: true });
fs.mkdirSync(dir, { recursive: true });
const src = from || REPO;
const files = (from ? walk(from) : worktreeFiles()).filter(
  (f) => !f.startsWith('docs/') && !f.startsWith('libs/'),
);
copy(src, files);
if (rev === 'worktree') {
  copy(
    REPO,
    worktreeFiles().filter((f) => f.startsWith('libs/')),
  );
} else {
  const tar = execFileSync('git', ['archive', '--format=tar', rev, 'libs'], {
    cwd: REPO,
    maxBuffer: 1 << 28,
  });
  execFileSync('tar', ['-x', '-C', dir], { input: tar });
}

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
console.log(`tree ready: ${dir} (libs from ${rev}${from ? `, the rest from ${from}` : ''})`);
