import type { FlutterwaveSimulator, PesapalSimulator } from '@smartduka/card-simulators';
import { sql } from 'drizzle-orm';
import { AllProviders, startWithAllProviders } from './helpers/all-providers';
import type { TestApp } from './helpers/test-app';

/** Attacks across the three providers after the issue-9 restructure: idempotency across providers and shops, another shop's ids, leaks, malformed input. */

const FLW_SECRET_KEY = 'FLWSECK_TEST-e2er1findings0000000000-X';
const FLW_SECRET_HASH = 'e2e-r1-findings-secret-hash-01234567';

type Rows<T> = { rows: T[] };
const rowsOf = <T>(r: unknown): T[] => (r as Rows<T>).rows;

describe('attacks across providers', () => {
  let t: TestApp;
  let flw: FlutterwaveSimulator;
  let pesapal: PesapalSimulator;
  let n = 0;
  const cashier1 = () => `Bearer ${t.token('shop-1')}`;
  const cashier2 = () => `Bearer ${t.token('shop-2', 'cashier', 'cashier-2')}`;
  const manager2 = () => `Bearer ${t.token('shop-2', 'manager', 'manager-2')}`;

  let all: AllProviders | undefined;
  beforeAll(async () => {
    all = await startWithAllProviders({
      flwSecretKey: FLW_SECRET_KEY,
      flwSecretHash: FLW_SECRET_HASH,
      env: { FLUTTERWAVE_HTTP_TIMEOUT_MS: '1500', PESAPAL_HTTP_TIMEOUT_MS: '1500' },
    });
    ({ t, flw, pesapal } = all);
  });
  afterAll(async () => {
    await all?.close();
  });

  async function order(total: number, auth = cashier1(), id = `R1-${++n}`): Promise<string> {
    const res = await t.http().post('/orders').set('Authorization', auth).send({ id, total });
    expect(res.status).toBe(201);
    return id;
  }

  const routes = {
    mpesa: {
      path: '/payments/stk-push',
      body: (orderId: string, amount: number) => ({ orderId, amount, phoneNumber: '0712345678' }),
    },
    flutterwave: {
      path: '/payments/flutterwave/init',
      body: (orderId: string, amount: number) => ({
        orderId,
        amount,
        customer: { email: 'wanjiku@example.com', phoneNumber: '0712345678', name: 'Wanjiku' },
      }),
    },
    pesapal: {
      path: '/payments/pesapal/init',
      body: (orderId: string, amount: number) => ({ orderId, amount, customer: { phoneNumber: '0712345678' } }),
    },
  } as const;
  type Provider = keyof typeof routes;
  const providerCalls: Record<Provider, () => number> = {
    mpesa: () => t.sim.stats().pushRequests,
    flutterwave: () => flw.stats().paymentRequests,
    pesapal: () => pesapal.stats().submitRequests,
  };

  function init(provider: Provider, orderId: string, amount: number, key: string, auth = cashier1(), body?: object) {
    const r = routes[provider];
    return t
      .http()
      .post(r.path)
      .set('Authorization', auth)
      .set('Idempotency-Key', key)
      .send(body ?? r.body(orderId, amount));
  }

  it.each<Provider>(['mpesa', 'flutterwave', 'pesapal'])(
    '%s: 8 concurrent requests with one Idempotency-Key make exactly one provider call and one payment',
    async (provider) => {
      const orderId = await order(100);
      const key = `r1-race-${provider}`;
      const before = providerCalls[provider]();
      const answers = await Promise.all(Array.from({ length: 8 }, () => init(provider, orderId, 100, key)));
      const statuses = answers.map((a) => a.status);
      expect(providerCalls[provider]() - before).toBe(1);
      const payments = rowsOf<{ id: string }>(
        await t.db.execute(sql`select id from payments where order_id = ${orderId}`),
      );
      expect(payments).toHaveLength(1);
      for (const a of answers) {
        if (a.status === 201) expect(a.body.paymentId).toBe(payments[0].id);
        else expect(a.body.code).toBe('IDEMPOTENCY_REQUEST_IN_PROGRESS');
      }
      expect(statuses.filter((s) => s === 201).length).toBeGreaterThanOrEqual(1);
    },
  );

  it('one Idempotency-Key across providers: the second provider gets a 409 IDEMPOTENCY_KEY_REUSED and is never called', async () => {
    const orderId = await order(100);
    const key = 'r1-cross-provider';
    const first = await init('mpesa', orderId, 50, key);
    expect(first.status).toBe(201);
    for (const p of ['flutterwave', 'pesapal'] as const) {
      const before = providerCalls[p]();
      const res = await init(p, orderId, 50, key);
      expect({ status: res.status, code: res.body.code }).toEqual({ status: 409, code: 'IDEMPOTENCY_KEY_REUSED' });
      expect(providerCalls[p]() - before).toBe(0);
    }
    // same key, same provider, other phone
    const other = await init('mpesa', orderId, 50, key, cashier1(), { orderId, amount: 50, phoneNumber: '0722000111' });
    expect({ status: other.status, code: other.body.code }).toEqual({ status: 409, code: 'IDEMPOTENCY_KEY_REUSED' });
  });

  it.each<Provider>(['mpesa', 'flutterwave', 'pesapal'])(
    "%s: another shop using shop-1's Idempotency-Key (same order id and body) gets its own payment, never shop-1's answer",
    async (provider) => {
      const orderId = `R1-shared-${provider}`;
      await order(100, cashier1(), orderId);
      await order(100, cashier2(), orderId);
      const key = `r1-shared-key-${provider}`;
      const a = await init(provider, orderId, 40, key, cashier1());
      expect(a.status).toBe(201);
      const b = await init(provider, orderId, 40, key, cashier2());
      expect(b.status).toBe(201);
      expect(b.headers['idempotent-replayed']).toBeUndefined();
      expect(b.body.paymentId).not.toBe(a.body.paymentId);
    },
  );

  it.each<Provider>(['mpesa', 'flutterwave', 'pesapal'])(
    "%s: shop-2's manager cannot read, reconcile, release or list shop-1's payment",
    async (provider) => {
      const orderId = await order(100);
      const res = await init(provider, orderId, 30, `r1-xshop-${provider}`);
      expect(res.status).toBe(201);
      const id = res.body.paymentId as string;
      await t.db.execute(
        sql`update payments set status = 'review', status_reason = 'OUTCOME_UNKNOWN' where id = ${id}`,
      );
      const get = await t.http().get(`/payments/${id}`).set('Authorization', manager2());
      const rec = await t.http().post(`/payments/${id}/reconcile`).set('Authorization', manager2());
      const rel = await t
        .http()
        .post(`/payments/${id}/release`)
        .set('Authorization', manager2())
        .send({ reason: 'customer shows no SMS' });
      const list = await t.http().get('/payments/review').set('Authorization', manager2());
      expect([get.status, rec.status, rel.status]).toEqual([404, 404, 404]);
      expect(list.status).toBe(200);
      expect((list.body.items as { paymentId?: string; id?: string }[]).some((p) => (p.paymentId ?? p.id) === id)).toBe(
        false,
      );
      const row = rowsOf<{ released_at: unknown }>(
        await t.db.execute(sql`select released_at from payments where id = ${id}`),
      )[0];
      expect(row.released_at).toBeNull();
      const events = rowsOf<{ c: number }>(
        await t.db.execute(
          sql`select count(*)::int as c from payment_events where payment_id = ${id} and type in ('reconcile_requested','order_released')`,
        ),
      )[0];
      expect(events.c).toBe(0);
    },
  );

  it("M-Pesa push refused with a message that names the payer's number: the 502 body, the stored key answer and GET /payments/:id never show the full number", async () => {
    const orderId = await order(100);
    t.sim.setFaults({
      pushErrors: {
        count: 1,
        status: 400,
        errorCode: '400.002.02',
        errorMessage: 'Bad Request - Invalid PhoneNumber 254712345678',
      },
    });
    try {
      const res = await init('mpesa', orderId, 20, 'r1-leak-push');
      expect(res.status).toBeGreaterThanOrEqual(400);
      const got = await t.http().get(`/payments/${res.body.details?.paymentId}`).set('Authorization', cashier1());
      const key = rowsOf<{ body: unknown }>(
        await t.db.execute(sql`select response_body as body from idempotency_keys where key = 'r1-leak-push'`),
      )[0];
      const seen = {
        response: JSON.stringify(res.body),
        getPayment: JSON.stringify(got.body),
        storedKeyAnswer: JSON.stringify(key.body),
      };
      expect(
        Object.entries(seen)
          .filter(([, text]) => /712345678/.test(text))
          .map(([where]) => where),
      ).toEqual([]);
    } finally {
      t.sim.setFaults({});
    }
  });

  it.each([
    ['GET /payments/:id', (h: TestApp['http']) => h().get('/payments/not-a-uuid')],
    ['reconcile', (h: TestApp['http']) => h().post('/payments/not-a-uuid/reconcile')],
    ['release no body', (h: TestApp['http']) => h().post('/payments/00000000-0000-4000-8000-000000000000/release')],
    [
      'release reason number',
      (h: TestApp['http']) =>
        h().post('/payments/00000000-0000-4000-8000-000000000000/release').send({ reason: 12345 }),
    ],
    [
      'review cursor',
      (h: TestApp['http']) =>
        h().get('/payments/review?cursor=' + Buffer.from('2026-01-01T00:00:00.000Z|zz').toString('base64url')),
    ],
    ['review limit', (h: TestApp['http']) => h().get('/payments/review?limit=1e400')],
    ['stk-status', (h: TestApp['http']) => h().get('/payments/stk-status?checkoutRequestId[]=a')],
    [
      'pesapal status both',
      (h: TestApp['http']) =>
        h().get('/payments/pesapal/status?paymentId=00000000-0000-4000-8000-000000000000&orderTrackingId=x'),
    ],
    [
      'flutterwave verify array',
      (h: TestApp['http']) =>
        h()
          .post('/payments/flutterwave/verify')
          .send({ transactionId: [1] }),
    ],
    [
      'stk-push amount string',
      (h: TestApp['http']) =>
        h().post('/payments/stk-push').send({ orderId: 'x', amount: '1e3', phoneNumber: '0712345678' }),
    ],
    [
      'pesapal init customer null',
      (h: TestApp['http']) => h().post('/payments/pesapal/init').send({ orderId: 'x', amount: 10, customer: null }),
    ],
    [
      'flutterwave init customer string',
      (h: TestApp['http']) => h().post('/payments/flutterwave/init').send({ orderId: 'x', amount: 10, customer: 'x' }),
    ],
  ])('malformed: %s is a 4xx, never a 500', async (_name, req) => {
    const res = await req(t.http).set('Authorization', `Bearer ${t.token('shop-1', 'manager', 'm1')}`);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
  });
});
