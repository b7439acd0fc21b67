import { EventEmitter2 } from '@nestjs/event-emitter';
import { sql } from 'drizzle-orm';
import request from 'supertest';
import { PAYMENT_COMPLETED_EVENT, PaymentCompletedEvent } from '../src/payments/payments.service';
import { successCallback } from './helpers/callbacks';
import { fullCheckoutRequestId, startTestApp, TestApp, waitFor } from './helpers/test-app';

describe('STK outcomes, duplicates, idempotency and shop scoping', () => {
  let t: TestApp;
  let auth: string;
  const completedEvents: PaymentCompletedEvent[] = [];
  let n = 0;

  beforeAll(async () => {
    t = await startTestApp();
    auth = `Bearer ${t.token()}`;
    t.app.get(EventEmitter2).on(PAYMENT_COMPLETED_EVENT, (e: PaymentCompletedEvent) => completedEvents.push(e));
  });
  afterAll(() => t.close());

  async function order(total: number): Promise<string> {
    const id = `ORD-${++n}`;
    const res = await t.http().post('/orders').set('Authorization', auth).send({ id, total });
    expect(res.status).toBe(201);
    return id;
  }

  async function push(
    orderId: string,
    amount: number,
    phoneNumber = '0712345678',
    headers: Record<string, string> = {},
  ) {
    return t
      .http()
      .post('/payments/stk-push')
      .set('Authorization', auth)
      .set(headers)
      .send({ phoneNumber, amount, orderId });
  }

  async function statusOf(checkoutRequestId: string) {
    return t.http().get('/payments/stk-status').query({ checkoutRequestId }).set('Authorization', auth);
  }

  async function settled(checkoutRequestId: string, expected: string) {
    return waitFor(async () => {
      const r = await statusOf(checkoutRequestId);
      return r.body.status === expected ? r.body : undefined;
    }, 8000);
  }

  it.each([
    ['254700000001', 'cancelled', '1032'],
    ['254700000002', 'expired', '1037'],
    ['254700000003', 'failed', '1'],
    ['254700000004', 'failed', '2001'],
  ])('phone %s ends %s with ResultCode %s and the order stays unpaid', async (phone, status, code) => {
    const orderId = await order(100);
    const res = await push(orderId, 100, phone);
    expect(res.status).toBe(201);
    await t.sim.waitForCallbacks(fullCheckoutRequestId(t.sim, res.body), 1, 5000);
    const body = await settled(res.body.checkoutRequestId, status);
    expect(body.resultCode).toBe(code);
    expect(body.mpesaReceiptNumber).toBeNull();
    const o = await t.http().get(`/orders/${orderId}`).set('Authorization', auth);
    expect(o.body).toMatchObject({ status: 'unpaid', paid: 0, outstanding: 100 });
    // A failed attempt frees the order for a new push.
    const again = await push(orderId, 100);
    expect(again.status).toBe(201);
  });

  it('a dropped callback is resolved through stk-status (STK query)', async () => {
    const orderId = await order(75);
    const res = await push(orderId, 75, '254700000005');
    expect(res.status).toBe(201);
    // The customer answers but Daraja never calls back; the status query finds the result.
    const body = await settled(res.body.checkoutRequestId, 'completed');
    expect(body.resultCode).toBe('0');
    expect(
      t.sim.callbacks().filter((c) => c.checkoutRequestId === fullCheckoutRequestId(t.sim, res.body)),
    ).toHaveLength(0);
    const o = await t.http().get(`/orders/${orderId}`).set('Authorization', auth);
    expect(o.body.status).toBe('paid');
  });

  it('stays pending while the customer has not answered, then completes', async () => {
    const orderId = await order(60);
    const res = await push(orderId, 60, '254700000007');
    const first = await statusOf(res.body.checkoutRequestId);
    expect(first.body.status).toBe('pending');
    await t.sim.resolve(fullCheckoutRequestId(t.sim, res.body), 0);
    await settled(res.body.checkoutRequestId, 'completed');
  });

  it('a callback sent twice completes the payment once', async () => {
    const orderId = await order(40);
    const before = completedEvents.length;
    const res = await push(orderId, 40, '254700000006');
    await t.sim.waitForCallbacks(fullCheckoutRequestId(t.sim, res.body), 2, 5000);
    await settled(res.body.checkoutRequestId, 'completed');
    await waitFor(async () => completedEvents.length > before);
    await new Promise((r) => setTimeout(r, 200));
    expect(completedEvents.filter((e) => e.paymentId === res.body.paymentId)).toHaveLength(1);
  });

  it('10 concurrent duplicate callbacks → one completion, order paid once', async () => {
    const orderId = await order(120);
    const res = await push(orderId, 120, '254700000007');
    const { paymentId, merchantRequestId } = res.body;
    const checkoutRequestId = fullCheckoutRequestId(t.sim, res.body);
    const simPush = t.sim.getPush(checkoutRequestId)!;
    const path = new URL(simPush.callbackUrl).pathname;
    const body = successCallback(merchantRequestId, checkoutRequestId, 120.0, 'TST1234567', 254700000007);
    const replies = await Promise.all(Array.from({ length: 10 }, () => request(t.baseUrl).post(path).send(body)));
    for (const r of replies) expect(r.body).toEqual({ ResultCode: 0, ResultDesc: 'Accepted' });
    await t.callbacksApplied();
    const st = await statusOf(checkoutRequestId);
    expect(st.body).toMatchObject({ status: 'completed', mpesaReceiptNumber: 'TST1234567' });
    expect(completedEvents.filter((e) => e.paymentId === paymentId)).toHaveLength(1);
    expect(completedEvents.filter((e) => e.orderId === orderId && e.orderPaid)).toHaveLength(1);
    const events = await t.db.execute(
      sql`select type, count(*)::int as c from payment_events where payment_id = ${paymentId} group by type order by type`,
    );
    const counts = Object.fromEntries(
      ((events as unknown as { rows: { type: string; c: number }[] }).rows ?? []).map((r) => [r.type, r.c]),
    );
    expect(counts.status_changed).toBe(1);
    // Every copy is stored and processed once: one applied, nine duplicates. A copy that arrived
    // after the completion committed is recognised as one in the statement that stores it (the row
    // is its audit record); one that raced the completion is applied and audited as duplicate_ignored.
    const inbox = await t.db.execute(
      sql`select outcome, count(*)::int as c from callback_inbox where checkout_request_id = ${checkoutRequestId} group by outcome`,
    );
    const outcomes = Object.fromEntries(
      (inbox as unknown as { rows: { outcome: string; c: number }[] }).rows.map((r) => [r.outcome, r.c]),
    );
    expect(outcomes).toEqual({ applied: 1, duplicate: 9 });
    // Recognised on arrival: stored processed in the same statement (processed_at = received_at, one now()).
    const applierDuplicates = await t.db.execute(
      sql`select count(*)::int as c from callback_inbox where checkout_request_id = ${checkoutRequestId} and outcome = 'duplicate' and processed_at > received_at`,
    );
    expect(counts.duplicate_ignored ?? 0).toBe((applierDuplicates as unknown as { rows: { c: number }[] }).rows[0].c);
  });

  it('a second push for an order with one in flight is a 409 carrying the existing payment', async () => {
    const orderId = await order(90);
    const first = await push(orderId, 50, '254700000007');
    expect(first.status).toBe(201);
    const second = await push(orderId, 40);
    expect(second.status).toBe(409);
    expect(second.body.code).toBe('PAYMENT_IN_PROGRESS');
    expect(second.body.details.payment).toMatchObject({ paymentId: first.body.paymentId, status: 'pending' });
    expect(t.sim.pushes().filter((p) => p.accountReference === orderId.replace(/-/g, ''))).toHaveLength(1);
  });

  it('partial payments: paid/outstanding follow completed payments and the amount may not exceed what is owed', async () => {
    const orderId = await order(100.5);
    const p1 = await push(orderId, 60);
    await settled(p1.body.checkoutRequestId, 'completed');
    let o = await t.http().get(`/orders/${orderId}`).set('Authorization', auth);
    expect(o.body).toMatchObject({ total: 100.5, paid: 60, outstanding: 40.5, status: 'partially_paid', paidAt: null });
    const tooMuch = await push(orderId, 41);
    expect(tooMuch.status).toBe(400);
    expect(tooMuch.body).toMatchObject({ code: 'AMOUNT_EXCEEDS_OUTSTANDING', details: { outstanding: 40.5 } });
    const p2 = await push(orderId, 40);
    await settled(p2.body.checkoutRequestId, 'completed');
    o = await t.http().get(`/orders/${orderId}`).set('Authorization', auth);
    expect(o.body).toMatchObject({ paid: 100, outstanding: 0.5, status: 'partially_paid' });
  });

  it('Idempotency-Key: same body replays the first response, a different body is a 409', async () => {
    const orderId = await order(30);
    const key = `key-${orderId}`;
    const first = await push(orderId, 30, '254700000007', { 'Idempotency-Key': key });
    expect(first.status).toBe(201);
    const replay = await push(orderId, 30, '254700000007', { 'Idempotency-Key': key });
    expect(replay.status).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.body).toEqual(first.body);
    const conflict = await push(orderId, 29, '254700000007', { 'Idempotency-Key': key });
    expect(conflict.status).toBe(409);
    expect(conflict.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(t.sim.pushes().filter((p) => p.checkoutRequestId === fullCheckoutRequestId(t.sim, first.body))).toHaveLength(
      1,
    );
    expect(t.sim.stats().pushRequests).toBe(t.sim.pushes().length);
  });

  it('an Idempotency-Key whose first request died before storing its answer answers with the payment, never stays stuck', async () => {
    const orderId = await order(35);
    const key = `crash-${orderId}`;
    const first = await push(orderId, 35, '254700000007', { 'Idempotency-Key': key });
    expect(first.status).toBe(201);
    // What a crash between Daraja's answer and storing it leaves: the key without a response.
    await t.db.execute(
      sql`update idempotency_keys set response_status = null, response_body = null where key = ${key}`,
    );
    // While the first request could still be running, a retry is told to wait...
    const busy = await push(orderId, 35, '254700000007', { 'Idempotency-Key': key });
    expect(busy.status).toBe(409);
    expect(busy.body.code).toBe('IDEMPOTENCY_REQUEST_IN_PROGRESS');
    // ...and once it cannot be (longer than any provider timeout), the payment is the answer.
    await t.db.execute(sql`update idempotency_keys set created_at = now() - interval '10 minutes' where key = ${key}`);
    const again = await push(orderId, 35, '254700000007', { 'Idempotency-Key': key });
    expect(again.status).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body).toMatchObject({
      paymentId: first.body.paymentId,
      status: 'pending',
      checkoutRequestId: first.body.checkoutRequestId,
    });
    expect(t.sim.promptsFor({ accountReference: orderId.replace(/[^A-Za-z0-9]/g, '') }).prompts).toBe(1);
  });

  it('concurrent requests with the same Idempotency-Key prompt the customer once', async () => {
    const orderId = await order(25);
    const before = t.sim.stats().pushRequests;
    const replies = await Promise.all(
      Array.from({ length: 5 }, () => push(orderId, 25, '254700000007', { 'Idempotency-Key': `race-${orderId}` })),
    );
    expect(t.sim.stats().pushRequests - before).toBe(1);
    const ok = replies.filter((r) => r.status === 201);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    for (const r of replies) expect([201, 409]).toContain(r.status);
    for (const r of ok) expect(r.body.paymentId).toBe(ok[0].body.paymentId);
  });

  it("another shop's payment and order are 404, never data", async () => {
    const orderId = await order(10);
    const res = await push(orderId, 10, '254700000007');
    const other = `Bearer ${t.token('shop-2', 'manager', 'mgr-2')}`;
    const a = await t.http().get(`/orders/${orderId}`).set('Authorization', other);
    const b = await t.http().get(`/payments/${res.body.paymentId}`).set('Authorization', other);
    const c = await t
      .http()
      .get('/payments/stk-status')
      .query({ checkoutRequestId: res.body.checkoutRequestId })
      .set('Authorization', other);
    const d = await t
      .http()
      .post('/payments/stk-push')
      .set('Authorization', other)
      .send({ phoneNumber: '0712345678', amount: 10, orderId });
    for (const r of [a, b, c, d]) {
      expect(r.status).toBe(404);
      expect(r.body.code).toBe('NOT_FOUND');
      // Nothing about the payment leaks: no status, amount, phone or provider ids.
      expect(r.body.details?.payment).toBeUndefined();
      expect(JSON.stringify(r.body)).not.toMatch(/pending|2547|"amount"|merchantRequestId/);
    }
    const own = await t.http().get(`/payments/${res.body.paymentId}`).set('Authorization', auth);
    expect(own.status).toBe(200);
  });

  it('till (Buy Goods) accounts send CustomerBuyGoodsOnline with the till as PartyB', async () => {
    const till = await startTestApp({ env: { MPESA_TRANSACTION_TYPE: 'till', MPESA_TILL_NUMBER: '174380' } });
    try {
      const a = `Bearer ${till.token()}`;
      await till.http().post('/orders').set('Authorization', a).send({ id: 'T-1', total: 5 });
      const res = await till
        .http()
        .post('/payments/stk-push')
        .set('Authorization', a)
        .send({ phoneNumber: '0712345678', amount: 5, orderId: 'T-1' });
      expect(res.status).toBe(201);
      const p = till.sim.getPush(fullCheckoutRequestId(till.sim, res.body))!;
      expect(p).toMatchObject({ transactionType: 'CustomerBuyGoodsOnline', shortcode: '174379', partyB: '174380' });
      await waitFor(
        async () =>
          (await till.http().get(`/payments/${res.body.paymentId}`).set('Authorization', a)).body.status ===
          'completed',
        8000,
      );
    } finally {
      await till.close();
    }
  });
});
