import type { AppConfig } from '../config/app-config';
import type { Payment } from '../database/schema';
import { ProviderError } from './providers/provider-errors';
import { reconcileLook, ReconcileSteps } from './reconcile';

/** The reconciler look's skeleton every provider fills in (claim → ask → next look / backoff → give up). */
describe('reconcileLook', () => {
  const config = { backoffBaseSeconds: 10, backoffMaxSeconds: 300 } as AppConfig['reconciler'];
  let calls: string[];
  let claimed: boolean;
  let scheduled: Array<[number, boolean]>;
  const logger = { warn: () => undefined };
  const repo = {
    claimStatusQuery: async () => {
      calls.push('claim');
      return claimed ? 'claimed' : null;
    },
    scheduleCheck: async (_id: string, seconds: number, counted: boolean) => {
      scheduled.push([seconds, counted]);
    },
  };
  const payment = (over: Partial<Payment> = {}) => ({ id: 'p-1', status: 'pending', reconcileAttempts: 0, ...over }) as Payment;
  const look = (p: Payment, steps: Partial<ReconcileSteps>) =>
    reconcileLook(p, { repo, config, logger }, { what: 'test ask', claimIntervalSeconds: 2, ask: async () => ({ result: { action: 'still_pending' } }), ...steps });

  beforeEach(() => {
    calls = [];
    claimed = true;
    scheduled = [];
  });

  it('a payment no longer open: already_final, nothing asked or scheduled', async () => {
    const r = await look(payment({ status: 'completed' }), { before: async () => (calls.push('before'), undefined) });
    expect(r).toEqual({ action: 'already_final' });
    expect(calls).toEqual([]);
    expect(scheduled).toEqual([]);
  });

  it("the provider's `before` can end the look before anything is claimed", async () => {
    const r = await look(payment(), { before: async () => ({ action: 'moved_to_review' }) });
    expect(r).toEqual({ action: 'moved_to_review' });
    expect(calls).toEqual([]);
  });

  it('someone else is asking: deferred, looked at again after the claim interval (not counted)', async () => {
    claimed = false;
    const r = await look(payment(), { ask: async () => { throw new Error('must not ask'); } });
    expect(r).toEqual({ action: 'deferred' });
    expect(scheduled).toEqual([[2, false]]);
  });

  it("the ask's next look is scheduled and counted; the ask gets the backoff for the payment's attempt", async () => {
    let given = -1;
    const r = await look(payment({ reconcileAttempts: 2 }), { ask: async (backoff) => ((given = backoff), { result: { action: 'still_pending' }, nextLookSeconds: backoff }) });
    expect(r).toEqual({ action: 'still_pending' });
    expect(given).toBeGreaterThanOrEqual(32); // 10·2² ± 20 %
    expect(given).toBeLessThanOrEqual(48);
    expect(scheduled).toEqual([[given, true]]);
  });

  it('an ask that settles for good schedules nothing', async () => {
    await look(payment(), { ask: async () => ({ result: { action: 'expired' } }) });
    expect(scheduled).toEqual([]);
  });

  it("a failed ask backs off, at least the provider's Retry-After (spike arrest), and reports the provider's code", async () => {
    const err = new ProviderError('mpesa', 'rate_limited', 'Spike arrest', { retryAfterSeconds: 900, providerCode: '500.003.02' });
    const r = await look(payment(), { ask: async () => { throw err; } });
    expect(r).toEqual({ action: 'provider_error', provider: { kind: 'error', errorCode: '500.003.02', message: 'Spike arrest' } });
    expect(scheduled).toEqual([[900, true]]);
    scheduled = [];
    const plain = await look(payment(), { ask: async () => { throw new Error('socket hang up'); } });
    expect(plain).toEqual({ action: 'provider_error', provider: { kind: 'error', errorCode: 'UNKNOWN', message: 'socket hang up' } });
    expect(scheduled[0][0]).toBeLessThanOrEqual(12);
  });

  it('a failed ask gives up into review when the provider says it is time (no backoff then)', async () => {
    let failure: unknown;
    const r = await look(payment(), {
      ask: async () => { throw new ProviderError('pesapal', 'timeout', 'No answer'); },
      giveUp: async (f) => ((failure = f), { action: 'moved_to_review' }),
    });
    expect(r).toEqual({ action: 'moved_to_review' });
    expect(failure).toEqual({ code: 'PROVIDER_TIMEOUT', message: 'No answer' });
    expect(scheduled).toEqual([]);
  });
});
