import { sql } from 'drizzle-orm';
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { openDatabase } from '../src/database/database';
import { SANDBOX_PASSKEY } from '../src/config/app-config';
import { MerchantAccountsService } from '../src/payments/merchant-accounts.service';
import { fullCheckoutRequestId, startExtraTestApp, startTestApp, TestApp, waitFor } from './helpers/test-app';
import { recordSecrets } from './log-scan/sink';

/**
 * Per-shop merchant accounts through HTTP: the shop's own M-Pesa account is what its pushes and
 * queries use; secrets are write-only and sealed at rest; a wrong key fails closed; rotation
 * re-seals everything; bad input is refused field by field; nobody reads another shop's.
 */
const K1 = randomBytes(32).toString('base64');
const K2 = randomBytes(32).toString('base64');
const SIM_KEY = 'smartduka-sim-key';
const SIM_SECRET = 'smartduka-sim-secret';
const PASSKEY_A = randomBytes(32).toString('hex');
const PASSKEY_B = randomBytes(32).toString('hex');
const PASSKEY_C = randomBytes(32).toString('hex');
const PAYBILL = '600111';
const STORE = '600222';
const TILL = '5123456';
const PAYBILL_2 = '600333';
const BRANCH_TILL = '5123457';
const NEVER_ANSWERS = '254700000007';

