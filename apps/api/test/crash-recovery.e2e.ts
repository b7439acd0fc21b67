import { DarajaSimulator, startDarajaSimulator } from '@smartduka/daraja-simulator';
import { sql } from 'drizzle-orm';
import { Agent, request as httpRequest } from 'node:http';
import { mintToken } from '../src/auth/token';
import { SANDBOX_PASSKEY } from '../src/config/app-config';
import { callbackToken } from '../src/payments/providers/mpesa/callback-token';
import { API_START_BUDGET_MS, ApiProcess, startApiProcess } from './helpers/api-process';
import { successCallback } from './helpers/callbacks';
import { step, testTimeout, waitUntil } from './helpers/deadlines';
import { fullCheckoutRequestId, TEST_CALLBACK_SECRET, TEST_JWT_SECRET } from './helpers/test-app';
import { createTestDatabase, TestDatabase } from './helpers/test-db';

const PAYMENTS = 300;
const KILL_AFTER_ACCEPTED = 90;
/** Step budgets, ms on a quiet 2-core machine (scaled for a busy one): see helpers/deadlines.ts. */
const BUDGET = { open: 60_000, burst: 40_000, replay: 30_000 };

const rowsOf = <T>(res: unknown): T[] => (res as { rows: T[] }).rows;

/**
 * The API is SIGKILLed in the middle of a burst of callbacks. After a restart, every callback that
 * got an "Accepted" reply is in the database and processed, and nothing is half-applied.
 * Needs a real Postgres (two processes share it): skipped without DATABASE_URL.
 */
