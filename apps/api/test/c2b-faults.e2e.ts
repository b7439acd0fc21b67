import { sql } from 'drizzle-orm';
import { Client } from 'pg';
import { scopedCallbackToken } from '../src/payments/providers/mpesa/callback-token';
import { C2bTestContext, PAYBILL, startC2bTestApp, STORE, TILL } from './helpers/c2b';
import { C2bPullService } from '../src/payments/providers/mpesa/c2b-pull.service';
import { startExtraTestApp, TEST_CALLBACK_SECRET, TestApp, waitFor } from './helpers/test-app';

const BUDGET_MS = 800;
const HTTP_TIMEOUT_MS = 1000;

/**
 * C2B under operator faults, through HTTP on a real Postgres: slow or locked tables during
 * validation (Daraja gives up after about 8 s; we must answer within MPESA_C2B_VALIDATION_BUDGET_MS).
 * Process kills and dropped connections: c2b-crash.e2e.ts.
 */
(process.env.DATABASE_URL ? describe : describe.skip)('C2B under database faults', () => {
  let c: C2bTestContext;
  let t: TestApp;

  beforeAll(async () => {
    c = await startC2bTestApp({
      env: {
        MPESA_C2B_VALIDATION_BUDGET_MS: String(BUDGET_MS),
        MPESA_C2B_PULL_ENABLED: 'false',
        MPESA_HTTP_TIMEOUT_MS: String(HTTP_TIMEOUT_MS),
      },
    });
    t = c.t;
    expect((await c.register('shop-a', { validation: true })).status).toBe(200);
  });
  afterAll(() => c.close());

  const validationUrl = () =>
    `/payments/c2b/${c.accountA}/validation/${scopedCallbackToken(TEST_CALLBACK_SECRET, 'c2b-validation', c.accountA)}`;
  const body = (ref: string, amount = '50') => ({
    TransactionType: 'Pay Bill',
    TransID: 'VALSLOW001',
    TransTime: '20261204101010',
    TransAmount: amount,
    BusinessShortCode: PAYBILL,
    BillRefNumber: ref,
    MSISDN: '254712345678',
    FirstName: 'Jane',
  });

  /** Another session holds `lock` until the returned function is called. */
  async function holdLock(lock: string): Promise<() => Promise<void>> {
    const other = new Client({ connectionString: t.database.url });
    await other.connect();
    await other.query('begin');
    await other.query(lock);
    return async () => {
      await other.query('rollback');
      await other.end();
    };
  }

  it.each([
    ['the merchant account lookup', 'VS-1', 'lock table merchant_accounts in access exclusive mode'],
    ['the registration lookup', 'VS-2', 'lock table c2b_registrations in access exclusive mode'],
    ['the order lookup', 'VS-3', 'lock table orders in access exclusive mode'],
  ])(
    'validation answers within its budget when %s is stuck behind a lock (accepted: undecided)',
    async (_what, orderId, lock) => {
      await c.order('shop-a', orderId, 100);
      const release = await holdLock(lock);
      try {
        const started = Date.now();
        const res = await t.http().post(validationUrl()).send(body(orderId)).timeout(20_000);
        const took = Date.now() - started;
        expect({ status: res.status, body: res.body }).toEqual({
          status: 200,
          body: { ResultCode: '0', ResultDesc: 'Accepted' },
        });
        // The budget and a margin for a loaded machine, far below Daraja's ~8 s.
        expect(took).toBeLessThan(BUDGET_MS + 2000);
      } finally {
        await release();
      }
    },
  );

  it('a burst of validations stuck behind a lock does not keep the connections confirmations need to be stored', async () => {
    await c.order('shop-a', 'VS-5', 100);
    const release = await holdLock('lock table orders in access exclusive mode');
    try {
      // More validations than the pool has connections (10 in tests), each answered at its budget.
      const answers = await Promise.all(
        Array.from({ length: 12 }, () => t.http().post(validationUrl()).send(body('VS-5')).timeout(20_000)),
      );
      for (const a of answers) expect(a.body).toEqual({ ResultCode: '0', ResultDesc: 'Accepted' });
      // The lock is still held; a till payment's confirmation (no order involved) must be stored at once.
      const confirmationB = `/payments/c2b/${c.accountB}/confirmation/${scopedCallbackToken(TEST_CALLBACK_SECRET, 'c2b-confirmation', c.accountB)}`;
      const started = Date.now();
      const res = await t
        .http()
        .post(confirmationB)
        .send({ ...body(''), TransactionType: 'Buy Goods', TransID: 'VALPOOL001', BusinessShortCode: TILL })
        .timeout(20_000);
      expect({ status: res.status, body: res.body }).toEqual({
        status: 200,
        body: { ResultCode: 0, ResultDesc: 'Success' },
      });
      expect(Date.now() - started).toBeLessThan(3000);
      expect(await c.c2bRow('VALPOOL001')).toMatchObject({ status: 'unclaimed' });
    } finally {
      await release();
    }
  });

  it('a forged validation URL is still 404 at once while the account table is locked', async () => {
    const release = await holdLock('lock table merchant_accounts in access exclusive mode');
    try {
      const res = await t
        .http()
        .post(`/payments/c2b/${c.accountA}/validation/${'a'.repeat(64)}`)
        .send(body('X'));
      expect(res.status).toBe(404);
    } finally {
      await release();
    }
    expect(await c.query(sql`select 1 from c2b_transactions where trans_id = 'VALSLOW001'`)).toEqual([]);
  });

  it('a till payment whose matching failed in its request reaches the feed on the next retry pass, not 30 s later', async () => {
    // A fault while the confirmation is matched (the move to the feed fails): stored alone, acknowledged.
    await c.query(
      sql.raw(`create function c2b_feed_boom() returns trigger language plpgsql as $$
      begin if new.trans_id = 'FEEDLAG001' and new.status = 'unclaimed' then raise exception 'injected fault'; end if; return new; end $$`),
    );
    await c.query(
      sql.raw(
        `create trigger c2b_feed_boom before update on c2b_transactions for each row execute function c2b_feed_boom()`,
      ),
    );
    const confirmationB = `/payments/c2b/${c.accountB}/confirmation/${scopedCallbackToken(TEST_CALLBACK_SECRET, 'c2b-confirmation', c.accountB)}`;
    try {
      const res = await t
        .http()
        .post(confirmationB)
        .send({ ...body(''), TransactionType: 'Buy Goods', TransID: 'FEEDLAG001', BusinessShortCode: TILL });
      expect(res.body).toEqual({ ResultCode: 0, ResultDesc: 'Success' });
      expect(await c.c2bRow('FEEDLAG001')).toMatchObject({ status: 'received' });
    } finally {
      await c.query(sql.raw(`drop trigger c2b_feed_boom on c2b_transactions`));
      await c.query(sql.raw(`drop function c2b_feed_boom()`));
    }
    // The customer waits at the till with the SMS: the cashier finds it within a reconciler interval (5 s).
    const found = await waitFor(async () => {
      const feed = await t
        .http()
        .get('/payments/c2b/unclaimed?receipt=FEEDLAG001')
        .set('Authorization', c.cashier('shop-b'));
      return feed.body.length === 1 ? feed.body : null;
    }, 12_000);
    expect(found[0]).toMatchObject({ receipt: 'FEEDLAG001' });
  });

  describe('a failing or slow Daraja', () => {
    const pass = () => t.app.get(C2bPullService).tick();
    afterEach(() => t.sim.setFaults({}));

    it('registration (C2B and Pull) while Daraja is down: an error answer, nothing recorded; it registers once Daraja is back', async () => {
      t.sim.setFaults({ down: true });
      const c2b = await c.register('shop-b');
      expect(c2b.status).toBeGreaterThanOrEqual(502);
      const pull = await t
        .http()
        .post('/shops/shop-a/merchant-accounts/mpesa/pull-registration')
        .set('Authorization', c.mgr('shop-a'))
        .send({ nominatedNumber: '0722000000' });
      expect(pull.status).toBeGreaterThanOrEqual(502);
      expect(JSON.stringify(pull.body)).not.toMatch(/722000000/);
      expect((await t.http().get('/shops/shop-b/c2b-registration').set('Authorization', c.mgr('shop-b'))).body).toEqual(
        {},
      );
      expect(await c.query(sql`select 1 from mpesa_pull_registrations`)).toEqual([]);
      t.sim.setFaults({});
      expect((await c.register('shop-b')).status).toBe(200);
      expect(
        (
          await t
            .http()
            .post('/shops/shop-a/merchant-accounts/mpesa/pull-registration')
            .set('Authorization', c.mgr('shop-a'))
            .send({ nominatedNumber: '0722000000' })
        ).status,
      ).toBe(201);
    });

    it('the Pull pass with Daraja down or slow: bounded by the HTTP timeout, nothing ingested, live confirmations go on; once back, one row and one payment', async () => {
      await c.order('shop-a', 'PF-1', 45);
      await c.order('shop-a', 'PF-2', 55);
      const dropped = await t.sim.c2bPay({ shortcode: PAYBILL, amount: 45, billRefNumber: 'PF-1', copies: 0 });
      for (const faults of [{ down: true }, { latencyMs: { oauth: 5000 }, invalidateTokens: true }]) {
        t.sim.setFaults(faults);
        const started = Date.now();
        const result = await pass();
        expect(Date.now() - started).toBeLessThan(2 * HTTP_TIMEOUT_MS + 3000);
        expect(result).toMatchObject({ shortcodes: 1, stored: 0, skipped: 1 });
        expect(await c.c2bRow(dropped.transId)).toBeUndefined();
      }
      // A confirmation meanwhile is stored and applied: the pass holds nothing it needs.
      t.sim.setFaults({ down: true });
      const [live] = await Promise.all([
        t.sim.c2bPay({ shortcode: PAYBILL, amount: 55, billRefNumber: 'PF-2' }),
        pass(),
      ]);
      expect(await c.c2bRow(live.transId)).toMatchObject({ status: 'applied', order_id: 'PF-2' });
      t.sim.setFaults({});
      expect(await pass()).toMatchObject({ stored: 1 });
      expect(await pass()).toMatchObject({ stored: 0 });
      for (const [paid, ref] of [
        [dropped, 'PF-1'],
        [live, 'PF-2'],
      ] as const)
        expect(await c.paymentsWithReceipt(paid.transId)).toEqual([
          expect.objectContaining({ status: 'completed', order_id: ref }),
        ]);
    });

    it('the Pull pass on one instance racing the live confirmations of the same TransIDs on another: one row, one payment each', async () => {
      const other = await startExtraTestApp(t, {
        CREDENTIALS_KEYS: c.credentialsKeys,
        MPESA_C2B_PULL_ENABLED: 'false',
      });
      try {
        const paid = [];
        for (let i = 0; i < 8; i++) {
          await c.order('shop-a', `PR-${i}`, 20 + i);
          // Daraja's confirmation is late: the pass and the confirmation arrive together.
          paid.push(await t.sim.c2bPay({ shortcode: PAYBILL, amount: 20 + i, billRefNumber: `PR-${i}`, copies: 0 }));
        }
        const confirmationUrl = `/payments/c2b/${c.accountA}/confirmation/${scopedCallbackToken(TEST_CALLBACK_SECRET, 'c2b-confirmation', c.accountA)}`;
        const answers = await Promise.all([
          pass(),
          ...paid.map((p) => other.http().post(confirmationUrl).send(p.body)),
          pass(),
        ]);
        for (const res of answers.slice(1, -1) as { status: number; body: unknown }[])
          expect(res.body).toEqual({ ResultCode: 0, ResultDesc: 'Success' });
        for (const [i, p] of paid.entries()) {
          expect(await c.c2bRow(p.transId)).toMatchObject({ status: 'applied', order_id: `PR-${i}`, deliveries: 1 });
          expect(await c.paymentsWithReceipt(p.transId)).toEqual([
            expect.objectContaining({ status: 'completed', order_id: `PR-${i}`, amount_minor: String((20 + i) * 100) }),
          ]);
        }
        const dup = await c.query<{ n: number }>(
          sql`select count(*)::int as n from (select trans_id from c2b_transactions group by trans_id having count(*) > 1) d`,
        );
        expect(dup[0].n).toBe(0);
      } finally {
        await other.close();
      }
    });

    it('Daraja failing part-way through the pages: what the pages before it listed is ingested, the rest on a later pass', async () => {
      const reg = await t
        .http()
        .post('/shops/shop-b/merchant-accounts/mpesa/pull-registration')
        .set('Authorization', c.mgr('shop-b'))
        .send({ nominatedNumber: '0722000000' });
      expect(reg.status).toBe(201);
      const now = Date.now();
      const ids = Array.from({ length: 5 }, (_, i) => `PGF000000${i}`);
      t.sim.pullTransactions.add(
        TILL,
        ids.map((transactionId, i) => ({
          transactionId,
          amount: 30 + i,
          trxDate: new Date(now - (50 - i) * 60_000),
          transactiontype: 'c2b-buy-goods-debit',
        })),
      );
      t.sim.pullTransactions.setPageSize(2);
      t.sim.pullTransactions.failFromPage(1);
      try {
        const partial = await pass();
        expect(partial).toMatchObject({ stored: 2 });
        expect(await c.c2bRow(ids[0])).toMatchObject({ status: 'unclaimed', deliveries: 0 });
        expect(await c.c2bRow(ids[1])).toMatchObject({ status: 'unclaimed' });
        expect(await c.c2bRow(ids[2])).toBeUndefined();
        t.sim.pullTransactions.failFromPage(null);
        expect(await pass()).toMatchObject({ stored: 3 });
        expect(await pass()).toMatchObject({ stored: 0 });
        const rows = await c.query<{ n: number }>(
          sql`select count(*)::int as n from c2b_transactions where trans_id like 'PGF%'`,
        );
        expect(rows[0].n).toBe(5);
      } finally {
        t.sim.pullTransactions.failFromPage(null);
        t.sim.pullTransactions.setPageSize(100);
      }
    });

    it("after the shop's credentials are rotated, the Pull pass does not ingest again what the old account's URLs already stored", async () => {
      const pullReg = await t
        .http()
        .post('/shops/shop-a/merchant-accounts/mpesa/pull-registration')
        .set('Authorization', c.mgr('shop-a'))
        .send({ nominatedNumber: '0722000000' });
      expect([201, 409]).toContain(pullReg.status);
      // A till-style paybill payment (no account number): it waits in the feed for a cashier.
      const paid = await t.sim.c2bPay({ shortcode: PAYBILL, amount: 35 });
      expect(await c.c2bRow(paid.transId)).toMatchObject({ status: 'unclaimed' });
      // A manager rotates the consumer secret / passkey: a new account row; the C2B URLs registered
      // at Safaricom (one-time) still name the old row, so confirmations keep arriving there.
      const put = await t
        .http()
        .put('/shops/shop-a/merchant-accounts/mpesa')
        .set('Authorization', c.mgr('shop-a'))
        .send({
          environment: 'simulator',
          type: 'paybill',
          shortcode: PAYBILL,
          consumerKey: 'smartduka-sim-key',
          consumerSecret: 'smartduka-sim-secret',
          passkey: 'b'.repeat(64),
        });
      expect(put.status).toBe(200);
      expect(put.body.accountId).not.toBe(c.accountA);
      const late = await t.sim.c2bPay({ shortcode: PAYBILL, amount: 36 });
      expect(await c.c2bRow(late.transId)).toMatchObject({ status: 'unclaimed', merchant_account_id: c.accountA });
      const before = await c.counts();
      expect(await pass()).toMatchObject({ stored: 0 });
      expect(await c.counts()).toEqual(before);
      // A dropped one recovered by the pass (under the current row), then its late confirmation on
      // the old row's URL: counted on the recovered row, not a second row.
      const dropped = await t.sim.c2bPay({ shortcode: PAYBILL, amount: 37, copies: 0 });
      expect(await pass()).toMatchObject({ stored: 1 });
      expect(await c.c2bRow(dropped.transId)).toMatchObject({ merchant_account_id: put.body.accountId, deliveries: 0 });
      const oldUrl = `/payments/c2b/${c.accountA}/confirmation/${scopedCallbackToken(TEST_CALLBACK_SECRET, 'c2b-confirmation', c.accountA)}`;
      expect((await t.http().post(oldUrl).send(dropped.body)).body).toEqual({ ResultCode: 0, ResultDesc: 'Success' });
      expect(await c.query(sql`select deliveries from c2b_transactions where trans_id = ${dropped.transId}`)).toEqual([
        { deliveries: 1 },
      ]);
      for (const p of [paid, late, dropped]) {
        const feed = await t
          .http()
          .get(`/payments/c2b/unclaimed?receipt=${p.transId}`)
          .set('Authorization', c.cashier('shop-a'));
        expect(feed.body).toHaveLength(1);
      }
    });

    it('a pulled transaction with cents is parked for review like its confirmation would be, not booked to the order', async () => {
      const pullReg = await t
        .http()
        .post('/shops/shop-b/merchant-accounts/mpesa/pull-registration')
        .set('Authorization', c.mgr('shop-b'))
        .send({ nominatedNumber: '0722000000' });
      expect([201, 409]).toContain(pullReg.status);
      await c.order('shop-b', 'PC-1', 300);
      t.sim.pullTransactions.add(TILL, [
        {
          transactionId: 'PCENTS0001',
          amount: 233.8,
          trxDate: new Date(Date.now() - 10 * 60_000),
          transactiontype: 'c2b-pay-bill-debit',
          billreference: 'PC-1',
        },
      ]);
      expect(await pass()).toMatchObject({ stored: 1 });
      expect(await c.c2bRow('PCENTS0001')).toMatchObject({
        status: 'invalid',
        status_reason: 'AMOUNT_NOT_WHOLE_SHILLINGS',
      });
      expect(await c.paymentsWithReceipt('PCENTS0001')).toEqual([]);
      const review = await t.http().get('/payments/c2b/review').set('Authorization', c.mgr('shop-b'));
      expect(review.body).toEqual(expect.arrayContaining([expect.objectContaining({ receipt: 'PCENTS0001' })]));
    });

    it('production: a registration Daraja accepted but whose answer was not recorded is kept as sent, and a second one is refused, not sent', async () => {
      const prod = await startExtraTestApp(t, {
        MPESA_ENV: 'production',
        MPESA_BASE_URL: t.sim.url,
        MPESA_CALLBACK_URL: 'https://pay.example.co.ke/payments/callback',
        MPESA_SHORTCODE: PAYBILL,
        MPESA_PASSKEY: 'c'.repeat(64),
        CREDENTIALS_KEYS: c.credentialsKeys,
        MPESA_C2B_PULL_ENABLED: 'false',
      });
      const atDaraja = () => t.sim.c2bRegistrations().find((r) => r.shortcode === PAYBILL)?.count ?? 0;
      const registerP = (body: Record<string, unknown> = {}) =>
        prod.http().post('/shops/shop-q/c2b-registration').set('Authorization', c.mgr('shop-q')).send(body);
      try {
        const put = await prod
          .http()
          .put('/shops/shop-q/merchant-accounts/mpesa')
          .set('Authorization', c.mgr('shop-q'))
          .send({
            environment: 'production',
            type: 'paybill',
            shortcode: PAYBILL,
            consumerKey: 'smartduka-sim-key',
            consumerSecret: 'smartduka-sim-secret',
            passkey: 'd'.repeat(64),
          });
        expect(put.status).toBe(200);
        // Daraja registers the URLs; recording its answer fails (the database goes away at that moment).
        await c.query(
          sql.raw(`create function c2b_reg_boom() returns trigger language plpgsql as $$
          begin if new.action = 'c2b.registered' and new.shop_id = 'shop-q' then raise exception 'injected fault'; end if; return new; end $$`),
        );
        await c.query(
          sql.raw(
            `create trigger c2b_reg_boom before insert on audit_events for each row execute function c2b_reg_boom()`,
          ),
        );
        const before = atDaraja();
        try {
          const first = await registerP();
          expect(first.status).toBeGreaterThanOrEqual(500);
          expect(atDaraja()).toBe(before + 1);
        } finally {
          await c.query(sql.raw(`drop trigger c2b_reg_boom on audit_events`));
          await c.query(sql.raw(`drop function c2b_reg_boom()`));
        }
        // Production Daraja now refuses the shortcode's URLs again ("Urls are already registered").
        t.sim.setC2bSettings({ oneTimeRegistration: true });
        // What was sent, and when, is known; the outcome is not.
        const shown = await prod.http().get('/shops/shop-q/c2b-registration').set('Authorization', c.mgr('shop-q'));
        expect(shown.body).toMatchObject({ shortcode: PAYBILL, environment: 'production' });
        const again = await registerP();
        expect(again.status).toBe(409);
        expect(again.body.code).toBe('C2B_ALREADY_REGISTERED');
        expect(again.body.message).toMatch(/portal/);
        expect(atDaraja()).toBe(before + 1);

        // Daraja failing after the request was sent (a 5xx): the outcome is unknown, kept as such.
        t.sim.setC2bSettings({ oneTimeRegistration: false });
        const putR = await prod
          .http()
          .put('/shops/shop-r/merchant-accounts/mpesa')
          .set('Authorization', c.mgr('shop-r'))
          .send({
            environment: 'production',
            type: 'paybill',
            shortcode: STORE,
            consumerKey: 'smartduka-sim-key',
            consumerSecret: 'smartduka-sim-secret',
            passkey: 'e'.repeat(64),
          });
        expect(putR.status).toBe(200);
        const registerR = (body: Record<string, unknown> = {}) =>
          prod.http().post('/shops/shop-r/c2b-registration').set('Authorization', c.mgr('shop-r')).send(body);
        t.sim.setFaults({ down: true });
        expect((await registerR()).status).toBeGreaterThanOrEqual(502);
        t.sim.setFaults({});
        const unknown = await prod.http().get('/shops/shop-r/c2b-registration').set('Authorization', c.mgr('shop-r'));
        expect(unknown.body).toMatchObject({ shortcode: STORE, response: { outcome: 'unknown' } });
        const refused = await registerR();
        expect(refused.status).toBe(409);
        expect(refused.body.message).toMatch(/never recorded/);
        const forced = await registerR({ force: true });
        expect(forced.status).toBe(200);
        expect(forced.body).toMatchObject({ forced: true, response: { responseCode: expect.any(String) } });
      } finally {
        t.sim.setFaults({});
        t.sim.setC2bSettings({ oneTimeRegistration: false });
        await prod.close();
      }
    });
  });
});
