// Jest, configured once for the whole workspace: swc transpiles TypeScript, libs resolve to source.
const { scaled } = require('./tests/support/time-scale.js');

const swc = ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } } }];
const moduleNameMapper = {
  '^@warren/service-kit/testing$': '<rootDir>/libs/service-kit/src/testing.ts',
  '^@warren/(protocol|messaging|observability|registry|dead-letters|service-kit)$':
    '<rootDir>/libs/$1/src/index.ts',
};
const common = {
  rootDir: __dirname,
  transform: { '^.+\\.ts$': swc },
  moduleNameMapper,
  testEnvironment: 'node',
  modulePathIgnorePatterns: ['<rootDir>/.tmp/', '/dist/'],
};
module.exports = {
  maxWorkers: 2,
  // Child-process tests run dist/, in-process tests the sources: build first, so both test
  // the same code (an incremental tsc -b; a few seconds when nothing changed).
  globalSetup: '<rootDir>/tests/global-setup.js',
  // jest-circus reads only the top-level timeout, not the per-project one. TEST_TIME_SCALE
  // multiplies it, as every upper time limit of the tests (tests/support/time-scale.js).
  testTimeout: scaled(60000),
  projects: [
    {
      ...common,
      displayName: 'unit',
      // tools/*/lib: the pure parts of the tools (tools/bench's report functions and soak verdict);
      // the new-service template's own test, as a generated service's runs.
      testMatch: [
        '<rootDir>/{libs,services,tools}/*/src/**/*.test.ts',
        '<rootDir>/tools/*/lib/**/*.test.ts',
        '<rootDir>/tools/new-service/template/src/**/*.test.ts',
      ],
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/tests/**/*.test.ts'],
      testPathIgnorePatterns: ['/tests/reliability/', '/tests/cluster/'],
    },
  ],
};
