import { sql } from 'drizzle-orm';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scopedCallbackToken } from '../src/payments/providers/mpesa/callback-token';
import { runCli } from './helpers/cli';
import { C2bTestContext, PAYBILL, startC2bTestApp, STORE } from './helpers/c2b';
import { startExtraTestApp, TEST_CALLBACK_SECRET, TestApp, waitFor } from './helpers/test-app';

/**
 * Payments the customer starts from their own phone (Daraja C2B) through HTTP, with the Daraja
 * simulator playing Safaricom and the customer: URLs registered per merchant account (API and
 * command; production only once), confirmations stored once whatever the duplicates, paybill
 * payments applied to their order, validation, and forged or bad deliveries changing nothing.
 * Till payments and claims: c2b-claims.e2e.ts.
 */
describe('C2B: registration, confirmations, validation', () => {
  let c: C2bTestContext;
  let t: TestApp;
  let accountA = '';
  let accountB = '';
  const mgr = (shop: string) => c.mgr(shop);
  const cashier = (shop: string, sub?: string) => c.cashier(shop, sub);
  const query = <T = Record<string, unknown>>(q: ReturnType<typeof sql>) => c.query<T>(q);
  const order = (shop: string, id: string, total: number) => c.order(shop, id, total);
  const c2bRow = (transId: string) => c.c2bRow(transId);
  const paymentsWithReceipt = (transId: string) => c.paymentsWithReceipt(transId);
  const counts = () => c.counts();
  const register = (shop: string, body: Record<string, unknown> = {}) => c.register(shop, body);

  beforeAll(async () => {
    c = await startC2bTestApp();
    ({ t, accountA, accountB } = c);
  });
  afterAll(() => c.close());

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
    // A manager sees them (a cashier does not), with why they were not booked.
    const review = await t.http().get('/payments/c2b/review').set('Authorization', mgr('shop-a'));
    expect(review.status).toBe(200);
    expect(review.body.map((i: { reason: string }) => i.reason)).toEqual(
      expect.arrayContaining([
        'AMOUNT_NOT_WHOLE_SHILLINGS',
        'AMOUNT_NOT_POSITIVE',
        'AMOUNT_INVALID',
        'AMOUNT_MISSING',
        'NOT_A_C2B_BODY',
      ]),
    );
    expect((await t.http().get('/payments/c2b/review').set('Authorization', cashier('shop-a'))).status).toBe(403);
    const otherShop = await t.http().get('/payments/c2b/review').set('Authorization', mgr('shop-b'));
    expect(otherShop.body).toEqual([]);
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

  it('a confirmation whose matching fails is still stored and acknowledged, and the retry pass matches it', async () => {
    await order('shop-a', 'CRASH-1', 30);
    // A fault in the payment core for this one order (a trigger of the test database), while the confirmation arrives.
    await query(
      sql.raw(`create function c2b_test_boom() returns trigger language plpgsql as $$
      begin if new.order_id = 'CRASH-1' then raise exception 'injected fault'; end if; return new; end $$`),
    );
    await query(
      sql.raw(`create trigger c2b_test_boom before insert on payments for each row execute function c2b_test_boom()`),
    );
    let transId = '';
    try {
      const paid = await t.sim.c2bPay({ shortcode: PAYBILL, amount: 30, billRefNumber: 'CRASH-1' });
      transId = paid.transId;
      expect(paid.confirmations[0].status).toBe(200);
      expect(JSON.parse(paid.confirmations[0].body!)).toEqual({ ResultCode: 0, ResultDesc: 'Success' });
      expect(await c2bRow(transId)).toMatchObject({ status: 'received', deliveries: 1 });
      expect(await paymentsWithReceipt(transId)).toEqual([]);
    } finally {
      await query(sql.raw(`drop trigger c2b_test_boom on payments`));
      await query(sql.raw(`drop function c2b_test_boom()`));
    }
    // As if its 30 s lease had passed (the retry pass leaves younger rows to their own request).
    await query(sql`update c2b_transactions set updated_at = now() - interval '1 minute' where trans_id = ${transId}`);
    const row = await waitFor(async () => {
      const r = await c2bRow(transId);
      return r.status !== 'received' ? r : null;
    }, 15_000);
    expect(row).toMatchObject({ status: 'applied', order_id: 'CRASH-1', deliveries: 1 });
    expect(await paymentsWithReceipt(transId)).toEqual([
      expect.objectContaining({ status: 'completed', order_id: 'CRASH-1', amount_minor: '3000' }),
    ]);
  });

  it('the command, run next to pnpm dev (embedded simulator), says how to register through the running API', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'c2b-cli-'));
    try {
      const r = await runCli('c2b-register.ts', ['--shop', 'shop-a'], {
        MPESA_ENV: 'simulator',
        MPESA_BASE_URL: '',
        DATA_DIR: dataDir,
        PORT: '3100',
      });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/pnpm run token --role manager --shop shop-a/);
      expect(r.stderr).toContain('curl -X POST http://localhost:3100/shops/shop-a/c2b-registration');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  // The command runs in its own process on the test's database: Postgres only (PGlite is in this process).
  const pg = process.env.DATABASE_URL ? it : it.skip;
  pg(
    'production registration is one-time: the command asks for --yes, a second one is refused unless forced, and both say why',
    async () => {
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
        const put = await prod
          .http()
          .put('/shops/shop-p/merchant-accounts/mpesa')
          .set('Authorization', mgr('shop-p'))
          .send({
            environment: 'production',
            type: 'paybill',
            shortcode: PAYBILL,
            consumerKey: 'smartduka-sim-key',
            consumerSecret: 'smartduka-sim-secret',
            passkey: randomBytes(32).toString('hex'),
          });
        expect(put.status).toBe(200);
        const cliEnv = {
          ...prodEnv,
          DATABASE_URL: t.database.url!,
          MPESA_CONSUMER_KEY: 'k',
          MPESA_CONSUMER_SECRET: 's',
        };
        const ask = await runCli('c2b-register.ts', ['--shop', 'shop-p'], cliEnv);
        expect(ask.code).toBe(2);
        expect(ask.stderr).toMatch(/one-time at Safaricom/);
        expect(ask.stderr).toMatch(/--yes/);
        const first = await runCli('c2b-register.ts', ['--shop', 'shop-p', '--yes'], cliEnv);
        expect(first.stderr).toBe('');
        expect(first.code).toBe(0);
        expect(first.stdout).toMatch(
          new RegExp(`C2B URLs registered for shop shop-p \\(production, shortcode ${PAYBILL}, v1\\)`),
        );
        expect(first.stdout).not.toMatch(/[0-9a-f]{64}/);

        const again = await prod
          .http()
          .post('/shops/shop-p/c2b-registration')
          .set('Authorization', mgr('shop-p'))
          .send({});
        expect(again.status).toBe(409);
        expect(again.body.code).toBe('C2B_ALREADY_REGISTERED');
        expect(again.body.message).toMatch(/one-time at Safaricom.*force: true/);
        const cliAgain = await runCli('c2b-register.ts', ['--shop', 'shop-p', '--yes'], cliEnv);
        expect(cliAgain.code).toBe(1);
        expect(cliAgain.stderr).toMatch(/already has C2B URLs registered/);
        const forced = await prod
          .http()
          .post('/shops/shop-p/c2b-registration')
          .set('Authorization', mgr('shop-p'))
          .send({ force: true });
        expect(forced.status).toBe(200);
        expect(forced.body).toMatchObject({
          forced: true,
          environment: 'production',
          registeredBy: 'user:mgr-shop-p (manager)',
        });
        expect(forced.body.replaced).toEqual(expect.any(String));
        const regs = await query<{ n: number }>(
          sql`select count(*)::int as n from c2b_registrations where shop_id = 'shop-p'`,
        );
        expect(regs[0].n).toBe(2);
        const audit = await query<{ n: number }>(
          sql`select count(*)::int as n from audit_events where shop_id = 'shop-p' and action = 'c2b.registered'`,
        );
        expect(audit[0].n).toBe(2);
      } finally {
        await prod.close();
      }
    },
  );
});
