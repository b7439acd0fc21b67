import { randomUUID } from 'node:crypto';
import { orders, payments, refunds } from '../src/database/schema';
import { startTestApp, TestApp } from './helpers/test-app';

/**
 * Payment history, receipts and the end-of-day summary through HTTP, over payments seeded
 * straight into the database across Nairobi days and two shops.
 */
describe('payment history, receipts and the daily summary', () => {
  let t: TestApp;
  let a: string;
  let b: string;
  const ids: Record<string, string> = {};

  // Nairobi = UTC+3: 2026-12-01 Nairobi is 2026-11-30T21:00Z .. 2026-12-01T21:00Z.
  const at = (iso: string) => new Date(iso);

  async function seed(
    name: string,
    shopId: string,
    v: {
      orderId: string;
      status: string;
      provider?: string;
      amountMinor: bigint;
      createdAt: string;
      completedAt?: string;
      receipt?: string;
      phoneMasked?: string;
    },
  ) {
    const id = randomUUID();
    ids[name] = id;
    await t.db.insert(payments).values({
      id,
      shopId,
      orderId: v.orderId,
      amountMinor: v.amountMinor,
      currency: 'KES',
      provider: v.provider ?? 'mpesa',
      status: v.status,
      createdBy: 'user:test',
      mpesaReceiptNumber: v.receipt,
      phoneMasked: v.phoneMasked,
      createdAt: at(v.createdAt),
      updatedAt: at(v.createdAt),
      completedAt: v.completedAt ? at(v.completedAt) : null,
    });
    return id;
  }

  beforeAll(async () => {
    t = await startTestApp({ env: { RECONCILER_ENABLED: 'false' } });
    a = `Bearer ${t.token('shop-a')}`;
    b = `Bearer ${t.token('shop-b')}`;
    await t.db.insert(orders).values([
      { shopId: 'shop-a', id: 'ORD-1', totalMinor: 10_000_000n, currency: 'KES' },
      { shopId: 'shop-a', id: 'ORD-2', totalMinor: 10_000_000n, currency: 'KES' },
      { shopId: 'shop-b', id: 'ORD-1', totalMinor: 10_000_000n, currency: 'KES' },
    ]);
    // Shop A, Nairobi 2026-12-01 (one completed at 23:30Z on 11-30 = 02:30 Nairobi on 12-01).
    await seed('a1', 'shop-a', {
      orderId: 'ORD-1',
      status: 'completed',
      amountMinor: 10_000n,
      createdAt: '2026-11-30T23:29:00.000Z',
      completedAt: '2026-11-30T23:30:00.000Z', // 60 s
      receipt: 'RCPA1',
      phoneMasked: '2547******78',
    });
    await seed('a2', 'shop-a', {
      orderId: 'ORD-1',
      status: 'completed',
      amountMinor: 25_050n,
      createdAt: '2026-12-01T10:00:00.000Z',
      completedAt: '2026-12-01T10:02:00.000Z', // 120 s
      receipt: 'RCPA2',
    });
    await seed('a3', 'shop-a', {
      orderId: 'ORD-1',
      status: 'completed',
      amountMinor: 5_000n,
      createdAt: '2026-12-01T11:00:00.000Z',
      completedAt: '2026-12-01T11:05:00.000Z', // 300 s
      receipt: 'RCPA3',
    });
    await seed('a4', 'shop-a', {
      orderId: 'ORD-2',
      status: 'failed',
      amountMinor: 100n,
      createdAt: '2026-12-01T12:00:00.000Z',
    });
    await seed('a5', 'shop-a', {
      orderId: 'ORD-2',
      status: 'cancelled',
      amountMinor: 100n,
      createdAt: '2026-12-01T12:01:00.000Z',
    });
    // 20:59Z is still 12-01 in Nairobi (23:59); 21:00Z is 12-02.
    await seed('a6', 'shop-a', {
      orderId: 'ORD-2',
      status: 'expired',
      amountMinor: 100n,
      createdAt: '2026-12-01T20:59:00.000Z',
    });
    await seed('a7', 'shop-a', {
      orderId: 'ORD-2',
      status: 'completed',
      provider: 'pesapal',
      amountMinor: 70_000n,
      createdAt: '2026-12-01T21:00:00.000Z',
      completedAt: '2026-12-01T21:00:30.000Z', // 12-02 Nairobi, 30 s
    });
    await seed('a8', 'shop-a', {
      orderId: 'ORD-2',
      status: 'pending',
      amountMinor: 100n,
      createdAt: '2026-12-02T08:00:00.000Z',
    });
    // Same created_at for two rows: the keyset's id tiebreak.
    for (let i = 0; i < 14; i++)
      await seed(`bulk${i}`, 'shop-a', {
        orderId: 'ORD-2',
        status: 'failed',
        amountMinor: 100n,
        createdAt: `2026-11-20T10:00:0${i % 3}.000Z`,
      });
    // Shop B: must never show up for shop A.
    await seed('b1', 'shop-b', {
      orderId: 'ORD-1',
      status: 'completed',
      amountMinor: 99_900n,
      createdAt: '2026-12-01T10:00:00.000Z',
      completedAt: '2026-12-01T10:00:10.000Z',
      receipt: 'RCPB1',
    });
    await t.db.insert(refunds).values([
      {
        id: randomUUID(),
        paymentId: ids.a2!,
        shopId: 'shop-a',
        orderId: 'ORD-1',
        provider: 'mpesa',
        amountMinor: 5_050n,
        currency: 'KES',
        status: 'succeeded',
        reason: 'returned goods',
        source: 'request',
        requestedBy: 'user:test',
        createdAt: at('2026-12-01T13:00:00.000Z'),
        updatedAt: at('2026-12-01T13:01:00.000Z'),
        completedAt: at('2026-12-01T13:01:00.000Z'),
      },
      {
        id: randomUUID(),
        paymentId: ids.a3!,
        shopId: 'shop-a',
        orderId: 'ORD-1',
        provider: 'mpesa',
        amountMinor: 1_000n,
        currency: 'KES',
        status: 'failed',
        reason: 'not counted',
        source: 'request',
        requestedBy: 'user:test',
        createdAt: at('2026-12-01T13:00:00.000Z'),
        updatedAt: at('2026-12-01T13:01:00.000Z'),
      },
    ]);
  });
  afterAll(() => t?.close());

  const shopAIds = () =>
    Object.entries(ids)
      .filter(([k]) => !k.startsWith('b1'))
      .map(([, v]) => v);

  it('pages through every payment of the shop exactly once, newest first, with no other shop', async () => {
    const seen: string[] = [];
    const created: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: { body: { data: { paymentId: string; createdAt: string }[]; nextCursor: string | null } } = await t
        .http()
        .get('/payments')
        .query({ limit: 4, ...(cursor ? { cursor } : {}) })
        .set('Authorization', a)
        .expect(200);
      for (const p of res.body.data) {
        seen.push(p.paymentId);
        created.push(p.createdAt);
      }
      cursor = res.body.nextCursor;
      pages++;
    } while (cursor && pages < 50);
    expect(seen.sort()).toEqual(shopAIds().sort());
    expect(new Set(seen).size).toBe(seen.length);
    expect([...created]).toEqual([...created].sort().reverse());
  });

  it('filters by order, status, provider and time range', async () => {
    const q = async (query: Record<string, string>) =>
      (await t.http().get('/payments').query(query).set('Authorization', a).expect(200)).body.data.map(
        (p: { paymentId: string }) => p.paymentId,
      );
    expect((await q({ orderId: 'ORD-1' })).sort()).toEqual([ids.a1, ids.a2, ids.a3].sort());
    expect(await q({ provider: 'pesapal' })).toEqual([ids.a7]);
    expect(await q({ status: 'completed', provider: 'mpesa' })).toEqual([ids.a3, ids.a2, ids.a1]);
    expect(await q({ from: '2026-12-01T12:00:00Z', to: '2026-12-01T21:00:00Z' })).toEqual([ids.a6, ids.a5, ids.a4]);
    expect(await q({ from: '2026-12-02T11:00:00+03:00' })).toEqual([ids.a8]);
  });

  it('refuses bad history input with 400s that say what is wrong', async () => {
    const bad = async (query: Record<string, string>, text: RegExp) => {
      const res = await t.http().get('/payments').query(query).set('Authorization', a).expect(400);
      expect(JSON.stringify(res.body)).toMatch(text);
    };
    await bad({ cursor: Buffer.from('nonsense').toString('base64url') }, /cursor/);
    await bad({ cursor: 'not a cursor!' }, /cursor/);
    await bad({ limit: '0' }, /limit/);
    await bad({ limit: '101' }, /limit/);
    await bad({ status: 'paid' }, /status/);
    await bad({ provider: 'visa' }, /provider/);
    await bad({ from: '2026-12-01' }, /from/);
    await bad({ to: '2026-02-30T00:00:00Z' }, /to/);
    await bad({ from: '2026-12-02T00:00:00Z', to: '2026-12-01T00:00:00Z' }, /INVALID_RANGE/);
  });

  it('GET /orders/:id lists its payments, newest first, own shop only', async () => {
    const res = await t.http().get('/orders/ORD-1').set('Authorization', a).expect(200);
    expect(res.body.payments.map((p: { paymentId: string }) => p.paymentId)).toEqual([ids.a3, ids.a2, ids.a1]);
    const other = await t.http().get('/orders/ORD-1').set('Authorization', b).expect(200);
    expect(other.body.payments.map((p: { paymentId: string }) => p.paymentId)).toEqual([ids.b1]);
  });

  it('a receipt for a completed payment; 409 otherwise; 404 for another shop', async () => {
    const r = await t.http().get(`/payments/${ids.a1}/receipt`).set('Authorization', a).expect(200);
    expect(r.body).toEqual({
      paymentId: ids.a1,
      shop: { id: 'shop-a', name: 'shop-a' },
      orderId: 'ORD-1',
      provider: 'mpesa',
      status: 'completed',
      amount: 100,
      currency: 'KES',
      confirmation: 'RCPA1',
      phone: '2547******78',
      paidAt: '2026-11-30T23:30:00.000Z',
      paidAtNairobi: '2026-12-01 02:30',
    });
    const nc = await t.http().get(`/payments/${ids.a4}/receipt`).set('Authorization', a).expect(409);
    expect(nc.body.code ?? nc.body.error?.code ?? JSON.stringify(nc.body)).toMatch(/PAYMENT_NOT_COMPLETED/);
    const np = await t.http().get(`/payments/${ids.a4}/receipt/print`).set('Authorization', a).expect(409);
    expect(np.headers['content-type']).toMatch(/^application\/json/);
    await t.http().get(`/payments/${ids.b1}/receipt`).set('Authorization', a).expect(404);
    await t.http().get(`/payments/${ids.b1}/receipt/print`).set('Authorization', a).expect(404);
    await t.http().get(`/payments/${ids.a1}/receipt/print?width=70`).set('Authorization', a).expect(400);
  });

  it('prints an HTML receipt for 58 and 80 mm paper, escaping what it shows', async () => {
    const id = await seed('aX', 'shop-a', {
      orderId: 'ORD-2',
      status: 'completed',
      amountMinor: 123_456_7n,
      createdAt: '2026-11-10T10:00:00.000Z',
      completedAt: '2026-11-10T10:00:05.000Z',
    });
    // A hostile value in a stored field the receipt shows (provider receipts come from outside).
    await t.db
      .update(payments)
      .set({ providerReceipt: '<script>alert("x")</script>&' })
      .where((await import('drizzle-orm')).eq(payments.id, id));
    const r80 = await t.http().get(`/payments/${id}/receipt/print`).set('Authorization', a).expect(200);
    expect(r80.headers['content-type']).toMatch(/text\/html/);
    expect(r80.text).toContain('@page { size: 80mm auto');
    expect(r80.text).toContain('monospace');
    expect(r80.text).toContain('KES 12,345.67');
    expect(r80.text).toContain('2026-11-10 13:00');
    expect(r80.text).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;');
    expect(r80.text).not.toContain('<script>');
    const r58 = await t.http().get(`/payments/${id}/receipt/print?width=58`).set('Authorization', a).expect(200);
    expect(r58.text).toContain('@page { size: 58mm auto');
  });

  it('the daily summary matches hand-computed figures, per Nairobi day and provider', async () => {
    const res = await t
      .http()
      .get('/reports/daily')
      .query({ from: '2026-12-01', to: '2026-12-02' })
      .set('Authorization', a)
      .expect(200);
    expect(res.body).toEqual({
      timezone: 'Africa/Nairobi',
      from: '2026-12-01',
      to: '2026-12-02',
      days: [
        {
          date: '2026-12-01',
          providers: [
            {
              provider: 'mpesa',
              currency: 'KES',
              completed: { count: 3, amount: 400.5 }, // 100 + 250.50 + 50
              failed: 1,
              cancelled: 1,
              expired: 1,
              refunds: { count: 1, amount: 50.5 },
              medianSecondsToPaid: 120, // of 60, 120, 300
            },
          ],
        },
        {
          date: '2026-12-02',
          providers: [
            {
              provider: 'pesapal',
              currency: 'KES',
              completed: { count: 1, amount: 700 },
              failed: 0,
              cancelled: 0,
              expired: 0,
              refunds: { count: 0, amount: 0 },
              medianSecondsToPaid: 30,
            },
          ],
        },
      ],
    });
    const bShop = await t
      .http()
      .get('/reports/daily')
      .query({ from: '2026-12-01', to: '2026-12-01' })
      .set('Authorization', b)
      .expect(200);
    expect(bShop.body.days[0].providers).toEqual([
      expect.objectContaining({ provider: 'mpesa', completed: { count: 1, amount: 999 }, medianSecondsToPaid: 10 }),
    ]);
  });

  it('refuses a bad daily range', async () => {
    const bad = (query: Record<string, string>) =>
      t.http().get('/reports/daily').query(query).set('Authorization', a).expect(400);
    await bad({ from: '2026-12-02', to: '2026-12-01' });
    await bad({ from: '2026-01-01', to: '2026-06-01' });
    await bad({ from: '2026-02-30', to: '2026-03-01' });
    await bad({ from: '2026-12-01' });
    await t.http().get('/reports/daily').query({ from: '2026-12-01', to: '2026-12-01' }).expect(401);
  });
});
