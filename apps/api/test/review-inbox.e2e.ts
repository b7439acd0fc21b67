import { sql } from 'drizzle-orm';
import request from 'supertest';
import { ReconcilerService } from '../src/payments/reconciler.service';
import { successCallback } from './helpers/callbacks';
import { testTimeout, waitUntil } from './helpers/deadlines';
import { fullCheckoutRequestId, startTestApp, TestApp } from './helpers/test-app';

const rowsOf = <T>(res: unknown): T[] => (res as { rows?: T[] }).rows ?? (res as T[]);
/** The customer has not answered (simulator magic number): only what the test does decides. */
const SILENT_PHONE = '254700000007';
/** The unverified-delivery coalescing window of the API (payments.service.ts). */
const WINDOW_MS = 10_000;
const ACK = { ResultCode: 0, ResultDesc: 'Accepted' };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits, when needed, until the current coalescing window (database clock, the same host's clock
 * here) has at least `needMs` left, so that the deliveries a test sends next land in one window.
 */
async function startOfWindow(needMs: number): Promise<void> {
  const into = Date.now() % WINDOW_MS;
  if (WINDOW_MS - into < needMs + 300) await sleep(WINDOW_MS - into + 200);
}

interface InboxRow {
  id: string;
  verified: boolean;
  outcome: string | null;
  processed: boolean;
  repeats: number;
  raw_body: string;
  bucket: string;
}

/**
 * The callback inbox as an unauthenticated sender can grow it (review of the issue 8 fixes):
 * forged callbacks naming made-up CheckoutRequestIDs, bodies that are not callbacks, a genuine
 * callback whose body was lost to coalescing, and the retention job that keeps the inbox from
 * growing for ever. The reconciler runs only when a test calls tick().
 */
