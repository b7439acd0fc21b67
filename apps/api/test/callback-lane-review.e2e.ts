import net from 'node:net';
import { sql } from 'drizzle-orm';
import { Client } from 'pg';
import request from 'supertest';
import { ReconcilerService } from '../src/payments/reconciler.service';
import { callbackToken } from '../src/payments/providers/mpesa/callback-token';
import { successCallback } from './helpers/callbacks';
import { fullCheckoutRequestId, startTestApp, TEST_CALLBACK_SECRET, TestApp } from './helpers/test-app';

const SILENT_PHONE = '254700000007'; // the simulator never calls back for it

/** One request on its own socket, exactly these bytes; the answer's status, code and message. */
function raw(port: number, bytes: Buffer): Promise<{ status: number; code?: string; message?: string; body: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => (out += d.toString()));
    s.on('error', reject);
    s.on('close', () => {
      const status = Number(out.split(' ')[1]);
      let body = out.slice(out.indexOf('\r\n\r\n') + 4);
      if (/transfer-encoding: chunked/i.test(out))
        body = body.replace(/^[0-9a-f]+\r\n/, '').replace(/\r\n0\r\n\r\n$/, '');
      const parsed = JSON.parse(body) as { code?: string; message?: string };
      resolve({ status, code: parsed.code, message: parsed.message, body });
    });
    s.write(bytes);
  });
}

