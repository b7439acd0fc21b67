import { sql } from 'drizzle-orm';
import type { Response } from 'supertest';
import type { Db } from '../src/database/database';
import { successCallback } from './helpers/callbacks';
import {
  ExtraTestApp,
  fullCheckoutRequestId,
  startExtraTestApp,
  startTestApp,
  tableCounts,
  TestApp,
} from './helpers/test-app';

/**
 * Rate limits on POST /payments/stk-push, through HTTP on the real app, database and simulator.
 * Windows are long (an hour for phones) or the request counts small, so nothing here depends on
 * how fast the machine is; the shop window is a minute and each shop test takes a few seconds.
 */

const onPostgres = !!process.env.DATABASE_URL;
const describeOnPostgres = onPostgres ? describe : describe.skip;

type Http = () => ReturnType<TestApp['http']>;

async function createOrder(http: Http, auth: string, id: string, total = 500): Promise<void> {
  const res = await http().post('/orders').set('Authorization', auth).send({ id, total });
  expect(res.status).toBe(201);
}

function push(http: Http, auth: string, body: Record<string, unknown>, idempotencyKey?: string) {
  const req = http().post('/payments/stk-push').set('Authorization', auth);
  if (idempotencyKey) req.set('Idempotency-Key', idempotencyKey);
  return req.send(body);
}

/** A 429 in the app's error shape, with a Retry-After in whole seconds that the message repeats. */
function expect429(res: Response, code: 'PHONE_BUSY' | 'RATE_LIMITED_SHOP', maxSeconds: number): number {
  expect({ status: res.status, code: res.body.code }).toEqual({ status: 429, code });
  const retryAfter = res.headers['retry-after'];
  expect(retryAfter).toMatch(/^\d+$/);
  const seconds = Number(retryAfter);
  expect(seconds).toBeGreaterThanOrEqual(1);
  expect(seconds).toBeLessThanOrEqual(maxSeconds);
  expect(res.body).toMatchObject({ statusCode: 429, code, details: { retryAfterSeconds: seconds } });
  expect(res.body.message).toContain(`try again in ${seconds} s`);
  expect(typeof res.body.requestId).toBe('string');
  return seconds;
}

/** Waits until the simulator has delivered the push's callback and our app answered it (the DB is then settled). */
async function settled(t: TestApp, push: Response): Promise<void> {
  expect(push.status).toBe(201);
  await t.sim.waitForCallbacks(fullCheckoutRequestId(t.sim, push.body), 1, 10_000);
  await t.callbacksApplied(); // acknowledged when stored, applied right after
}

async function counterKeys(db: Db): Promise<string[]> {
  const res = await db.execute(sql`select key from rate_limit_counters order by key`);
  const rows = (res as unknown as { rows?: Array<{ key: string }> }).rows ?? (res as unknown as Array<{ key: string }>);
  return rows.map((r) => r.key);
}

