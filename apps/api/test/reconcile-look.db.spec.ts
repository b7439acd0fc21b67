import { sql } from 'drizzle-orm';
import { randomUUID } from 'node:crypto';
import { emptyCoreTables, openCoreDb, rowsOf } from './helpers/core-db';
import type { TestDatabase } from './helpers/test-db';
import type { AppConfig } from '../src/config/app-config';
import type { Db } from '../src/database/database';
import { NewPayment, orders, Payment } from '../src/database/schema';
import type { PaymentLifecycle } from '../src/payments/payment-lifecycle.service';
import type { PaymentsRepository } from '../src/payments/payments.repository';
import { PROVIDER_ERROR_KINDS, ProviderError } from '../src/payments/providers/provider-errors';
import { reconcileLook, ReconcileResult, ReconcileSteps } from '../src/payments/reconcile';

/**
 * The reconciler look's skeleton every provider fills in (claim → ask → next look / backoff →
 * give up), with the real PaymentsRepository on a real, migrated database (the lifecycle tier:
 * see helpers/core-db): the claim is the shared claimStatusQuery, the next look and the attempt
 * count are what scheduleCheck wrote to the payment's row. Each payment is handed to the look as
 * the reconciler hands it over (claimed by claimDuePayments, so its next_check_at is the lease).
 */

const SHOP = 'shop-rl';
const LEASE_SECONDS = 60;
const CLAIM_INTERVAL_SECONDS = 2;

let tdb: TestDatabase;
let db: Db;
let repo: PaymentsRepository;
let lifecycle: PaymentLifecycle;
let config: AppConfig['reconciler'];
let logged: Array<{ fields: unknown; message: unknown }>;
let n = 0;

beforeAll(async () => {
  const core = await openCoreDb({
    callbackSigningSecret: 'reconcile-look-secret-0123456789abcdefghijk',
    jwtSecret: 'reconcile-look-jwt-secret-0123456789abcdef',
  });
  ({ tdb, db, repo, lifecycle } = core);
  config = { ...core.config.reconciler, backoffBaseSeconds: 10, backoffMaxSeconds: 300 };
});
beforeEach(async () => {
  await emptyCoreTables(db);
  logged = [];
});
afterAll(async () => {
  await tdb?.dispose();
});

// ------------------------------------------------------------------ fixtures

/** An open Pesapal payment, due and claimed by this reconciler (as claimDuePayments hands it to the provider's look). */
async function due(fields: Partial<NewPayment> = {}): Promise<Payment> {
  const k = ++n;
  const orderId = `ORD-RL-${k}`;
  await db.insert(orders).values({ shopId: SHOP, id: orderId, totalMinor: 10_000n, currency: 'KES' });
  const id = randomUUID();
  await repo.insertPayment({
    id,
    shopId: SHOP,
    orderId,
    amountMinor: 10_000n,
    currency: 'KES',
    provider: 'pesapal',
    status: 'pending',
    createdBy: 'test',
    providerReference: `SD-${orderId}`,
    providerTransactionId: `TRK-${k}`,
    nextCheckAt: new Date(Date.now() - 1000),
    ...fields,
  });
  const claimed = await repo.claimDuePayments(100, LEASE_SECONDS, 0);
  const p = claimed.find((c) => c.id === id);
  // A payment no longer open is not due; the look is still asked about it (an operator's reconcile).
  return p ?? (await repo.findById(id))!;
}

const logger = { warn: (fields: unknown, message: unknown) => void logged.push({ fields, message }) };

const look = (p: Payment, steps: Partial<ReconcileSteps>) =>
  reconcileLook(
    p,
    { repo, config, logger },
    {
      what: 'test ask',
      claimIntervalSeconds: CLAIM_INTERVAL_SECONDS,
      ask: async () => ({ result: { action: 'still_pending' } }),
      ...steps,
    },
  );

const neverAsked = async (): Promise<never> => {
  throw new Error('must not ask');
};

/** What the look left on the payment's row: seconds until its next look, the looks counted, the claims made. */
async function scheduleOf(
  id: string,
): Promise<{ nextInSeconds: number | null; attempts: number; queries: number; claimed: boolean; status: string }> {
  const [r] = rowsOf<{ next_in: number | null; attempts: number; queries: number; claimed: boolean; status: string }>(
    await db.execute(
      sql`select extract(epoch from next_check_at - now())::float8 as next_in, reconcile_attempts as attempts, query_count as queries, last_queried_at is not null as claimed, status from payments where id = ${id}`,
    ),
  );
  return {
    nextInSeconds: r.next_in === null ? null : Number(r.next_in),
    attempts: r.attempts,
    queries: r.queries,
    claimed: r.claimed,
    status: r.status,
  };
}

