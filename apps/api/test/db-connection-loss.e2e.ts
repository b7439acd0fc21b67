import { DarajaSimulator, startDarajaSimulator } from '@smartduka/daraja-simulator';
import { sql } from 'drizzle-orm';
import { Agent, request as httpRequest } from 'node:http';
import { mintToken } from '../src/auth/token';
import { SANDBOX_PASSKEY } from '../src/config/app-config';
import { callbackToken } from '../src/payments/providers/mpesa/callback-token';
import { ApiProcess, startApiProcess } from './helpers/api-process';
import { successCallback } from './helpers/callbacks';
import { step, testTimeout, waitUntil } from './helpers/deadlines';
import { fullCheckoutRequestId, TEST_CALLBACK_SECRET, TEST_JWT_SECRET } from './helpers/test-app';
import {
  alterTestDatabase,
  backendsInState,
  createTestDatabase,
  terminateBackends,
  TestDatabase,
} from './helpers/test-db';

const rowsOf = <T>(res: unknown): T[] => (res as { rows: T[] }).rows;
/** The customer never answers: only the callbacks the test sends settle these payments. */
const SILENT_PHONE = '254700000007';

/**
 * Postgres drops connections the API has checked out: pg_terminate_backend (what a failover or a
 * proxy restart does), idle_in_transaction_session_timeout. The API runs as its own process so a
 * crash is visible; the request that used the connection fails cleanly, nothing unstored is
 * acknowledged, and the process keeps serving. Needs a real Postgres: skipped without DATABASE_URL.
 */
