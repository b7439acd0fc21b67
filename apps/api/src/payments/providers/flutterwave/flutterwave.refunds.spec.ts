import { startFlutterwaveSimulator, type FlutterwaveSimulator } from '@smartduka/card-simulators';
import type { Payment, Refund } from '../../../database/schema';
import type { ResolvedAccount } from '../../merchant-accounts.types';
import type { MerchantAccountsService } from '../../merchant-accounts.service';
import { RefundProvidersRegistry } from '../../refund-providers.registry';
import type { RefundsService } from '../../refunds.service';
import { RefundRefusedError } from '../../refunds.types';
import type { FlutterwaveAccountKind } from './flutterwave.account';
import { FlutterwaveProvider, mapFlutterwaveRefundStatus, readFlwRefund } from './flutterwave.provider';
import { flutterwaveRefundPrecheck, FlutterwaveRefunds, reportFor } from './flutterwave.refunds';

const KEY = 'FLWSECK_TEST-refund-spec-0000000000-X';
const HASH = 'refund-spec-secret-hash-0123456789';
const OTHER_KEY = 'FLWSECK_TEST-refund-spec-other-00000-X';
const ACCOUNT: ResolvedAccount = {
  accountId: null,
  shopAccountId: null,
  provider: 'flutterwave',
  environment: 'sandbox',
  settings: {},
  secrets: {},
};

function payment(patch: Partial<Payment> = {}): Payment {
  return {
    id: '7b0c7a36-0d8e-4a53-9b3e-3c7f5b0e9a11',
    shopId: 'shop-1',
    orderId: 'ORD-1',
    amountMinor: 100000n,
    currency: 'KES',
    provider: 'flutterwave',
    status: 'completed',
    providerReference: 'SD-ref-1',
    providerTransactionId: '9051234',
    providerReceipt: 'FLW-MOCK-1',
    paymentMethod: 'card',
    merchantAccountId: null,
    ...patch,
  } as Payment;
}

function refund(patch: Partial<Refund> = {}): Refund {
  return {
    id: '1f6a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b',
    paymentId: payment().id,
    amountMinor: 100000n,
    currency: 'KES',
    status: 'requested',
    reason: 'returned goods',
    requestedBy: 'user:manager-1',
    providerRefundId: null,
    providerData: {},
    createdAt: new Date(),
    ...patch,
  } as Refund;
}

describe('Flutterwave refund statuses and shapes', () => {
  it.each([
    ['completed', 'succeeded'],
    ['COMPLETED', 'succeeded'],
    ['successful', 'succeeded'],
    ['failed', 'failed'],
    ['pending', 'pending'],
    ['pending-momo', 'pending'],
    ['processing', 'pending'],
    ['new', 'pending'],
    ['reversed?', 'unknown'],
    [undefined, 'unknown'],
    [3, 'unknown'],
  ])('%s → %s', (status, ours) => {
    expect(mapFlutterwaveRefundStatus(status)).toBe(ours);
  });

  it('reads the snake_case refund data and the flat PascalCase webhook alike', () => {
    expect(
      readFlwRefund(
        {
          id: 75923,
          tx_id: 9051234,
          amount_refunded: 300.5,
          status: 'completed',
          created_at: '2026-10-02T09:14:22.000Z',
        },
        'KES',
      ),
    ).toEqual({
      providerRefundId: '75923',
      transactionId: '9051234',
      status: 'succeeded',
      providerStatus: 'completed',
      amountMinor: 30050n,
      createdAt: new Date('2026-10-02T09:14:22.000Z'),
    });
    expect(
      readFlwRefund({ id: 75924, TransactionId: 9051234, AmountRefunded: 1000, status: 'pending-momo' }, 'KES'),
    ).toMatchObject({ providerRefundId: '75924', transactionId: '9051234', status: 'pending', amountMinor: 100000n });
    expect(readFlwRefund({ id: 'rf_abc', status: 'completed' }, 'KES')).toBeUndefined();
    expect(readFlwRefund(null, 'KES')).toBeUndefined();
  });

  it('a success for another amount says so (the core sends it to review)', () => {
    const r = reportFor(
      { providerRefundId: '1', status: 'succeeded', amountMinor: 50000n, providerStatus: 'completed' },
      refund(),
    );
    expect(r).toMatchObject({ status: 'succeeded', amountMinor: 50000n, reason: 'AMOUNT_MISMATCH' });
    expect(r.message).toMatch(/500\.00.*not 1000\.00/);
  });
});

