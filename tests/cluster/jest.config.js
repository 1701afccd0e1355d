// Jest config for `npm run test:cluster`: the integration project's setup, restricted to tests/cluster.
const root = require('../../jest.config.js');
const { scaled } = require('../support/time-scale.js');

const integration = root.projects.find((p) => p.displayName === 'integration');
if (!integration) throw new Error('jest.config.js has no "integration" project');

module.exports = {
  ...integration,
  displayName: 'cluster',
  testMatch: ['<rootDir>/tests/cluster/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  // Bring-up, load, a node loss and a restart; CLUSTER_LOAD_SECONDS sizes the load phase.
  testTimeout: scaled(15 * 60_000),
  maxWorkers: 1,
};
