import { sql } from 'drizzle-orm';
import { ReconcilerService } from '../src/payments/reconciler.service';
import { RefundReconciler } from '../src/payments/refund-reconciler.service';
import { startWithAllProviders, type AllProviders } from './helpers/all-providers';
import { waitFor } from './helpers/test-app';

const FLW_KEY = 'FLWSECK_TEST-e2ecardrefunds0000000-X';
const FLW_HASH = 'e2e-card-refunds-secret-hash-0123456789';

type Rows<T> = { rows: T[] };
const rowsOf = <T>(res: unknown): T[] => (res as Rows<T>).rows;

interface RefundBody {
  refundId: string;
  paymentId: string;
  amount: number;
  currency: string;
  status: string;
  statusReason: string | null;
  resultDesc: string | null;
  source: string;
  providerRefundId: string | null;
}

/**
 * Card refunds through HTTP (POST /payments/:id/refunds) with Postgres, the app's Flutterwave and
 * Pesapal refund services, and both card simulators: what each provider allows, what is refused
 * before anything is sent, and how results that come later (Flutterwave's refund webhook,
 * Pesapal's approval shown as REVERSED) settle the refund.
 */
describe('Card refunds: Flutterwave and Pesapal through HTTP', () => {
  let all: AllProviders;
  let manager: string;
  let cashier: string;
  let n = 0;

  beforeAll(async () => {
    all = await startWithAllProviders({
      flwSecretKey: FLW_KEY,
      flwSecretHash: FLW_HASH,
      flwWebhooks: true,
      env: {
        RECONCILER_INBOX_RETRY_AFTER_SECONDS: '0',
        FLUTTERWAVE_HTTP_TIMEOUT_MS: '1500',
        PESAPAL_HTTP_TIMEOUT_MS: '1500',
      },
    });
    all.flw.configure({ refundWebhooks: true });
    manager = `Bearer ${all.t.token('shop-1', 'manager', 'manager-1')}`;
    cashier = `Bearer ${all.t.token('shop-1', 'cashier', 'cashier-1')}`;
  });
  afterEach(() => {
    all.flw.planRefunds(null);
    all.flw.setFaults({});
    all.pesapal.setFaults({});
  });
  afterAll(async () => {
    await all?.close();
  });

  const http = () => all.t.http();

  async function order(total: number): Promise<string> {
    const id = `CR-${++n}`;
    const res = await http().post('/orders').set('Authorization', cashier).send({ id, total });
    expect(res.status).toBe(201);
    return id;
  }

  function refund(paymentId: string, body: Record<string, unknown>, auth = manager, key?: string) {
    const r = http().post(`/payments/${paymentId}/refunds`).set('Authorization', auth);
    if (key) r.set('Idempotency-Key', key);
    return r.send({ reason: 'Customer returned the goods', ...body });
  }

  async function refundRow(refundId: string): Promise<RefundBody> {
    const res = await http().get(`/refunds/${refundId}`).set('Authorization', manager);
    expect(res.status).toBe(200);
    return res.body as RefundBody;
  }

  async function refundsOf(paymentId: string): Promise<RefundBody[]> {
    const res = await http().get(`/payments/${paymentId}/refunds`).set('Authorization', manager);
    expect(res.status).toBe(200);
    return res.body.items as RefundBody[];
  }

  async function orderView(orderId: string) {
    return (await http().get(`/orders/${orderId}`).set('Authorization', manager)).body as {
      status: string;
      paid: number;
      refunded: number;
    };
  }

  async function refundCount(paymentId: string): Promise<number> {
    return rowsOf<{ c: number }>(
      await all.t.db.execute(sql`select count(*)::int as c from refunds where payment_id = ${paymentId}`),
    )[0].c;
  }

  async function eventCounts(paymentId: string): Promise<Record<string, number>> {
    const rows = rowsOf<{ type: string; c: number }>(
      await all.t.db.execute(
        sql`select type, count(*)::int as c from payment_events where payment_id = ${paymentId} group by type`,
      ),
    );
    return Object.fromEntries(rows.map((r) => [r.type, r.c]));
  }

  // ------------------------------------------------------------------ Flutterwave

  /** A completed Flutterwave payment (card unless told), its webhook processed. */
  async function flwPaid(total: number, paymentType: 'card' | 'mpesa' = 'card') {
    const orderId = await order(total);
    const init = await http()
      .post('/payments/flutterwave/init')
      .set('Authorization', cashier)
      .send({ orderId, amount: total, customer: { email: 'wanjiku@example.com', phoneNumber: '0712345678' } });
    expect(init.status).toBe(201);
    const { paymentId, txRef } = init.body as { paymentId: string; txRef: string };
    const { transaction } = await all.flw.complete(txRef, { outcome: 'successful', paymentType });
    await waitFor(async () => {
      const p = await http().get(`/payments/${paymentId}`).set('Authorization', manager);
      return p.body.status === 'completed' ? p : undefined;
    });
    return { paymentId, orderId, txRef, transactionId: transaction!.id };
  }

  /** Refund requests Flutterwave received (webhook confirmations in the background only GET). */
  const flwRefundPosts = () =>
    all.flw.apiCalls().filter((c) => c.method === 'POST' && /^\/v3\/transactions\/\d+\/refund$/.test(c.path)).length;

  /** Refund webhooks stored for a payment's transaction (oldest first). */
  async function refundInboxNow(transactionId: number) {
    return rowsOf<{ kind: string | null; verified: boolean; outcome: string | null; done: boolean }>(
      await all.t.db.execute(
        sql`select kind, verified, outcome, processed_at is not null as done from callback_inbox
            where provider = 'flutterwave' and kind = 'refund_webhook' and raw_body like ${`%"TransactionId":${transactionId}%`} order by id`,
      ),
    );
  }

  /** Refund webhooks stored for a payment's transaction, once `count` are there and all are processed. */
  async function refundInbox(transactionId: number, count: number) {
    return waitFor(async () => {
      const rows = await refundInboxNow(transactionId);
      return rows.length >= count && rows.every((r) => r.done) ? rows : undefined;
    });
  }

  it('Flutterwave: a full card refund succeeds at once; its webhook is stored, verified and changes nothing more', async () => {
    const p = await flwPaid(1000);
    const res = await refund(p.paymentId, {});
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ status: 'succeeded', amount: 1000, currency: 'KES', source: 'request' });
    const sim = all.flw.refunds().find((r) => r.txId === p.transactionId)!;
    expect(res.body.providerRefundId).toBe(String(sim.id));
    expect(sim.amountMinor).toBe(100000n);
    const inbox = await refundInbox(p.transactionId, 1);
    expect(inbox[0]).toMatchObject({ kind: 'refund_webhook', verified: true });
    expect(['refund_duplicate', 'refund_succeeded']).toContain(inbox[0].outcome);
    expect(await refundsOf(p.paymentId)).toHaveLength(1);
    expect(await orderView(p.orderId)).toMatchObject({ status: 'refunded', paid: 0, refunded: 1000 });
    // Nothing is left: refused before anything is sent.
    const calls = flwRefundPosts();
    expect((await refund(p.paymentId, {})).status).toBe(409);
    expect(flwRefundPosts()).toBe(calls);
  });

  it('Flutterwave: partial refunds, two of them; more than is left is refused with nothing written or sent', async () => {
    const p = await flwPaid(1000);
    const first = await refund(p.paymentId, { amount: 300 });
    expect(first.body).toMatchObject({ status: 'succeeded', amount: 300 });
    const second = await refund(p.paymentId, { amount: 450.0 });
    expect(second.body).toMatchObject({ status: 'succeeded', amount: 450 });
    expect(
      all.flw
        .refunds()
        .filter((r) => r.txId === p.transactionId)
        .map((r) => r.amountMinor)
        .sort(),
    ).toEqual([30000n, 45000n]);
    expect(await orderView(p.orderId)).toMatchObject({ status: 'partially_refunded', paid: 250, refunded: 750 });

    const calls = flwRefundPosts();
    const tooMuch = await refund(p.paymentId, { amount: 251 });
    expect(tooMuch.status).toBe(422);
    expect(tooMuch.body.code).toBe('REFUND_EXCEEDS_REFUNDABLE');
    const otherCurrency = await refund(p.paymentId, { amount: 10, currency: 'USD' });
    expect(otherCurrency.status).toBe(400);
    expect(flwRefundPosts()).toBe(calls);
    expect(await refundCount(p.paymentId)).toBe(2);
  });

  it('Flutterwave: a refund held pending is completed later by the refund webhook (confirmed with GET /v3/refunds/:id)', async () => {
    const p = await flwPaid(800);
    all.flw.planRefunds({ outcome: 'pending', count: 1 });
    const res = await refund(p.paymentId, { amount: 500 });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ status: 'pending', amount: 500 });
    const id = Number(res.body.providerRefundId);
    expect(await orderView(p.orderId)).toMatchObject({ paid: 800, refunded: 0 });

    await all.flw.completeRefund(id);
    const inbox = await refundInbox(p.transactionId, 1);
    expect(inbox[0]).toMatchObject({ verified: true, outcome: 'refund_succeeded' });
    expect(await refundRow(res.body.refundId)).toMatchObject({ status: 'succeeded' });
    expect(
      all.flw.apiCalls().some((c) => c.method === 'GET' && c.path === `/v3/refunds/${id}` && c.merchant === 'default'),
    ).toBe(true);
    expect(await orderView(p.orderId)).toMatchObject({ status: 'partially_refunded', paid: 300, refunded: 500 });
    expect((await eventCounts(p.paymentId)).refund_status_changed).toBeGreaterThanOrEqual(2);
  });

  it('Flutterwave: a held refund that fails at Flutterwave fails here; the money is refundable again', async () => {
    const p = await flwPaid(400);
    all.flw.planRefunds({ outcome: 'pending', count: 1 });
    const res = await refund(p.paymentId, {});
    await all.flw.failRefund(Number(res.body.providerRefundId));
    await refundInbox(p.transactionId, 1);
    expect(await refundRow(res.body.refundId)).toMatchObject({ status: 'failed', statusReason: 'FAILED_AT_PROVIDER' });
    const again = await refund(p.paymentId, {});
    expect(again.body).toMatchObject({ status: 'succeeded', amount: 400 });
  });

  it("Flutterwave: a refusal (e.g. the merchant's balance) is a failed refund with Flutterwave's reason; nothing counts against the payment", async () => {
    const p = await flwPaid(600);
    all.flw.planRefunds({ outcome: 'refuse', message: 'Insufficient balance to process refund', count: 1 });
    const res = await refund(p.paymentId, { amount: 100 });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ status: 'failed', statusReason: 'REFUSED_BY_PROVIDER' });
    expect(res.body.resultDesc).toMatch(/Insufficient balance/);
    expect(await orderView(p.orderId)).toMatchObject({ status: 'paid', paid: 600 });
    expect((await refund(p.paymentId, {})).body).toMatchObject({ status: 'succeeded', amount: 600 });
  });

  it('Flutterwave: a refund made on the Flutterwave dashboard (nobody asked here) shows up as a refund of the payment', async () => {
    const p = await flwPaid(900);
    const res = await fetch(`${all.flw.url}/v3/transactions/${p.transactionId}/refund`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${FLW_KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ amount: 200, comments: 'dashboard' }),
    });
    expect(res.status).toBe(200);
    const inbox = await refundInbox(p.transactionId, 1);
    expect(inbox[0].outcome).toBe('refund_recorded');
    const [r] = await refundsOf(p.paymentId);
    expect(r).toMatchObject({ source: 'provider', status: 'succeeded', amount: 200 });
    expect(await orderView(p.orderId)).toMatchObject({ status: 'partially_refunded', refunded: 200 });
    // Only 700 is left to refund here.
    expect((await refund(p.paymentId, { amount: 701 })).status).toBe(422);
  });

  it('Flutterwave: a refund webhook with a wrong verif-hash is refused (401) and changes nothing', async () => {
    const p = await flwPaid(300);
    const res = await fetch(`${all.t.baseUrl}/payments/flutterwave/webhook`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'verif-hash': 'not-the-hash-of-this-account' },
      body: JSON.stringify({ id: 999001, AmountRefunded: 300, status: 'completed', TransactionId: p.transactionId }),
    });
    expect(res.status).toBe(401);
    expect(await refundCount(p.paymentId)).toBe(0);
  });

  it("Flutterwave: a refund whose answer is lost (timeout) is unknown; the reconciler finds it in Flutterwave's refunds and never sends it again", async () => {
    const p = await flwPaid(500);
    all.flw.setFaults({ latencyMs: { refunds: 2500 } });
    const res = await refund(p.paymentId, { amount: 150 });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ status: 'unknown', providerRefundId: null });
    all.flw.setFaults({});
    const sent = flwRefundPosts();
    expect(all.flw.refunds().filter((r) => r.txId === p.transactionId)).toHaveLength(1);
    await all.t.db.execute(sql`update refunds set next_check_at = now() where id = ${res.body.refundId}`);
    await all.t.app.get(RefundReconciler).reconcileDue(10);
    const settled = await refundRow(res.body.refundId);
    expect(settled).toMatchObject({ status: 'succeeded', amount: 150 });
    expect(settled.providerRefundId).toBe(String(all.flw.refunds().find((r) => r.txId === p.transactionId)!.id));
    expect(flwRefundPosts()).toBe(sent);
    // Its webhook (held back while ours had no id) settles as a duplicate once replayed; still one refund.
    await waitFor(async () => {
      await all.t.app.get(ReconcilerService).tick();
      const inbox = await refundInboxNow(p.transactionId);
      return inbox.length === 1 && inbox[0].outcome === 'refund_duplicate' ? inbox : undefined;
    }, 10_000);
    expect(await refundsOf(p.paymentId)).toHaveLength(1);
  });

  it('a cashier may not refund', async () => {
    const p = await flwPaid(100);
    expect((await refund(p.paymentId, {}, cashier)).status).toBe(403);
    expect(await refundCount(p.paymentId)).toBe(0);
  });

  // ------------------------------------------------------------------ Pesapal

  /** A completed Pesapal payment, its IPN processed. */
  async function pesapalPaid(total: number, paymentMethod: 'Visa' | 'Mpesa') {
    const orderId = await order(total);
    const init = await http()
      .post('/payments/pesapal/init')
      .set('Authorization', cashier)
      .send({ orderId, amount: total, customer: { phoneNumber: '0712345678' } });
    expect(init.status).toBe(201);
    const { paymentId, orderTrackingId, reference } = init.body as {
      paymentId: string;
      orderTrackingId: string;
      reference: string;
    };
    await all.pesapal.complete(orderTrackingId, { outcome: 'completed', paymentMethod });
    const [ipn] = await all.pesapal.waitForIpns(orderTrackingId);
    expect(ipn.acknowledged).toBe(true);
    const p = await http().get(`/payments/${paymentId}`).set('Authorization', manager);
    expect(p.body.status).toBe('completed');
    return { paymentId, orderId, orderTrackingId, reference };
  }

  const pesapalRefundCalls = () => all.pesapal.apiCalls().filter((c) => c.endpoint === 'refund').length;

  it('Pesapal: a partial refund request is pending (received, not refunded); the approval (REVERSED, of the whole payment) puts it in review, and a manager settles it', async () => {
    const p = await pesapalPaid(1200, 'Visa');
    const res = await refund(p.paymentId, { amount: 200 });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ status: 'pending', statusReason: 'AWAITING_APPROVAL', amount: 200 });
    expect(all.pesapal.getOrder(p.orderTrackingId)?.refund).toMatchObject({ amountMinor: 20000n, state: 'pending' });
    expect(await orderView(p.orderId)).toMatchObject({ status: 'paid', refunded: 0 });

    await all.pesapal.decideRefund(p.orderTrackingId, 'approve');
    const ipns = await all.pesapal.waitForIpns(p.orderTrackingId, 2);
    expect(ipns[1].acknowledged).toBe(true);
    // Pesapal says the whole payment is reversed: an approved partial refund or a full chargeback.
    expect(await refundRow(res.body.refundId)).toMatchObject({ status: 'review', statusReason: 'AMOUNT_MISMATCH' });
    expect(await orderView(p.orderId)).toMatchObject({ status: 'paid', refunded: 0 });
    const cashierSettle = await http()
      .post(`/refunds/${res.body.refundId}/settle`)
      .set('Authorization', `Bearer ${all.t.token()}`)
      .send({ outcome: 'succeeded', note: 'Pesapal dashboard shows the 200 refund approved' });
    expect(cashierSettle.status).toBe(403);
    const settled = await http()
      .post(`/refunds/${res.body.refundId}/settle`)
      .set('Authorization', manager)
      .send({ outcome: 'succeeded', note: 'Pesapal dashboard shows the 200 refund approved' });
    expect(settled.status).toBe(200);
    expect(settled.body).toMatchObject({ status: 'succeeded', statusReason: 'SETTLED_SUCCEEDED' });
    const again = await http()
      .post(`/refunds/${res.body.refundId}/settle`)
      .set('Authorization', manager)
      .send({ outcome: 'failed', note: 'changed my mind' });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('REFUND_NOT_IN_REVIEW');
    expect(await refundsOf(p.paymentId)).toHaveLength(1);
    expect(await orderView(p.orderId)).toMatchObject({ status: 'partially_refunded', paid: 1000, refunded: 200 });
    // The payment keeps its existing reversal record too.
    expect((await eventCounts(p.paymentId)).reversed_at_provider).toBe(1);
  });

  it('Pesapal: the reconciler finds an approval whose IPN was lost (GetTransactionStatus shows REVERSED)', async () => {
    const p = await pesapalPaid(500, 'Mpesa');
    const res = await refund(p.paymentId, {});
    expect(res.body).toMatchObject({ status: 'pending', amount: 500 });
    all.pesapal.setFaults({ ipns: { drop: true } });
    await all.pesapal.decideRefund(p.orderTrackingId, 'approve');
    await all.t.db.execute(sql`update refunds set next_check_at = now() where id = ${res.body.refundId}`);
    await all.t.app.get(RefundReconciler).reconcileDue(10);
    expect(await refundRow(res.body.refundId)).toMatchObject({ status: 'succeeded' });
  });

  it("Pesapal: a rejection is not reported by Pesapal's API: the refund stays pending awaiting approval, and is not sent again", async () => {
    const p = await pesapalPaid(700, 'Visa');
    const res = await refund(p.paymentId, { amount: 700 });
    await all.pesapal.decideRefund(p.orderTrackingId, 'reject');
    const calls = pesapalRefundCalls();
    await all.t.db.execute(sql`update refunds set next_check_at = now() where id = ${res.body.refundId}`);
    await all.t.app.get(RefundReconciler).reconcileDue(10);
    expect(await refundRow(res.body.refundId)).toMatchObject({ status: 'pending', statusReason: 'AWAITING_APPROVAL' });
    expect(pesapalRefundCalls()).toBe(calls);
  });

  it('Pesapal: a refund request whose answer is lost is unknown and never resent; the approval settles it', async () => {
    const p = await pesapalPaid(450, 'Visa');
    all.pesapal.setFaults({ latencyMs: { refund: 2500 } });
    const res = await refund(p.paymentId, {});
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ status: 'unknown' });
    all.pesapal.setFaults({});
    const calls = pesapalRefundCalls();
    await all.t.db.execute(sql`update refunds set next_check_at = now() where id = ${res.body.refundId}`);
    await all.t.app.get(RefundReconciler).reconcileDue(10);
    expect(await refundRow(res.body.refundId)).toMatchObject({ status: 'unknown' });
    expect(pesapalRefundCalls()).toBe(calls);
    await all.pesapal.decideRefund(p.orderTrackingId, 'approve');
    await all.pesapal.waitForIpns(p.orderTrackingId, 2);
    expect(await refundRow(res.body.refundId)).toMatchObject({ status: 'succeeded', amount: 450 });
  });

  it('Pesapal: a second refund of a payment is refused before it is sent (422, nothing written, Pesapal saw no call)', async () => {
    const p = await pesapalPaid(1000, 'Visa');
    expect((await refund(p.paymentId, { amount: 100 })).body.status).toBe('pending');
    const calls = pesapalRefundCalls();
    const events = await eventCounts(p.paymentId);
    const second = await refund(p.paymentId, { amount: 100 });
    expect(second.status).toBe(422);
    expect(second.body.code).toBe('REFUND_ONE_PER_PAYMENT');
    expect(second.body.message).toMatch(/only one refund per payment/);
    expect(pesapalRefundCalls()).toBe(calls);
    expect(await refundCount(p.paymentId)).toBe(1);
    expect(await eventCounts(p.paymentId)).toEqual(events);
  });

  it('Pesapal: mobile money is refunded in full only — a partial one is refused before it is sent', async () => {
    const p = await pesapalPaid(300, 'Mpesa');
    const calls = pesapalRefundCalls();
    const partial = await refund(p.paymentId, { amount: 100 });
    expect(partial.status).toBe(422);
    expect(partial.body.code).toBe('REFUND_FULL_ONLY');
    expect(partial.body.message).toMatch(/only in full/);
    expect(pesapalRefundCalls()).toBe(calls);
    expect(await refundCount(p.paymentId)).toBe(0);
    expect((await refund(p.paymentId, {})).body).toMatchObject({ status: 'pending', amount: 300 });
  });

  it('Pesapal: a payment in review (paid after we closed it) resolved by refund: the approval settles the refund', async () => {
    const orderId = await order(330);
    const init = await http()
      .post('/payments/pesapal/init')
      .set('Authorization', cashier)
      .send({ orderId, amount: 330, customer: { phoneNumber: '0712345678' } });
    const { paymentId, orderTrackingId } = init.body as { paymentId: string; orderTrackingId: string };
    all.pesapal.setFaults({
      errors: { cancel: { count: 1, code: 'cancel_failed', message: 'Order cannot be cancelled right now' } },
    });
    await all.pesapal.complete(orderTrackingId, { outcome: 'failed', paymentMethod: 'Visa' });
    await all.pesapal.waitForIpns(orderTrackingId);
    await all.pesapal.complete(orderTrackingId, { outcome: 'completed', paymentMethod: 'Visa' });
    await all.pesapal.waitForIpns(orderTrackingId, 2);
    const inReview = await http().get(`/payments/${paymentId}`).set('Authorization', manager);
    expect(inReview.body).toMatchObject({ status: 'review', statusReason: 'PAID_AFTER_CLOSE' });

    const resolved = await http()
      .post(`/payments/${paymentId}/resolve`)
      .set('Authorization', manager)
      .send({ action: 'refund', note: 'Customer paid after the till gave up' });
    expect(resolved.status).toBe(201);
    expect(resolved.body.refund).toMatchObject({ status: 'pending', source: 'review', amount: 330 });
    await all.pesapal.decideRefund(orderTrackingId, 'approve');
    const ipns = await all.pesapal.waitForIpns(orderTrackingId, 3);
    expect(ipns[2].acknowledged).toBe(true);
    expect(await refundRow(resolved.body.refund.refundId)).toMatchObject({ status: 'succeeded' });
  });

  it('Pesapal: a reversal nobody asked for (chargeback, refund made at Pesapal) shows up as a refund, once', async () => {
    const p = await pesapalPaid(650, 'Visa');
    await all.pesapal.reverse(p.orderTrackingId);
    const ipns = await all.pesapal.waitForIpns(p.orderTrackingId, 2);
    expect(ipns[1].acknowledged).toBe(true);
    const items = await refundsOf(p.paymentId);
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ source: 'provider', status: 'succeeded', amount: 650 });
    expect(await orderView(p.orderId)).toMatchObject({ status: 'refunded', paid: 0, refunded: 650 });
    // The same IPN again: nothing more.
    const again = await fetch(`${all.t.baseUrl}/payments/pesapal/callback`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        OrderTrackingId: p.orderTrackingId,
        OrderMerchantReference: p.reference,
        OrderNotificationType: 'IPNCHANGE',
      }),
    });
    expect(again.status).toBe(200);
    expect(await refundsOf(p.paymentId)).toHaveLength(1);
    // Nothing is left to refund here.
    expect((await refund(p.paymentId, {})).status).toBe(409);
  });
});
