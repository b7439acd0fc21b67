import { sql } from 'drizzle-orm';
import { randomUUID } from 'node:crypto';
import { emptyCoreTables, openCoreDb, rowsOf } from './helpers/core-db';
import type { TestDatabase } from './helpers/test-db';
import type { AuthUser } from '../src/auth/auth.types';
import { AppError } from '../src/common/errors';
import type { AppConfig } from '../src/config/app-config';
import type { Db } from '../src/database/database';
import { NewPayment, orders, Payment, Refund } from '../src/database/schema';
import type { OrdersService } from '../src/orders/orders.service';
import type { MerchantAccountsService } from '../src/payments/merchant-accounts.service';
import type { ResolvedAccount } from '../src/payments/merchant-accounts.types';
import type { PaymentLifecycle } from '../src/payments/payment-lifecycle.service';
import type { PaymentsRepository } from '../src/payments/payments.repository';
import { ProviderError } from '../src/payments/providers/provider-errors';
import { RefundProvidersRegistry } from '../src/payments/refund-providers.registry';
import { RefundReconciler } from '../src/payments/refund-reconciler.service';
import { RefundsRepository } from '../src/payments/refunds.repository';
import { RefundsService } from '../src/payments/refunds.service';
import {
  RefundRefusedError,
  type RefundContext,
  type RefundProviderService,
  type RefundReport,
} from '../src/payments/refunds.types';

/**
 * The refund core (RefundsService + RefundsRepository) against a real, migrated database, with a
 * scripted provider in place of M-Pesa / Flutterwave / Pesapal (the e2e suites drive the real
 * ones through their simulators). Every rule of the refund model is reached here: the cap under
 * concurrency, the transitions, idempotency, the reconciler's looks and give-up, review
 * resolution and the order's figures.
 */

const SHOP = 'shop-rf';
const MANAGER: AuthUser = { sub: 'manager-rf', shopId: SHOP, role: 'manager' } as AuthUser;
const ACCOUNT: ResolvedAccount = {
  accountId: null,
  shopAccountId: null,
  provider: 'mpesa',
  environment: 'simulator',
  settings: {},
  secrets: {},
} as unknown as ResolvedAccount;

/** A provider whose answers each test scripts; it records what it was asked. */
class ScriptedProvider implements RefundProviderService {
  readonly provider = 'mpesa';
  submits: RefundContext[] = [];
  looks: RefundContext[] = [];
  onSubmit: (ctx: RefundContext) => Promise<RefundReport> = async () => ({ status: 'pending' });
  onLook: (ctx: RefundContext) => Promise<RefundReport> = async () => ({ status: 'pending' });
  refuse?: string;
  precheck(): void {
    if (this.refuse) throw new RefundRefusedError('PROVIDER_LIMIT', this.refuse);
  }
  submit(ctx: RefundContext): Promise<RefundReport> {
    this.submits.push(ctx);
    return this.onSubmit(ctx);
  }
  look(ctx: RefundContext): Promise<RefundReport> {
    this.looks.push(ctx);
    return this.onLook(ctx);
  }
}

function registryOf(p: RefundProviderService): RefundProvidersRegistry {
  const registry = new RefundProvidersRegistry();
  registry.register(p);
  return registry;
}
const accountsStub = { resolveForExisting: async () => ACCOUNT } as unknown as MerchantAccountsService;

let tdb: TestDatabase;
let db: Db;
let repo: PaymentsRepository;
let ordersService: OrdersService;
let lifecycle: PaymentLifecycle;
let config: AppConfig;
let refunds: RefundsService;
let reconciler: RefundReconciler;
let provider: ScriptedProvider;
let n = 0;

