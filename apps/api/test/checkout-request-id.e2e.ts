import { sql } from 'drizzle-orm';
import request from 'supertest';
import { successCallback } from './helpers/callbacks';
import { openSse } from './helpers/sse';
import { fullCheckoutRequestId, startTestApp, TestApp, waitFor } from './helpers/test-app';

/**
 * Daraja's CheckoutRequestID ends with the payer's 9-digit national number
 * (`ws_CO_13102022154520280712345678` for 254712345678), and the simulator issues them the same way.
 * So no answer of the API may carry the id in full: through HTTP, every route that shows a payment
 * (push, status, reads, history, the order, receipts, the live stream, the review list, a refund)
 * must hold neither the national number nor the MSISDN. And stk-status must still find a payment
 * by the id as it was answered (masked) as well as by the full id (copied from Daraja).
 */

const NATIONAL = '712345678';
const MSISDN = '254712345678';
const SHOP = 'shop-ckid';

type Rows<T> = { rows: T[] };
const rowsOf = <T>(r: unknown): T[] => (r as Rows<T>).rows ?? (r as T[]);

describe('the CheckoutRequestID in answers (it ends with the payer’s number)', () => {
  let t: TestApp;
  let cashier: string;
  let manager: string;
  let n = 0;
  /** A completed payment and one in review, both paid from NATIONAL, with their answers. */
  let paid: { paymentId: string; orderId: string; masked: string; full: string };
  let reviewed: { paymentId: string; masked: string; full: string };
  const answers: { route: string; text: string }[] = [];
  const seen = (route: string, body: unknown) =>
    answers.push({ route, text: typeof body === 'string' ? body : JSON.stringify(body) });

  beforeAll(async () => {
    // The customer answers only when the test says.
    t = await startTestApp({
      sim: { callbackDelayMs: 3_600_000, resultDelayMs: 50 },
      env: { RECONCILER_ENABLED: 'false', MPESA_REVERSAL_WAIT_SECONDS: '0' },
    });
    cashier = `Bearer ${t.token(SHOP)}`;
    manager = `Bearer ${t.token(SHOP, 'manager', 'mgr-ckid')}`;

    const push = async (amount: number) => {
      const orderId = `CKID-${++n}`;
      const order = await t.http().post('/orders').set('Authorization', cashier).send({ id: orderId, total: amount });
      expect(order.status).toBe(201);
      const res = await t
        .http()
        .post('/payments/stk-push')
        .set('Authorization', cashier)
        .send({ phoneNumber: `0${NATIONAL}`, amount, orderId });
      expect(res.status).toBe(201);
      seen('POST /payments/stk-push', res.body);
      const [row] = rowsOf<{ id: string }>(
        await t.db.execute(sql`select checkout_request_id as id from payments where id = ${res.body.paymentId}`),
      );
      expect(row.id).toMatch(new RegExp(`^ws_CO_\\d+${NATIONAL}$`));
      return { paymentId: res.body.paymentId as string, orderId, masked: res.body.checkoutRequestId, full: row.id };
    };

    // Paid: followed on the live stream from pending to completed.
    paid = await push(100);
    const stream = await openSse(`${t.baseUrl}/payments/${paid.paymentId}/events`, { Authorization: cashier });
    expect(stream.status).toBe(200);
    await stream.waitFor((events) => events.some((e) => e.data.includes('"pending"')));
    await t.sim.resolve(paid.full, 0);
    await stream.waitForEnd();
    stream.close();
    seen('GET /payments/:id/events', stream.events);
    expect(stream.events.some((e) => e.data.includes('"completed"'))).toBe(true);

    // In review: a callback for another amount on its own callback URL.
    const r = await push(60);
    const path = new URL(t.sim.getPush(r.full)!.callbackUrl).pathname;
    const wrong = await request(t.baseUrl)
      .post(path)
      .send(successCallback(t.sim.getPush(r.full)!.merchantRequestId, r.full, 61, 'CKIDREV001', Number(MSISDN)));
    expect(wrong.status).toBe(200);
    await waitFor(async () => {
      const v = await t.http().get(`/payments/${r.paymentId}`).set('Authorization', cashier);
      return v.body.status === 'review';
    });
    reviewed = r;
  });
  afterAll(() => t?.close());

  it('no answer about the payment holds the payer’s number (national or MSISDN)', async () => {
    const get = async (route: string, path: string, auth = cashier) => {
      const res = await t.http().get(path).set('Authorization', auth);
      expect({ route, status: res.status }).toEqual({ route, status: 200 });
      seen(route, res.headers['content-type']?.startsWith('application/json') ? res.body : res.text);
      return res;
    };
    const status = await get(
      'GET /payments/stk-status',
      `/payments/stk-status?checkoutRequestId=${encodeURIComponent(paid.masked)}`,
    );
    expect(status.body).toMatchObject({ paymentId: paid.paymentId, status: 'completed' });
    const full = await get(
      'GET /payments/stk-status (full id)',
      `/payments/stk-status?checkoutRequestId=${encodeURIComponent(paid.full)}`,
    );
    expect(full.body.paymentId).toBe(paid.paymentId);
    await get('GET /payments/:id', `/payments/${paid.paymentId}`);
    await get('GET /payments/:id (review)', `/payments/${reviewed.paymentId}`);
    const history = await get('GET /payments', '/payments');
    expect(JSON.stringify(history.body)).toContain(paid.paymentId);
    await get('GET /orders/:id', `/orders/${paid.orderId}`);
    await get('GET /payments/:id/receipt', `/payments/${paid.paymentId}/receipt`);
    await get('GET /payments/:id/receipt/print', `/payments/${paid.paymentId}/receipt/print`);
    const review = await get('GET /payments/review', '/payments/review', manager);
    expect(JSON.stringify(review.body)).toContain(reviewed.paymentId);

    const refund = await t
      .http()
      .post(`/payments/${paid.paymentId}/refunds`)
      .set('Authorization', manager)
      .send({ reason: 'Customer returned the item' });
    expect(refund.status).toBe(201);
    seen('POST /payments/:id/refunds', refund.body);

    for (const a of answers) {
      expect({ route: a.route, national: a.text.includes(NATIONAL), msisdn: a.text.includes(MSISDN) }).toEqual({
        route: a.route,
        national: false,
        msisdn: false,
      });
    }
    // What is answered is the masked form: the stamp, then the number's last 2 digits.
    expect(paid.masked).toBe(`${paid.full.slice(0, -9)}*******${NATIONAL.slice(-2)}`);
    expect(status.body.checkoutRequestId).toBe(paid.masked);
  });

  it('an idempotent replay of an answer stored with the full id (before ids were masked) answers it masked', async () => {
    const orderId = `CKID-${++n}`;
    expect((await t.http().post('/orders').set('Authorization', cashier).send({ id: orderId, total: 40 })).status).toBe(
      201,
    );
    const send = () =>
      t
        .http()
        .post('/payments/stk-push')
        .set('Authorization', cashier)
        .set('Idempotency-Key', `ckid-replay-${orderId}`)
        .send({ phoneNumber: `0${NATIONAL}`, amount: 40, orderId });
    const first = await send();
    expect(first.status).toBe(201);
    const full = fullCheckoutRequestId(t.sim, first.body);
    // As an answer stored by the earlier code was: the id in full.
    await t.db.execute(
      sql`update idempotency_keys set response_body = jsonb_set(response_body, '{checkoutRequestId}', to_jsonb(${full}::text)) where payment_id = ${first.body.paymentId}`,
    );
    const [stored] = rowsOf<{ body: string }>(
      await t.db.execute(
        sql`select response_body::text as body from idempotency_keys where payment_id = ${first.body.paymentId}`,
      ),
    );
    expect(stored.body).toContain(full);
    const again = await send();
    expect({ status: again.status, replayed: again.headers['idempotent-replayed'] }).toEqual({
      status: 201,
      replayed: 'true',
    });
    expect(again.body).toEqual(first.body);
    expect(JSON.stringify(again.body)).not.toContain(NATIONAL);
  });

  describe('stk-status by the answered (masked) id or the full one', () => {
    const status = (id: string, auth = cashier, merchantRequestId?: string) =>
      t
        .http()
        .get('/payments/stk-status')
        .query(merchantRequestId ? { checkoutRequestId: id, merchantRequestId } : { checkoutRequestId: id })
        .set('Authorization', auth);

    it('finds the payment by the masked id as answered, and by the full id', async () => {
      for (const id of [reviewed.masked, reviewed.full]) {
        const res = await status(id);
        expect({
          status: res.status,
          paymentId: res.body.paymentId,
          checkoutRequestId: res.body.checkoutRequestId,
        }).toEqual({
          status: 200,
          paymentId: reviewed.paymentId,
          checkoutRequestId: reviewed.masked,
        });
      }
      expect(fullCheckoutRequestId(t.sim, { paymentId: reviewed.paymentId, checkoutRequestId: reviewed.masked })).toBe(
        reviewed.full,
      );
    });

    it('another shop’s id, masked or full, is 404 (and the error does not echo the number)', async () => {
      const other = `Bearer ${t.token('shop-ckid-other')}`;
      for (const id of [paid.masked, paid.full]) {
        const res = await status(id, other);
        expect({ status: res.status, code: res.body.code }).toEqual({ status: 404, code: 'NOT_FOUND' });
        expect(JSON.stringify(res.body)).not.toContain(NATIONAL);
      }
    });

    it.each([
      ['too few stars', `${'ws_CO_13102022154520280'}******78`],
      ['one last digit', 'ws_CO_13102022154520280*******7'],
      ['nothing before the stars', '*******78'],
      ['stars in the middle', 'ws_CO_1310*******2022154520280'],
    ])('a malformed masked id (%s) is 400 with a readable message', async (_what, id) => {
      const res = await status(id);
      expect({ status: res.status, code: res.body.code }).toEqual({ status: 400, code: 'VALIDATION_FAILED' });
      expect(res.body.message).toMatch(/checkoutRequestId/);
      expect(res.body.message).toMatch(/\*{7}/);
    });

    it('two payments of the shop behind one masked id: 409, not a guess', async () => {
      // Practically impossible (the stamp is to the millisecond); made here by giving the payment in
      // review an id that differs from the paid one only in the masked digits.
      const twin = `${paid.full.slice(0, -9)}0000000${paid.full.slice(-2)}`;
      expect(twin).not.toBe(paid.full);
      await t.db.execute(sql`update payments set checkout_request_id = ${twin} where id = ${reviewed.paymentId}`);
      const res = await status(paid.masked);
      expect({ status: res.status, code: res.body.code }).toEqual({
        status: 409,
        code: 'CHECKOUT_REQUEST_ID_AMBIGUOUS',
      });
      expect(res.body.message).toMatch(/full CheckoutRequestID|paymentId/);
      expect(JSON.stringify(res.body)).not.toContain(NATIONAL);
      // The full ids still tell them apart, and so does the masked one with its MerchantRequestID
      // (two pushes answered in one millisecond to payers whose numbers end alike: seen under load).
      expect((await status(paid.full)).body.paymentId).toBe(paid.paymentId);
      expect((await status(twin)).body.paymentId).toBe(reviewed.paymentId);
      expect(res.body.message).toMatch(/merchantRequestId/);
      for (const p of [paid, reviewed]) {
        const merchantRequestId = t.sim.getPush(p.full)!.merchantRequestId;
        const one = await status(paid.masked, cashier, merchantRequestId);
        expect({ status: one.status, paymentId: one.body.paymentId }).toEqual({ status: 200, paymentId: p.paymentId });
      }
    });
  });
});
