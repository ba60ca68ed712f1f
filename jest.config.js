// Unit specs live next to the code (src/, *.spec.ts); end-to-end specs in test/ (*.e2e-spec.ts).
// The `postgres` project runs the storage specs and the end-to-end suites again on PostgreSQL
// (TEST_DATABASE=postgres makes the test helpers hand out PostgreSQL URLs, one schema each).
const base = {
  testEnvironment: 'node',
  moduleFileExtensions: ['js', 'json', 'ts'],
  transform: { '^.+\\.ts$': 'ts-jest' },
  rootDir: __dirname,
};

module.exports = {
  testTimeout: 30000,
  projects: [
    {
      ...base,
      displayName: 'sqlite',
      roots: ['<rootDir>/src', '<rootDir>/test'],
      testRegex: '.*\\.(spec|e2e-spec)\\.ts$',
      // Many instances need PostgreSQL and Redis: that suite runs in the postgres project only.
      testPathIgnorePatterns: ['/node_modules/', '/test/(scale|scale-faults|nginx)\\.e2e-spec\\.ts$'],
    },
    {
      ...base,
      displayName: 'postgres',
      roots: ['<rootDir>/src', '<rootDir>/test'],
      testRegex:
        '(src/storage/.*\\.spec|test/(chat|pages|auth|features|limits|lossless|fuzz|solver|scale|scale-faults|nginx|retry-and-titles|edit-branch)\\.e2e-spec)\\.ts$',
      setupFiles: ['<rootDir>/test/support/use-postgres.ts'],
      globalSetup: '<rootDir>/test/support/postgres-setup.ts',
    },
  ],
};
