/**
 * Jest for `pnpm mutation` (StrykerJS, ../stryker.config.json): the test files that exercise the
 * mutated code, and nothing else (every mutant runs the tests that cover it, so each file here
 * costs time per mutant). The lifecycle tier needs a database: Postgres on DATABASE_URL, else
 * PGlite (then NODE_OPTIONS needs --experimental-vm-modules, which `pnpm mutation` sets).
 */
const base = require('../jest.config');

module.exports = {
  ...base,
  rootDir: '..',
  testMatch: [
    '<rootDir>/test/payment-lifecycle.db.spec.ts',
    '<rootDir>/src/payments/payment-status.spec.ts',
    '<rootDir>/src/payments/phone-hash.spec.ts',
    '<rootDir>/src/payments/providers/mpesa/callback-token.spec.ts',
    '<rootDir>/src/payments/providers/amount.spec.ts',
    '<rootDir>/src/common/money.spec.ts',
    '<rootDir>/src/common/mask.spec.ts',
  ],
  // One worker: Stryker runs several jest processes itself (stryker.config.json concurrency).
  maxWorkers: 1,
};
