import { DarajaSimulator, startDarajaSimulator } from '@smartduka/daraja-simulator';
import { sql } from 'drizzle-orm';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { mintToken } from '../src/auth/token';
import { isDatabaseUnavailable } from '../src/database/database';
import { scopedCallbackToken } from '../src/payments/providers/mpesa/callback-token';
import { ApiProcess, startApiProcess } from './helpers/api-process';
import { step, testTimeout, waitUntil } from './helpers/deadlines';
import { TEST_CALLBACK_SECRET, TEST_JWT_SECRET } from './helpers/test-app';
import { alterTestDatabase, createTestDatabase, terminateBackends, TestDatabase } from './helpers/test-db';

const PAYBILL = '600511';
const rowsOf = <T>(res: unknown): T[] => (res as { rows: T[] }).rows;

/**
 * C2B confirmations and claims when the API process is SIGKILLed or loses its database
 * connections mid-way (Daraja retries a confirmation that got no answer or an error answer):
 * every confirmation ends applied exactly once, orders are paid once, nothing acknowledged is
 * lost. The API runs as its own process. Needs a real Postgres: skipped without DATABASE_URL.
 */
(process.env.DATABASE_URL ? describe : describe.skip)('C2B: SIGKILL and dropped connections', () => {
  let sim: DarajaSimulator;
  let database: TestDatabase;
  let api: ApiProcess | undefined;
  let accountId = '';
  let port = 0;
  const passkey = randomBytes(32).toString('hex');
  const credentialsKeys = `k1:${randomBytes(32).toString('base64')}`;
  const cashier = `Bearer ${mintToken(TEST_JWT_SECRET, { sub: 'cashier-a', shopId: 'shop-a', role: 'cashier' })}`;
  const manager = `Bearer ${mintToken(TEST_JWT_SECRET, { sub: 'mgr-a', shopId: 'shop-a', role: 'manager' })}`;
  const env = () => ({
    CREDENTIALS_KEYS: credentialsKeys,
    RECONCILER_INTERVAL_MS: '200',
    MPESA_C2B_PULL_ENABLED: 'false',
    MPESA_C2B_URL: `http://127.0.0.1:${port}/payments/c2b`,
  });
  let seq = 0;

  const url = () => database.url!;
  /** The test's own reads: its pooled connections are dropped with the API's, so a lost one is retried. */
  const query = async <T = Record<string, unknown>>(q: ReturnType<typeof sql>): Promise<T[]> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return rowsOf<T>(await database.handle.db.execute(q));
      } catch (err) {
        if (attempt >= 5 || !isDatabaseUnavailable(err)) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  const start = async () => {
    api = await step('start the API', 40_000, () =>
      startApiProcess({ databaseUrl: url(), simUrl: sim.url, env: env(), ...(port ? { port } : {}) }),
    );
    port = api.port;
    return api;
  };
  const confirmationPath = () =>
    `/payments/c2b/${accountId}/confirmation/${scopedCallbackToken(TEST_CALLBACK_SECRET, 'c2b-confirmation', accountId)}`;
  const confirmation = (transId: string, amount: number, ref: string) => ({
    TransactionType: 'Pay Bill',
    TransID: transId,
    TransTime: '20261204101010',
    TransAmount: String(amount),
    BusinessShortCode: PAYBILL,
    BillRefNumber: ref,
    InvoiceNumber: '',
    OrgAccountBalance: '',
    ThirdPartyTransID: '',
    MSISDN: '2547****678',
    FirstName: 'Jane',
  });
  const order = async (a: ApiProcess, total: number) => {
    const id = `CK-${++seq}`;
    expect((await a.http().post('/orders').set('Authorization', cashier).send({ id, total })).status).toBe(201);
    return id;
  };
  const receipt = () => `RCK${String(++seq).padStart(7, '0')}`;
  const rowOf = async (transId: string) =>
    (
      await query(
        sql`select status, status_reason, deliveries, order_id from c2b_transactions where trans_id = ${transId}`,
      )
    )[0];
  const paymentsOf = (transId: string) =>
    query<{ status: string; order_id: string; amount_minor: string }>(
      sql`select status, order_id, amount_minor::text from payments where mpesa_receipt_number = ${transId}`,
    );
  const paidAt = async (orderId: string) =>
    (await query<{ paid_at: Date | null }>(sql`select paid_at from orders where id = ${orderId}`))[0]?.paid_at ?? null;

  /** Another session holds `lock` until the returned function is called. */
  async function holdLock(lock: string): Promise<() => Promise<void>> {
    const other = new Client({ connectionString: url() });
    await other.connect();
    await other.query('begin');
    await other.query(lock);
    return async () => {
      await other.query('rollback');
      await other.end();
    };
  }
  /** Waits until one of the API's statements waits for a lock. */
  const waitingForLock = () =>
    waitUntil('an API statement waiting for the held lock', 10_000, async () => {
      const n = await query<{ n: number }>(
        sql`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
      );
      return n[0].n > 0;
    });

  beforeAll(async () => {
    sim = await startDarajaSimulator({ accounts: [{ shortcode: PAYBILL, passkey }] });
    database = await createTestDatabase();
    const a = await start();
    const put = await a.http().put('/shops/shop-a/merchant-accounts/mpesa').set('Authorization', manager).send({
      environment: 'simulator',
      type: 'paybill',
      shortcode: PAYBILL,
      passkey,
      consumerKey: 'smartduka-sim-key',
      consumerSecret: 'smartduka-sim-secret',
    });
    expect(put.status).toBe(200);
    accountId = put.body.accountId;
  }, testTimeout(60_000));
  afterEach(async () => {
    // Each test ends with a serving API (restarted when it killed one).
    if (!api || api.child.exitCode !== null || api.child.signalCode !== null) await start();
  });
  afterAll(async () => {
    await api?.kill();
    await sim.close();
    await database.dispose();
  });

  it(
    'SIGKILL while a confirmation is being matched: nothing was acknowledged, Daraja’s retry after the restart is applied once',
    async () => {
      const a = api!;
      const orderId = await order(a, 100);
      const transId = receipt();
      const release = await holdLock('lock table orders in access exclusive mode');
      let answered: number | string = 'none';
      const inFlight = a
        .http()
        .post(confirmationPath())
        .send(confirmation(transId, 100, orderId))
        .then((r) => (answered = r.status))
        .catch(() => (answered = 'cut'));
      try {
        await waitingForLock();
        await a.kill();
      } finally {
        await release();
      }
      await inFlight;
      expect(answered).toBe('cut');
      const b = await start();
      // Whatever the killed process left (its transaction is rolled back), Daraja sends it again.
      for (let i = 0; i < 2; i++) {
        const res = await b
          .http()
          .post(confirmationPath())
          .send(confirmation(transId, 100, orderId));
        expect({ status: res.status, body: res.body }).toEqual({
          status: 200,
          body: { ResultCode: 0, ResultDesc: 'Success' },
        });
      }
      expect(await rowOf(transId)).toMatchObject({ status: 'applied', order_id: orderId });
      expect(await paymentsOf(transId)).toEqual([{ status: 'completed', order_id: orderId, amount_minor: '10000' }]);
      expect(await paidAt(orderId)).not.toBeNull();
    },
    testTimeout(60_000),
  );

  it(
    'SIGKILL right after a confirmation was stored and acknowledged but not matched: the restarted retry pass applies it once',
    async () => {
      const a = api!;
      const orderId = await order(a, 40);
      const transId = receipt();
      // A fault in the payment core for this order: the confirmation is stored alone and acknowledged.
      await query(
        sql.raw(`create function c2b_crash_boom() returns trigger language plpgsql as $$
        begin if new.order_id = '${orderId}' then raise exception 'injected fault'; end if; return new; end $$`),
      );
      await query(
        sql.raw(
          `create trigger c2b_crash_boom before insert on payments for each row execute function c2b_crash_boom()`,
        ),
      );
      try {
        const res = await a
          .http()
          .post(confirmationPath())
          .send(confirmation(transId, 40, orderId));
        expect(res.body).toEqual({ ResultCode: 0, ResultDesc: 'Success' });
        await a.kill();
      } finally {
        await query(sql.raw(`drop trigger c2b_crash_boom on payments`));
        await query(sql.raw(`drop function c2b_crash_boom()`));
      }
      expect(await rowOf(transId)).toMatchObject({ status: 'received', deliveries: 1 });
      await query(
        sql`update c2b_transactions set updated_at = now() - interval '1 minute' where trans_id = ${transId}`,
      );
      const b = await start();
      await waitUntil('the retry pass to match it', 15_000, async () => (await rowOf(transId)).status !== 'received');
      expect(await rowOf(transId)).toMatchObject({ status: 'applied', order_id: orderId, deliveries: 1 });
      // A late repeat from Daraja is counted, not applied again.
      expect(
        (
          await b
            .http()
            .post(confirmationPath())
            .send(confirmation(transId, 40, orderId))
        ).body,
      ).toEqual({
        ResultCode: 0,
        ResultDesc: 'Success',
      });
      expect(await paymentsOf(transId)).toEqual([{ status: 'completed', order_id: orderId, amount_minor: '4000' }]);
      expect(await rowOf(transId)).toMatchObject({ deliveries: 2 });
    },
    testTimeout(60_000),
  );

  it(
    'SIGKILL mid-claim: the claim is rolled back whole, the payment stays in the feed and is claimed once after the restart',
    async () => {
      const a = api!;
      const orderId = await order(a, 70);
      const transId = receipt();
      // No account number: the payment waits in the feed for a cashier.
      expect(
        (
          await a
            .http()
            .post(confirmationPath())
            .send(confirmation(transId, 70, ''))
        ).status,
      ).toBe(200);
      expect(await rowOf(transId)).toMatchObject({ status: 'unclaimed' });
      const id = (await query<{ id: string }>(sql`select id from c2b_transactions where trans_id = ${transId}`))[0].id;
      const release = await holdLock('lock table orders in access exclusive mode');
      const inFlight = a
        .http()
        .post(`/payments/c2b/${id}/claim`)
        .set('Authorization', cashier)
        .send({ orderId })
        .then((r) => r.status)
        .catch(() => 'cut');
      try {
        await waitingForLock();
        await a.kill();
      } finally {
        await release();
      }
      expect(await inFlight).toBe('cut');
      const b = await start();
      await waitUntil(
        'the killed claim to be rolled back',
        10_000,
        async () => (await rowOf(transId)).status === 'unclaimed',
      );
      const feed = await b.http().get(`/payments/c2b/unclaimed?receipt=${transId}`).set('Authorization', cashier);
      expect(feed.body).toEqual([expect.objectContaining({ id, receipt: transId })]);
      const [first, second] = await Promise.all(
        [0, 1].map(() => b.http().post(`/payments/c2b/${id}/claim`).set('Authorization', cashier).send({ orderId })),
      );
      expect([first.status, second.status].sort()).toEqual([200, 409]);
      expect(await paymentsOf(transId)).toEqual([{ status: 'completed', order_id: orderId, amount_minor: '7000' }]);
      expect(await paidAt(orderId)).not.toBeNull();
    },
    testTimeout(60_000),
  );

  it(
    'connections dropped while confirmations and claims arrive: only stored ones are acknowledged; after Daraja’s retries each is applied once',
    async () => {
      const a = api!;
      const N = 24;
      const items = await Promise.all(
        Array.from({ length: N }, async (_, i) => ({
          orderId: await order(a, 10 + i),
          transId: receipt(),
          amount: 10 + i,
          // every third one carries no account number: a cashier claims it
          claim: i % 3 === 0,
        })),
      );
      const acked = new Set<string>();
      const errors: string[] = [];
      const deliver = async (it: (typeof items)[number]) => {
        const res = await a
          .http()
          .post(confirmationPath())
          .send(confirmation(it.transId, it.amount, it.claim ? '' : it.orderId));
        if (res.status === 200) {
          expect(res.body).toEqual({ ResultCode: 0, ResultDesc: 'Success' });
          acked.add(it.transId);
          // Acknowledged means stored, at that moment.
          expect(await rowOf(it.transId)).toBeDefined();
        } else {
          expect(res.body.ResultCode).toBeUndefined();
          errors.push(`${res.status} ${res.body.code}`);
        }
        return res.status;
      };
      const dropper = (async () => {
        for (let i = 0; i < 6; i++) {
          await new Promise((r) => setTimeout(r, 40));
          await terminateBackends(url());
        }
      })();
      await Promise.all([dropper, ...items.map(deliver)]);
      // Daraja retries what was not acknowledged, until it is.
      for (const it of items)
        await waitUntil(`confirmation ${it.transId} acknowledged`, 15_000, async () =>
          acked.has(it.transId) ? true : (await deliver(it)) === 200,
        );
      // Rows left `received` by a failed matching (stored alone, acknowledged) are matched by the retry
      // pass once their lease passed (30 s; moved back here): only then does a till payment reach the feed.
      const matchLeftovers = async () => {
        await query(
          sql`update c2b_transactions set updated_at = now() - interval '1 minute' where status = 'received'`,
        );
        await waitUntil('every stored confirmation matched', 20_000, async () => {
          const n = await query<{ n: number }>(
            sql`select count(*)::int as n from c2b_transactions where status = 'received'`,
          );
          return n[0].n === 0;
        });
      };
      await matchLeftovers();
      // Claims while connections drop again: a failed claim changed nothing and is pressed again.
      const claims = items.filter((x) => x.claim);
      const claimOnce = async (it: (typeof items)[number]) => {
        const id = (await query<{ id: string }>(sql`select id from c2b_transactions where trans_id = ${it.transId}`))[0]
          .id;
        const res = await a
          .http()
          .post(`/payments/c2b/${id}/claim`)
          .set('Authorization', cashier)
          .send({ orderId: it.orderId });
        return res.status;
      };
      const dropAgain = (async () => {
        for (let i = 0; i < 4; i++) {
          await new Promise((r) => setTimeout(r, 30));
          await terminateBackends(url());
        }
      })();
      const firstTry = await Promise.all(claims.map(claimOnce).concat(dropAgain.then(() => 0)));
      expect(firstTry.slice(0, -1).filter((s) => s !== 200 && s !== 503)).toEqual([]);
      for (const it of claims)
        await waitUntil(`claim of ${it.transId}`, 15_000, async () => {
          if ((await rowOf(it.transId)).status === 'applied') return true;
          return (await claimOnce(it)) === 200;
        });
      await matchLeftovers();
      for (const it of items) {
        expect({ transId: it.transId, row: await rowOf(it.transId) }).toMatchObject({
          row: { status: 'applied', order_id: it.orderId },
        });
        expect(await paymentsOf(it.transId)).toEqual([
          { status: 'completed', order_id: it.orderId, amount_minor: String(it.amount * 100) },
        ]);
        expect(await paidAt(it.orderId)).not.toBeNull();
      }
      expect(a.child.exitCode).toBeNull();
    },
    testTimeout(120_000),
  );

  it(
    'validation with the database refusing connections answers "accepted" within its budget (an error answer is no validation answer)',
    async () => {
      const a = api!;
      const path = `/payments/c2b/${accountId}/validation/${scopedCallbackToken(TEST_CALLBACK_SECRET, 'c2b-validation', accountId)}`;
      await alterTestDatabase(url(), 'allow_connections false');
      try {
        await terminateBackends(url());
        const started = Date.now();
        const res = await a
          .http()
          .post(path)
          .send(confirmation(receipt(), 50, 'ANY'))
          .timeout(20_000);
        expect({ status: res.status, body: res.body }).toEqual({
          status: 200,
          body: { ResultCode: '0', ResultDesc: 'Accepted' },
        });
        // MPESA_C2B_VALIDATION_BUDGET_MS (default 3 s) and a margin, below Daraja's ~8 s.
        expect(Date.now() - started).toBeLessThan(5000);
        // A confirmation meanwhile is not acknowledged: Daraja sends it again.
        const conf = await a
          .http()
          .post(confirmationPath())
          .send(confirmation(receipt(), 50, 'ANY'));
        expect(conf.status).toBe(503);
        expect(conf.body.ResultCode).toBeUndefined();
      } finally {
        await alterTestDatabase(url(), 'allow_connections true');
      }
    },
    testTimeout(30_000),
  );
});