beforeAll(async () => {
  const core = await openCoreDb({
    callbackSigningSecret: 'refund-tier-secret-0123456789abcdefghijk',
    jwtSecret: 'refund-tier-jwt-secret-0123456789abcdef',
  });
  ({ tdb, db, repo, ordersService, lifecycle, config } = core);
  config = { ...config, reconciler: { ...config.reconciler, refundMaxLooks: 3, backoffBaseSeconds: 10 } };
});
beforeEach(async () => {
  await emptyCoreTables(db);
  provider = new ScriptedProvider();
  const registry = registryOf(provider);
  const accounts = accountsStub;
  refunds = new RefundsService(new RefundsRepository(db), repo, lifecycle, registry, accounts, ordersService, config);
  reconciler = new RefundReconciler(new RefundsRepository(db), repo, refunds, registry, accounts, config);
});
afterAll(async () => {
  await tdb?.dispose();
});

// ------------------------------------------------------------------ fixtures

async function order(totalMinor = 10_000n): Promise<string> {
  const id = `ORD-RF-${++n}`;
  await db.insert(orders).values({ shopId: SHOP, id, totalMinor, currency: 'KES' });
  return id;
}

/** A completed M-Pesa payment of `amountMinor` on a new order of that total (marked paid). */
async function paid(amountMinor = 10_000n, fields: Partial<NewPayment> = {}): Promise<Payment> {
  const orderId = fields.orderId ?? (await order(amountMinor));
  const k = ++n;
  const row: NewPayment = {
    id: randomUUID(),
    shopId: SHOP,
    orderId,
    amountMinor,
    currency: 'KES',
    provider: 'mpesa',
    status: 'completed',
    createdBy: 'test',
    checkoutRequestId: `ws_CO_RF_${k}`,
    mpesaReceiptNumber: `RFX${String(k).padStart(7, '0')}`,
    completedAt: new Date(),
    ...fields,
  };
  await repo.insertPayment(row);
  return (await repo.findById(row.id))!;
}

async function refundRows(paymentId?: string): Promise<Refund[]> {
  const r = new RefundsRepository(db);
  return paymentId ? r.listForPayment(paymentId) : rowsOf<Refund>(await db.execute(sql`select * from refunds`));
}

async function expectAppError(p: Promise<unknown>, status: number, code: string): Promise<AppError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  expect({ status: (err as AppError).statusCode, code: (err as AppError).code }).toEqual({ status, code });
  return err as AppError;
}

const ask = (p: Payment, body: { amount?: number; currency?: string; reason?: string }, key?: string) =>
  refunds.request(MANAGER, p.id, { reason: 'Returned goods', ...body }, key);

/** Its next look is due, and whoever held it (a request that died sending it) has lost its lease. */
async function makeDue(refundId: string): Promise<void> {
  await db.execute(
    sql`update refunds set next_check_at = now() - interval '1 second', claimed_until = null where id = ${refundId}`,
  );
}

// ------------------------------------------------------------------ requesting

