import { startPesapalSimulator, type PesapalSimulator } from '@smartduka/card-simulators';
import type { Payment, Refund } from '../../../database/schema';
import type { ResolvedAccount } from '../../merchant-accounts.types';
import { RefundProvidersRegistry } from '../../refund-providers.registry';
import { RefundRefusedError } from '../../refunds.types';
import type { StatusResult } from '../payment-provider';
import type { PesapalAccountKind } from './pesapal.account';
import { PesapalProvider } from './pesapal.provider';
import {
  AWAITING_APPROVAL,
  isPesapalCardMethod,
  pesapalRefundLook,
  pesapalRefundPrecheck,
  PesapalRefunds,
} from './pesapal.refunds';

const KEY = 'pesapal-refund-spec-key';
const SECRET = 'pesapal-refund-spec-secret';
const CAPS = { currencies: ['KES'], fractionalAmounts: false };
const ACCOUNT: ResolvedAccount = {
  accountId: null,
  shopAccountId: null,
  provider: 'pesapal',
  environment: 'sandbox',
  settings: {},
  secrets: {},
};

function payment(patch: Partial<Payment> = {}): Payment {
  return {
    id: '0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f',
    shopId: 'shop-1',
    orderId: 'ORD-1',
    amountMinor: 100000n,
    currency: 'KES',
    provider: 'pesapal',
    status: 'completed',
    providerReference: 'SD-pp-1',
    providerTransactionId: '96a5e1d9-f711-4423-82ce-dd758f972713',
    providerReceipt: '6513008693186320103009',
    paymentMethod: 'Visa',
    merchantAccountId: null,
    ...patch,
  } as Payment;
}

function refund(patch: Partial<Refund> = {}): Refund {
  return {
    id: '5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d',
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

const refusal = (fn: () => void): string => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RefundRefusedError);
    expect((err as RefundRefusedError).statusCode).toBe(422);
    return (err as RefundRefusedError).code;
  }
  return 'accepted';
};

describe('Pesapal refund precheck (pesapal.md §8)', () => {
  it('a card payment may be refunded in full or in part', () => {
    expect(refusal(() => pesapalRefundPrecheck(payment(), 100000n, [], CAPS))).toBe('accepted');
    expect(refusal(() => pesapalRefundPrecheck(payment(), 40000n, [], CAPS))).toBe('accepted');
  });

  it('a payment Pesapal reports reversed (an approved refund or a chargeback) refunds nothing more', () => {
    expect(
      refusal(() => pesapalRefundPrecheck(payment({ statusReason: 'REVERSED_AT_PROVIDER' }), 100000n, [], CAPS)),
    ).toBe('PESAPAL_ALREADY_REVERSED');
  });

  it('mobile money (or a method Pesapal did not name) only in full', () => {
    for (const method of ['Mpesa', 'AirtelMoney', 'MTN', null]) {
      const p = payment({ paymentMethod: method });
      expect(refusal(() => pesapalRefundPrecheck(p, 40000n, [], CAPS))).toBe('REFUND_FULL_ONLY');
      expect(refusal(() => pesapalRefundPrecheck(p, 100000n, [], CAPS))).toBe('accepted');
    }
  });

  it('one refund per payment: any earlier one that did not fail blocks, a failed one does not', () => {
    for (const status of ['requested', 'pending', 'unknown', 'succeeded', 'review']) {
      const others = [refund({ status, amountMinor: 10000n })];
      expect(refusal(() => pesapalRefundPrecheck(payment(), 10000n, others, CAPS))).toBe('REFUND_ONE_PER_PAYMENT');
    }
    const failed = [refund({ status: 'failed' })];
    expect(refusal(() => pesapalRefundPrecheck(payment(), 10000n, failed, CAPS))).toBe('accepted');
  });

  it('needs the confirmation code and tracking id; same currency; whole shillings; Pesapal payments only', () => {
    expect(refusal(() => pesapalRefundPrecheck(payment({ providerReceipt: null }), 100000n, [], CAPS))).toBe(
      'REFUND_NO_CONFIRMATION_CODE',
    );
    expect(refusal(() => pesapalRefundPrecheck(payment({ providerTransactionId: null }), 100000n, [], CAPS))).toBe(
      'REFUND_NO_CONFIRMATION_CODE',
    );
    expect(
      refusal(() => pesapalRefundPrecheck(payment({ currency: 'UGX', amountMinor: 1000n }), 1000n, [], CAPS)),
    ).toBe('REFUND_CURRENCY_NOT_SUPPORTED');
    expect(refusal(() => pesapalRefundPrecheck(payment(), 150n, [], CAPS))).toBe('REFUND_WHOLE_UNITS_ONLY');
    expect(refusal(() => pesapalRefundPrecheck(payment({ provider: 'flutterwave' }), 100n, [], CAPS))).toBe(
      'REFUND_WRONG_PROVIDER',
    );
  });

  it.each([
    ['Visa', true],
    ['MasterCard', true],
    ['mastercard', true],
    ['Mpesa', false],
    ['AirtelMoney', false],
    ['', false],
    [null, false],
  ])('card method %s: %s', (method, card) => {
    expect(isPesapalCardMethod(method)).toBe(card);
  });
});