(process.env.DATABASE_URL ? describe : describe.skip)('a dropped database connection', () => {
  let sim: DarajaSimulator;
  let database: TestDatabase;
  let api: ApiProcess | undefined;
  const auth = `Bearer ${mintToken(TEST_JWT_SECRET, { sub: 'cashier-1', shopId: 'shop-1', role: 'cashier' })}`;
  const env = {
    RECONCILER_INTERVAL_MS: '200',
    RECONCILER_INBOX_RETRY_AFTER_SECONDS: '1',
    RECONCILER_LEASE_SECONDS: '5',
    RECONCILER_PENDING_GRACE_SECONDS: '3600',
    MPESA_HTTP_TIMEOUT_MS: '15000',
  };
  let seq = 0;

  beforeAll(async () => {
    sim = await startDarajaSimulator({
      accounts: [{ shortcode: '174379', passkey: SANDBOX_PASSKEY, tillNumbers: ['174380'] }],
    });
    database = await createTestDatabase();
  }, testTimeout(20_000));
  afterEach(async () => {
    await api?.kill();
    api = undefined;
    sim.setFaults({});
  });
  afterAll(async () => {
    await sim.close();
    await database.dispose();
  });

  const url = () => database.url!;
  const db = () => database.handle.db;
  const alive = (a: ApiProcess) => a.child.exitCode === null && a.child.signalCode === null;

  async function openPayment(
    a: ApiProcess,
    amount = 10,
  ): Promise<{ paymentId: string; checkoutRequestId: string; merchantRequestId: string; orderId: string }> {
    const orderId = `DBL-${++seq}`;
    expect(
      (await a.http().post('/orders').set('Authorization', auth).send({ id: orderId, total: amount })).status,
    ).toBe(201);
    const res = await a
      .http()
      .post('/payments/stk-push')
      .set('Authorization', auth)
      .send({ orderId, amount, phoneNumber: SILENT_PHONE });
    expect(res.status).toBe(201);
    return { ...res.body, checkoutRequestId: fullCheckoutRequestId(sim, res.body), orderId };
  }

  /** The process answers /health and takes a new payment: the pool replaced the dropped connections. */
  async function expectServing(a: ApiProcess): Promise<void> {
    expect(alive(a)).toBe(true);
    expect((await a.http().get('/health')).status).toBe(200);
    const p = await openPayment(a);
    expect((await a.http().get(`/payments/${p.paymentId}`).set('Authorization', auth)).body).toMatchObject({
      paymentId: p.paymentId,
      status: 'pending',
    });
  }

  async function pushDuringSlowOAuth(a: ApiProcess, dropConnections: () => Promise<void>) {
    const orderId = `SLOW-${++seq}`;
    expect((await a.http().post('/orders').set('Authorization', auth).send({ id: orderId, total: 10 })).status).toBe(
      201,
    );
    // The first push needs a token: the refresh holds a transaction with the advisory lock while OAuth is slow.
    const push = a
      .http()
      .post('/payments/stk-push')
      .set('Authorization', auth)
      .send({ orderId, amount: 10, phoneNumber: SILENT_PHONE })
      .then((r) => r);
    await dropConnections();
    const res = await step('the push answer after the dropped connection', 30_000, () => push);
    return { res, orderId };
  }

  it(
    'issue 8.4: terminating the backends while the token refresh waits for a slow OAuth does not crash the process; the push still succeeds',
    async () => {
      sim.setFaults({ latencyMs: { oauth: 4000 } });
      const a = (api = await step('start the API', 40_000, () =>
        startApiProcess({ databaseUrl: url(), simUrl: sim.url, env }),
      ));
      const { res } = await pushDuringSlowOAuth(a, async () => {
        await waitUntil(
          'the token refresh transaction to sit idle while OAuth is slow',
          15_000,
          // The token refresh's transaction (its last statement read provider_tokens), idle for a
          // moment: not the push's own insert caught between two statements on a busy machine.
          async () =>
            (await backendsInState(url(), 'idle in transaction', { queryLike: '%provider_tokens%', forMs: 300 })) > 0,
          { intervalMs: 50, failIf: () => (alive(a) ? undefined : `the API process exited:\n${a.output()}`) },
        );
        expect(await terminateBackends(url())).toBeGreaterThan(0);
      });
      expect(alive(a)).toBe(true);
      // The refresh could not store the token, but OAuth answered: that token is used, and the push's
      // own writes go through fresh connections.
      // Status and body together, so a failure shows what the API answered.
      expect({ status: res.status, body: res.body }).toMatchObject({
        status: 201,
        body: { status: 'pending', checkoutRequestId: expect.any(String) },
      });
      sim.setFaults({});
      await step('serve requests afterwards', 20_000, () => expectServing(a));
      // The loss was seen and handled (logged with its SQLSTATE), not thrown as an unhandled 'error' event.
      expect(a.output()).toMatch(/"code":"57P01".*database connection lost/);
      expect(a.output()).not.toMatch(/Unhandled 'error' event/);
    },
    testTimeout(40_000, 15_000, 30_000, 20_000),
  );

  it(
    'issue 8.4: idle_in_transaction_session_timeout ending the token refresh during a slow OAuth does not crash the process',
    async () => {
      await alterTestDatabase(url(), `set idle_in_transaction_session_timeout = '1000'`);
      try {
        sim.setFaults({ latencyMs: { oauth: 4000 } });
        const a = (api = await step('start the API', 40_000, () =>
          startApiProcess({ databaseUrl: url(), simUrl: sim.url, env }),
        ));
        // The server itself ends the idle transaction after 1 s, long before OAuth answers.
        const { res } = await pushDuringSlowOAuth(a, async () => undefined);
        expect(alive(a)).toBe(true);
        expect(res.status).toBe(201);
        sim.setFaults({});
        await step('serve requests afterwards', 20_000, () => expectServing(a));
      } finally {
        await alterTestDatabase(url(), 'reset idle_in_transaction_session_timeout');
      }
    },
    testTimeout(40_000, 30_000, 20_000),
  );

  it(
    'issue 8.4: a callback whose storing fails is not acknowledged: 503 DATABASE_UNAVAILABLE in the API error shape, and it is stored once the database is back',
    async () => {
      const a = (api = await step('start the API', 40_000, () =>
        startApiProcess({ databaseUrl: url(), simUrl: sim.url, env }),
      ));
      const p = await openPayment(a, 25);
      const path = `/payments/callback/${p.paymentId}/${callbackToken(TEST_CALLBACK_SECRET, p.paymentId)}`;
      const body = successCallback(p.merchantRequestId, p.checkoutRequestId, 25, 'RDB0000001');

      await alterTestDatabase(url(), 'allow_connections false');
      try {
        await terminateBackends(url());
        const refused = await a.http().post(path).send(body);
        expect(refused.status).toBe(503);
        expect(refused.body).toEqual({
          statusCode: 503,
          code: 'DATABASE_UNAVAILABLE',
          message: expect.any(String),
          requestId: expect.any(String),
        });
        expect(refused.body.ResultDesc).toBeUndefined();
        const read = await a.http().get(`/payments/${p.paymentId}`).set('Authorization', auth);
        expect(read.status).toBe(503);
        expect(read.body).toMatchObject({ statusCode: 503, code: 'DATABASE_UNAVAILABLE' });
        expect(read.headers['retry-after']).toBeDefined();
        expect((await a.http().get('/health')).status).toBe(503);
        expect(alive(a)).toBe(true);
      } finally {
        await alterTestDatabase(url(), 'allow_connections true');
      }

      // Nothing was stored for the refused delivery; Daraja's next delivery is stored and applied.
      expect(
        rowsOf(await db().execute(sql`select id from callback_inbox where url_payment_id = ${p.paymentId}`)),
      ).toHaveLength(0);
      const again = await a.http().post(path).send(body);
      expect(again.status).toBe(200);
      expect(again.body).toEqual({ ResultCode: 0, ResultDesc: 'Accepted' });
      expect(
        rowsOf(await db().execute(sql`select id from callback_inbox where url_payment_id = ${p.paymentId}`)),
      ).toHaveLength(1);
      // Stored before the answer, applied after it.
      await waitUntil(
        'the stored callback to be applied',
        10_000,
        async () =>
          (await a.http().get(`/payments/${p.paymentId}`).set('Authorization', auth)).body.status !== 'pending',
      );
      expect((await a.http().get(`/payments/${p.paymentId}`).set('Authorization', auth)).body).toMatchObject({
        status: 'completed',
        mpesaReceiptNumber: 'RDB0000001',
      });
    },
    testTimeout(40_000, 20_000),
  );

  it(
    'issue 8.4: terminating the backends three times during a callback burst: the process survives, every answer is Accepted or a clean 503, every Accepted callback is stored',
    async () => {
      const N = 120;
      const a = (api = await step('start the API', 40_000, () =>
        startApiProcess({ databaseUrl: url(), simUrl: sim.url, env }),
      ));
      const pending = await step(
        `open ${N} payments`,
        60_000,
        async () => {
          const out: Awaited<ReturnType<typeof openPayment>>[] = [];
          await runPool(
            Array.from({ length: N }, (_, i) => i),
            6,
            async () => void out.push(await openPayment(a, 10)),
          );
          return out;
        },
        () => `${seq} payments opened`,
      );

      const agent = new Agent({ keepAlive: true, maxSockets: 32 });
      const accepted = new Set<string>();
      const refused = new Set<string>();
      const other: { paymentId: string; status?: number; body?: string; error?: string }[] = [];
      const terminations: number[] = [];
      const dropAt = [20, 50, 80];
      let dropping: Promise<void> = Promise.resolve();
      const send = async (p: (typeof pending)[number], i: number) => {
        const body = JSON.stringify(
          successCallback(p.merchantRequestId, p.checkoutRequestId, 10, `RBU${String(i).padStart(7, '0')}`),
        );
        try {
          const res = await post(
            `${a.baseUrl}/payments/callback/${p.paymentId}/${callbackToken(TEST_CALLBACK_SECRET, p.paymentId)}`,
            body,
            agent,
          );
          const json = JSON.parse(res.body) as {
            ResultDesc?: string;
            code?: string;
            statusCode?: number;
            message?: string;
          };
          if (res.status === 200 && json.ResultDesc === 'Accepted') accepted.add(p.paymentId);
          else if (
            res.status === 503 &&
            json.code === 'DATABASE_UNAVAILABLE' &&
            json.statusCode === 503 &&
            typeof json.message === 'string'
          )
            refused.add(p.paymentId);
          else other.push({ paymentId: p.paymentId, status: res.status, body: res.body });
        } catch (err) {
          other.push({ paymentId: p.paymentId, error: err instanceof Error ? err.message : String(err) });
        }
        if (dropAt.length && accepted.size + refused.size >= dropAt[0]) {
          dropAt.shift();
          // Each drop must hit the API's connections: right after a drop the pool may not have
          // reconnected yet (answers come fast), so wait (briefly) until there is something to drop.
          dropping = dropping.then(async () => {
            let n = 0;
            for (let i = 0; i < 60 && n === 0; i++) {
              n = await terminateBackends(url());
              if (n === 0) await new Promise((r) => setTimeout(r, 50));
            }
            terminations.push(n);
          });
        }
      };
      let next = 0;
      await step(
        'the callback burst',
        60_000,
        () =>
          Promise.all(
            Array.from({ length: 32 }, async () => {
              while (next < pending.length) {
                const i = next++;
                await send(pending[i], i);
              }
            }),
          ),
        () => `${accepted.size} accepted, ${refused.size} refused, ${other.length} other of ${N}`,
      );
      await dropping;
      agent.destroy();

      expect(alive(a)).toBe(true);
      expect(other).toEqual([]);
      expect(terminations).toHaveLength(3);
      expect(terminations.every((n) => n > 0)).toBe(true);
      expect(accepted.size + refused.size).toBe(N);

      // Every Accepted callback was stored before its reply.
      const stored = new Set(
        rowsOf<{ url_payment_id: string }>(
          await db().execute(sql`select distinct url_payment_id from callback_inbox`),
        ).map((r) => r.url_payment_id),
      );
      for (const id of accepted) expect(stored.has(id)).toBe(true);

      // Daraja would deliver the refused ones again: now they are accepted too.
      for (const p of pending.filter((x) => refused.has(x.paymentId))) {
        const res = await a
          .http()
          .post(`/payments/callback/${p.paymentId}/${callbackToken(TEST_CALLBACK_SECRET, p.paymentId)}`)
          .send(
            successCallback(
              p.merchantRequestId,
              p.checkoutRequestId,
              10,
              `RBU${String(pending.indexOf(p)).padStart(7, '0')}`,
            ),
          );
        expect(res.body).toEqual({ ResultCode: 0, ResultDesc: 'Accepted' });
      }
      // Stored but unprocessed ones (their processing hit the dropped connection) are finished by the reconciler.
      await waitUntil(
        'every stored callback to be processed',
        30_000,
        async () =>
          rowsOf<{ n: number }>(
            await db().execute(sql`select count(*)::int as n from callback_inbox where processed_at is null`),
          )[0].n === 0,
        { intervalMs: 200, failIf: () => (alive(a) ? undefined : 'the API process exited') },
      );
      const rows = rowsOf<{ status: string; completions: number }>(
        await db().execute(sql`
      select p.status, (select count(*)::int from payment_events e where e.payment_id = p.id and e.to_status = 'completed') as completions
      from payments p where p.id = any(${`{${pending.map((p) => p.paymentId).join(',')}}`}::uuid[])`),
      );
      expect(rows).toHaveLength(N);
      for (const r of rows) expect(r).toEqual({ status: 'completed', completions: 1 });
      await step('serve requests afterwards', 20_000, () => expectServing(a));
    },
    testTimeout(40_000, 60_000, 60_000, 30_000, 20_000, 20_000),
  );
});

async function runPool<T>(
  items: T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i], i);
      }
    }),
  );
}

/** A raw POST through a keep-alive agent (a burst like Daraja's, without a connection per request). */
function post(url: string, body: string, agent: Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
      },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (data += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