describe('requesting a refund', () => {
  it('refunds everything left by default; the order shows money kept and refunded only once it succeeded', async () => {
    const p = await paid(10_000n);
    const res = await ask(p, {});
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ status: 'pending', amount: 100, currency: 'KES', source: 'request' });
    expect(provider.submits).toHaveLength(1);
    expect(provider.submits[0]!.refund.amountMinor).toBe(10_000n);
    let o = await ordersService.get(SHOP, p.orderId);
    expect(o).toMatchObject({ paid: 100, refunded: 0, status: 'paid' });

    const [r] = await refundRows(p.id);
    expect(r!.submissions).toBe(1);
    await refunds.applyReport(r!.id, { status: 'succeeded', amountMinor: 10_000n, providerRefundId: 'RV1' }, 'test');
    o = await ordersService.get(SHOP, p.orderId);
    expect(o).toMatchObject({ paid: 0, refunded: 100, outstanding: 0, status: 'refunded' });
  });

  it('partial refunds add up to the payment and no further; a failed one does not count', async () => {
    const p = await paid(10_000n);
    provider.onSubmit = async () => ({ status: 'succeeded' });
    expect((await ask(p, { amount: 30 })).status).toBe(201);
    expect(await ordersService.get(SHOP, p.orderId)).toMatchObject({
      paid: 70,
      refunded: 30,
      status: 'partially_refunded',
    });
    const over = await expectAppError(ask(p, { amount: 80 }), 422, 'REFUND_EXCEEDS_REFUNDABLE');
    expect(over.message).toContain('At most 70 KES');
    expect(await refundRows(p.id)).toHaveLength(1);

    provider.onSubmit = async () => ({ status: 'failed', reason: 'INITIATOR_INVALID', message: 'bad initiator' });
    const failed = await ask(p, { amount: 70 });
    expect(failed.body).toMatchObject({ status: 'failed', statusReason: 'INITIATOR_INVALID' });
    provider.onSubmit = async () => ({ status: 'succeeded' });
    expect((await ask(p, { amount: 70 })).body).toMatchObject({ status: 'succeeded' });
    await expectAppError(ask(p, {}), 409, 'NOTHING_TO_REFUND');
    expect(await ordersService.get(SHOP, p.orderId)).toMatchObject({ paid: 0, refunded: 100, status: 'refunded' });
  });

  it('two managers at once: together more than the payment, one is refused and nothing is over-refunded', async () => {
    const p = await paid(10_000n);
    const results = await Promise.allSettled([ask(p, { amount: 60 }), ask(p, { amount: 60 }), ask(p, { amount: 60 })]);
    const ok = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    expect(ok).toHaveLength(1);
    expect(refused.map((r) => (r.reason as AppError).code)).toEqual([
      'REFUND_EXCEEDS_REFUNDABLE',
      'REFUND_EXCEEDS_REFUNDABLE',
    ]);
    const rows = await refundRows(p.id);
    expect(rows.reduce((s, r) => s + r.amountMinor, 0n)).toBe(6_000n);
    expect(provider.submits).toHaveLength(1);
  });

  it('bad input and payments that cannot be refunded are refused with nothing written or sent', async () => {
    const p = await paid(10_000n);
    await expectAppError(ask(p, { currency: 'USD' }), 400, 'VALIDATION_FAILED');
    await expectAppError(ask(p, { amount: 0.001 }), 400, 'VALIDATION_FAILED');
    await expectAppError(ask(p, { amount: 100.01 }), 422, 'REFUND_EXCEEDS_REFUNDABLE');
    const pending = await paid(5_000n, { status: 'pending', mpesaReceiptNumber: null, completedAt: null });
    await expectAppError(ask(pending, {}), 409, 'PAYMENT_NOT_REFUNDABLE');
    const unknown = await paid(5_000n, { status: 'review', statusReason: 'OUTCOME_UNKNOWN', mpesaReceiptNumber: null });
    await expectAppError(ask(unknown, {}), 409, 'PAYMENT_NOT_REFUNDABLE');
    const other = await paid(5_000n, { shopId: 'another-shop' });
    await expectAppError(ask(other, {}), 404, 'NOT_FOUND');
    provider.refuse = 'Pesapal refunds a payment once';
    await expectAppError(ask(p, {}), 422, 'PROVIDER_LIMIT');
    expect(await refundRows()).toHaveLength(0);
    expect(provider.submits).toHaveLength(0);
  });

  it('a refund the provider did not take fails; one whose answer is lost is unknown and checked soon', async () => {
    const p = await paid(10_000n);
    provider.onSubmit = async () => {
      throw new ProviderError('mpesa', 'rejected', 'Bad Request - Invalid SecurityCredential', {
        providerCode: '400.002.02',
      });
    };
    expect((await ask(p, { amount: 10 })).body).toMatchObject({ status: 'failed', resultCode: '400.002.02' });
    provider.onSubmit = async () => {
      throw new ProviderError('mpesa', 'timeout', 'Daraja did not answer in time');
    };
    const lost = await ask(p, { amount: 20 });
    expect(lost.body).toMatchObject({ status: 'unknown', statusReason: 'PROVIDER_TIMEOUT' });
    const r = (await refundRows(p.id)).find((x) => x.status === 'unknown')!;
    const inSeconds = (r.nextCheckAt!.getTime() - Date.now()) / 1000;
    expect(inSeconds).toBeGreaterThan(10);
    expect(inSeconds).toBeLessThan(60);
  });

  it('the same Idempotency-Key replays the first answer (sent once); with another body it is a 409', async () => {
    const p = await paid(10_000n);
    const first = await ask(p, { amount: 25 }, 'key-1');
    const again = await ask(p, { amount: 25 }, 'key-1');
    expect(again).toMatchObject({ status: 201, replayed: true, body: first.body });
    expect(provider.submits).toHaveLength(1);
    await expectAppError(ask(p, { amount: 26 }, 'key-1'), 409, 'IDEMPOTENCY_KEY_REUSED');
    const both = await Promise.allSettled([ask(p, { amount: 5 }, 'key-2'), ask(p, { amount: 5 }, 'key-2')]);
    expect(await refundRows(p.id)).toHaveLength(2);
    expect(both.filter((r) => r.status === 'fulfilled').length).toBeGreaterThanOrEqual(1);
    for (const r of both)
      if (r.status === 'rejected') expect((r.reason as AppError).code).toBe('IDEMPOTENCY_REQUEST_IN_PROGRESS');
  });
});

