import { sql } from 'drizzle-orm';
import { createHash } from 'node:crypto';
import { fullCheckoutRequestId, startTestApp, TestApp, waitFor } from './helpers/test-app';

describe('M-Pesa STK push, end to end (real app + database + simulator)', () => {
  let t: TestApp;
  let auth: string;
  beforeAll(async () => {
    t = await startTestApp();
    auth = `Bearer ${t.token()}`;
  });
  afterAll(() => t.close());

  async function createOrder(id: string, total: number) {
    const res = await t.http().post('/orders').set('Authorization', auth).send({ id, total });
    expect(res.status).toBe(201);
    return res.body;
  }

  it('order → push → callback → completed → order paid', async () => {
    await createOrder('ORD-1', 150);
    const push = await t
      .http()
      .post('/payments/stk-push')
      .set('Authorization', auth)
      .send({ phoneNumber: '0712 345-678', amount: 150, orderId: 'ORD-1' });
    expect(push.status).toBe(201);
    expect(push.body).toMatchObject({ status: 'pending', responseCode: '0', amount: 150, orderId: 'ORD-1' });
    expect(push.body.checkoutRequestId).toMatch(/^ws_CO_/);

    const simPush = t.sim.getPush(fullCheckoutRequestId(t.sim, push.body))!;
    expect(simPush.phoneNumber).toBe('254712345678');
    expect(simPush.amount).toBe(150);
    expect(simPush.accountReference).toBe('ORD1');
    expect(simPush.callbackUrl).toMatch(new RegExp(`/payments/callback/${push.body.paymentId}/[0-9a-f]{64}$`));

    await t.sim.waitForCallbacks(fullCheckoutRequestId(t.sim, push.body), 1, 5000);
    const status = await waitFor(async () => {
      const r = await t
        .http()
        .get('/payments/stk-status')
        .query({ checkoutRequestId: push.body.checkoutRequestId })
        .set('Authorization', auth);
      return r.body.status === 'completed' ? r : undefined;
    });
    expect(status.body).toMatchObject({
      paymentId: push.body.paymentId,
      status: 'completed',
      resultCode: '0',
      amount: 150,
      orderId: 'ORD-1',
      phone: '2547******78',
    });
    expect(status.body.mpesaReceiptNumber).toMatch(/^[A-Z0-9]{10}$/);

    const order = await t.http().get('/orders/ORD-1').set('Authorization', auth);
    expect(order.body).toMatchObject({ id: 'ORD-1', total: 150, paid: 150, outstanding: 0, status: 'paid' });
    expect(order.body.paidAt).not.toBeNull();

    // The number itself is never stored: a masked form, and a keyed hash a plain sha256 cannot match.
    const rows = (await t.db.execute(
      sql`select phone_masked, phone_hash, (select count(*)::int from payment_events e where e.data::text like '%254712345678%') as leaks from payments where id = ${push.body.paymentId}`,
    )) as unknown as { rows: { phone_masked: string; phone_hash: string; leaks: number }[] };
    const row = (rows.rows ?? (rows as unknown as typeof rows.rows))[0];
    expect(row.phone_masked).toBe('2547******78');
    expect(row.phone_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(row.phone_hash).not.toBe(createHash('sha256').update('254712345678').digest('hex'));
    expect(row.leaks).toBe(0);
  });
});
