/**
 * Review of issue 8.4 (an operator's findings): with no connect or statement timeout towards
 * Postgres, a database that stops answering new connections, or a row lock held elsewhere, made
 * requests wait for ever. Now the request fails cleanly (503 DATABASE_UNAVAILABLE in the API's
 * error shape) and the API serves again as soon as the database does; and Daraja's answer to a push
 * is not lost to a short database outage. Needs a real Postgres.
 */
import { sql } from 'drizzle-orm';
import { createServer, Server, Socket, connect } from 'node:net';
import { Client } from 'pg';
import { openDatabase } from '../src/database/database';
import { startTestApp, TestApp, waitFor } from './helpers/test-app';
import { alterTestDatabase, terminateBackends } from './helpers/test-db';

const maybe = process.env.DATABASE_URL ? describe : describe.skip;

/** A TCP proxy to Postgres that can stop answering new connections (accepts them, forwards nothing: a black hole). */
async function startProxy(
  target: URL,
): Promise<{ url: (u: string) => string; setFrozen(v: boolean): void; close(): Promise<void> }> {
  let frozen = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    if (frozen) return; // never forwarded, never closed
    const upstream = connect(Number(target.port || 5432), target.hostname);
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: (u) => {
      const x = new URL(u);
      x.hostname = '127.0.0.1';
      x.port = String(port);
      return x.toString();
    },
    setFrozen: (v) => void (frozen = v),
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

maybe('review: database timeouts (no request waits for ever on the database)', () => {
  let t: TestApp;
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  let dbUrl: string;
  let auth: string;
  let manager: string;

  beforeAll(async () => {
    proxy = await startProxy(new URL(process.env.DATABASE_URL!));
    t = await startTestApp({
      database: async (testDb) => {
        dbUrl = testDb.url!;
        return openDatabase({
          databaseUrl: proxy.url(testDb.url!),
          poolSize: 4,
          connectTimeoutMs: 1000,
          statementTimeoutMs: 1500,
        });
      },
    });
    auth = `Bearer ${t.token()}`;
    manager = `Bearer ${t.token('shop-1', 'manager', 'manager-1')}`;
  });
  afterAll(async () => {
    await t?.close();
    await proxy?.close();
  });

  async function terminateAppConnections(): Promise<void> {
    const admin = new Client({ connectionString: dbUrl });
    await admin.connect();
    try {
      await admin.query(
        'select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
      );
    } finally {
      await admin.end();
    }
  }

  it('review: a database that accepts connections but never answers gets 503 DATABASE_UNAVAILABLE (connect timeout), then the API serves again', async () => {
    expect((await t.http().post('/orders').set('Authorization', auth).send({ id: 'TMO-1', total: 10 })).status).toBe(
      201,
    );
    proxy.setFrozen(true);
    await terminateAppConnections(); // the pool must open new connections: they go into the black hole
    // Before: this request waited for ever (supertest's own timeout below turns a hang into a failure).
    const res = await t.http().get('/orders/TMO-1').set('Authorization', auth).timeout(20_000);
    expect({ status: res.status, code: res.body.code }).toEqual({ status: 503, code: 'DATABASE_UNAVAILABLE' });
    expect(res.headers['retry-after']).toBe('2');
    proxy.setFrozen(false);
    await waitFor(
      async () => (await t.http().get('/orders/TMO-1').set('Authorization', auth)).status === 200,
      15_000,
      200,
    );
  });

  it('review: a statement stuck behind a lock held elsewhere fails with 503 (statement timeout) instead of holding the request', async () => {
    expect((await t.http().post('/orders').set('Authorization', auth).send({ id: 'TMO-2', total: 10 })).status).toBe(
      201,
    );
    const push = await t
      .http()
      .post('/payments/stk-push')
      .set('Authorization', auth)
      .send({ orderId: 'TMO-2', amount: 10, phoneNumber: '254700000007' });
    expect(push.status).toBe(201);
    const locker = new Client({ connectionString: dbUrl });
    await locker.connect();
    try {
      await locker.query('begin');
      await locker.query('select id from payments where id = $1 for update', [push.body.paymentId]);
      // Before: the release waited on the row lock for as long as the other session held it.
      const res = await t
        .http()
        .post(`/payments/${push.body.paymentId}/release`)
        .set('Authorization', manager)
        .send({ reason: 'customer shows no SMS' })
        .timeout(20_000);
      expect({ status: res.status, code: res.body.code }).toEqual({ status: 503, code: 'DATABASE_UNAVAILABLE' });
    } finally {
      await locker.query('rollback');
      await locker.end();
    }
    // Nothing was changed by the refused request; the API answers normally again.
    const after = await t
      .http()
      .post(`/payments/${push.body.paymentId}/release`)
      .set('Authorization', manager)
      .send({ reason: 'customer shows no SMS' });
    expect({ status: after.status, code: after.body.code }).toEqual({ status: 409, code: 'PAYMENT_NOT_RELEASABLE' });
    const events = await t.db.execute(
      sql`select count(*)::int as n from payment_events where payment_id = ${push.body.paymentId} and type = 'order_released'`,
    );
    expect((events as unknown as { rows: { n: number }[] }).rows[0].n).toBe(0);
  });
});

maybe('review: a database blip while Daraja answers a push', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ env: { MPESA_HTTP_TIMEOUT_MS: '10000' } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("review: Daraja's answer to a push is recorded once the database is back (bounded wait), so the payment keeps its CheckoutRequestID and can be queried", async () => {
    const auth = `Bearer ${t.token()}`;
    expect((await t.http().post('/orders').set('Authorization', auth).send({ id: 'BLIP-1', total: 30 })).status).toBe(
      201,
    );
    t.sim.setFaults({ latencyMs: { push: 1500 } });
    const url = t.database.url!;
    try {
      const pushing = t
        .http()
        .post('/payments/stk-push')
        .set('Authorization', auth)
        .send({ orderId: 'BLIP-1', amount: 30, phoneNumber: '254700000007' })
        .timeout(30_000)
        .then((r) => r);
      // Daraja has the push (the customer gets the prompt); the database goes away before it answers, for about 2 s.
      await waitFor(async () => t.sim.stats().pushRequests >= 1, 10_000, 20);
      await alterTestDatabase(url, 'allow_connections false');
      await terminateBackends(url);
      await new Promise((r) => setTimeout(r, 2500));
      await alterTestDatabase(url, 'allow_connections true');
      const res = await pushing;
      // Before: 503, and the payment stayed 'initiated' with no CheckoutRequestID for ever.
      expect({ status: res.status, status2: res.body.status }).toEqual({ status: 201, status2: 'pending' });
      const payment = await t.http().get(`/payments/${res.body.paymentId}`).set('Authorization', auth);
      expect(payment.body).toMatchObject({ status: 'pending', checkoutRequestId: res.body.checkoutRequestId });
    } finally {
      t.sim.setFaults({});
      await alterTestDatabase(url, 'allow_connections true');
    }
  });
});

maybe('review: closing the database twice (two shutdown paths)', () => {
  it("review: a second close resolves instead of rejecting with pg's 'Called end on pool more than once' (it ended the process with exit 1 on Ctrl-C)", async () => {
    const handle = await openDatabase({ databaseUrl: process.env.DATABASE_URL!, poolSize: 1 });
    await handle.ping();
    await expect(Promise.all([handle.close(), handle.close()])).resolves.toBeDefined();
    await expect(handle.close()).resolves.toBeUndefined();
  });
});