// ------------------------------------------------------------------ outcomes

describe('applying what the provider reports', () => {
  it('a result delivered many times at once is applied once; a later contrary report is ignored', async () => {
    const p = await paid(10_000n);
    await ask(p, {});
    const [r] = await refundRows(p.id);
    const results = await Promise.all(
      Array.from({ length: 5 }, () =>
        refunds.applyReport(r!.id, { status: 'succeeded', amountMinor: 10_000n, providerRefundId: 'RVX1' }, 'test'),
      ),
    );
    expect(results.filter((x) => x.changed)).toHaveLength(1);
    const late = await refunds.applyReport(r!.id, { status: 'failed', providerCode: '1' }, 'test');
    expect(late).toMatchObject({ changed: false, refund: { status: 'succeeded', providerRefundId: 'RVX1' } });
    const events = await repo.listEvents(p.id);
    expect(events.filter((e) => e.type === 'refund_status_changed').map((e) => e.toStatus)).toEqual([
      'pending',
      'succeeded',
    ]);
    expect(events.map((e) => e.type)).toContain('refund_report_ignored');
  });

  it('a success for another amount goes to review and still counts against the payment', async () => {
    const p = await paid(10_000n);
    await ask(p, { amount: 40 });
    const [r] = await refundRows(p.id);
    const { refund } = await refunds.applyReport(r!.id, { status: 'succeeded', amountMinor: 5_000n }, 'test');
    expect(refund).toMatchObject({ status: 'review', statusReason: 'AMOUNT_MISMATCH' });
    await expectAppError(ask(p, { amount: 61 }), 422, 'REFUND_EXCEEDS_REFUNDABLE');
  });

  it('a refund the provider made on its own is recorded once, however often it is reported', async () => {
    const p = await paid(10_000n);
    const input = { amountMinor: 10_000n, providerRefundId: 'CHARGEBACK-1', message: 'Chargeback' };
    await Promise.all([
      refunds.recordProviderReported(p, input, 'pesapal:ipn'),
      refunds.recordProviderReported(p, input, 'pesapal:ipn'),
    ]);
    const rows = await refundRows(p.id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 'succeeded', source: 'provider' });
    expect(await ordersService.get(SHOP, p.orderId)).toMatchObject({ paid: 0, refunded: 100, status: 'refunded' });
  });
});

// ------------------------------------------------------------------ the reconciler