/** `actual` seconds from now is `expected` seconds, give or take the test's own time. */
function expectAbout(actual: number | null, expected: number): void {
  expect(actual).not.toBeNull();
  expect(Math.abs(actual! - expected)).toBeLessThan(2);
}

// ------------------------------------------------------------------ before asking

describe('reconcileLook: before asking', () => {
  it('a payment no longer open: already_final, nothing claimed, asked or scheduled', async () => {
    for (const status of ['completed', 'failed', 'review'] as const) {
      const p = await due({ status, nextCheckAt: null });
      let before = false;
      const r = await look(p, { before: async () => void (before = true), ask: neverAsked });
      expect(r).toEqual({ action: 'already_final' });
      expect(before).toBe(false);
      expect(await scheduleOf(p.id)).toEqual({ nextInSeconds: null, attempts: 0, queries: 0, claimed: false, status });
    }
  });

  it("the provider's `before` can end the look before anything is claimed", async () => {
    const p = await due();
    const r = await look(p, {
      // Pesapal's: no tracking id long enough, so the payment goes to review (a real move).
      before: async () => ({
        action: (await lifecycle.moveUnknownToReview(p.id, { why: 'test' }, false))
          ? 'moved_to_review'
          : 'already_final',
      }),
      ask: neverAsked,
    });
    expect(r).toEqual({ action: 'moved_to_review' });
    const s = await scheduleOf(p.id);
    expect(s).toMatchObject({ status: 'review', attempts: 0, queries: 0, claimed: false });
    expectAbout(s.nextInSeconds, LEASE_SECONDS);
  });

  it('someone else is asking (a status read claimed the ask): deferred, looked at again after the claim interval, not counted', async () => {
    const p = await due();
    expect(await repo.claimStatusQuery(p.id, CLAIM_INTERVAL_SECONDS)).not.toBeNull();
    const r = await look(p, { ask: neverAsked });
    expect(r).toEqual({ action: 'deferred' });
    const s = await scheduleOf(p.id);
    expect(s).toMatchObject({ attempts: 0, queries: 1 });
    expectAbout(s.nextInSeconds, CLAIM_INTERVAL_SECONDS);
  });
});

// ------------------------------------------------------------------ the ask

describe('reconcileLook: the ask', () => {
  it("claims the ask, gets the backoff for the payment's attempt, and its next look is scheduled and counted", async () => {
    const p = await due({ reconcileAttempts: 2 });
    let given = -1;
    const r = await look(p, {
      ask: async (backoff) => ((given = backoff), { result: { action: 'still_pending' }, nextLookSeconds: backoff }),
    });
    expect(r).toEqual({ action: 'still_pending' });
    expect(given).toBeGreaterThanOrEqual(32); // 10·2² ± 20 %
    expect(given).toBeLessThanOrEqual(48);
    const s = await scheduleOf(p.id);
    expect(s).toMatchObject({ attempts: 3, queries: 1, claimed: true });
    expectAbout(s.nextInSeconds, given);
    // The claim holds: a second look within the interval is deferred, not asked twice.
    expect(await look(p, { ask: neverAsked })).toEqual({ action: 'deferred' });
  });

  it('an ask that settles the payment for good schedules nothing', async () => {
    const p = await due();
    const r = await look(p, {
      ask: async () => {
        const report = {
          outcome: 'completed',
          resultCode: 'COMPLETED',
          resultDesc: 'Paid',
          source: 'query',
          amountRequired: true,
          amountMinor: p.amountMinor,
          currency: p.currency,
          reference: p.providerReference!,
          providerTransactionId: p.providerTransactionId!,
          receipt: 'CONF-RL',
          paymentMethod: 'card',
        } as const;
        expect(await lifecycle.applyOutcome(p.id, report, 'reconciler:test')).toBe('applied');
        return { result: { action: 'settled' } };
      },
    });
    expect(r).toEqual({ action: 'settled' });
    const s = await scheduleOf(p.id);
    expect(s).toMatchObject({ status: 'completed', attempts: 0, queries: 1 });
    expectAbout(s.nextInSeconds, LEASE_SECONDS); // still the reconciler's lease: nothing rescheduled
  });
});

