// @ts-check
/**
 * `pnpm mutation` (see README, Testing): StrykerJS over the payment core, the callback token and
 * the money and masking helpers. Each mutant runs the tests that cover it (perTest coverage) from
 * mutation/jest.config.js: the lifecycle tier and the unit specs of these files. Not part of
 * `pnpm test` or CI: it takes minutes. Reports go to reports/mutation/ (git-ignored).
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
  packageManager: 'pnpm',
  testRunner: 'jest',
  jest: { projectType: 'custom', configFile: 'mutation/jest.config.js', enableFindRelatedTests: false },
  coverageAnalysis: 'perTest',
  mutate: [
    'src/payments/payment-lifecycle.service.ts',
    'src/payments/outcome-checks.ts',
    'src/payments/outcome-rules.ts',
    'src/payments/providers/mpesa/mpesa.outcome-rules.ts',
    'src/payments/payment-status.ts',
    'src/payments/providers/mpesa/callback-token.ts',
    'src/common/money.ts',
    'src/payments/providers/amount.ts',
    'src/common/mask.ts',
    'src/payments/phone-hash.ts',
  ],
  plugins: ['@stryker-mutator/jest-runner', './mutation/ignore-log-calls.mjs'],
  ignorers: ['log-calls'],
  // A shared 2-core machine: two jest processes at most.
  concurrency: 2,
  timeoutMS: 20000,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  thresholds: { high: 90, low: 80, break: null },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
