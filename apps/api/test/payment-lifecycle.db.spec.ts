import { sql } from 'drizzle-orm';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { emptyCoreTables, openCoreDb } from './helpers/core-db';
import { countSql } from './helpers/sql-count';
import type { TestDatabase } from './helpers/test-db';
import type { AuthUser } from '../src/auth/auth.types';
import { AppError } from '../src/common/errors';
import { AppConfig, loadConfig } from '../src/config/app-config';
import type { Db } from '../src/database/database';
import { NewPayment, orders, Payment } from '../src/database/schema';
import { ORDER_PAID_EVENT, OrdersService } from '../src/orders/orders.service';
import { MPESA_OUTCOME_RULES } from '../src/payments/providers/mpesa/mpesa.outcome-rules';
import {
  hashRequest,
  OpenPaymentInput,
  OutcomeReport,
  PAYMENT_COMPLETED_EVENT,
  PaymentCompletedEvent,
  PaymentLifecycle,
} from '../src/payments/payment-lifecycle.service';
import type { PaymentsRepository } from '../src/payments/payments.repository';

/**
 * The lifecycle tier: PaymentLifecycle and PaymentsRepository against a real, migrated database
 * (Postgres on DATABASE_URL, else PGlite, as every test file chooses), without an app or a
 * provider. Every integrity and review rule of the payment core is reached directly here, so a
 * change to one of them fails a test in this file (the e2e suites reach them only through a
 * provider's messages). One database per file (set up by helpers/core-db, shared with the other
 * *.db.spec.ts files); the tables are emptied before each test.
 */

const SECRET = 'lifecycle-tier-secret-0123456789abcdefghijk';
const SHOP = 'shop-lc';
const USER: AuthUser = { sub: 'cashier-lc', shopId: SHOP, role: 'cashier' } as AuthUser;
const MANAGER: AuthUser = { sub: 'manager-lc', shopId: SHOP, role: 'manager' } as AuthUser;

let tdb: TestDatabase;
let db: Db;
let repo: PaymentsRepository;
let ordersService: OrdersService;
let lifecycle: PaymentLifecycle;
let config: AppConfig;
const completions: PaymentCompletedEvent[] = [];
const paidOrders: { shopId: string; orderId: string }[] = [];
let n = 0;

beforeAll(async () => {
  const core = await openCoreDb({
    callbackSigningSecret: SECRET,
    jwtSecret: 'lifecycle-tier-jwt-secret-0123456789abcdef',
  });
  ({ tdb, db, repo, ordersService, lifecycle, config } = core);
  core.events.on(PAYMENT_COMPLETED_EVENT, (e: PaymentCompletedEvent) => completions.push(e));
  core.events.on(ORDER_PAID_EVENT, (e: { shopId: string; orderId: string }) => paidOrders.push(e));
});
beforeEach(async () => {
  await emptyCoreTables(db);
  completions.length = 0;
  paidOrders.length = 0;
});
afterAll(async () => {
  await tdb?.dispose();
});

// ------------------------------------------------------------------ fixtures

async function order(totalMinor = 10_000n, currency = 'KES', shopId = SHOP): Promise<string> {
  const id = `ORD-${++n}`;
  await db.insert(orders).values({ shopId, id, totalMinor, currency });
  return id;
}

/** An M-Pesa payment waiting for the customer (Daraja accepted the push), unless `fields` say otherwise. */
async function mpesa(orderId: string, fields: Partial<NewPayment> = {}): Promise<Payment> {
  const k = ++n;
  return insert({
    orderId,
    provider: 'mpesa',
    checkoutRequestId: `ws_CO_LC_${k}`,
    merchantRequestId: `MR-${k}`,
    phoneMasked: '2547******78',
    phoneHash: 'a'.repeat(64),
    accountReference: `ACC${k}`,
    transactionDesc: 'SmartDuka POS',
    ...fields,
  });
}

/** A card/wallet payment (Flutterwave unless `fields.provider` says otherwise) waiting for the customer. */
async function card(orderId: string, fields: Partial<NewPayment> = {}): Promise<Payment> {
  return insert({
    orderId,
    provider: 'flutterwave',
    providerReference: `SD-${orderId}-${++n}`,
    checkoutUrl: 'https://checkout.example.test/pay',
    ...fields,
  });
}

async function insert(fields: Partial<NewPayment> & { orderId: string; provider: string }): Promise<Payment> {
  const row: NewPayment = {
    id: randomUUID(),
    shopId: SHOP,
    amountMinor: 10_000n,
    currency: 'KES',
    status: 'pending',
    createdBy: 'test',
    ...fields,
  };
  await repo.insertPayment(row);
  return (await repo.findById(row.id))!;
}

const receipt = () => `RCP${String(++n).padStart(7, '0')}`;

/** What a verified M-Pesa success callback for `p` reports. */
function mpesaPaid(p: Payment, extra: Partial<OutcomeReport> = {}): OutcomeReport {
  return {
    outcome: 'completed',
    resultCode: '0',
    resultDesc: 'The service request is processed successfully.',
    source: 'callback',
    amountRequired: true,
    amountMinor: p.amountMinor,
    checkoutRequestId: p.checkoutRequestId ?? undefined,
    merchantRequestId: p.merchantRequestId ?? undefined,
    receipt: receipt(),
    transactionDate: '20260102030405',
    ...extra,
  };
}

/** What an STK query answers (no amount, no receipt: the id is ours). */
function mpesaQuery(p: Payment, outcome: OutcomeReport['outcome'], extra: Partial<OutcomeReport> = {}): OutcomeReport {
  return {
    outcome,
    resultCode: outcome === 'completed' ? '0' : '1032',
    resultDesc: `query: ${outcome}`,
    source: 'query',
    amountRequired: false,
    checkoutRequestId: p.checkoutRequestId ?? undefined,
    ...extra,
  };
}

/** What a verified card/wallet status reports. */
function cardPaid(p: Payment, extra: Partial<OutcomeReport> = {}): OutcomeReport {
  return {
    outcome: 'completed',
    resultCode: 'successful',
    resultDesc: 'Approved',
    source: 'webhook',
    amountRequired: true,
    amountMinor: p.amountMinor,
    currency: p.currency,
    reference: p.providerReference ?? undefined,
    providerTransactionId: p.providerTransactionId ?? `TX-${++n}`,
    receipt: `FLWREF-${++n}`,
    paymentMethod: 'card',
    ...extra,
  };
}

const row = async (id: string) => (await repo.findById(id))!;
const events = (id: string) => repo.listEvents(id);
const lastEvent = async (id: string) => (await events(id)).at(-1)!;
const balance = async (orderId: string) => (await ordersService.getBalance(SHOP, orderId))!;
async function paidAt(orderId: string): Promise<Date | null> {
  const rows = await db
    .select({ paidAt: orders.paidAt })
    .from(orders)
    .where(sql`${orders.shopId} = ${SHOP} and ${orders.id} = ${orderId}`);
  return rows[0].paidAt;
}
async function paymentsOf(orderId: string): Promise<Payment[]> {
  const all = await db.execute(sql`select id from payments where order_id = ${orderId} order by created_at, id`);
  const ids = ((all as unknown as { rows?: { id: string }[] }).rows ?? (all as unknown as { id: string }[])).map(
    (r) => r.id,
  );
  return Promise.all(ids.map(row));
}

/** `o` without its undefined fields (what a jsonb column keeps of it). */
const stored = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

/** The error a promise rejects with, for assertions on its code, status, message and details. */
async function failure(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  throw new Error('expected the call to fail');
}

function openInput(orderId: string, extra: Partial<OpenPaymentInput> = {}): OpenPaymentInput {
  return {
    user: USER,
    orderId,
    amountMinor: 10_000n,
    currency: 'KES',
    provider: 'mpesa',
    providerLabel: 'M-Pesa',
    requestHash: 'h'.repeat(64),
    fields: { phoneMasked: '2547******78', accountReference: 'ACC', transactionDesc: 'SmartDuka POS' },
    eventData: { phone: '2547******78' },
    ...extra,
  };
}

// ------------------------------------------------------------------ an open payment reaches its outcome

