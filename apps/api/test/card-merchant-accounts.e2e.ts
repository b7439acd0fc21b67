import {
  FlutterwaveSimulator,
  PESAPAL_DEFAULT_CONSUMER_KEY,
  PESAPAL_DEFAULT_CONSUMER_SECRET,
  PesapalSimulator,
  startFlutterwaveSimulator,
  startPesapalSimulator,
} from '@smartduka/card-simulators';
import { sql } from 'drizzle-orm';
import request from 'supertest';
import { ipnSettingsKey } from '../src/payments/providers/pesapal/pesapal.helpers';
import { startTestApp, TestApp, waitFor } from './helpers/test-app';
import { recordSecrets, simulatorLog } from './log-scan/sink';

/**
 * Every shop its own Flutterwave / Pesapal merchant account, through HTTP (real app, Postgres,
 * the card simulators with one merchant per shop): each payment's calls reach the provider with its
 * own shop's credentials (asserted on what the simulator recorded), a webhook signed with another
 * shop's hash is refused, verify checks the credentials for real, bad bodies name the field.
 */

const PLATFORM_FLW_KEY = 'FLWSECK_TEST-platform-000000000000-X';
const PLATFORM_FLW_HASH = 'platform-flutterwave-hash-0123456789';
const FLW = {
  a: { key: 'FLWSECK_TEST-shop-a-0000000000000-X', hash: 'shop-a-flutterwave-hash-0123456789' },
  b: { key: 'FLWSECK_TEST-shop-b-0000000000000-X', hash: 'shop-b-flutterwave-hash-0123456789' },
  b2: { key: 'FLWSECK_TEST-shop-b-rotated-00000-X', hash: 'shop-b-rotated-flutterwave-hash-012' },
};
const PESAPAL = {
  a: { key: 'shop-a-pesapal-consumer-key', secret: 'shop-a-pesapal-consumer-secret' },
  b: { key: 'shop-b-pesapal-consumer-key', secret: 'shop-b-pesapal-consumer-secret' },
};
const WEBHOOK = '/payments/flutterwave/webhook';

type Rows<T> = { rows: T[] };
const rowsOf = <T>(r: unknown): T[] => (r as Rows<T>).rows;

