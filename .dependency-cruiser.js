/**
 * Import rules for apps/api/src (issue 9, "imports run one way"), checked by `pnpm lint`:
 *   - no import circles;
 *   - common/, config/ and database/ are below the payment code and never import payments/;
 *   - a provider's folder (payments/providers/<name>/) never imports another provider's folder,
 *     nor the M-Pesa front door or the payments module that wires the providers together.
 * Type-only imports count too (tsPreCompilationDeps): a type import is still a dependency a
 * reader has to follow, and it is how most of the wrong-way imports started.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import circle in apps/api/src: split out what both sides need into a third module.',
      from: { path: '^apps/api/src/' },
      to: { circular: true },
    },
    {
      name: 'foundations-not-to-payments',
      severity: 'error',
      comment:
        'common/, config/ and database/ are used by payments/, never the other way round: move the shared piece down.',
      from: { path: '^apps/api/src/(common|config|database)/' },
      to: { path: '^apps/api/src/payments/' },
    },
    {
      name: 'provider-not-to-other-provider',
      severity: 'error',
      comment:
        'A provider folder never imports another provider: what two providers share lives at the payments/ root.',
      from: { path: '^apps/api/src/payments/providers/([^/]+)/' },
      to: { path: '^apps/api/src/payments/providers/[^/]+/', pathNot: '^apps/api/src/payments/providers/$1/' },
    },
    {
      name: 'provider-not-to-payments-front',
      severity: 'error',
      comment:
        'A provider folder never imports the M-Pesa front door (payments.service/controller) nor the module that wires the providers.',
      from: { path: '^apps/api/src/payments/providers/[^/]+/' },
      to: { path: '^apps/api/src/payments/payments\\.(service|controller|module)\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    reporterOptions: { text: { highlightFocused: true } },
  },
};