describe('Pesapal refund look (GetTransactionStatus)', () => {
  const status = (s: StatusResult['status']): StatusResult => ({
    status: s,
    raw: { status_code: s === 'reversed' ? 3 : 1 },
  });

  it('reversed → succeeded; still completed → pending awaiting approval, looked at rarely', () => {
    expect(pesapalRefundLook(status('reversed'), refund({ status: 'pending' }))).toMatchObject({
      status: 'succeeded',
      providerCode: '3',
    });
    const waiting = pesapalRefundLook(status('completed'), refund({ status: 'pending' }));
    expect(waiting).toMatchObject({ status: 'pending', reason: AWAITING_APPROVAL, providerCode: '1' });
    expect(waiting.nextLookSeconds).toBeGreaterThanOrEqual(3600);
  });

  it.each(['requested', 'unknown'])(
    'a %s refund (sending interrupted, answer lost) stays unknown while the payment shows completed (never resent)',
    (st) => {
      expect(pesapalRefundLook(status('completed'), refund({ status: st }))).toMatchObject({ status: 'unknown' });
    },
  );

  it('a payment Pesapal reports failed or pending does not add up: unknown', () => {
    expect(pesapalRefundLook(status('failed'), refund({ status: 'pending' }))).toMatchObject({
      status: 'unknown',
      reason: 'UNEXPECTED_PAYMENT_STATUS',
    });
  });
});

describe('PesapalRefunds against the Pesapal simulator', () => {
  let sim: PesapalSimulator;
  let adapter: PesapalProvider;
  let refunds: PesapalRefunds;
  let n = 0;

  beforeAll(async () => {
    sim = await startPesapalSimulator({ consumerKey: KEY, consumerSecret: SECRET, log: () => undefined });
    adapter = new PesapalProvider({ baseUrl: sim.url, consumerKey: KEY, consumerSecret: SECRET, timeoutMs: 3000 });
    const kind = { clientFor: () => ({ provider: adapter }) } as unknown as PesapalAccountKind;
    refunds = new PesapalRefunds(kind, new RefundProvidersRegistry(), adapter);
  });
  afterAll(() => sim.close());

  async function paid(amount: number, paymentMethod: 'Visa' | 'Mpesa'): Promise<Payment> {
    const reference = `SD-pp-spec-${++n}-${Date.now()}`;
    const init = await adapter.initiate({
      paymentId: reference,
      reference,
      amountMinor: BigInt(amount) * 100n,
      currency: 'KES',
      description: 'refund spec',
      customer: { email: 'walkin@pos.example.co.ke' },
      redirectUrl: 'http://127.0.0.1/return',
      notificationUrl: 'http://127.0.0.1:9/ipn',
    });
    await sim.complete(init.providerRef!, { outcome: 'completed', paymentMethod });
    const order = sim.getOrder(reference)!;
    return payment({
      providerReference: reference,
      providerTransactionId: order.orderTrackingId,
      providerReceipt: order.confirmationCode,
      paymentMethod,
      amountMinor: BigInt(amount) * 100n,
    });
  }

  const ctx = (p: Payment, r: Refund) => ({ payment: p, refund: r, account: ACCOUNT });

  it('submit → pending (received only); approval → look says succeeded', async () => {
    const p = await paid(1000, 'Visa');
    const report = await refunds.submit(ctx(p, refund({ amountMinor: 40000n })));
    expect(report).toMatchObject({ status: 'pending', reason: AWAITING_APPROVAL, submitted: true });
    expect(sim.getOrder(p.providerReference!)?.refund).toMatchObject({
      amountMinor: 40000n,
      state: 'pending',
      username: 'user:manager-1',
      remarks: 'returned goods',
    });
    expect(await refunds.look(ctx(p, refund({ status: 'pending' })))).toMatchObject({ status: 'pending' });
    await sim.decideRefund(p.providerReference!, 'approve');
    expect(await refunds.look(ctx(p, refund({ status: 'pending' })))).toMatchObject({ status: 'succeeded' });
  });

  it('a rejection leaves the payment completed: the refund stays pending awaiting approval', async () => {
    const p = await paid(500, 'Mpesa');
    await refunds.submit(ctx(p, refund({ amountMinor: 50000n })));
    await sim.decideRefund(p.providerReference!, 'reject');
    expect(await refunds.look(ctx(p, refund({ status: 'pending' })))).toMatchObject({
      status: 'pending',
      reason: AWAITING_APPROVAL,
    });
  });

  it("Pesapal's own refusal (a second request) is a failed report with its message", async () => {
    const p = await paid(1000, 'Visa');
    await refunds.submit(ctx(p, refund({ amountMinor: 10000n })));
    const second = await refunds.submit(ctx(p, refund({ amountMinor: 10000n })));
    expect(second).toMatchObject({ status: 'failed', reason: 'REFUSED_BY_PROVIDER', submitted: true });
    expect(second.message).toMatch(/only one refund/);
  });
});