describe('Flutterwave refund precheck', () => {
  const adapter = new FlutterwaveProvider({
    baseUrl: 'http://127.0.0.1:9',
    secretKey: KEY,
    secretHash: HASH,
    timeoutMs: 1000,
  });
  const refused = (p: Payment, amount: bigint): string => {
    try {
      flutterwaveRefundPrecheck(p, amount, adapter);
    } catch (err) {
      expect(err).toBeInstanceOf(RefundRefusedError);
      expect((err as RefundRefusedError).statusCode).toBe(422);
      return (err as RefundRefusedError).code;
    }
    return 'accepted';
  };

  it('allows full and partial refunds of a verified KES payment', () => {
    expect(refused(payment(), 100000n)).toBe('accepted');
    expect(refused(payment(), 100n)).toBe('accepted');
  });

  it('refuses a payment without a Flutterwave transaction id, another currency, cents, another provider', () => {
    expect(refused(payment({ providerTransactionId: null }), 100n)).toBe('REFUND_NO_PROVIDER_TRANSACTION');
    expect(refused(payment({ providerTransactionId: 'chg_abc' }), 100n)).toBe('REFUND_NO_PROVIDER_TRANSACTION');
    expect(refused(payment({ currency: 'USD' }), 100n)).toBe('REFUND_CURRENCY_NOT_SUPPORTED');
    expect(refused(payment(), 150n)).toBe('REFUND_WHOLE_UNITS_ONLY');
    expect(refused(payment({ provider: 'pesapal' }), 100n)).toBe('REFUND_WRONG_PROVIDER');
  });
});

