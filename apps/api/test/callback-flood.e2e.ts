import { sql } from 'drizzle-orm';
import request from 'supertest';
import { successCallback } from './helpers/callbacks';
import { step, testTimeout, waitUntil } from './helpers/deadlines';
import { ExtraTestApp, fullCheckoutRequestId, startExtraTestApp, startTestApp, TestApp } from './helpers/test-app';

const rowsOf = <T>(res: unknown): T[] => (res as { rows?: T[] }).rows ?? (res as T[]);
/** The customer has not answered (simulator magic number): a forged "success" must not complete anything. */
const SILENT_PHONE = '254700000007';

/**
 * Unauthenticated callbacks (bare URL, no capability token) carrying a real CheckoutRequestID:
 * each used to cost an STK query and an inbox row. Confirm-by-query now shares the per-payment
 * query throttle of status reads (one query per payment per interval, across instances), and
 * repeats are counted on the inbox rows of their payment and window: identical bodies on one row,
 * at most 4 distinct bodies on rows of their own, the rest counted on one more (review: so that a
 * genuine body is never lost behind a forged one).
 */
describe('a flood of forged callbacks', () => {
  let a: TestApp;
  let b: ExtraTestApp;
  let auth: string;
  let n = 0;
  // Only the flood, the status reads and the genuine callback may ask Daraja: no reconciler looks.
  const env = { RECONCILER_PENDING_GRACE_SECONDS: '3600', RECONCILER_INTERVAL_MS: '500' };

  beforeAll(async () => {
    a = await startTestApp({ env });
    b = await startExtraTestApp(a, env);
    auth = `Bearer ${a.token()}`;
  }, testTimeout(30_000));
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  async function openPayment(amount = 100) {
    const orderId = `FLOOD-${++n}`;
    expect(
      (await a.http().post('/orders').set('Authorization', auth).send({ id: orderId, total: amount })).status,
    ).toBe(201);
    const res = await a
      .http()
      .post('/payments/stk-push')
      .set('Authorization', auth)
      .send({ phoneNumber: SILENT_PHONE, amount, orderId });
    expect(res.status).toBe(201);
    return { ...res.body, checkoutRequestId: fullCheckoutRequestId(a.sim, res.body), orderId } as {
      paymentId: string;
      checkoutRequestId: string;
      merchantRequestId: string;
      orderId: string;
    };
  }

  const inboxRows = async (checkoutRequestId: string) =>
    rowsOf<{ verified: boolean; outcome: string | null; processed: boolean; repeats: number }>(
      await a.db.execute(
        sql`select verified, outcome, processed_at is not null as processed, repeats from callback_inbox where checkout_request_id = ${checkoutRequestId} order by id`,
      ),
    );
  const paymentRow = async (id: string) =>
    rowsOf<{ status: string; mpesa_receipt_number: string | null }>(
      await a.db.execute(sql`select status, mpesa_receipt_number from payments where id = ${id}`),
    )[0];
  const queries = () => a.sim.stats().queryRequests;

  it(
    'issue 8.5: 50 parallel forged callbacks on the bare URL, split over two instances, make at most one STK query per interval (3 in all) and at most 5 inbox rows per window; the genuine callback still settles the payment',
    async () => {
      const p = await openPayment(100);
      const before = queries();
      const answers = await step('50 parallel forged callbacks', 30_000, () =>
        Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            request((i % 2 ? b : a).baseUrl)
              .post('/payments/callback')
              .send(successCallback(p.merchantRequestId, p.checkoutRequestId, 100, `FLD${String(i).padStart(7, '0')}`)),
          ),
        ),
      );
      // Daraja's form, for every one of them: an unverified sender learns nothing.
      for (const r of answers)
        expect({ status: r.status, body: r.body }).toEqual({
          status: 200,
          body: { ResultCode: 0, ResultDesc: 'Accepted' },
        });

      const rows = await waitUntil('the forged callbacks to be confirmed', 20_000, async () => {
        const r = await inboxRows(p.checkoutRequestId);
        return r.length > 0 && r.every((x) => x.processed) ? r : undefined;
      });
      const made = queries() - before;
      expect(made).toBeGreaterThanOrEqual(1);
      // One per interval while the burst lasts (it may straddle two), plus one after the interval for
      // the deliveries that arrived after the last answer (they were deferred to the reconciler).
      expect(made).toBeLessThanOrEqual(3);
      // 50 distinct bodies: 4 rows of their own and one counting the rest, per window (the burst may straddle two).
      expect(rows.length).toBeLessThanOrEqual(10);
      // Every delivery is accounted for: a row, or a repeat counted on it.
      expect(rows.reduce((sum, r) => sum + 1 + r.repeats, 0)).toBe(50);
      expect(rows.every((r) => !r.verified)).toBe(true);
      expect(await paymentRow(p.paymentId)).toMatchObject({ status: 'pending', mpesa_receipt_number: null });
      const events = rowsOf<{ n: number }>(
        await a.db.execute(
          sql`select count(*)::int as n from payment_events where payment_id = ${p.paymentId} and type = 'unverified_callback'`,
        ),
      )[0].n;
      expect(events).toBeLessThanOrEqual(10);

      // The customer pays: Daraja's genuine callback on the capability URL completes it.
      await a.sim.resolve(p.checkoutRequestId, 0);
      const receipt = a.sim.getPush(p.checkoutRequestId)!.receipt;
      const done = await waitUntil('the genuine callback to complete the payment', 15_000, async () => {
        const row = await paymentRow(p.paymentId);
        return row.status === 'completed' ? row : undefined;
      });
      expect(done.mpesa_receipt_number).toBe(receipt);
      expect((await a.http().get(`/orders/${p.orderId}`).set('Authorization', auth)).body).toMatchObject({
        status: 'paid',
      });
      const verified = (await inboxRows(p.checkoutRequestId)).filter((r) => r.verified);
      expect(verified).toEqual([expect.objectContaining({ outcome: 'applied', repeats: 0 })]);
    },
    testTimeout(30_000, 20_000, 15_000),
  );

  it(
    'issue 8.5: status reads and forged callbacks for one payment at the same moment share one STK query per interval',
    async () => {
      const p = await openPayment(50);
      const before = queries();
      const reads = Array.from({ length: 10 }, (_, i) =>
        (i % 2 ? b : a)
          .http()
          .get(`/payments/${p.paymentId}`)
          .set('Authorization', auth)
          .then((r) => r),
      );
      const forged = Array.from({ length: 10 }, (_, i) =>
        request((i % 2 ? b : a).baseUrl)
          .post('/payments/callback')
          .send(successCallback(p.merchantRequestId, p.checkoutRequestId, 50, `FLR${String(i).padStart(7, '0')}`))
          .then((r) => r),
      );
      const [readAnswers, forgedAnswers] = await step('10 status reads and 10 forged callbacks', 30_000, () =>
        Promise.all([Promise.all(reads), Promise.all(forged)]),
      );
      for (const r of readAnswers)
        expect({ status: r.status, paymentStatus: r.body.status }).toEqual({ status: 200, paymentStatus: 'pending' });
      for (const r of forgedAnswers) expect(r.body).toEqual({ ResultCode: 0, ResultDesc: 'Accepted' });
      await waitUntil('the forged callbacks to be confirmed', 20_000, async () => {
        const r = await inboxRows(p.checkoutRequestId);
        return r.length > 0 && r.every((x) => x.processed);
      });
      // One for the burst (two if it straddles an interval), plus at most one after the interval for
      // forged deliveries that arrived after the last answer (deferred to the reconciler).
      expect(queries() - before).toBeLessThanOrEqual(3);
    },
    testTimeout(30_000, 20_000),
  );

  it('issue 8.5: verified callbacks are never coalesced: each delivery on the capability URL is stored before it is acknowledged', async () => {
    const p = await openPayment(30);
    const path = new URL(a.sim.getPush(p.checkoutRequestId)!.callbackUrl).pathname;
    const body = successCallback(p.merchantRequestId, p.checkoutRequestId, 30, 'FLV0000001');
    const answers = await Promise.all([a, b, a].map((app) => request(app.baseUrl).post(path).send(body)));
    for (const r of answers) expect(r.body).toEqual({ ResultCode: 0, ResultDesc: 'Accepted' });
    // Stored before each answer; applied after it (issue 13): wait for both instances' appliers.
    expect(await inboxRows(p.checkoutRequestId)).toHaveLength(3);
    await Promise.all([a.callbacksApplied(), b.callbacksApplied()]);
    const rows = await inboxRows(p.checkoutRequestId);
    expect(rows).toHaveLength(3);
    expect(rows.every((r) => r.verified && r.repeats === 0)).toBe(true);
    expect(rows.map((r) => r.outcome).sort()).toEqual(['applied', 'duplicate', 'duplicate']);
  });
});
