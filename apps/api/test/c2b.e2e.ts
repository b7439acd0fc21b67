import { sql } from 'drizzle-orm';
import { randomBytes, randomUUID } from 'node:crypto';
import { scopedCallbackToken } from '../src/payments/providers/mpesa/callback-token';
import { phoneHash } from '../src/payments/phone-hash';
import { startTestApp, TEST_CALLBACK_SECRET, TestApp, waitFor } from './helpers/test-app';
import { recordSecrets } from './log-scan/sink';

/**
 * Payments the customer starts from their own phone (Daraja C2B) through HTTP, with the Daraja
 * simulator playing Safaricom and the customer: URLs registered per merchant account,
 * confirmations stored once whatever the duplicates, paybill payments applied to their order, till
 * payments claimed by a cashier exactly once, validation, and forged or bad deliveries changing nothing.
 */
const K1 = randomBytes(32).toString('base64');
const PASSKEY_A = randomBytes(32).toString('hex');
const PASSKEY_B = randomBytes(32).toString('hex');
const PAYBILL = '600411';
const STORE = '600422';
const TILL = '5223456';
const PAYER = '254712345678';

describe('C2B: till and paybill payments made from the customer’s phone', () => {
  let t: TestApp;
  const mgr = (shop: string) => `Bearer ${t.token(shop, 'manager', `mgr-${shop}`)}`;
  const cashier = (shop: string, sub = `cashier-${shop}`) => `Bearer ${t.token(shop, 'cashier', sub)}`;
  let accountA = '';
  let accountB = '';

  const query = async <T = Record<string, unknown>>(q: ReturnType<typeof sql>): Promise<T[]> =>
    ((await t.db.execute(q)) as unknown as { rows: T[] }).rows;

  async function order(shop: string, id: string, total: number) {
    const res = await t.http().post('/orders').set('Authorization', cashier(shop)).send({ id, total });
    expect(res.status).toBe(201);
  }
  async function register(shop: string, body: Record<string, unknown> = {}) {
    return t.http().post(`/shops/${shop}/c2b-registration`).set('Authorization', mgr(shop)).send(body);
  }
  const c2bRow = async (transId: string) =>
    (await query<Record<string, unknown>>(sql`select * from c2b_transactions where trans_id = ${transId}`))[0];
  const paymentsWithReceipt = (transId: string) =>
    query<{ id: string; status: string; status_reason: string | null; order_id: string; amount_minor: string }>(
      sql`select id, status, status_reason, order_id, amount_minor::text from payments where mpesa_receipt_number = ${transId}`,
    );
  const counts = async () =>
    (
      await query<Record<string, number>>(sql`select
        (select count(*) from payments)::int as payments,
        (select count(*) from c2b_transactions)::int as c2b,
        (select coalesce(sum(deliveries), 0) from c2b_transactions)::int as deliveries,
        (select count(*) from orders where paid_at is not null)::int as paid_orders`)
    )[0];

  beforeAll(async () => {
    t = await startTestApp({
      env: { CREDENTIALS_KEYS: `k1:${K1}`, RATE_LIMIT_PHONE_WINDOW_SECONDS: '1' },
      sim: {
        accounts: [
          { shortcode: PAYBILL, passkey: PASSKEY_A },
          { shortcode: STORE, passkey: PASSKEY_B, tillNumbers: [TILL] },
        ],
      },
    });
    recordSecrets([
      { kind: 'passkey', value: PASSKEY_A, pair: PAYBILL },
      { kind: 'passkey', value: PASSKEY_B, pair: STORE },
    ]);
    const base = { environment: 'simulator', consumerKey: 'smartduka-sim-key', consumerSecret: 'smartduka-sim-secret' };
    const a = await t
      .http()
      .put('/shops/shop-a/merchant-accounts/mpesa')
      .set('Authorization', mgr('shop-a'))
      .send({ ...base, type: 'paybill', shortcode: PAYBILL, passkey: PASSKEY_A });
    expect(a.status).toBe(200);
    accountA = a.body.accountId;
    const b = await t
      .http()
      .put('/shops/shop-b/merchant-accounts/mpesa')
      .set('Authorization', mgr('shop-b'))
      .send({ ...base, type: 'till', shortcode: STORE, tillNumber: TILL, passkey: PASSKEY_B });
    expect(b.status).toBe(200);
    accountB = b.body.accountId;
  });
  afterAll(() => t.close());

  it('registers each account’s capability URLs with Daraja, keeps what and when, and says what a re-registration replaced', async () => {
    expect(
      (await t.http().post('/shops/shop-a/c2b-registration').set('Authorization', cashier('shop-a')).send({})).status,
    ).toBe(403);
    expect(
      (await t.http().post('/shops/shop-a/c2b-registration').set('Authorization', mgr('shop-b')).send({})).status,
    ).toBe(403);
    const none = await t.http().get('/shops/shop-a/c2b-registration').set('Authorization', mgr('shop-a'));
    expect(none.status).toBe(200);
    expect(none.body).toEqual({});

    const a = await register('shop-a');
    expect(a.status).toBe(200);
    expect(a.body).toMatchObject({
      accountId: accountA,
      shortcode: PAYBILL,
      validation: false,
      responseType: 'Completed',
    });
    expect(a.body.response).toMatchObject({ responseCode: '0' });
    // Kept without the token; the one Daraja holds is the capability URL, free of the words it refuses.
    expect(a.body.confirmationUrl).toBe(`${t.baseUrl}/payments/c2b/${accountA}/confirmation/…`);
    const atDaraja = t.sim.c2bRegistrations().find((r) => r.shortcode === PAYBILL)!;
    expect(atDaraja.confirmationUrl).toBe(
      `${t.baseUrl}/payments/c2b/${accountA}/confirmation/${scopedCallbackToken(TEST_CALLBACK_SECRET, 'c2b-confirmation', accountA)}`,
    );
    expect(atDaraja.confirmationUrl).not.toMatch(/mpesa|safaricom|exe|cmd|sql|query/i);
    const b = await register('shop-b');
    expect(b.status).toBe(200);
    expect(b.body.shortcode).toBe(STORE);

    // The sandbox / simulator re-registers, and the answer says so (never silently).
    const again = await register('shop-a', { validation: true });
    expect(again.status).toBe(200);
    expect(again.body.replaced).toBe(a.body.registeredAt);
    expect(again.body.validationUrl).toBe(`${t.baseUrl}/payments/c2b/${accountA}/validation/…`);
    const read = await t.http().get('/shops/shop-a/c2b-registration').set('Authorization', mgr('shop-a'));
    expect(read.body).toMatchObject({ validation: true, registeredBy: 'user:mgr-shop-a (manager)' });

    // Daraja itself refusing (production keeps the first registration): its words reach the manager.
    t.sim.setC2bSettings({ oneTimeRegistration: true });
    const refused = await register('shop-a', { validation: true });
    t.sim.setC2bSettings({ oneTimeRegistration: false });
    expect(refused.status).toBe(502);
    expect(refused.body.message).toMatch(/Urls are already registered/);
    const noAccount = await register('shop-none');
    expect(noAccount.status).toBe(409);
    expect(noAccount.body.code).toBe('C2B_NOT_AVAILABLE');
  });

  it('applies a paybill payment whose account number names an open order of the shop, through the payment core', async () => {
    await order('shop-a', 'PB-1', 250);
    const paid = await t.sim.c2bPay({ shortcode: PAYBILL, amount: 250, billRefNumber: 'PB-1', msisdnForm: 'hashed' });
    expect(paid.outcome).toBe('confirmed');
    expect(paid.confirmations).toHaveLength(1);
    expect(paid.confirmations[0].status).toBe(200);
    expect(JSON.parse(paid.confirmations[0].body!)).toEqual({ ResultCode: 0, ResultDesc: 'Success' });
    const [p] = await paymentsWithReceipt(paid.transId);
    expect(p).toMatchObject({ status: 'completed', order_id: 'PB-1', amount_minor: '25000' });
    const [o] = await query<{ paid_at: Date | null }>(
      sql`select paid_at from orders where shop_id = 'shop-a' and id = 'PB-1'`,
    );
    expect(o.paid_at).not.toBeNull();
    const row = await c2bRow(paid.transId);
    expect(row).toMatchObject({
      status: 'applied',
      payment_id: p.id,
      msisdn_form: 'sha256',
      phone_hash: null,
      phone_masked: null,
    });
    expect(row.msisdn_sha256).toBe(paid.body.MSISDN);
    expect(row.customer_name).toBe('John D.');
    const view = await t.http().get(`/payments/${p.id}`).set('Authorization', cashier('shop-a'));
    expect(view.body).toMatchObject({ status: 'completed', mpesaReceiptNumber: paid.transId, provider: 'mpesa' });
  });

  it('a confirmation delivered three times is one row (counted three times) and one payment', async () => {
    await order('shop-a', 'PB-3', 40);
    const before = await counts();
    const paid = await t.sim.c2bPay({
      shortcode: PAYBILL,
      amount: 40,
      billRefNumber: 'PB-3',
      copies: 3,
      msisdnForm: 'masked',
    });
    expect(paid.confirmations.map((c) => c.status)).toEqual([200, 200, 200]);
    const after = await counts();
    expect(after.c2b - before.c2b).toBe(1);
    expect(after.deliveries - before.deliveries).toBe(3);
    expect(after.payments - before.payments).toBe(1);
    expect(await paymentsWithReceipt(paid.transId)).toHaveLength(1);
    expect(await c2bRow(paid.transId)).toMatchObject({
      deliveries: 3,
      status: 'applied',
      msisdn_form: 'masked',
      phone_masked: paid.body.MSISDN,
    });
  });

  it('never counts a paybill payment past the order’s total: the payment goes to review (EXCEEDS_OUTSTANDING)', async () => {
    await order('shop-a', 'PB-OVER', 100);
    const paid = await t.sim.c2bPay({ shortcode: PAYBILL, amount: 150, billRefNumber: 'PB-OVER' });
    const [p] = await paymentsWithReceipt(paid.transId);
    expect(p).toMatchObject({ status: 'review', status_reason: 'EXCEEDS_OUTSTANDING' });
    const [o] = await query<{ paid_at: Date | null }>(
      sql`select paid_at from orders where shop_id = 'shop-a' and id = 'PB-OVER'`,
    );
    expect(o.paid_at).toBeNull();
  });

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

  it('answers forged and bad confirmations without changing anything they should not', async () => {
    await order('shop-a', 'FORGE-1', 10);
    const good = `/payments/c2b/${accountA}/confirmation/${scopedCallbackToken(TEST_CALLBACK_SECRET, 'c2b-confirmation', accountA)}`;
    const body = (over: Record<string, unknown> = {}) => ({
      TransactionType: 'Pay Bill',
      TransID: `F${randomBytes(4).toString('hex').toUpperCase()}X`,
      TransTime: '20261203101500',
      TransAmount: '10.00',
      BusinessShortCode: PAYBILL,
      BillRefNumber: 'FORGE-1',
      MSISDN: '25470****149',
      FirstName: 'Mallory',
      LastName: 'M',
      ...over,
    });
    const before = await counts();
    const forged = [
      `/payments/c2b/${accountA}/confirmation/${'0'.repeat(64)}`,
      // a validation token does not open the confirmation URL, nor one account's token another's
      `/payments/c2b/${accountA}/confirmation/${scopedCallbackToken(TEST_CALLBACK_SECRET, 'c2b-validation', accountA)}`,
      `/payments/c2b/${accountB}/confirmation/${scopedCallbackToken(TEST_CALLBACK_SECRET, 'c2b-confirmation', accountA)}`,
      // an unknown account, even with its own valid token
      (() => {
        const id = randomUUID();
        return `/payments/c2b/${id}/confirmation/${scopedCallbackToken(TEST_CALLBACK_SECRET, 'c2b-confirmation', id)}`;
      })(),
      `/payments/c2b/not-a-uuid/confirmation/abc`,
    ];
    for (const url of forged) {
      const res = await t.http().post(url).send(body());
      expect(res.status).toBe(404);
      expect(res.body.message).toBe('C2B URL not found');
    }
    expect(await counts()).toEqual(before);

    // Bad amounts on the genuine URL: Daraja's reply all the same (the money moved), stored as invalid, nothing applied.
    for (const TransAmount of ['10.50', '0', '-10', 'ten', '']) {
      const b = body({ TransAmount });
      const res = await t.http().post(good).send(b);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ ResultCode: 0, ResultDesc: 'Success' });
      expect(await c2bRow(b.TransID as string)).toMatchObject({ status: 'invalid', amount_minor: null });
    }
    const garbage = await t.http().post(good).set('Content-Type', 'application/json').send('[1,2,3]');
    expect(garbage.status).toBe(200);
    const after = await counts();
    expect(after.payments).toBe(before.payments);
    expect(after.paid_orders).toBe(before.paid_orders);
    expect(after.c2b - before.c2b).toBe(6);
    const [o] = await query<{ paid_at: Date | null }>(
      sql`select paid_at from orders where shop_id = 'shop-a' and id = 'FORGE-1'`,
    );
    expect(o.paid_at).toBeNull();
  });

  it('validation (when enabled): accepts a payment for an open order, rejects an unknown account number (C2B00012) or a bad amount (C2B00013)', async () => {
    // shop-a re-registered with validation above; Safaricom switches it on for the shortcode.
    t.sim.setC2bValidation(PAYBILL, true);
    try {
      await order('shop-a', 'VAL-1', 120);
      const before = await counts();
      const unknown = await t.sim.c2bPay({ shortcode: PAYBILL, amount: 120, billRefNumber: 'NO-SUCH-ORDER' });
      expect(unknown).toMatchObject({ outcome: 'rejected', validation: { status: 200, resultCode: 'C2B00012' } });
      expect(unknown.confirmations).toEqual([]);
      const over = await t.sim.c2bPay({ shortcode: PAYBILL, amount: 500, billRefNumber: 'VAL-1' });
      expect(over).toMatchObject({ outcome: 'rejected', validation: { resultCode: 'C2B00013' } });
      const cents = await t.sim.c2bPay({ shortcode: PAYBILL, amountText: '120.40', billRefNumber: 'VAL-1' });
      expect(cents.validation?.resultCode).toBe('C2B00013');
      expect(await counts()).toEqual(before);

      const ok = await t.sim.c2bPay({ shortcode: PAYBILL, amount: 120, billRefNumber: 'VAL-1' });
      expect(ok).toMatchObject({ outcome: 'confirmed', validation: { status: 200, resultCode: '0' } });
      expect((await paymentsWithReceipt(ok.transId))[0]).toMatchObject({ status: 'completed', order_id: 'VAL-1' });

      // The answer's exact form, and the same 404 for a forged validation URL.
      const url = `/payments/c2b/${accountA}/validation/${scopedCallbackToken(TEST_CALLBACK_SECRET, 'c2b-validation', accountA)}`;
      const direct = await t
        .http()
        .post(url)
        .send({ ...ok.body, TransID: 'VALX000001', BillRefNumber: 'NOPE' });
      expect(direct.body).toEqual({ ResultCode: 'C2B00012', ResultDesc: 'Rejected' });
      const forged = await t
        .http()
        .post(`/payments/c2b/${accountA}/validation/${'a'.repeat(64)}`)
        .send(ok.body);
      expect(forged.status).toBe(404);
    } finally {
      t.sim.setC2bValidation(PAYBILL, false);
    }
    // Validation off at Daraja: an unknown reference is not refused, it lands in the feed.
    const later = await t.sim.c2bPay({ shortcode: PAYBILL, amount: 5, billRefNumber: 'NO-SUCH-ORDER' });
    expect(later.validation).toBeUndefined();
    expect(await c2bRow(later.transId)).toMatchObject({ status: 'unclaimed', status_reason: 'NO_ORDER' });
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
    t.sim.setFaults({ callbacks: { dropRate: 1 } });
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
});
