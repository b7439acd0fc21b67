import { DarajaSimulator, startDarajaSimulator } from '@smartduka/daraja-simulator';
import { sql } from 'drizzle-orm';
import { mintToken } from '../src/auth/token';
import { SANDBOX_PASSKEY } from '../src/config/app-config';
import { API_START_BUDGET_MS, API_STOP_BUDGET_MS, ApiProcess, startApiProcess } from './helpers/api-process';
import { step, testTimeout, waitUntil } from './helpers/deadlines';
import { TEST_JWT_SECRET } from './helpers/test-app';
import { createTestDatabase, TestDatabase } from './helpers/test-db';

const rowsOf = <T>(res: unknown): T[] => (res as { rows: T[] }).rows;

/** Step budgets, ms on a quiet 2-core machine (scaled for a busy one): see helpers/deadlines.ts. */
const BUDGET = { orders: 20_000, pushes: 40_000, settle: 60_000 };

/** What a Daraja ResultCode means for the payment. */
const EXPECTED_STATUS: Record<number, string> = {
  0: 'completed',
  1032: 'cancelled',
  1037: 'expired',
  1: 'failed',
  2001: 'failed',
};

/**
 * Hundreds of payments per run through TWO API processes on one Postgres while the simulator
 * misbehaves (seeded, so a failure reproduces). Needs a real Postgres: skipped without DATABASE_URL.
 */