describe('the reconciler', () => {
  it('a slow provider: a batch looked at one after another never has two looks at one refund at once (each claim renewed before its look)', async () => {
    const slow = new RefundReconciler(new RefundsRepository(db), repo, refunds, registryOf(provider), accountsStub, {
      ...config,
      reconciler: { ...config.reconciler, leaseSeconds: 1 },
    });
    provider.onSubmit = async () => ({ status: 'pending' });
    const ps = await Promise.all([paid(1_000n), paid(1_000n), paid(1_000n)]);
    for (const p of ps) await ask(p, {});
    for (const r of await refundRows()) await makeDue(r.id);
    const inFlight = new Map<string, number>();
    let most = 0;
    provider.onLook = async (ctx) => {
      const k = ctx.refund.id;
      inFlight.set(k, (inFlight.get(k) ?? 0) + 1);
      most = Math.max(most, inFlight.get(k)!);
      await new Promise((r) => setTimeout(r, 700));
      inFlight.set(k, inFlight.get(k)! - 1);
      return { status: 'pending', nextLookSeconds: 0 };
    };
    const first = slow.reconcileDue(10);
    await new Promise((r) => setTimeout(r, 1200)); // the batch's later claims have passed their lease
    for (const r of await refundRows())
      await db.execute(sql`update refunds set next_check_at = now() where id = ${r.id}`);
    await Promise.all([first, slow.reconcileDue(10)]);
    expect(most).toBe(1);
  });

  it('looks at due open refunds, settles them from the answer, and parks them for a person after its last look', async () => {
    const p = await paid(10_000n);
    provider.onSubmit = async () => ({ status: 'unknown' });
    await ask(p, { amount: 10 });
    await ask(p, { amount: 20 });
    const [a, b] = await refundRows(p.id);
    await makeDue(a!.id);
    await makeDue(b!.id);
    provider.onLook = async (ctx) =>
      ctx.refund.id === a!.id ? { status: 'succeeded', amountMinor: 1_000n } : { status: 'pending' };
    let tick = await reconciler.reconcileDue(10);
    expect(tick).toMatchObject({ refundsChecked: 2, actions: { settled: 1, still_open: 1 } });
    // Not due again until its next look.
    expect((await reconciler.reconcileDue(10)).refundsChecked).toBe(0);
    for (let i = 0; i < 3; i++) {
      await makeDue(b!.id);
      tick = await reconciler.reconcileDue(10);
    }
    expect(tick.actions).toEqual({ moved_to_review: 1 });
    const parked = (await refundRows(p.id)).find((r) => r.id === b!.id)!;
    expect(parked).toMatchObject({ status: 'review', statusReason: 'GAVE_UP' });
    await expectAppError(ask(p, { amount: 81 }), 422, 'REFUND_EXCEEDS_REFUNDABLE');
  });

  it('a refund whose sending was interrupted (still requested) is looked at once its lease ends, never re-sent by the core', async () => {
    const p = await paid(10_000n);
    provider.onSubmit = () => new Promise(() => undefined); // never answers
    void ask(p, { amount: 10 });
    await new Promise((r) => setTimeout(r, 200));
    const [r] = await refundRows(p.id);
    expect(r!.status).toBe('requested');
    expect((await reconciler.reconcileDue(10)).refundsChecked).toBe(0); // its lease holds
    await makeDue(r!.id);
    provider.onLook = async () => ({ status: 'failed', reason: 'NEVER_RECEIVED', message: 'no such reversal' });
    await reconciler.reconcileDue(10);
    expect((await refundRows(p.id))[0]).toMatchObject({ status: 'failed', statusReason: 'NEVER_RECEIVED' });
    expect(provider.submits).toHaveLength(1);
  });
});

// ------------------------------------------------------------------ review

describe('settling a refund in review by hand', () => {
  it('is refused while the provider is being asked about it; a later provider success contradicting a failed settlement is flagged', async () => {
    const p = await paid(10_000n);
    await ask(p, {});
    const [r] = await refundRows(p.id);
    await db.execute(sql`update refunds set status = 'review', status_reason = 'GAVE_UP' where id = ${r!.id}`);
    const held = await new RefundsRepository(db).claimOne(r!.id, ['review'], 60, randomUUID());
    expect(held).not.toBeNull();
    await expectAppError(refunds.settleByManager(MANAGER, r!.id, 'failed', 'portal shows nothing'), 409, 'REFUND_BUSY');
    await db.execute(sql`update refunds set claimed_until = null, claimed_by = null where id = ${r!.id}`);
    const settled = await refunds.settleByManager(MANAGER, r!.id, 'failed', 'portal shows nothing');
    expect(settled).toMatchObject({ status: 'failed', statusReason: 'SETTLED_FAILED' });
    await refunds.applyReport(r!.id, { status: 'succeeded', providerCode: '0' }, 'mpesa:result');
    expect((await refundRows(p.id))[0]).toMatchObject({ status: 'failed' });
    expect((await repo.listEvents(p.id)).map((e) => e.type)).toContain('refund_settlement_contradicted');
  });
});

