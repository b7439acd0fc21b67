import { sql } from 'drizzle-orm';
import { randomBytes } from 'node:crypto';
import { SANDBOX_PASSKEY } from '../src/config/app-config';
import { MerchantAccountsService } from '../src/payments/merchant-accounts.service';
import { MpesaPullService } from '../src/payments/providers/mpesa/mpesa-pull.service';
import { startTestApp, TestApp, waitFor } from './helpers/test-app';
import { recordSecrets } from './log-scan/sink';

/**
 * Dynamic QR of an order and the Pull Transactions client, through HTTP against the simulator:
 * the QR is for the shop's own till or paybill and the order's outstanding amount (never the
 * client's), another shop's order is not found; Pull registers once, pages, keeps to the 48-hour
 * window and tells "no rows" (registered) from "not provisioned" (never registered), both 1001.
 */
const K1 = randomBytes(32).toString('base64');
const SIM_KEY = 'smartduka-sim-key';
const SIM_SECRET = 'smartduka-sim-secret';
const PASSKEY_A = randomBytes(32).toString('hex');
const PASSKEY_B = randomBytes(32).toString('hex');
const PAYBILL = '600111';
const STORE = '600222';
const TILL = '5123456';
const HOUR = 3600_000;

describe('M-Pesa Dynamic QR and Pull Transactions, end to end', () => {
  let t: TestApp;
  const mgr = (shop: string) => `Bearer ${t.token(shop, 'manager', `mgr-${shop}`)}`;
  const cashier = (shop: string) => `Bearer ${t.token(shop, 'cashier', `cashier-${shop}`)}`;

  beforeAll(async () => {
    t = await startTestApp({
      // The simulator draws a real PNG per QR: on a loaded runner that can take over a second.
      env: { CREDENTIALS_KEYS: `k1:${K1}`, MPESA_QR_SIZE: '240', MPESA_HTTP_TIMEOUT_MS: '8000' },
      sim: {
        accounts: [
          { shortcode: '174379', passkey: SANDBOX_PASSKEY, tillNumbers: ['174379'] },
          { shortcode: PAYBILL, passkey: PASSKEY_A },
          { shortcode: STORE, passkey: PASSKEY_B, tillNumbers: [TILL] },
        ],
      },
    });
    recordSecrets([
      { kind: 'passkey', value: PASSKEY_A, pair: PAYBILL },
      { kind: 'passkey', value: PASSKEY_B, pair: STORE },
    ]);
    const accounts = {
      'shop-pb': {
        environment: 'simulator',
        type: 'paybill',
        shortcode: PAYBILL,
        consumerKey: SIM_KEY,
        consumerSecret: SIM_SECRET,
        passkey: PASSKEY_A,
        merchantName: 'Mama Mboga Shop',
      },
      'shop-till': {
        environment: 'simulator',
        type: 'till',
        shortcode: STORE,
        tillNumber: TILL,
        consumerKey: SIM_KEY,
        consumerSecret: SIM_SECRET,
        passkey: PASSKEY_B,
      },
    };
    for (const [shop, body] of Object.entries(accounts)) {
      const res = await t
        .http()
        .put(`/shops/${shop}/merchant-accounts/mpesa`)
        .set('Authorization', mgr(shop))
        .send(body);
      expect(res.status).toBe(200);
      // A QR's payment is seen only through the account's C2B URLs: registered first.
      const reg = await t.http().post(`/shops/${shop}/c2b-registration`).set('Authorization', mgr(shop)).send({});
      expect(reg.status).toBe(200);
    }
  });
  afterAll(() => t.close());

  async function order(shop: string, id: string, total: number) {
    const res = await t.http().post('/orders').set('Authorization', cashier(shop)).send({ id, total });
    expect(res.status).toBe(201);
  }
  const qr = (shop: string, id: string, query = '') =>
    t
      .http()
      .get(`/orders/${encodeURIComponent(id)}/mpesa-qr${query}`)
      .set('Authorization', cashier(shop));
  const png = (b64: string) => Buffer.from(b64, 'base64');

  describe('Dynamic QR', () => {
    it("paybill: the order's outstanding amount, the order id as account number, a real PNG", async () => {
      await order('shop-pb', 'ORD-QR-1', 150);
      // Pay 50 of it by STK push first: the QR is for what is left, whatever the client asks.
      const push = await t
        .http()
        .post('/payments/stk-push')
        .set('Authorization', cashier('shop-pb'))
        .send({ phoneNumber: '254712345678', amount: 50, orderId: 'ORD-QR-1' });
      expect(push.status).toBe(201);
      await waitFor(async () => {
        const o = await t.http().get('/orders/ORD-QR-1').set('Authorization', cashier('shop-pb'));
        return o.body.outstanding === 100 ? o.body : undefined;
      });

      const before = t.sim.qrRequests().length;
      const res = await qr('shop-pb', 'ORD-QR-1', '?amount=1');
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/application\/json/);
      expect(res.body).toMatchObject({
        orderId: 'ORD-QR-1',
        amount: 100,
        currency: 'KES',
        type: 'paybill',
        businessNumber: PAYBILL,
        accountNumber: 'ORD-QR-1',
        merchantName: 'Mama Mboga Shop',
        width: 240,
        height: 240,
      });
      const image = png(res.body.pngBase64);
      expect(image.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
      expect(image.readUInt32BE(16)).toBe(240);
      const sent = t.sim.qrRequests().slice(before);
      expect(sent).toHaveLength(1);
      expect(sent[0]).toMatchObject({
        MerchantName: 'Mama Mboga Shop',
        RefNo: 'ORD-QR-1',
        Amount: 100,
        TrxCode: 'PB',
        CPI: PAYBILL,
        Size: '240',
      });
    });

    it('till: Buy Goods to the till number, no account number, the platform name by default', async () => {
      await order('shop-till', 'ORD-QR-T', 75);
      const res = await qr('shop-till', 'ORD-QR-T');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ type: 'till', businessNumber: TILL, accountNumber: null, amount: 75 });
      expect(t.sim.qrRequests().at(-1)).toMatchObject({
        TrxCode: 'BG',
        CPI: TILL,
        Amount: 75,
        MerchantName: 'SmartDuka',
      });
    });

    it('no QR whose payment would never be seen: a shop on the platform account, or an account without C2B URLs', async () => {
      const before = t.sim.qrRequests().length;
      // The platform's shortcode has no C2B URLs here (they are registered per shop account).
      await order('shop-platform', 'ORD-QR-P', 30);
      const platform = await qr('shop-platform', 'ORD-QR-P');
      expect(platform.status).toBe(409);
      expect(platform.body.code).toBe('C2B_NOT_AVAILABLE');
      expect(platform.body.message).toMatch(/STK push/);
      // An own account whose URLs were never registered.
      const put = await t
        .http()
        .put('/shops/shop-unreg/merchant-accounts/mpesa')
        .set('Authorization', mgr('shop-unreg'))
        .send({
          environment: 'simulator',
          type: 'paybill',
          shortcode: PAYBILL,
          consumerKey: SIM_KEY,
          consumerSecret: SIM_SECRET,
          passkey: PASSKEY_A,
        });
      expect(put.status).toBe(200);
      await order('shop-unreg', 'ORD-QR-U', 30);
      const unregistered = await qr('shop-unreg', 'ORD-QR-U');
      expect(unregistered.status).toBe(409);
      expect(unregistered.body.code).toBe('C2B_NOT_AVAILABLE');
      expect(t.sim.qrRequests()).toHaveLength(before);
      const gone = await t
        .http()
        .delete('/shops/shop-unreg/merchant-accounts/mpesa')
        .set('Authorization', mgr('shop-unreg'));
      expect(gone.status).toBeLessThan(300);
    });

    it('Daraja down: the answer says nothing was charged and to ask again, never "outcome unknown"', async () => {
      await order('shop-pb', 'ORD-QR-DOWN', 40);
      t.sim.setFaults({ down: true });
      try {
        const res = await qr('shop-pb', 'ORD-QR-DOWN');
        expect(res.status).toBeGreaterThanOrEqual(500);
        expect(res.body.message).toMatch(/Nothing was charged/);
        expect(res.body.message).not.toMatch(/outcome unknown/);
      } finally {
        t.sim.setFaults({});
      }
    });

    it("another shop's order is not found, and nothing is asked of M-Pesa", async () => {
      const before = t.sim.qrRequests().length;
      const res = await qr('shop-till', 'ORD-QR-1');
      expect(res.status).toBe(404);
      expect((await qr('shop-pb', 'NO-SUCH-ORDER')).status).toBe(404);
      expect(t.sim.qrRequests()).toHaveLength(before);
    });

    it('refuses a paid order, cents, a too-long paybill account number and no token, asking M-Pesa nothing', async () => {
      await order('shop-pb', 'ORD-QR-PAID', 20);
      const push = await t
        .http()
        .post('/payments/stk-push')
        .set('Authorization', cashier('shop-pb'))
        .send({ phoneNumber: '254712345678', amount: 20, orderId: 'ORD-QR-PAID' });
      expect(push.status).toBe(201);
      await waitFor(async () => {
        const o = await t.http().get('/orders/ORD-QR-PAID').set('Authorization', cashier('shop-pb'));
        return o.body.status === 'paid' ? o.body : undefined;
      });
      await order('shop-pb', 'ORD-QR-CENTS', 100.5);
      await order('shop-pb', 'ORD-QR-ABCDEFGHIJ-LONG', 10);

      const before = t.sim.qrRequests().length;
      const paid = await qr('shop-pb', 'ORD-QR-PAID');
      expect(paid.status).toBe(409);
      expect(paid.body).toMatchObject({ code: 'ORDER_ALREADY_PAID' });
      const cents = await qr('shop-pb', 'ORD-QR-CENTS');
      expect(cents.status).toBe(400);
      expect(cents.body).toMatchObject({
        code: 'MPESA_WHOLE_SHILLINGS',
        message: expect.stringMatching(/whole shillings/),
      });
      const long = await qr('shop-pb', 'ORD-QR-ABCDEFGHIJ-LONG');
      expect(long.status).toBe(400);
      expect(long.body).toMatchObject({ code: 'MPESA_ACCOUNT_NUMBER_TOO_LONG' });
      expect((await t.http().get('/orders/ORD-QR-1/mpesa-qr')).status).toBe(401);
      expect(t.sim.qrRequests()).toHaveLength(before);
    });

    it('no QR while a prompt for the order is on the customer’s phone: the QR would invite a second payment', async () => {
      await order('shop-pb', 'ORD-QR-BUSY', 30);
      const push = await t
        .http()
        .post('/payments/stk-push')
        .set('Authorization', cashier('shop-pb'))
        .send({ phoneNumber: '254700000007', amount: 30, orderId: 'ORD-QR-BUSY' }); // never answers
      expect(push.status).toBe(201);
      const before = t.sim.qrRequests().length;
      const busy = await qr('shop-pb', 'ORD-QR-BUSY');
      expect({ status: busy.status, code: busy.body.code, paymentId: busy.body.details?.paymentId }).toEqual({
        status: 409,
        code: 'PAYMENT_IN_PROGRESS',
        paymentId: push.body.paymentId,
      });
      expect(busy.body.message).toMatch(/wait for it to finish/);
      expect(t.sim.qrRequests()).toHaveLength(before);
      // Once the prompt is over (here the payment is ended directly in the table), a QR is made.
      await t.db.execute(sql`update payments set status = 'failed' where id = ${push.body.paymentId}`);
      expect((await qr('shop-pb', 'ORD-QR-BUSY')).status).toBe(200);
    });
  });

  describe('Pull Transactions', () => {
    const pull = () => t.app.get(MpesaPullService);
    const accountOf = async (shop: string) =>
      (await t.app.get(MerchantAccountsService).resolveForPayment(shop, 'mpesa')).accountId;
    const register = (shop: string, auth = mgr(shop), nominatedNumber = '0722000000') =>
      t
        .http()
        .post(`/shops/${shop}/merchant-accounts/mpesa/pull-registration`)
        .set('Authorization', auth)
        .send({ nominatedNumber });

    it('an unregistered shortcode answering 1001 is "not registered", not "no payments"', async () => {
      const now = Date.now();
      t.sim.pullTransactions.add(PAYBILL, [{ transactionId: 'SIM0PB0001', amount: 10, trxDate: new Date(now - HOUR) }]);
      const r = await pull().pullSince(await accountOf('shop-pb'), new Date(now - 2 * HOUR), new Date(now));
      expect(r).toMatchObject({ outcome: 'not_registered', message: expect.stringMatching(/No records found/) });
    });

    it('registers once: a second request is refused and not sent; a cashier cannot', async () => {
      expect((await register('shop-pb', cashier('shop-pb'))).status).toBe(403);
      const bad = await register('shop-pb', mgr('shop-pb'), '12345');
      expect(bad.status).toBe(400);
      expect(bad.body).toMatchObject({ details: { field: 'nominatedNumber' } });
      expect(t.sim.pullTransactions.registrations()).toHaveLength(0);
      const first = await register('shop-pb');
      expect(first.status).toBe(201);
      expect(first.body).toMatchObject({
        shortcode: PAYBILL,
        outcome: 'registered',
        registeredBy: 'user:mgr-shop-pb (manager)',
      });
      const again = await register('shop-pb');
      expect(again.status).toBe(409);
      expect(again.body).toMatchObject({ code: 'PULL_ALREADY_REGISTERED' });
      expect(t.sim.pullTransactions.registrations().filter((r) => r.shortcode === PAYBILL)).toHaveLength(1);
      expect((await register('shop-pb', mgr('shop-till'))).status).toBe(403);
    });

    it("a shop on the platform's account cannot spend the platform shortcode's one Pull registration", async () => {
      const before = t.sim.pullTransactions.registrations().length;
      const res = await register('shop-no-own');
      expect(res.status).toBe(409);
      expect(res.body.code).toBe('MERCHANT_ACCOUNT_REQUIRED');
      expect(res.body.message).toMatch(/own M-Pesa account/);
      expect(t.sim.pullTransactions.registrations()).toHaveLength(before);
    });

    it("another shop's Pull registration of the same shortcode is refused without telling who made it or when", async () => {
      const put = await t
        .http()
        .put('/shops/shop-pb2/merchant-accounts/mpesa')
        .set('Authorization', mgr('shop-pb2'))
        .send({
          environment: 'simulator',
          type: 'paybill',
          shortcode: PAYBILL,
          consumerKey: SIM_KEY,
          consumerSecret: SIM_SECRET,
          passkey: PASSKEY_A,
        });
      expect(put.status).toBe(200);
      const res = await register('shop-pb2');
      expect(res.status).toBe(409);
      expect(res.body.code).toBe('PULL_ALREADY_REGISTERED');
      expect(res.body.message).toMatch(/another shop/);
      const said = JSON.stringify(res.body);
      expect(said).not.toContain('mgr-shop-pb');
      expect(said).not.toMatch(/registeredAt|registeredBy|\d{4}-\d{2}-\d{2}T/);
      expect(res.body.details).toEqual({ shortcode: PAYBILL });
      // The shop that made it still sees its own registration in full.
      const own = await register('shop-pb');
      expect(own.body.details.registration).toMatchObject({ registeredBy: 'user:mgr-shop-pb (manager)' });
      const gone = await t
        .http()
        .delete('/shops/shop-pb2/merchant-accounts/mpesa')
        .set('Authorization', mgr('shop-pb2'));
      expect(gone.status).toBeLessThan(300);
    });

    it('reads every page, within the last 48 hours, amounts in minor units, each TransID once', async () => {
      const now = Date.now();
      t.sim.pullTransactions.setPageSize(2);
      t.sim.pullTransactions.add(PAYBILL, [
        { transactionId: 'SIM0PB0002', amount: 233.8, trxDate: new Date(now - 30 * HOUR), billreference: 'ORD-QR-1' },
        { transactionId: 'SIM0PB0003', amount: 100, trxDate: new Date(now - 20 * HOUR), msisdn: '2547*****126' },
        { transactionId: 'SIM0PB0004', amount: 1, trxDate: new Date(now - 3 * HOUR) },
        { transactionId: 'SIM0PB0005', amount: 5, trxDate: new Date(now - 50 * HOUR) },
      ]);
      const r = await pull().pullSince(await accountOf('shop-pb'), new Date(now - 72 * HOUR), new Date(now + HOUR));
      if (r.outcome !== 'transactions') throw new Error(`expected transactions, got ${r.outcome}`);
      expect(r.window.clamped).toBe(true);
      expect(r.pages).toBe(2);
      expect(r.truncated).toBe(false);
      expect(r.transactions.map((x) => x.transId).sort()).toEqual([
        'SIM0PB0001',
        'SIM0PB0002',
        'SIM0PB0003',
        'SIM0PB0004',
      ]);
      const tx = r.transactions.find((x) => x.transId === 'SIM0PB0002')!;
      expect(tx).toMatchObject({
        amountMinor: 23380n,
        currency: 'KES',
        shortcode: PAYBILL,
        billRefNumber: 'ORD-QR-1',
        name: null,
      });
      expect(Math.abs(tx.time.getTime() - (now - 30 * HOUR))).toBeLessThan(1000);
      expect(r.transactions.find((x) => x.transId === 'SIM0PB0003')).toMatchObject({
        msisdn: '2547*****126',
        amountMinor: 10000n,
      });
    });

    it('a registered shortcode answering 1001 has no payments in the window', async () => {
      const now = Date.now();
      const r = await pull().pullSince(await accountOf('shop-pb'), new Date(now - 10 * 60_000), new Date(now));
      expect(r).toMatchObject({ outcome: 'transactions', transactions: [], pages: 1 });
    });

    it('asks nothing for a window wholly older than 48 hours', async () => {
      const now = Date.now();
      const r = await pull().pullSince(
        await accountOf('shop-pb'),
        new Date(now - 60 * HOUR),
        new Date(now - 50 * HOUR),
      );
      expect(r).toEqual({ outcome: 'outside_window' });
    });

    it("keeps what Daraja posts to the registration's callback URL, before answering; a wrong token never passes for it", async () => {
      const url = new URL(pull().callbackUrlFor(PAYBILL));
      const body = { ResponseRefID: 'r-1', ShortCode: PAYBILL, note: 'undocumented' };
      const ok = await t.http().post(url.pathname).send(body);
      expect(ok.status).toBe(200);
      expect(ok.body).toEqual({ ResultCode: 0, ResultDesc: 'Accepted' });
      const forged = await t
        .http()
        .post(url.pathname.replace(/[^/]+$/, 'not-the-token'))
        .send(body);
      expect(forged.status).toBe(200);
      const rows = (
        (await t.db.execute(
          sql`select verified, outcome, raw_body from callback_inbox where kind = 'pull_notice' order by id`,
        )) as unknown as { rows: Array<{ verified: boolean; outcome: string; raw_body: string }> }
      ).rows;
      expect(rows.map((r) => [r.verified, r.outcome])).toEqual([
        [true, 'recorded'],
        [false, 'rejected_unverified'],
      ]);
      expect(JSON.parse(rows[0].raw_body)).toEqual(body);
    });

    it("a till account pulls its till number's transactions", async () => {
      const now = Date.now();
      expect((await register('shop-till')).body).toMatchObject({ shortcode: TILL, outcome: 'registered' });
      t.sim.pullTransactions.add(TILL, [
        {
          transactionId: 'SIM0BG0001',
          amount: 75,
          trxDate: new Date(now - HOUR),
          transactiontype: 'c2b-buy-goods-debit',
        },
      ]);
      const r = await pull().pullForShop('shop-till', new Date(now - 2 * HOUR), new Date(now));
      expect(r).toMatchObject({
        outcome: 'transactions',
        transactions: [{ transId: 'SIM0BG0001', shortcode: TILL, amountMinor: 7500n }],
      });
      expect((await pull().registrations()).map((x) => [x.shopId, x.shortcode])).toEqual([
        ['shop-pb', PAYBILL],
        ['shop-till', TILL],
      ]);
    });
  });
});