describe('per-phone limit (1 prompt per phone per hour)', () => {
  let t: TestApp;
  let auth: string;
  const env = {
    RATE_LIMIT_PHONE_PER_WINDOW: '1',
    RATE_LIMIT_PHONE_WINDOW_SECONDS: '3600',
    RATE_LIMIT_SHOP_PER_MINUTE: '1000',
  };

  beforeAll(async () => {
    t = await startTestApp({ env });
    auth = `Bearer ${t.token()}`;
  });
  afterAll(() => t?.close());

  it('a second prompt to the same phone (typed differently) is a 429 PHONE_BUSY; nothing is written or sent', async () => {
    await createOrder(t.http, auth, 'PH-1');
    await createOrder(t.http, auth, 'PH-2');
    await settled(t, await push(t.http, auth, { phoneNumber: '0712 100 001', amount: 10, orderId: 'PH-1' }));

    const before = await tableCounts(t.db);
    const pushesBefore = t.sim.pushes().length;
    const res = await push(t.http, auth, { phoneNumber: '+254712100001', amount: 10, orderId: 'PH-2' });
    expect429(res, 'PHONE_BUSY', 3600);
    expect(res.body.message).toMatch(/^This phone already has an M-Pesa prompt open/);
    expect(JSON.stringify(res.body)).not.toContain('712100001');
    expect(await tableCounts(t.db)).toEqual(before);
    expect(t.sim.pushes().length).toBe(pushesBefore);

    // Another phone goes through. The phone limit is the customer's, whoever pushes: another shop
    // pushing to the same phone is refused too (Daraja would refuse it as well).
    expect((await push(t.http, auth, { phoneNumber: '0712100002', amount: 10, orderId: 'PH-2' })).status).toBe(201);
    const otherShop = `Bearer ${t.token('shop-2')}`;
    await createOrder(t.http, otherShop, 'PH-X');
    expect429(
      await push(t.http, otherShop, { phoneNumber: '0712100001', amount: 10, orderId: 'PH-X' }),
      'PHONE_BUSY',
      3600,
    );
  });

  it('requests refused before Daraja (validation, unknown order, too much, order busy) do not use the phone', async () => {
    const phone = '0712100003';
    await createOrder(t.http, auth, 'PH-3', 100);
    await createOrder(t.http, auth, 'PH-4', 100);
    await createOrder(t.http, auth, 'PH-OPEN', 100);
    // 0700000007 never answers: PH-OPEN keeps an open payment
    expect((await push(t.http, auth, { phoneNumber: '0700000007', amount: 100, orderId: 'PH-OPEN' })).status).toBe(201);
    const refused = [
      [{ phoneNumber: phone, amount: 0, orderId: 'PH-3' }, 400, 'VALIDATION_FAILED'],
      [{ phoneNumber: phone, amount: 10, orderId: 'PH-3', extra: true }, 400, 'VALIDATION_FAILED'],
      [{ phoneNumber: phone, amount: 10, orderId: 'NO-SUCH-ORDER' }, 404, 'NOT_FOUND'],
      [{ phoneNumber: phone, amount: 101, orderId: 'PH-3' }, 400, 'AMOUNT_EXCEEDS_OUTSTANDING'],
      [{ phoneNumber: phone, amount: 10, orderId: 'PH-OPEN' }, 409, 'PAYMENT_IN_PROGRESS'],
    ] as const;
    for (const [body, status, code] of refused) {
      const res = await push(t.http, auth, body);
      expect({ status: res.status, code: res.body.code }).toEqual({ status, code });
    }
    const malformedKey = await push(
      t.http,
      auth,
      { phoneNumber: phone, amount: 10, orderId: 'PH-3' },
      'bad key with spaces',
    );
    expect({ status: malformedKey.status, code: malformedKey.body.code }).toEqual({
      status: 400,
      code: 'VALIDATION_FAILED',
    });

    expect((await push(t.http, auth, { phoneNumber: phone, amount: 10, orderId: 'PH-3' })).status).toBe(201);
    expect429(await push(t.http, auth, { phoneNumber: phone, amount: 10, orderId: 'PH-4' }), 'PHONE_BUSY', 3600);
    // An invalid number is the normal 400, never a 429.
    const invalid = await push(t.http, auth, { phoneNumber: '0812100003', amount: 10, orderId: 'PH-4' });
    expect({ status: invalid.status, code: invalid.body.code }).toEqual({ status: 400, code: 'INVALID_PHONE_NUMBER' });
  });

  it('an idempotent replay is answered from the store, not throttled; a reused key with another body is its 409', async () => {
    const phone = '0712100004';
    await createOrder(t.http, auth, 'PH-5');
    await createOrder(t.http, auth, 'PH-6');
    const body = { phoneNumber: phone, amount: 20, orderId: 'PH-5' };
    const first = await push(t.http, auth, body, 'ph-5-attempt-1');
    expect(first.status).toBe(201);
    for (let i = 0; i < 3; i++) {
      const replay = await push(t.http, auth, body, 'ph-5-attempt-1');
      expect(replay.status).toBe(201);
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(replay.body.paymentId).toBe(first.body.paymentId);
    }
    const reused = await push(t.http, auth, { ...body, amount: 21 }, 'ph-5-attempt-1');
    expect({ status: reused.status, code: reused.body.code }).toEqual({ status: 409, code: 'IDEMPOTENCY_KEY_REUSED' });
    // The phone did get one prompt: a new attempt (new key) is throttled.
    expect429(
      await push(t.http, auth, { phoneNumber: phone, amount: 20, orderId: 'PH-6' }, 'ph-6-attempt-1'),
      'PHONE_BUSY',
      3600,
    );
    // ... and that refusal stored nothing: the key is free for the real attempt later.
    const keys = await t.db.execute(sql`select count(*)::int as n from idempotency_keys where key = 'ph-6-attempt-1'`);
    expect(
      ((keys as unknown as { rows?: Array<{ n: number }> }).rows ?? (keys as unknown as Array<{ n: number }>))[0].n,
    ).toBe(0);
  });

  it("Daraja's own 'subscriber busy' answer keeps the point: the next push is our 429, not another Daraja call", async () => {
    await createOrder(t.http, auth, 'PH-7');
    await createOrder(t.http, auth, 'PH-8');
    const busy = await push(t.http, auth, { phoneNumber: '0700000008', amount: 10, orderId: 'PH-7' });
    expect({ status: busy.status, code: busy.body.code }).toEqual({ status: 409, code: 'CUSTOMER_BUSY' });
    const pushesBefore = t.sim.pushes().length;
    expect429(await push(t.http, auth, { phoneNumber: '0700000008', amount: 10, orderId: 'PH-8' }), 'PHONE_BUSY', 3600);
    expect(t.sim.pushes().length).toBe(pushesBefore);
  });

  it('the counters store no phone number (keys are HMACs of the normalised MSISDN)', async () => {
    if (!onPostgres) return; // PGlite: counters are in memory
    const keys = await counterKeys(t.db);
    const phoneKeys = keys.filter((k) => k.startsWith('stk_phone:'));
    expect(phoneKeys.length).toBeGreaterThanOrEqual(4);
    for (const k of phoneKeys) expect(k).toMatch(/^stk_phone:[0-9a-f]{64}$/);
    expect(keys).toContain('stk_shop:shop-1');
  });
});

