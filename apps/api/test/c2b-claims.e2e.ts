import { sql } from 'drizzle-orm';
import { randomUUID } from 'node:crypto';
import { phoneHash } from '../src/payments/phone-hash';
import { C2bTestContext, PAYBILL, PAYER, startC2bTestApp, STORE, TILL } from './helpers/c2b';
import { TEST_CALLBACK_SECRET, TestApp, waitFor } from './helpers/test-app';

/**
 * Till payments (no reference) in the shop's feed, claimed by a cashier exactly once and never
 * seen by another shop; and the STK push whose outcome is unknown settled by its C2B confirmation.
 */
describe('C2B: the feed of unclaimed payments, claims, and STK pushes settled by confirmations', () => {
  let c: C2bTestContext;
  let t: TestApp;
  const cashier = (shop: string, sub?: string) => c.cashier(shop, sub);
  const query = <T = Record<string, unknown>>(q: ReturnType<typeof sql>) => c.query<T>(q);
  const order = (shop: string, id: string, total: number) => c.order(shop, id, total);
  const c2bRow = (transId: string) => c.c2bRow(transId);
  const paymentsWithReceipt = (transId: string) => c.paymentsWithReceipt(transId);
  const counts = () => c.counts();

  beforeAll(async () => {
    c = await startC2bTestApp({ registered: true });
    ({ t } = c);
  });
  afterAll(() => c.close());

  it('a till payment lands in the shop’s feed; a cashier finds it by receipt and claims it for an order, once', async () => {
    await order('shop-b', 'TILL-1', 75);
    const paid = await t.sim.c2bPay({
      shortcode: STORE,
      amount: 75,
      msisdn: PAYER,
      msisdnForm: 'plain',
      firstName: 'Wanjiku',
      lastName: 'Kamau',
    });
    const row = await c2bRow(paid.transId);
    // The number is kept only as our keyed hash.
    expect(row).toMatchObject({
      status: 'unclaimed',
      status_reason: 'NO_REFERENCE',
      msisdn_form: 'plain',
      msisdn_sha256: null,
      phone_masked: null,
    });
    expect(row.phone_hash).toBe(phoneHash(TEST_CALLBACK_SECRET, PAYER));
    expect(JSON.stringify(row)).not.toContain('712345678');

    const feed = await t.http().get('/payments/c2b/unclaimed').set('Authorization', cashier('shop-b'));
    expect(feed.status).toBe(200);
    const item = feed.body.find((i: { receipt: string }) => i.receipt === paid.transId);
    expect(item).toMatchObject({
      amount: 75,
      currency: 'KES',
      customerName: 'Wanjiku K.',
      transactionType: 'Buy Goods',
      accountNumber: null,
    });
    expect(new Date(item.paidAt).getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(JSON.stringify(feed.body)).not.toContain('712345678');
    const search = await t
      .http()
      .get(`/payments/c2b/unclaimed?receipt=${paid.transId.toLowerCase()}`)
      .set('Authorization', cashier('shop-b'));
    expect(search.body.map((i: { id: string }) => i.id)).toEqual([item.id]);
    const none = await t
      .http()
      .get('/payments/c2b/unclaimed?receipt=ZZZZ999999')
      .set('Authorization', cashier('shop-b'));
    expect(none.body).toEqual([]);
    const bad = await t.http().get('/payments/c2b/unclaimed?receipt=no!').set('Authorization', cashier('shop-b'));
    expect(bad.status).toBe(400);

    // A claim for an order that does not exist or cannot take it changes nothing.
    const missing = await t
      .http()
      .post(`/payments/c2b/${item.id}/claim`)
      .set('Authorization', cashier('shop-b'))
      .send({ orderId: 'NOPE' });
    expect(missing.status).toBe(404);
    expect((await c2bRow(paid.transId)).status).toBe('unclaimed');

    const claim = await t
      .http()
      .post(`/payments/c2b/${item.id}/claim`)
      .set('Authorization', cashier('shop-b'))
      .send({ orderId: 'TILL-1' });
    expect(claim.status).toBe(200);
    expect(claim.body).toMatchObject({
      c2bPaymentId: item.id,
      orderId: 'TILL-1',
      status: 'completed',
      statusReason: 'PAID',
    });
    const [p] = await paymentsWithReceipt(paid.transId);
    expect(p).toMatchObject({ id: claim.body.paymentId, status: 'completed', order_id: 'TILL-1' });
    expect(await c2bRow(paid.transId)).toMatchObject({
      status: 'applied',
      claimed_by: 'user:cashier-shop-b',
      order_id: 'TILL-1',
    });
    const [o] = await query<{ paid_at: Date | null }>(
      sql`select paid_at from orders where shop_id = 'shop-b' and id = 'TILL-1'`,
    );
    expect(o.paid_at).not.toBeNull();

    const after = await t.http().get('/payments/c2b/unclaimed').set('Authorization', cashier('shop-b'));
    expect(after.body.find((i: { id: string }) => i.id === item.id)).toBeUndefined();
    const twice = await t
      .http()
      .post(`/payments/c2b/${item.id}/claim`)
      .set('Authorization', cashier('shop-b'))
      .send({ orderId: 'TILL-1' });
    expect(twice.status).toBe(409);
    expect(twice.body.code).toBe('C2B_ALREADY_CLAIMED');
  });

  it('two cashiers claiming one payment at once: exactly one wins, one payment is made', async () => {
    await order('shop-b', 'TILL-A', 60);
    await order('shop-b', 'TILL-B', 60);
    const paid = await t.sim.c2bPay({ shortcode: STORE, amount: 60 });
    const { id } = (await c2bRow(paid.transId)) as { id: string };
    const before = await counts();
    const [one, two] = await Promise.all([
      t
        .http()
        .post(`/payments/c2b/${id}/claim`)
        .set('Authorization', cashier('shop-b', 'cashier-1'))
        .send({ orderId: 'TILL-A' }),
      t
        .http()
        .post(`/payments/c2b/${id}/claim`)
        .set('Authorization', cashier('shop-b', 'cashier-2'))
        .send({ orderId: 'TILL-B' }),
    ]);
    expect([one.status, two.status].sort()).toEqual([200, 409]);
    const winner = one.status === 200 ? one : two;
    expect((one.status === 409 ? one : two).body.code).toBe('C2B_ALREADY_CLAIMED');
    const ps = await paymentsWithReceipt(paid.transId);
    expect(ps).toHaveLength(1);
    expect(ps[0].order_id).toBe(winner.body.orderId);
    expect((await counts()).payments - before.payments).toBe(1);
    expect((await counts()).paid_orders - before.paid_orders).toBe(1);
  });

  it('another shop’s feed is never visible, and its payments cannot be claimed (404)', async () => {
    const paid = await t.sim.c2bPay({ shortcode: STORE, amount: 33 });
    const { id } = (await c2bRow(paid.transId)) as { id: string };
    const a = await t.http().get('/payments/c2b/unclaimed').set('Authorization', cashier('shop-a'));
    expect(a.status).toBe(200);
    expect(a.body.map((i: { receipt: string }) => i.receipt)).not.toContain(paid.transId);
    const search = await t
      .http()
      .get(`/payments/c2b/unclaimed?receipt=${paid.transId}`)
      .set('Authorization', cashier('shop-a'));
    expect(search.body).toEqual([]);
    await order('shop-a', 'STEAL-1', 33);
    const steal = await t
      .http()
      .post(`/payments/c2b/${id}/claim`)
      .set('Authorization', cashier('shop-a'))
      .send({ orderId: 'STEAL-1' });
    expect(steal.status).toBe(404);
    const unknown = await t
      .http()
      .post(`/payments/c2b/${randomUUID()}/claim`)
      .set('Authorization', cashier('shop-b'))
      .send({ orderId: 'X' });
    expect(unknown.status).toBe(404);
    expect((await c2bRow(paid.transId)).status).toBe('unclaimed');
    const noAuth = await t.http().get('/payments/c2b/unclaimed');
    expect(noAuth.status).toBe(401);
  });

  async function pushFor(orderId: string, amount: number, phone: string) {
    const res = await t
      .http()
      .post('/payments/stk-push')
      .set('Authorization', cashier('shop-a'))
      .send({ phoneNumber: phone, amount, orderId });
    return res;
  }
  const paymentOf = async (orderId: string) =>
    query<{ id: string; status: string; status_reason: string | null; mpesa_receipt_number: string | null }>(
      sql`select id, status, status_reason, mpesa_receipt_number from payments where shop_id = 'shop-a' and order_id = ${orderId}`,
    );

  it('the C2B twin of an STK payment (same receipt) is the same money: one payment, whichever arrives first', async () => {
    await order('shop-a', 'STK-TWIN', 20);
    t.sim.setC2bSettings({ stkConfirmations: 'plain' });
    try {
      expect((await pushFor('STK-TWIN', 20, '254712000111')).status).toBe(201);
      const receipt = await waitFor(
        async () => (await paymentOf('STK-TWIN')).find((p) => p.status === 'completed')?.mpesa_receipt_number,
      );
      const twin = await waitFor(async () => {
        const r = await c2bRow(receipt);
        return r && r.status !== 'received' ? r : null;
      });
      // The callback first: the twin is recognised; the confirmation first: it settled the push itself.
      expect(['stk_twin', 'applied', 'unclaimed']).toContain(twin.status);
      const ps = await paymentOf('STK-TWIN');
      expect(ps).toHaveLength(1);
      expect(ps[0]).toMatchObject({ status: 'completed', mpesa_receipt_number: receipt });
      expect(twin.payment_id === null || twin.payment_id === ps[0].id).toBe(true);
      const feed = await t
        .http()
        .get(`/payments/c2b/unclaimed?receipt=${receipt}`)
        .set('Authorization', cashier('shop-a'));
      expect(feed.body).toEqual([]);
    } finally {
      t.sim.setC2bSettings({ stkConfirmations: null });
    }
  });

  it('an STK push whose answer and callback were lost is settled by its confirmation when exactly one push fits; two fit: nothing guessed', async () => {
    const LOST = '254700000009'; // the simulator's "answer lost" number: the push is made, its HTTP answer never comes
    // A fixed seed: a random one is logged, and may look like a phone number to the log scan.
    t.sim.setFaults({ callbacks: { dropRate: 1 }, seed: 7 });
    try {
      await order('shop-a', 'LOST-1', 35);
      expect((await pushFor('LOST-1', 35, LOST)).status).toBe(504);
      const [p] = await waitFor(async () => {
        const ps = await paymentOf('LOST-1');
        return ps[0]?.status === 'unresolved' ? ps : null;
      });
      // AccountReference is the order id fitted to Daraja's characters ("LOST1").
      const push = await waitFor(async () => t.sim.pushes().find((x) => x.accountReference === 'LOST1' && x.receipt));
      const paid = await t.sim.c2bPay({
        shortcode: PAYBILL,
        amount: 35,
        msisdn: LOST,
        msisdnForm: 'plain',
        transId: push.receipt,
      });
      expect(paid.confirmations[0].status).toBe(200);
      expect((await paymentOf('LOST-1'))[0]).toMatchObject({
        id: p.id,
        status: 'completed',
        mpesa_receipt_number: push.receipt,
      });
      expect(await c2bRow(push.receipt!)).toMatchObject({
        status: 'applied',
        status_reason: 'SETTLED_PUSH',
        payment_id: p.id,
      });

      // Two unknown pushes of the same amount from the same phone: the confirmation proves neither.
      await order('shop-a', 'LOST-2', 45);
      await order('shop-a', 'LOST-3', 45);
      await new Promise((r) => setTimeout(r, 1100)); // RATE_LIMIT_PHONE_WINDOW_SECONDS=1
      expect((await pushFor('LOST-2', 45, LOST)).status).toBe(504);
      await new Promise((r) => setTimeout(r, 1100));
      expect((await pushFor('LOST-3', 45, LOST)).status).toBe(504);
      await waitFor(async () => (await paymentOf('LOST-3'))[0]?.status === 'unresolved');
      const two = await t.sim.c2bPay({ shortcode: PAYBILL, amount: 45, msisdn: LOST, msisdnForm: 'plain' });
      expect(await c2bRow(two.transId)).toMatchObject({
        status: 'review',
        status_reason: 'SEVERAL_PUSHES_FIT',
        payment_id: null,
      });
      expect((await paymentOf('LOST-2'))[0].status).toBe('unresolved');
      expect((await paymentOf('LOST-3'))[0].status).toBe('unresolved');
      expect(await paymentsWithReceipt(two.transId)).toEqual([]);
    } finally {
      t.sim.setFaults({});
    }
  });

  it("a chain branch's push whose answer and callback were lost is settled by its confirmation on the head office's account", async () => {
    const LOST = '254700000009';
    const operator = `Bearer ${t.token('platform', 'operator', 'ops-1')}`;
    const put = await t
      .http()
      .put('/shops/shop-b-branch/merchant-accounts/mpesa')
      .set('Authorization', operator)
      .send({ environment: 'simulator', type: 'till', tillNumber: TILL, credentialsFromShopId: 'shop-b' });
    expect(put.status).toBe(200);
    t.sim.setFaults({ callbacks: { dropRate: 1 }, seed: 7 });
    try {
      await order('shop-b-branch', 'BR-LOST-1', 55);
      await new Promise((r) => setTimeout(r, 1100)); // RATE_LIMIT_PHONE_WINDOW_SECONDS=1
      const pushed = await t
        .http()
        .post('/payments/stk-push')
        .set('Authorization', cashier('shop-b-branch'))
        .send({ phoneNumber: LOST, amount: 55, orderId: 'BR-LOST-1' });
      expect(pushed.status).toBe(504);
      const branchPayment = async () =>
        (
          await query<{ id: string; status: string; mpesa_receipt_number: string | null }>(
            sql`select id, status, mpesa_receipt_number from payments where shop_id = 'shop-b-branch' and order_id = 'BR-LOST-1'`,
          )
        )[0];
      const p = await waitFor(async () => ((await branchPayment())?.status === 'unresolved' ? branchPayment() : null));
      const push = await waitFor(async () => t.sim.pushes().find((x) => x.accountReference === 'BRLOST1' && x.receipt));
      // The customer's money reaches the head office's C2B URLs (the branch's till, its store's registration).
      const paid = await t.sim.c2bPay({
        shortcode: TILL,
        amount: 55,
        msisdn: LOST,
        msisdnForm: 'plain',
        transId: push.receipt,
      });
      expect(paid.confirmations[0].status).toBe(200);
      expect(await branchPayment()).toMatchObject({
        id: p!.id,
        status: 'completed',
        mpesa_receipt_number: push.receipt,
      });
      expect(await c2bRow(push.receipt!)).toMatchObject({
        shop_id: 'shop-b',
        status: 'applied',
        status_reason: 'SETTLED_PUSH',
        payment_id: p!.id,
      });
    } finally {
      t.sim.setFaults({});
    }
  });
});
