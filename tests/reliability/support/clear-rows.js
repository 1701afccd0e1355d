'use strict';
// Jest globalSetup of the reliability suite: forget the rows of an earlier (interrupted) run, so
// that the teardown (tools/reports/reliability.js) merges only what this run measured.
const fs = require('node:fs');
const { ROWS_DIR } = require('../../../tools/reports/reliability.js');

module.exports = async () => {
  fs.rmSync(ROWS_DIR, { recursive: true, force: true });
  fs.mkdirSync(ROWS_DIR, { recursive: true });
};
