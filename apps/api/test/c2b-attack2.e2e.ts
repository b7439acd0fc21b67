import { sql } from 'drizzle-orm';
import { scopedCallbackToken } from '../src/payments/providers/mpesa/callback-token';
import { C2bTestContext, PAYBILL, startC2bTestApp, TILL } from './helpers/c2b';
import { TEST_CALLBACK_SECRET, TestApp, waitFor } from './helpers/test-app';

/**
 * Second attack review of C2B / Dynamic QR after the credential-rotation changes: one TransID is one
 * row for a shop across its account rows, and a QR is made wherever the shop's C2B URLs are
 * registered, through HTTP on a real Postgres.
 */
(process.env.DATABASE_URL ? describe : describe.skip)('C2B across rotated account rows (attack review 2)', () => {
  let c: C2bTestContext;
  let t: TestApp;
  let rotated: string;

  const confUrl = (accountId: string) =>
    `/payments/c2b/${accountId}/confirmation/${scopedCallbackToken(TEST_CALLBACK_SECRET, 'c2b-confirmation', accountId)}`;
  const body = (transId: string, amount = '40') => ({
    TransactionType: 'Pay Bill',
    TransID: transId,
    TransTime: '20261204101010',
    TransAmount: amount,
    BusinessShortCode: PAYBILL,
    BillRefNumber: '',
    MSISDN: '254712345678',
    FirstName: 'Jane',
  });

  beforeAll(async () => {
    c = await startC2bTestApp({ env: { MPESA_C2B_PULL_ENABLED: 'false' } });
    t = c.t;
    expect((await c.register('shop-a')).status).toBe(200);
    // A manager rotates the consumer secret / passkey: a new account row for the same paybill; the
    // C2B URLs registered at Safaricom (one-time) still name the old row.
    const put = await t.http().put('/shops/shop-a/merchant-accounts/mpesa').set('Authorization', c.mgr('shop-a')).send({
      environment: 'simulator',
      type: 'paybill',
      shortcode: PAYBILL,
      consumerKey: 'smartduka-sim-key',
      consumerSecret: 'smartduka-sim-secret',
      passkey: c.passkeyA,
      merchantName: 'Rotated Shop',
    });
    expect(put.status).toBe(200);
    rotated = put.body.accountId;
    expect(rotated).not.toBe(c.accountA);
  });
  afterAll(() => c.close());

  it('after a rotation the QR is still made: the C2B URLs registered for the shortcode still reach the shop', async () => {
    await c.order('shop-a', 'ROT-QR-1', 120);
    const res = await t.http().get('/orders/ROT-QR-1/mpesa-qr').set('Authorization', c.cashier('shop-a'));
    expect({ status: res.status, code: res.body.code }).toEqual({ status: 200, code: undefined });
    expect(res.body).toMatchObject({ amount: 120, type: 'paybill', businessNumber: PAYBILL });
    // What was registered is still shown to the shop's manager (it is in force, for the old row).
    const reg = await t.http().get('/shops/shop-a/c2b-registration').set('Authorization', c.mgr('shop-a'));
    expect({ status: reg.status, accountId: reg.body.accountId, shortcode: reg.body.shortcode }).toEqual({
      status: 200,
      accountId: c.accountA,
      shortcode: PAYBILL,
    });
    // And the QR's payment, confirmed on the old row's URL, pays the order.
    const paid = await t.sim.c2bPay({ shortcode: PAYBILL, amount: 120, billRefNumber: 'ROT-QR-1' });
    expect(await c.c2bRow(paid.transId)).toMatchObject({ status: 'applied', merchant_account_id: c.accountA });
  });

  it("after a rotation a push of unknown outcome (made with the new row) is settled by its confirmation on the old row's URL", async () => {
    const LOST = '254700000009'; // the simulator loses the push's answer
    t.sim.setFaults({ callbacks: { dropRate: 1 }, seed: 7 });
    try {
      await c.order('shop-a', 'ROT-LOST-1', 65);
      await new Promise((r) => setTimeout(r, 1100)); // RATE_LIMIT_PHONE_WINDOW_SECONDS=1
      const pushed = await t
        .http()
        .post('/payments/stk-push')
        .set('Authorization', c.cashier('shop-a'))
        .send({ phoneNumber: LOST, amount: 65, orderId: 'ROT-LOST-1' });
      expect(pushed.status).toBe(504);
      const payment = async () =>
        (
          await c.query<{
            id: string;
            status: string;
            merchant_account_id: string;
            mpesa_receipt_number: string | null;
          }>(
            sql`select id, status, merchant_account_id, mpesa_receipt_number from payments where order_id = 'ROT-LOST-1'`,
          )
        )[0];
      const p = await waitFor(async () => ((await payment())?.status === 'unresolved' ? payment() : null));
      expect(p!.merchant_account_id).toBe(rotated);
      const push = await waitFor(async () =>
        t.sim.pushes().find((x) => x.accountReference === 'ROTLOST1' && x.receipt),
      );
      // The customer's money: its confirmation reaches the URLs registered for the old row.
      const paid = await t.sim.c2bPay({
        shortcode: PAYBILL,
        amount: 65,
        msisdn: LOST,
        msisdnForm: 'plain',
        transId: push.receipt,
      });
      expect(paid.confirmations[0].status).toBe(200);
      expect(await c.c2bRow(push.receipt!)).toMatchObject({
        merchant_account_id: c.accountA,
        status: 'applied',
        status_reason: 'SETTLED_PUSH',
        payment_id: p!.id,
      });
      expect(await payment()).toMatchObject({ id: p!.id, status: 'completed', mpesa_receipt_number: push.receipt });
    } finally {
      t.sim.setFaults({});
    }
  });

  it('one TransID delivered at once on the old and the new row URLs makes one row and one payment', async () => {
    const ids = Array.from({ length: 12 }, (_, i) => `XACC${String(i).padStart(6, '0')}`);
    await Promise.all(
      ids.flatMap((id) => [
        t.http().post(confUrl(c.accountA)).send(body(id)),
        t.http().post(confUrl(rotated)).send(body(id)),
      ]),
    );
    const rows = await c.query<{ trans_id: string; n: number; d: number }>(
      sql`select trans_id, count(*)::int as n, sum(deliveries)::int as d from c2b_transactions
          where trans_id like 'XACC%' group by trans_id order by trans_id`,
    );
    expect(rows).toEqual(ids.map((id) => ({ trans_id: id, n: 1, d: 2 })));
    for (const id of ids) {
      const feed = await t
        .http()
        .get(`/payments/c2b/unclaimed?receipt=${id}`)
        .set('Authorization', c.cashier('shop-a'));
      expect(feed.body).toHaveLength(1);
    }
  });

  it('a confirmation whose text fields carry control characters (NUL) is stored and acknowledged, not a 500 that loses it', async () => {
    await c.order('shop-a', 'NUL-ORD-1', 100);
    const sent = [
      { ...body('NULCHR0001'), BillRefNumber: 'NUL-ORD-1\u0000', FirstName: 'Ja\u0000ne' },
      { ...body('NULCHR0002'), TransactionType: 'Pay\u0000Bill', LastName: '\u0000Doe', InvoiceNumber: '\u0000' },
    ];
    for (const b of sent) {
      const res = await t.http().post(confUrl(c.accountA)).send(b);
      expect({ status: res.status, body: res.body }).toEqual({
        status: 200,
        body: { ResultCode: 0, ResultDesc: 'Success' },
      });
    }
    expect(await c.c2bRow('NULCHR0001')).toMatchObject({
      status: 'applied',
      bill_ref_number: 'NUL-ORD-1',
      customer_name: 'Jane',
    });
    expect(await c.c2bRow('NULCHR0002')).toMatchObject({
      status: 'unclaimed',
      transaction_type: 'PayBill',
      customer_name: 'Jane D.',
    });
  });

  it("no QR for a chain branch on its head office's account: the payment would land in the head office's feed", async () => {
    // shop-b is the head office (till TILL under STORE, its C2B URLs registered); the branch takes
    // payments with its credentials, on the same till.
    expect((await c.register('shop-b')).status).toBe(200);
    const put = await t
      .http()
      .put('/shops/shop-b-branch/merchant-accounts/mpesa')
      .set('Authorization', `Bearer ${t.token('platform', 'operator', 'ops-1')}`)
      .send({ environment: 'simulator', type: 'till', tillNumber: TILL, credentialsFromShopId: 'shop-b' });
    expect(put.status).toBe(200);
    await c.order('shop-b-branch', 'BR-QR-1', 45);
    const qr = await t.http().get('/orders/BR-QR-1/mpesa-qr').set('Authorization', c.cashier('shop-b-branch'));
    // Its payment would arrive on the head office's URLs as the head office's row: the branch's
    // cashier could never find it by the SMS code nor claim it (it was shown a QR before, and the
    // customer's money then waited in the head office's feed). Nothing of the head office is said.
    expect({ status: qr.status, code: qr.body.code }).toEqual({ status: 409, code: 'C2B_NOT_AVAILABLE' });
    expect(JSON.stringify(qr.body)).not.toContain('shop-b"');
    expect(JSON.stringify(qr.body)).not.toContain(c.accountB);
    // The head office's own QR is still made.
    await c.order('shop-b', 'HO-QR-1', 45);
    const own = await t.http().get('/orders/HO-QR-1/mpesa-qr').set('Authorization', c.cashier('shop-b'));
    expect({ status: own.status, type: own.body.type, businessNumber: own.body.businessNumber }).toEqual({
      status: 200,
      type: 'till',
      businessNumber: TILL,
    });
  });

  it("another shop's registration of the shortcode: an attempt of unknown outcome leaves the QR on, an accepted one turns it off", async () => {
    await c.order('shop-a', 'ROT-QR-2', 60);
    const qr = () => t.http().get('/orders/ROT-QR-2/mpesa-qr').set('Authorization', c.cashier('shop-a'));
    // Another shop's production-style attempt for this paybill whose answer never came (Daraja most
    // likely refused its credentials for a shortcode not theirs): the row it leaves behind.
    await c.query(sql`insert into c2b_registrations (id, merchant_account_id, shop_id, environment, shortcode,
        api_version, response_type, validation, confirmation_url, response, registered_by)
      values (gen_random_uuid(), ${c.accountB}, 'shop-b', 'simulator', ${PAYBILL}, 'v1', 'Completed', false,
        'https://example.invalid/…', '{"outcome":"unknown","error":"PROVIDER_TIMEOUT"}', 'user:mgr-shop-b (manager)')`);
    expect((await qr()).status).toBe(200);
    // Another shop's account on the same paybill registers it, and Daraja accepts: the URLs in force
    // are that shop's now, a QR payment would never be seen here.
    const put = await t
      .http()
      .put('/shops/shop-c/merchant-accounts/mpesa')
      .set('Authorization', c.mgr('shop-c'))
      .send({
        environment: 'simulator',
        type: 'paybill',
        shortcode: PAYBILL,
        consumerKey: 'smartduka-sim-key',
        consumerSecret: 'smartduka-sim-secret',
        passkey: 'c'.repeat(64),
      });
    expect(put.status).toBe(200);
    const reg = await c.register('shop-c');
    expect(reg.status).toBe(200);
    const refused = await qr();
    expect({ status: refused.status, code: refused.body.code }).toEqual({ status: 409, code: 'C2B_NOT_AVAILABLE' });
    // Nothing of the other shop in shop-a's answer.
    expect(JSON.stringify(refused.body)).not.toContain('shop-c');
    expect(JSON.stringify(refused.body)).not.toContain(put.body.accountId);
  });

  it('two shops claiming their rows of one TransID at the same moment: one payment completes, the other is refused or parked, never a 500', async () => {
    for (let i = 0; i < 4; i++) {
      const transId = `XSHOP${String(i).padStart(5, '0')}`;
      // The same TransID on both shops' (valid) confirmation URLs: each shop gets its own row.
      for (const account of [c.accountA, c.accountB])
        expect((await t.http().post(confUrl(account)).send(body(transId))).status).toBe(200);
      const rowOf = async (shop: string) =>
        (
          await c.query<{ id: string }>(
            sql`select id from c2b_transactions where trans_id = ${transId} and shop_id = ${shop}`,
          )
        )[0].id;
      const [rowA, rowB] = [await rowOf('shop-a'), await rowOf('shop-b')];
      await c.order('shop-a', `XS-A-${i}`, 100);
      await c.order('shop-b', `XS-B-${i}`, 100);
      const answers = await Promise.all([
        t
          .http()
          .post(`/payments/c2b/${rowA}/claim`)
          .set('Authorization', c.cashier('shop-a'))
          .send({ orderId: `XS-A-${i}` }),
        t
          .http()
          .post(`/payments/c2b/${rowB}/claim`)
          .set('Authorization', c.cashier('shop-b'))
          .send({ orderId: `XS-B-${i}` }),
      ]);
      // One claim completes its order; the other is refused (409), or, when the core itself saw the
      // receipt taken, answered with its payment parked in review (DUPLICATE_RECEIPT): never a 500.
      const got = answers
        .map((r) => (r.status === 200 ? `200 ${r.body.status} ${r.body.statusReason}` : `${r.status} ${r.body.code}`))
        .sort();
      expect(got[0]).toBe('200 completed PAID');
      expect(['409 C2B_ALREADY_APPLIED', '409 C2B_NEEDS_REVIEW', '200 review DUPLICATE_RECEIPT']).toContain(got[1]);
      expect(await c.paymentsWithReceipt(transId)).toHaveLength(1);
    }
  });

  it("a receipt another shop's payment holds: POST /payments/:id/mpesa-receipt does not name that shop's payment", async () => {
    // shop-b's paybill-style confirmation pays its order: its payment holds the receipt.
    await c.order('shop-b', 'LEAK-B-1', 100);
    const held = { ...body('LEAKRCPT01'), BillRefNumber: 'LEAK-B-1' };
    expect((await t.http().post(confUrl(c.accountB)).send(held)).status).toBe(200);
    const [theirs] = await c.paymentsWithReceipt('LEAKRCPT01');
    expect(theirs.order_id).toBe('LEAK-B-1');
    // shop-a's push whose outcome is unknown; its manager types shop-b's receipt.
    t.sim.setFaults({ callbacks: { dropRate: 1 }, seed: 7 });
    try {
      await c.order('shop-a', 'LEAK-A-1', 30);
      await new Promise((r) => setTimeout(r, 1100));
      const pushed = await t
        .http()
        .post('/payments/stk-push')
        .set('Authorization', c.cashier('shop-a'))
        .send({ phoneNumber: '254700000009', amount: 30, orderId: 'LEAK-A-1' });
      expect(pushed.status).toBe(504);
      const mine = await waitFor(async () => {
        const rows = await c.query<{ id: string; status: string }>(
          sql`select id, status from payments where order_id = 'LEAK-A-1'`,
        );
        return rows[0]?.status === 'unresolved' ? rows[0] : null;
      });
      const res = await t
        .http()
        .post(`/payments/${mine!.id}/mpesa-receipt`)
        .set('Authorization', c.mgr('shop-a'))
        .send({ receipt: 'LEAKRCPT01' });
      expect({ status: res.status, code: res.body.code }).toEqual({ status: 409, code: 'RECEIPT_IN_USE' });
      expect(JSON.stringify(res.body)).not.toContain(theirs.id);
    } finally {
      t.sim.setFaults({});
    }
  });
});
