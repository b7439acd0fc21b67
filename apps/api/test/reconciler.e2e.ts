import { sql } from 'drizzle-orm';
import { callbackToken } from '../src/payments/providers/mpesa/callback-token';
import { ReconcilerService } from '../src/payments/reconciler.service';
import { successCallback } from './helpers/callbacks';
import { fullCheckoutRequestId, startTestApp, TEST_CALLBACK_SECRET, TestApp, waitFor } from './helpers/test-app';

/**
 * The reconciler driven pass by pass (RECONCILER_ENABLED=false: no background timer, the test
 * calls tick()), with zero grace/backoff so every open payment is due at once.
 */
describe('reconciler: every payment reaches a final state', () => {
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
        RECONCILER_MAX_QUERIES: '3',
        RECONCILER_INBOX_RETRY_AFTER_SECONDS: '0',
        MPESA_NOT_FOUND_FAIL_AFTER_SECONDS: '0',
        MPESA_UNRESOLVED_REVIEW_AFTER_SECONDS: '1',
        // status reads must not settle anything here: only the reconciler does
        MPESA_STATUS_QUERY_AFTER_SECONDS: '3600',
      },
    });
    reconciler = t.app.get(ReconcilerService);
    cashier = `Bearer ${t.token()}`;
    manager = `Bearer ${t.token('shop-1', 'manager', 'manager-1')}`;
  });
  afterAll(() => t.close());

  async function order(total: number, auth = cashier): Promise<string> {
    const id = `REC-${++n}`;
    const res = await t.http().post('/orders').set('Authorization', auth).send({ id, total });
    expect(res.status).toBe(201);
    return id;
  }

  async function push(orderId: string, amount: number, phoneNumber: string, auth = cashier) {
    const res = await t
      .http()
      .post('/payments/stk-push')
      .set('Authorization', auth)
      .send({ phoneNumber, amount, orderId });
    return res;
  }

  async function payment(id: string, auth = cashier) {
    await t.callbacksApplied(); // callbacks apply after their answer
    return (await t.http().get(`/payments/${id}`).set('Authorization', auth)).body;
  }

  async function nextDue(): Promise<void> {
    // Make every claimed-but-rescheduled payment due again (backoff is 0, lease is not).
    await t.db.execute(
      sql`update payments set next_check_at = now() - interval '1 second' where status in ('initiated','pending','unresolved')`,
    );
  }

  it('settles a payment whose callback never came (dropped) by STK query, and pays the order once', async () => {
    const orderId = await order(75);
    const res = await push(orderId, 75, '254700000005');
    expect(res.status).toBe(201);
    await waitFor(async () => t.sim.getPush(fullCheckoutRequestId(t.sim, res.body))?.state === 'answered');
    const report = await reconciler.tick();
    expect(report.actions.settled).toBe(1);
    const p = await payment(res.body.paymentId);
    expect(p).toMatchObject({ status: 'completed', resultCode: '0' });
    const o = await t.http().get(`/orders/${orderId}`).set('Authorization', cashier);
    expect(o.body.status).toBe('paid');
    // Nothing left to do: a second pass claims nothing.
    await nextDue();
    expect((await reconciler.tick()).paymentsChecked).toBe(0);
  });

  it('keeps asking with a bounded budget while the customer has not answered, then parks it in review; the truth settles it later', async () => {
    const orderId = await order(60);
    const res = await push(orderId, 60, '254700000007');
    const queriesBefore = t.sim.stats().queryRequests;
    for (let i = 0; i < 3; i++) {
      const r = await reconciler.tick();
      expect(r.actions.still_pending).toBe(1);
      await nextDue();
      await new Promise((r) => setTimeout(r, 2100)); // the 2 s per-payment query spacing shared with status reads
    }
    expect((await reconciler.tick()).actions.moved_to_review).toBe(1);
    expect(t.sim.stats().queryRequests - queriesBefore).toBe(3);
    let p = await payment(res.body.paymentId);
    expect(p).toMatchObject({ status: 'review', statusReason: 'OUTCOME_UNKNOWN' });
    // The order is unpaid, and blocked: the customer may have paid (issue 8.2).
    expect((await t.http().get(`/orders/${orderId}`).set('Authorization', cashier)).body.status).toBe('unpaid');
    expect((await push(orderId, 60, '0712345678')).body.code).toBe('PAYMENT_OUTCOME_UNKNOWN');

    // The customer finally pays; the callback on the payment's own URL settles the review.
    await t.sim.resolve(fullCheckoutRequestId(t.sim, res.body), 0);
    await t.sim.waitForCallbacks(fullCheckoutRequestId(t.sim, res.body), 1, 5000);
    p = await waitFor(async () => {
      const b = await payment(res.body.paymentId);
      return b.status === 'completed' ? b : undefined;
    });
    expect(p.mpesaReceiptNumber).toMatch(/^[A-Z0-9]{10}$/);
  }, 30000);

  it('a parked payment that succeeds after another payment paid the order is never counted twice: it goes to review for a refund', async () => {
    const orderId = await order(70);
    const first = await push(orderId, 70, '254700000007');
    // Park it as OUTCOME_UNKNOWN (what the reconciler does after its window); a manager releases the order.
    await t.db.execute(
      sql`update payments set created_at = now() - interval '2 hours' where id = ${first.body.paymentId}`,
    );
    expect((await reconciler.tick()).actions.moved_to_review).toBe(1);
    expect(
      (
        await t
          .http()
          .post(`/payments/${first.body.paymentId}/release`)
          .set('Authorization', manager)
          .send({ reason: 'customer has no SMS' })
      ).status,
    ).toBe(200);
    const second = await push(orderId, 70, '0712345670');
    expect(second.status).toBe(201);
    await waitFor(async () => (await payment(second.body.paymentId)).status === 'completed');
    // Now the first customer pays too.
    await t.sim.resolve(fullCheckoutRequestId(t.sim, first.body), 0);
    await t.sim.waitForCallbacks(fullCheckoutRequestId(t.sim, first.body), 1, 5000);
    const p = await waitFor(async () => {
      const b = await payment(first.body.paymentId);
      return b.statusReason === 'ORDER_ALREADY_PAID' ? b : undefined;
    });
    expect(p.status).toBe('review');
    expect(p.mpesaReceiptNumber).toMatch(/^[A-Z0-9]{10}$/); // the money moved: the receipt is kept for the refund
    expect((await t.http().get(`/orders/${orderId}`).set('Authorization', cashier)).body).toMatchObject({
      status: 'paid',
      paid: 70,
      outstanding: 0,
    });
  }, 20000);

  it('fails a payment Daraja never heard of, with a clear reason', async () => {
    const orderId = await order(40);
    const res = await push(orderId, 40, '254700000007');
    expect(res.status).toBe(201);
    const checkoutRequestId = fullCheckoutRequestId(t.sim, res.body); // before the simulator forgets it
    t.sim.reset(); // Daraja forgets the push: the query answers "does not exist"
    const r = await reconciler.tick();
    expect(r.actions.failed_not_found).toBe(1);
    const p = await payment(res.body.paymentId);
    expect(p).toMatchObject({ status: 'failed', statusReason: 'NOT_FOUND_AT_PROVIDER' });

    // If money moved after all (the push was only late), the truth is not dropped: a person decides.
    const { paymentId, merchantRequestId } = res.body;
    const cb = await t
      .http()
      .post(`/payments/callback/${paymentId}/${callbackToken(TEST_CALLBACK_SECRET, paymentId)}`)
      .send(successCallback(merchantRequestId, checkoutRequestId, 40, 'RCNLATE001'));
    expect(cb.status).toBe(200);
    expect(await payment(paymentId)).toMatchObject({
      status: 'review',
      statusReason: 'PAID_AFTER_CLOSE',
      mpesaReceiptNumber: 'RCNLATE001',
    });
    expect((await t.http().get(`/orders/${orderId}`).set('Authorization', cashier)).body.status).toBe('unpaid');
  });

  it('moves a push whose answer was lost (no CheckoutRequestID) to review after the window, never pushing again', async () => {
    const orderId = await order(30);
    t.sim.setFaults({
      pushErrors: { count: 1, status: 503, errorCode: '503.001.01', errorMessage: 'Service Unavailable' },
    });
    const res = await push(orderId, 30, '0712345678');
    expect(res.status).toBeGreaterThanOrEqual(500);
    const paymentId = res.body.details.paymentId;
    expect((await payment(paymentId)).status).toBe('unresolved');
    const pushesBefore = t.sim.stats().pushRequests;
    expect((await reconciler.tick()).actions.deferred).toBe(1);
    await new Promise((r) => setTimeout(r, 1100));
    await nextDue();
    expect((await reconciler.tick()).actions.moved_to_review).toBe(1);
    expect(t.sim.stats().pushRequests).toBe(pushesBefore);
    expect(await payment(paymentId)).toMatchObject({ status: 'review', statusReason: 'OUTCOME_UNKNOWN' });
  });

  it('backs off on spike arrest and settles on a later pass', async () => {
    const orderId = await order(20);
    const res = await push(orderId, 20, '254700000005');
    await waitFor(async () => t.sim.getPush(fullCheckoutRequestId(t.sim, res.body))?.state === 'answered');
    // More spike arrests than DarajaService's own short retries absorb.
    t.sim.setFaults({
      queryErrors: {
        count: 10,
        status: 500,
        errorCode: '500.003.02',
        errorMessage: 'System is busy. Please try again in few minutes.',
      },
    });
    const first = await reconciler.tick();
    t.sim.setFaults({});
    expect(first.actions).toEqual({ provider_error: 1 });
    const row = await t.db.execute(
      sql`select next_check_at > now() + interval '10 seconds' as later from payments where id = ${res.body.paymentId}`,
    );
    expect((row as unknown as { rows: { later: boolean }[] }).rows[0].later).toBe(true); // waited at least Retry-After
    await new Promise((r) => setTimeout(r, 2100));
    await nextDue();
    expect((await reconciler.tick()).actions.settled).toBe(1);
    expect((await payment(res.body.paymentId)).status).toBe('completed');
  });

  it('finishes a stored callback whose processing never ran (process died after storing it)', async () => {
    const orderId = await order(55);
    const res = await push(orderId, 55, '254700000007');
    const { paymentId, merchantRequestId } = res.body;
    const checkoutRequestId = fullCheckoutRequestId(t.sim, res.body);
    // What a crash between "stored" and "processed" leaves behind: the verified row, unprocessed.
    const body = successCallback(merchantRequestId, checkoutRequestId, 55, 'RCN1234567');
    await t.db.execute(
      sql`insert into callback_inbox (provider, url_payment_id, verified, checkout_request_id, raw_body, attempts) values ('mpesa', ${paymentId}, true, ${checkoutRequestId}, ${JSON.stringify(body)}, 1)`,
    );
    const r = await reconciler.tick();
    expect(r.callbacksReplayed).toBe(1);
    const p = await payment(paymentId);
    expect(p).toMatchObject({ status: 'completed', mpesaReceiptNumber: 'RCN1234567' });
    const inbox = await t.db.execute(
      sql`select outcome, processed_at is not null as done from callback_inbox where checkout_request_id = ${checkoutRequestId}`,
    );
    expect((inbox as unknown as { rows: unknown[] }).rows).toEqual([{ outcome: 'applied', done: true }]);
    // Replaying is idempotent: the real callback arriving later changes nothing.
    const again = await t
      .http()
      .post(`/payments/callback/${paymentId}/${callbackToken(TEST_CALLBACK_SECRET, paymentId)}`)
      .send(body);
    expect(again.status).toBe(200);
    expect((await t.http().get(`/orders/${orderId}`).set('Authorization', cashier)).body).toMatchObject({
      status: 'paid',
      paid: 55,
    });
  });

  it('a callback whose processing fails is still stored and acknowledged, and the reconciler applies it later', async () => {
    const orderId = await order(65);
    const res = await push(orderId, 65, '254700000007');
    const { paymentId, merchantRequestId } = res.body;
    const checkoutRequestId = fullCheckoutRequestId(t.sim, res.body);
    // Make processing fail inside the database (as a lost connection or a bad deploy would).
    await t.db.execute(
      sql.raw(
        `create or replace function fail_events() returns trigger language plpgsql as $$ begin if new.data::text like '%RCNFAIL%' then raise exception 'injected failure'; end if; return new; end $$`,
      ),
    );
    await t.db.execute(
      sql.raw(`create trigger fail_events before insert on payment_events for each row execute function fail_events()`),
    );
    try {
      const cb = await t
        .http()
        .post(`/payments/callback/${paymentId}/${callbackToken(TEST_CALLBACK_SECRET, paymentId)}`)
        .send(successCallback(merchantRequestId, checkoutRequestId, 65, 'RCNFAIL001'));
      expect(cb.status).toBe(200);
      expect(cb.body).toEqual({ ResultCode: 0, ResultDesc: 'Accepted' });
      expect((await payment(paymentId)).status).toBe('pending');
      const rows = await t.db.execute(
        sql`select processed_at is null as open from callback_inbox where checkout_request_id = ${checkoutRequestId}`,
      );
      expect((rows as unknown as { rows: unknown[] }).rows).toEqual([{ open: true }]);
    } finally {
      await t.db.execute(sql.raw('drop trigger fail_events on payment_events'));
    }
    expect((await reconciler.tick()).callbacksReplayed).toBe(1);
    expect(await payment(paymentId)).toMatchObject({ status: 'completed', mpesaReceiptNumber: 'RCNFAIL001' });
  });

  describe('operator endpoints', () => {
    it('reconciles one payment on request; cashiers and other shops cannot', async () => {
      const orderId = await order(45);
      const res = await push(orderId, 45, '254700000005');
      await waitFor(async () => t.sim.getPush(fullCheckoutRequestId(t.sim, res.body))?.state === 'answered');
      const id = res.body.paymentId;
      expect((await t.http().post(`/payments/${id}/reconcile`).set('Authorization', cashier)).status).toBe(403);
      expect(
        (
          await t
            .http()
            .post(`/payments/${id}/reconcile`)
            .set('Authorization', `Bearer ${t.token('shop-2', 'admin', 'a2')}`)
        ).status,
      ).toBe(404);
      expect((await t.http().post(`/payments/not-a-uuid/reconcile`).set('Authorization', manager)).status).toBe(400);
      expect((await payment(id)).status).toBe('pending');

      const r = await t.http().post(`/payments/${id}/reconcile`).set('Authorization', manager);
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({
        action: 'settled',
        payment: { status: 'completed' },
        provider: { resultCode: '0' },
      });
      const again = await t.http().post(`/payments/${id}/reconcile`).set('Authorization', manager);
      expect(again.body).toMatchObject({ action: 'already_final', payment: { status: 'completed' } });
    });

    it('review: pressing reconcile again and again spends none of the reconciler budget and never parks a payment whose customer still has the prompt', async () => {
      const orderId = await order(46);
      const res = await push(orderId, 46, '254700000007'); // never answers: Daraja keeps saying "being processed"
      const id = res.body.paymentId;
      // Twice the reconciler's budget (RECONCILER_MAX_QUERIES=3), each press after the per-payment query interval.
      for (let i = 0; i < 6; i++) {
        await t.db.execute(sql`update payments set last_queried_at = now() - interval '1 minute' where id = ${id}`);
        const r = await t.http().post(`/payments/${id}/reconcile`).set('Authorization', manager);
        expect({ status: r.status, action: r.body.action, paymentStatus: r.body.payment?.status }).toEqual({
          status: 200,
          action: 'still_pending',
          paymentStatus: 'pending',
        });
      }
      const row = (await t.db.execute(sql`select reconcile_attempts from payments where id = ${id}`)) as unknown as {
        rows: { reconcile_attempts: number }[];
      };
      expect(row.rows[0].reconcile_attempts).toBe(0);
      // The order stays blocked by its open payment: no second prompt for the customer.
      const second = await push(orderId, 46, '254712345678');
      expect({ status: second.status, code: second.body.code }).toEqual({ status: 409, code: 'PAYMENT_IN_PROGRESS' });
      await t.sim.resolve(fullCheckoutRequestId(t.sim, res.body), 0);
      await t.db.execute(sql`update payments set last_queried_at = now() - interval '1 minute' where id = ${id}`);
      // (the simulator's callback may settle it first)
      const done = await t.http().post(`/payments/${id}/reconcile`).set('Authorization', manager);
      expect({
        action: ['settled', 'already_final'].includes(done.body.action),
        status: done.body.payment.status,
      }).toEqual({ action: true, status: 'completed' });
    });

    it('review: fifty managers pressing reconcile at once on a review payment make one STK query', async () => {
      const orderId = await order(47);
      const res = await push(orderId, 47, '254700000007');
      const { paymentId, merchantRequestId } = res.body;
      const checkoutRequestId = fullCheckoutRequestId(t.sim, res.body);
      const cb = await t
        .http()
        .post(`/payments/callback/${paymentId}/${callbackToken(TEST_CALLBACK_SECRET, paymentId)}`)
        .send(successCallback(merchantRequestId, checkoutRequestId, 1, 'RCN7654399'));
      expect(cb.status).toBe(200);
      expect(await payment(paymentId)).toMatchObject({ status: 'review', statusReason: 'AMOUNT_MISMATCH' });
      await t.sim.resolve(checkoutRequestId, 0);
      const before = t.sim.stats().queryRequests;
      const started = Date.now();
      const answers = await Promise.all(
        Array.from({ length: 50 }, () =>
          t.http().post(`/payments/${paymentId}/reconcile`).set('Authorization', manager),
        ),
      );
      expect(answers.map((a) => a.status)).toEqual(Array(50).fill(200));
      // One query per payment per 2 s interval (QUERY_MIN_INTERVAL_SECONDS), however the 50 spread over a busy machine (before: 50).
      const intervals = 1 + Math.floor((Date.now() - started) / 2000);
      expect(t.sim.stats().queryRequests - before).toBeLessThanOrEqual(intervals);
      for (const a of answers)
        expect(a.body.payment).toMatchObject({ status: 'review', statusReason: 'AMOUNT_MISMATCH' });
    });

    it('reports but never changes a review payment with an amount mismatch', async () => {
      const orderId = await order(80);
      const res = await push(orderId, 80, '254700000007');
      const { paymentId, merchantRequestId } = res.body;
      const checkoutRequestId = fullCheckoutRequestId(t.sim, res.body);
      const cb = await t
        .http()
        .post(`/payments/callback/${paymentId}/${callbackToken(TEST_CALLBACK_SECRET, paymentId)}`)
        .send(successCallback(merchantRequestId, checkoutRequestId, 1, 'RCN7654321'));
      expect(cb.status).toBe(200);
      expect(await payment(paymentId)).toMatchObject({ status: 'review', statusReason: 'AMOUNT_MISMATCH' });
      await t.sim.resolve(checkoutRequestId, 0);
      const r = await t.http().post(`/payments/${paymentId}/reconcile`).set('Authorization', manager);
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({
        action: 'already_final',
        payment: { status: 'review', statusReason: 'AMOUNT_MISMATCH' },
        provider: { resultCode: '0' },
      });
    });
    it('lists review payments for managers of the shop only, newest first, paged', async () => {
      const res = await t.http().get('/payments/review').query({ limit: 1 }).set('Authorization', manager);
      expect(res.status).toBe(200);
      expect(res.body.items).toHaveLength(1);
      expect(res.body.items[0].status).toBe('review');
      expect(res.body.nextCursor).toEqual(expect.any(String));
      const page2 = await t
        .http()
        .get('/payments/review')
        .query({ limit: 1, cursor: res.body.nextCursor })
        .set('Authorization', manager);
      expect(page2.status).toBe(200);
      expect(page2.body.items).toHaveLength(1);
      expect(page2.body.items[0].paymentId).not.toBe(res.body.items[0].paymentId);

      expect((await t.http().get('/payments/review').set('Authorization', cashier)).status).toBe(403);
      const other = await t
        .http()
        .get('/payments/review')
        .set('Authorization', `Bearer ${t.token('shop-2', 'manager', 'm2')}`);
      expect(other.status).toBe(200);
      expect(other.body.items).toEqual([]);
      for (const q of [
        { limit: 0 },
        { limit: 101 },
        { limit: 'x' },
        { cursor: 'not a cursor!' },
        { cursor: 'bm9wZQ' },
      ]) {
        const bad = await t.http().get('/payments/review').query(q).set('Authorization', manager);
        expect(bad.status).toBe(400);
        expect(bad.body.message).toEqual(expect.any(String));
      }
    });
  });
});
