import { sql } from 'drizzle-orm';
import request from 'supertest';
import { callbackToken } from '../src/payments/providers/mpesa/callback-token';
import { ReconcilerService } from '../src/payments/reconciler.service';
import { timeKeyOf } from '../src/reconciliation/statement-row';
import { successCallback } from './helpers/callbacks';
import { fullCheckoutRequestId, startTestApp, TEST_CALLBACK_SECRET, TestApp, waitFor } from './helpers/test-app';

const rowsOf = <T>(res: unknown): T[] => (res as { rows?: T[] }).rows ?? (res as T[]);

/**
 * Issue 8, "Money": a late genuine success never takes an order past its total (8.1); a payment
 * whose outcome is unknown keeps its order blocked until it is settled (by its late truth or the
 * statement) or a manager releases it (8.2); receipts are compared upper-case (8.3).
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
        MPESA_UNRESOLVED_REVIEW_AFTER_SECONDS: '1',
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

  const push = (orderId: string, amount: number, phoneNumber: string, auth = cashier) =>
    t.http().post('/payments/stk-push').set('Authorization', auth).send({ phoneNumber, amount, orderId });
  /** The push's answer with the full CheckoutRequestID (the answer's is masked), to drive Daraja's side. */
  const withFullId = <B extends { paymentId: string; checkoutRequestId: string }>(body: B): B => ({
    ...body,
    checkoutRequestId: fullCheckoutRequestId(t.sim, body),
  });
  // Callbacks apply after their answer: every read first waits for the ones acknowledged so far.
  const payment = async (id: string, auth = cashier) =>
    (await t.callbacksApplied(), await t.http().get(`/payments/${id}`).set('Authorization', auth)).body;
  const orderOf = async (id: string, auth = cashier) =>
    (await t.callbacksApplied(), await t.http().get(`/orders/${id}`).set('Authorization', auth)).body;
  const reviewIds = async () =>
    (
      (await t.http().get('/payments/review').query({ limit: 100 }).set('Authorization', manager)).body.items as {
        paymentId: string;
      }[]
    ).map((p) => p.paymentId);
  const release = (id: string, body: object = { reason: 'Customer shows no M-Pesa SMS for it' }, auth = manager) =>
    t.http().post(`/payments/${id}/release`).set('Authorization', auth).send(body);
  const capabilityUrl = (id: string) => `/payments/callback/${id}/${callbackToken(TEST_CALLBACK_SECRET, id)}`;

  /** A push to a phone that never answers, parked by the reconciler as review/OUTCOME_UNKNOWN. */
  async function parkedPush(orderId: string, amount: number, auth = cashier) {
    const res = await push(orderId, amount, '254700000007', auth);
    expect(res.status).toBe(201);
    await t.db.execute(
      sql`update payments set created_at = now() - interval '2 hours', next_check_at = null where id = ${res.body.paymentId}`,
    );
    expect((await reconciler.tick()).actions.moved_to_review).toBe(1);
    expect(await payment(res.body.paymentId, auth)).toMatchObject({
      status: 'review',
      statusReason: 'OUTCOME_UNKNOWN',
    });
    return withFullId(res.body as { paymentId: string; checkoutRequestId: string; merchantRequestId: string });
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
      expect((await release(first.paymentId)).status).toBe(200);
      await paidPush(orderId, 60);
      expect(await orderOf(orderId)).toMatchObject({ status: 'partially_paid', paid: 60, outstanding: 40 });

      // Daraja's genuine late success for the first push, on its own URL.
      await t.sim.resolve(first.checkoutRequestId, 0);
      await t.sim.waitForCallbacks(first.checkoutRequestId, 1, 5000);
      const p = await waitFor(async () => {
        const b = await payment(first.paymentId);
        return b.status !== 'review' || b.statusReason !== 'OUTCOME_UNKNOWN' ? b : undefined;
      });
      expect(p).toMatchObject({
        status: 'review',
        statusReason: 'EXCEEDS_OUTSTANDING',
        mpesaReceiptNumber: expect.stringMatching(/^[A-Z0-9]{10}$/),
      });
      expect(await orderOf(orderId)).toMatchObject({ status: 'partially_paid', paid: 60, outstanding: 40 });
      expect(await reviewIds()).toContain(first.paymentId);
    }, 30000);

    it('issue 8.1: POST /payments/:id/reconcile that learns a late success exceeding what is owed puts it in review, not paid 170 of 100', async () => {
      const orderId = await order(100);
      const first = await parkedPush(orderId, 100);
      expect((await release(first.paymentId)).status).toBe(200);
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
      expect((await release(a.paymentId)).status).toBe(200);
      const b = await parkedPush(orderId, 60);
      const [ra, rb] = await Promise.all([
        request(t.baseUrl)
          .post(capabilityUrl(a.paymentId))
          .send(successCallback(a.merchantRequestId, a.checkoutRequestId, 60, 'RCPTA00001')),
        request(t.baseUrl)
          .post(capabilityUrl(b.paymentId))
          .send(successCallback(b.merchantRequestId, b.checkoutRequestId, 60, 'RCPTB00001')),
      ]);
      expect([ra.status, rb.status]).toEqual([200, 200]);
      const states = [await payment(a.paymentId), await payment(b.paymentId)]
        .map((p) => `${p.status}:${p.statusReason}`)
        .sort();
      expect(states).toEqual(['completed:PAID', 'review:EXCEEDS_OUTSTANDING']);
      expect(await orderOf(orderId)).toMatchObject({ status: 'partially_paid', paid: 60, outstanding: 40 });
    }, 30000);
  });

  describe('finding 2: a payment whose outcome is unknown keeps its order blocked', () => {
    it('issue 8.2: a new push on an order whose payment is review/OUTCOME_UNKNOWN answers 409 PAYMENT_OUTCOME_UNKNOWN (why, what to do, the payment) and prompts nobody', async () => {
      const orderId = await order(100);
      const first = await parkedPush(orderId, 100);
      const pushesBefore = t.sim.stats().pushRequests;
      const again = await push(orderId, 100, '0712345678');
      expect(again.status).toBe(409);
      expect(again.body).toMatchObject({
        code: 'PAYMENT_OUTCOME_UNKNOWN',
        details: {
          payment: { paymentId: first.paymentId, status: 'review', statusReason: 'OUTCOME_UNKNOWN', releasedAt: null },
        },
      });
      expect(again.body.message).toMatch(/outcome is unknown/);
      expect(again.body.message).toMatch(/M-Pesa SMS/);
      expect(again.body.message).toMatch(/manager/);
      expect(t.sim.stats().pushRequests).toBe(pushesBefore);
      // Its own URL still settles it with the truth, which frees the order.
      await t.sim.resolve(first.checkoutRequestId, 1032);
      await waitFor(async () => (await payment(first.paymentId)).status === 'cancelled');
      expect((await push(orderId, 100, '0712345678')).status).toBe(201);
    }, 30000);

    it('issue 8.2: a push whose answer was lost (no CheckoutRequestID) is parked and keeps blocking its order', async () => {
      const orderId = await order(50);
      t.sim.setFaults({
        pushErrors: { count: 1, status: 503, errorCode: '503.001.01', errorMessage: 'Service Unavailable' },
      });
      const lost = await push(orderId, 50, '0712345678');
      t.sim.setFaults({});
      expect(lost.status).toBeGreaterThanOrEqual(500);
      const paymentId = lost.body.details.paymentId;
      await new Promise((r) => setTimeout(r, 1100)); // MPESA_UNRESOLVED_REVIEW_AFTER_SECONDS
      await t.db.execute(sql`update payments set next_check_at = null where id = ${paymentId}`);
      expect((await reconciler.tick()).actions.moved_to_review).toBe(1);
      expect(await payment(paymentId)).toMatchObject({
        status: 'review',
        statusReason: 'OUTCOME_UNKNOWN',
        checkoutRequestId: null,
      });
      const again = await t
        .http()
        .post('/payments/stk-push')
        .set('Authorization', cashier)
        .set('Idempotency-Key', `new-key-${orderId}`)
        .send({ phoneNumber: '0712345678', amount: 50, orderId });
      expect(again.status).toBe(409);
      expect(again.body).toMatchObject({ code: 'PAYMENT_OUTCOME_UNKNOWN', details: { payment: { paymentId } } });
    }, 30000);

    it('issue 8.2: a manager of the shop releases the order with a reason (audited); only such a payment, only once; then the order takes a new payment', async () => {
      const orderId = await order(80);
      const first = await parkedPush(orderId, 80);
      expect((await release(first.paymentId, { reason: 'no SMS' }, cashier)).status).toBe(403);
      expect(
        (await release(first.paymentId, { reason: 'no SMS' }, `Bearer ${t.token('shop-2', 'admin', 'admin-2')}`))
          .status,
      ).toBe(404);
      for (const body of [
        {},
        { reason: '' },
        { reason: '   ' },
        { reason: 'x'.repeat(501) },
        { reason: 42 },
        { reason: 'ok reason', extra: 1 },
      ]) {
        const bad = await release(first.paymentId, body);
        expect(bad.status).toBe(400);
        expect(bad.body).toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringMatching(/reason|extra/) });
      }
      expect((await payment(first.paymentId)).releasedAt).toBeNull();

      const ok = await release(first.paymentId, { reason: 'Customer shows no M-Pesa SMS; Daraja has no answer' });
      expect(ok.status).toBe(200);
      expect(ok.body).toMatchObject({
        paymentId: first.paymentId,
        status: 'review',
        statusReason: 'OUTCOME_UNKNOWN',
        releasedAt: expect.any(String),
      });
      const events = await t.db.execute(
        sql`select actor, data from payment_events where payment_id = ${first.paymentId} and type = 'order_released'`,
      );
      expect((events as unknown as { rows: unknown[] }).rows).toEqual([
        {
          actor: 'user:manager-1',
          data: expect.objectContaining({
            reason: 'Customer shows no M-Pesa SMS; Daraja has no answer',
            role: 'manager',
            orderId,
          }),
        },
      ]);
      const twice = await release(first.paymentId);
      expect(twice.status).toBe(409);
      expect(twice.body).toMatchObject({
        code: 'PAYMENT_NOT_RELEASABLE',
        message: expect.stringMatching(/already released/),
      });

      // The order is free: a new payment goes through.
      const second = await push(orderId, 80, '254700000007');
      expect(second.status).toBe(201);
      // An open payment and a completed one are not releasable.
      const open = await release(second.body.paymentId);
      expect(open.status).toBe(409);
      expect(open.body).toMatchObject({
        code: 'PAYMENT_NOT_RELEASABLE',
        message: expect.stringMatching(/still waiting/),
      });
      await t.sim.resolve(fullCheckoutRequestId(t.sim, second.body), 0);
      await waitFor(async () => (await payment(second.body.paymentId)).status === 'completed');
      const done = await release(second.body.paymentId);
      expect(done.status).toBe(409);
      expect(done.body).toMatchObject({
        code: 'PAYMENT_NOT_RELEASABLE',
        message: expect.stringMatching(/outcome is known/),
      });
    }, 30000);

    it('issue 8.2: after a release, the late truth of the released payment is still recorded: a success that still fits completes it', async () => {
      const orderId = await order(100);
      const first = await parkedPush(orderId, 40);
      expect((await release(first.paymentId)).status).toBe(200);
      await paidPush(orderId, 60);
      await t.sim.resolve(first.checkoutRequestId, 0);
      await waitFor(async () => (await payment(first.paymentId)).status === 'completed');
      expect(await orderOf(orderId)).toMatchObject({ status: 'paid', paid: 100, outstanding: 0 });
    }, 30000);

    describe('statement matching settles a payment whose outcome is unknown only when exactly one fits', () => {
      const nairobi = (d: Date) => {
        const k = timeKeyOf(d);
        return `${k.slice(0, 4)}-${k.slice(4, 6)}-${k.slice(6, 8)} ${k.slice(8, 10)}:${k.slice(10, 12)}:${k.slice(12, 14)}`;
      };
      const upload = (csv: string, auth: string) =>
        t
          .http()
          .post('/reconciliation/statements')
          .set('Authorization', auth)
          .set('Content-Type', 'text/csv')
          .send(csv);
      const HEADER = 'Receipt No.,Completion Time,Details,Transaction Status,Paid In';

      it('issue 8.2: a row with a new receipt whose amount, phone and time fit exactly one unknown payment settles it', async () => {
        const shopCashier = `Bearer ${t.token('shop-stmt-1', 'cashier', 'c-s1')}`;
        const shopManager = `Bearer ${t.token('shop-stmt-1', 'manager', 'm-s1')}`;
        const orderId = await order(100, shopCashier);
        const first = await parkedPush(orderId, 100, shopCashier);
        const createdAt = new Date((await payment(first.paymentId, shopCashier)).createdAt);
        const csv = [
          HEADER,
          `RCSTMT0001,${nairobi(new Date(createdAt.getTime() + 45_000))},"Pay Bill from 254700000007 - JOHN DOE Acc. ${orderId}",Completed,100.00`,
        ].join('\n');
        const res = await upload(csv, shopManager);
        expect(res.status).toBe(200);
        expect(res.body.settledFromStatement).toEqual({
          count: 1,
          items: [
            expect.objectContaining({
              receipt: 'RCSTMT0001',
              line: 2,
              paymentId: first.paymentId,
              orderId,
              amount: 100,
              status: 'completed',
              statusReason: 'PAID',
            }),
          ],
        });
        expect(res.body.unknownReceipts.count).toBe(0);
        expect(res.body.possibleMatches.count).toBe(0);
        expect(JSON.stringify(res.body)).not.toMatch(/254700000007|JOHN/);
        expect(await payment(first.paymentId, shopCashier)).toMatchObject({
          status: 'completed',
          mpesaReceiptNumber: 'RCSTMT0001',
        });
        expect(await orderOf(orderId, shopCashier)).toMatchObject({ status: 'paid', paid: 100 });
        // Uploading it again changes nothing more: the receipt is matched now.
        const again = await upload(csv, shopManager);
        expect(again.body).toMatchObject({ matched: 1, settledFromStatement: { count: 0 } });
      }, 30000);

      it('issue 8.2: never when more than one payment or row could fit, or the phone is masked: listed for a person, nothing changed', async () => {
        const shopCashier = `Bearer ${t.token('shop-stmt-2', 'cashier', 'c-s2')}`;
        const shopManager = `Bearer ${t.token('shop-stmt-2', 'manager', 'm-s2')}`;
        const twinA = await parkedPush(await order(50, shopCashier), 50, shopCashier);
        const twinB = await parkedPush(await order(50, shopCashier), 50, shopCashier);
        const single = await parkedPush(await order(70, shopCashier), 70, shopCashier);
        const masked = await parkedPush(await order(80, shopCashier), 80, shopCashier);
        const at = nairobi(
          new Date(new Date((await payment(masked.paymentId, shopCashier)).createdAt).getTime() + 30_000),
        );
        const csv = [
          HEADER,
          `RCAMB00001,${at},Pay Bill from 254700000007 - A,Completed,50.00`, // fits twinA and twinB
          `RCTWO00001,${at},Pay Bill from 254700000007 - A,Completed,70.00`, // two rows fit `single`
          `RCTWO00002,${at},Pay Bill from 0700000007 - A,Completed,70.00`,
          `RCMSK00001,${at},Pay Bill from 2547******07 - A,Completed,80.00`, // only the masked phone fits
          `RCOTH00001,${at},Pay Bill from 254711111111 - B,Completed,80.00`, // another phone: fits nothing
        ].join('\n');
        const res = await upload(csv, shopManager);
        expect(res.status).toBe(200);
        expect(res.body.settledFromStatement.count).toBe(0);
        const why = Object.fromEntries(
          (
            res.body.possibleMatches.items as { receipt: string; why: string; candidates: { paymentId: string }[] }[]
          ).map((i) => [i.receipt, [i.why, i.candidates.map((c) => c.paymentId).sort()]]),
        );
        expect(why).toEqual({
          RCAMB00001: ['several_payments_fit', [twinA.paymentId, twinB.paymentId].sort()],
          RCTWO00001: ['several_rows_fit', [single.paymentId]],
          RCTWO00002: ['several_rows_fit', [single.paymentId]],
          RCMSK00001: ['phone_masked', [masked.paymentId]],
        });
        expect(res.body.unknownReceipts.count).toBe(5);
        for (const p of [twinA, twinB, single, masked])
          expect(await payment(p.paymentId, shopCashier)).toMatchObject({
            status: 'review',
            statusReason: 'OUTCOME_UNKNOWN',
            mpesaReceiptNumber: null,
          });
      }, 30000);
    });
  });

  describe('review: money defects found after the merge', () => {
    const nairobi = (d: Date) => {
      const k = timeKeyOf(d);
      return `${k.slice(0, 4)}-${k.slice(4, 6)}-${k.slice(6, 8)} ${k.slice(8, 10)}:${k.slice(10, 12)}:${k.slice(12, 14)}`;
    };
    const upload = (csv: string, auth: string) =>
      t.http().post('/reconciliation/statements').set('Authorization', auth).set('Content-Type', 'text/csv').send(csv);
    const HEADER = 'Receipt No.,Completion Time,Details,Transaction Status,Paid In';
    const shop = (name: string) => ({
      c: `Bearer ${t.token(name, 'cashier', `c-${name}`)}`,
      m: `Bearer ${t.token(name, 'manager', `m-${name}`)}`,
    });
    const events = async (id: string) =>
      rowsOf<{
        type: string;
        actor: string;
        from_status: string | null;
        to_status: string | null;
        data: Record<string, unknown>;
      }>(
        await t.db.execute(
          sql`select type, actor, from_status, to_status, data from payment_events where payment_id = ${id} order by id`,
        ),
      );
    const reviewItems = async (auth: string) =>
      (await t.http().get('/payments/review').query({ limit: 100 }).set('Authorization', auth)).body.items as Record<
        string,
        unknown
      >[];

    /** Paid, but Daraja's callback is lost: the manager's reconcile learns it by STK query (no receipt). Returns the receipt the customer got. */
    async function paidByQuery(orderId: string, amount: number, s: { c: string; m: string }) {
      const p = withFullId((await push(orderId, amount, '254700000007', s.c)).body);
      await t.sim.resolve(p.checkoutRequestId, 0, { callbackCopies: 0 });
      const rec = await t.http().post(`/payments/${p.paymentId}/reconcile`).set('Authorization', s.m);
      expect(rec.body.payment).toMatchObject({ status: 'completed', mpesaReceiptNumber: null });
      const receipt = t.sim.pushes().find((x) => x.checkoutRequestId === p.checkoutRequestId)!.receipt!;
      expect(receipt).toMatch(/^[A-Z0-9]{10}$/);
      return { ...(p as { paymentId: string; checkoutRequestId: string; merchantRequestId: string }), receipt };
    }

    /** A push whose answer was lost (no CheckoutRequestID): still open (`unresolved`) until the reconciler parks it. */
    async function lostPush(orderId: string, amount: number, auth: string): Promise<string> {
      t.sim.setFaults({
        pushErrors: { count: 1, status: 503, errorCode: '503.001.01', errorMessage: 'Service Unavailable' },
      });
      const lost = await push(orderId, amount, '254700000007', auth);
      t.sim.setFaults({});
      expect(lost.status).toBeGreaterThanOrEqual(500);
      return lost.body.details.paymentId as string;
    }

    async function parkLost(paymentId: string, auth: string): Promise<void> {
      await new Promise((r) => setTimeout(r, 1100)); // MPESA_UNRESOLVED_REVIEW_AFTER_SECONDS
      await t.db.execute(sql`update payments set next_check_at = null where id = ${paymentId}`);
      await reconciler.tick();
      expect(await payment(paymentId, auth)).toMatchObject({
        status: 'review',
        statusReason: 'OUTCOME_UNKNOWN',
        checkoutRequestId: null,
      });
    }

    it('review: one M-Pesa payment of 100 does not pay two orders: a statement row that could be a query-confirmed (receipt-less) payment never settles an unknown one; both are listed as possible', async () => {
      const s = shop('shop-rv-h');
      const o1 = await order(100, s.c);
      const first = await paidByQuery(o1, 100, s);
      // Order 2, same customer and amount: the push's answer is lost, it ends review/OUTCOME_UNKNOWN. The customer never paid it.
      const o2 = await order(100, s.c);
      const second = await lostPush(o2, 100, s.c);
      await parkLost(second, s.c);
      // The statement holds ONE row: the customer's one payment (order 1's money).
      const res = await upload(
        [
          HEADER,
          `${first.receipt},${nairobi(new Date(Date.now() + 5_000))},"Pay Bill from 254700000007 - JOHN DOE",Completed,100.00`,
        ].join('\n'),
        s.m,
      );
      expect(res.status).toBe(200);
      expect(res.body.settledFromStatement.count).toBe(0);
      expect(res.body.receiptsRecorded.count).toBe(0);
      expect(res.body.possibleMatches.items).toEqual([
        expect.objectContaining({
          receipt: first.receipt,
          why: 'several_payments_fit',
          candidates: expect.arrayContaining([
            expect.objectContaining({ paymentId: first.paymentId, status: 'completed' }),
            expect.objectContaining({ paymentId: second, status: 'review' }),
          ]),
        }),
      ]);
      expect(await payment(second, s.c)).toMatchObject({
        status: 'review',
        statusReason: 'OUTCOME_UNKNOWN',
        mpesaReceiptNumber: null,
      });
      expect(await payment(first.paymentId, s.c)).toMatchObject({ status: 'completed', mpesaReceiptNumber: null });
      expect(await orderOf(o2, s.c)).toMatchObject({ status: 'unpaid', paid: 0 });
    }, 40000);

    it("review: two halves of one order, the first confirmed by query (no receipt), the second unknown: the first half's statement row does not pay the order 100 on 50 received", async () => {
      const s = shop('shop-rv-h2');
      const o = await order(100, s.c);
      const first = await paidByQuery(o, 50, s);
      const second = await parkedPush(o, 50, s.c);
      // parkedPush aged it to let the reconciler give up; it was pushed moments after the first half.
      await t.db.execute(sql`update payments set created_at = now() where id = ${second.paymentId}`);
      const res = await upload(
        [
          HEADER,
          `${first.receipt},${nairobi(new Date(Date.now() + 5_000))},"Pay Bill from 254700000007 - J",Completed,50.00`,
        ].join('\n'),
        s.m,
      );
      expect(res.body.settledFromStatement.count).toBe(0);
      expect(res.body.possibleMatches.items.map((i: { why: string }) => i.why)).toEqual(['several_payments_fit']);
      expect(await payment(second.paymentId, s.c)).toMatchObject({ status: 'review', statusReason: 'OUTCOME_UNKNOWN' });
      expect(await orderOf(o, s.c)).toMatchObject({ status: 'partially_paid', paid: 50 });
    }, 40000);

    it('review: a statement row that only a receipt-less completed payment fits records its receipt on it (receipt_recorded, amount and status unchanged)', async () => {
      const s = shop('shop-rv-enrich');
      const o = await order(100, s.c);
      const first = await paidByQuery(o, 100, s);
      const csv = [
        HEADER,
        `${first.receipt},${nairobi(new Date(Date.now() + 5_000))},"Pay Bill from 254700000007 - JOHN DOE",Completed,100.00`,
      ].join('\n');
      const res = await upload(csv, s.m);
      expect(res.body).toMatchObject({
        settledFromStatement: { count: 0 },
        possibleMatches: { count: 0 },
        unknownReceipts: { count: 0 },
      });
      expect(res.body.receiptsRecorded).toEqual({
        count: 1,
        items: [
          expect.objectContaining({
            receipt: first.receipt,
            line: 2,
            paymentId: first.paymentId,
            orderId: o,
            amount: 100,
          }),
        ],
      });
      expect(await payment(first.paymentId, s.c)).toMatchObject({
        status: 'completed',
        statusReason: 'PAID',
        amount: 100,
        mpesaReceiptNumber: first.receipt,
      });
      expect(await orderOf(o, s.c)).toMatchObject({ status: 'paid', paid: 100 });
      expect((await events(first.paymentId)).filter((e) => e.type === 'receipt_recorded')).toEqual([
        expect.objectContaining({
          actor: 'user:m-shop-rv-enrich',
          data: expect.objectContaining({ source: 'statement', receipt: first.receipt }),
        }),
      ]);
      // Uploaded again, the row is simply matched.
      expect((await upload(csv, s.m)).body).toMatchObject({
        matched: 1,
        receiptsRecorded: { count: 0 },
        unknownReceipts: { count: 0 },
      });
    }, 40000);

    it('review: the statement does not settle an open payment Daraja knows (it has a CheckoutRequestID): a possible match only, and its genuine success then completes it', async () => {
      const s = shop('shop-rv-open');
      const o = await order(100, s.c);
      const p = withFullId((await push(o, 100, '254700000007', s.c)).body);
      const createdAt = new Date((await payment(p.paymentId, s.c)).createdAt);
      const res = await upload(
        [
          HEADER,
          `RCC2B00001,${nairobi(new Date(createdAt.getTime() + 20_000))},"Pay Bill from 254700000007 - JOHN DOE Acc. ${o}",Completed,100.00`,
        ].join('\n'),
        s.m,
      );
      expect(res.body.settledFromStatement.count).toBe(0);
      expect(res.body.possibleMatches.items).toEqual([
        expect.objectContaining({
          receipt: 'RCC2B00001',
          why: 'payment_still_open',
          candidates: [{ paymentId: p.paymentId, orderId: o, status: 'pending' }],
        }),
      ]);
      expect(await payment(p.paymentId, s.c)).toMatchObject({ status: 'pending', mpesaReceiptNumber: null });
      // The customer answers the prompt: Daraja's success with its own receipt is the truth.
      expect(
        (
          await request(t.baseUrl)
            .post(capabilityUrl(p.paymentId))
            .send(successCallback(p.merchantRequestId, p.checkoutRequestId, 100, 'RCSTK00001'))
        ).status,
      ).toBe(200);
      expect(await payment(p.paymentId, s.c)).toMatchObject({ status: 'completed', mpesaReceiptNumber: 'RCSTK00001' });
      expect(await orderOf(o, s.c)).toMatchObject({ status: 'paid', paid: 100 });
    }, 30000);

    it('review: the statement still settles an open payment without a CheckoutRequestID (its push answer was lost: no query can tell)', async () => {
      const s = shop('shop-rv-open-lost');
      const o = await order(100, s.c);
      const id = await lostPush(o, 100, s.c);
      expect(await payment(id, s.c)).toMatchObject({ status: 'unresolved', checkoutRequestId: null });
      const createdAt = new Date((await payment(id, s.c)).createdAt);
      const res = await upload(
        [
          HEADER,
          `RCLOST0001,${nairobi(new Date(createdAt.getTime() + 20_000))},"Pay Bill from 254700000007 - JOHN DOE",Completed,100.00`,
        ].join('\n'),
        s.m,
      );
      expect(res.body.settledFromStatement.items).toEqual([
        expect.objectContaining({ receipt: 'RCLOST0001', paymentId: id, status: 'completed' }),
      ]);
      expect(await orderOf(o, s.c)).toMatchObject({ status: 'paid', paid: 100 });
    }, 30000);

    it('review: a verified success with another receipt for a payment that already holds one is a second charge: a SECOND_CHARGE review row an operator sees, the payment and the order unchanged, and a repeat changes nothing', async () => {
      const s = shop('shop-rv-second');
      const o = await order(100, s.c);
      const p = await parkedPush(o, 100, s.c);
      const createdAt = new Date((await payment(p.paymentId, s.c)).createdAt);
      // The statement settles the unknown payment with a C2B receipt of the same customer...
      const st = await upload(
        [
          HEADER,
          `RCC2B00002,${nairobi(new Date(createdAt.getTime() + 20_000))},"Pay Bill from 254700000007 - JOHN DOE Acc. ${o}",Completed,100.00`,
        ].join('\n'),
        s.m,
      );
      expect(st.body.settledFromStatement.count).toBe(1);
      expect(await payment(p.paymentId, s.c)).toMatchObject({ status: 'completed', mpesaReceiptNumber: 'RCC2B00002' });
      // ...then Daraja's genuine success for the STK push arrives with its own receipt: the customer paid twice.
      const cb = () =>
        request(t.baseUrl)
          .post(capabilityUrl(p.paymentId))
          .send(successCallback(p.merchantRequestId, p.checkoutRequestId, 100, 'rcstk00002'));
      expect((await cb()).status).toBe(200);
      expect(await payment(p.paymentId, s.c)).toMatchObject({
        status: 'completed',
        statusReason: 'PAID',
        mpesaReceiptNumber: 'RCC2B00002',
      });
      expect(await orderOf(o, s.c)).toMatchObject({ status: 'paid', paid: 100, outstanding: 0 });
      const second = (await reviewItems(s.m)).filter((i) => i.statusReason === 'SECOND_CHARGE');
      expect(second).toEqual([
        expect.objectContaining({
          orderId: o,
          status: 'review',
          amount: 100,
          currency: 'KES',
          provider: 'mpesa',
          mpesaReceiptNumber: 'RCSTK00002',
          checkoutRequestId: null,
          phone: '2547******07',
        }),
      ]);
      const secondId = second[0].paymentId as string;
      expect((await events(p.paymentId)).filter((e) => e.type === 'integrity_failure')).toEqual([
        expect.objectContaining({
          from_status: 'completed',
          to_status: null,
          data: expect.objectContaining({
            problem: 'SECOND_CHARGE',
            secondChargePaymentId: secondId,
            receipt: 'RCSTK00002',
            keptReceipt: 'RCC2B00002',
          }),
        }),
      ]);
      expect((await events(secondId)).filter((e) => e.type === 'integrity_failure')).toEqual([
        expect.objectContaining({
          to_status: 'review',
          data: expect.objectContaining({
            problem: 'SECOND_CHARGE',
            firstPaymentId: p.paymentId,
            receipt: 'RCSTK00002',
          }),
        }),
      ]);
      // The same second receipt delivered again (and replayed by the reconciler) changes nothing.
      expect((await cb()).status).toBe(200);
      await reconciler.tick();
      expect(
        (await reviewItems(s.m)).filter((i) => i.statusReason === 'SECOND_CHARGE').map((i) => i.paymentId),
      ).toEqual([secondId]);
      expect(await payment(p.paymentId, s.c)).toMatchObject({ status: 'completed', mpesaReceiptNumber: 'RCC2B00002' });
      expect(await orderOf(o, s.c)).toMatchObject({ status: 'paid', paid: 100 });
      // It does not block or count toward the order: the order is simply paid.
      expect((await push(o, 1, '0712345678', s.c)).body.code).toBe('ORDER_ALREADY_PAID');
    }, 40000);

    it('review: a refund-due payment learned by query (EXCEEDS_OUTSTANDING, no receipt) records the receipt of its delayed callback (receipt_recorded)', async () => {
      const s = shop('shop-rv-refund');
      const o = await order(100, s.c);
      const first = await parkedPush(o, 100, s.c);
      expect((await release(first.paymentId, undefined, s.m)).status).toBe(200);
      const other = withFullId((await push(o, 70, '0712345678', s.c)).body);
      await waitFor(async () => (await payment(other.paymentId, s.c)).status === 'completed', 8000);
      await t.sim.resolve(first.checkoutRequestId, 0, { callbackCopies: 0 });
      const r = await t.http().post(`/payments/${first.paymentId}/reconcile`).set('Authorization', s.m);
      expect(r.body.payment).toMatchObject({
        status: 'review',
        statusReason: 'EXCEEDS_OUTSTANDING',
        mpesaReceiptNumber: null,
      });
      // Daraja's delayed callback carries the receipt the refund needs.
      expect(
        (
          await request(t.baseUrl)
            .post(capabilityUrl(first.paymentId))
            .send(successCallback(first.merchantRequestId, first.checkoutRequestId, 100, 'RCLATE0001'))
        ).status,
      ).toBe(200);
      expect(await payment(first.paymentId, s.c)).toMatchObject({
        status: 'review',
        statusReason: 'EXCEEDS_OUTSTANDING',
        amount: 100,
        mpesaReceiptNumber: 'RCLATE0001',
      });
      const stored = rowsOf<{ transaction_date: string }>(
        await t.db.execute(sql`select transaction_date from payments where id = ${first.paymentId}`),
      );
      expect(stored).toEqual([{ transaction_date: '20261126101500' }]);
      expect((await events(first.paymentId)).filter((e) => e.type === 'receipt_recorded')).toEqual([
        expect.objectContaining({ actor: 'daraja:callback', data: expect.objectContaining({ receipt: 'RCLATE0001' }) }),
      ]);
      expect(await orderOf(o, s.c)).toMatchObject({ status: 'partially_paid', paid: 70 });
    }, 40000);

    it('review: the 409 for a blocking payment without a CheckoutRequestID says a manager can release it or upload the M-Pesa statement (reconcile cannot learn anything), in a short message', async () => {
      const s = shop('shop-rv-409');
      const o = await order(100, s.c);
      const id = await lostPush(o, 100, s.c);
      await parkLost(id, s.c);
      const again = await push(o, 100, '0712345678', s.c);
      expect(again.status).toBe(409);
      expect(again.body).toMatchObject({
        code: 'PAYMENT_OUTCOME_UNKNOWN',
        details: { payment: { paymentId: id, checkoutRequestId: null } },
      });
      expect(again.body.message).toMatch(/M-Pesa SMS/);
      expect(again.body.message).toMatch(/manager/);
      expect(again.body.message).toMatch(/release/);
      expect(again.body.message).toMatch(/M-Pesa statement/);
      expect(again.body.message).not.toMatch(/reconcile/i);
      expect(again.body.message.length).toBeLessThanOrEqual(220);
      // One whose CheckoutRequestID is known can still be reconciled: that message says so.
      const o2 = await order(100, s.c);
      await parkedPush(o2, 100, s.c);
      const known = await push(o2, 100, '0712345678', s.c);
      expect(known.body.code).toBe('PAYMENT_OUTCOME_UNKNOWN');
      expect(known.body.message).toMatch(/reconcile/);
      expect(known.body.message.length).toBeLessThanOrEqual(220);
    }, 30000);

    it('review: POST /payments/:id/release refuses a lone surrogate, a reason under 3 characters once trimmed, and invisible characters only: 400 VALIDATION_FAILED, nothing released', async () => {
      const s = shop('shop-rv-reason');
      const p = await parkedPush(await order(100, s.c), 100, s.c);
      for (const raw of [
        '{"reason":"abc\\ud800def"}',
        '{"reason":"abc\\udc00\\ud800def"}',
        '{"reason":"   ab   "}',
        '{"reason":"\\u200b\\u200b\\u200b"}',
        '{"reason":"a\\u200bb\\u200b\\ufeff"}',
        '{"reason":"\\u00a0\\u00a0ab\\u3000"}',
      ]) {
        const res = await t
          .http()
          .post(`/payments/${p.paymentId}/release`)
          .set('Authorization', s.m)
          .set('Content-Type', 'application/json')
          .send(raw);
        expect({ raw, status: res.status, code: res.body.code }).toEqual({
          raw,
          status: 400,
          code: 'VALIDATION_FAILED',
        });
        expect(res.body.message).toMatch(/reason must be/);
      }
      expect((await payment(p.paymentId, s.c)).releasedAt).toBeNull();
      expect((await events(p.paymentId)).filter((e) => e.type === 'order_released')).toEqual([]);
      // A reason with emoji and surrounding blanks is fine, and stored trimmed.
      const ok = await release(p.paymentId, { reason: '  no SMS 😀 seen  ' }, s.m);
      expect(ok.status).toBe(200);
      expect((await events(p.paymentId)).filter((e) => e.type === 'order_released')).toEqual([
        expect.objectContaining({ data: expect.objectContaining({ reason: 'no SMS 😀 seen' }) }),
      ]);
    }, 30000);
  });

  describe('finding 3: receipts are compared upper-case', () => {
    it('issue 8.3: a success callback with rcptz00001 does not complete a second payment when RCPTZ00001 was already used', async () => {
      const first = await push(await order(30), 30, '254700000007');
      const secondOrder = await order(30);
      const second = await push(secondOrder, 30, '254700000007');
      const cb = (p: { paymentId: string; merchantRequestId: string; checkoutRequestId: string }, receipt: string) =>
        request(t.baseUrl)
          .post(capabilityUrl(p.paymentId))
          .send(successCallback(p.merchantRequestId, fullCheckoutRequestId(t.sim, p), 30, receipt));
      expect((await cb(first.body, 'RCPTZ00001')).status).toBe(200);
      expect(await payment(first.body.paymentId)).toMatchObject({
        status: 'completed',
        mpesaReceiptNumber: 'RCPTZ00001',
      });
      expect((await cb(second.body, 'rcptz00001')).status).toBe(200);
      expect(await payment(second.body.paymentId)).toMatchObject({
        status: 'review',
        statusReason: 'DUPLICATE_RECEIPT',
      });
      expect(await orderOf(secondOrder)).toMatchObject({ status: 'unpaid', paid: 0 });
    });

    it('issue 8.3: a receipt is stored trimmed and upper-case, so the statement matches it', async () => {
      const shopCashier = `Bearer ${t.token('shop-rcpt', 'cashier', 'c-r')}`;
      const orderId = await order(25, shopCashier);
      const p = withFullId((await push(orderId, 25, '254700000007', shopCashier)).body);
      expect(
        (
          await request(t.baseUrl)
            .post(capabilityUrl(p.paymentId))
            .send(successCallback(p.merchantRequestId, p.checkoutRequestId, 25, ' rcptw00003 '))
        ).status,
      ).toBe(200);
      expect(await payment(p.paymentId, shopCashier)).toMatchObject({
        status: 'completed',
        mpesaReceiptNumber: 'RCPTW00003',
      });
      const res = await t
        .http()
        .post('/reconciliation/statements')
        .set('Authorization', `Bearer ${t.token('shop-rcpt', 'manager', 'm-r')}`)
        .set('Content-Type', 'text/csv')
        .send('Receipt No.,Paid In\nRCPTW00003,25.00\n');
      expect(res.body).toMatchObject({ matched: 1, unknownReceipts: { count: 0 }, missingFromStatement: { count: 0 } });
    });
  });
});
