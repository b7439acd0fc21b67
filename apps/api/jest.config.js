/** @type {import('jest').Config} */
const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
    },
    module: { type: 'commonjs' },
  },
];
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/src', '<rootDir>/test'],
  testMatch: ['**/*.spec.ts', '**/*.e2e.ts'],
  transform: { '^.+\\.ts$': swc },
  // `pnpm test` scans the run's logs for leaks; this routes logs of code outside the apps and of child processes (no-op otherwise).
  setupFilesAfterEnv: ['<rootDir>/test/log-scan/jest-setup.ts'],
  // HTTP tests share one Postgres server; keep workers modest on a 2-core machine.
  maxWorkers: 2,
  testTimeout: 30000,
};
