// One row of docs/reliability.md per scenario: each test writes its figures here before it asserts,
// so a failing run still reports what it saw; tools/reports/reliability.js (the suite's jest teardown) merges the rows
// into docs/reliability-results.json and renders the Markdown.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { ROWS_DIR } = require('../../../tools/reports/reliability.js') as { ROWS_DIR: string };

export interface ScenarioRow {
  /** 1-8, the numbering. */
  id: number;
  key: string;
  title: string;
  /** What was sent, e.g. "150 req/s × 14 s through the gateway, 1 consumer". */
  load: string;
  /** What went wrong on purpose. */
  fault: string;
  accepted: number;
  processed: number;
  lost: number;
  duplicates: number;
  /** Recovery time (or the scenario's equivalent), as shown in the table. */
  recovery: string;
  /** Named pass/fail checks; the test asserts that all are true. */
  checks: Record<string, boolean>;
  /** Explanations: where duplicates came from, what the figures mean. */
  notes: string[];
  /** Raw figures (status counts, timings, memory). */
  figures: Record<string, unknown>;
}

export interface StoredRow extends ScenarioRow {
  passed: boolean;
  /** Wall time of the test file up to this row (start-up, load, fault, checks). */
  durationS: number;
  test: string;
  ranAt: string;
  loadAverage1m: number;
}

/** When this module was loaded: once per test file, at its start. */
const LOADED_AT = Date.now();

/** Writes the row for the report; returns the names of the failed checks (expect it to be []). */
export function recordScenario(row: ScenarioRow, testFile: string): string[] {
  const failed = Object.entries(row.checks)
    .filter(([, ok]) => !ok)
    .map(([name]) => name);
  const stored: StoredRow = {
    ...row,
    passed: failed.length === 0,
    durationS: Math.round((Date.now() - LOADED_AT) / 1000),
    test: path.relative(path.resolve(__dirname, '../../..'), testFile).split(path.sep).join('/'),
    ranAt: new Date().toISOString(),
    loadAverage1m: Math.round((os.loadavg()[0] ?? 0) * 10) / 10,
  };
  fs.mkdirSync(ROWS_DIR, { recursive: true });
  fs.writeFileSync(path.join(ROWS_DIR, `${row.key}.json`), JSON.stringify(stored, null, 2));
  return failed;
}

export const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** For scenarios without a crash: duplicates would mean a redelivery nobody caused. */
export const duplicatesNote = (n: number): string =>
  n === 0
    ? 'Duplicates: none (no crash, no lost connection: every processed message was acked once).'
    : `Duplicates (${n}): unexpected without a crash; see the figures.`;
export const mb = (bytes: number): number => Math.round((bytes / 1024 / 1024) * 10) / 10;