describe('per-shop limit (3 pushes a minute)', () => {
  let t: TestApp;
  let auth: string;

  beforeAll(async () => {
    t = await startTestApp({ env: { RATE_LIMIT_SHOP_PER_MINUTE: '3', RATE_LIMIT_PHONE_PER_WINDOW: '0' } });
    auth = `Bearer ${t.token('shop-a')}`;
  });
  afterAll(() => t?.close());

  it('the 4th push of a shop in a minute is a 429 RATE_LIMITED_SHOP; other shops, replays, bad input, callbacks and reads are not limited', async () => {
    for (let i = 1; i <= 5; i++) await createOrder(t.http, auth, `SH-${i}`, 50);
    const pushes: Response[] = [];
    for (let i = 1; i <= 3; i++) {
      const res = await push(t.http, auth, { phoneNumber: `071220000${i}`, amount: 50, orderId: `SH-${i}` }, `sh-${i}`);
      pushes.push(res);
    }
    // Daraja's callbacks for the three pushes are delivered and applied (callbacks are never limited).
    for (const p of pushes) await settled(t, p);

    const before = await tableCounts(t.db);
    const pushesBefore = t.sim.pushes().length;
    const limited = await push(t.http, auth, { phoneNumber: '0712200004', amount: 50, orderId: 'SH-4' }, 'sh-4');
    expect429(limited, 'RATE_LIMITED_SHOP', 60);
    expect(limited.body.message).toMatch(/^This shop has sent too many M-Pesa requests \(limit 3 a minute\)/);
    expect(await tableCounts(t.db)).toEqual(before);
    expect(t.sim.pushes().length).toBe(pushesBefore);

    // bad input is still the normal 400
    const invalidPhone = await push(t.http, auth, { phoneNumber: '12345', amount: 50, orderId: 'SH-4' });
    expect({ status: invalidPhone.status, code: invalidPhone.body.code }).toEqual({
      status: 400,
      code: 'INVALID_PHONE_NUMBER',
    });
    const invalidAmount = await push(t.http, auth, { phoneNumber: '0712200004', amount: 1.5, orderId: 'SH-4' });
    expect({ status: invalidAmount.status, code: invalidAmount.body.code }).toEqual({
      status: 400,
      code: 'VALIDATION_FAILED',
    });

    // a replay is answered
    const replay = await push(t.http, auth, { phoneNumber: '0712200001', amount: 50, orderId: 'SH-1' }, 'sh-1');
    expect(replay.status).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.body.paymentId).toBe(pushes[0].body.paymentId);

    // another shop has its own count
    const other = `Bearer ${t.token('shop-b')}`;
    await createOrder(t.http, other, 'SH-B1', 50);
    expect((await push(t.http, other, { phoneNumber: '0712200004', amount: 50, orderId: 'SH-B1' })).status).toBe(201);

    for (const p of pushes) {
      const read = await t.http().get(`/payments/${p.body.paymentId}`).set('Authorization', auth);
      expect({ status: read.status, payment: read.body.status }).toEqual({ status: 200, payment: 'completed' });
    }
    // More callbacks and status reads, however many, are never limited either.
    for (let i = 0; i < 6; i++) {
      const cb = await t
        .http()
        .post('/payments/callback')
        .send(successCallback('m-1', fullCheckoutRequestId(t.sim, pushes[0].body), 50, `RCPT00000${i}`));
      expect({ status: cb.status, body: cb.body }).toEqual({
        status: 200,
        body: { ResultCode: 0, ResultDesc: 'Accepted' },
      });
      const read = await t
        .http()
        .get('/payments/stk-status')
        .query({ checkoutRequestId: pushes[1].body.checkoutRequestId })
        .set('Authorization', auth);
      expect(read.status).toBe(200);
    }
    // still limited for pushes
    expect429(
      await push(t.http, auth, { phoneNumber: '0712200005', amount: 50, orderId: 'SH-5' }),
      'RATE_LIMITED_SHOP',
      60,
    );
  });
});

