import { openSse } from './helpers/sse';
import { fullCheckoutRequestId, startTestApp, TestApp, waitFor } from './helpers/test-app';

/** The embedded database (PGlite) runs the same migrations and SQL, even when CI points the rest at Postgres. */
describe('embedded PGlite database', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ pglite: true });
  });
  afterAll(() => t.close());

  it('takes a payment end to end with row locks, partial indexes and derived balances', async () => {
    expect(t.database.handle.kind).toBe('pglite');
    const auth = `Bearer ${t.token()}`;
    await t.http().post('/orders').set('Authorization', auth).send({ id: 'PG-1', total: 20.5 }).expect(201);
    const push = await t
      .http()
      .post('/payments/stk-push')
      .set('Authorization', auth)
      .send({ phoneNumber: '0712345678', amount: 20, orderId: 'PG-1' });
    expect(push.status).toBe(201);
    expect(
      (
        await t
          .http()
          .post('/payments/stk-push')
          .set('Authorization', auth)
          .send({ phoneNumber: '0712345678', amount: 0 + 0.5 * 2, orderId: 'PG-1' })
      ).status,
    ).toBe(409);
    await waitFor(
      async () =>
        (await t.http().get(`/payments/${push.body.paymentId}`).set('Authorization', auth)).body.status === 'completed',
      8000,
    );
    const o = await t.http().get('/orders/PG-1').set('Authorization', auth);
    expect(o.body).toMatchObject({ paid: 20, outstanding: 0.5, status: 'partially_paid' });
    expect((await t.http().get('/health')).body).toMatchObject({ status: 'ok', databaseKind: 'pglite' });
  });

  it('keeps shops’ own accounts: sealed rows, pushes with the account, a change seen by the next push', async () => {
    const mgr = `Bearer ${t.token('shop-pg', 'manager', 'mgr-pg')}`;
    const account = (shortcode: string) => ({
      environment: 'simulator',
      type: 'paybill',
      shortcode,
      consumerKey: 'smartduka-sim-key',
      consumerSecret: 'smartduka-sim-secret',
      passkey: 'bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919',
    });
    const auth = `Bearer ${t.token('shop-pg')}`;
    const pushFor = async (orderId: string) => {
      await t.http().post('/orders').set('Authorization', auth).send({ id: orderId, total: 5 }).expect(201);
      return t
        .http()
        .post('/payments/stk-push')
        .set('Authorization', auth)
        .send({ phoneNumber: '0712345678', amount: 5, orderId });
    };
    expect(
      (await t.http().put('/shops/shop-pg/merchant-accounts/mpesa').set('Authorization', mgr).send(account('174379')))
        .status,
    ).toBe(200);
    const first = await pushFor('PG-A1');
    expect(first.status).toBe(201);
    expect(t.sim.getPush(fullCheckoutRequestId(t.sim, first.body))!.shortcode).toBe('174379');
    // An unknown shortcode now: the cached choice is dropped at the commit, and Daraja refuses it.
    expect(
      (await t.http().put('/shops/shop-pg/merchant-accounts/mpesa').set('Authorization', mgr).send(account('999999')))
        .status,
    ).toBe(200);
    const second = await pushFor('PG-A2');
    expect(second.status).toBe(502);
    expect(second.body.message).toMatch(/merchant does not exist/i);
  });

  it('streams live status: the trigger and LISTEN/NOTIFY work on PGlite too', async () => {
    const auth = `Bearer ${t.token('shop-live')}`;
    await t.http().post('/orders').set('Authorization', auth).send({ id: 'PG-LIVE', total: 10 }).expect(201);
    const shop = await openSse(`${t.baseUrl}/payments/events`, { Authorization: auth });
    try {
      await shop.waitFor((e) => e.some((x) => x.event === 'ready'));
      const push = await t
        .http()
        .post('/payments/stk-push')
        .set('Authorization', auth)
        .send({ phoneNumber: '0712345678', amount: 10, orderId: 'PG-LIVE' });
      expect(push.status).toBe(201);
      const events = await shop.waitFor(
        (e) => e.some((x) => x.event === 'payment' && JSON.parse(x.data).status === 'completed'),
        15_000,
      );
      const mine = events.filter((x) => x.event === 'payment').map((x) => JSON.parse(x.data));
      expect(mine.map((p) => p.status)).toEqual(['initiated', 'pending', 'completed']);
      expect(mine.every((p) => p.paymentId === push.body.paymentId)).toBe(true);
    } finally {
      shop.close();
    }
  });
});
