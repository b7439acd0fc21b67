import { createHash } from 'node:crypto';
import { SANDBOX_PASSKEY } from '../src/config/app-config';
import { fullCheckoutRequestId, startTestApp, TestApp } from './helpers/test-app';
import { recordSecrets } from './log-scan/sink';

/**
 * Many shops, many Daraja apps (the simulator serves each app its own shortcodes): 50 shops
 * pushing at once cause one OAuth call per consumer key, and every push goes out with its own
 * shop's app, shortcode and password, never another shop's.
 */
const APPS = 5;
const SHOPS_PER_APP = 10;
const keyOf = (a: number) => `many-app-key-${a}`;
const secretOf = (a: number) => `many-app-secret-${a}`;
const shortcodeOf = (a: number, s: number) => String(700_000 + a * 100 + s);
const passkeyOf = (a: number, s: number) => createHash('sha256').update(`many-${a}-${s}`).digest('hex');

describe('50 shops on 5 Daraja apps, pushing at once', () => {
  let t: TestApp;
  const all = Array.from({ length: APPS * SHOPS_PER_APP }, (_, i) => ({
    app: Math.floor(i / SHOPS_PER_APP),
    slot: i % SHOPS_PER_APP,
    shop: `many-${i}`,
  }));
  beforeAll(async () => {
    t = await startTestApp({
      sim: {
        accounts: [
          { shortcode: '174379', passkey: SANDBOX_PASSKEY, tillNumbers: ['174379'] },
          ...all.map((x) => ({ shortcode: shortcodeOf(x.app, x.slot), passkey: passkeyOf(x.app, x.slot) })),
        ],
        apps: Array.from({ length: APPS }, (_, a) => ({
          consumerKey: keyOf(a),
          consumerSecret: secretOf(a),
          shortcodes: Array.from({ length: SHOPS_PER_APP }, (_, s) => shortcodeOf(a, s)),
        })),
      },
    });
    recordSecrets([
      ...Array.from({ length: APPS }, (_, a) => [
        { kind: 'consumer-key' as const, value: keyOf(a) },
        { kind: 'consumer-secret' as const, value: secretOf(a), pair: keyOf(a) },
      ]).flat(),
      ...all.map((x) => ({
        kind: 'passkey' as const,
        value: passkeyOf(x.app, x.slot),
        pair: shortcodeOf(x.app, x.slot),
      })),
    ]);
    for (const x of all) {
      const res = await t
        .http()
        .put(`/shops/${x.shop}/merchant-accounts/mpesa`)
        .set('Authorization', `Bearer ${t.token(x.shop, 'manager', `mgr-${x.shop}`)}`)
        .send({
          environment: 'simulator',
          type: 'paybill',
          shortcode: shortcodeOf(x.app, x.slot),
          consumerKey: keyOf(x.app),
          consumerSecret: secretOf(x.app),
          passkey: passkeyOf(x.app, x.slot),
        });
      expect(res.status).toBe(200);
      const order = await t
        .http()
        .post('/orders')
        .set('Authorization', `Bearer ${t.token(x.shop)}`)
        .send({ id: `MANY-${x.shop}`, total: 10 });
      expect(order.status).toBe(201);
    }
  });
  afterAll(() => t.close());

  it('one OAuth call per consumer key, and each push with its own shop’s app, shortcode and password', async () => {
    t.sim.reset();
    const results = await Promise.all(
      all.map((x) =>
        t
          .http()
          .post('/payments/stk-push')
          .set('Authorization', `Bearer ${t.token(x.shop)}`)
          .send({
            phoneNumber: `25471${String(all.indexOf(x)).padStart(7, '0')}`,
            amount: 10,
            orderId: `MANY-${x.shop}`,
          }),
      ),
    );
    for (const r of results) expect(r.status).toBe(201);
    expect(t.sim.oauthCalls()).toEqual(Object.fromEntries(Array.from({ length: APPS }, (_, a) => [keyOf(a), 1])));
    all.forEach((x, i) => {
      // (the simulator checked the Password against this shortcode's own passkey, and the app's go-live shortcodes)
      expect(t.sim.getPush(fullCheckoutRequestId(t.sim, results[i].body))).toMatchObject({
        consumerKey: keyOf(x.app),
        shortcode: shortcodeOf(x.app, x.slot),
        partyB: shortcodeOf(x.app, x.slot),
      });
    });
  });
});