describe('on the embedded PGlite database', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      pglite: true,
      env: { RATE_LIMIT_PHONE_PER_WINDOW: '1', RATE_LIMIT_PHONE_WINDOW_SECONDS: '3600' },
    });
  });
  afterAll(() => t?.close());

  it('counts in memory (store auto)', async () => {
    const auth = `Bearer ${t.token()}`;
    await createOrder(t.http, auth, 'PG-1');
    await createOrder(t.http, auth, 'PG-2');
    expect((await push(t.http, auth, { phoneNumber: '0712300001', amount: 10, orderId: 'PG-1' })).status).toBe(201);
    expect429(await push(t.http, auth, { phoneNumber: '0712300001', amount: 10, orderId: 'PG-2' }), 'PHONE_BUSY', 3600);
  });
});

describeOnPostgres('two instances on one Postgres', () => {
  const limits = {
    RATE_LIMIT_PHONE_PER_WINDOW: '1',
    RATE_LIMIT_PHONE_WINDOW_SECONDS: '3600',
    RATE_LIMIT_SHOP_PER_MINUTE: '2',
  };
  let a: TestApp;
  let b: ExtraTestApp;
  let c: ExtraTestApp;
  let auth: string;

  beforeAll(async () => {
    // `a` runs without limits, so the counters table does not exist yet when b and c boot together.
    a = await startTestApp();
    [b, c] = await Promise.all([startExtraTestApp(a, limits), startExtraTestApp(a, limits)]);
    auth = `Bearer ${a.token('shop-m')}`;
  });
  afterAll(async () => {
    await c?.close();
    await b?.close();
    await a?.close();
  });

  it('boot together (one counters table), and share the phone and shop counts', async () => {
    expect(await counterKeys(a.db)).toEqual([]);
    for (let i = 1; i <= 4; i++) await createOrder(a.http, auth, `MI-${i}`);

    expect((await push(b.http, auth, { phoneNumber: '0712400001', amount: 10, orderId: 'MI-1' })).status).toBe(201);
    // the same phone through the other instance
    expect429(await push(c.http, auth, { phoneNumber: '0712400001', amount: 10, orderId: 'MI-2' }), 'PHONE_BUSY', 3600);
    // the shop's second push (the refused one above gave its shop point back) ...
    expect((await push(c.http, auth, { phoneNumber: '0712400002', amount: 10, orderId: 'MI-2' })).status).toBe(201);
    // ... and its third, on either instance, is over the shared 2 a minute
    expect429(
      await push(b.http, auth, { phoneNumber: '0712400003', amount: 10, orderId: 'MI-3' }),
      'RATE_LIMITED_SHOP',
      60,
    );
    expect429(
      await push(c.http, auth, { phoneNumber: '0712400003', amount: 10, orderId: 'MI-3' }),
      'RATE_LIMITED_SHOP',
      60,
    );
    // the instance without limits is, as configured, not limited
    expect((await push(a.http, auth, { phoneNumber: '0712400001', amount: 10, orderId: 'MI-3' })).status).toBe(201);

    const keys = await counterKeys(a.db);
    expect(keys.filter((k) => k.startsWith('stk_phone:'))).toHaveLength(2);
    expect(keys).toContain('stk_shop:shop-m');
  });

  it('the extra table does not disturb the drizzle migrations', async () => {
    await expect(a.database.handle.migrate()).resolves.toBeUndefined();
  });
});