describe('per-shop merchant accounts (M-Pesa), end to end', () => {
  let t: TestApp;
  const mgr = (shop: string) => `Bearer ${t.token(shop, 'manager', `mgr-${shop}`)}`;
  const cashier = (shop: string) => `Bearer ${t.token(shop, 'cashier', `cashier-${shop}`)}`;
  const operator = () => `Bearer ${t.token('platform', 'operator', 'ops-1')}`;

  beforeAll(async () => {
    t = await startTestApp({
      env: { CREDENTIALS_KEYS: `k1:${K1}` },
      sim: {
        accounts: [
          { shortcode: '174379', passkey: SANDBOX_PASSKEY, tillNumbers: ['174379'] },
          { shortcode: PAYBILL, passkey: PASSKEY_A },
          { shortcode: STORE, passkey: PASSKEY_B, tillNumbers: [TILL, BRANCH_TILL] },
          { shortcode: PAYBILL_2, passkey: PASSKEY_C },
        ],
      },
    });
    recordSecrets([
      { kind: 'passkey', value: PASSKEY_A, pair: PAYBILL },
      { kind: 'passkey', value: PASSKEY_B, pair: STORE },
      { kind: 'passkey', value: PASSKEY_C, pair: PAYBILL_2 },
    ]);
  });
  afterAll(() => t.close());

  const paybill = (passkey = PASSKEY_A, shortcode = PAYBILL) => ({
    environment: 'simulator',
    type: 'paybill',
    shortcode,
    consumerKey: SIM_KEY,
    consumerSecret: SIM_SECRET,
    passkey,
  });
  const till = () => ({ ...paybill(PASSKEY_B, STORE), type: 'till', tillNumber: TILL });

  async function put(shop: string, body: unknown, auth = mgr(shop)) {
    return t
      .http()
      .put(`/shops/${shop}/merchant-accounts/mpesa`)
      .set('Authorization', auth)
      .send(body as object);
  }

  async function push(shop: string, orderId: string, amount = 10, phone = '254712345678', base = t) {
    const auth = `Bearer ${t.token(shop)}`;
    const o = await base.http().post('/orders').set('Authorization', auth).send({ id: orderId, total: amount });
    expect(o.status).toBe(201);
    return base
      .http()
      .post('/payments/stk-push')
      .set('Authorization', auth)
      .send({ phoneNumber: phone, amount, orderId });
  }

  it('refuses bad input field by field, with a message a back-office screen can show, and stores nothing', async () => {
    const cases: Array<[unknown, string, RegExp]> = [
      [{ ...till(), tillNumber: undefined }, 'tillNumber', /till needs its till number/],
      [{ ...paybill(), passkey: 'abc123' }, 'passkey', /64 hexadecimal characters .*got 6/],
      [{ ...paybill(), environment: 'staging' }, 'environment', /environment must be one of/],
      [{ ...paybill(), shortcode: '60O111' }, 'shortcode', /5 to 7 digits/],
      [{ ...paybill(), shortcode: '12' }, 'shortcode', /5 to 7 digits/],
      [{ ...paybill(), type: 'buygoods' }, 'type', /"paybill" or "till"/],
      [{ ...paybill(), tillNumber: TILL }, 'tillNumber', /paybill has no till number/],
      [{ ...paybill(), consumerKey: '' }, 'consumerKey', /consumerKey is required/],
      [{ ...paybill(), consumerSecret: 'has space' }, 'consumerSecret', /no spaces/],
      [{ ...paybill(), color: 'red' }, 'color', /Unknown field "color"/],
      [{ ...paybill(), initiatorName: 'api-op' }, 'initiatorPassword', /initiatorPassword is required/],
      [{ ...paybill(), credentialsFromShopId: 'hq' }, '', /Only a platform operator/],
    ];
    for (const [body, field, message] of cases) {
      const res = await put('shop-bad', body);
      expect([400, 403]).toContain(res.status);
      expect(res.body.message).toMatch(message);
      if (field) expect(res.body.details).toMatchObject({ field });
    }
    const notObject = await t
      .http()
      .put('/shops/shop-bad/merchant-accounts/mpesa')
      .set('Authorization', mgr('shop-bad'))
      .set('Content-Type', 'application/json')
      .send('[1,2]');
    expect(notObject.status).toBe(400);
    const unknownProvider = await t
      .http()
      .put('/shops/shop-bad/merchant-accounts/paypal')
      .set('Authorization', mgr('shop-bad'))
      .send(paybill());
    expect(unknownProvider.status).toBe(400);
    expect(unknownProvider.body.message).toMatch(/provider must be one of mpesa, flutterwave, pesapal/);
    const rows = await t.db.execute(sql`select count(*)::int as n from merchant_accounts where shop_id = 'shop-bad'`);
    expect((rows as unknown as { rows: Array<{ n: number }> }).rows[0].n).toBe(0);
  });

  it('only the shop’s manager/admin (or a platform operator) reads or changes its accounts; an operator token takes no payments', async () => {
    expect((await put('shop-a', paybill(), cashier('shop-a'))).status).toBe(403);
    expect((await put('shop-a', paybill(), mgr('shop-b'))).status).toBe(403);
    const read = await t.http().get('/shops/shop-a/merchant-accounts').set('Authorization', cashier('shop-a'));
    expect(read.status).toBe(403);
    const other = await t.http().get('/shops/shop-a/merchant-accounts/mpesa').set('Authorization', mgr('shop-b'));
    expect(other.status).toBe(403);
    expect(other.body.message).toMatch(/your own shop/);
    const audit = await t.http().get('/shops/shop-a/audit-events').set('Authorization', mgr('shop-b'));
    expect(audit.status).toBe(403);
    const opPush = await t
      .http()
      .post('/payments/stk-push')
      .set('Authorization', operator())
      .send({ phoneNumber: '254712345678', amount: 1, orderId: 'X' });
    expect(opPush.status).toBe(403);
    expect(opPush.body.message).toMatch(/platform operator token/);
  });

  it('secrets are write-only: reads show which are set and a fingerprint; audit events name fields, never values; the table holds no secret in clear', async () => {
    const res = await put('shop-a', paybill());
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      provider: 'mpesa',
      source: 'own',
      environment: 'simulator',
      settings: { type: 'paybill', shortcode: PAYBILL },
      secretsSet: ['consumerKey', 'consumerSecret', 'passkey'],
      credentialsFromShopId: null,
      verification: null,
      createdBy: 'user:mgr-shop-a (manager)',
    });
    expect(res.body.fingerprints.passkey).toMatch(/^[0-9a-f]{8}$/);
    const text = JSON.stringify(res.body);
    for (const s of [PASSKEY_A, SIM_SECRET, SIM_KEY]) expect(text).not.toContain(s);

    const list = await t.http().get('/shops/shop-a/merchant-accounts').set('Authorization', mgr('shop-a'));
    expect(list.status).toBe(200);
    expect(list.body.map((a: { provider: string; source: string }) => [a.provider, a.source])).toContainEqual([
      'mpesa',
      'own',
    ]);
    expect(JSON.stringify(list.body)).not.toContain(PASSKEY_A);

    const audit = await t.http().get('/shops/shop-a/audit-events').set('Authorization', mgr('shop-a'));
    expect(audit.status).toBe(200);
    expect(audit.body[0]).toMatchObject({
      actor: 'user:mgr-shop-a (manager)',
      action: 'merchant_account.created',
      data: {
        provider: 'mpesa',
        fields: ['consumerKey', 'consumerSecret', 'environment', 'passkey', 'shortcode', 'type'],
      },
    });
    expect(JSON.stringify(audit.body)).not.toContain(PASSKEY_A);
    // Paged back with `before`.
    expect((await put('shop-a', paybill(PASSKEY_C, PAYBILL_2))).status).toBe(200);
    const newest = await t.http().get('/shops/shop-a/audit-events?limit=1').set('Authorization', mgr('shop-a'));
    expect(newest.body).toHaveLength(1);
    expect(newest.body[0].action).toBe('merchant_account.replaced');
    const older = await t
      .http()
      .get(`/shops/shop-a/audit-events?limit=1&before=${newest.body[0].id}`)
      .set('Authorization', mgr('shop-a'));
    expect(older.body.map((e: { action: string }) => e.action)).toEqual(['merchant_account.created']);
    const bad = await t.http().get('/shops/shop-a/audit-events?before=abc').set('Authorization', mgr('shop-a'));
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/before must be the id of an audit event/);
    expect((await put('shop-a', paybill())).status).toBe(200);

    const raw = await t.db.execute(sql`select row_to_json(m)::text as j from merchant_accounts m`);
    const auditRaw = await t.db.execute(sql`select row_to_json(a)::text as j from audit_events a`);
    const all = [
      ...(raw as unknown as { rows: Array<{ j: string }> }).rows,
      ...(auditRaw as unknown as { rows: Array<{ j: string }> }).rows,
    ]
      .map((r) => r.j)
      .join('\n');
    for (const s of [PASSKEY_A, SIM_SECRET, SIM_KEY, Buffer.from(PASSKEY_A).toString('base64')])
      expect(all).not.toContain(s);
    expect(all).toMatch(/"secrets":"v1\.k1\./);
  });

  it('pushes go out with each shop’s own BusinessShortCode, PartyB, TransactionType and password; a shop without one uses the platform’s', async () => {
    expect((await put('shop-a', paybill())).status).toBe(200);
    expect((await put('shop-t', till())).status).toBe(200);
    const a = await push('shop-a', 'A-1');
    const tl = await push('shop-t', 'T-1');
    const p = await push('shop-p', 'P-1');
    for (const r of [a, tl, p]) expect(r.status).toBe(201);
    const simA = t.sim.getPush(fullCheckoutRequestId(t.sim, a.body))!;
    const simT = t.sim.getPush(fullCheckoutRequestId(t.sim, tl.body))!;
    const simP = t.sim.getPush(fullCheckoutRequestId(t.sim, p.body))!;
    expect(simA).toMatchObject({ shortcode: PAYBILL, partyB: PAYBILL, transactionType: 'CustomerPayBillOnline' });
    expect(simT).toMatchObject({ shortcode: STORE, partyB: TILL, transactionType: 'CustomerBuyGoodsOnline' });
    expect(simP).toMatchObject({ shortcode: '174379', transactionType: 'CustomerPayBillOnline' });
    // (the simulator checks Password = base64(shortcode + passkey + timestamp) of the shortcode's own passkey)

    const ids = await t.db.execute(
      sql`select order_id, merchant_account_id::text as account from payments where order_id in ('A-1','T-1','P-1') order by order_id`,
    );
    const byOrder = Object.fromEntries(
      (ids as unknown as { rows: Array<{ order_id: string; account: string | null }> }).rows.map((r) => [
        r.order_id,
        r.account,
      ]),
    );
    const accountA = (await t.http().get('/shops/shop-a/merchant-accounts/mpesa').set('Authorization', mgr('shop-a')))
      .body.accountId;
    expect(byOrder).toEqual({ 'A-1': accountA, 'P-1': null, 'T-1': expect.any(String) });
  });

  it('an in-flight payment keeps querying with the account it was made with after the shop changes its account', async () => {
    expect((await put('shop-m', paybill())).status).toBe(200);
    const first = await push('shop-m', 'M-1', 10, NEVER_ANSWERS);
    expect(first.status).toBe(201);
    const third = await push('shop-m', 'M-3', 10, NEVER_ANSWERS);
    expect(third.status).toBe(201);
    // The shop moves to another paybill mid-flight.
    const moved = await put('shop-m', paybill(PASSKEY_C, PAYBILL_2));
    expect(moved.status).toBe(200);
    expect(moved.body.settings.shortcode).toBe(PAYBILL_2);

    const before = t.sim.queries().length;
    const status = await t
      .http()
      .get('/payments/stk-status')
      .query({ checkoutRequestId: first.body.checkoutRequestId })
      .set('Authorization', `Bearer ${t.token('shop-m')}`);
    expect(status.status).toBe(200);
    expect(status.body.status).toBe('pending');
    const asked = t.sim.queries().slice(before);
    expect(asked.length).toBeGreaterThan(0);
    // Asked with the old shortcode and its passkey (a wrong password would be refused, not "pending").
    expect(
      asked.every((q) => q.shortcode === PAYBILL && q.checkoutRequestId === fullCheckoutRequestId(t.sim, first.body)),
    ).toBe(true);
    // The reconciler (here: a manager's reconcile-now) asks with the payment's account too.
    const beforeReconcile = t.sim.queries().length;
    const reconciled = await t
      .http()
      .post(`/payments/${third.body.paymentId}/reconcile`)
      .set('Authorization', mgr('shop-m'));
    expect(reconciled.status).toBe(200);
    expect(reconciled.body.action).toBe('still_pending');
    const reconcilerAsked = t.sim.queries().slice(beforeReconcile);
    expect(reconcilerAsked.length).toBeGreaterThan(0);
    expect(
      reconcilerAsked.every(
        (q) => q.shortcode === PAYBILL && q.checkoutRequestId === fullCheckoutRequestId(t.sim, third.body),
      ),
    ).toBe(true);
    const second = await push('shop-m', 'M-2');
    expect(second.status).toBe(201);
    expect(t.sim.getPush(fullCheckoutRequestId(t.sim, second.body))).toMatchObject({
      shortcode: PAYBILL_2,
      partyB: PAYBILL_2,
    });
  });

  it('an account with a known consumer key but the wrong secret never rides on that key’s token', async () => {
    // The platform's token for SIM_KEY is cached by now (the pushes above).
    expect((await put('shop-w', { ...paybill(), consumerSecret: 'guessed-secret' })).status).toBe(200);
    const pushesBefore = t.sim.pushes().length;
    const res = await push('shop-w', 'W-1');
    expect(res.status).toBeGreaterThanOrEqual(500);
    expect(res.body.code).toMatch(/^PROVIDER_/);
    expect(t.sim.pushes().length).toBe(pushesBefore);
  });

  it('a chain: an operator points a branch at the head office’s credentials with its own till', async () => {
    expect((await put('hq', till(), operator())).status).toBe(200);
    const branch = { environment: 'simulator', type: 'till', tillNumber: BRANCH_TILL, credentialsFromShopId: 'hq' };
    const linked = await put('branch-1', branch, operator());
    expect(linked.status).toBe(200);
    expect(linked.body).toMatchObject({
      source: 'chain',
      credentialsFromShopId: 'hq',
      // where its money goes: the head office's store number, its own till
      settings: { type: 'till', tillNumber: BRANCH_TILL, shortcode: STORE },
      secretsSet: [],
      problem: null,
    });
    // A branch brings no credentials or store number of its own.
    const withSecret = await put('branch-2', { ...branch, passkey: PASSKEY_B }, operator());
    expect(withSecret.status).toBe(400);
    expect(withSecret.body.message).toMatch(/passkey comes from the shop whose credentials/);
    const fromNowhere = await put('branch-2', { ...branch, credentialsFromShopId: 'no-such-shop' }, operator());
    expect(fromNowhere.status).toBe(400);
    expect(fromNowhere.body.message).toMatch(/has no M-Pesa credentials of its own/);

    const res = await push('branch-1', 'B-1');
    expect(res.status).toBe(201);
    expect(t.sim.getPush(fullCheckoutRequestId(t.sim, res.body))).toMatchObject({
      shortcode: STORE,
      partyB: BRANCH_TILL,
      transactionType: 'CustomerBuyGoodsOnline',
    });
    const hqAccount = (await t.http().get('/shops/hq/merchant-accounts/mpesa').set('Authorization', operator())).body
      .accountId;
    const row = await t.db.execute(sql`select merchant_account_id::text as a from payments where order_id = 'B-1'`);
    expect((row as unknown as { rows: Array<{ a: string }> }).rows[0].a).toBe(hqAccount);

    const removeHq = await t.http().delete('/shops/hq/merchant-accounts/mpesa').set('Authorization', operator());
    expect(removeHq.status).toBe(409);
    expect(removeHq.body.code).toBe('ACCOUNT_IN_USE');

    // The head office may rotate its secrets, but not move what its branches' tills depend on.
    const hqView = await t.http().get('/shops/hq/merchant-accounts/mpesa').set('Authorization', mgr('hq'));
    expect(hqView.body.lentToShops).toBe(1);
    for (const [what, body] of [
      ['environment', { ...till(), environment: 'sandbox' }],
      ['type', paybill(PASSKEY_B, STORE)],
      ['shortcode', { ...till(), shortcode: PAYBILL_2, passkey: PASSKEY_C }],
    ] as const) {
      const moved = await put('hq', body, mgr('hq'));
      expect(moved.status).toBe(409);
      expect(moved.body).toMatchObject({ code: 'ACCOUNT_IN_USE', details: { fields: [what] } });
    }
    expect((await put('hq', { ...till(), consumerSecret: SIM_SECRET }, mgr('hq'))).status).toBe(200);
  });

  it('concurrent chain changes are serialised: a link racing the lender’s removal, and two links that would chain', async () => {
    for (let round = 0; round < 5; round++) {
      const hq = `race-hq-${round}`;
      expect((await put(hq, till(), operator())).status).toBe(200);
      const link = { environment: 'simulator', type: 'till', tillNumber: BRANCH_TILL, credentialsFromShopId: hq };
      const [linked, removed] = await Promise.all([
        put(`race-br-${round}`, link, operator()),
        t.http().delete(`/shops/${hq}/merchant-accounts/mpesa`).set('Authorization', operator()),
      ]);
      // Exactly one wins: a branch never points at a removed account.
      expect([linked.status, removed.status].sort()).toEqual(linked.status === 200 ? [200, 409] : [200, 400]);

      const a = `race-a-${round}`;
      const c = `race-c-${round}`;
      expect((await put(a, till(), operator())).status).toBe(200);
      expect((await put(c, till(), operator())).status).toBe(200);
      const [aToC, bToA] = await Promise.all([
        put(a, { ...link, credentialsFromShopId: c }, operator()),
        put(`race-b-${round}`, { ...link, credentialsFromShopId: a }, operator()),
      ]);
      // Never a chain of two: one of them is refused.
      expect([aToC.status, bToA.status].filter((x) => x === 200)).toHaveLength(1);
    }
  });

  it('removing a shop’s own account does not send its payments to the platform’s account', async () => {
    expect((await put('shop-del', paybill())).status).toBe(200);
    const removed = await t
      .http()
      .delete('/shops/shop-del/merchant-accounts/mpesa')
      .set('Authorization', mgr('shop-del'));
    expect(removed.status).toBe(200);
    expect(removed.body).toMatchObject({ source: 'none', accountId: null });
    const pushesBefore = t.sim.pushes().length;
    const res = await push('shop-del', 'DEL-1');
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: 'MERCHANT_ACCOUNT_REQUIRED' });
    expect(res.body.message).toMatch(/was removed/);
    expect(t.sim.pushes().length).toBe(pushesBefore);
  });

  it('verify checks a shop’s own account only, not more than once in 10 s', async () => {
    const none = await t
      .http()
      .post('/shops/shop-none/merchant-accounts/mpesa/verify')
      .set('Authorization', mgr('shop-none'));
    expect(none.status).toBe(404);
    expect((await put('shop-vv', paybill())).status).toBe(200);
    const first = await t
      .http()
      .post('/shops/shop-vv/merchant-accounts/mpesa/verify')
      .set('Authorization', mgr('shop-vv'));
    expect(first.status).toBe(200);
    const again = await t
      .http()
      .post('/shops/shop-vv/merchant-accounts/mpesa/verify')
      .set('Authorization', mgr('shop-vv'));
    expect(again.status).toBe(429);
    expect(again.body.code).toBe('VERIFY_TOO_SOON');
    expect(Number(again.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('verify checks the key/secret by OAuth and the shortcode/passkey by a status query, stores the result, and says what it could not check', async () => {
    expect((await put('shop-v', till())).status).toBe(200);
    const ok = await t.http().post('/shops/shop-v/merchant-accounts/mpesa/verify').set('Authorization', mgr('shop-v'));
    expect(ok.status).toBe(200);
    expect(ok.body.verification.parts).toEqual([
      expect.objectContaining({ part: 'consumer key and secret', result: 'ok' }),
      expect.objectContaining({ part: 'shortcode and passkey', result: 'ok' }),
      expect.objectContaining({ part: 'till number', result: 'not_verifiable' }),
    ]);
    const stored = await t.http().get('/shops/shop-v/merchant-accounts/mpesa').set('Authorization', mgr('shop-v'));
    expect(stored.body.verification.checkedAt).toEqual(ok.body.verification.checkedAt);

    // A passkey that is not the shortcode's: caught without charging anyone.
    expect((await put('shop-v', { ...till(), passkey: randomBytes(32).toString('hex') })).status).toBe(200);
    const badPasskey = await t
      .http()
      .post('/shops/shop-v/merchant-accounts/mpesa/verify')
      .set('Authorization', mgr('shop-v'));
    expect(badPasskey.body.verification.parts[0]).toMatchObject({ result: 'ok' });
    expect(badPasskey.body.verification.parts[1]).toMatchObject({
      result: 'failed',
      message: expect.stringMatching(/Wrong credentials/),
    });
    expect(badPasskey.body.verification).not.toEqual(stored.body.verification);

    expect((await put('shop-v', { ...till(), consumerSecret: 'not-the-secret' })).status).toBe(200);
    const badSecret = await t
      .http()
      .post('/shops/shop-v/merchant-accounts/mpesa/verify')
      .set('Authorization', mgr('shop-v'));
    expect(badSecret.body.verification.parts[0]).toMatchObject({ result: 'failed' });
    expect(badSecret.body.verification.parts[1]).toMatchObject({ result: 'not_verifiable' });
    const pushes = t.sim.pushes().filter((p) => p.shortcode === STORE && p.accountReference.startsWith('V'));
    expect(pushes).toHaveLength(0);
  });

  it('a change on one instance is seen by another at once (LISTEN/NOTIFY), not after a TTL', async () => {
    const other = await startExtraTestApp(t, { CREDENTIALS_KEYS: `k1:${K1}` });
    try {
      // (both cache which account is a shop's: only the feed can tell them of a change)
      expect(t.app.get(MerchantAccountsService).cacheLive).toBe(true);
      expect(other.app.get(MerchantAccountsService).cacheLive).toBe(true);
      expect((await put('shop-n', paybill())).status).toBe(200);
      const first = await push('shop-n', 'N-1', 10, '254712345678', other as unknown as TestApp);
      expect(first.status).toBe(201);
      expect(t.sim.getPush(fullCheckoutRequestId(t.sim, first.body))!.shortcode).toBe(PAYBILL);
      expect((await put('shop-n', paybill(PASSKEY_C, PAYBILL_2))).status).toBe(200);
      // The other instance cached shop-n's account; the NOTIFY reaches it within moments of the commit.
      const second = await waitFor(async () => {
        const r = await push('shop-n', `N-${Date.now()}`, 10, '254712345678', other as unknown as TestApp);
        return r.status === 201 ? r : undefined;
      });
      expect(t.sim.getPush(fullCheckoutRequestId(t.sim, second.body))!.shortcode).toBe(PAYBILL_2);
    } finally {
      await other.close();
    }
  });

  it('a lost LISTEN connection: the cache stops trusting itself until the feed is back, so no change is missed', async () => {
    const other = await startExtraTestApp(t, { CREDENTIALS_KEYS: `k1:${K1}` });
    const feed = other.app.get(MerchantAccountsService);
    try {
      expect((await put('shop-f', paybill())).status).toBe(200);
      const first = await push('shop-f', 'F-1', 10, '254712345678', other as unknown as TestApp);
      expect(t.sim.getPush(fullCheckoutRequestId(t.sim, first.body))!.shortcode).toBe(PAYBILL);
      // The database ends every listening connection (a failover, pg_terminate_backend).
      await t.db.execute(
        sql`select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and query ilike 'LISTEN%'`,
      );
      await waitFor(async () => !feed.cacheLive, 3000, 5);
      // A change made while the other instance cannot hear about it.
      expect((await put('shop-f', paybill(PASSKEY_C, PAYBILL_2))).status).toBe(200);
      const second = await push('shop-f', 'F-2', 10, '254712345678', other as unknown as TestApp);
      expect(second.status).toBe(201);
      expect(t.sim.getPush(fullCheckoutRequestId(t.sim, second.body))!.shortcode).toBe(PAYBILL_2);
      // It listens again by itself, and caches again.
      await waitFor(async () => feed.cacheLive, 15_000);
      const third = await push('shop-f', 'F-3', 10, '254712345678', other as unknown as TestApp);
      expect(t.sim.getPush(fullCheckoutRequestId(t.sim, third.body))!.shortcode).toBe(PAYBILL_2);
    } finally {
      await other.close();
    }
  });

  it('fails closed: a wrong key under the right id refuses to start; a row changed behind the API answers 503 naming the account, nothing sent', async () => {
    expect((await put('shop-k', paybill())).status).toBe(200);
    // The same key id with other key material would start healthy and seal rows nobody else can open.
    await expect(startExtraTestApp(t, { CREDENTIALS_KEYS: `k1:${K2}` })).rejects.toThrow(
      /key "k1" does not open the accounts sealed with it/,
    );
    // Where the money goes is bound to the sealed secrets: a till number changed in the table fails closed.
    const accountId = (await t.http().get('/shops/shop-k/merchant-accounts/mpesa').set('Authorization', mgr('shop-k')))
      .body.accountId;
    await t.db.execute(
      sql`update merchant_accounts set settings = settings || '{"shortcode":"600222"}'::jsonb where id = ${accountId}`,
    );
    const other = await startExtraTestApp(t, { CREDENTIALS_KEYS: `k1:${K1}` });
    try {
      // A back-office screen sees it before a payment does.
      const view = await other.http().get('/shops/shop-k/merchant-accounts/mpesa').set('Authorization', mgr('shop-k'));
      expect(view.body.problem).toMatch(/do not open/);
      const pushesBefore = t.sim.pushes().length;
      const res = await push('shop-k', 'K-1', 10, '254712345678', other as unknown as TestApp);
      expect(res.status).toBe(503);
      expect(res.body.code).toBe('MERCHANT_ACCOUNT_UNREADABLE');
      expect(res.body.message).toContain(accountId);
      expect(res.body.message).toMatch(/nothing was sent/);
      expect(res.body.message).not.toMatch(/k1|shop-/);
      expect(t.sim.pushes().length).toBe(pushesBefore);
      const stored = await t.db.execute(sql`select count(*)::int as n from payments where order_id = 'K-1'`);
      expect((stored as unknown as { rows: Array<{ n: number }> }).rows[0].n).toBe(0);
    } finally {
      await other.close();
      // (the damaged row is retired so the rotation test below re-seals only readable rows)
      expect(
        (await t.http().delete('/shops/shop-k/merchant-accounts/mpesa').set('Authorization', mgr('shop-k'))).status,
      ).toBe(200);
    }
  });

  it('rotation re-seals every row under the newest key; the old key can then be dropped', async () => {
    expect((await put('shop-r', till())).status).toBe(200);
    const rotated = await startExtraTestApp(t, { CREDENTIALS_KEYS: `k2:${K2},k1:${K1}` });
    try {
      const result = await rotated.app.get(MerchantAccountsService).reencryptAll('test:rotation');
      expect(result.resealed).toBeGreaterThan(0);
      // The row damaged above does not hold the others back; it is reported and keeps its key.
      expect(result.unreadable).toHaveLength(1);
      expect(result.byKey).toEqual({ k1: 1, k2: result.resealed });
      const again = await rotated.app.get(MerchantAccountsService).reencryptAll('test:rotation');
      expect(again.resealed).toBe(0);
    } finally {
      await rotated.close();
    }
    const onlyNew = await startExtraTestApp(t, { CREDENTIALS_KEYS: `k2:${K2}` });
    try {
      const auth = `Bearer ${t.token('shop-r')}`;
      expect(
        (await onlyNew.http().post('/orders').set('Authorization', auth).send({ id: 'R-1', total: 10 })).status,
      ).toBe(201);
      const res = await onlyNew
        .http()
        .post('/payments/stk-push')
        .set('Authorization', auth)
        .send({ phoneNumber: '254712345678', amount: 10, orderId: 'R-1' });
      expect(res.status).toBe(201);
      expect(t.sim.getPush(fullCheckoutRequestId(t.sim, res.body))).toMatchObject({ shortcode: STORE, partyB: TILL });
      // The same account set again after the rotation (new fingerprints): nothing changed, nothing written.
      const again = await onlyNew
        .http()
        .put('/shops/shop-r/merchant-accounts/mpesa')
        .set('Authorization', mgr('shop-r'))
        .send(till());
      expect(again.status).toBe(200);
      expect(again.body.problem).toBeNull();
      const audit = await onlyNew.http().get('/shops/shop-r/audit-events').set('Authorization', mgr('shop-r'));
      expect(audit.body[0]).toMatchObject({
        action: 'merchant_account.reencrypted',
        actor: 'test:rotation',
        data: { fromKey: 'k1', toKey: 'k2' },
      });
    } finally {
      await onlyNew.close();
    }
  });
});

describe('a deployment without a platform account for shops', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ env: { MERCHANT_ACCOUNTS_PLATFORM_DEFAULT: 'false' } });
  });
  afterAll(() => t.close());

  it('a shop without its own account is told so (409) and nothing is written or sent', async () => {
    const auth = `Bearer ${t.token('shop-x')}`;
    expect((await t.http().post('/orders').set('Authorization', auth).send({ id: 'X-1', total: 10 })).status).toBe(201);
    const res = await t
      .http()
      .post('/payments/stk-push')
      .set('Authorization', auth)
      .send({ phoneNumber: '254712345678', amount: 10, orderId: 'X-1' });
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: 'MERCHANT_ACCOUNT_REQUIRED' });
    expect(res.body.message).toMatch(/no M-Pesa account set up yet/);
    expect(t.sim.pushes()).toHaveLength(0);
    const read = await t
      .http()
      .get('/shops/shop-x/merchant-accounts/mpesa')
      .set('Authorization', `Bearer ${t.token('shop-x', 'manager')}`);
    expect(read.body).toMatchObject({ source: 'none', accountId: null });
  });
});

