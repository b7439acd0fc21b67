import { sql } from 'drizzle-orm';
import request from 'supertest';
import { callbackToken } from '../src/payments/daraja/callback-token';
import { ReconcilerService } from '../src/payments/reconciler.service';
import { successCallback } from './helpers/callbacks';
import { startTestApp, TestApp, TEST_CALLBACK_SECRET, waitFor } from './helpers/test-app';

/**
 * Issue 8, "Money": a late genuine success never takes an order past its total (8.1); receipts
 * are compared upper-case (8.3).
 * The reconciler is driven by the test (no timer, no grace, no backoff).
 */
describe('issue 8 money: late successes, blocked orders and receipts', () => {
  let t: TestApp;
  let reconciler: ReconcilerService;
  let cashier: string;
  let manager: string;
  let n = 0;

  beforeAll(async () => {
    t = await startTestApp({
      env: {
        RECONCILER_ENABLED: 'false',
        RECONCILER_PENDING_GRACE_SECONDS: '0',
        RECONCILER_BACKOFF_BASE_SECONDS: '0',
        RECONCILER_BACKOFF_MAX_SECONDS: '0',
        RECONCILER_INBOX_RETRY_AFTER_SECONDS: '0',
        // status reads must not settle anything here: the test decides who reports the truth
        MPESA_STATUS_QUERY_AFTER_SECONDS: '3600',
      },
    });
    reconciler = t.app.get(ReconcilerService);
    cashier = `Bearer ${t.token()}`;
    manager = `Bearer ${t.token('shop-1', 'manager', 'manager-1')}`;
  });
  afterAll(() => t.close());

  async function order(total: number, auth = cashier): Promise<string> {
    const id = `MONEY-${++n}`;
    const res = await t.http().post('/orders').set('Authorization', auth).send({ id, total });
    expect(res.status).toBe(201);
    return id;
  }

  const push = (orderId: string, amount: number, phoneNumber: string, auth = cashier) => t.http().post('/payments/stk-push').set('Authorization', auth).send({ phoneNumber, amount, orderId });
  const payment = async (id: string, auth = cashier) => (await t.http().get(`/payments/${id}`).set('Authorization', auth)).body;
  const orderOf = async (id: string, auth = cashier) => (await t.http().get(`/orders/${id}`).set('Authorization', auth)).body;
  const reviewIds = async () => ((await t.http().get('/payments/review').query({ limit: 100 }).set('Authorization', manager)).body.items as { paymentId: string }[]).map((p) => p.paymentId);
  const capabilityUrl = (id: string) => `/payments/callback/${id}/${callbackToken(TEST_CALLBACK_SECRET, id)}`;

  /** A push to a phone that never answers, parked by the reconciler as review/OUTCOME_UNKNOWN. */
  async function parkedPush(orderId: string, amount: number, auth = cashier) {
    const res = await push(orderId, amount, '254700000007', auth);
    expect(res.status).toBe(201);
    await t.db.execute(sql`update payments set created_at = now() - interval '2 hours', next_check_at = null where id = ${res.body.paymentId}`);
    expect((await reconciler.tick()).actions.moved_to_review).toBe(1);
    expect(await payment(res.body.paymentId, auth)).toMatchObject({ status: 'review', statusReason: 'OUTCOME_UNKNOWN' });
    return res.body as { paymentId: string; checkoutRequestId: string; merchantRequestId: string };
  }

  /** A second payment that completes (the simulator's default phone pays and calls back). */
  async function paidPush(orderId: string, amount: number) {
    const res = await push(orderId, amount, '0712345678');
    expect(res.status).toBe(201);
    await waitFor(async () => (await payment(res.body.paymentId)).status === 'completed', 8000);
    return res.body as { paymentId: string };
  }

  describe('finding 1: a completion never takes an order past its total', () => {
    it('issue 8.1: a late success callback on the capability URL that exceeds what is still owed goes to review (EXCEEDS_OUTSTANDING), not to paid 160 of 100', async () => {
      const orderId = await order(100);
      const first = await parkedPush(orderId, 100);
      await paidPush(orderId, 60);
      expect(await orderOf(orderId)).toMatchObject({ status: 'partially_paid', paid: 60, outstanding: 40 });

      // Daraja's genuine late success for the first push, on its own URL.
      await t.sim.resolve(first.checkoutRequestId, 0);
      await t.sim.waitForCallbacks(first.checkoutRequestId, 1, 5000);
      const p = await waitFor(async () => {
        const b = await payment(first.paymentId);
        return b.status !== 'review' || b.statusReason !== 'OUTCOME_UNKNOWN' ? b : undefined;
      });
      expect(p).toMatchObject({ status: 'review', statusReason: 'EXCEEDS_OUTSTANDING', mpesaReceiptNumber: expect.stringMatching(/^[A-Z0-9]{10}$/) });
      expect(await orderOf(orderId)).toMatchObject({ status: 'partially_paid', paid: 60, outstanding: 40 });
      expect(await reviewIds()).toContain(first.paymentId);
    }, 30000);

    it('issue 8.1: POST /payments/:id/reconcile that learns a late success exceeding what is owed puts it in review, not paid 170 of 100', async () => {
      const orderId = await order(100);
      const first = await parkedPush(orderId, 100);
      await paidPush(orderId, 70);
      // The customer paid after all, but Daraja's callback is lost: the operator's reconcile finds it.
      await t.sim.resolve(first.checkoutRequestId, 0, { callbackCopies: 0 });
      const r = await t.http().post(`/payments/${first.paymentId}/reconcile`).set('Authorization', manager);
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ payment: { status: 'review', statusReason: 'EXCEEDS_OUTSTANDING' } });
      expect(await orderOf(orderId)).toMatchObject({ status: 'partially_paid', paid: 70, outstanding: 30 });
      expect(await reviewIds()).toContain(first.paymentId);
    }, 30000);

    it('issue 8.1: two late successes arriving together for one order cannot both fit: one completes, the other goes to review', async () => {
      const orderId = await order(100);
      const a = await parkedPush(orderId, 60);
      const b = await parkedPush(orderId, 60);
      const [ra, rb] = await Promise.all([
        request(t.baseUrl).post(capabilityUrl(a.paymentId)).send(successCallback(a.merchantRequestId, a.checkoutRequestId, 60, 'RCPTA00001')),
        request(t.baseUrl).post(capabilityUrl(b.paymentId)).send(successCallback(b.merchantRequestId, b.checkoutRequestId, 60, 'RCPTB00001')),
      ]);
      expect([ra.status, rb.status]).toEqual([200, 200]);
      const states = [await payment(a.paymentId), await payment(b.paymentId)].map((p) => `${p.status}:${p.statusReason}`).sort();
      expect(states).toEqual(['completed:PAID', 'review:EXCEEDS_OUTSTANDING']);
      expect(await orderOf(orderId)).toMatchObject({ status: 'partially_paid', paid: 60, outstanding: 40 });
    }, 30000);
  });

  describe('finding 3: receipts are compared upper-case', () => {
    it('issue 8.3: a success callback with rcptz00001 does not complete a second payment when RCPTZ00001 was already used', async () => {
      const first = await push(await order(30), 30, '254700000007');
      const secondOrder = await order(30);
      const second = await push(secondOrder, 30, '254700000007');
      const cb = (p: { paymentId: string; merchantRequestId: string; checkoutRequestId: string }, receipt: string) => request(t.baseUrl).post(capabilityUrl(p.paymentId)).send(successCallback(p.merchantRequestId, p.checkoutRequestId, 30, receipt));
      expect((await cb(first.body, 'RCPTZ00001')).status).toBe(200);
      expect(await payment(first.body.paymentId)).toMatchObject({ status: 'completed', mpesaReceiptNumber: 'RCPTZ00001' });
      expect((await cb(second.body, 'rcptz00001')).status).toBe(200);
      expect(await payment(second.body.paymentId)).toMatchObject({ status: 'review', statusReason: 'DUPLICATE_RECEIPT' });
      expect(await orderOf(secondOrder)).toMatchObject({ status: 'unpaid', paid: 0 });
    });

    it('issue 8.3: a receipt is stored trimmed and upper-case, so the statement matches it', async () => {
      const shopCashier = `Bearer ${t.token('shop-rcpt', 'cashier', 'c-r')}`;
      const orderId = await order(25, shopCashier);
      const p = (await push(orderId, 25, '254700000007', shopCashier)).body;
      expect((await request(t.baseUrl).post(capabilityUrl(p.paymentId)).send(successCallback(p.merchantRequestId, p.checkoutRequestId, 25, ' rcptw00003 '))).status).toBe(200);
      expect(await payment(p.paymentId, shopCashier)).toMatchObject({ status: 'completed', mpesaReceiptNumber: 'RCPTW00003' });
      const res = await t.http().post('/reconciliation/statements').set('Authorization', `Bearer ${t.token('shop-rcpt', 'manager', 'm-r')}`).set('Content-Type', 'text/csv').send('Receipt No.,Paid In\nRCPTW00003,25.00\n');
      expect(res.body).toMatchObject({ matched: 1, unknownReceipts: { count: 0 }, missingFromStatement: { count: 0 } });
    });
  });
});