(process.env.DATABASE_URL ? describe : describe.skip)('faults at scale, two API processes on one Postgres', () => {
  let sim: DarajaSimulator;
  let database: TestDatabase;
  let apis: ApiProcess[] = [];
  const auth = `Bearer ${mintToken(TEST_JWT_SECRET, { sub: 'cashier-1', shopId: 'shop-1', role: 'cashier' })}`;
  const env = {
    RECONCILER_INTERVAL_MS: '250',
    RECONCILER_PENDING_GRACE_SECONDS: '1',
    RECONCILER_BACKOFF_BASE_SECONDS: '1',
    RECONCILER_BACKOFF_MAX_SECONDS: '2',
    RECONCILER_MAX_QUERIES: '60',
    RECONCILER_LEASE_SECONDS: '10',
    RECONCILER_INBOX_RETRY_AFTER_SECONDS: '2',
    MPESA_STATUS_QUERY_AFTER_SECONDS: '1',
    MPESA_UNRESOLVED_REVIEW_AFTER_SECONDS: '4',
    MPESA_HTTP_TIMEOUT_MS: '1500',
  };

  beforeAll(
    async () => {
      sim = await startDarajaSimulator({
        callbackDelayMs: 200,
        accounts: [{ shortcode: '174379', passkey: SANDBOX_PASSKEY, tillNumbers: ['174380'] }],
      });
      database = await createTestDatabase();
      apis = await Promise.all([0, 1].map(() => startApiProcess({ databaseUrl: database.url!, simUrl: sim.url, env })));
    },
    testTimeout(10_000, API_START_BUDGET_MS),
  );
  afterAll(async () => {
    // stop() fails (after SIGKILL) when a graceful shutdown hangs: that is a bug, not noise.
    await Promise.all(apis.map((a) => a.stop()));
    await sim.close();
    await database.dispose();
  }, testTimeout(API_STOP_BUDGET_MS));

  const db = () => database.handle.db;
  let phoneSeq = 0;
  /** a distinct ordinary (successful) number per payment */
  const freshPhone = () => `07${String(10_000_000 + ++phoneSeq).slice(-8)}`;

  async function createOrders(prefix: string, count: number): Promise<string[]> {
    const ids = Array.from({ length: count }, (_, i) => `${prefix}${i}`);
    let created = 0;
    await step(
      `create ${count} orders ${prefix}*`,
      BUDGET.orders,
      () =>
        runPool(ids, 8, async (id, i) => {
          const res = await apis[i % 2]
            .http()
            .post('/orders')
            .set('Authorization', auth)
            .send({ id, total: 100 + i });
          expect(res.status).toBe(201);
          created++;
        }),
      () => `${created}/${count} created`,
    );
    return ids;
  }

  /** Waits until no payment of `prefix` is open, saying how many still are when it gives up. */
  function allSettled(prefix: string, budgetMs: number, poll?: () => Promise<void>): Promise<true> {
    return waitUntil(
      `every ${prefix} payment to reach a final state`,
      budgetMs,
      async () => {
        await poll?.();
        return (await openCount(prefix)) === 0;
      },
      {
        intervalMs: 250,
        progress: async () => `${await openCount(prefix)} still open`,
        failIf: () => (apis.some((a) => a.child.exitCode !== null) ? 'an API process exited' : undefined),
      },
    );
  }

  async function openCount(prefix: string): Promise<number> {
    return rowsOf<{ n: number }>(
      await db().execute(
        sql`select count(*)::int as n from payments where order_id like ${prefix + '%'} and status in ('initiated','pending','unresolved')`,
      ),
    )[0].n;
  }

  async function paymentsOf(prefix: string) {
    return rowsOf<{
      id: string;
      order_id: string;
      status: string;
      status_reason: string | null;
      checkout_request_id: string | null;
      account_reference: string;
      completions: number;
      paid_at: string | null;
    }>(
      await db().execute(sql`
        select p.id, p.order_id, p.status, p.status_reason, p.checkout_request_id, p.account_reference, o.paid_at,
          (select count(*)::int from payment_events e where e.payment_id = p.id and e.to_status = 'completed') as completions
        from payments p join orders o on o.shop_id = p.shop_id and o.id = p.order_id
        where p.order_id like ${prefix + '%'} order by p.order_id`),
    );
  }

  /** Orders paid exactly once: at most one completed payment per order, paid_at set iff one is. */
  async function expectEachOrderPaidOnce(prefix: string): Promise<void> {
    const doubled = rowsOf(
      await db().execute(
        sql`select order_id from payments where order_id like ${prefix + '%'} and status = 'completed' group by order_id having count(*) > 1`,
      ),
    );
    expect(doubled).toEqual([]);
    for (const p of await paymentsOf(prefix)) {
      expect(p.completions).toBe(p.status === 'completed' ? 1 : 0);
      if (p.status === 'completed') expect(p.paid_at).not.toBeNull();
    }
  }

  it(
    'dropped, duplicated (across both instances) and late callbacks: every payment reaches its true final state, each order paid once',
    async () => {
      const N = 240;
      sim.setFaults({
        seed: 20261126,
        callbacks: {
          dropRate: 0.3,
          duplicateRate: 0.3,
          duplicateCopies: 3,
          duplicateGapMs: 0,
          delayRate: 0.25,
          delayMs: 2500,
        },
      });
      const orders = await createOrders('CB', N);
      const pushed: { paymentId: string; checkoutRequestId: string; merchantRequestId: string; orderId: string }[] = [];
      await step(
        `${N} pushes`,
        BUDGET.pushes,
        () =>
          runPool(orders, 8, async (orderId, i) => {
            // one in ten cancels, one in ten lacks funds; the rest pay
            const phoneNumber = i % 10 === 0 ? '254700000001' : i % 10 === 1 ? '254700000003' : freshPhone();
            const res = await apis[i % 2]
              .http()
              .post('/payments/stk-push')
              .set('Authorization', auth)
              .send({ orderId, amount: 100 + i, phoneNumber });
            expect(res.status).toBe(201);
            pushed.push({ ...res.body, orderId });
          }),
        () => `${pushed.length}/${N} pushed`,
      );

      // Meanwhile cashiers poll both instances, and every delivered callback is replayed to the other instance too.
      const replayed = new Set<string>();
      const polls = runPool(
        pushed.filter((_, i) => i % 3 === 0),
        4,
        async (p, i) => {
          for (let k = 0; k < 3; k++) {
            const r = await apis[(i + k) % 2]
              .http()
              .get('/payments/stk-status')
              // With the MerchantRequestID: two pushes answered in one millisecond to payers whose
              // numbers end alike share a masked id (409 without it), and 240 pushes make that likely.
              .query({ checkoutRequestId: p.checkoutRequestId, merchantRequestId: p.merchantRequestId })
              .set('Authorization', auth);
            expect(r.status).toBe(200);
          }
        },
      );
      await allSettled('CB', BUDGET.settle, async () => {
        const deliveries = sim.callbacks().filter((d) => d.copy === 1 && !replayed.has(d.checkoutRequestId));
        await Promise.all(
          deliveries.map(async (d) => {
            replayed.add(d.checkoutRequestId);
            const other = apis.find((a) => !d.url.startsWith(a.baseUrl)) ?? apis[0];
            const path = new URL(d.url).pathname;
            const res = await other
              .http()
              .post(path)
              .send(d.body as object);
            expect(res.status).toBe(200);
          }),
        );
      });
      await step('the status polls', BUDGET.pushes, () => polls);

      const stats = sim.stats();
      // The faults really happened.
      expect(stats.callbacksDropped).toBeGreaterThan(N * 0.15);
      expect(stats.callbacksDuplicated).toBeGreaterThan(N * 0.15);
      expect(stats.callbacksDelayed).toBeGreaterThan(N * 0.1);

      const rows = await paymentsOf('CB');
      expect(rows).toHaveLength(N);
      for (const p of rows) {
        const truth = sim.getPush(p.checkout_request_id!);
        expect(truth?.resultCode).toBeDefined();
        expect({ order: p.order_id, status: p.status }).toEqual({
          order: p.order_id,
          status: EXPECTED_STATUS[truth!.resultCode!],
        });
      }
      expect(rows.filter((p) => p.status === 'completed')).toHaveLength(N - 2 * (N / 10));
      await expectEachOrderPaidOnce('CB');
      // Every stored callback was processed (late ones as duplicates). The last deliveries (late
      // ones for payments already final) are applied after their answer, so they may still be in
      // an applier's queue, or left to the reconciler's replay: wait for them, within a budget.
      const unprocessed = async () =>
        rowsOf<{ n: number }>(
          await db().execute(sql`select count(*)::int as n from callback_inbox where processed_at is null`),
        )[0].n;
      await waitUntil('every stored callback to be processed', 15_000, async () => (await unprocessed()) === 0, {
        intervalMs: 250,
        progress: async () => `${await unprocessed()} stored callback(s) not processed`,
        failIf: () => (apis.some((a) => a.child.exitCode !== null) ? 'an API process exited' : undefined),
      });
    },
    testTimeout(BUDGET.orders, BUDGET.pushes, BUDGET.settle, BUDGET.pushes),
  );

  it(
    'push errors, spike arrests and timeouts: zero second prompts; unresolved payments are settled by their callback or parked in review',
    async () => {
      const N = 150;
      sim.reset();
      sim.setFaults({
        seed: 7,
        pushServerErrorRate: 0.15,
        pushSpikeArrestRate: 0.1,
        pushTimeouts: { processedRate: 0.15, unprocessedRate: 0.1, holdMs: 2500 },
      });
      const orders = await createOrders('PF', N);
      const answers = new Map<string, number>();
      await step(
        `${N} pushes`,
        BUDGET.pushes,
        () =>
          runPool(orders, 8, async (orderId, i) => {
            const res = await apis[i % 2]
              .http()
              .post('/payments/stk-push')
              .set('Authorization', auth)
              .send({ orderId, amount: 100 + i, phoneNumber: freshPhone() });
            answers.set(orderId, res.status);
            expect([201, 502, 503, 504]).toContain(res.status);
            expect(res.body.message ?? res.body.customerMessage).toEqual(expect.any(String));
          }),
        () => `${answers.size}/${N} answered`,
      );
      await allSettled('PF', BUDGET.settle);

      const injected = new Map<string, string>();
      for (const inj of sim.injections()) if (inj.accountReference) injected.set(inj.accountReference, inj.kind);
      const kinds = new Set(injected.values());
      for (const k of ['push_error', 'push_spike_arrest', 'push_timeout_processed', 'push_timeout_unprocessed'])
        expect(kinds).toContain(k);

      for (const p of await paymentsOf('PF')) {
        // Never a second prompt for the same payment, whatever went wrong. (A push refused for a
        // stale token — reset() dropped them — is re-sent once after a refresh: it prompted no one.)
        const prompts = sim.promptsFor({ accountReference: p.account_reference });
        expect(prompts.prompts).toBeLessThanOrEqual(1);
        expect(prompts.pushRequests).toBeLessThanOrEqual(2);
        const kind = injected.get(p.account_reference);
        if (kind === 'push_spike_arrest') {
          expect(p).toMatchObject({ status: 'failed', status_reason: 'PROVIDER_RATE_LIMITED' });
          expect(answers.get(p.order_id)).toBe(503);
        } else if (kind === 'push_timeout_processed') {
          // the prompt went out and the customer paid: the callback settles it
          expect(p.status).toBe('completed');
          expect(answers.get(p.order_id)).toBe(504);
        } else if (kind === 'push_timeout_unprocessed' || kind === 'push_error') {
          // no prompt, no id to query: after the window a person decides; the order is free again
          expect(p).toMatchObject({ status: 'review', status_reason: 'OUTCOME_UNKNOWN' });
          expect(sim.promptsFor({ accountReference: p.account_reference }).prompts).toBe(0);
        } else {
          expect(p.status).toBe('completed');
          expect(answers.get(p.order_id)).toBe(201);
          expect(prompts.prompts).toBe(1);
        }
      }
      await expectEachOrderPaidOnce('PF');
    },
    testTimeout(BUDGET.orders, BUDGET.pushes, BUDGET.settle),
  );

  it(
    'a token invalidated early costs one refresh shared by both instances, and every request succeeds',
    async () => {
      sim.reset();
      const orders = await createOrders('TK', 20);
      // warm both instances' token caches
      await step('warm both token caches', BUDGET.orders, () =>
        runPool(orders.slice(0, 2), 2, async (orderId, i) => {
          expect(
            (
              await apis[i % 2]
                .http()
                .post('/payments/stk-push')
                .set('Authorization', auth)
                .send({ orderId, amount: 100 + i, phoneNumber: freshPhone() })
            ).status,
          ).toBe(201);
        }),
      );
      const before = sim.stats().oauthRequests;
      sim.setFaults({ invalidateTokens: true });
      let done = 0;
      await step(
        '18 pushes after the tokens were invalidated',
        BUDGET.pushes,
        () =>
          runPool(orders.slice(2), 18, async (orderId, i) => {
            const res = await apis[i % 2]
              .http()
              .post('/payments/stk-push')
              .set('Authorization', auth)
              .send({ orderId, amount: 102 + i, phoneNumber: freshPhone() });
            expect(res.status).toBe(201);
            done++;
          }),
        () => `${done}/18 answered; OAuth calls since the invalidation: ${sim.stats().oauthRequests - before}`,
      );
      expect(sim.stats().oauthRequests - before).toBe(1);
    },
    testTimeout(BUDGET.orders, BUDGET.orders, BUDGET.pushes),
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