(process.env.DATABASE_URL ? describe : describe.skip)('SIGKILL in the middle of a callback burst', () => {
  let sim: DarajaSimulator;
  let database: TestDatabase;
  let api: ApiProcess | undefined;
  const auth = `Bearer ${mintToken(TEST_JWT_SECRET, { sub: 'cashier-1', shopId: 'shop-1', role: 'cashier' })}`;
  const env = {
    // the restarted instance finishes what the killed one stored but did not process
    RECONCILER_INTERVAL_MS: '200',
    RECONCILER_INBOX_RETRY_AFTER_SECONDS: '1',
    RECONCILER_LEASE_SECONDS: '5',
    // customers never answer (254700000007) so only our callbacks settle payments
    RECONCILER_PENDING_GRACE_SECONDS: '3600',
  };

  beforeAll(async () => {
    sim = await startDarajaSimulator({
      accounts: [{ shortcode: '174379', passkey: SANDBOX_PASSKEY, tillNumbers: ['174380'] }],
    });
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await api?.kill();
    await sim.close();
    await database.dispose();
  });

  it(
    'keeps every accepted callback and applies each exactly once after a restart',
    async () => {
      api = await startApiProcess({ databaseUrl: database.url!, simUrl: sim.url, env });
      const port = api.port;

      // PAYMENTS pending payments, one per order.
      const pending: { paymentId: string; checkoutRequestId: string; merchantRequestId: string; orderId: string }[] =
        [];
      let opened = 0;
      await step(
        `open ${PAYMENTS} payments`,
        BUDGET.open,
        () =>
          runPool(
            Array.from({ length: PAYMENTS }, (_, i) => i),
            6,
            async (i) => {
              const orderId = `CRASH-${i}`;
              expect(
                (
                  await api!
                    .http()
                    .post('/orders')
                    .set('Authorization', auth)
                    .send({ id: orderId, total: 10 + i })
                ).status,
              ).toBe(201);
              const res = await api!
                .http()
                .post('/payments/stk-push')
                .set('Authorization', auth)
                .send({ orderId, amount: 10 + i, phoneNumber: '254700000007' });
              expect(res.status).toBe(201);
              pending[i] = { ...res.body, checkoutRequestId: fullCheckoutRequestId(sim, res.body), orderId };
              opened++;
            },
          ),
        () => `${opened}/${PAYMENTS} payments opened`,
      );

      // The burst: 64 connections of Daraja callbacks; SIGKILL once KILL_AFTER_ACCEPTED were accepted.
      const agent = new Agent({ keepAlive: true, maxSockets: 64 });
      const accepted = new Set<string>();
      let killed: Promise<void> | undefined;
      const send = async (p: (typeof pending)[number], i: number) => {
        const body = JSON.stringify(
          successCallback(p.merchantRequestId, p.checkoutRequestId, 10 + i, `RKL${String(i).padStart(7, '0')}`),
        );
        try {
          const res = await fetchWithAgent(
            `http://127.0.0.1:${port}/payments/callback/${p.paymentId}/${callbackToken(TEST_CALLBACK_SECRET, p.paymentId)}`,
            body,
            agent,
          );
          if (res.status === 200 && JSON.parse(res.body).ResultDesc === 'Accepted') accepted.add(p.paymentId);
        } catch {
          // connection cut by the kill: Daraja would treat it as not delivered
        }
        if (accepted.size >= KILL_AFTER_ACCEPTED && !killed) killed = api!.kill();
      };
      let next = 0;
      await step(
        'the callback burst until the SIGKILL',
        BUDGET.burst,
        async () => {
          await Promise.all(
            Array.from({ length: 64 }, async () => {
              while (next < pending.length) {
                const i = next++;
                await send(pending[i], i);
              }
            }),
          );
          await killed;
        },
        () => `${accepted.size} accepted of ${next} sent, kill ${killed ? 'sent' : 'not sent yet'}`,
      );
      agent.destroy();
      expect(api.child.signalCode).toBe('SIGKILL');
      expect(accepted.size).toBeGreaterThanOrEqual(KILL_AFTER_ACCEPTED);
      expect(accepted.size).toBeLessThan(PAYMENTS); // the kill really landed mid-burst

      // Every accepted callback was durable before its reply.
      const stored = rowsOf<{ url_payment_id: string }>(
        await database.handle.db.execute(sql`select distinct url_payment_id from callback_inbox`),
      );
      const storedIds = new Set(stored.map((r) => r.url_payment_id));
      for (const id of accepted) expect(storedIds.has(id)).toBe(true);

      // Restart on the same port; the reconciler finishes anything stored but not processed.
      api = await startApiProcess({ databaseUrl: database.url!, simUrl: sim.url, env, port });
      const unprocessed = async () =>
        rowsOf<{ n: number }>(
          await database.handle.db.execute(
            sql`select count(*)::int as n from callback_inbox where processed_at is null`,
          ),
        )[0].n;
      await waitUntil(
        'the restarted instance to process every stored callback',
        BUDGET.replay,
        async () => (await unprocessed()) === 0,
        {
          intervalMs: 200,
          progress: async () => `${await unprocessed()} stored callbacks still unprocessed`,
          failIf: () => (api!.child.exitCode !== null ? `the restarted API exited:\n${api!.output()}` : undefined),
        },
      );

      // Every accepted callback's payment is completed; nothing is half-applied anywhere.
      const payments = rowsOf<{
        id: string;
        order_id: string;
        status: string;
        mpesa_receipt_number: string | null;
        completions: number;
        paid_at: string | null;
      }>(
        await database.handle.db.execute(sql`
        select p.id, p.order_id, p.status, p.mpesa_receipt_number, o.paid_at,
          (select count(*)::int from payment_events e where e.payment_id = p.id and e.to_status = 'completed') as completions
        from payments p join orders o on o.shop_id = p.shop_id and o.id = p.order_id`),
      );
      expect(payments).toHaveLength(PAYMENTS);
      for (const p of payments) {
        if (accepted.has(p.id)) expect(p.status).toBe('completed');
        if (p.status === 'completed') {
          expect(p.completions).toBe(1);
          expect(p.mpesa_receipt_number).toMatch(/^RKL\d{7}$/);
          expect(p.paid_at).not.toBeNull();
        } else {
          expect(p.status).toBe('pending');
          expect(p.completions).toBe(0);
          expect(p.paid_at).toBeNull();
        }
      }
    },
    testTimeout(API_START_BUDGET_MS, BUDGET.open, BUDGET.burst, API_START_BUDGET_MS, BUDGET.replay),
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

/** A raw POST through a keep-alive agent (supertest opens a connection per request). */
function fetchWithAgent(url: string, body: string, agent: Agent): Promise<{ status: number; body: string }> {
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
