// Jest config for `npm run test:reliability`: the integration project's setup, restricted to
// tests/reliability, one file at a time (each scenario loads the machine on purpose), and a
// teardown that merges the scenarios' figures into docs/reliability-results.json + reliability.md.
const root = require('../../jest.config.js');
const { scaled } = require('../support/time-scale.js');

const integration = root.projects.find((p) => p.displayName === 'integration');
if (!integration) throw new Error('jest.config.js has no "integration" project');

module.exports = {
  ...integration,
  displayName: 'reliability',
  testMatch: ['<rootDir>/tests/reliability/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  testTimeout: scaled(180_000),
  maxWorkers: 1,
  globalSetup: '<rootDir>/tests/reliability/support/clear-rows.js',
  globalTeardown: '<rootDir>/tools/reports/reliability.js',
};