describe('applyOutcome: an open payment reaches its outcome', () => {
  it('an M-Pesa success completes the payment with its receipt, pays the order in the same transaction and tells other modules after commit', async () => {
    const orderId = await order(10_000n);
    const p = await mpesa(orderId);
    const r = mpesaPaid(p, { receipt: '  rcpok00001\t' });
    expect(await lifecycle.applyOutcome(p.id, r, 'daraja:callback')).toBe('applied');

    const after = await row(p.id);
    expect(after).toMatchObject({
      status: 'completed',
      statusReason: 'PAID',
      resultCode: '0',
      resultDesc: r.resultDesc,
      mpesaReceiptNumber: 'RCPOK00001',
      transactionDate: '20260102030405',
      providerReceipt: null,
    });
    expect(after.completedAt).toBeInstanceOf(Date);
    expect(await paidAt(orderId)).toBeInstanceOf(Date);
    expect(await balance(orderId)).toMatchObject({ paidMinor: 10_000n, outstandingMinor: 0n });
    expect(completions).toEqual([
      {
        paymentId: p.id,
        shopId: SHOP,
        orderId,
        amountMinor: 10_000n,
        currency: 'KES',
        provider: 'mpesa',
        mpesaReceiptNumber: 'RCPOK00001',
        orderPaid: true,
      },
    ]);
    expect(paidOrders).toEqual([{ shopId: SHOP, orderId }]);
    expect(await lastEvent(p.id)).toMatchObject({
      type: 'status_changed',
      fromStatus: 'pending',
      toStatus: 'completed',
      actor: 'daraja:callback',
      data: {
        source: 'callback',
        resultCode: '0',
        resultDesc: r.resultDesc,
        checkoutRequestId: p.checkoutRequestId,
        receipt: 'RCPOK00001',
        amountMinor: '10000',
      },
    });
  });

  it('a part payment completes without paying the order (no order.paid)', async () => {
    const orderId = await order(25_000n);
    const p = await mpesa(orderId);
    expect(await lifecycle.applyOutcome(p.id, mpesaPaid(p), 'daraja:callback')).toBe('applied');
    expect(await paidAt(orderId)).toBeNull();
    expect(completions).toHaveLength(1);
    expect(completions[0].orderPaid).toBe(false);
    expect(paidOrders).toEqual([]);
    expect(await balance(orderId)).toMatchObject({ paidMinor: 10_000n, outstandingMinor: 15_000n });
  });

  it('fills in the ids and method it did not know, keeps the ones it did, and stores at most 500 characters of the description', async () => {
    const orderId = await order();
    const p = await card(orderId, { status: 'initiated', paymentMethod: 'mobilemoney' });
    const r = cardPaid(p, {
      providerTransactionId: 'TX-FILL-1',
      receipt: 'FLWREF-FILL',
      paymentMethod: 'card',
      checkoutRequestId: undefined,
      merchantRequestId: 'MR-REPORTED',
      resultDesc: 'x'.repeat(600),
    });
    expect(await lifecycle.applyOutcome(p.id, r, 'flutterwave:webhook')).toBe('applied');
    const after = await row(p.id);
    expect(after).toMatchObject({
      status: 'completed',
      providerTransactionId: 'TX-FILL-1',
      providerReceipt: 'FLWREF-FILL',
      paymentMethod: 'mobilemoney',
      merchantRequestId: 'MR-REPORTED',
      mpesaReceiptNumber: null,
      transactionDate: null,
    });
    expect(after.resultDesc).toBe('x'.repeat(500));
    expect(completions).toEqual([
      expect.objectContaining({ paymentId: p.id, provider: 'flutterwave', mpesaReceiptNumber: null, orderPaid: true }),
    ]);

    const m = await mpesa(await order(), {
      status: 'initiated',
      checkoutRequestId: null,
      merchantRequestId: 'MR-OURS',
    });
    expect(
      await lifecycle.applyOutcome(
        m.id,
        mpesaPaid(m, { checkoutRequestId: 'ws_CO_LATE', merchantRequestId: 'MR-THEIRS', paymentMethod: 'mpesa' }),
        'daraja:callback',
      ),
    ).toBe('applied');
    expect(await row(m.id)).toMatchObject({
      checkoutRequestId: 'ws_CO_LATE',
      merchantRequestId: 'MR-OURS',
      paymentMethod: 'mpesa',
      providerTransactionId: null,
    });
  });

  it('a payment that knows its ids keeps them when a report names none', async () => {
    const orderId = await order();
    const p = await card(orderId, {
      providerTransactionId: 'TX-KEPT',
      merchantRequestId: 'MR-KEPT',
      checkoutRequestId: 'CK-KEPT',
      paymentMethod: 'card',
    });
    const r = cardPaid(p, {
      providerTransactionId: undefined,
      paymentMethod: undefined,
      merchantRequestId: undefined,
      checkoutRequestId: undefined,
    });
    expect(await lifecycle.applyOutcome(p.id, r, 'pesapal:ipn')).toBe('applied');
    expect(await row(p.id)).toMatchObject({
      providerTransactionId: 'TX-KEPT',
      merchantRequestId: 'MR-KEPT',
      checkoutRequestId: 'CK-KEPT',
      paymentMethod: 'card',
    });
  });

  it.each([
    ['failed', 'FAILED_AT_PROVIDER'],
    ['cancelled', 'CANCELLED_BY_CUSTOMER'],
    ['expired', 'NO_RESPONSE_FROM_CUSTOMER'],
  ] as const)(
    '%s: closes the payment as %s; no receipt, no completion, the order stays unpaid',
    async (outcome, reason) => {
      const orderId = await order();
      const p = await mpesa(orderId);
      const { result, afterCommit } = await repo.transaction((tx) =>
        lifecycle.applyOutcomeIn(
          tx,
          p.id,
          {
            ...mpesaPaid(p),
            outcome,
            resultCode: '1032',
            resultDesc: 'Request cancelled by user',
            amountMinor: undefined,
          },
          'daraja:callback',
        ),
      );
      expect(result).toBe('applied');
      expect(afterCommit).toBeUndefined();
      const after = await row(p.id);
      expect(after).toMatchObject({
        status: outcome,
        statusReason: reason,
        resultCode: '1032',
        resultDesc: 'Request cancelled by user',
        mpesaReceiptNumber: null,
        transactionDate: null,
        completedAt: null,
      });
      expect(await paidAt(orderId)).toBeNull();
      expect(completions).toEqual([]);
      const event = await lastEvent(p.id);
      expect(event).toMatchObject({ type: 'status_changed', fromStatus: 'pending', toStatus: outcome });
      expect(event.data).not.toHaveProperty('amountMinor');
    },
  );

  it('a card failure stores no confirmation code', async () => {
    const p = await card(await order());
    expect(
      await lifecycle.applyOutcome(
        p.id,
        cardPaid(p, { outcome: 'failed', receipt: 'FLWREF-FAILED' }),
        'flutterwave:webhook',
      ),
    ).toBe('applied');
    expect(await row(p.id)).toMatchObject({ status: 'failed', providerReceipt: null, completedAt: null });
  });

  it('an STK query success (no amount, no receipt) completes the payment: the CheckoutRequestID is ours', async () => {
    const orderId = await order();
    const p = await mpesa(orderId);
    expect(await lifecycle.applyOutcome(p.id, mpesaQuery(p, 'completed'), 'daraja:stk-query')).toBe('applied');
    expect(await row(p.id)).toMatchObject({ status: 'completed', mpesaReceiptNumber: null, transactionDate: null });
    expect(await paidAt(orderId)).toBeInstanceOf(Date);
    const data = (await lastEvent(p.id)).data;
    expect(data).toMatchObject({
      source: 'query',
      resultDesc: 'query: completed',
      checkoutRequestId: p.checkoutRequestId,
    });
    expect(data).not.toHaveProperty('receipt');
    expect(data).not.toHaveProperty('amountMinor');
  });

  it('an unknown payment id changes nothing', async () => {
    const id = randomUUID();
    expect(
      await lifecycle.applyOutcome(
        id,
        {
          outcome: 'completed',
          resultCode: '0',
          resultDesc: 'ok',
          source: 'callback',
          amountRequired: true,
          amountMinor: 100n,
        },
        'daraja:callback',
      ),
    ).toBe('unknown_payment');
    expect(await events(id)).toEqual([]);
  });

  it('applyOutcomeIn: the completion commits with the caller, and other modules hear of it only from afterCommit', async () => {
    const orderId = await order();
    const p = await mpesa(orderId);
    let heardInside = -1;
    const { result, afterCommit } = await repo.transaction(async (tx) => {
      const applied = await lifecycle.applyOutcomeIn(tx, p.id, mpesaPaid(p), 'daraja:callback');
      heardInside = completions.length;
      return applied;
    });
    expect(result).toBe('applied');
    expect(heardInside).toBe(0);
    expect(completions).toEqual([]);
    expect(paidOrders).toEqual([]);
    afterCommit!();
    expect(completions).toHaveLength(1);
    expect(paidOrders).toEqual([{ shopId: SHOP, orderId }]);
  });

  it('applyOutcomeIn: a caller that rolls back leaves the payment and its order as they were', async () => {
    const orderId = await order();
    const p = await mpesa(orderId);
    await expect(
      repo.transaction(async (tx) => {
        await lifecycle.applyOutcomeIn(tx, p.id, mpesaPaid(p), 'daraja:callback');
        throw new Error('the caller failed after applying');
      }),
    ).rejects.toThrow('the caller failed after applying');
    expect(await row(p.id)).toMatchObject({ status: 'pending', mpesaReceiptNumber: null });
    expect(await paidAt(orderId)).toBeNull();
    expect(await events(p.id)).toEqual([]);
  });
});

describe('outcome rules by provider', () => {
  it('a payment of a provider that registered no rules is refused loudly and changes nothing', async () => {
    const p = await card(await order(), { provider: 'acme' });
    await expect(lifecycle.applyOutcome(p.id, cardPaid(p), 'x')).rejects.toThrow(
      'no outcome rules registered for provider acme',
    );
    expect(await row(p.id)).toMatchObject({ status: 'pending', updatedAt: p.updatedAt });
    expect(await events(p.id)).toEqual([]);
  });

  it('a provider registers its rules once', () => {
    expect(() => lifecycle.registerOutcomeRules('mpesa', MPESA_OUTCOME_RULES)).toThrow(
      'outcome rules for mpesa registered twice',
    );
  });
});

// ------------------------------------------------------------------ applied once

describe('applyOutcome: a payment reaches an outcome once', () => {
  it('the same success again is a duplicate: one completion, the order paid once, audited as duplicate_ignored', async () => {
    const orderId = await order();
    const p = await mpesa(orderId);
    const r = mpesaPaid(p);
    expect(await lifecycle.applyOutcome(p.id, r, 'daraja:callback')).toBe('applied');
    const paid = await paidAt(orderId);
    expect(await lifecycle.applyOutcome(p.id, r, 'daraja:callback')).toBe('duplicate');
    expect(completions).toHaveLength(1);
    expect(paidOrders).toHaveLength(1);
    expect(await paidAt(orderId)).toEqual(paid);
    expect(await lastEvent(p.id)).toMatchObject({
      type: 'duplicate_ignored',
      fromStatus: 'completed',
      toStatus: null,
      actor: 'daraja:callback',
      data: { reportedOutcome: 'completed', receipt: r.receipt },
    });
  });

  it('a failure after a success is a duplicate: a terminal payment never moves', async () => {
    const p = await mpesa(await order());
    await lifecycle.applyOutcome(p.id, mpesaPaid(p), 'daraja:callback');
    expect(await lifecycle.applyOutcome(p.id, mpesaQuery(p, 'failed'), 'daraja:stk-query')).toBe('duplicate');
    expect(await row(p.id)).toMatchObject({ status: 'completed', statusReason: 'PAID' });
    expect((await lastEvent(p.id)).data).toMatchObject({ reportedOutcome: 'failed' });
  });

  it('concurrent reports of one success (callback, query, another instance) apply once', async () => {
    const orderId = await order();
    const p = await mpesa(orderId);
    const r = mpesaPaid(p);
    const results = await Promise.all(Array.from({ length: 5 }, () => lifecycle.applyOutcome(p.id, r, 'x')));
    expect(results.sort()).toEqual(['applied', 'duplicate', 'duplicate', 'duplicate', 'duplicate']);
    expect(completions).toHaveLength(1);
    expect(paidOrders).toHaveLength(1);
    expect((await events(p.id)).filter((e) => e.type === 'status_changed')).toHaveLength(1);
  });

  it('two payments of one order completing at once are weighed one after the other: the second goes to review, never counted past the total', async () => {
    const orderId = await order(10_000n);
    const released = await mpesa(orderId, {
      status: 'review',
      statusReason: 'OUTCOME_UNKNOWN',
      releasedAt: new Date(),
    });
    const second = await mpesa(orderId);
    const results = await Promise.all([
      lifecycle.applyOutcome(released.id, mpesaPaid(released), 'a'),
      lifecycle.applyOutcome(second.id, mpesaPaid(second), 'b'),
    ]);
    expect(results.sort()).toEqual(['applied', 'review']);
    const rows = await paymentsOf(orderId);
    expect(rows.map((x) => x.status).sort()).toEqual(['completed', 'review']);
    expect(rows.find((x) => x.status === 'review')!.statusReason).toBe('ORDER_ALREADY_PAID');
    expect(await balance(orderId)).toMatchObject({ paidMinor: 10_000n, outstandingMinor: 0n });
    expect(completions).toHaveLength(1);
  });
});

// ------------------------------------------------------------------ integrity