describe('resolving a payment in review', () => {
  it('accept keeps the money against another order that owes it; not against one it would overpay', async () => {
    const first = await paid(10_000n);
    const late = await paid(10_000n, {
      orderId: first.orderId,
      status: 'review',
      statusReason: 'PAID_AFTER_CLOSE',
      completedAt: null,
    });
    const small = await order(5_000n);
    await expectAppError(
      refunds.resolveReview(MANAGER, late.id, { action: 'accept', note: 'keep it', orderId: small }),
      409,
      'ORDER_CANNOT_TAKE_PAYMENT',
    );
    const next = await order(10_000n);
    const res = await refunds.resolveReview(MANAGER, late.id, { action: 'accept', note: 'keep it', orderId: next });
    expect(res.body).toMatchObject({ payment: { status: 'completed', orderId: next, resolution: 'accepted' } });
    expect(await ordersService.get(SHOP, next)).toMatchObject({ paid: 100, status: 'paid' });
    expect(await ordersService.get(SHOP, first.orderId)).toMatchObject({ paid: 100, status: 'paid' });
    await expectAppError(
      refunds.resolveReview(MANAGER, late.id, { action: 'release', note: 'again' }),
      409,
      'PAYMENT_NOT_IN_REVIEW',
    );
  });

  it('refund gives it all back and takes it off the review list; a failed refund puts it back', async () => {
    const first = await paid(10_000n);
    const second = await paid(10_000n, {
      orderId: first.orderId,
      status: 'review',
      statusReason: 'SECOND_CHARGE',
      completedAt: null,
    });
    const res = await refunds.resolveReview(MANAGER, second.id, { action: 'refund', note: 'charged twice' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ payment: { resolution: 'refunded' }, refund: { amount: 100, source: 'review' } });
    expect(await repo.listForReview(SHOP, 10)).toHaveLength(0);
    // The order's figures are its completed payments': the second charge never counted.
    expect(await ordersService.get(SHOP, first.orderId)).toMatchObject({ paid: 100, refunded: 0 });
    const [r] = await refundRows(second.id);
    await refunds.applyReport(r!.id, { status: 'failed', reason: 'INSUFFICIENT_BALANCE' }, 'test');
    expect((await repo.listForReview(SHOP, 10)).map((x) => x.id)).toEqual([second.id]);
    provider.onSubmit = async () => ({ status: 'succeeded' });
    const retry = await refunds.resolveReview(MANAGER, second.id, { action: 'refund', note: 'charged twice, again' });
    expect(retry.body).toMatchObject({ payment: { resolution: 'refunded' }, refund: { status: 'succeeded' } });
  });

  it('release closes it with the note and sends nothing; one not known to hold money cannot be refunded or accepted', async () => {
    const p = await paid(10_000n, { status: 'review', statusReason: 'EXCEEDS_OUTSTANDING', completedAt: null });
    const res = await refunds.resolveReview(MANAGER, p.id, { action: 'release', note: 'refunded in cash' });
    expect(res.body).toMatchObject({ payment: { resolution: 'released' }, refund: null });
    await expectAppError(
      refunds.resolveReview(MANAGER, p.id, { action: 'refund', note: 'again' }),
      409,
      'PAYMENT_ALREADY_RESOLVED',
    );
    const mismatch = await paid(10_000n, { status: 'review', statusReason: 'AMOUNT_MISMATCH', completedAt: null });
    for (const action of ['refund', 'accept'] as const)
      await expectAppError(
        refunds.resolveReview(MANAGER, mismatch.id, { action, note: 'try' }),
        409,
        'PAYMENT_NOT_RESOLVABLE',
      );
    expect(provider.submits).toHaveLength(0);
  });
});
