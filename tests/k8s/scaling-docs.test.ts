// docs/scaling.md's figures come from the cluster test's JSON: the generated parts (and
// docs/scaling-results.md) must equal what tools/reports/scaling.js renders from
// docs/scaling-results.json, so nobody edits a figure by hand. `npm run docs:scaling` re-renders.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const ROOT = path.resolve(__dirname, '../..');
const JSON_FILE = path.join(ROOT, 'docs/scaling-results.json');

// eslint-disable-next-line @typescript-eslint/no-require-imports
const report = require('../../tools/reports/scaling.js') as {
  capacity(cores: number, ms: number): number;
};

test('the generated parts of docs/scaling.md and docs/scaling-results.md match the JSON', async () => {
  if (!fs.existsSync(JSON_FILE))
    throw new Error(`${JSON_FILE} is missing: run \`npm run test:cluster\` once to record it`);
  // A child process: prettier 3 (which formats the Markdown) loads its parsers with import().
  const script = path.join(ROOT, 'tools/reports/scaling.js');
  await expect(
    promisify(execFile)(process.execPath, [script, '--check', JSON_FILE]),
  ).resolves.toBeDefined();
});

test('capacity: cores x 70 % / CPU ms per message', () => {
  expect(report.capacity(4, 1)).toBeCloseTo(2800);
  expect(report.capacity(4, 0)).toBeNaN();
});