describe('review: the callback inbox is bounded for unauthenticated senders and keeps genuine callbacks', () => {
  let t: TestApp;
  let auth: string;
  let n = 0;

  beforeAll(async () => {
    t = await startTestApp({
      env: {
        RECONCILER_ENABLED: 'false',
        RECONCILER_PENDING_GRACE_SECONDS: '3600',
        RECONCILER_INBOX_RETRY_AFTER_SECONDS: '0',
      },
    });
    auth = `Bearer ${t.token()}`;
  });
  afterAll(() => t?.close());

  const tick = () => t.app.get(ReconcilerService).tick();

  async function openPayment(amount = 100) {
    const orderId = `RVW-${++n}`;
    expect(
      (await t.http().post('/orders').set('Authorization', auth).send({ id: orderId, total: amount })).status,
    ).toBe(201);
    const res = await t
      .http()
      .post('/payments/stk-push')
      .set('Authorization', auth)
      .send({ phoneNumber: SILENT_PHONE, amount, orderId });
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

  const maxInboxId = async () =>
    rowsOf<{ m: string }>(await t.db.execute(sql`select coalesce(max(id), 0)::text as m from callback_inbox`))[0].m;
  const inboxSince = async (afterId: string) =>
    rowsOf<InboxRow>(
      await t.db
        .execute(sql`select id::text, verified, outcome, processed_at is not null as processed, repeats, raw_body,
        floor(extract(epoch from received_at) / 10)::text as bucket from callback_inbox where id > ${afterId}::bigint order by id`),
    );
  const inboxOf = async (checkoutRequestId: string) =>
    rowsOf<InboxRow>(
      await t.db
        .execute(sql`select id::text, verified, outcome, processed_at is not null as processed, repeats, raw_body,
        floor(extract(epoch from received_at) / 10)::text as bucket from callback_inbox where checkout_request_id = ${checkoutRequestId} order by id`),
    );
  const paymentRow = async (id: string) =>
    rowsOf<{ status: string }>(await t.db.execute(sql`select status from payments where id = ${id}`))[0];
  /** Until STK queries for this payment are allowed again (the per-payment interval since the last one has passed). */
  const queryWindowOpen = (id: string) =>
    waitUntil(
      'the per-payment STK query interval to pass',
      10_000,
      async () =>
        rowsOf<{ ok: boolean }>(
          await t.db.execute(
            sql`select last_queried_at < now() - interval '2.2 seconds' as ok from payments where id = ${id}`,
          ),
        )[0].ok,
    );
  const deliveries = (rows: InboxRow[]) => rows.reduce((sum, r) => sum + 1 + r.repeats, 0);

  it('review: forged bare-URL callbacks naming made-up CheckoutRequestIDs, and bodies that are not callbacks, are coalesced per kind and window (first body kept, the rest counted), not one row each', async () => {
    const since = await maxInboxId();
    const pad = 'x'.repeat(40_000);
    const forged = Array.from({ length: 60 }, (_, i) => ({
      ...successCallback(
        `mr-${i}`,
        `ws_CO_02012026000000000${String(i).padStart(9, '0')}`,
        100,
        `FKE${String(i).padStart(7, '0')}`,
      ),
      junk: pad,
    }));
    const answers = await Promise.all(forged.map((b) => request(t.baseUrl).post('/payments/callback').send(b)));
    for (const r of answers) expect({ status: r.status, body: r.body }).toEqual({ status: 200, body: ACK });
    const invalid = await Promise.all(
      Array.from({ length: 40 }, (_, i) => request(t.baseUrl).post('/payments/callback').send({ junk: pad, i })),
    );
    for (const r of invalid)
      expect({ status: r.status, code: r.body.code }).toEqual({ status: 400, code: 'INVALID_CALLBACK' });

    const rows = await inboxSince(since);
    const unknown = rows.filter((r) => r.outcome === 'unknown_payment');
    const shapes = rows.filter((r) => r.outcome === 'invalid_shape');
    expect(unknown.length + shapes.length).toBe(rows.length);
    // One row per kind per 10 s window (the requests may straddle one window boundary).
    expect(unknown.length).toBeGreaterThanOrEqual(1);
    expect(unknown.length).toBeLessThanOrEqual(2);
    expect(shapes.length).toBeGreaterThanOrEqual(1);
    expect(shapes.length).toBeLessThanOrEqual(2);
    // Every delivery is accounted for, on the row of its window.
    expect(deliveries(unknown)).toBe(60);
    expect(deliveries(shapes)).toBe(40);
    expect(rows.every((r) => r.processed && !r.verified)).toBe(true);
    // The row keeps one delivery's body as it came.
    const sentIds = new Set(forged.map((b) => b.Body.stkCallback.CheckoutRequestID));
    for (const r of unknown) expect(sentIds.has(JSON.parse(r.raw_body).Body.stkCallback.CheckoutRequestID)).toBe(true);
    expect(rows.reduce((sum, r) => sum + r.raw_body.length, 0)).toBeLessThan(4 * 41_000);
  });

  it(
    'review: a genuine callback without a valid token arriving in the same window as a forged one is stored with its own body and settles the payment (no reconciler)',
    async () => {
      const p = await openPayment(100);
      await startOfWindow(9_000);
      // 1. An attacker's forged success on the bare URL: confirmed by STK query, the customer has not paid.
      const forged = await request(t.baseUrl)
        .post('/payments/callback')
        .send(successCallback(p.merchantRequestId, p.checkoutRequestId, 100, 'FORGED0001'));
      expect(forged.body).toEqual(ACK);
      await waitUntil('the forged callback to be confirmed', 10_000, async () =>
        (await inboxOf(p.checkoutRequestId)).every((r) => r.processed),
      );
      expect((await paymentRow(p.paymentId)).status).toBe('pending');
      // 2. The customer pays; Daraja's callback carries a token signed with the previous secret (rotation).
      await t.sim.resolve(p.checkoutRequestId, 0, { callbackCopies: 0 });
      const receipt = t.sim.getPush(p.checkoutRequestId)!.receipt!;
      await queryWindowOpen(p.paymentId);
      const genuine = successCallback(p.merchantRequestId, p.checkoutRequestId, 100, receipt);
      const res = await request(t.baseUrl)
        .post(`/payments/callback/${p.paymentId}/${'a'.repeat(64)}`)
        .send(genuine);
      expect(res.body).toEqual(ACK);

      await waitUntil(
        'the genuine callback to settle the payment',
        10_000,
        async () => (await paymentRow(p.paymentId)).status === 'completed',
      );
      // (Completed by the STK query it led to; an unverified body is never trusted, so its receipt is
      // kept in the stored body, not copied onto the payment.)
      const rows = await inboxOf(p.checkoutRequestId);
      // Both in one window (else this test would prove nothing), each with its own body.
      expect(new Set(rows.map((r) => r.bucket)).size).toBe(1);
      expect(rows).toHaveLength(2);
      expect(rows[1].raw_body).toContain(receipt);
      expect(rows[1]).toMatchObject({ verified: false, outcome: 'unverified_applied', repeats: 0 });
    },
    testTimeout(30_000),
  );

  it(
    "review: the same body delivered again after its row's confirmation finished, while the payment is still open, is confirmed again (one more STK query, no more)",
    async () => {
      const p = await openPayment(90);
      await startOfWindow(9_000);
      const body = successCallback(p.merchantRequestId, p.checkoutRequestId, 90, 'SAMEBODY01');
      expect((await request(t.baseUrl).post('/payments/callback').send(body)).body).toEqual(ACK);
      await waitUntil('the first delivery to be confirmed', 10_000, async () =>
        (await inboxOf(p.checkoutRequestId)).every((r) => r.processed),
      );
      await t.sim.resolve(p.checkoutRequestId, 0, { callbackCopies: 0 });
      await queryWindowOpen(p.paymentId);
      const queries = t.sim.stats().queryRequests;
      const again = await Promise.all(
        Array.from({ length: 5 }, () => request(t.baseUrl).post('/payments/callback').send(body)),
      );
      for (const r of again) expect(r.body).toEqual(ACK);
      await waitUntil(
        'the payment to be settled by the new confirmation',
        10_000,
        async () => (await paymentRow(p.paymentId)).status === 'completed',
      );
      expect(t.sim.stats().queryRequests - queries).toBe(1);
      const rows = await inboxOf(p.checkoutRequestId);
      expect(new Set(rows.map((r) => r.bucket)).size).toBe(1);
      expect(rows).toHaveLength(1);
      expect(rows[0].repeats).toBe(5);
    },
    testTimeout(30_000),
  );

  it('review: distinct bodies for one payment get their own rows, at most 4 per window; the rest are counted on one more row', async () => {
    const p = await openPayment(80);
    await startOfWindow(5_000);
    const bodies = Array.from({ length: 20 }, (_, i) =>
      successCallback(p.merchantRequestId, p.checkoutRequestId, 80, `DIST${String(i).padStart(6, '0')}`),
    );
    const answers = await Promise.all(bodies.map((b) => request(t.baseUrl).post('/payments/callback').send(b)));
    for (const r of answers) expect(r.body).toEqual(ACK);
    const rows = await inboxOf(p.checkoutRequestId);
    expect(new Set(rows.map((r) => r.bucket)).size).toBe(1);
    expect(rows).toHaveLength(5);
    expect(deliveries(rows)).toBe(20);
    expect(new Set(rows.map((r) => r.raw_body)).size).toBe(5);
    expect(rows.filter((r) => r.repeats === 0)).toHaveLength(4);
  });

  it('review: the retention job deletes processed unverified rows that changed nothing once CALLBACK_INBOX_RETENTION_DAYS old; verified rows and rows that changed a payment stay', async () => {
    const since = await maxInboxId();
    // Unverified, changed nothing: a made-up CheckoutRequestID, a body that is not a callback, a forged success the query refuted.
    await request(t.baseUrl)
      .post('/payments/callback')
      .send(successCallback('mr-ret', 'ws_CO_020120260000000009876543210', 5, 'RETUNKN001'))
      .expect(200);
    await request(t.baseUrl).post('/payments/callback').send({ not: 'a callback' }).expect(400);
    const refuted = await openPayment(70);
    await request(t.baseUrl)
      .post('/payments/callback')
      .send(successCallback(refuted.merchantRequestId, refuted.checkoutRequestId, 70, 'RETFORG001'))
      .expect(200);
    // Unverified, changed a payment: the customer paid, Daraja's callback was lost, an unverified one led to the query that completed it.
    const settled = await openPayment(60);
    await t.sim.resolve(settled.checkoutRequestId, 0, { callbackCopies: 0 });
    const settledReceipt = t.sim.getPush(settled.checkoutRequestId)!.receipt!;
    await request(t.baseUrl)
      .post('/payments/callback')
      .send(successCallback(settled.merchantRequestId, settled.checkoutRequestId, 60, settledReceipt))
      .expect(200);
    // Verified: Daraja's callback on the capability URL, twice (the second changed nothing).
    const paid = await openPayment(50);
    const good = successCallback(paid.merchantRequestId, paid.checkoutRequestId, 50, 'RETVERI001');
    await request(t.baseUrl).post(paid.callbackPath).send(good).expect(200);
    await request(t.baseUrl).post(paid.callbackPath).send(good).expect(200);
    await waitUntil('every stored callback to be processed', 10_000, async () =>
      (await inboxSince(since)).every((r) => r.processed),
    );
    expect((await paymentRow(settled.paymentId)).status).toBe('completed');
    const stored = await inboxSince(since);
    const byOutcome = (o: string, verified: boolean) =>
      stored.find((r) => r.outcome === o && r.verified === verified)!.id;
    const deletable = [
      byOutcome('unknown_payment', false),
      byOutcome('invalid_shape', false),
      byOutcome('unverified_query_pending', false),
    ];
    const kept = [byOutcome('unverified_applied', false), byOutcome('applied', true), byOutcome('duplicate', true)];
    expect(stored).toHaveLength(6);

    // Thirty-one days pass for these rows (default retention 30 days); one more fresh unverified row arrives.
    await t.db
      .execute(sql`update callback_inbox set received_at = received_at - interval '31 days', processed_at = processed_at - interval '31 days',
      last_received_at = last_received_at - interval '31 days' where id > ${since}::bigint`);
    const fresh = await maxInboxId();
    const recent = await openPayment(40);
    await request(t.baseUrl)
      .post('/payments/callback')
      .send(successCallback(recent.merchantRequestId, recent.checkoutRequestId, 40, 'RETFRSH001'))
      .expect(200);
    const freshRows = await waitUntil('the fresh callback to be confirmed', 10_000, async () => {
      const r = await inboxSince(fresh);
      return r.length === 1 && r[0].processed ? r : undefined;
    });
    expect(freshRows[0].outcome).toBe('unverified_query_pending');

    await tick();
    const left = (await inboxSince(since)).map((r) => r.id);
    for (const id of deletable) expect(left).not.toContain(id);
    for (const id of kept) expect(left).toContain(id);
    expect(left).toContain(freshRows[0].id);
  });
});