describe('applyOutcome: a report that does not fit the payment goes to review, changing nothing else', () => {
  async function expectReview(p: Payment, r: OutcomeReport, problem: string, storedReceipt = r.receipt) {
    expect(await lifecycle.applyOutcome(p.id, r, 'test:actor')).toBe('review');
    const after = await row(p.id);
    expect(after).toMatchObject({
      status: 'review',
      statusReason: problem,
      resultCode: r.resultCode,
      resultDesc: r.resultDesc.slice(0, 500),
      mpesaReceiptNumber: p.mpesaReceiptNumber,
      providerReceipt: p.providerReceipt,
      providerTransactionId: p.providerTransactionId,
      completedAt: null,
    });
    expect(await paidAt(p.orderId)).toBeNull();
    expect(completions).toEqual([]);
    expect(await lastEvent(p.id)).toMatchObject({
      type: 'integrity_failure',
      fromStatus: p.status,
      toStatus: 'review',
      actor: 'test:actor',
      data: stored({
        problem,
        expectedAmountMinor: p.amountMinor.toString(),
        expectedCurrency: p.currency,
        expectedCheckoutRequestId: p.checkoutRequestId,
        expectedReference: p.providerReference,
        amountMinor: r.amountMinor?.toString(),
        currency: r.currency,
        reference: r.reference,
        providerTransactionId: r.providerTransactionId,
        receipt: storedReceipt,
        source: r.source,
      }),
    });
    return after;
  }

  it('AMOUNT_MISMATCH: an M-Pesa success for another amount', async () => {
    const p = await mpesa(await order());
    await expectReview(p, mpesaPaid(p, { amountMinor: 9_900n }), 'AMOUNT_MISMATCH');
  });

  it("stores at most 500 characters of the provider's description", async () => {
    const p = await mpesa(await order());
    await expectReview(p, mpesaPaid(p, { amountMinor: 1n, resultDesc: 'd'.repeat(501) }), 'AMOUNT_MISMATCH');
    expect((await row(p.id)).resultDesc).toHaveLength(500);
  });

  it('AMOUNT_MISMATCH: a success that must carry an amount and carries none', async () => {
    const p = await card(await order());
    await expectReview(p, cardPaid(p, { amountMinor: undefined }), 'AMOUNT_MISMATCH');
  });

  it('AMOUNT_MISMATCH also on a payment in review whose outcome was unknown (the truth does not fit)', async () => {
    const p = await mpesa(await order(), { status: 'review', statusReason: 'OUTCOME_UNKNOWN' });
    await expectReview(p, mpesaPaid(p, { amountMinor: 100n }), 'AMOUNT_MISMATCH');
  });

  it('CURRENCY_MISMATCH: a card success in another currency (before the amount is compared)', async () => {
    const p = await card(await order());
    await expectReview(p, cardPaid(p, { currency: 'USD', amountMinor: 1n }), 'CURRENCY_MISMATCH');
  });

  it('CHECKOUT_REQUEST_ID_MISMATCH: a report for another push (before anything else)', async () => {
    const p = await mpesa(await order());
    await expectReview(
      p,
      mpesaPaid(p, { checkoutRequestId: 'ws_CO_OTHER', amountMinor: 1n }),
      'CHECKOUT_REQUEST_ID_MISMATCH',
    );
  });

  it('TRANSACTION_ID_MISMATCH: the provider names another transaction than the one the payment holds (even on a failure)', async () => {
    const p = await card(await order(), { providerTransactionId: 'TX-OURS' });
    await expectReview(
      p,
      cardPaid(p, { providerTransactionId: 'TX-THEIRS', reference: 'SD-WRONG', amountMinor: 1n }),
      'TRANSACTION_ID_MISMATCH',
    );
    const q = await card(await order(), { providerTransactionId: 'TX-OURS-2' });
    await expectReview(
      q,
      cardPaid(q, { outcome: 'failed', providerTransactionId: 'TX-THEIRS-2' }),
      'TRANSACTION_ID_MISMATCH',
    );
  });

  it('REFERENCE_MISMATCH: the provider reports our reference as another one (an empty one too), before the amount', async () => {
    const p = await card(await order(), { provider: 'pesapal' });
    await expectReview(p, cardPaid(p, { reference: 'SD-SOMEONE-ELSE', amountMinor: 1n }), 'REFERENCE_MISMATCH');
    const q = await card(await order(), { provider: 'pesapal' });
    await expectReview(q, cardPaid(q, { reference: '', outcome: 'cancelled' }), 'REFERENCE_MISMATCH');
  });

  it('DUPLICATE_RECEIPT: an M-Pesa success with a receipt another payment holds (compared normalised)', async () => {
    const first = await mpesa(await order(), { status: 'completed', mpesaReceiptNumber: 'RCPTAKEN01' });
    const p = await mpesa(await order());
    await expectReview(p, mpesaPaid(p, { receipt: ' rcptaken01 ' }), 'DUPLICATE_RECEIPT', 'RCPTAKEN01');
    expect(await row(first.id)).toMatchObject({ status: 'completed', mpesaReceiptNumber: 'RCPTAKEN01' });
  });

  it('DUPLICATE_TRANSACTION: a card success naming a transaction another payment of the provider holds', async () => {
    await card(await order(), { status: 'completed', providerTransactionId: 'TX-TAKEN' });
    const p = await card(await order());
    await expectReview(p, cardPaid(p, { providerTransactionId: 'TX-TAKEN' }), 'DUPLICATE_TRANSACTION');
  });

  it('no mismatch where there is nothing to compare: ids the payment does not hold, a reference not reported, a failure without an amount', async () => {
    const p = await card(await order(), { providerReference: null });
    expect(
      await lifecycle.applyOutcome(p.id, cardPaid(p, { reference: 'SD-ANY', checkoutRequestId: 'CK-ANY' }), 'x'),
    ).toBe('applied');
    const q = await card(await order());
    expect(await lifecycle.applyOutcome(q.id, cardPaid(q, { reference: undefined, currency: undefined }), 'x')).toBe(
      'applied',
    );
    const m = await mpesa(await order(), { checkoutRequestId: null });
    expect(await lifecycle.applyOutcome(m.id, mpesaPaid(m, { checkoutRequestId: 'ws_CO_ANY' }), 'x')).toBe('applied');
    const f = await card(await order());
    expect(
      await lifecycle.applyOutcome(
        f.id,
        cardPaid(f, { outcome: 'failed', amountMinor: undefined, currency: 'USD' }),
        'x',
      ),
    ).toBe('applied');
    expect(await row(f.id)).toMatchObject({ status: 'failed' });
  });

  it('a duplicate receipt or transaction matters only for a success; the payment holding the transaction itself is no duplicate', async () => {
    await mpesa(await order(), { status: 'completed', mpesaReceiptNumber: 'RCPFAIL001' });
    const m = await mpesa(await order());
    expect(await lifecycle.applyOutcome(m.id, mpesaPaid(m, { outcome: 'failed', receipt: 'RCPFAIL001' }), 'x')).toBe(
      'applied',
    );
    expect(await row(m.id)).toMatchObject({ status: 'failed' });

    const own = await card(await order(), { providerTransactionId: 'TX-OWN' });
    expect(await lifecycle.applyOutcome(own.id, cardPaid(own, { providerTransactionId: 'TX-OWN' }), 'x')).toBe(
      'applied',
    );
  });

  it('DUPLICATE_TRANSACTION is per provider: the same id at another provider is another transaction', async () => {
    await card(await order(), { provider: 'pesapal', status: 'completed', providerTransactionId: 'TX-SHARED' });
    const p = await card(await order());
    expect(await lifecycle.applyOutcome(p.id, cardPaid(p, { providerTransactionId: 'TX-SHARED' }), 'x')).toBe(
      'applied',
    );
  });

  it('a card report carrying an M-Pesa receipt already in use is no duplicate (card receipts are not M-Pesa receipts)', async () => {
    await mpesa(await order(), { status: 'completed', mpesaReceiptNumber: 'FLWREF-SAME' });
    const p = await card(await order());
    expect(await lifecycle.applyOutcome(p.id, cardPaid(p, { receipt: 'FLWREF-SAME' }), 'x')).toBe('applied');
    expect(await row(p.id)).toMatchObject({
      status: 'completed',
      providerReceipt: 'FLWREF-SAME',
      mpesaReceiptNumber: null,
    });
  });
});

// ------------------------------------------------------------------ more than the order owes

describe('applyOutcome: money for more than the order still owes goes to review for a refund', () => {
  it('ORDER_ALREADY_PAID: the order was paid by another payment; the truth is recorded, the order is not counted twice', async () => {
    const orderId = await order(10_000n);
    const first = await mpesa(orderId);
    await lifecycle.applyOutcome(first.id, mpesaPaid(first), 'x');
    const paid = await paidAt(orderId);
    completions.length = 0;
    const p = await mpesa(orderId, { status: 'initiated', checkoutRequestId: null, merchantRequestId: null });
    const r = mpesaPaid(p, {
      checkoutRequestId: 'ws_CO_LATE_2',
      merchantRequestId: 'MR-LATE-2',
      paymentMethod: 'mpesa',
    });
    expect(await lifecycle.applyOutcome(p.id, r, 'daraja:callback')).toBe('review');
    expect(await row(p.id)).toMatchObject({
      status: 'review',
      statusReason: 'ORDER_ALREADY_PAID',
      resultCode: '0',
      resultDesc: r.resultDesc,
      mpesaReceiptNumber: r.receipt,
      transactionDate: r.transactionDate,
      checkoutRequestId: 'ws_CO_LATE_2',
      merchantRequestId: 'MR-LATE-2',
      paymentMethod: 'mpesa',
      providerReceipt: null,
      completedAt: null,
    });
    expect(await paidAt(orderId)).toEqual(paid);
    expect(await balance(orderId)).toMatchObject({ paidMinor: 10_000n, outstandingMinor: 0n });
    expect(completions).toEqual([]);
    expect(await lastEvent(p.id)).toMatchObject({
      type: 'integrity_failure',
      fromStatus: 'initiated',
      toStatus: 'review',
      actor: 'daraja:callback',
      data: {
        problem: 'ORDER_ALREADY_PAID',
        note: 'the customer paid an order that was already paid: refund due',
        outstandingMinor: '0',
        paidMinor: '10000',
        totalMinor: '10000',
        receipt: r.receipt,
      },
    });
  });

  it('EXCEEDS_OUTSTANDING: the order owes less than the payment; a card payment keeps its confirmation code and ids', async () => {
    const orderId = await order(15_000n);
    await card(orderId, { status: 'completed' });
    const p = await card(orderId, { provider: 'pesapal' });
    const r = cardPaid(p, { providerTransactionId: 'TX-EXCEEDS', receipt: 'CONF-EXCEEDS', paymentMethod: 'Visa' });
    expect(await lifecycle.applyOutcome(p.id, r, 'pesapal:ipn')).toBe('review');
    expect(await row(p.id)).toMatchObject({
      status: 'review',
      statusReason: 'EXCEEDS_OUTSTANDING',
      providerTransactionId: 'TX-EXCEEDS',
      providerReceipt: 'CONF-EXCEEDS',
      paymentMethod: 'Visa',
      mpesaReceiptNumber: null,
      transactionDate: null,
    });
    expect(await lastEvent(p.id)).toMatchObject({
      data: {
        problem: 'EXCEEDS_OUTSTANDING',
        note: 'the customer paid more than the order still owed: refund the difference or all of it',
        outstandingMinor: '5000',
        paidMinor: '10000',
        totalMinor: '15000',
      },
    });
    expect(await balance(orderId)).toMatchObject({ paidMinor: 10_000n, outstandingMinor: 5_000n });
  });

  it('exactly what the order still owes completes it', async () => {
    const orderId = await order(20_000n);
    await mpesa(orderId, { status: 'completed', mpesaReceiptNumber: 'RCPHALF001' });
    const p = await mpesa(orderId);
    expect(await lifecycle.applyOutcome(p.id, mpesaPaid(p), 'x')).toBe('applied');
    expect(await paidAt(orderId)).toBeInstanceOf(Date);
    expect(completions).toEqual([expect.objectContaining({ paymentId: p.id, orderPaid: true })]);
  });

  it('a payment whose order the orders port does not know completes (there is no balance to weigh it against)', async () => {
    const p = await mpesa('ORD-NOT-IN-ORDERS');
    expect(await lifecycle.applyOutcome(p.id, mpesaPaid(p), 'x')).toBe('applied');
    expect(await row(p.id)).toMatchObject({ status: 'completed' });
    expect(completions).toEqual([expect.objectContaining({ paymentId: p.id, orderPaid: false })]);
  });

  it('a failure on a paid order is only a failure', async () => {
    const orderId = await order(10_000n);
    await mpesa(orderId, { status: 'completed' });
    const p = await mpesa(orderId);
    expect(await lifecycle.applyOutcome(p.id, mpesaQuery(p, 'failed'), 'x')).toBe('applied');
    expect(await row(p.id)).toMatchObject({ status: 'failed', statusReason: 'FAILED_AT_PROVIDER' });
  });

  it('a released OUTCOME_UNKNOWN payment whose truth arrives after another payment paid part of the order: EXCEEDS_OUTSTANDING', async () => {
    const orderId = await order(15_000n);
    const unknown = await mpesa(orderId, { status: 'review', statusReason: 'OUTCOME_UNKNOWN', releasedAt: new Date() });
    await mpesa(orderId, { status: 'completed', amountMinor: 10_000n });
    expect(await lifecycle.applyOutcome(unknown.id, mpesaPaid(unknown), 'x')).toBe('review');
    expect(await row(unknown.id)).toMatchObject({ status: 'review', statusReason: 'EXCEEDS_OUTSTANDING' });
  });
});

// ------------------------------------------------------------------ review: OUTCOME_UNKNOWN settled by the truth

describe('applyOutcome: a payment in review because its outcome was unknown is settled by the truth', () => {
  it.each([
    ['completed', 'PAID'],
    ['failed', 'FAILED_AT_PROVIDER'],
    ['expired', 'NO_RESPONSE_FROM_CUSTOMER'],
  ] as const)('%s', async (outcome, reason) => {
    const orderId = await order();
    const p = await mpesa(orderId, { status: 'review', statusReason: 'OUTCOME_UNKNOWN' });
    const r = outcome === 'completed' ? mpesaPaid(p) : mpesaQuery(p, outcome);
    expect(await lifecycle.applyOutcome(p.id, r, 'daraja:stk-query')).toBe('applied');
    expect(await row(p.id)).toMatchObject({ status: outcome, statusReason: reason });
    expect(await lastEvent(p.id)).toMatchObject({ type: 'status_changed', fromStatus: 'review', toStatus: outcome });
    expect(completions).toHaveLength(outcome === 'completed' ? 1 : 0);
    expect((await paidAt(orderId)) !== null).toBe(outcome === 'completed');
  });

  it('a payment in review for another reason is not settled by a report: duplicate', async () => {
    const orderId = await order();
    const p = await mpesa(orderId, { status: 'review', statusReason: 'AMOUNT_MISMATCH' });
    expect(await lifecycle.applyOutcome(p.id, mpesaPaid(p), 'x')).toBe('duplicate');
    expect(await row(p.id)).toMatchObject({
      status: 'review',
      statusReason: 'AMOUNT_MISMATCH',
      mpesaReceiptNumber: null,
    });
    expect(await paidAt(orderId)).toBeNull();
  });
});

// ------------------------------------------------------------------ closed payments