describe('FlutterwaveRefunds against the Flutterwave simulator', () => {
  let sim: FlutterwaveSimulator;
  let adapter: FlutterwaveProvider;
  let refunds: FlutterwaveRefunds;
  let n = 0;

  beforeAll(async () => {
    sim = await startFlutterwaveSimulator({ secretKey: KEY, secretHash: HASH, log: () => undefined });
    sim.addMerchant({ id: 'other', secretKey: OTHER_KEY, secretHash: `${HASH}-other` });
    adapter = new FlutterwaveProvider({ baseUrl: sim.url, secretKey: KEY, secretHash: HASH, timeoutMs: 3000 });
    const kind = { adapterFor: () => adapter } as unknown as FlutterwaveAccountKind;
    // The webhook path (RefundsService, accounts) is exercised by test/card-refunds.e2e.ts.
    refunds = new FlutterwaveRefunds(
      kind,
      new RefundProvidersRegistry(),
      adapter,
      {} as unknown as RefundsService,
      {} as unknown as MerchantAccountsService,
    );
  });
  afterAll(() => sim.close());

  /** A paid card (or M-Pesa) transaction of `amount` KES at the simulator, as our payment. */
  async function paid(amount = 1000, key = KEY, paymentType: 'card' | 'mpesa' = 'card'): Promise<Payment> {
    const txRef = `SD-refund-spec-${++n}-${Date.now()}`;
    const res = await fetch(`${sim.url}/v3/payments`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({
        tx_ref: txRef,
        amount,
        currency: 'KES',
        redirect_url: 'http://127.0.0.1/r',
        customer: { email: 'walkin@pos.example.co.ke' },
        payment_options: 'card, mpesa',
      }),
    });
    expect(res.status).toBe(200);
    const { transaction } = await sim.complete(txRef, { outcome: 'successful', paymentType });
    return payment({
      providerReference: txRef,
      providerTransactionId: String(transaction!.id),
      amountMinor: BigInt(amount) * 100n,
    });
  }

  const ctx = (p: Payment, r: Refund) => ({ payment: p, refund: r, account: ACCOUNT });

  it('a full card refund succeeds at once with its Flutterwave id', async () => {
    const p = await paid(1000);
    const report = await refunds.submit(ctx(p, refund({ amountMinor: 100000n })));
    expect(report).toMatchObject({ status: 'succeeded', submitted: true, amountMinor: 100000n });
    expect(report.providerRefundId).toMatch(/^\d+$/);
    expect(sim.refunds().find((r) => String(r.id) === report.providerRefundId)?.amountMinor).toBe(100000n);
  });

  it('a held refund is pending, then look() follows it to completed or failed', async () => {
    const p = await paid(1000);
    sim.planRefunds({ outcome: 'pending' });
    const first = await refunds.submit(ctx(p, refund({ amountMinor: 40000n })));
    const second = await refunds.submit(ctx(p, refund({ amountMinor: 60000n })));
    sim.planRefunds(null);
    expect(first).toMatchObject({ status: 'pending', reason: 'PROCESSING_AT_PROVIDER', providerCode: 'pending' });
    expect(first.nextLookSeconds).toBeGreaterThan(0);

    await sim.completeRefund(Number(first.providerRefundId));
    await sim.failRefund(Number(second.providerRefundId));
    const r1 = refund({ status: 'pending', amountMinor: 40000n, providerRefundId: first.providerRefundId! });
    const r2 = refund({ status: 'pending', amountMinor: 60000n, providerRefundId: second.providerRefundId! });
    expect(await refunds.look(ctx(p, r1))).toMatchObject({ status: 'succeeded', amountMinor: 40000n });
    expect(await refunds.look(ctx(p, r2))).toMatchObject({ status: 'failed', reason: 'FAILED_AT_PROVIDER' });
  });

  it("a refusal is a failed report with Flutterwave's message; more than is left is refused by Flutterwave too", async () => {
    const p = await paid(1000);
    sim.planRefunds({ outcome: 'refuse', message: 'Insufficient balance to process refund', count: 1 });
    const refused = await refunds.submit(ctx(p, refund()));
    expect(refused).toMatchObject({ status: 'failed', reason: 'REFUSED_BY_PROVIDER', submitted: true });
    expect(refused.message).toMatch(/Insufficient balance/);
    await refunds.submit(ctx(p, refund({ amountMinor: 90000n })));
    const tooMuch = await refunds.submit(ctx(p, refund({ amountMinor: 20000n })));
    expect(tooMuch).toMatchObject({ status: 'failed', reason: 'REFUSED_BY_PROVIDER' });
  });

  it('an M-Pesa refund is pending (pending-momo) until Flutterwave completes it', async () => {
    const p = await paid(500, KEY, 'mpesa');
    const report = await refunds.submit(ctx(p, refund({ amountMinor: 50000n })));
    expect(report).toMatchObject({ status: 'pending', providerCode: 'pending-momo' });
  });

  it('look() without an id finds the one refund of the transaction for that amount, and never resends', async () => {
    const p = await paid(1000);
    const sent = await refunds.submit(ctx(p, refund({ amountMinor: 25000n })));
    const calls = sim.apiCalls().length;
    const lost = refund({ status: 'unknown', amountMinor: 25000n, createdAt: new Date(Date.now() - 1000) });
    expect(await refunds.look(ctx(p, lost))).toMatchObject({
      status: 'succeeded',
      providerRefundId: sent.providerRefundId,
    });
    const none = refund({ status: 'requested', amountMinor: 33300n });
    expect(await refunds.look(ctx(p, none))).toMatchObject({ status: 'unknown', reason: 'NOT_FOUND_AT_PROVIDER' });
    expect(
      sim
        .apiCalls()
        .slice(calls)
        .every((c) => c.method === 'GET'),
    ).toBe(true);
  });

  it("another account's refund id is not found: unknown, not failed", async () => {
    const other = await paid(100, OTHER_KEY);
    const res = await fetch(`${sim.url}/v3/transactions/${other.providerTransactionId}/refund`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${OTHER_KEY}`, 'Content-Type': 'application/json' },
      body: '{}',
    });
    const { data } = (await res.json()) as { data: { id: number } };
    const r = refund({ status: 'pending', providerRefundId: String(data.id) });
    expect(await refunds.look(ctx(payment(), r))).toMatchObject({ status: 'unknown', reason: 'NOT_FOUND_AT_PROVIDER' });
  });
});
