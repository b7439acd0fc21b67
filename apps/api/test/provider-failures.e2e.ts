import { sql } from 'drizzle-orm';
import { successCallback } from './helpers/callbacks';
import { freePort, startTestApp, TestApp, waitFor } from './helpers/test-app';

describe('Daraja down, slow or refusing: clear errors and a consistent payment state', () => {
  let t: TestApp;
  let auth: string;
  let n = 0;
  beforeAll(async () => {
    t = await startTestApp();
    auth = `Bearer ${t.token()}`;
  });
  afterEach(() => t.sim.setFaults({}));
  afterAll(() => t.close());

  async function order(total: number, app = t, a = auth): Promise<string> {
    const id = `PF-${++n}`;
    expect((await app.http().post('/orders').set('Authorization', a).send({ id, total })).status).toBe(201);
    return id;
  }
  const push = (orderId: string, amount: number, phoneNumber = '0712345678', app = t, a = auth) =>
    app.http().post('/payments/stk-push').set('Authorization', a).send({ phoneNumber, amount, orderId });
  const getPayment = (id: string, app = t, a = auth) => app.http().get(`/payments/${id}`).set('Authorization', a);

  async function paymentForOrder(orderId: string, db = t.db) {
    const res = await db.execute(sql`select id, status, status_reason from payments where order_id = ${orderId}`);
    return (res as unknown as { rows: { id: string; status: string; status_reason: string }[] }).rows;
  }

  it('Daraja unreachable (connection refused) → 503 PROVIDER_UNREACHABLE with Retry-After, payment failed, order free for another try', async () => {
    const deadPort = await freePort();
    const dead = await startTestApp({ env: { MPESA_BASE_URL: `http://127.0.0.1:${deadPort}` } });
    try {
      const a = `Bearer ${dead.token()}`;
      const orderId = await order(10, dead, a);
      const res = await push(orderId, 10, '0712345678', dead, a);
      // The same "unreachable" answer as every provider's (it was 502 PROVIDER_UNAVAILABLE for M-Pesa).
      expect(res.status).toBe(503);
      expect(res.body.code).toBe('PROVIDER_UNREACHABLE');
      expect(res.headers['retry-after']).toBe('10');
      expect(res.body.details).toMatchObject({ provider: 'mpesa', status: 'failed' });
      expect(await paymentForOrder(orderId, dead.db)).toEqual([
        expect.objectContaining({ status: 'failed', status_reason: 'PROVIDER_UNREACHABLE' }),
      ]);
      const again = await push(orderId, 10, '0712345678', dead, a);
      expect(again.status).toBe(503);
    } finally {
      await dead.close();
    }
  });

  it('Daraja answering 503 → 502 and the payment is unresolved (the push may have been seen)', async () => {
    const orderId = await order(10);
    await t.http().get('/health'); // token is cached after the first successful call elsewhere; force fresh state below
    t.sim.setFaults({
      pushErrors: { count: 1, status: 503, errorCode: '503.001.01', errorMessage: 'Service Unavailable' },
    });
    const res = await push(orderId, 10);
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ code: 'PROVIDER_UNAVAILABLE', details: { status: 'unresolved' } });
    expect(res.body.message).toMatch(/do not push again/i);
    const again = await push(orderId, 10);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('PAYMENT_IN_PROGRESS');
  });

  it('Daraja too slow → 504, payment unresolved, then settled by the callback; the push is never retried', async () => {
    const orderId = await order(15);
    const before = t.sim.stats().pushRequests;
    t.sim.setFaults({ latencyMs: { push: 2500 } });
    const res = await push(orderId, 15, '254700000007'); // the customer answers only when resolve() is called
    expect(res.status).toBe(504);
    expect(res.body.code).toBe('PROVIDER_TIMEOUT');
    const paymentId = res.body.details.paymentId as string;
    expect(res.body.details.status).toBe('unresolved');
    expect((await getPayment(paymentId)).body.status).toBe('unresolved');
    t.sim.setFaults({});
    // Safaricom did get it: the customer pays and the callback (on the payment's own URL) settles it.
    const simPush = await waitFor(async () => t.sim.pushes().find((p) => p.callbackUrl.includes(paymentId)));
    await t.sim.resolve(simPush.checkoutRequestId, 0);
    const done = await waitFor(async () => {
      const r = await getPayment(paymentId);
      return r.body.status === 'completed' ? r.body : undefined;
    }, 10000);
    expect(done.mpesaReceiptNumber).toMatch(/^[A-Z0-9]{10}$/);
    expect(done.checkoutRequestId).toMatch(/^ws_CO_/);
    expect(t.sim.stats().pushRequests - before).toBe(1);
  });

  it('an unresolved push nobody can query goes to review after the window (order free again), and a late callback still settles it', async () => {
    const quick = await startTestApp({ env: { MPESA_UNRESOLVED_REVIEW_AFTER_SECONDS: '1' } });
    try {
      const a = `Bearer ${quick.token()}`;
      const orderId = await order(30, quick, a);
      quick.sim.setFaults({ latencyMs: { push: 2500 } });
      const res = await push(orderId, 30, '254700000005', quick, a); // customer pays, Daraja never calls back
      expect(res.status).toBe(504);
      const paymentId = res.body.details.paymentId as string;
      quick.sim.setFaults({});
      expect((await push(orderId, 30, '0712345678', quick, a)).status).toBe(409);
      await new Promise((r) => setTimeout(r, 1100));
      const parked = await getPayment(paymentId, quick, a);
      expect(parked.body).toMatchObject({ status: 'review', statusReason: 'OUTCOME_UNKNOWN' });
      // The truth arrives late on the payment's own URL: it is recorded, not ignored.
      const simPush = await waitFor(
        async () => quick.sim.pushes().find((p) => p.callbackUrl.includes(paymentId)),
        5000,
      );
      const late = successCallback(
        simPush.merchantRequestId,
        simPush.checkoutRequestId,
        30,
        'LATE000001',
        254700000005,
      );
      await quick.http().post(new URL(simPush.callbackUrl).pathname).send(late).expect(200);
      await quick.callbacksApplied(); // stored before the answer, applied after it
      expect((await getPayment(paymentId, quick, a)).body).toMatchObject({
        status: 'completed',
        mpesaReceiptNumber: 'LATE000001',
        // Answered masked: the id ends with the payer's number.
        checkoutRequestId: `${simPush.checkoutRequestId.slice(0, -9)}*******${simPush.checkoutRequestId.slice(-2)}`,
      });
    } finally {
      await quick.close();
    }
  });

  it('spike arrest on push → 503 with Retry-After, payment failed (Daraja rejected it before processing)', async () => {
    const orderId = await order(20);
    t.sim.setFaults({
      pushErrors: {
        count: 1,
        status: 500,
        errorCode: '500.003.02',
        errorMessage: 'Error Occurred: Spike Arrest Violation',
      },
    });
    const res = await push(orderId, 20);
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBeDefined();
    expect(res.body.code).toBe('PROVIDER_RATE_LIMITED');
    expect(res.body.details.status).toBe('failed');
  });

  it('customer already has an open prompt → 409 CUSTOMER_BUSY', async () => {
    const orderId = await order(20);
    const res = await push(orderId, 20, '254700000008');
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('CUSTOMER_BUSY');
    expect(res.headers['retry-after']).toBe('60');
  });

  it('a token invalidated early is refreshed once and the push succeeds', async () => {
    const orderId = await order(5);
    expect((await push(orderId, 1)).status).toBe(201); // warm the token cache
    const orderId2 = await order(5);
    const oauthBefore = t.sim.stats().oauthRequests;
    t.sim.setFaults({ invalidateTokens: true });
    const res = await push(orderId2, 5);
    expect(res.status).toBe(201);
    expect(t.sim.stats().oauthRequests - oauthBefore).toBe(1);
  });

  it('status refresh survives Daraja being down: the stored status is returned', async () => {
    const orderId = await order(12);
    const res = await push(orderId, 12, '254700000007');
    t.sim.setFaults({ down: true });
    await new Promise((r) => setTimeout(r, 50));
    const st = await t
      .http()
      .get('/payments/stk-status')
      .query({ checkoutRequestId: res.body.checkoutRequestId })
      .set('Authorization', auth);
    expect(st.status).toBe(200);
    expect(st.body.status).toBe('pending');
  });
});
