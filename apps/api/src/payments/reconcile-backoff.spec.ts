import { loadConfig, ConfigValidationError } from '../config/app-config';
import { reconcileBackoffSeconds } from './reconcile';

describe('reconcileBackoffSeconds', () => {
  const mid = () => 0.5; // no jitter
  it('doubles from the base and stops at the cap', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((a) => reconcileBackoffSeconds(a, 10, 300, mid))).toEqual([
      10, 20, 40, 80, 160, 300, 300, 300,
    ]);
  });
  it('jitters within ±20 %', () => {
    expect(reconcileBackoffSeconds(1, 100, 1000, () => 0)).toBe(80);
    expect(reconcileBackoffSeconds(1, 100, 1000, () => 0.999999)).toBe(120);
  });
  it('never overflows on huge attempt counts and allows a zero base', () => {
    expect(reconcileBackoffSeconds(10_000, 10, 300, mid)).toBe(300);
    expect(reconcileBackoffSeconds(3, 0, 0, mid)).toBe(0);
  });
});

describe('reconciler config', () => {
  const base = {
    NODE_ENV: 'test',
    JWT_SECRET: 'x'.repeat(40),
    CALLBACK_SIGNING_SECRET: 'y'.repeat(40),
    MPESA_ENV: 'simulator',
    MPESA_BASE_URL: 'http://127.0.0.1:1',
    MPESA_CALLBACK_URL: 'http://127.0.0.1:3000/payments/callback',
  };
  it('has production-minded defaults', () => {
    expect(loadConfig(base).reconciler).toEqual({
      enabled: true,
      intervalMs: 5000,
      batchSize: 50,
      leaseSeconds: 60,
      pendingGraceSeconds: 30,
      backoffBaseSeconds: 10,
      backoffMaxSeconds: 300,
      maxQueries: 12,
      giveUpAfterSeconds: 3600,
      inboxRetryAfterSeconds: 30,
      inboxRetentionDays: 30,
      refundFirstLookSeconds: 120,
      refundMaxLooks: 30,
    });
  });
  it('reports every bad value at once', () => {
    try {
      loadConfig({
        ...base,
        RECONCILER_ENABLED: 'maybe',
        RECONCILER_BATCH_SIZE: '0',
        RECONCILER_INTERVAL_MS: 'soon',
        RECONCILER_BACKOFF_BASE_SECONDS: '100',
        RECONCILER_BACKOFF_MAX_SECONDS: '10',
      });
      throw new Error('expected a ConfigValidationError');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigValidationError);
      const problems = (err as ConfigValidationError).problems.join('\n');
      expect(problems).toMatch(/RECONCILER_ENABLED must be true or false/);
      expect(problems).toMatch(/RECONCILER_BATCH_SIZE must be a whole number between 1 and 1000/);
      expect(problems).toMatch(/RECONCILER_INTERVAL_MS/);
      expect(problems).toMatch(/RECONCILER_BACKOFF_MAX_SECONDS must be at least RECONCILER_BACKOFF_BASE_SECONDS/);
    }
  });
});
