import { startTestApp, TestApp, waitFor } from './helpers/test-app';

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
});
