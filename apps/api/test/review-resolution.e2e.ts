import { sql } from 'drizzle-orm';
import request from 'supertest';
import { callbackToken } from '../src/payments/providers/mpesa/callback-token';
import { ReconcilerService } from '../src/payments/reconciler.service';
import { successCallback } from './helpers/callbacks';
import { buildOpenApi } from '../src/bootstrap';
import { fullCheckoutRequestId, startTestApp, TEST_CALLBACK_SECRET, TestApp, waitFor } from './helpers/test-app';

const SILENT_PHONE = '254700000007';

/**
 * Issue 11, "a way out of review": each reason a payment that took the customer's money ends in
 * review (PAID_AFTER_CLOSE, ORDER_ALREADY_PAID, EXCEEDS_OUTSTANDING, SECOND_CHARGE), produced
 * through HTTP with the Daraja simulator, then resolved by a manager with POST /payments/:id/resolve:
 * accept (the money stays against an order that owes it), release (closed with a note) — and
 * refund, in mpesa-refunds.e2e.ts, where reversals are. The reconciler runs when a test calls tick().
 */
describe('issue 11: resolving payments in review through HTTP', () => {
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
        MPESA_STATUS_QUERY_AFTER_SECONDS: '3600',
      },
    });
    reconciler = t.app.get(ReconcilerService);
    cashier = `Bearer ${t.token()}`;
    manager = `Bearer ${t.token('shop-1', 'manager', 'manager-1')}`;
  });
  afterAll(() => t.close());

  async function order(total: number): Promise<string> {
    const id = `RSV-${++n}`;
    expect((await t.http().post('/orders').set('Authorization', cashier).send({ id, total })).status).toBe(201);
    return id;
  }
  const push = (orderId: string, amount: number, phoneNumber = SILENT_PHONE) =>
    t.http().post('/payments/stk-push').set('Authorization', cashier).send({ phoneNumber, amount, orderId });
  // Callbacks apply after their answer: reads first wait for the ones acknowledged so far.
  const payment = async (id: string) =>
    (await t.callbacksApplied(), await t.http().get(`/payments/${id}`).set('Authorization', cashier)).body;
  const orderOf = async (id: string) =>
    (await t.callbacksApplied(), await t.http().get(`/orders/${id}`).set('Authorization', cashier)).body;
  const reviewIds = async () =>
    (
      (await t.http().get('/payments/review').query({ limit: 100 }).set('Authorization', manager)).body.items as {
        paymentId: string;
      }[]
    ).map((p) => p.paymentId);
  const resolve = (id: string, body: object, auth = manager) =>
    t.http().post(`/payments/${id}/resolve`).set('Authorization', auth).send(body);
  const lateSuccess = (
    p: { paymentId: string; merchantRequestId: string; checkoutRequestId: string },
    amount: number,
    receipt: string,
  ) =>
    request(t.baseUrl)
      .post(`/payments/callback/${p.paymentId}/${callbackToken(TEST_CALLBACK_SECRET, p.paymentId)}`)
      .send(successCallback(p.merchantRequestId, fullCheckoutRequestId(t.sim, p), amount, receipt));
  const receipt = () => `RSV${String(++n).padStart(7, '0')}`;

  async function paidPush(orderId: string, amount: number) {
    const res = await push(orderId, amount, '0712345678');
    expect(res.status).toBe(201);
    await waitFor(async () => (await payment(res.body.paymentId)).status === 'completed');
    return res.body as { paymentId: string; merchantRequestId: string; checkoutRequestId: string };
  }

  /** A push parked as OUTCOME_UNKNOWN whose order a manager released. */
  async function releasedPush(orderId: string, amount: number) {
    const res = await push(orderId, amount);
    expect(res.status).toBe(201);
    await t.db.execute(
      sql`update payments set created_at = now() - interval '2 hours', next_check_at = null where id = ${res.body.paymentId}`,
    );
    expect((await reconciler.tick()).actions.moved_to_review).toBe(1);
    const rel = await t
      .http()
      .post(`/payments/${res.body.paymentId}/release`)
      .set('Authorization', manager)
      .send({ reason: 'customer shows no SMS' });
    expect(rel.status).toBe(200);
    return res.body as { paymentId: string; merchantRequestId: string; checkoutRequestId: string };
  }

  async function inReview(id: string, reason: string) {
    const p = await waitFor(async () => {
      const b = await payment(id);
      return b.status === 'review' && b.statusReason === reason ? b : undefined;
    });
    expect(await reviewIds()).toContain(id);
    return p;
  }

  /** PAID_AFTER_CLOSE: the customer cancelled, then Daraja reports a success after all. */
  async function paidAfterClose(total = 100) {
    const orderId = await order(total);
    const res = await push(orderId, total);
    await t.sim.resolve(fullCheckoutRequestId(t.sim, res.body), 1032);
    await waitFor(async () => (await payment(res.body.paymentId)).status === 'cancelled');
    expect((await lateSuccess(res.body, total, receipt())).status).toBe(200);
    await inReview(res.body.paymentId, 'PAID_AFTER_CLOSE');
    return { orderId, paymentId: res.body.paymentId as string };
  }

  /** ORDER_ALREADY_PAID: a released unknown payment succeeds after another payment paid the order. */
  async function orderAlreadyPaid(total = 100) {
    const orderId = await order(total);
    const first = await releasedPush(orderId, total);
    await paidPush(orderId, total);
    expect((await lateSuccess(first, total, receipt())).status).toBe(200);
    await inReview(first.paymentId, 'ORDER_ALREADY_PAID');
    return { orderId, paymentId: first.paymentId };
  }

  /** EXCEEDS_OUTSTANDING: a released unknown payment succeeds after part of the order was paid. */
  async function exceedsOutstanding(total = 100) {
    const orderId = await order(total);
    const first = await releasedPush(orderId, total);
    await paidPush(orderId, 60);
    expect((await lateSuccess(first, total, receipt())).status).toBe(200);
    await inReview(first.paymentId, 'EXCEEDS_OUTSTANDING');
    return { orderId, paymentId: first.paymentId };
  }

  /** SECOND_CHARGE: a verified success with another receipt for a payment that already holds one. */
  async function secondCharge(total = 100) {
    const orderId = await order(total);
    const paid = await paidPush(orderId, total);
    expect((await lateSuccess(paid, total, receipt())).status).toBe(200);
    const second = await waitFor(async () => {
      const rows = (await t.db.execute(
        sql`select id from payments where order_id = ${orderId} and status_reason = 'SECOND_CHARGE'`,
      )) as unknown as { rows?: { id: string }[] } | { id: string }[];
      const list = (rows as { rows?: { id: string }[] }).rows ?? (rows as { id: string }[]);
      return list[0]?.id;
    });
    await inReview(second, 'SECOND_CHARGE');
    return { orderId, paymentId: second };
  }

  it('PAID_AFTER_CLOSE accepted: the money stays against its own order, which the cancelled push never paid', async () => {
    const { orderId, paymentId } = await paidAfterClose();
    expect(await orderOf(orderId)).toMatchObject({ status: 'unpaid', paid: 0 });
    const res = await resolve(paymentId, { action: 'accept', note: 'Customer paid after all; goods handed over' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ payment: { status: 'completed', resolution: 'accepted', orderId }, refund: null });
    expect(await orderOf(orderId)).toMatchObject({ status: 'paid', paid: 100, outstanding: 0 });
    expect(await reviewIds()).not.toContain(paymentId);
    // Resolved once: a second resolution is refused and changes nothing.
    const again = await resolve(paymentId, { action: 'release', note: 'second try' });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('PAYMENT_NOT_IN_REVIEW');
  }, 30000);

  it('ORDER_ALREADY_PAID accepted: refused against its own paid order (409, nothing changed), kept against a new order that owes it', async () => {
    const { orderId, paymentId } = await orderAlreadyPaid();
    const own = await resolve(paymentId, { action: 'accept', note: 'keep it' });
    expect(own.status).toBe(409);
    expect(own.body).toMatchObject({ code: 'ORDER_CANNOT_TAKE_PAYMENT' });
    expect(own.body.message).toContain('past its total');
    expect(await payment(paymentId)).toMatchObject({ status: 'review', resolution: null });
    const next = await order(100);
    const res = await resolve(paymentId, {
      action: 'accept',
      note: 'customer takes the goods of a new order',
      orderId: next,
    });
    expect(res.status).toBe(200);
    expect(res.body.payment).toMatchObject({ status: 'completed', orderId: next, resolution: 'accepted' });
    expect(await orderOf(next)).toMatchObject({ status: 'paid', paid: 100 });
    expect(await orderOf(orderId)).toMatchObject({ status: 'paid', paid: 100 });
  }, 30000);

  it('EXCEEDS_OUTSTANDING released with a note: it leaves the review list, nothing is sent, the order is unchanged', async () => {
    const { orderId, paymentId } = await exceedsOutstanding();
    const res = await resolve(paymentId, { action: 'release', note: 'Refunded in cash at the till' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ payment: { status: 'review', resolution: 'released' }, refund: null });
    expect(await reviewIds()).not.toContain(paymentId);
    expect(await orderOf(orderId)).toMatchObject({ status: 'partially_paid', paid: 60, outstanding: 40 });
    const refunds = await t.http().get(`/payments/${paymentId}/refunds`).set('Authorization', manager);
    expect(refunds.body).toEqual({ items: [] });
    const events = (await t.db.execute(
      sql`select type, actor, data from payment_events where payment_id = ${paymentId} and type = 'review_resolved'`,
    )) as unknown as { rows?: unknown[] };
    expect((events.rows ?? (events as unknown as unknown[])).length).toBe(1);
  }, 30000);

  it('SECOND_CHARGE: accept is refused while it would overpay; release closes it; a cashier and another shop are refused', async () => {
    const { paymentId } = await secondCharge();
    expect((await resolve(paymentId, { action: 'release', note: 'x y z' }, cashier)).status).toBe(403);
    const other = await resolve(
      paymentId,
      { action: 'release', note: 'not mine' },
      `Bearer ${t.token('shop-2', 'manager', 'm2')}`,
    );
    expect(other.status).toBe(404);
    const accept = await resolve(paymentId, { action: 'accept', note: 'keep it' });
    expect(accept.status).toBe(409);
    expect(accept.body.code).toBe('ORDER_CANNOT_TAKE_PAYMENT');
    const rel = await resolve(paymentId, { action: 'release', note: 'Customer agreed to store credit' });
    expect(rel.status).toBe(200);
    expect(rel.body.payment.resolution).toBe('released');
  }, 30000);

  it('a payment whose outcome is unknown: release frees its order (as /release does); refund and accept are refused', async () => {
    const orderId = await order(50);
    const res = await push(orderId, 50);
    await t.db.execute(
      sql`update payments set created_at = now() - interval '2 hours', next_check_at = null where id = ${res.body.paymentId}`,
    );
    expect((await reconciler.tick()).actions.moved_to_review).toBe(1);
    for (const action of ['refund', 'accept']) {
      const r = await resolve(res.body.paymentId, { action, note: 'try it' });
      expect(r.status).toBe(409);
      expect(r.body.code).toBe('PAYMENT_NOT_RESOLVABLE');
    }
    const rel = await resolve(res.body.paymentId, { action: 'release', note: 'customer has no SMS' });
    expect(rel.status).toBe(200);
    expect(rel.body.payment.releasedAt).not.toBeNull();
    expect((await push(orderId, 50, '0712345678')).status).toBe(201);
  }, 30000);

  it("GET /refunds lists the shop's refunds for a manager only, filtered by a known status", async () => {
    expect((await t.http().get('/refunds').set('Authorization', cashier)).status).toBe(403);
    const bad = await t.http().get('/refunds').query({ status: 'lost' }).set('Authorization', manager);
    expect(bad.status).toBe(400);
    expect(bad.body.message).toContain('status must be one of');
    const ok = await t.http().get('/refunds').query({ status: 'review', limit: 5 }).set('Authorization', manager);
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ items: [] });
  });

  it('review: a payment released with a note cannot be refunded afterwards (the money was settled another way): 409, nothing sent', async () => {
    const { paymentId } = await exceedsOutstanding();
    expect((await resolve(paymentId, { action: 'release', note: 'Refunded in cash at the till' })).status).toBe(200);
    const res = await t
      .http()
      .post(`/payments/${paymentId}/refunds`)
      .set('Authorization', manager)
      .send({ reason: 'customer asks again' });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('PAYMENT_RELEASED');
    expect(res.body.message).toContain('Refunded in cash at the till');
    expect((await t.http().get(`/payments/${paymentId}/refunds`).set('Authorization', manager)).body).toEqual({
      items: [],
    });
  }, 30000);

  it('review: resolve by refund retried with the same Idempotency-Key replays the first answer (one refund)', async () => {
    const { paymentId } = await paidAfterClose(80);
    const send = () =>
      t
        .http()
        .post(`/payments/${paymentId}/resolve`)
        .set('Authorization', manager)
        .set('Idempotency-Key', `resolve-${paymentId}`)
        .send({ action: 'refund', note: 'customer cancelled, then paid' });
    const first = await send();
    expect(first.status).toBe(201);
    const again = await send();
    expect(again.status).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body.refund.refundId).toBe(first.body.refund.refundId);
    const list = await t.http().get(`/payments/${paymentId}/refunds`).set('Authorization', manager);
    expect(list.body.items).toHaveLength(1);
  }, 30000);

  it('review: accept against an order with a payment still waiting for the customer is refused (it could be paid twice)', async () => {
    const { paymentId } = await paidAfterClose(90);
    const busy = await order(90);
    expect((await push(busy, 90)).status).toBe(201); // waits for the customer
    const res = await resolve(paymentId, { action: 'accept', note: 'keep it', orderId: busy });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('ORDER_HAS_OPEN_PAYMENT');
    expect(await payment(paymentId)).toMatchObject({ status: 'review', resolution: null });
    expect(await orderOf(busy)).toMatchObject({ status: 'unpaid', paid: 0 });
  }, 30000);

  it('review: accept racing a new push on the same order: never both (the order is locked by each before it is written)', async () => {
    for (let i = 0; i < 6; i++) {
      const { paymentId } = await paidAfterClose(70);
      const target = await order(70);
      const [acc, pu] = await Promise.all([
        resolve(paymentId, { action: 'accept', note: 'keep it', orderId: target }),
        push(target, 70),
      ]);
      expect([acc.status, pu.status]).not.toEqual([200, 201]);
      expect([200, 201]).toContain(acc.status === 200 ? 200 : pu.status);
      // Clear the pending push so the next round starts clean.
      if (pu.status === 201) await t.sim.resolve(fullCheckoutRequestId(t.sim, pu.body), 1032);
    }
  }, 60000);

  it('review: an Idempotency-Key first used to refund a payment is refused for another action', async () => {
    const { paymentId } = await paidAfterClose(60);
    const key = `resolve-reuse-${paymentId}`;
    const first = await t
      .http()
      .post(`/payments/${paymentId}/resolve`)
      .set('Authorization', manager)
      .set('Idempotency-Key', key)
      .send({ action: 'refund', note: 'customer cancelled, then paid' });
    expect(first.status).toBe(201);
    const other = await t
      .http()
      .post(`/payments/${paymentId}/resolve`)
      .set('Authorization', manager)
      .set('Idempotency-Key', key)
      .send({ action: 'release', note: 'closing it instead' });
    expect(other.status).toBe(409);
    expect(other.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
  }, 30000);

  it('OpenAPI: the refund routes declare their path parameters, so "Try it out" can fill them', () => {
    const doc = buildOpenApi(t.app);
    const params = (path: string, method: 'get' | 'post') =>
      ((doc.paths[path]?.[method]?.parameters ?? []) as { name: string; in: string }[])
        .filter((p) => p.in === 'path')
        .map((p) => p.name);
    expect(params('/payments/{id}/refunds', 'post')).toEqual(['id']);
    expect(params('/payments/{id}/resolve', 'post')).toEqual(['id']);
    expect(params('/refunds/{refundId}', 'get')).toEqual(['refundId']);
    expect(params('/refunds/{refundId}/settle', 'post')).toEqual(['refundId']);
    expect(params('/orders/{id}', 'get')).toEqual(['id']);
  });
});