describe('Per-shop Flutterwave and Pesapal merchant accounts (real app, Postgres, card simulators)', () => {
  let flw: FlutterwaveSimulator;
  let pesapal: PesapalSimulator;
  let t: TestApp;
  let n = 0;
  /** merchant_accounts id of each shop's own account, as the PUT answered */
  const accountIds: Record<string, string> = {};

  beforeAll(async () => {
    recordSecrets([
      { kind: 'config-secret', value: PLATFORM_FLW_KEY, name: 'flutterwave.secretKey' },
      { kind: 'config-secret', value: PLATFORM_FLW_HASH, name: 'flutterwave.secretHash' },
      ...Object.values(FLW).flatMap((m) => [
        { kind: 'config-secret' as const, value: m.key, name: 'merchant account secretKey' },
        { kind: 'config-secret' as const, value: m.hash, name: 'merchant account secretHash' },
      ]),
      ...Object.values(PESAPAL).flatMap((m) => [
        { kind: 'consumer-key' as const, value: m.key },
        { kind: 'consumer-secret' as const, value: m.secret, pair: m.key },
      ]),
    ]);
    flw = await startFlutterwaveSimulator({
      secretKey: PLATFORM_FLW_KEY,
      secretHash: PLATFORM_FLW_HASH,
      log: simulatorLog(),
    });
    flw.addMerchant({ id: 'shop-a', secretKey: FLW.a.key, secretHash: FLW.a.hash });
    flw.addMerchant({ id: 'shop-b', secretKey: FLW.b.key, secretHash: FLW.b.hash });
    flw.addMerchant({ id: 'shop-b2', secretKey: FLW.b2.key, secretHash: FLW.b2.hash });
    pesapal = await startPesapalSimulator({ ipnRetry: { attempts: 0, intervalMs: 100 }, log: simulatorLog() });
    pesapal.addMerchant({ id: 'shop-a', consumerKey: PESAPAL.a.key, consumerSecret: PESAPAL.a.secret });
    pesapal.addMerchant({ id: 'shop-b', consumerKey: PESAPAL.b.key, consumerSecret: PESAPAL.b.secret });
    t = await startTestApp({
      env: {
        FLUTTERWAVE_ENABLED: 'true',
        FLUTTERWAVE_BASE_URL: flw.url,
        FLUTTERWAVE_SECRET_KEY: PLATFORM_FLW_KEY,
        FLUTTERWAVE_SECRET_HASH: PLATFORM_FLW_HASH,
        FLUTTERWAVE_HTTP_TIMEOUT_MS: '1000',
        PESAPAL_ENABLED: 'true',
        PESAPAL_ENV: 'simulator',
        PESAPAL_BASE_URL: pesapal.url,
        PESAPAL_CONSUMER_KEY: PESAPAL_DEFAULT_CONSUMER_KEY,
        PESAPAL_CONSUMER_SECRET: PESAPAL_DEFAULT_CONSUMER_SECRET,
        PESAPAL_HTTP_TIMEOUT_MS: '1500',
        RECONCILER_ENABLED: 'false',
        RECONCILER_PENDING_GRACE_SECONDS: '0',
        RECONCILER_INBOX_RETRY_AFTER_SECONDS: '0',
      },
    });
    flw.configure({ webhookUrl: `${t.baseUrl}${WEBHOOK}` });
  });
  afterAll(async () => {
    await t?.close();
    await flw?.close();
    await pesapal?.close();
  });

  const operator = () => `Bearer ${t.token('platform', 'operator', 'op-1')}`;
  const manager = (shop: string) => `Bearer ${t.token(shop, 'manager', `mgr-${shop}`)}`;
  const cashier = (shop: string) => `Bearer ${t.token(shop, 'cashier', `cashier-${shop}`)}`;

  function putAccount(shop: string, provider: string, body: Record<string, unknown>) {
    return t.http().put(`/shops/${shop}/merchant-accounts/${provider}`).set('Authorization', manager(shop)).send(body);
  }

  async function setAccount(shop: string, provider: string, body: Record<string, unknown>): Promise<string> {
    const res = await putAccount(shop, provider, body);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ provider, source: 'own', environment: 'simulator' });
    // Never a secret in an answer: only which are set.
    expect(JSON.stringify(res.body)).not.toMatch(/shop-[ab]-(flutterwave-hash|pesapal-consumer)|FLWSECK/);
    return res.body.accountId as string;
  }

  async function order(shop: string, total: number): Promise<string> {
    const id = `CMA-${++n}`;
    const res = await t.http().post('/orders').set('Authorization', cashier(shop)).send({ id, total });
    expect(res.status).toBe(201);
    return id;
  }

  async function storedAccountOf(paymentId: string): Promise<string | null> {
    const rows = rowsOf<{ merchant_account_id: string | null }>(
      await t.db.execute(sql`select merchant_account_id from payments where id = ${paymentId}`),
    );
    return rows[0].merchant_account_id;
  }

  async function statusOf(shop: string, paymentId: string): Promise<string> {
    const res = await t.http().get(`/payments/${paymentId}`).set('Authorization', cashier(shop));
    expect(res.status).toBe(200);
    return res.body.status as string;
  }

  // ------------------------------------------------------------------ Flutterwave

  describe('Flutterwave', () => {
    async function openFlw(shop: string, total = 100) {
      const orderId = await order(shop, total);
      const res = await t
        .http()
        .post('/payments/flutterwave/init')
        .set('Authorization', cashier(shop))
        .send({ orderId, amount: total, customer: { email: 'wanjiku@example.com' } });
      expect(res.status).toBe(201);
      return res.body as { paymentId: string; txRef: string };
    }

    /**
     * The merchants whose keys the status calls about this tx_ref carried (by tx_ref, or by the id
     * of one of its transactions); POST /v3/payments is the checkout's owner (checked apart).
     */
    const merchantsAsked = (txRef: string) => {
      const ids = flw.getCheckout(txRef)?.transactionIds ?? [];
      const about = flw
        .apiCalls()
        .filter((c) => c.path.includes(txRef) || ids.some((id) => c.path.startsWith(`/v3/transactions/${id}/`)));
      expect(about.length).toBeGreaterThan(0);
      return new Set(about.map((c) => c.merchant));
    };

    beforeAll(async () => {
      accountIds.flwA = await setAccount('shop-a', 'flutterwave', {
        environment: 'simulator',
        secretKey: FLW.a.key,
        secretHash: FLW.a.hash,
      });
      accountIds.flwB = await setAccount('shop-b', 'flutterwave', {
        environment: 'simulator',
        secretKey: FLW.b.key,
        secretHash: FLW.b.hash,
      });
    });

    it("each payment is created, verified and confirmed by webhook with its own shop's key and hash (shop-c: the platform's)", async () => {
      const pays = {
        a: await openFlw('shop-a'),
        b: await openFlw('shop-b'),
        c: await openFlw('shop-c'),
      };
      expect(flw.getCheckout(pays.a.txRef)?.merchant).toBe('shop-a');
      expect(flw.getCheckout(pays.b.txRef)?.merchant).toBe('shop-b');
      expect(flw.getCheckout(pays.c.txRef)?.merchant).toBe('default');
      expect(await storedAccountOf(pays.a.paymentId)).toBe(accountIds.flwA);
      expect(await storedAccountOf(pays.b.paymentId)).toBe(accountIds.flwB);
      expect(await storedAccountOf(pays.c.paymentId)).toBeNull();

      for (const [shop, p] of [
        ['shop-a', pays.a],
        ['shop-b', pays.b],
        ['shop-c', pays.c],
      ] as const) {
        await flw.complete(p.txRef, 'successful');
        // The webhook carries the shop's own hash; it is accepted and confirmed with the shop's own key.
        const [hook] = await flw.waitForWebhooks(p.txRef);
        expect(hook.status).toBe(200);
        await waitFor(async () => (await statusOf(shop, p.paymentId)) === 'completed');
      }
      expect(merchantsAsked(pays.a.txRef)).toEqual(new Set(['shop-a']));
      expect(merchantsAsked(pays.b.txRef)).toEqual(new Set(['shop-b']));
      expect(merchantsAsked(pays.c.txRef)).toEqual(new Set(['default']));
    });

    it("refuses a webhook signed with shop A's hash for shop B's payment, exactly as one signed with no hash of ours", async () => {
      const p = await openFlw('shop-b');
      await flw.complete(p.txRef, 'successful');
      await flw.waitForWebhooks(p.txRef);
      await waitFor(async () => (await statusOf('shop-b', p.paymentId)) === 'completed');
      const q = await openFlw('shop-b');
      const body = {
        event: 'charge.completed',
        data: { id: 1, tx_ref: q.txRef, status: 'successful', amount: 100, currency: 'KES' },
      };
      const callsBefore = flw.apiCalls().length;
      const foreign = await request(t.baseUrl).post(WEBHOOK).set('verif-hash', FLW.a.hash).send(body);
      const platforms = await request(t.baseUrl).post(WEBHOOK).set('verif-hash', PLATFORM_FLW_HASH).send(body);
      const nobodys = await request(t.baseUrl)
        .post(WEBHOOK)
        .set('verif-hash', 'no-account-has-this-hash-000')
        .send(body);
      const same = (body: Record<string, unknown>) => ({ ...body, requestId: undefined });
      for (const res of [foreign, platforms, nobodys]) {
        expect(res.status).toBe(401);
        expect(same(res.body)).toEqual(same(nobodys.body));
      }
      expect(JSON.stringify(nobodys.body)).not.toMatch(/shop|account [0-9a-f-]{36}/);
      // Nothing was asked of Flutterwave, nothing changed, nothing verified was stored.
      expect(flw.apiCalls().length).toBe(callsBefore);
      expect(await statusOf('shop-b', q.paymentId)).toBe('pending');
      const verified = rowsOf<{ n: number }>(
        await t.db.execute(
          sql`select count(*)::int as n from callback_inbox where provider = 'flutterwave' and verified and raw_body like ${`%${q.txRef}%`}`,
        ),
      );
      expect(verified[0].n).toBe(0);

      // Its own shop's hash is accepted (and confirmed with its own key).
      const own = await request(t.baseUrl).post(WEBHOOK).set('verif-hash', FLW.b.hash).send(body);
      expect(own.status).toBe(200);
    });

    it('a payment keeps the account it was made with after the shop changes its account', async () => {
      const before = await openFlw('shop-b');
      const rotated = await setAccount('shop-b', 'flutterwave', {
        environment: 'simulator',
        secretKey: FLW.b2.key,
        secretHash: FLW.b2.hash,
      });
      const after = await openFlw('shop-b');
      expect(flw.getCheckout(after.txRef)?.merchant).toBe('shop-b2');
      expect(await storedAccountOf(after.paymentId)).toBe(rotated);
      // The old payment is still asked about (and its webhook checked) with the old account.
      await flw.complete(before.txRef, 'successful');
      const [hook] = await flw.waitForWebhooks(before.txRef);
      expect(hook.status).toBe(200);
      await waitFor(async () => (await statusOf('shop-b', before.paymentId)) === 'completed');
      expect(merchantsAsked(before.txRef)).toEqual(new Set(['shop-b']));
      await setAccount('shop-b', 'flutterwave', {
        environment: 'simulator',
        secretKey: FLW.b.key,
        secretHash: FLW.b.hash,
      });
    });

    it("a chain branch (set by an operator) pays with its head office's key; its webhooks need the head office's hash", async () => {
      const linkedByManager = await t
        .http()
        .put('/shops/shop-f/merchant-accounts/flutterwave')
        .set('Authorization', manager('shop-f'))
        .send({ environment: 'simulator', credentialsFromShopId: 'shop-a' });
      expect(linkedByManager.status).toBe(403);
      const withKey = await t
        .http()
        .put('/shops/shop-f/merchant-accounts/flutterwave')
        .set('Authorization', operator())
        .send({ environment: 'simulator', credentialsFromShopId: 'shop-a', secretKey: FLW.b.key });
      expect(withKey.status).toBe(400);
      expect(withKey.body.details).toEqual({
        field: 'secretKey',
        errors: [{ param: 'secretKey', message: withKey.body.message }],
      });
      const linked = await t
        .http()
        .put('/shops/shop-f/merchant-accounts/flutterwave')
        .set('Authorization', operator())
        .send({ environment: 'simulator', credentialsFromShopId: 'shop-a' });
      expect(linked.status).toBe(200);
      expect(linked.body).toMatchObject({ source: 'chain', credentialsFromShopId: 'shop-a' });

      const p = await openFlw('shop-f');
      expect(flw.getCheckout(p.txRef)?.merchant).toBe('shop-a');
      expect(await storedAccountOf(p.paymentId)).toBe(accountIds.flwA);
      const body = { event: 'charge.completed', data: { id: 1, tx_ref: p.txRef, status: 'successful' } };
      expect((await request(t.baseUrl).post(WEBHOOK).set('verif-hash', FLW.b.hash).send(body)).status).toBe(401);
      await flw.complete(p.txRef, 'successful');
      const [hook] = await flw.waitForWebhooks(p.txRef);
      expect(hook.status).toBe(200);
      await waitFor(async () => (await statusOf('shop-f', p.paymentId)) === 'completed');
      expect(merchantsAsked(p.txRef)).toEqual(new Set(['shop-a']));
    });

    it('verify: ok for a good secret key, failed for a wrong one; the secret hash is not verifiable remotely', async () => {
      const good = await t
        .http()
        .post('/shops/shop-a/merchant-accounts/flutterwave/verify')
        .set('Authorization', manager('shop-a'));
      expect(good.status).toBe(200);
      expect(good.body.verification.parts).toEqual([
        expect.objectContaining({ part: 'secret key', result: 'ok' }),
        expect.objectContaining({ part: 'secret hash', result: 'not_verifiable' }),
      ]);

      await setAccount('shop-d', 'flutterwave', {
        environment: 'simulator',
        secretKey: 'FLWSECK_TEST-nobody-has-this-key-0-X',
        secretHash: 'shop-d-flutterwave-hash-0123456789',
      });
      const bad = await t
        .http()
        .post('/shops/shop-d/merchant-accounts/flutterwave/verify')
        .set('Authorization', manager('shop-d'));
      expect(bad.status).toBe(200);
      expect(bad.body.verification.parts[0]).toMatchObject({ part: 'secret key', result: 'failed' });
      expect(JSON.stringify(bad.body)).not.toContain('nobody-has-this-key');
      // The simulator saw the wrong key as no merchant's (as Flutterwave answers: 401).
      expect(flw.apiCalls().at(-1)).toMatchObject({ endpoint: 'verify', merchant: null });
    });

    it.each([
      [{ secretKey: FLW.a.key, secretHash: FLW.a.hash }, 'environment'],
      [{ environment: 'staging', secretKey: FLW.a.key, secretHash: FLW.a.hash }, 'environment'],
      [{ environment: 'simulator', secretHash: FLW.a.hash }, 'secretKey'],
      [{ environment: 'simulator', secretKey: 'FLWPUBK_TEST-public-key-000-X', secretHash: FLW.a.hash }, 'secretKey'],
      [{ environment: 'sandbox', secretKey: 'FLWSECK-live-key-00000000000-X', secretHash: FLW.a.hash }, 'secretKey'],
      [{ environment: 'simulator', secretKey: FLW.a.key }, 'secretHash'],
      [{ environment: 'sandbox', secretKey: FLW.a.key, secretHash: 'short' }, 'secretHash'],
      [{ environment: 'simulator', secretKey: FLW.a.key, secretHash: FLW.a.hash, publicKey: 'x' }, 'publicKey'],
    ])('PUT %j → 400 naming %s, nothing stored', async (body, field) => {
      const res = await putAccount('shop-e', 'flutterwave', body);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ code: 'VALIDATION_FAILED', details: { field } });
      expect(res.body.message).toContain(field);
      const view = await t
        .http()
        .get('/shops/shop-e/merchant-accounts/flutterwave')
        .set('Authorization', manager('shop-e'));
      expect(view.body.source).toBe('platform');
    });
  });

  // ------------------------------------------------------------------ Pesapal

  describe('Pesapal', () => {
    async function openPesapal(shop: string, total = 100) {
      const orderId = await order(shop, total);
      const res = await t
        .http()
        .post('/payments/pesapal/init')
        .set('Authorization', cashier(shop))
        .send({ orderId, amount: total, customer: { phoneNumber: '0712345678' } });
      expect(res.status).toBe(201);
      return res.body as { paymentId: string; orderTrackingId: string };
    }

    /** The merchants whose tokens the status calls about this order carried. */
    const merchantsAsked = (trackingId: string) => {
      const about = pesapal.apiCalls().filter((c) => c.path.includes(trackingId));
      expect(about.length).toBeGreaterThan(0);
      return new Set(about.map((c) => c.merchant));
    };

    beforeAll(async () => {
      accountIds.ppA = await setAccount('shop-a', 'pesapal', {
        environment: 'simulator',
        consumerKey: PESAPAL.a.key,
        consumerSecret: PESAPAL.a.secret,
      });
      accountIds.ppB = await setAccount('shop-b', 'pesapal', {
        environment: 'simulator',
        consumerKey: PESAPAL.b.key,
        consumerSecret: PESAPAL.b.secret,
      });
    });

    it("each payment is submitted with its own shop's account and IPN registration, and confirmed with its own token (shop-c: the platform's)", async () => {
      const pays = {
        a: await openPesapal('shop-a'),
        b: await openPesapal('shop-b'),
        c: await openPesapal('shop-c'),
      };
      expect(pesapal.getOrder(pays.a.orderTrackingId)?.merchant).toBe('shop-a');
      expect(pesapal.getOrder(pays.b.orderTrackingId)?.merchant).toBe('shop-b');
      expect(pesapal.getOrder(pays.c.orderTrackingId)?.merchant).toBe('default');
      expect(await storedAccountOf(pays.a.paymentId)).toBe(accountIds.ppA);
      expect(await storedAccountOf(pays.b.paymentId)).toBe(accountIds.ppB);
      expect(await storedAccountOf(pays.c.paymentId)).toBeNull();

      // One IPN registration per merchant account, each stored under its own key.
      const regs = pesapal.ipnRegistrations();
      expect(new Set(regs.map((r) => r.merchant))).toEqual(new Set(['shop-a', 'shop-b', 'default']));
      const ipnUrl = `${t.config.publicBaseUrl}/payments/pesapal/callback`;
      for (const [account, merchant] of [
        [accountIds.ppA, 'shop-a'],
        [accountIds.ppB, 'shop-b'],
        ['platform', 'default'],
      ]) {
        const stored = rowsOf<{ value: { ipnId: string } }>(
          await t.db.execute(
            sql`select value from provider_settings where key = ${ipnSettingsKey('simulator', ipnUrl, account)}`,
          ),
        );
        expect(regs.find((r) => r.ipnId === stored[0]?.value.ipnId)?.merchant).toBe(merchant);
      }

      for (const [shop, p] of [
        ['shop-a', pays.a],
        ['shop-b', pays.b],
        ['shop-c', pays.c],
      ] as const) {
        await pesapal.complete(p.orderTrackingId, 'completed');
        const [ipn] = await pesapal.waitForIpns(p.orderTrackingId);
        expect(ipn).toMatchObject({ status: 200, acknowledged: true });
        await waitFor(async () => (await statusOf(shop, p.paymentId)) === 'completed');
      }
      expect(merchantsAsked(pays.a.orderTrackingId)).toEqual(new Set(['shop-a']));
      expect(merchantsAsked(pays.b.orderTrackingId)).toEqual(new Set(['shop-b']));
      expect(merchantsAsked(pays.c.orderTrackingId)).toEqual(new Set(['default']));
    });

    it("a chain branch pays with its head office's account and IPN registration", async () => {
      const linked = await t
        .http()
        .put('/shops/shop-f/merchant-accounts/pesapal')
        .set('Authorization', operator())
        .send({ environment: 'simulator', credentialsFromShopId: 'shop-b' });
      expect(linked.status).toBe(200);
      const registrations = pesapal.ipnRegistrations().length;
      const p = await openPesapal('shop-f');
      expect(pesapal.getOrder(p.orderTrackingId)?.merchant).toBe('shop-b');
      expect(await storedAccountOf(p.paymentId)).toBe(accountIds.ppB);
      expect(pesapal.ipnRegistrations().length).toBe(registrations);
      await pesapal.complete(p.orderTrackingId, 'completed');
      await pesapal.waitForIpns(p.orderTrackingId);
      await waitFor(async () => (await statusOf('shop-f', p.paymentId)) === 'completed');
      expect(merchantsAsked(p.orderTrackingId)).toEqual(new Set(['shop-b']));
    });

    it('verify: ok for a good key and secret (a real RequestToken), failed for a wrong secret', async () => {
      const good = await t
        .http()
        .post('/shops/shop-a/merchant-accounts/pesapal/verify')
        .set('Authorization', manager('shop-a'));
      expect(good.status).toBe(200);
      expect(good.body.verification.parts).toEqual([
        expect.objectContaining({ part: 'consumer key and secret', result: 'ok' }),
      ]);
      const calls = pesapal.apiCalls().length;
      await setAccount('shop-d', 'pesapal', {
        environment: 'simulator',
        consumerKey: PESAPAL.a.key,
        consumerSecret: 'not-shop-a-pesapal-secret',
      });
      const bad = await t
        .http()
        .post('/shops/shop-d/merchant-accounts/pesapal/verify')
        .set('Authorization', manager('shop-d'));
      expect(bad.status).toBe(200);
      expect(bad.body.verification.parts[0]).toMatchObject({ part: 'consumer key and secret', result: 'failed' });
      expect(JSON.stringify(bad.body)).not.toContain('not-shop-a-pesapal-secret');
      expect(pesapal.apiCalls().slice(calls)).toEqual([expect.objectContaining({ endpoint: 'token', merchant: null })]);
    });

    it.each([
      [{ consumerKey: PESAPAL.a.key, consumerSecret: PESAPAL.a.secret }, 'environment'],
      [{ environment: 'live', consumerKey: PESAPAL.a.key, consumerSecret: PESAPAL.a.secret }, 'environment'],
      [{ environment: 'simulator', consumerSecret: PESAPAL.a.secret }, 'consumerKey'],
      [{ environment: 'simulator', consumerKey: 'short', consumerSecret: PESAPAL.a.secret }, 'consumerKey'],
      [{ environment: 'simulator', consumerKey: PESAPAL.a.key, consumerSecret: 'has a space in it' }, 'consumerSecret'],
      [{ environment: 'simulator', consumerKey: PESAPAL.a.key }, 'consumerSecret'],
      [{ environment: 'simulator', consumerKey: PESAPAL.a.key, consumerSecret: PESAPAL.a.secret, ipnId: 'x' }, 'ipnId'],
    ])('PUT %j → 400 naming %s, nothing stored', async (body, field) => {
      const res = await putAccount('shop-e', 'pesapal', body);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ code: 'VALIDATION_FAILED', details: { field } });
      expect(res.body.message).toContain(field);
      const view = await t
        .http()
        .get('/shops/shop-e/merchant-accounts/pesapal')
        .set('Authorization', manager('shop-e'));
      expect(view.body.source).toBe('platform');
    });
  });
});