/** TCP proxy to Postgres that can freeze (not close) the connections that LISTEN: a half-open link. */
function listenFreezer() {
  const frozen = new Set<net.Socket>();
  const listening: net.Socket[] = [];
  const server = net.createServer((c) => {
    const s = net.connect(5432, '127.0.0.1');
    c.on('data', (d) => {
      if (d.includes('LISTEN merchant_accounts_changed')) listening.push(c);
      if (!frozen.has(c)) s.write(d);
    });
    s.on('data', (d) => {
      if (!frozen.has(c)) c.write(d);
    });
    c.on('error', () => undefined);
    s.on('error', () => undefined);
    c.on('close', () => s.destroy());
    s.on('close', () => c.destroy());
  });
  return { server, freeze: () => listening.forEach((c) => frozen.add(c)) };
}

describe('a LISTEN connection that dies without a word (half-open)', () => {
  let t: TestApp;
  const fz = listenFreezer();
  beforeAll(async () => {
    await new Promise<void>((r) => fz.server.listen(0, '127.0.0.1', () => r()));
    const port = (fz.server.address() as net.AddressInfo).port;
    t = await startTestApp({
      env: { CREDENTIALS_KEYS: `k1:${K1}` },
      sim: {
        accounts: [
          { shortcode: '174379', passkey: SANDBOX_PASSKEY, tillNumbers: ['174379'] },
          { shortcode: PAYBILL, passkey: PASSKEY_A },
          { shortcode: PAYBILL_2, passkey: PASSKEY_C },
        ],
      },
      database: async (tdb) => {
        const u = new URL(tdb.url as string);
        u.host = `127.0.0.1:${port}`;
        return openDatabase({ databaseUrl: u.toString(), poolSize: 5 });
      },
    });
  });
  afterAll(async () => {
    await t.close();
    fz.server.close();
  });

  it('is found out by the heartbeat within seconds: the cache stops trusting itself and the change is seen', async () => {
    const mgr = `Bearer ${t.token('shop-h', 'manager', 'mgr-h')}`;
    const account = (passkey: string, shortcode: string) => ({
      environment: 'simulator',
      type: 'paybill',
      shortcode,
      consumerKey: SIM_KEY,
      consumerSecret: SIM_SECRET,
      passkey,
    });
    const direct = await startExtraTestApp(t, { CREDENTIALS_KEYS: `k1:${K1}` }); // not through the proxy
    const svc = t.app.get(MerchantAccountsService);
    const auth = `Bearer ${t.token('shop-h')}`;
    const pushFor = async (orderId: string) => {
      await t.http().post('/orders').set('Authorization', auth).send({ id: orderId, total: 10 }).expect(201);
      const r = await t
        .http()
        .post('/payments/stk-push')
        .set('Authorization', auth)
        .send({ phoneNumber: '254712345678', amount: 10, orderId });
      expect(r.status).toBe(201);
      return t.sim.getPush(fullCheckoutRequestId(t.sim, r.body))!.shortcode;
    };
    try {
      const set = (a: object) =>
        direct.http().put('/shops/shop-h/merchant-accounts/mpesa').set('Authorization', mgr).send(a);
      expect((await set(account(PASSKEY_A, PAYBILL))).status).toBe(200);
      expect(await pushFor('H-1')).toBe(PAYBILL);
      expect(svc.cacheLive).toBe(true);
      fz.freeze();
      expect((await set(account(PASSKEY_C, PAYBILL_2))).status).toBe(200);
      // The NOTIFY is lost in the frozen connection; the heartbeat (3 s, 2 s to answer) notices.
      await waitFor(async () => !svc.cacheLive, 10_000);
      expect(await pushFor('H-2')).toBe(PAYBILL_2);
    } finally {
      await direct.close();
    }
  }, 30_000);
});
