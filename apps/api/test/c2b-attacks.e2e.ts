import { sql } from 'drizzle-orm';
import { randomBytes } from 'node:crypto';
import { scopedCallbackToken } from '../src/payments/providers/mpesa/callback-token';
import { C2bTestContext, PAYBILL, startC2bTestApp, TILL } from './helpers/c2b';
import { startExtraTestApp, TEST_CALLBACK_SECRET, TestApp, waitFor } from './helpers/test-app';

/** Attacks on the C2B capability URLs: a confirmation never links or moves money across shops. */
describe('C2B attacks', () => {
  let c: C2bTestContext;
  let t: TestApp;
  const url = (account: string) =>
    `/payments/c2b/${account}/confirmation/${scopedCallbackToken(TEST_CALLBACK_SECRET, 'c2b-confirmation', account)}`;
  const body = (transId: string, amount: string, ref = '') => ({
    TransactionType: 'Pay Bill',
    TransID: transId,
    TransTime: '20261203100000',
    TransAmount: amount,
    BusinessShortCode: '600411',
    BillRefNumber: ref,
    MSISDN: '25470****149',
    FirstName: 'John',
    LastName: 'Doe',
  });

  beforeAll(async () => {
    c = await startC2bTestApp({ registered: true });
    ({ t } = c);
  });
  afterAll(() => c.close());

  it('the same TransID again with another amount changes no money: the first wins', async () => {
    await c.order('shop-a', 'ATK-1', 100);
    const first = await t
      .http()
      .post(url(c.accountA))
      .send(body('ATKAAA0001', '100', 'ATK-1'));
    expect(first.status).toBe(200);
    const again = await t
      .http()
      .post(url(c.accountA))
      .send(body('ATKAAA0001', '5', 'ATK-1'));
    expect(again.status).toBe(200);
    const ps = await c.paymentsWithReceipt('ATKAAA0001');
    expect(ps).toHaveLength(1);
    expect(ps[0]).toMatchObject({ amount_minor: '10000', status: 'completed', order_id: 'ATK-1' });
    expect(await c.c2bRow('ATKAAA0001')).toMatchObject({ amount_minor: '10000', deliveries: 2 });
  });

  it("a confirmation on shop-b's URL carrying shop-a's receipt is not linked to shop-a's payment or order", async () => {
    await c.order('shop-a', 'ATK-2', 50);
    expect(
      (
        await t
          .http()
          .post(url(c.accountA))
          .send(body('ATKAAA0002', '50', 'ATK-2'))
      ).status,
    ).toBe(200);
    const [theirs] = await c.paymentsWithReceipt('ATKAAA0002');
    expect(theirs.order_id).toBe('ATK-2');

    const res = await t.http().post(url(c.accountB)).send(body('ATKAAA0002', '50'));
    expect(res.status).toBe(200);
    const rows = await c.query<{ shop_id: string; status: string; payment_id: string | null; order_id: string | null }>(
      sql`select shop_id, status, payment_id, order_id from c2b_transactions where trans_id = 'ATKAAA0002' and shop_id = 'shop-b'`,
    );
    expect(rows).toHaveLength(1);
    expect(rows[0].payment_id).toBeNull();
    expect(rows[0].order_id).toBeNull();
    expect(rows[0].status).toBe('review');
    // shop-a's payment is untouched, and shop-b's manager does not learn shop-a's order id.
    expect((await c.paymentsWithReceipt('ATKAAA0002'))[0]).toMatchObject({ id: theirs.id, status: 'completed' });
    const review = await t.http().get('/payments/c2b/review').set('Authorization', c.mgr('shop-b'));
    expect(review.status).toBe(200);
    expect(JSON.stringify(review.body)).not.toContain('ATK-2');
  });

  it("forged tokens, another account's token and malformed bodies are refused or parked; no cross-shop claim", async () => {
    await c.order('shop-a', 'ATK-3', 40);
    await c.order('shop-b', 'ATK-4', 40);
    const before = await c.counts();
    const tokenA = scopedCallbackToken(TEST_CALLBACK_SECRET, 'c2b-confirmation', c.accountA);
    for (const path of [
      `/payments/c2b/${c.accountB}/confirmation/${tokenA}`,
      `/payments/c2b/${c.accountA}/confirmation/${'f'.repeat(64)}`,
      `/payments/c2b/${c.accountA}/confirmation/${tokenA.toUpperCase()}x`,
      `/payments/c2b/${c.accountA}'%20or%201=1--/confirmation/${tokenA}`,
    ]) {
      const r = await t
        .http()
        .post(path)
        .send(body('ATKAAA0003', '40', 'ATK-3'));
      expect(r.status).toBe(404);
      expect(JSON.stringify(r.body)).not.toContain(tokenA);
    }
    expect(await c.counts()).toEqual(before);

    // Amounts that are not whole positive shillings never book money.
    for (const [i, amount] of ['-40', '40.50', 'NaN', '1e3', '0', '40; drop table payments'].entries()) {
      const r = await t
        .http()
        .post(url(c.accountA))
        .send(body(`ATKBAD000${i}`, amount, 'ATK-3'));
      expect(r.status).toBe(200);
      expect(await c.paymentsWithReceipt(`ATKBAD000${i}`)).toEqual([]);
    }
    // BillRefNumber naming another shop's order: not paid, parked in this shop's feed.
    expect(
      (
        await t
          .http()
          .post(url(c.accountA))
          .send(body('ATKAAA0004', '40', 'ATK-4'))
      ).status,
    ).toBe(200);
    expect(await c.paymentsWithReceipt('ATKAAA0004')).toEqual([]);
    const row = await c.c2bRow('ATKAAA0004');
    expect(row).toMatchObject({ shop_id: 'shop-a', status: 'unclaimed', status_reason: 'NO_ORDER' });
    // shop-b cannot see or claim shop-a's payment; shop-a cannot claim it for shop-b's order.
    const feedB = await t.http().get('/payments/c2b/unclaimed').set('Authorization', c.cashier('shop-b'));
    expect(JSON.stringify(feedB.body)).not.toContain('ATKAAA0004');
    const stolen = await t
      .http()
      .post(`/payments/c2b/${String(row.id)}/claim`)
      .set('Authorization', c.cashier('shop-b'))
      .send({ orderId: 'ATK-4' });
    expect(stolen.status).toBe(404);
    const across = await t
      .http()
      .post(`/payments/c2b/${String(row.id)}/claim`)
      .set('Authorization', c.cashier('shop-a'))
      .send({ orderId: 'ATK-4' });
    expect(across.status).toBe(404);
    expect(await c.paymentsWithReceipt('ATKAAA0004')).toEqual([]);
    expect((await c.c2bRow('ATKAAA0004')).status).toBe('unclaimed');
    const qr = await t.http().get('/orders/ATK-4/mpesa-qr').set('Authorization', c.cashier('shop-a'));
    expect(qr.status).toBe(404);
  });

  it('concurrent deliveries of one TransID with different amounts make one payment, of the stored amount', async () => {
    await c.order('shop-a', 'ATK-5', 30);
    const sent = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        t
          .http()
          .post(url(c.accountA))
          .send(body('ATKAAA0005', i % 2 ? '3000' : '30', 'ATK-5')),
      ),
    );
    expect(sent.map((r) => r.status)).toEqual(Array(8).fill(200));
    const row = await c.c2bRow('ATKAAA0005');
    expect(row.deliveries).toBe(8);
    const ps = await c.paymentsWithReceipt('ATKAAA0005');
    expect(ps).toHaveLength(1);
    expect(ps[0].amount_minor).toBe(String(row.amount_minor));
  });

  it('a review row and an unclaimed row for a paid order cannot be claimed; nothing changes', async () => {
    await c.order('shop-b', 'ATK-6', 20);
    expect(
      (
        await t
          .http()
          .post(url(c.accountB))
          .send(body('ATKAAA0006', '20', 'ATK-6'))
      ).status,
    ).toBe(200);
    expect((await c.paymentsWithReceipt('ATKAAA0006'))[0].status).toBe('completed');
    expect((await t.http().post(url(c.accountB)).send(body('ATKAAA0007', '20'))).status).toBe(200);
    const loose = await c.c2bRow('ATKAAA0007');
    expect(loose.status).toBe('unclaimed');
    const paid = await t
      .http()
      .post(`/payments/c2b/${String(loose.id)}/claim`)
      .set('Authorization', c.cashier('shop-b'))
      .send({ orderId: 'ATK-6' });
    expect(paid.status).toBe(409);
    expect(paid.body.code).toBe('ORDER_ALREADY_PAID');
    expect((await c.c2bRow('ATKAAA0007')).status).toBe('unclaimed');
    expect(await c.paymentsWithReceipt('ATKAAA0007')).toEqual([]);

    const review = (
      await c.query<{ id: string }>(
        sql`select id from c2b_transactions where trans_id = 'ATKAAA0002' and shop_id = 'shop-b'`,
      )
    )[0];
    await c.order('shop-b', 'ATK-8', 50);
    const r = await t
      .http()
      .post(`/payments/c2b/${review.id}/claim`)
      .set('Authorization', c.cashier('shop-b'))
      .send({ orderId: 'ATK-8' });
    expect(r.status).toBe(409);
    expect(JSON.stringify(r.body)).not.toContain('ATK-2');
    expect(await c.paymentsWithReceipt('ATKAAA0002')).toHaveLength(1);
  });

  it("a till payment left unclaimed in shop-b is not hidden by shop-a's payment of the same receipt: it goes to review, nothing of shop-a shown", async () => {
    // shop-b's unclaimed row first, then shop-a's payment takes the same receipt.
    expect((await t.http().post(url(c.accountB)).send(body('ATKAAA0009', '25'))).status).toBe(200);
    const theirsRow = await c.c2bRow('ATKAAA0009');
    expect(theirsRow).toMatchObject({ shop_id: 'shop-b', status: 'unclaimed' });
    await c.order('shop-a', 'ATK-9', 25);
    expect(
      (
        await t
          .http()
          .post(url(c.accountA))
          .send(body('ATKAAA0009', '25', 'ATK-9'))
      ).status,
    ).toBe(200);
    const [held] = await c.paymentsWithReceipt('ATKAAA0009');
    expect(held).toMatchObject({ order_id: 'ATK-9', status: 'completed' });

    // Not silently gone from shop-b: out of the cashiers' feed, in the managers' review, as the
    // matcher does for a confirmation arriving after the other shop's payment.
    const feed = await t.http().get('/payments/c2b/unclaimed').set('Authorization', c.cashier('shop-b'));
    expect(feed.status).toBe(200);
    expect(JSON.stringify(feed.body)).not.toContain('ATKAAA0009');
    const review = await t.http().get('/payments/c2b/review').set('Authorization', c.mgr('shop-b'));
    expect(review.status).toBe(200);
    expect(review.body).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: theirsRow.id, receipt: 'ATKAAA0009', reason: 'RECEIPT_OF_ANOTHER_SHOP' }),
      ]),
    );
    expect(JSON.stringify(review.body)).not.toContain('ATK-9');
    // A cashier who still has the row on screen cannot claim it, and learns nothing of shop-a.
    await c.order('shop-b', 'ATK-10', 25);
    const claim = await t
      .http()
      .post(`/payments/c2b/${String(theirsRow.id)}/claim`)
      .set('Authorization', c.cashier('shop-b'))
      .send({ orderId: 'ATK-10' });
    expect(claim.status).toBe(409);
    expect(claim.body.code).toBe('C2B_NEEDS_REVIEW');
    expect(claim.body.message).toMatch(/manager/);
    expect(JSON.stringify(claim.body)).not.toContain('ATK-9');
    expect(await c.paymentsWithReceipt('ATKAAA0009')).toEqual([held]);
  });

  it("a chain branch's STK payment and its C2B twin on the head office's account are one payment, not another shop's receipt", async () => {
    // shop-b is the head office (till TILL under STORE); the branch takes payments with its credentials.
    const operator = `Bearer ${t.token('platform', 'operator', 'ops-1')}`;
    const put = await t
      .http()
      .put('/shops/shop-b-branch/merchant-accounts/mpesa')
      .set('Authorization', operator)
      .send({ environment: 'simulator', type: 'till', tillNumber: TILL, credentialsFromShopId: 'shop-b' });
    expect(put.status).toBe(200);
    await c.order('shop-b-branch', 'BR-1', 35);
    const push = await t
      .http()
      .post('/payments/stk-push')
      .set('Authorization', c.cashier('shop-b-branch'))
      .send({ phoneNumber: '254712000222', amount: 35, orderId: 'BR-1' });
    expect(push.status).toBe(201);
    const receipt = await waitFor(async () => {
      const r = await c.query<{ status: string; mpesa_receipt_number: string | null }>(
        sql`select status, mpesa_receipt_number from payments where shop_id = 'shop-b-branch' and order_id = 'BR-1'`,
      );
      return r[0]?.status === 'completed' ? r[0].mpesa_receipt_number : null;
    });
    // The same money's confirmation reaches the head office's account (its URLs), after the callback.
    expect((await t.http().post(url(c.accountB)).send(body(receipt!, '35'))).status).toBe(200);
    const row = await c.c2bRow(receipt!);
    expect(row).toMatchObject({ shop_id: 'shop-b', status: 'stk_twin' });
    const review = await t.http().get('/payments/c2b/review').set('Authorization', c.mgr('shop-b'));
    expect(JSON.stringify(review.body)).not.toContain(receipt!);
    const feed = await t.http().get('/payments/c2b/unclaimed').set('Authorization', c.cashier('shop-b'));
    expect(JSON.stringify(feed.body)).not.toContain(receipt!);
    expect(await c.paymentsWithReceipt(receipt!)).toHaveLength(1);
  });

  it('a production shortcode registered by another shop is refused without telling who registered it or when', async () => {
    const prodEnv = {
      MPESA_ENV: 'production',
      MPESA_BASE_URL: t.sim.url,
      MPESA_CALLBACK_URL: 'https://pay.example.co.ke/payments/callback',
      MPESA_SHORTCODE: PAYBILL,
      MPESA_PASSKEY: randomBytes(32).toString('hex'),
      CREDENTIALS_KEYS: c.credentialsKeys,
    };
    const prod = await startExtraTestApp(t, prodEnv);
    try {
      const put = (shop: string) =>
        prod
          .http()
          .put(`/shops/${shop}/merchant-accounts/mpesa`)
          .set('Authorization', c.mgr(shop))
          .send({
            environment: 'production',
            type: 'paybill',
            shortcode: PAYBILL,
            consumerKey: 'smartduka-sim-key',
            consumerSecret: 'smartduka-sim-secret',
            passkey: randomBytes(32).toString('hex'),
          });
      expect((await put('shop-x1')).status).toBe(200);
      expect((await put('shop-x2')).status).toBe(200);
      const reg = (shop: string, body: Record<string, unknown> = {}) =>
        prod.http().post(`/shops/${shop}/c2b-registration`).set('Authorization', c.mgr(shop)).send(body);
      const first = await reg('shop-x1');
      expect(first.status).toBe(200);
      const other = await reg('shop-x2');
      expect(other.status).toBe(409);
      expect(other.body.code).toBe('C2B_ALREADY_REGISTERED');
      expect(other.body.message).toMatch(/another shop/);
      const said = JSON.stringify(other.body);
      for (const leak of ['shop-x1', 'mgr-shop-x1', first.body.registeredAt, first.body.accountId])
        expect(said).not.toContain(leak);
      expect(other.body.details).toEqual({ shortcode: PAYBILL });
      // The shop that registered it still gets the whole story of its own registration.
      const own = await reg('shop-x1');
      expect(own.status).toBe(409);
      expect(own.body.details).toMatchObject({
        registeredAt: first.body.registeredAt,
        accountId: first.body.accountId,
      });
      // Forced over another shop's registration: the answer and the audit trail name nothing of that shop's.
      const forced = await reg('shop-x2', { force: true });
      expect(forced.status).toBe(200);
      expect(JSON.stringify(forced.body)).not.toContain(first.body.registeredAt);
      const audit = await prod.http().get('/shops/shop-x2/audit-events').set('Authorization', c.mgr('shop-x2'));
      expect(audit.status).toBe(200);
      const firstId = (
        await c.query<{ id: string }>(sql`select id from c2b_registrations where shop_id = 'shop-x1'`)
      )[0].id;
      expect(JSON.stringify(audit.body)).not.toContain(firstId);
    } finally {
      await prod.close();
    }
  });
});