// ------------------------------------------------------------------ a failed ask

describe('reconcileLook: a failed ask', () => {
  const failing = (err: unknown): Partial<ReconcileSteps> => ({
    ask: async () => {
      throw err;
    },
  });

  it("backs off at least the provider's Retry-After (spike arrest), counted, and reports the provider's code", async () => {
    const p = await due();
    const r = await look(
      p,
      failing(
        new ProviderError('mpesa', 'rate_limited', 'Spike arrest', {
          retryAfterSeconds: 900,
          providerCode: '500.003.02',
        }),
      ),
    );
    expect(r).toEqual({
      action: 'provider_error',
      provider: { kind: 'error', errorCode: '500.003.02', message: 'Spike arrest' },
    });
    const s = await scheduleOf(p.id);
    expect(s).toMatchObject({ attempts: 1, queries: 1 });
    expectAbout(s.nextInSeconds, 900);
    expect(logged).toEqual([
      {
        fields: { paymentId: p.id, code: 'PROVIDER_RATE_LIMITED', msg: 'Spike arrest' },
        message: 'reconciler: test ask failed; backing off',
      },
    ]);
  });

  it("a rate limit that names no Retry-After is waited for the kind's default (the one our own client gets)", async () => {
    const p = await due();
    const err = new ProviderError('mpesa', 'rate_limited', 'Spike arrest');
    expect(err.retryAfterSeconds).toBeUndefined();
    await look(p, failing(err));
    const s = await scheduleOf(p.id);
    expect(PROVIDER_ERROR_KINDS.rate_limited.retryAfterSeconds).toBe(30);
    expectAbout(s.nextInSeconds, 30); // not the first backoff (10 ± 20 %)
    expect(s.attempts).toBe(1);
  });

  it('the backoff wins when it is longer than the Retry-After', async () => {
    const p = await due({ reconcileAttempts: 10 });
    await look(p, failing(new ProviderError('mpesa', 'rate_limited', 'Spike arrest', { retryAfterSeconds: 5 })));
    const s = await scheduleOf(p.id);
    expect(s.nextInSeconds).toBeGreaterThanOrEqual(300 * 0.8 - 2); // the cap, 300 ± 20 %
    expect(s.nextInSeconds).toBeLessThanOrEqual(300 * 1.2);
    expect(s.attempts).toBe(11);
  });

  it("an error that is not the provider's: UNKNOWN, backed off by the attempt's backoff alone", async () => {
    const p = await due();
    const r = await look(p, failing(new Error('socket hang up')));
    expect(r).toEqual({
      action: 'provider_error',
      provider: { kind: 'error', errorCode: 'UNKNOWN', message: 'socket hang up' },
    });
    const s = await scheduleOf(p.id);
    expect(s.nextInSeconds).toBeGreaterThanOrEqual(8 - 2); // 10 ± 20 %
    expect(s.nextInSeconds).toBeLessThanOrEqual(12);
    expect(s.attempts).toBe(1);
  });

  it('gives up into review when the provider says it is time (no backoff then)', async () => {
    const p = await due();
    let failure: unknown;
    const r = await look(p, {
      ask: async () => {
        throw new ProviderError('pesapal', 'timeout', 'No answer');
      },
      giveUp: async (f): Promise<ReconcileResult | undefined> => {
        failure = f;
        return (await lifecycle.moveUnknownToReview(p.id, { giveUp: 'provider_unreachable', lastError: f.code }, false))
          ? { action: 'moved_to_review' }
          : undefined;
      },
    });
    expect(r).toEqual({ action: 'moved_to_review' });
    expect(failure).toEqual({ code: 'PROVIDER_TIMEOUT', message: 'No answer' });
    const s = await scheduleOf(p.id);
    expect(s).toMatchObject({ status: 'review', attempts: 0, queries: 1 });
    expectAbout(s.nextInSeconds, LEASE_SECONDS);
    expect(logged).toEqual([]);
  });

  it('a provider that does not give up yet: backed off as usual', async () => {
    const p = await due();
    const r = await look(p, {
      ...failing(new ProviderError('pesapal', 'timeout', 'No answer')),
      giveUp: async () => undefined,
    });
    expect(r).toMatchObject({ action: 'provider_error', provider: { errorCode: 'PROVIDER_TIMEOUT' } });
    expect(await scheduleOf(p.id)).toMatchObject({ status: 'pending', attempts: 1 });
  });
});