describe('applyOutcome: money reported on a payment we had closed (PAID_AFTER_CLOSE)', () => {
  it.each(['failed', 'cancelled', 'expired'] as const)(
    'M-Pesa, %s: review with the receipt, the order is not paid',
    async (status) => {
      const orderId = await order();
      const p = await mpesa(orderId, { status, statusReason: 'NOT_FOUND_AT_PROVIDER' });
      const r = mpesaPaid(p, { receipt: 'rcpclosed1' });
      expect(await lifecycle.applyOutcome(p.id, r, 'daraja:callback')).toBe('review');
      expect(await row(p.id)).toMatchObject({
        status: 'review',
        statusReason: 'PAID_AFTER_CLOSE',
        resultCode: '0',
        resultDesc: r.resultDesc,
        mpesaReceiptNumber: 'RCPCLOSED1',
        transactionDate: r.transactionDate,
        checkoutRequestId: p.checkoutRequestId,
        providerReceipt: null,
      });
      expect(await paidAt(orderId)).toBeNull();
      expect(completions).toEqual([]);
      expect(await lastEvent(p.id)).toMatchObject({
        type: 'integrity_failure',
        fromStatus: status,
        toStatus: 'review',
        actor: 'daraja:callback',
        data: { problem: 'PAID_AFTER_CLOSE', closedReason: 'NOT_FOUND_AT_PROVIDER', receipt: 'RCPCLOSED1' },
      });
    },
  );

  it('card: the confirmation code and the transaction id it did not know are stored; an M-Pesa payment learns its CheckoutRequestID', async () => {
    const p = await card(await order(), { status: 'expired', statusReason: 'CHECKOUT_EXPIRED' });
    const r = cardPaid(p, { providerTransactionId: 'TX-AFTER', receipt: 'FLWREF-AFTER' });
    expect(await lifecycle.applyOutcome(p.id, r, 'flutterwave:webhook')).toBe('review');
    expect(await row(p.id)).toMatchObject({
      status: 'review',
      statusReason: 'PAID_AFTER_CLOSE',
      providerTransactionId: 'TX-AFTER',
      providerReceipt: 'FLWREF-AFTER',
      mpesaReceiptNumber: null,
      transactionDate: null,
    });

    const kept = await card(await order(), { status: 'failed', providerTransactionId: 'TX-KNOWN' });
    expect(await lifecycle.applyOutcome(kept.id, cardPaid(kept, { providerTransactionId: undefined }), 'x')).toBe(
      'review',
    );
    expect(await row(kept.id)).toMatchObject({ providerTransactionId: 'TX-KNOWN' });

    const m = await mpesa(await order(), { status: 'failed', checkoutRequestId: null });
    expect(await lifecycle.applyOutcome(m.id, mpesaPaid(m, { checkoutRequestId: 'ws_CO_FOUND' }), 'x')).toBe('review');
    expect(await row(m.id)).toMatchObject({ checkoutRequestId: 'ws_CO_FOUND', statusReason: 'PAID_AFTER_CLOSE' });
  });

  it('a success without receipt columns reported stores none', async () => {
    const m = await mpesa(await order(), { status: 'failed' });
    expect(await lifecycle.applyOutcome(m.id, mpesaQuery(m, 'completed'), 'x')).toBe('review');
    expect(await row(m.id)).toMatchObject({
      statusReason: 'PAID_AFTER_CLOSE',
      mpesaReceiptNumber: null,
      transactionDate: null,
    });
    const c = await card(await order(), { status: 'failed' });
    expect(await lifecycle.applyOutcome(c.id, cardPaid(c, { receipt: undefined }), 'x')).toBe('review');
    expect(await row(c.id)).toMatchObject({ statusReason: 'PAID_AFTER_CLOSE', providerReceipt: null });
  });

  it('a success that does not fit the closed payment (amount, reference, transaction id) or whose receipt/transaction is taken is a duplicate: the payment stays closed', async () => {
    const cases: [Payment, OutcomeReport][] = [];
    const a = await mpesa(await order(), { status: 'failed' });
    cases.push([a, mpesaPaid(a, { amountMinor: 1n })]);
    await mpesa(await order(), { status: 'completed', mpesaReceiptNumber: 'RCPCLOSEDT' });
    const b = await mpesa(await order(), { status: 'cancelled' });
    cases.push([b, mpesaPaid(b, { receipt: 'RCPCLOSEDT' })]);
    const c = await card(await order(), { status: 'expired' });
    cases.push([c, cardPaid(c, { reference: 'SD-NOT-OURS' })]);
    const d = await card(await order(), { status: 'failed', providerTransactionId: 'TX-D' });
    cases.push([d, cardPaid(d, { providerTransactionId: 'TX-NOT-D' })]);
    await card(await order(), { status: 'completed', providerTransactionId: 'TX-TAKEN-E' });
    const e = await card(await order(), { status: 'failed' });
    cases.push([e, cardPaid(e, { providerTransactionId: 'TX-TAKEN-E' })]);
    for (const [p, r] of cases) {
      expect(await lifecycle.applyOutcome(p.id, r, 'x')).toBe('duplicate');
      expect(await row(p.id)).toMatchObject({
        status: p.status,
        statusReason: p.statusReason,
        mpesaReceiptNumber: null,
        providerReceipt: null,
      });
    }
  });

  it('a failure reported on a closed payment is a duplicate', async () => {
    const p = await mpesa(await order(), { status: 'expired' });
    expect(await lifecycle.applyOutcome(p.id, mpesaQuery(p, 'failed'), 'x')).toBe('duplicate');
    expect(await row(p.id)).toMatchObject({ status: 'expired' });
  });
});

// ------------------------------------------------------------------ late receipt

describe('applyOutcome: a payment that took the money without its receipt gets it from the M-Pesa callback or statement', () => {
  async function queryCompleted(orderTotal = 10_000n, fields: Partial<NewPayment> = {}) {
    const orderId = await order(orderTotal);
    const p = await mpesa(orderId, fields);
    expect(await lifecycle.applyOutcome(p.id, mpesaQuery(p, 'completed'), 'daraja:stk-query')).toBe('applied');
    completions.length = 0;
    paidOrders.length = 0;
    return row(p.id);
  }

  it.each(['callback', 'statement'] as const)(
    'from the %s: only the receipt and its date are recorded (receipt_recorded), nothing else moves',
    async (source) => {
      const p = await queryCompleted();
      const r = mpesaPaid(p, { source, receipt: ' rcplate001 ', resultCode: source === 'statement' ? null : '0' });
      expect(await lifecycle.applyOutcome(p.id, r, `test:${source}`)).toBe('applied');
      const after = await row(p.id);
      expect(after).toMatchObject({
        status: 'completed',
        statusReason: 'PAID',
        mpesaReceiptNumber: 'RCPLATE001',
        transactionDate: r.transactionDate,
        resultCode: p.resultCode,
        resultDesc: p.resultDesc,
      });
      expect(after.completedAt).toEqual(p.completedAt);
      expect(completions).toEqual([]);
      expect(paidOrders).toEqual([]);
      expect(await lastEvent(p.id)).toMatchObject({
        type: 'receipt_recorded',
        fromStatus: 'completed',
        toStatus: null,
        actor: `test:${source}`,
        data: { receipt: 'RCPLATE001', source },
      });
    },
  );

  it('without a date in the report the date the payment had stays', async () => {
    const p = await queryCompleted();
    await repo.update(p.id, { transactionDate: '20250101000000' });
    expect(await lifecycle.applyOutcome(p.id, mpesaPaid(p, { transactionDate: undefined }), 'x')).toBe('applied');
    expect(await row(p.id)).toMatchObject({ transactionDate: '20250101000000' });
  });

  it.each(['EXCEEDS_OUTSTANDING', 'ORDER_ALREADY_PAID', 'PAID_AFTER_CLOSE', 'SECOND_CHARGE'])(
    'a payment in review for a refund (%s: it holds the money) gets its receipt too',
    async (reason) => {
      const p = await mpesa(await order(), { status: 'review', statusReason: reason });
      const r = mpesaPaid(p);
      expect(await lifecycle.applyOutcome(p.id, r, 'x')).toBe('applied');
      expect(await row(p.id)).toMatchObject({ status: 'review', statusReason: reason, mpesaReceiptNumber: r.receipt });
      expect(await lastEvent(p.id)).toMatchObject({ type: 'receipt_recorded', fromStatus: 'review' });
    },
  );

  it('the amount must match: a receipt for another amount, or with no amount, is not attached', async () => {
    const p = await queryCompleted();
    expect(await lifecycle.applyOutcome(p.id, mpesaPaid(p, { amountMinor: 9_999n }), 'x')).toBe('duplicate');
    expect(await lifecycle.applyOutcome(p.id, mpesaPaid(p, { amountMinor: undefined }), 'x')).toBe('duplicate');
    expect(await lifecycle.applyOutcome(p.id, mpesaPaid(p, { currency: 'USD' }), 'x')).toBe('duplicate');
    // Also where the report does not ask for its amount to be checked (the late receipt always does).
    expect(await lifecycle.applyOutcome(p.id, mpesaPaid(p, { amountRequired: false, amountMinor: 9_999n }), 'x')).toBe(
      'duplicate',
    );
    expect(
      await lifecycle.applyOutcome(p.id, mpesaPaid(p, { amountRequired: false, amountMinor: undefined }), 'x'),
    ).toBe('duplicate');
    expect(await lifecycle.applyOutcome(p.id, mpesaPaid(p, { amountRequired: false, currency: 'USD' }), 'x')).toBe(
      'duplicate',
    );
    expect(await row(p.id)).toMatchObject({ mpesaReceiptNumber: null });
    expect((await events(p.id)).filter((e) => e.type === 'receipt_recorded')).toEqual([]);
  });

  it('the report must fit the payment: another push, a receipt in use, a query or a non-success is not attached', async () => {
    await mpesa(await order(), { status: 'completed', mpesaReceiptNumber: 'RCPINUSE01' });
    const p = await queryCompleted();
    const reports = [
      mpesaPaid(p, { checkoutRequestId: 'ws_CO_ANOTHER' }),
      mpesaPaid(p, { receipt: 'rcpinuse01' }),
      mpesaPaid(p, { source: 'query' }),
      mpesaPaid(p, { source: 'verify' }),
      mpesaPaid(p, { outcome: 'failed' }),
      mpesaPaid(p, { receipt: undefined }),
    ];
    for (const r of reports) expect(await lifecycle.applyOutcome(p.id, r, 'x')).toBe('duplicate');
    expect(await row(p.id)).toMatchObject({ status: 'completed', mpesaReceiptNumber: null });
  });

  it('a payment that holds no money (in review for a mismatch) gets no receipt', async () => {
    const p = await mpesa(await order(), { status: 'review', statusReason: 'AMOUNT_MISMATCH' });
    expect(await lifecycle.applyOutcome(p.id, mpesaPaid(p), 'x')).toBe('duplicate');
    expect(await row(p.id)).toMatchObject({ mpesaReceiptNumber: null });
  });

  it('only M-Pesa receipts are attached late: a completed card payment keeps its confirmation code as it was', async () => {
    const p = await card(await order(), { status: 'completed' });
    expect(await lifecycle.applyOutcome(p.id, cardPaid(p, { source: 'statement' }), 'x')).toBe('duplicate');
    expect(await lifecycle.applyOutcome(p.id, cardPaid(p, { source: 'callback' }), 'x')).toBe('duplicate');
    expect(await row(p.id)).toMatchObject({ providerReceipt: null, mpesaReceiptNumber: null });
  });
});

// ------------------------------------------------------------------ second charge