describeOnPostgres('RATE_LIMIT_STORE=memory on Postgres', () => {
  let a: TestApp;
  let b: ExtraTestApp;
  const env = { RATE_LIMIT_STORE: 'memory', RATE_LIMIT_PHONE_PER_WINDOW: '1', RATE_LIMIT_PHONE_WINDOW_SECONDS: '3600' };

  beforeAll(async () => {
    a = await startTestApp({ env });
    b = await startExtraTestApp(a, env);
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  it('counts per instance (documented: use auto/postgres to share), and writes no counters table', async () => {
    const auth = `Bearer ${a.token()}`;
    for (let i = 1; i <= 3; i++) await createOrder(a.http, auth, `MM-${i}`);
    expect((await push(a.http, auth, { phoneNumber: '0712500001', amount: 10, orderId: 'MM-1' })).status).toBe(201);
    expect((await push(b.http, auth, { phoneNumber: '0712500001', amount: 10, orderId: 'MM-2' })).status).toBe(201);
    expect429(await push(a.http, auth, { phoneNumber: '0712500001', amount: 10, orderId: 'MM-3' }), 'PHONE_BUSY', 3600);
    const table = await a.db.execute(sql`select to_regclass('rate_limit_counters')::text as t`);
    expect((table as unknown as { rows: Array<{ t: string | null }> }).rows[0].t).toBeNull();
  });
});

describeOnPostgres('when the shared store fails', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ env: { RATE_LIMIT_PHONE_PER_WINDOW: '1', RATE_LIMIT_PHONE_WINDOW_SECONDS: '3600' } });
  });
  afterAll(() => t?.close());

  it('pushes are still taken (fail open), counted in the instance memory meanwhile', async () => {
    const auth = `Bearer ${t.token()}`;
    for (let i = 1; i <= 3; i++) await createOrder(t.http, auth, `SF-${i}`);
    await t.db.execute(sql`drop table rate_limit_counters`);
    expect((await push(t.http, auth, { phoneNumber: '0712600001', amount: 10, orderId: 'SF-1' })).status).toBe(201);
    expect429(await push(t.http, auth, { phoneNumber: '0712600001', amount: 10, orderId: 'SF-2' }), 'PHONE_BUSY', 3600);
    expect((await push(t.http, auth, { phoneNumber: '0712600002', amount: 10, orderId: 'SF-2' })).status).toBe(201);
  });
});
