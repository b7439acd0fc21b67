import { sql } from 'drizzle-orm';
import { phoneHash } from '../src/payments/phone-hash';
import { C2bPullService } from '../src/payments/providers/mpesa/c2b-pull.service';
import { C2bTestContext, PAYBILL, PAYER, startC2bTestApp, TILL } from './helpers/c2b';
import { startExtraTestApp, TEST_CALLBACK_SECRET, TestApp, waitFor } from './helpers/test-app';

/**
 * Customer-started payments that reach us another way than their confirmation: a confirmation
 * Daraja dropped, recovered by the Pull Transactions pass (C2bPullService) through the same
 * ingestion and matching, once; and a Dynamic QR for an order, paid by the customer and matched.
 * The pass is switched off on its timer and run directly, so each step is deterministic.
 */
describe('C2B: Pull Transactions recovery and a paid Dynamic QR', () => {
  let c: C2bTestContext;
  let t: TestApp;
  const pass = () => t.app.get(C2bPullService).tick();
  const orderView = async (id: string) =>
    (await t.http().get(`/orders/${id}`).set('Authorization', c.cashier('shop-a'))).body;

  beforeAll(async () => {
    c = await startC2bTestApp({
      registered: true,
      env: { MPESA_C2B_PULL_ENABLED: 'false', MPESA_QR_SIZE: '120', MPESA_HTTP_TIMEOUT_MS: '8000' },
    });
    t = c.t;
    const pull = await t
      .http()
      .post('/shops/shop-a/merchant-accounts/mpesa/pull-registration')
      .set('Authorization', c.mgr('shop-a'))
      .send({ nominatedNumber: '0722000000' });
    expect(pull.status).toBe(201);
  });
  afterAll(() => c.close());

  it('a confirmation dropped and recovered by Pull Transactions: the order is paid once, and nothing after changes it', async () => {
    await c.order('shop-a', 'PULL-1', 300);
    const before = await c.counts();
    const paid = await t.sim.c2bPay({
      shortcode: PAYBILL,
      amount: 300,
      billRefNumber: 'PULL-1',
      msisdn: PAYER,
      msisdnForm: 'plain',
      copies: 0,
    });
    expect(paid).toMatchObject({ outcome: 'confirmed', confirmations: [] });
    // The confirmation never came: nothing here knows of the payment.
    expect(await c.counts()).toEqual(before);
    expect((await orderView('PULL-1')).outstanding).toBe(300);

    const first = await pass();
    expect(first).toMatchObject({ shortcodes: 1, stored: 1, skipped: 0 });
    const [p] = await c.paymentsWithReceipt(paid.transId);
    expect(p).toMatchObject({ status: 'completed', order_id: 'PULL-1', amount_minor: '30000' });
    expect(await orderView('PULL-1')).toMatchObject({ outstanding: 0 });
    const row = await c.c2bRow(paid.transId);
    expect(row).toMatchObject({
      status: 'applied',
      payment_id: p.id,
      bill_ref_number: 'PULL-1',
      trans_time: paid.body.TransTime,
      amount_minor: '30000',
      deliveries: 0,
      // The plain number Pull gave is kept only as our keyed hash, like a confirmation's.
      msisdn_form: 'plain',
      phone_hash: phoneHash(TEST_CALLBACK_SECRET, PAYER),
      msisdn_sha256: null,
      phone_masked: null,
    });
    const afterFirst = await c.counts();
    expect(afterFirst).toEqual({
      ...before,
      payments: before.payments + 1,
      c2b: before.c2b + 1,
      paid_orders: before.paid_orders + 1,
    });

    // The next pass lists the same transaction: already stored, left exactly as it is.
    const second = await pass();
    expect(second).toMatchObject({ shortcodes: 1, stored: 0 });
    expect(second.listed).toBeGreaterThanOrEqual(1);
    expect(await c.counts()).toEqual(afterFirst);
    expect(await c.c2bRow(paid.transId)).toEqual(row);

    // The confirmation arriving late is acknowledged and counted as a delivery; no second payment.
    const late = await t.sim.c2bPay({
      shortcode: PAYBILL,
      amount: 300,
      billRefNumber: 'PULL-1',
      msisdn: PAYER,
      msisdnForm: 'plain',
      transId: paid.transId,
      transTime: paid.body.TransTime,
    });
    expect(late.confirmations.map((d) => d.status)).toEqual([200]);
    expect(JSON.parse(late.confirmations[0].body!)).toEqual({ ResultCode: 0, ResultDesc: 'Success' });
    expect(await c.counts()).toEqual({ ...afterFirst, deliveries: afterFirst.deliveries + 1 });
    expect(await c.c2bRow(paid.transId)).toMatchObject({ status: 'applied', payment_id: p.id, deliveries: 1 });
    expect(await c.paymentsWithReceipt(paid.transId)).toHaveLength(1);
    expect(await orderView('PULL-1')).toMatchObject({ outstanding: 0 });
  });

  it('a confirmation that did arrive is not touched by the pass', async () => {
    await c.order('shop-a', 'PULL-2', 80);
    const paid = await t.sim.c2bPay({ shortcode: PAYBILL, amount: 80, billRefNumber: 'PULL-2', msisdnForm: 'masked' });
    const row = await c.c2bRow(paid.transId);
    expect(row).toMatchObject({ status: 'applied', deliveries: 1, msisdn_form: 'masked' });
    const before = await c.counts();
    expect(await pass()).toMatchObject({ stored: 0 });
    expect(await c.counts()).toEqual(before);
    expect(await c.c2bRow(paid.transId)).toEqual(row);
  });

  it('another instance recovers it on its timer; racing this one’s passes still makes one row, one payment', async () => {
    await c.order('shop-a', 'PULL-3', 55);
    await c.order('shop-a', 'PULL-4', 65);
    const pay = (amount: number, ref: string) =>
      t.sim.c2bPay({ shortcode: PAYBILL, amount, billRefNumber: ref, msisdnForm: 'hashed', copies: 0 });
    const timerOnly = await pay(55, 'PULL-3');
    const before = await c.counts();
    const other = await startExtraTestApp(t, {
      CREDENTIALS_KEYS: c.credentialsKeys,
      MPESA_C2B_PULL_INTERVAL_MS: '1000',
      MPESA_C2B_PULL_LOOKBACK_SECONDS: '3600',
      MPESA_HTTP_TIMEOUT_MS: '8000',
    });
    let raced: Awaited<ReturnType<typeof pay>>;
    try {
      // No pass here: only the other instance's timer can pay it.
      await waitFor(async () => (await c.paymentsWithReceipt(timerOnly.transId)).length > 0, 10_000);
      expect(await pass()).toMatchObject({ stored: 0 });
      raced = await pay(65, 'PULL-4');
      // This instance's passes race the other's timer for the same TransID.
      await Promise.all([pass(), pass(), new Promise((r) => setTimeout(r, 600)).then(pass)]);
      await new Promise((r) => setTimeout(r, 1500)); // at least one more pass of the other instance
    } finally {
      await other.close();
    }
    for (const [paid, ref, minor] of [
      [timerOnly, 'PULL-3', '5500'],
      [raced, 'PULL-4', '6500'],
    ] as const) {
      expect(await c.paymentsWithReceipt(paid.transId)).toEqual([
        expect.objectContaining({ status: 'completed', order_id: ref, amount_minor: minor }),
      ]);
      expect(await c.c2bRow(paid.transId)).toMatchObject({
        status: 'applied',
        deliveries: 0,
        msisdn_form: 'sha256',
        msisdn_sha256: paid.body.MSISDN,
      });
    }
    expect(await c.counts()).toEqual({
      ...before,
      payments: before.payments + 2,
      c2b: before.c2b + 2,
      paid_orders: before.paid_orders + 2,
    });
  });

  it('a QR generated and paid: the customer pays what the QR says, the confirmation is matched, the order is paid', async () => {
    await c.order('shop-a', 'QR-PAY-1', 420);
    const before = t.sim.qrRequests().length;
    const qr = await t.http().get('/orders/QR-PAY-1/mpesa-qr').set('Authorization', c.cashier('shop-a'));
    expect(qr.status).toBe(200);
    expect(qr.body).toMatchObject({
      orderId: 'QR-PAY-1',
      amount: 420,
      currency: 'KES',
      type: 'paybill',
      businessNumber: PAYBILL,
      accountNumber: 'QR-PAY-1',
    });
    // What the PNG encodes (the simulator keeps the request it drew): the same number, amount and reference.
    const [encoded] = t.sim.qrRequests().slice(before);
    expect(encoded).toMatchObject({ TrxCode: 'PB', CPI: PAYBILL, Amount: 420, RefNo: 'QR-PAY-1' });

    const paid = await t.sim.c2bPay({
      shortcode: encoded.CPI,
      amount: encoded.Amount,
      billRefNumber: encoded.RefNo,
      msisdnForm: 'hashed',
    });
    expect(paid.confirmations.map((d) => d.status)).toEqual([200]);
    const [p] = await c.paymentsWithReceipt(paid.transId);
    expect(p).toMatchObject({ status: 'completed', order_id: 'QR-PAY-1', amount_minor: '42000' });
    expect(await c.c2bRow(paid.transId)).toMatchObject({ status: 'applied', payment_id: p.id, msisdn_form: 'sha256' });
    expect(await orderView('QR-PAY-1')).toMatchObject({ outstanding: 0 });
    const [o] = await c.query<{ paid_at: Date | null }>(
      sql`select paid_at from orders where shop_id = 'shop-a' and id = 'QR-PAY-1'`,
    );
    expect(o.paid_at).not.toBeNull();
    // A pass afterwards finds it stored already.
    const counts = await c.counts();
    expect(await pass()).toMatchObject({ stored: 0 });
    expect(await c.counts()).toEqual(counts);
  });

  it("a till QR paid to the till number reaches the till account's feed, and a dropped one is recovered by Pull (the till is what Pull asks)", async () => {
    const cashierB = c.cashier('shop-b');
    await c.order('shop-b', 'QR-TILL-1', 65);
    const qr = await t.http().get('/orders/QR-TILL-1/mpesa-qr').set('Authorization', cashierB);
    expect(qr.status).toBe(200);
    expect(qr.body).toMatchObject({ type: 'till', businessNumber: TILL, accountNumber: null, amount: 65 });
    // The customer pays the number the QR (or the shop's sticker) carries: the till, not the store.
    const paid = await t.sim.c2bPay({ shortcode: qr.body.businessNumber, amount: qr.body.amount });
    expect(paid.outcome).toBe('confirmed');
    expect(paid.confirmations.map((d) => d.status)).toEqual([200]);
    const feed = await t.http().get(`/payments/c2b/unclaimed?receipt=${paid.transId}`).set('Authorization', cashierB);
    expect(feed.body).toEqual([expect.objectContaining({ receipt: paid.transId, amount: 65, reason: 'NO_REFERENCE' })]);

    const pull = await t
      .http()
      .post('/shops/shop-b/merchant-accounts/mpesa/pull-registration')
      .set('Authorization', c.mgr('shop-b'))
      .send({ nominatedNumber: '0722000001' });
    expect(pull.status).toBe(201);
    expect(pull.body.shortcode).toBe(TILL);
    const dropped = await t.sim.c2bPay({ shortcode: TILL, amount: 66, copies: 0 });
    expect(dropped).toMatchObject({ outcome: 'confirmed', confirmations: [] });
    expect(await c.c2bRow(dropped.transId)).toBeUndefined();
    await pass();
    expect(await c.c2bRow(dropped.transId)).toMatchObject({ shop_id: 'shop-b', status: 'unclaimed', deliveries: 0 });
  });
});