describe('applyOutcome: a verified success with another receipt for a payment that holds one (SECOND_CHARGE)', () => {
  async function paidWith(receiptNo: string) {
    const orderId = await order(10_000n);
    const p = await mpesa(orderId, { transactionDate: '20250505050505' });
    expect(
      await lifecycle.applyOutcome(p.id, mpesaPaid(p, { receipt: receiptNo, source: 'statement' }), 'statement'),
    ).toBe('applied');
    completions.length = 0;
    paidOrders.length = 0;
    return row(p.id);
  }

  it('records the second charge as its own review row for a refund; the payment and its order do not change', async () => {
    const p = await paidWith('RCPFIRST01');
    const r = mpesaPaid(p, { receipt: ' rcpsecond1 ' });
    expect(await lifecycle.applyOutcome(p.id, r, 'daraja:callback')).toBe('review');
    expect(await row(p.id)).toMatchObject({
      status: 'completed',
      statusReason: 'PAID',
      mpesaReceiptNumber: 'RCPFIRST01',
    });
    const rows = await paymentsOf(p.orderId);
    expect(rows).toHaveLength(2);
    const second = rows.find((x) => x.id !== p.id)!;
    expect(second).toMatchObject({
      shopId: SHOP,
      orderId: p.orderId,
      amountMinor: 10_000n,
      currency: 'KES',
      provider: 'mpesa',
      status: 'review',
      statusReason: 'SECOND_CHARGE',
      resultCode: '0',
      resultDesc: `Second charge: receipt RCPSECOND1 for the push of payment ${p.id} (which holds RCPFIRST01); refund one`,
      createdBy: 'system',
      phoneMasked: p.phoneMasked,
      phoneHash: p.phoneHash,
      accountReference: p.accountReference,
      transactionDesc: p.transactionDesc,
      mpesaReceiptNumber: 'RCPSECOND1',
      transactionDate: r.transactionDate,
      checkoutRequestId: null,
      idempotencyKey: null,
    });
    const note = `the customer was charged twice: receipt RCPSECOND1 came for the push of payment ${p.id}, which already holds receipt RCPFIRST01; refund one`;
    expect(await events(second.id)).toEqual([
      expect.objectContaining({
        type: 'integrity_failure',
        fromStatus: null,
        toStatus: 'review',
        actor: 'daraja:callback',
        data: expect.objectContaining({
          problem: 'SECOND_CHARGE',
          note,
          firstPaymentId: p.id,
          firstReceipt: 'RCPFIRST01',
          orderId: p.orderId,
          receipt: 'RCPSECOND1',
        }),
      }),
    ]);
    expect(await lastEvent(p.id)).toMatchObject({
      type: 'integrity_failure',
      fromStatus: 'completed',
      toStatus: null,
      actor: 'daraja:callback',
      data: { problem: 'SECOND_CHARGE', note, secondChargePaymentId: second.id, keptReceipt: 'RCPFIRST01' },
    });
    expect(await balance(p.orderId)).toMatchObject({ paidMinor: 10_000n, outstandingMinor: 0n });
    expect(completions).toEqual([]);

    // The same second charge reported again is a duplicate (its receipt is taken now).
    expect(await lifecycle.applyOutcome(p.id, r, 'daraja:callback')).toBe('duplicate');
    expect(await paymentsOf(p.orderId)).toHaveLength(2);
  });

  it('the second charge row keeps at most 500 characters of its description', async () => {
    const p = await paidWith('RCPFIRST03');
    expect(await lifecycle.applyOutcome(p.id, mpesaPaid(p, { receipt: 'R'.repeat(480) }), 'x')).toBe('review');
    const second = (await paymentsOf(p.orderId)).find((x) => x.id !== p.id)!;
    expect(second.resultDesc).toBe(
      `Second charge: receipt ${'R'.repeat(480)} for the push of payment ${p.id} (which holds RCPFIRST03); refund one`.slice(
        0,
        500,
      ),
    );
    expect(second.resultDesc).toHaveLength(500);
  });

  it('only a verified M-Pesa callback with the amount and a new receipt is a second charge', async () => {
    const p = await paidWith('RCPFIRST02');
    const reports = [
      mpesaPaid(p, { receipt: 'rcpfirst02' }),
      mpesaPaid(p, { source: 'statement' }),
      mpesaPaid(p, { amountRequired: false }),
      mpesaPaid(p, { amountMinor: 10_100n }),
      mpesaPaid(p, { currency: 'USD' }),
      mpesaPaid(p, { checkoutRequestId: 'ws_CO_NOT_THIS' }),
      mpesaPaid(p, { outcome: 'failed' }),
      mpesaPaid(p, { receipt: undefined }),
    ];
    for (const r of reports) expect(await lifecycle.applyOutcome(p.id, r, 'x')).toBe('duplicate');
    await mpesa(await order(), { status: 'completed', mpesaReceiptNumber: 'RCPOTHER02' });
    expect(await lifecycle.applyOutcome(p.id, mpesaPaid(p, { receipt: 'RCPOTHER02' }), 'x')).toBe('duplicate');
    expect(await paymentsOf(p.orderId)).toHaveLength(1);
  });

  it('a payment in review for a refund with a receipt also records a second charge', async () => {
    const p = await mpesa(await order(), {
      status: 'review',
      statusReason: 'ORDER_ALREADY_PAID',
      mpesaReceiptNumber: 'RCPREVIEW3',
    });
    expect(await lifecycle.applyOutcome(p.id, mpesaPaid(p, { receipt: 'RCPNEW0003' }), 'x')).toBe('review');
    expect((await paymentsOf(p.orderId)).map((x) => x.statusReason).sort()).toEqual([
      'ORDER_ALREADY_PAID',
      'SECOND_CHARGE',
    ]);
  });

  it('card payments have no second charge rule', async () => {
    const p = await card(await order(), {
      status: 'completed',
      providerReceipt: 'FLWREF-ONE',
      providerTransactionId: 'TX-ONE',
    });
    expect(await lifecycle.applyOutcome(p.id, cardPaid(p, { source: 'callback', receipt: 'FLWREF-TWO' }), 'x')).toBe(
      'duplicate',
    );
    expect(await paymentsOf(p.orderId)).toHaveLength(1);
  });
});

// ------------------------------------------------------------------ review, release, failOpen

describe('moveUnknownToReview', () => {
  it('parks an open payment in review (OUTCOME_UNKNOWN) with an audit event', async () => {
    const p = await mpesa(await order(), { status: 'unresolved' });
    expect(await lifecycle.moveUnknownToReview(p.id, { afterSeconds: 600 }, false)).toBe(true);
    expect(await row(p.id)).toMatchObject({ status: 'review', statusReason: 'OUTCOME_UNKNOWN' });
    expect(await lastEvent(p.id)).toMatchObject({
      type: 'status_changed',
      fromStatus: 'unresolved',
      toStatus: 'review',
      actor: 'system',
      data: { reason: 'OUTCOME_UNKNOWN', afterSeconds: 600 },
    });
  });

  it('leaves a closed payment, one already in review and an unknown id alone', async () => {
    for (const status of ['completed', 'failed', 'cancelled', 'expired', 'review']) {
      const p = await mpesa(await order(), { status, statusReason: status === 'review' ? 'AMOUNT_MISMATCH' : null });
      expect(await lifecycle.moveUnknownToReview(p.id, {}, false)).toBe(false);
      expect(await row(p.id)).toMatchObject({ status, updatedAt: p.updatedAt });
      expect(await events(p.id)).toEqual([]);
    }
    expect(await lifecycle.moveUnknownToReview(randomUUID(), {}, false)).toBe(false);
  });

  it('onlyWithoutProviderId: only a payment the provider never gave an id', async () => {
    const withId = await mpesa(await order(), { status: 'initiated' });
    expect(await lifecycle.moveUnknownToReview(withId.id, {}, true)).toBe(false);
    expect(await row(withId.id)).toMatchObject({ status: 'initiated' });
    const without = await mpesa(await order(), { status: 'initiated', checkoutRequestId: null });
    expect(await lifecycle.moveUnknownToReview(without.id, {}, true)).toBe(true);
    expect(await row(without.id)).toMatchObject({ status: 'review', statusReason: 'OUTCOME_UNKNOWN' });
  });
});

describe('failOpen and closeOpen', () => {
  it('failOpen fails an open payment for a reason of ours, audited', async () => {
    const p = await card(await order());
    expect(await lifecycle.failOpen(p.id, 'NOT_FOUND_AT_PROVIDER', 'm'.repeat(700), 'reconciler:flutterwave')).toBe(
      true,
    );
    const after = await row(p.id);
    expect(after).toMatchObject({ status: 'failed', statusReason: 'NOT_FOUND_AT_PROVIDER', completedAt: null });
    expect(after.resultDesc).toBe('m'.repeat(500));
    expect(await lastEvent(p.id)).toMatchObject({
      type: 'status_changed',
      fromStatus: 'pending',
      toStatus: 'failed',
      actor: 'reconciler:flutterwave',
      data: { reason: 'NOT_FOUND_AT_PROVIDER', message: 'm'.repeat(700) },
    });
  });

  it('closeOpen expires an open payment with extra audit data', async () => {
    const p = await card(await order(), { status: 'unresolved' });
    expect(
      await lifecycle.closeOpen(p.id, 'expired', 'CHECKOUT_EXPIRED', 'Not paid in time', 'reconciler', {
        windowSeconds: 900,
      }),
    ).toBe(true);
    expect(await row(p.id)).toMatchObject({
      status: 'expired',
      statusReason: 'CHECKOUT_EXPIRED',
      resultDesc: 'Not paid in time',
    });
    expect(await lastEvent(p.id)).toMatchObject({
      fromStatus: 'unresolved',
      toStatus: 'expired',
      data: { reason: 'CHECKOUT_EXPIRED', message: 'Not paid in time', windowSeconds: 900 },
    });
  });

  it('a payment that is no longer open (closed, or in review, also OUTCOME_UNKNOWN) is left alone', async () => {
    for (const [status, statusReason] of [
      ['completed', 'PAID'],
      ['failed', 'X'],
      ['expired', 'X'],
      ['cancelled', 'X'],
      ['review', 'OUTCOME_UNKNOWN'],
    ]) {
      const p = await mpesa(await order(), { status, statusReason });
      expect(await lifecycle.failOpen(p.id, 'NOT_FOUND_AT_PROVIDER', 'gone', 'x')).toBe(false);
      expect(await row(p.id)).toMatchObject({ status, statusReason });
      expect(await events(p.id)).toEqual([]);
    }
    expect(await lifecycle.failOpen(randomUUID(), 'NOT_FOUND_AT_PROVIDER', 'gone', 'x')).toBe(false);
  });
});

describe('release', () => {
  it('a manager releases the order of an OUTCOME_UNKNOWN payment: audited, the order takes a new payment, the truth still settles the old one', async () => {
    const orderId = await order(10_000n);
    const p = await mpesa(orderId, { status: 'review', statusReason: 'OUTCOME_UNKNOWN' });
    const released = await lifecycle.release(MANAGER, p.id, 'customer shows no SMS');
    expect(released).toMatchObject({ id: p.id, status: 'review', statusReason: 'OUTCOME_UNKNOWN' });
    expect(released.releasedAt).toBeInstanceOf(Date);
    expect(await row(p.id)).toMatchObject({ releasedAt: released.releasedAt });
    expect(await lastEvent(p.id)).toMatchObject({
      type: 'order_released',
      fromStatus: 'review',
      toStatus: null,
      actor: 'user:manager-lc',
      data: { reason: 'customer shows no SMS', role: 'manager', orderId },
    });

    expect(await lifecycle.openPayment(randomUUID(), openInput(orderId))).toBeNull();
    expect(await lifecycle.applyOutcome(p.id, mpesaPaid(p), 'daraja:callback')).toBe('applied');
    expect(await row(p.id)).toMatchObject({ status: 'completed' });
  });

  it('refuses a payment of another shop or an unknown id (404)', async () => {
    const p = await mpesa(await order(), { status: 'review', statusReason: 'OUTCOME_UNKNOWN' });
    for (const err of [
      await failure(lifecycle.release({ ...MANAGER, shopId: 'other-shop' }, p.id, 'r')),
      await failure(lifecycle.release(MANAGER, randomUUID(), 'r')),
    ]) {
      expect({ code: err.code, status: err.statusCode }).toEqual({ code: 'NOT_FOUND', status: 404 });
    }
    expect(await row(p.id)).toMatchObject({ releasedAt: null });
  });

  it('refuses an open payment, one whose outcome is known and one already released (409 PAYMENT_NOT_RELEASABLE), changing nothing', async () => {
    const open = await mpesa(await order(), { status: 'pending' });
    const inFlight = await failure(lifecycle.release(MANAGER, open.id, 'r'));
    expect({ code: inFlight.code, status: inFlight.statusCode, details: inFlight.details }).toEqual({
      code: 'PAYMENT_NOT_RELEASABLE',
      status: 409,
      details: { paymentId: open.id, status: 'pending', statusReason: null },
    });
    expect(inFlight.message).toContain('still waiting for the customer or the provider');

    const mismatch = await mpesa(await order(), { status: 'review', statusReason: 'AMOUNT_MISMATCH' });
    const known = await failure(lifecycle.release(MANAGER, mismatch.id, 'r'));
    expect(known.code).toBe('PAYMENT_NOT_RELEASABLE');
    expect(known.message).toBe(
      "This payment's outcome is known (review, AMOUNT_MISMATCH): it does not block its order, so there is nothing to release",
    );
    const completed = await mpesa(await order(), { status: 'completed' });
    expect((await failure(lifecycle.release(MANAGER, completed.id, 'r'))).message).toBe(
      "This payment's outcome is known (completed): it does not block its order, so there is nothing to release",
    );

    const releasedAt = new Date('2026-03-04T05:06:07.000Z');
    const again = await mpesa(await order(), { status: 'review', statusReason: 'OUTCOME_UNKNOWN', releasedAt });
    const twice = await failure(lifecycle.release(MANAGER, again.id, 'r'));
    expect({ code: twice.code, message: twice.message, details: twice.details }).toEqual({
      code: 'PAYMENT_NOT_RELEASABLE',
      message: "This payment's order was already released on 2026-03-04T05:06:07.000Z",
      details: {
        paymentId: again.id,
        status: 'review',
        statusReason: 'OUTCOME_UNKNOWN',
        releasedAt: '2026-03-04T05:06:07.000Z',
      },
    });
    for (const p of [open, mismatch, completed])
      expect(await row(p.id)).toMatchObject({ releasedAt: null, updatedAt: p.updatedAt });
    expect(await events(again.id)).toEqual([]);
  });
});

