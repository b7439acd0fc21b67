import { sql } from 'drizzle-orm';
import { fullCheckoutRequestId, startExtraTestApp, startTestApp, TestApp, waitFor } from './helpers/test-app';

const TOKEN = 'metrics-token-0123456789abcdef0123456789';

/** The value of one sample line (`name{labels} value`) in a Prometheus text exposition, 0 if absent. */
function sample(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const ok = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (ok) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

describe('GET /metrics (Prometheus)', () => {
  let t: TestApp;
  beforeAll(async () => {
    // The customer answers when a test says (t.sim.resolve).
    t = await startTestApp({
      env: { METRICS_TOKEN: TOKEN, RECONCILER_ENABLED: 'false' },
      sim: { callbackDelayMs: 3_600_000 },
    });
  });
  afterAll(() => t.close());
  const scrape = async () => {
    const r = await t.http().get('/metrics').set('Authorization', `Bearer ${TOKEN}`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    return r.text;
  };

  it('is not public: 401 without the token or with another; absent (404) when METRICS_TOKEN is unset', async () => {
    expect((await t.http().get('/metrics')).status).toBe(401);
    expect((await t.http().get('/metrics').set('Authorization', `Bearer ${TOKEN}x`)).status).toBe(401);
    expect((await t.http().get('/metrics').set('Authorization', `Bearer ${t.token()}`)).status).toBe(401);
    const body = (await t.http().get('/metrics')).body;
    expect(body).toMatchObject({ code: 'UNAUTHORIZED' });
    const off = await startExtraTestApp(t);
    try {
      const r = await off.http().get('/metrics').set('Authorization', `Bearer ${TOKEN}`);
      expect(r.status).toBe(404);
      expect(r.body.code).toBe('NOT_FOUND');
    } finally {
      await off.close();
    }
  });

  it('counts a paid payment end to end: request, push, provider calls, token, callback; gauges from the database', async () => {
    const before = await scrape();
    const auth = `Bearer ${t.token()}`;
    await t.http().post('/orders').set('Authorization', auth).send({ id: 'MET-1', total: 100 }).expect(201);
    const push = await t
      .http()
      .post('/payments/stk-push')
      .set('Authorization', auth)
      .send({ phoneNumber: '0712345678', amount: 100, orderId: 'MET-1' });
    expect(push.status).toBe(201);
    await t.sim.resolve(fullCheckoutRequestId(t.sim, push.body), 0, { callbackDelayMs: 0 });
    await t.sim.waitForCallbacks(fullCheckoutRequestId(t.sim, push.body), 1, 5000);
    await waitFor(async () => {
      const r = await t.http().get(`/payments/${push.body.paymentId}`).set('Authorization', auth);
      return r.body.status === 'completed';
    });
    const after = await waitFor(async () => {
      const text = await scrape();
      return sample(text, 'smartduka_notifications_total', { provider: 'mpesa', outcome: 'applied' }) >
        sample(before, 'smartduka_notifications_total', { provider: 'mpesa', outcome: 'applied' })
        ? text
        : undefined;
    });
    const delta = (name: string, labels: Record<string, string>) =>
      sample(after, name, labels) - sample(before, name, labels);
    expect(
      delta('http_request_duration_seconds_count', { method: 'POST', route: '/payments/stk-push', status: '201' }),
    ).toBe(1);
    expect(
      delta('http_request_duration_seconds_count', { route: '/payments/:id', status: '200' }),
    ).toBeGreaterThanOrEqual(1);
    expect(delta('smartduka_payment_initiations_total', { provider: 'mpesa', outcome: 'pending' })).toBe(1);
    expect(
      delta('smartduka_provider_request_duration_seconds_count', {
        provider: 'mpesa',
        operation: '/mpesa/stkpush/v1/processrequest',
        result: '2xx',
      }),
    ).toBe(1);
    expect(
      sample(after, 'smartduka_provider_token_refreshes_total', { provider: 'mpesa', result: 'ok' }),
    ).toBeGreaterThanOrEqual(1);
    expect(delta('smartduka_notifications_total', { provider: 'mpesa', kind: 'payment', outcome: 'applied' })).toBe(1);
    // Process metrics, and nothing personal or unbounded.
    expect(after).toMatch(/^process_cpu_user_seconds_total /m);
    expect(after).not.toMatch(/712345678|2547\d{8}/);
    expect(after).not.toContain(push.body.paymentId);
    expect(after).not.toContain('MET-1');
  });

  it('gauges: open payments by provider and status, review by reason, the reconciler backlog', async () => {
    const auth = `Bearer ${t.token('shop-m')}`;
    await t.http().post('/orders').set('Authorization', auth).send({ id: 'MET-2', total: 50 }).expect(201);
    const open = await scrape();
    const push = await t
      .http()
      .post('/payments/stk-push')
      .set('Authorization', auth)
      .send({ phoneNumber: '0712345679', amount: 50, orderId: 'MET-2' });
    expect(push.status).toBe(201);
    // Its prompt stays open (the customer has not answered).
    const pending = await scrape();
    expect(sample(pending, 'smartduka_payments_open', { provider: 'mpesa', status: 'pending' })).toBe(
      sample(open, 'smartduka_payments_open', { provider: 'mpesa', status: 'pending' }) + 1,
    );
    await t.db.execute(
      sql`update payments set status = 'review', status_reason = 'AMOUNT_MISMATCH' where id = ${push.body.paymentId}`,
    );
    const text = await scrape();
    expect(sample(text, 'smartduka_payments_review', { reason: 'AMOUNT_MISMATCH' })).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/^smartduka_reconciler_backlog \d+$/m);
    expect(text).toMatch(/^# TYPE smartduka_payments_open gauge$/m);
  });
});