describe('review of the STK callback fast lane and the applier', () => {
  let t: TestApp;
  let cashier: string;
  let n = 0;

  beforeAll(async () => {
    t = await startTestApp({ env: { RECONCILER_ENABLED: 'false', RECONCILER_INBOX_RETRY_AFTER_SECONDS: '0' } });
    cashier = `Bearer ${t.token()}`;
  });
  afterAll(() => t.close());

  async function pending(app: TestApp, total = 100) {
    const orderId = `REV-${++n}`;
    const auth = `Bearer ${app.token()}`;
    expect((await app.http().post('/orders').set('Authorization', auth).send({ id: orderId, total })).status).toBe(201);
    const res = await app
      .http()
      .post('/payments/stk-push')
      .set('Authorization', auth)
      .send({ phoneNumber: SILENT_PHONE, amount: total, orderId });
    expect(res.status).toBe(201);
    const body = res.body as { paymentId: string; merchantRequestId: string; checkoutRequestId: string };
    return { ...body, orderId, full: fullCheckoutRequestId(app.sim, body) };
  }
  const pathOf = (paymentId: string) =>
    `/payments/callback/${paymentId}/${callbackToken(TEST_CALLBACK_SECRET, paymentId)}`;

  it('the lane answers what Express answers for the same bytes (top-level scalars, a byte order mark, an empty body)', async () => {
    void cashier;
    const p = await pending(t);
    const port = Number(new URL(t.baseUrl).port);
    const head = `POST ${pathOf(p.paymentId)} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n`;
    // The lane takes a Content-Length body; a chunked one is always Express's.
    const viaLane = (b: Buffer) =>
      raw(port, Buffer.concat([Buffer.from(`${head}Content-Length: ${b.length}\r\n\r\n`), b]));
    const viaExpress = (b: Buffer) =>
      raw(
        port,
        Buffer.concat([
          Buffer.from(`${head}Transfer-Encoding: chunked\r\n\r\n`),
          ...(b.length ? [Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')] : []),
          Buffer.from('0\r\n\r\n'),
        ]),
      );
    const bodies = [
      Buffer.from('null'),
      Buffer.from('5'),
      Buffer.from(' "x"'),
      Buffer.from(''),
      Buffer.from('{"a":1}'),
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":1}')]),
    ];
    for (const b of bodies) {
      const [lane, express] = [await viaLane(b), await viaExpress(b)];
      expect({ body: b.toString('hex'), status: lane.status, code: lane.code, message: lane.message }).toEqual({
        body: b.toString('hex'),
        status: express.status,
        code: express.code,
        message: express.message,
      });
    }
    // A real callback behind a byte order mark is accepted by both (it was by Express before the lane).
    const cb = Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf]),
      Buffer.from(JSON.stringify(successCallback(p.merchantRequestId, p.full, 100, 'REVBOM0001'))),
    ]);
    expect((await viaLane(cb)).status).toBe(200);
    await t.callbacksApplied();
    const row = (
      (await t.db.execute(
        sql`select status, mpesa_receipt_number from payments where id = ${p.paymentId}`,
      )) as unknown as {
        rows: { status: string; mpesa_receipt_number: string }[];
      }
    ).rows[0];
    expect(row).toEqual({ status: 'completed', mpesa_receipt_number: 'REVBOM0001' });
  });
  const q = async <T>(app: TestApp, text: ReturnType<typeof sql>) =>
    ((await app.db.execute(text)) as unknown as { rows: T[] }).rows;
  const post = (app: TestApp, p: Awaited<ReturnType<typeof pending>>, receipt: string, amount = 100) =>
    request(app.baseUrl)
      .post(pathOf(p.paymentId))
      .send(successCallback(p.merchantRequestId, p.full, amount, receipt));
  const events = (app: TestApp, id: string) =>
    q<{ type: string; to_status: string | null }>(
      app,
      sql`select type, to_status from payment_events where payment_id = ${id} order by id`,
    );
  const inboxOf = (app: TestApp, id: string) =>
    q<{ outcome: string | null }>(
      app,
      sql`select outcome from callback_inbox where url_payment_id = ${id} order by id`,
    );

  it('a success with another receipt on a completed payment is a second charge, not a stored duplicate', async () => {
    const p = await pending(t);
    expect((await post(t, p, 'REVSC00001')).status).toBe(200);
    await t.callbacksApplied();
    expect((await post(t, p, 'REVSC00002')).status).toBe(200);
    await t.callbacksApplied();
    const rows = await q<{ status: string; status_reason: string | null; mpesa_receipt_number: string }>(
      t,
      sql`select status, status_reason, mpesa_receipt_number from payments where order_id = ${p.orderId} order by created_at`,
    );
    expect(rows).toEqual([
      { status: 'completed', status_reason: 'PAID', mpesa_receipt_number: 'REVSC00001' },
      { status: 'review', status_reason: 'SECOND_CHARGE', mpesa_receipt_number: 'REVSC00002' },
    ]);
  });

  it('the applier and a reconciler replay of the same stored row apply it once (one transition, no extra audit event)', async () => {
    const p = await pending(t);
    const locker = new Client({ connectionString: t.database.url });
    await locker.connect();
    let replay: Promise<unknown> | undefined;
    try {
      await locker.query('begin');
      await locker.query('select 1 from payments where id = $1 for update', [p.paymentId]);
      expect((await post(t, p, 'REVRACE001')).status).toBe(200);
      // The applier's job waits for the lock; the reconciler (retry after 0 s) claims the same row and waits too.
      replay = t.app.get(ReconcilerService).tick();
      await new Promise((r) => setTimeout(r, 300));
      await locker.query('commit');
    } finally {
      await locker.end();
    }
    await replay;
    await t.callbacksApplied();
    const evs = await events(t, p.paymentId);
    expect(evs.filter((e) => e.to_status === 'completed')).toHaveLength(1);
    // Before: the second pass recorded a duplicate_ignored event and overwrote the row's outcome with 'duplicate'.
    expect(evs.map((e) => e.type)).not.toContain('duplicate_ignored');
    expect(await inboxOf(t, p.paymentId)).toEqual([{ outcome: 'applied' }]);
  });

  it('CALLBACK_APPLY_QUEUE_MAX=1: what overflows is applied by the reconciler, every callback once', async () => {
    const small = await startTestApp({
      env: {
        RECONCILER_ENABLED: 'false',
        RECONCILER_INBOX_RETRY_AFTER_SECONDS: '0',
        CALLBACK_APPLY_QUEUE_MAX: '1',
        CALLBACK_APPLY_CONCURRENCY: '1',
      },
    });
    try {
      const ps = [];
      for (let i = 0; i < 6; i++) ps.push(await pending(small));
      const locker = new Client({ connectionString: small.database.url });
      await locker.connect();
      try {
        await locker.query('begin');
        await locker.query('select 1 from payments where id = $1 for update', [ps[0].paymentId]);
        for (const [i, p] of ps.entries())
          expect((await post(small, p, `REVQ${String(i).padStart(6, '0')}`)).status).toBe(200);
        await locker.query('commit');
      } finally {
        await locker.end();
      }
      await small.callbacksApplied();
      const ids = `{${ps.map((p) => p.paymentId).join(',')}}`;
      const left = await q<{ n: number }>(
        small,
        sql`select count(*)::int as n from callback_inbox where processed_at is null and url_payment_id = any(${ids}::text[])`,
      );
      expect(left[0].n).toBeGreaterThan(0);
      await small.app.get(ReconcilerService).tick();
      for (const [i, p] of ps.entries()) {
        const row = await q<{ status: string; mpesa_receipt_number: string }>(
          small,
          sql`select status, mpesa_receipt_number from payments where id = ${p.paymentId}`,
        );
        expect(row).toEqual([{ status: 'completed', mpesa_receipt_number: `REVQ${String(i).padStart(6, '0')}` }]);
        const evs = await events(small, p.paymentId);
        expect(evs.filter((e) => e.to_status === 'completed')).toHaveLength(1);
        expect(await inboxOf(small, p.paymentId)).toEqual([{ outcome: 'applied' }]);
      }
    } finally {
      await small.close();
    }
  });
  it('app.close() with callbacks queued behind a lock: they are applied before it returns, each once', async () => {
    const other = await startTestApp({ env: { RECONCILER_ENABLED: 'false', CALLBACK_APPLY_CONCURRENCY: '1' } });
    try {
      const ps = [];
      for (let i = 0; i < 4; i++) ps.push(await pending(other));
      const locker = new Client({ connectionString: other.database.url });
      await locker.connect();
      let closed = false;
      try {
        await locker.query('begin');
        await locker.query('select 1 from payments where id = $1 for update', [ps[0].paymentId]);
        for (const [i, p] of ps.entries())
          expect((await post(other, p, `REVSD${String(i).padStart(5, '0')}`)).status).toBe(200);
        // The Nest app only: the test database stays to be read.
        const closing = other.app.close().then(() => (closed = true));
        await new Promise((r) => setTimeout(r, 1000));
        expect(closed).toBe(false); // waiting for the queued callbacks
        await locker.query('commit');
        await closing;
        for (const [i, p] of ps.entries()) {
          const pay = await locker.query('select status, mpesa_receipt_number from payments where id = $1', [
            p.paymentId,
          ]);
          expect(pay.rows).toEqual([
            { status: 'completed', mpesa_receipt_number: `REVSD${String(i).padStart(5, '0')}` },
          ]);
          const inbox = await locker.query('select outcome from callback_inbox where url_payment_id = $1', [
            p.paymentId,
          ]);
          expect(inbox.rows).toEqual([{ outcome: 'applied' }]);
        }
      } finally {
        await locker.end();
      }
    } finally {
      await other.sim.close();
      await other.database.dispose();
    }
  });
});