// ------------------------------------------------------------------ checkOrder, openPayment

describe('checkOrder', () => {
  it('passes an order in the currency that owes at least the amount (exactly the outstanding too)', async () => {
    const orderId = await order(10_000n);
    await expect(lifecycle.checkOrder(SHOP, orderId, 10_000n, 'KES', 'M-Pesa', '100')).resolves.toBeUndefined();
    await expect(lifecycle.checkOrder(SHOP, orderId, 1n, 'KES', 'M-Pesa', '0.01')).resolves.toBeUndefined();
  });

  it('404 for an order that does not exist (or is another shop’s)', async () => {
    const orderId = await order(10_000n, 'KES', 'other-shop');
    const err = await failure(lifecycle.checkOrder(SHOP, orderId, 100n, 'KES', 'M-Pesa', '1'));
    expect({ code: err.code, status: err.statusCode, message: err.message, details: err.details }).toEqual({
      code: 'NOT_FOUND',
      status: 404,
      message: 'Order not found',
      details: { orderId },
    });
    expect((await failure(lifecycle.requireOrder(SHOP, 'NO-SUCH-ORDER'))).statusCode).toBe(404);
  });

  it('400 CURRENCY_NOT_SUPPORTED for another currency, worded for M-Pesa or for the card providers', async () => {
    const orderId = await order(10_000n, 'USD');
    const m = await failure(lifecycle.checkOrder(SHOP, orderId, 100n, 'KES', 'M-Pesa', '1'));
    expect({ code: m.code, status: m.statusCode, message: m.message }).toEqual({
      code: 'CURRENCY_NOT_SUPPORTED',
      status: 400,
      message: `M-Pesa takes KES only; order ${orderId} is in USD`,
    });
    const c = await failure(lifecycle.checkOrder(SHOP, orderId, 100n, 'KES', 'Flutterwave', '1'));
    expect({ code: c.code, status: c.statusCode, message: c.message }).toEqual({
      code: 'CURRENCY_NOT_SUPPORTED',
      status: 400,
      message: `Order ${orderId} is in USD; pay it in USD, not KES`,
    });
  });

  it('409 ORDER_ALREADY_PAID for a paid order', async () => {
    const orderId = await order(10_000n);
    await mpesa(orderId, { status: 'completed' });
    const err = await failure(lifecycle.checkOrder(SHOP, orderId, 100n, 'KES', 'M-Pesa', '1'));
    expect({ code: err.code, status: err.statusCode, message: err.message, details: err.details }).toEqual({
      code: 'ORDER_ALREADY_PAID',
      status: 409,
      message: `Order ${orderId} is already fully paid`,
      details: { orderId },
    });
  });

  it('400 AMOUNT_EXCEEDS_OUTSTANDING for more than the order still owes, naming what it owes', async () => {
    const orderId = await order(15_050n);
    await mpesa(orderId, { status: 'completed', amountMinor: 5_000n });
    const err = await failure(lifecycle.checkOrder(SHOP, orderId, 10_051n, 'KES', 'M-Pesa', '100.51'));
    expect({ code: err.code, status: err.statusCode, message: err.message, details: err.details }).toEqual({
      code: 'AMOUNT_EXCEEDS_OUTSTANDING',
      status: 400,
      message: `Amount 100.51 is more than the 100.5 KES still owed on order ${orderId}`,
      details: { outstanding: 100.5 },
    });
  });

  it('a balance the caller just read is used as is (no second read)', async () => {
    const known = { orderId: 'NOT-IN-DB', currency: 'KES', totalMinor: 500n, paidMinor: 0n, outstandingMinor: 500n };
    await expect(lifecycle.checkOrder(SHOP, 'NOT-IN-DB', 500n, 'KES', 'Pesapal', '5', known)).resolves.toBeUndefined();
    expect((await failure(lifecycle.checkOrder(SHOP, 'NOT-IN-DB', 501n, 'KES', 'Pesapal', '5.01', known))).code).toBe(
      'AMOUNT_EXCEEDS_OUTSTANDING',
    );
  });
});

describe('openPayment', () => {
  it('writes the payment as initiated, its created event and the Idempotency-Key, in one transaction', async () => {
    const orderId = await order();
    const id = randomUUID();
    expect(
      await lifecycle.openPayment(
        id,
        openInput(orderId, {
          idempotencyKey: 'key-open-1',
          eventData: { phone: '2547******78', accountReference: 'ACC' },
        }),
      ),
    ).toBeNull();
    expect(await row(id)).toMatchObject({
      shopId: SHOP,
      orderId,
      amountMinor: 10_000n,
      currency: 'KES',
      provider: 'mpesa',
      status: 'initiated',
      idempotencyKey: 'key-open-1',
      createdBy: 'cashier-lc',
      phoneMasked: '2547******78',
      accountReference: 'ACC',
      transactionDesc: 'SmartDuka POS',
    });
    expect(await events(id)).toEqual([
      expect.objectContaining({
        type: 'created',
        fromStatus: null,
        toStatus: 'initiated',
        actor: 'user:cashier-lc',
        data: {
          amountMinor: '10000',
          currency: 'KES',
          orderId,
          provider: 'mpesa',
          phone: '2547******78',
          accountReference: 'ACC',
        },
      }),
    ]);
    expect(await repo.findIdempotencyKey(SHOP, 'key-open-1')).toMatchObject({
      requestHash: 'h'.repeat(64),
      paymentId: id,
      responseStatus: null,
      responseBody: null,
    });
  });

  it('without a key no key is stored', async () => {
    const orderId = await order();
    const id = randomUUID();
    expect(await lifecycle.openPayment(id, openInput(orderId))).toBeNull();
    expect(await row(id)).toMatchObject({ idempotencyKey: null });
    const keys = await db.execute(sql`select count(*)::int as c from idempotency_keys`);
    expect(((keys as unknown as { rows?: { c: number }[] }).rows ?? (keys as unknown as { c: number }[]))[0].c).toBe(0);
  });

  it('the same key again: the stored answer replays; while unanswered it is in progress; another body is refused; nothing new is written', async () => {
    const orderId = await order();
    const first = randomUUID();
    await lifecycle.openPayment(first, openInput(orderId, { idempotencyKey: 'key-race' }));
    const inProgress = await failure(
      lifecycle.openPayment(randomUUID(), openInput(orderId, { idempotencyKey: 'key-race' })),
    );
    expect({ code: inProgress.code, status: inProgress.statusCode, details: inProgress.details }).toEqual({
      code: 'IDEMPOTENCY_REQUEST_IN_PROGRESS',
      status: 409,
      details: { paymentId: first },
    });
    expect(inProgress.message).toBe(
      'A request with this Idempotency-Key is still being processed; retry in a few seconds',
    );

    await lifecycle.storeIdempotentResponse(SHOP, 'key-race', {
      status: 201,
      body: { paymentId: first, status: 'pending' },
    });
    expect(await lifecycle.openPayment(randomUUID(), openInput(orderId, { idempotencyKey: 'key-race' }))).toEqual({
      status: 201,
      body: { paymentId: first, status: 'pending' },
      replayed: true,
    });
    const reused = await failure(
      lifecycle.openPayment(randomUUID(), openInput(orderId, { idempotencyKey: 'key-race', requestHash: 'other' })),
    );
    expect({ code: reused.code, status: reused.statusCode, message: reused.message }).toEqual({
      code: 'IDEMPOTENCY_KEY_REUSED',
      status: 409,
      message: 'This Idempotency-Key was already used with a different request body; use a new key for a new payment',
    });
    expect((await paymentsOf(orderId)).map((p) => p.id)).toEqual([first]);
    expect((await events(first)).map((e) => e.type)).toEqual(['created']);
  });

  it('the key answers once: a second answer does not overwrite the first', async () => {
    const orderId = await order();
    await lifecycle.openPayment(randomUUID(), openInput(orderId, { idempotencyKey: 'key-once' }));
    await lifecycle.storeIdempotentResponse(SHOP, 'key-once', { status: 201, body: { n: 1 } });
    await lifecycle.storeIdempotentResponse(SHOP, 'key-once', { status: 502, body: { n: 2 } });
    expect(await repo.findIdempotencyKey(SHOP, 'key-once')).toMatchObject({
      responseStatus: 201,
      responseBody: { n: 1 },
    });
  });

  it('409 PAYMENT_IN_PROGRESS naming the open payment when the order already has one in flight (another key or none)', async () => {
    const orderId = await order();
    const open = await mpesa(orderId);
    for (const key of [undefined, 'key-fresh']) {
      const err = await failure(lifecycle.openPayment(randomUUID(), openInput(orderId, { idempotencyKey: key })));
      expect({ code: err.code, status: err.statusCode, message: err.message }).toEqual({
        code: 'PAYMENT_IN_PROGRESS',
        status: 409,
        message: `Order ${orderId} already has a payment waiting for the customer; wait for it to finish or check its status`,
      });
      expect(err.details).toEqual({ payment: lifecycle.toResponse(open) });
    }
    expect(await repo.findIdempotencyKey(SHOP, 'key-fresh')).toBeNull();
    expect(await paymentsOf(orderId)).toHaveLength(1);
  });

  it('409 PAYMENT_OUTCOME_UNKNOWN when the order is blocked by a payment whose outcome is unknown, telling the cashier how to settle it', async () => {
    const withId = await mpesa(await order(), {
      status: 'review',
      statusReason: 'OUTCOME_UNKNOWN',
      amountMinor: 12_350n,
    });
    const a = await failure(lifecycle.openPayment(randomUUID(), openInput(withId.orderId)));
    expect({ code: a.code, status: a.statusCode, details: a.details }).toEqual({
      code: 'PAYMENT_OUTCOME_UNKNOWN',
      status: 409,
      details: { payment: lifecycle.toResponse(withId) },
    });
    expect(a.message).toBe(
      `Order ${withId.orderId} has an earlier M-Pesa payment of 123.5 KES whose outcome is unknown: it may be paid. Do not charge again: check the customer's M-Pesa SMS, or ask a manager to reconcile or release it.`,
    );
    const noId = await mpesa(await order(), {
      status: 'review',
      statusReason: 'OUTCOME_UNKNOWN',
      checkoutRequestId: null,
    });
    expect((await failure(lifecycle.openPayment(randomUUID(), openInput(noId.orderId)))).message).toContain(
      "check the customer's M-Pesa SMS, or ask a manager to release it or upload the M-Pesa statement.",
    );
    const flw = await card(await order(), { status: 'review', statusReason: 'OUTCOME_UNKNOWN' });
    expect((await failure(lifecycle.openPayment(randomUUID(), openInput(flw.orderId)))).message).toBe(
      `Order ${flw.orderId} has an earlier Flutterwave payment of 100 KES whose outcome is unknown: it may be paid. Do not charge again: check the customer's payment confirmation, or ask a manager to reconcile or release it.`,
    );
    const pp = await card(await order(), { provider: 'pesapal', status: 'review', statusReason: 'OUTCOME_UNKNOWN' });
    expect((await failure(lifecycle.openPayment(randomUUID(), openInput(pp.orderId)))).message).toContain(
      'an earlier Pesapal payment of 100 KES',
    );
    const other = await card(await order(), { provider: 'acme', status: 'review', statusReason: 'OUTCOME_UNKNOWN' });
    expect((await failure(lifecycle.openPayment(randomUUID(), openInput(other.orderId)))).message).toContain(
      'an earlier acme payment',
    );
  });

  it('an error that is not a lost race is not turned into a conflict', async () => {
    const orderId = await order();
    await expect(
      lifecycle.openPayment(randomUUID(), openInput(orderId, { amountMinor: 0n })),
    ).rejects.not.toBeInstanceOf(AppError);
    expect(await paymentsOf(orderId)).toEqual([]);
  });
});

