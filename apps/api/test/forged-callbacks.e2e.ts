import { EventEmitter2 } from '@nestjs/event-emitter';
import { sql } from 'drizzle-orm';
import request from 'supertest';
import { PAYMENT_COMPLETED_EVENT } from '../src/payments/payments.service';
import { successCallback } from './helpers/callbacks';
import { fullCheckoutRequestId, startTestApp, TestApp, waitFor } from './helpers/test-app';

const successBody = (merchantRequestId: string, checkoutRequestId: string, amount: number, receipt = 'FRG0000001') =>
  successCallback(merchantRequestId, checkoutRequestId, amount, receipt);

describe('forged and unverified callbacks never complete a payment on their own', () => {
  let t: TestApp;
  let auth: string;
  let n = 0;
  const completed: string[] = [];
  beforeAll(async () => {
    t = await startTestApp();
    auth = `Bearer ${t.token()}`;
    t.app.get(EventEmitter2).on(PAYMENT_COMPLETED_EVENT, (e: { paymentId: string }) => completed.push(e.paymentId));
  });
  afterAll(() => t.close());

  /** A payment whose customer has not answered yet (simulator magic number). */
  async function openPayment(amount = 100) {
    const orderId = `FC-${++n}`;
    await t.http().post('/orders').set('Authorization', auth).send({ id: orderId, total: amount });
    const res = await t
      .http()
      .post('/payments/stk-push')
      .set('Authorization', auth)
      .send({ phoneNumber: '254700000007', amount, orderId });
    expect(res.status).toBe(201);
    const callbackPath = new URL(t.sim.getPush(fullCheckoutRequestId(t.sim, res.body))!.callbackUrl).pathname;
    return { ...res.body, checkoutRequestId: fullCheckoutRequestId(t.sim, res.body), orderId, callbackPath } as {
      paymentId: string;
      checkoutRequestId: string;
      merchantRequestId: string;
      orderId: string;
      callbackPath: string;
    };
  }

  const inbox = async (checkoutRequestId: string) =>
    (
      (await t.db.execute(
        sql`select verified, outcome, processed_at from callback_inbox where checkout_request_id = ${checkoutRequestId} order by id`,
      )) as unknown as { rows: { verified: boolean; outcome: string | null }[] }
    ).rows;
  const status = async (paymentId: string) =>
    (await t.http().get(`/payments/${paymentId}`).set('Authorization', auth)).body;

  it('bad token: stored, acknowledged, confirmed by STK query — still pending because the customer has not paid', async () => {
    const p = await openPayment();
    const res = await request(t.baseUrl)
      .post(`/payments/callback/${p.paymentId}/forgedtokenforgedtokenforgedtokenforgedtok`)
      .send(successBody(p.merchantRequestId, p.checkoutRequestId, 100));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ResultCode: 0, ResultDesc: 'Accepted' });
    const rows = await waitFor(async () => {
      const r = await inbox(p.checkoutRequestId);
      return r.length === 1 && r[0].outcome ? r : undefined;
    });
    expect(rows[0]).toMatchObject({ verified: false, outcome: 'unverified_query_pending' });
    expect((await status(p.paymentId)).status).toBe('pending');
    expect(completed).not.toContain(p.paymentId);
  });

  it('bare URL with a forged success while the customer actually cancelled → cancelled, never completed', async () => {
    const p = await openPayment();
    await t.sim.resolve(p.checkoutRequestId, 1032);
    // (the genuine cancel callback also arrives on the capability URL; either way the outcome is the truth)
    await request(t.baseUrl)
      .post('/payments/callback')
      .send(successBody(p.merchantRequestId, p.checkoutRequestId, 100))
      .expect(200);
    const final = await waitFor(async () => {
      const s = await status(p.paymentId);
      return s.status !== 'pending' ? s : undefined;
    });
    expect(final.status).toBe('cancelled');
    expect(completed).not.toContain(p.paymentId);
  });

  it('unknown CheckoutRequestID: stored as unknown_payment, nothing else changes', async () => {
    const res = await request(t.baseUrl)
      .post('/payments/callback')
      .send(successBody('x-1', 'ws_CO_000000000000000000', 100));
    expect(res.status).toBe(200);
    const rows = await waitFor(async () => {
      const r = await inbox('ws_CO_000000000000000000');
      return r[0]?.outcome ? r : undefined;
    });
    expect(rows[0].outcome).toBe('unknown_payment');
  });

  it('valid capability URL but wrong amount → review, order not paid', async () => {
    const p = await openPayment(100);
    const res = await request(t.baseUrl)
      .post(p.callbackPath)
      .send(successBody(p.merchantRequestId, p.checkoutRequestId, 1, 'FRG0000002'));
    expect(res.status).toBe(200);
    const s = await status(p.paymentId);
    expect(s).toMatchObject({ status: 'review', statusReason: 'AMOUNT_MISMATCH' });
    const o = await t.http().get(`/orders/${p.orderId}`).set('Authorization', auth);
    expect(o.body).toMatchObject({ status: 'unpaid', paidAt: null });
    expect(completed).not.toContain(p.paymentId);
  });

  it("valid capability URL carrying another payment's CheckoutRequestID → review", async () => {
    const a = await openPayment(50);
    const b = await openPayment(50);
    await request(t.baseUrl)
      .post(a.callbackPath)
      .send(successBody(b.merchantRequestId, b.checkoutRequestId, 50, 'FRG0000003'))
      .expect(200);
    expect((await status(a.paymentId)).statusReason).toBe('CHECKOUT_REQUEST_ID_MISMATCH');
    expect((await status(b.paymentId)).status).toBe('pending');
    expect(completed).not.toContain(a.paymentId);
    expect(completed).not.toContain(b.paymentId);
  });

  it('a replayed receipt number on another payment → review', async () => {
    const a = await openPayment(30);
    const b = await openPayment(30);
    await request(t.baseUrl)
      .post(a.callbackPath)
      .send(successBody(a.merchantRequestId, a.checkoutRequestId, 30, 'RCP0000009'))
      .expect(200);
    expect((await status(a.paymentId)).status).toBe('completed');
    await request(t.baseUrl)
      .post(b.callbackPath)
      .send(successBody(b.merchantRequestId, b.checkoutRequestId, 30, 'RCP0000009'))
      .expect(200);
    expect((await status(b.paymentId)).statusReason).toBe('DUPLICATE_RECEIPT');
  });

  it('a late failure callback never downgrades a completed payment', async () => {
    const p = await openPayment(20);
    await request(t.baseUrl)
      .post(p.callbackPath)
      .send(successBody(p.merchantRequestId, p.checkoutRequestId, 20, 'RCP0000010'))
      .expect(200);
    const cancel = {
      Body: {
        stkCallback: {
          MerchantRequestID: p.merchantRequestId,
          CheckoutRequestID: p.checkoutRequestId,
          ResultCode: 1032,
          ResultDesc: 'Request cancelled by user',
        },
      },
    };
    await request(t.baseUrl).post(p.callbackPath).send(cancel).expect(200);
    expect(await status(p.paymentId)).toMatchObject({ status: 'completed', mpesaReceiptNumber: 'RCP0000010' });
  });

  it('IP allowlist: a callback from elsewhere is refused with 403 and not stored', async () => {
    const strict = await startTestApp({ env: { MPESA_CALLBACK_IP_ALLOWLIST: '196.201.214.200,196.201.212.0/24' } });
    try {
      const res = await request(strict.baseUrl)
        .post('/payments/callback')
        .send(successBody('m', 'ws_CO_111', 1));
      expect(res.status).toBe(403);
      const c = (await strict.db.execute(sql`select count(*)::int as c from callback_inbox`)) as unknown as {
        rows: { c: number }[];
      };
      expect(c.rows[0].c).toBe(0);
    } finally {
      await strict.close();
    }
  });
});
