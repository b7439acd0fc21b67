import { sql } from 'drizzle-orm';
import { Client } from 'pg';
import request from 'supertest';
import { callbackToken } from '../src/payments/providers/mpesa/callback-token';
import { successCallback } from './helpers/callbacks';
import { countSql, isListenConnection } from './helpers/sql-count';
import { fullCheckoutRequestId, startTestApp, TEST_CALLBACK_SECRET, TestApp } from './helpers/test-app';

const SILENT_PHONE = '254700000007'; // the simulator never calls back for it

/**
 * Issue 13, callbacks: a verified STK callback is acknowledged after ONE durable write and applied
 * after the answer (CallbackApplier), so Daraja's connection never waits for the payment's lock,
 * the order, or the events; a repeat of what the payment holds costs that one statement and
 * nothing else. A callback acknowledged but never applied because the process died is applied by
 * the reconciler from its stored row: crash-recovery.e2e.ts SIGKILLs the API in a callback burst.
 */
describe('issue 13: STK callbacks acknowledged after one write, applied after the answer', () => {
  let t: TestApp;
  let cashier: string;
  let n = 0;

  beforeAll(async () => {
    t = await startTestApp({ env: { RECONCILER_ENABLED: 'false' } });
    cashier = `Bearer ${t.token()}`;
  });
  afterAll(() => t.close());

  async function pending(total = 100) {
    const orderId = `ACK-${++n}`;
    expect((await t.http().post('/orders').set('Authorization', cashier).send({ id: orderId, total })).status).toBe(
      201,
    );
    const res = await t
      .http()
      .post('/payments/stk-push')
      .set('Authorization', cashier)
      .send({ phoneNumber: SILENT_PHONE, amount: total, orderId });
    expect(res.status).toBe(201);
    const body = res.body as { paymentId: string; merchantRequestId: string; checkoutRequestId: string };
    return { ...body, orderId, full: fullCheckoutRequestId(t.sim, body) };
  }
  const callback = (p: Awaited<ReturnType<typeof pending>>, amount: number, receipt: string, base = t.baseUrl) =>
    request(base)
      .post(`/payments/callback/${p.paymentId}/${callbackToken(TEST_CALLBACK_SECRET, p.paymentId)}`)
      .send(successCallback(p.merchantRequestId, p.full, amount, receipt));
  const row = async (id: string) =>
    (
      (await t.db.execute(sql`select status, mpesa_receipt_number from payments where id = ${id}`)) as unknown as {
        rows: { status: string; mpesa_receipt_number: string | null }[];
      }
    ).rows[0];
  const inbox = async (id: string) =>
    (
      (await t.db.execute(
        sql`select outcome, processed_at is not null as processed from callback_inbox where url_payment_id = ${id} order by id`,
      )) as unknown as { rows: { outcome: string | null; processed: boolean }[] }
    ).rows;

  it('answers while the payment is locked elsewhere: stored first, applied once the lock goes', async () => {
    const p = await pending();
    const locker = new Client({ connectionString: t.database.url });
    await locker.connect();
    try {
      await locker.query('begin');
      await locker.query('select 1 from payments where id = $1 for update', [p.paymentId]);
      // Before: the callback was applied inside the request, which waited here for the lock.
      const res = await callback(p, 100, 'ACK0000001').timeout(5000);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ ResultCode: 0, ResultDesc: 'Accepted' });
      expect(await inbox(p.paymentId)).toEqual([{ outcome: null, processed: false }]);
      expect((await row(p.paymentId)).status).toBe('pending');
      await locker.query('commit');
    } finally {
      await locker.end();
    }
    await t.callbacksApplied();
    expect(await row(p.paymentId)).toEqual({ status: 'completed', mpesa_receipt_number: 'ACK0000001' });
    expect(await inbox(p.paymentId)).toEqual([{ outcome: 'applied', processed: true }]);
  });

  it('a repeat of what the payment holds is one statement: stored as a processed duplicate, nothing else runs', async () => {
    const p = await pending();
    expect((await callback(p, 100, 'ACK0000002')).status).toBe(200);
    await t.callbacksApplied();
    expect((await row(p.paymentId)).status).toBe('completed');

    const seen: string[] = [];
    const original = Client.prototype.query;
    Client.prototype.query = function (this: Client, ...args: unknown[]) {
      const q = args[0] as string | { text?: string };
      seen.push(typeof q === 'string' ? q : (q?.text ?? ''));
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof Client.prototype.query;
    try {
      const res = await callback(p, 100, 'ACK0000002');
      expect(res.status).toBe(200);
      await t.callbacksApplied();
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      Client.prototype.query = original;
    }
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatch(/^\s*insert into callback_inbox/);
    expect(await inbox(p.paymentId)).toEqual([
      { outcome: 'applied', processed: true },
      { outcome: 'duplicate', processed: true },
    ]);
  });

  it('callbacks that queue up are applied together: fewer commits than callbacks, every one applied once', async () => {
    const ps = [];
    for (let i = 0; i < 16; i++) ps.push(await pending(10));
    const commits = { n: 0 };
    const original = Client.prototype.query;
    Client.prototype.query = function (this: Client, ...args: unknown[]) {
      const q = args[0] as string | { text?: string };
      if (/^\s*commit\b/i.test(typeof q === 'string' ? q : (q?.text ?? ''))) commits.n++;
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof Client.prototype.query;
    const locker = new Client({ connectionString: t.database.url });
    await locker.connect();
    try {
      // Hold the first payments: the applier's transactions wait, the rest of the burst queues up.
      await locker.query('begin');
      await locker.query('select 1 from payments where id = any($1::uuid[]) for update', [
        ps.slice(0, 4).map((p) => p.paymentId),
      ]);
      const answers = await Promise.all(ps.map((p, i) => callback(p, 10, `ACKB${String(i).padStart(6, '0')}`)));
      for (const a of answers) expect(a.status).toBe(200);
      await locker.query('commit');
      await t.callbacksApplied();
    } finally {
      Client.prototype.query = original;
      await locker.end();
    }
    for (const [i, p] of ps.entries())
      expect(await row(p.paymentId)).toEqual({
        status: 'completed',
        mpesa_receipt_number: `ACKB${String(i).padStart(6, '0')}`,
      });
    // One autocommit INSERT per callback is not counted here (no COMMIT statement); the applies
    // committed in fewer transactions than there were callbacks.
    expect(commits.n).toBeGreaterThan(0);
    expect(commits.n).toBeLessThan(ps.length);
  });

  it('a completing callback costs 2 commits: the acknowledging INSERT and the one transaction that applies it', async () => {
    const p = await pending();
    const count = countSql(isListenConnection);
    try {
      expect((await callback(p, 100, 'ACK0000010')).status).toBe(200);
      await t.callbacksApplied();
    } finally {
      count.stop();
    }
    expect(await row(p.paymentId)).toEqual({ status: 'completed', mpesa_receipt_number: 'ACK0000010' });
    const listing = [...count.byText].map(([text, n]) => `${n} × ${text.replace(/\s+/g, ' ').slice(0, 100)}`);
    // INSERT inbox | BEGIN, lock the inbox row (still unprocessed?), lock payment, receipt in use?,
    // lock order, order balance, UPDATE payment with its event, UPDATE order, UPDATE inbox, COMMIT.
    expect({ commits: count.commits, statements: count.statements, listing }).toEqual({
      commits: 2,
      statements: 11,
      listing: expect.any(Array),
    });
  });
});