describe('openPayment checks the order in the same write', () => {
  // The built-in orders (one statement: PaymentsRepository.openPaymentChecked) and a host's own
  // orders port (ordersTableIsLocal unset: getBalance inside a transaction) must refuse alike.
  const hostPort = () => ({
    getBalance: ordersService.getBalance.bind(ordersService),
    settleIfPaid: ordersService.settleIfPaid.bind(ordersService),
    notifyPaid: ordersService.notifyPaid.bind(ordersService),
  });
  const cores: [string, () => PaymentLifecycle][] = [
    ['built-in orders, one statement', () => lifecycle],
    ['a host orders port, a transaction', () => new PaymentLifecycle(repo, hostPort(), new EventEmitter2(), config)],
  ];

  it.each(cores)('%s: opens a payment that fits, exactly the outstanding too', async (_name, core) => {
    const orderId = await order(15_000n);
    await mpesa(orderId, { status: 'completed', amountMinor: 5_000n });
    const id = randomUUID();
    expect(await core().openPayment(id, openInput(orderId, { idempotencyKey: `fit-${orderId}` }))).toBeNull();
    expect(await row(id)).toMatchObject({ status: 'initiated', amountMinor: 10_000n, orderId });
    expect((await events(id)).map((e) => e.type)).toEqual(['created']);
    expect(await repo.findIdempotencyKey(SHOP, `fit-${orderId}`)).toMatchObject({ paymentId: id });
  });

  it.each(cores)('%s: refuses with checkOrder’s errors and writes nothing', async (_name, core) => {
    const missing = await failure(core().openPayment(randomUUID(), openInput('NO-SUCH-ORDER')));
    expect({ code: missing.code, status: missing.statusCode, details: missing.details }).toEqual({
      code: 'NOT_FOUND',
      status: 404,
      details: { orderId: 'NO-SUCH-ORDER' },
    });
    const otherShop = await order(10_000n, 'KES', 'other-shop');
    expect((await failure(core().openPayment(randomUUID(), openInput(otherShop)))).code).toBe('NOT_FOUND');

    const usd = await order(10_000n, 'USD');
    const currency = await failure(core().openPayment(randomUUID(), openInput(usd)));
    expect({ code: currency.code, message: currency.message }).toEqual({
      code: 'CURRENCY_NOT_SUPPORTED',
      message: `M-Pesa takes KES only; order ${usd} is in USD`,
    });

    const paid = await order(10_000n);
    await mpesa(paid, { status: 'completed' });
    const already = await failure(core().openPayment(randomUUID(), openInput(paid)));
    expect({ code: already.code, status: already.statusCode, details: already.details }).toEqual({
      code: 'ORDER_ALREADY_PAID',
      status: 409,
      details: { orderId: paid },
    });

    const partly = await order(15_050n);
    await mpesa(partly, { status: 'completed', amountMinor: 5_000n });
    // a payment that did not complete does not count
    await mpesa(partly, { status: 'failed', amountMinor: 9_000n });
    const exceeds = await failure(core().openPayment(randomUUID(), openInput(partly, { amountMinor: 10_051n })));
    expect({
      code: exceeds.code,
      status: exceeds.statusCode,
      message: exceeds.message,
      details: exceeds.details,
    }).toEqual({
      code: 'AMOUNT_EXCEEDS_OUTSTANDING',
      status: 400,
      message: `Amount 100.51 is more than the 100.5 KES still owed on order ${partly}`,
      details: { outstanding: 100.5 },
    });

    for (const orderId of [otherShop, usd, paid, partly])
      expect((await paymentsOf(orderId)).filter((p) => p.status === 'initiated')).toEqual([]);
    const rows = await db.execute(sql`select count(*)::int as c from idempotency_keys`);
    expect(((rows as unknown as { rows?: { c: number }[] }).rows ?? (rows as unknown as { c: number }[]))[0].c).toBe(0);
  });

  (process.env.DATABASE_URL ? it : it.skip)(
    'a payment of the order completing while the push is being opened counts (Postgres: the lock wait re-reads it, not the older snapshot)',
    async () => {
      const orderId = await order(10_000n);
      // Not blocking the order (a mismatch in review), about to be accepted against it by a manager.
      const earlier = await mpesa(orderId, { status: 'review', statusReason: 'AMOUNT_MISMATCH', amountMinor: 6_000n });
      const { Client } = await import('pg');
      const other = new Client({ connectionString: tdb.url });
      await other.connect();
      try {
        // What a completion does: lock the payment, then the order, complete, commit later.
        await other.query('begin');
        await other.query('select id from payments where id = $1 for update', [earlier.id]);
        await other.query('select id from orders where shop_id = $1 and id = $2 for update', [SHOP, orderId]);
        await other.query(`update payments set status = 'completed', status_reason = 'PAID' where id = $1`, [
          earlier.id,
        ]);
        const opening = failure(lifecycle.openPayment(randomUUID(), openInput(orderId, { amountMinor: 5_000n })));
        // The push waits for the completion's lock (its statement started before the completion committed).
        const started = Date.now();
        for (;;) {
          const waiting = await other.query(
            `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
          );
          if (waiting.rows[0].n > 0) break;
          if (Date.now() - started > 5_000) throw new Error('the push never waited for the completion');
          await new Promise((r) => setTimeout(r, 20));
        }
        await other.query('commit');
        const err = await opening;
        expect({ code: err.code, details: err.details }).toEqual({
          code: 'AMOUNT_EXCEEDS_OUTSTANDING',
          details: { outstanding: 40 },
        });
        expect((await paymentsOf(orderId)).map((p) => p.status)).toEqual(['completed']);
      } finally {
        await other.end();
      }
    },
  );
});

describe('openPayment against a payment made for the order under its lock (a C2B claim)', () => {
  (process.env.DATABASE_URL ? it : it.skip)(
    'a payment inserted and completed by a transaction holding the order, committing while the push waits, counts (Postgres)',
    async () => {
      const orderId = await order(10_000n);
      // What C2BMatchingService.book does, in its transaction: the order locked through the
      // orders port, a new payment written and completed, committed a moment later.
      let held!: () => void;
      let commit!: () => void;
      const locked = new Promise<void>((r) => (held = r));
      const gate = new Promise<void>((r) => (commit = r));
      const c2b = repo.transaction(async (tx) => {
        await ordersService.getBalance(SHOP, orderId, tx);
        const id = randomUUID();
        await repo.insertPayment(
          {
            id,
            shopId: SHOP,
            orderId,
            amountMinor: 10_000n,
            currency: 'KES',
            provider: 'mpesa',
            status: 'pending',
            createdBy: 'c2b',
          },
          tx,
        );
        await tx.execute(
          sql`update payments set status = 'completed', completed_at = now(), mpesa_receipt_number = 'C2BRACE001' where id = ${id}`,
        );
        await ordersService.settleIfPaid(SHOP, orderId, tx);
        held();
        await gate;
      });
      await locked;
      const opening = failure(lifecycle.openPayment(randomUUID(), openInput(orderId, { amountMinor: 5_000n })));
      const { Client } = await import('pg');
      const watch = new Client({ connectionString: tdb.url });
      await watch.connect();
      try {
        const started = Date.now();
        for (;;) {
          const waiting = await watch.query(
            `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
          );
          if (waiting.rows[0].n > 0) break;
          if (Date.now() - started > 5_000) throw new Error('the push never waited for the order');
          await new Promise((r) => setTimeout(r, 20));
        }
      } finally {
        await watch.end();
      }
      commit();
      await c2b;
      const err = await opening;
      expect({ code: err.code, details: err.details }).toEqual({ code: 'ORDER_ALREADY_PAID', details: { orderId } });
      expect((await paymentsOf(orderId)).map((p) => p.status)).toEqual(['completed']);
    },
  );
});

// ------------------------------------------------------------------ Idempotency-Key replay, request hash

describe('replayIdempotent', () => {
  async function keyFor(orderId: string, key: string, ageSeconds: number) {
    const id = randomUUID();
    await lifecycle.openPayment(id, openInput(orderId, { idempotencyKey: key }));
    await db.execute(
      sql`update idempotency_keys set created_at = now() - make_interval(secs => ${ageSeconds}) where key = ${key}`,
    );
    return id;
  }
  const lifetime = () =>
    Math.max(config.mpesa.httpTimeoutMs, config.flutterwave.timeoutMs, config.pesapal.timeoutMs) / 1000 + 30;

  it('null for an unknown key, also one of another shop', async () => {
    await keyFor(await order(), 'key-shop', 0);
    expect(await lifecycle.replayIdempotent(SHOP, 'key-unknown', 'h'.repeat(64))).toBeNull();
    expect(await lifecycle.replayIdempotent('other-shop', 'key-shop', 'h'.repeat(64))).toBeNull();
  });

  it('an unanswered key is in progress while a request could still hold it, then the payment itself answers', async () => {
    const young = await keyFor(await order(), 'key-young', lifetime() - 5);
    const err = await failure(lifecycle.replayIdempotent(SHOP, 'key-young', 'h'.repeat(64)));
    expect({ code: err.code, details: err.details }).toEqual({
      code: 'IDEMPOTENCY_REQUEST_IN_PROGRESS',
      details: { paymentId: young },
    });

    const old = await keyFor(await order(), 'key-old', lifetime() + 5);
    const p = await row(old);
    expect(await lifecycle.replayIdempotent(SHOP, 'key-old', 'h'.repeat(64))).toEqual({
      status: 200,
      body: lifecycle.toResponse(p),
      replayed: true,
    });
    expect((await failure(lifecycle.replayIdempotent(SHOP, 'key-old', 'other'))).code).toBe('IDEMPOTENCY_KEY_REUSED');
  });

  it('how long a request may hold a key is the SLOWEST provider timeout plus 30 s', async () => {
    const slow = new PaymentLifecycle(
      repo,
      ordersService,
      new EventEmitter2(),
      loadConfig({
        NODE_ENV: 'test',
        CALLBACK_SIGNING_SECRET: SECRET,
        JWT_SECRET: 'lifecycle-tier-jwt-secret-0123456789abcdef',
        MPESA_HTTP_TIMEOUT_MS: '2000',
        FLUTTERWAVE_HTTP_TIMEOUT_MS: '60000',
        PESAPAL_HTTP_TIMEOUT_MS: '3000',
      }),
    );
    await keyFor(await order(), 'key-slow', 80); // less than 60 + 30 s
    expect((await failure(slow.replayIdempotent(SHOP, 'key-slow', 'h'.repeat(64)))).code).toBe(
      'IDEMPOTENCY_REQUEST_IN_PROGRESS',
    );
    const id = await keyFor(await order(), 'key-slower', 100);
    expect(await slow.replayIdempotent(SHOP, 'key-slower', 'h'.repeat(64))).toMatchObject({
      status: 200,
      body: { paymentId: id },
      replayed: true,
    });
  });

  it('an old unanswered key whose payment is gone stays in progress (never a made-up answer)', async () => {
    const id = await keyFor(await order(), 'key-gone', lifetime() + 60);
    await db.execute(sql`delete from payments where id = ${id}`);
    expect((await failure(lifecycle.replayIdempotent(SHOP, 'key-gone', 'h'.repeat(64)))).code).toBe(
      'IDEMPOTENCY_REQUEST_IN_PROGRESS',
    );
  });

  it('an answered key replays the stored status and body, whatever its age', async () => {
    await keyFor(await order(), 'key-answered', 0);
    await lifecycle.storeIdempotentResponse(SHOP, 'key-answered', {
      status: 502,
      body: { code: 'PROVIDER_UNAVAILABLE' },
    });
    expect(await lifecycle.replayIdempotent(SHOP, 'key-answered', 'h'.repeat(64))).toEqual({
      status: 502,
      body: { code: 'PROVIDER_UNAVAILABLE' },
      replayed: true,
    });
  });
});

describe('requestHash', () => {
  const body = {
    orderId: 'ORD-1',
    amount: 100,
    phoneNumber: '0712345678',
    customer: { email: 'a@example.com', phoneNumber: '0712345678' },
  };

  it('is a keyed hash: the same request in any key order gives the same hash; the server secret changes it; no plain SHA-256', () => {
    const h = lifecycle.requestHash('POST /payments/stk-push', body);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(
      lifecycle.requestHash('POST /payments/stk-push', {
        customer: { phoneNumber: '0712345678', email: 'a@example.com' },
        phoneNumber: '0712345678',
        amount: 100,
        orderId: 'ORD-1',
      }),
    ).toBe(h);
    expect(hashRequest(SECRET, 'POST /payments/stk-push', body)).toBe(h);
    expect(hashRequest(`${SECRET}x`, 'POST /payments/stk-push', body)).not.toBe(h);
    const canonical = JSON.stringify({
      amount: 100,
      customer: { email: 'a@example.com', phoneNumber: '0712345678' },
      orderId: 'ORD-1',
      phoneNumber: '0712345678',
    });
    expect(h).not.toBe(createHash('sha256').update(`POST /payments/stk-push\n${canonical}`).digest('hex'));
    expect(h).not.toBe(createHmac('sha256', SECRET).update(`POST /payments/stk-push\n${canonical}`).digest('hex'));
    const key = createHmac('sha256', SECRET).update('smartduka/payments/idempotency-request-hash/v1').digest();
    expect(h).toBe(createHmac('sha256', key).update(`POST /payments/stk-push\n${canonical}`).digest('hex'));
  });

  it('every field counts, the customer phone too (a key reused for another customer is another request), and the route', () => {
    const h = lifecycle.requestHash('POST /payments/stk-push', body);
    const variants = [
      { ...body, phoneNumber: '0712345679' },
      { ...body, customer: { ...body.customer, phoneNumber: '0712345679' } },
      { ...body, amount: 101 },
      { ...body, orderId: 'ORD-2' },
      { ...body, extra: null },
    ];
    for (const v of variants) expect(lifecycle.requestHash('POST /payments/stk-push', v)).not.toBe(h);
    expect(lifecycle.requestHash('POST /payments/flutterwave/init', body)).not.toBe(h);
  });

  it('arrays keep their order, and objects inside them are canonical too', () => {
    const a = lifecycle.requestHash('r', { items: [{ b: 1, a: 2 }, 3] });
    expect(lifecycle.requestHash('r', { items: [{ a: 2, b: 1 }, 3] })).toBe(a);
    expect(lifecycle.requestHash('r', { items: [3, { a: 2, b: 1 }] })).not.toBe(a);
  });

  it('hashes what the DTO holds, not its class (a validated DTO instance and a plain object agree)', () => {
    class Dto {
      orderId = 'ORD-1';
      amount = 100;
    }
    expect(lifecycle.requestHash('r', new Dto())).toBe(lifecycle.requestHash('r', { amount: 100, orderId: 'ORD-1' }));
  });
});

describe('toResponse', () => {
  it('M-Pesa: the masked phone and what Daraja was sent; card/wallet: reference, transaction, confirmation, method and link', async () => {
    const m = await mpesa(await order(), {
      status: 'completed',
      mpesaReceiptNumber: 'RCPVIEW001',
      completedAt: new Date('2026-01-01T00:00:00Z'),
      amountMinor: 12_345n,
      // A real id ends with the payer's national number: answered masked.
      checkoutRequestId: 'ws_CO_01012026030000123712345678',
    });
    expect(lifecycle.toResponse(m)).toEqual({
      paymentId: m.id,
      orderId: m.orderId,
      status: 'completed',
      statusReason: null,
      resultCode: null,
      resultDesc: null,
      amount: 123.45,
      currency: 'KES',
      provider: 'mpesa',
      mpesaReceiptNumber: 'RCPVIEW001',
      merchantRequestId: m.merchantRequestId,
      checkoutRequestId: 'ws_CO_01012026030000123*******78',
      phone: '2547******78',
      accountReference: m.accountReference,
      transactionDesc: 'SmartDuka POS',
      createdAt: m.createdAt.toISOString(),
      updatedAt: m.updatedAt.toISOString(),
      completedAt: '2026-01-01T00:00:00.000Z',
      releasedAt: null,
      resolution: null,
      resolvedAt: null,
    });
    const c = await card(await order(), {
      providerTransactionId: 'TX-VIEW',
      providerReceipt: 'CONF',
      paymentMethod: 'card',
      releasedAt: new Date('2026-02-02T00:00:00Z'),
    });
    expect(lifecycle.toResponse(c)).toEqual({
      paymentId: c.id,
      orderId: c.orderId,
      status: 'pending',
      statusReason: null,
      resultCode: null,
      resultDesc: null,
      amount: 100,
      currency: 'KES',
      provider: 'flutterwave',
      mpesaReceiptNumber: null,
      merchantRequestId: null,
      checkoutRequestId: null,
      phone: null,
      reference: c.providerReference,
      providerTransactionId: 'TX-VIEW',
      providerReceipt: 'CONF',
      paymentMethod: 'card',
      checkoutUrl: 'https://checkout.example.test/pay',
      createdAt: c.createdAt.toISOString(),
      updatedAt: c.updatedAt.toISOString(),
      completedAt: null,
      releasedAt: '2026-02-02T00:00:00.000Z',
      resolution: null,
      resolvedAt: null,
    });
  });
});

describe('a batch of reports read ahead (prefetchFor, as CallbackApplier batches them) decides as one at a time would', () => {
  /** Applies the reports in one transaction with what prefetchFor read for all of them, in payment id order. */
  async function applyBatch(items: { p: Payment; r: OutcomeReport }[]): Promise<Map<string, string[]>> {
    const sorted = [...items].sort((a, b) => (a.p.id < b.p.id ? -1 : a.p.id > b.p.id ? 1 : 0));
    const results = new Map<string, string[]>();
    const after: (() => void)[] = [];
    await repo.transaction(async (tx) => {
      const pre = await lifecycle.prefetchFor(
        tx,
        sorted.map(({ p, r }) => ({ paymentId: p.id, report: r })),
      );
      for (const { p, r } of sorted) {
        const applied = await lifecycle.applyOutcomeIn(tx, p.id, r, 'daraja:callback', { batch: pre });
        results.set(p.id, [...(results.get(p.id) ?? []), applied.result]);
        if (applied.afterCommit) after.push(applied.afterCommit);
      }
      await pre.flush();
    });
    for (const f of after) f();
    return results;
  }

  it('two payments completing one order: the balance is weighed again after the first, the second goes to review', async () => {
    const orderId = await order(10_000n);
    const a = await mpesa(orderId, { amountMinor: 6_000n });
    const b = await mpesa(orderId, {
      amountMinor: 6_000n,
      status: 'review',
      statusReason: 'OUTCOME_UNKNOWN',
      releasedAt: new Date(),
    });
    const results = await applyBatch([
      { p: a, r: mpesaPaid(a) },
      { p: b, r: mpesaPaid(b) },
    ]);
    const [first, second] = [a, b].sort((x, y) => (x.id < y.id ? -1 : 1));
    expect(results.get(first.id)).toEqual(['applied']);
    expect(results.get(second.id)).toEqual(['review']);
    expect(await row(first.id)).toMatchObject({ status: 'completed' });
    expect(await row(second.id)).toMatchObject({ status: 'review', statusReason: 'EXCEEDS_OUTSTANDING' });
    expect(await balance(orderId)).toMatchObject({ paidMinor: 6_000n, outstandingMinor: 4_000n });
    expect(await paidAt(orderId)).toBeNull();
  });

  it('one receipt reported for two payments: the first holds it, the second is a duplicate in review', async () => {
    const [o1, o2] = [await order(), await order()];
    const p1 = await mpesa(o1);
    const p2 = await mpesa(o2);
    const shared = receipt();
    const results = await applyBatch([
      { p: p1, r: mpesaPaid(p1, { receipt: shared }) },
      { p: p2, r: mpesaPaid(p2, { receipt: shared }) },
    ]);
    const [first, second] = [p1, p2].sort((x, y) => (x.id < y.id ? -1 : 1));
    expect([results.get(first.id), results.get(second.id)]).toEqual([['applied'], ['review']]);
    expect(await row(first.id)).toMatchObject({ status: 'completed', mpesaReceiptNumber: shared });
    expect(await row(second.id)).toMatchObject({ status: 'review', statusReason: 'DUPLICATE_RECEIPT' });
  });

  it('the same payment twice in a batch: applied once, then a duplicate (and another receipt is a second charge)', async () => {
    const orderId = await order();
    const p = await mpesa(orderId);
    const paid = mpesaPaid(p);
    const again = await applyBatch([
      { p, r: paid },
      { p, r: { ...paid } },
      { p, r: mpesaPaid(p) },
    ]);
    expect(again.get(p.id)).toEqual(['applied', 'duplicate', 'review']);
    expect(await row(p.id)).toMatchObject({ status: 'completed', mpesaReceiptNumber: paid.receipt });
    const rows = await paymentsOf(orderId);
    expect(rows.map((x) => [x.status, x.statusReason]).sort()).toEqual([
      ['completed', 'PAID'],
      ['review', 'SECOND_CHARGE'],
    ]);
    expect(await balance(orderId)).toMatchObject({ paidMinor: 10_000n });
    expect(completions.map((c) => c.paymentId)).toEqual([p.id]);
  });

  it('a batch with a failure, an unknown payment and completions of different orders: each as alone', async () => {
    const orders3 = [await order(), await order(), await order()];
    const [p1, p2, p3] = await Promise.all(orders3.map((o) => mpesa(o)));
    const ghost = { ...p3, id: randomUUID() };
    const results = await applyBatch([
      { p: p1, r: mpesaPaid(p1) },
      { p: p2, r: { ...mpesaPaid(p2), outcome: 'cancelled', resultCode: '1032', receipt: undefined } },
      { p: p3, r: mpesaPaid(p3) },
      { p: ghost, r: mpesaPaid(ghost) },
    ]);
    expect([results.get(p1.id), results.get(p2.id), results.get(p3.id), results.get(ghost.id)]).toEqual([
      ['applied'],
      ['applied'],
      ['applied'],
      ['unknown_payment'],
    ]);
    expect((await row(p2.id)).status).toBe('cancelled');
    for (const o of [orders3[0], orders3[2]]) expect(await paidAt(o)).not.toBeNull();
    expect(await paidAt(orders3[1])).toBeNull();
    expect(paidOrders.map((x) => x.orderId).sort()).toEqual([orders3[0], orders3[2]].sort());
  });

  it('writes the same payment row, event and order as one report applied alone', async () => {
    const [o1, o2, o3] = [await order(), await order(), await order()];
    const alone = await mpesa(o1, { status: 'initiated', checkoutRequestId: null, merchantRequestId: null });
    const batched = await mpesa(o2, { status: 'initiated', checkoutRequestId: null, merchantRequestId: null });
    const other = await mpesa(o3);
    const report = (p: Payment) =>
      mpesaPaid(p, { checkoutRequestId: `ws_CO_X_${p.id}`, merchantRequestId: `MR-X-${p.id}`, paymentMethod: 'mpesa' });
    const r1 = report(alone);
    const r2 = { ...report(batched), receipt: receipt() };
    expect(await lifecycle.applyOutcome(alone.id, r1, 'daraja:callback')).toBe('applied');
    await applyBatch([
      { p: batched, r: r2 },
      { p: other, r: mpesaPaid(other) },
    ]);
    const strip = (x: Payment) => {
      const {
        id,
        orderId,
        createdAt,
        updatedAt,
        completedAt,
        mpesaReceiptNumber,
        checkoutRequestId,
        merchantRequestId,
        accountReference,
        ...rest
      } = x;
      return { ...rest, completed: completedAt !== null };
    };
    const [a, b] = [await row(alone.id), await row(batched.id)];
    expect(strip(b)).toEqual(strip(a));
    expect([b.mpesaReceiptNumber, b.checkoutRequestId, b.merchantRequestId]).toEqual([
      r2.receipt,
      r2.checkoutRequestId,
      r2.merchantRequestId,
    ]);
    expect(b.updatedAt.getTime()).toBeGreaterThan(batched.updatedAt.getTime());
    const event = (e: Awaited<ReturnType<typeof lastEvent>>) => {
      const { receipt: _r, checkoutRequestId: _c, merchantRequestId: _m, ...data } = e.data as Record<string, unknown>;
      return { ...e, id: 0, paymentId: '', createdAt: 0, data };
    };
    expect(event(await lastEvent(batched.id))).toEqual(event(await lastEvent(alone.id)));
    expect(await paidAt(o2)).not.toBeNull();
    expect(completions.find((c) => c.paymentId === batched.id)).toMatchObject({
      orderPaid: true,
      mpesaReceiptNumber: r2.receipt,
    });
  });

  (process.env.DATABASE_URL ? it : it.skip)(
    'costs nine statements for a batch of completions, however many (was seven per completion)',
    async () => {
      const ps: Payment[] = [];
      for (let i = 0; i < 8; i++) ps.push(await mpesa(await order()));
      const count = countSql();
      try {
        await applyBatch(ps.map((p) => ({ p, r: mpesaPaid(p) })));
      } finally {
        count.stop();
      }
      for (const p of ps) expect((await row(p.id)).status).toBe('completed');
      // BEGIN, lock the payments, the receipts' holders, lock the orders, their balances; then the
      // batch's outcomes: UPDATE the payments, INSERT their events, UPDATE the orders (paid); COMMIT.
      expect(count.statements).toBe(9);
      expect(paidOrders).toHaveLength(ps.length);
      for (const p of ps) expect((await lastEvent(p.id)).type).toBe('status_changed');
    },
  );
});
