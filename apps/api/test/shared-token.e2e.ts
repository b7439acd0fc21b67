import { sql } from 'drizzle-orm';
import type { Response } from 'supertest';
import { step, testTimeout } from './helpers/deadlines';
import { ExtraTestApp, startExtraTestApp, startTestApp, TestApp } from './helpers/test-app';

function unexpectedFailures(responses: Response[]) {
  return responses.filter((r) => r.status !== 201).map((r) => ({ status: r.status, body: r.body }));
}

/** The customer never answers (simulator magic number): no callbacks, which this test does not need. */
const SILENT_PHONE = '254700000007';

/** Step budgets (ms on a quiet 2-core machine: each step takes well under a fifth of its budget there). */
const BUDGET = { start: 20_000, orders: 20_000, pushes: 25_000 };

/**
 * Two API instances on one database and one Daraja (simulator): the OAuth token is shared
 * through provider_tokens and refreshed under an advisory lock, so concurrent pushes on both
 * instances cause ONE OAuth call per token lifetime (daraja.md §1.3).
 *
 * Everything here runs in one jest worker (two Nest apps, the simulator, 200 HTTP requests): the
 * test is CPU-bound, so on a busy machine it is slow, never stuck. Each step has its own
 * (load-scaled) deadline and says what it was still waiting for.
 */
describe('Daraja OAuth token shared across instances', () => {
  let a: TestApp;
  let b: ExtraTestApp;
  let auth: string;

  beforeAll(
    async () => {
      // 50 concurrent pushes on a busy CI box: a generous HTTP timeout keeps a slow push from
      // turning into an 'unknown outcome' 502 that has nothing to do with tokens.
      const env = { MPESA_HTTP_TIMEOUT_MS: '10000' };
      a = await step('start instance A', BUDGET.start, () => startTestApp({ env }));
      b = await step('start instance B', BUDGET.start, () => startExtraTestApp(a, env));
      auth = `Bearer ${a.token()}`;
    },
    testTimeout(BUDGET.start, BUDGET.start),
  );
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  const apps = () => [a.http, b.http];

  async function createOrders(prefix: string, n: number) {
    let created = 0;
    await step(
      `create ${n} orders ${prefix}-*`,
      BUDGET.orders,
      () =>
        runPool(
          Array.from({ length: n }, (_, i) => i),
          8,
          async (i) => {
            const res = await apps()
              [i % 2]()
              .post('/orders')
              .set('Authorization', auth)
              .send({ id: `${prefix}-${i}`, total: 10 + i });
            expect(res.status).toBe(201);
            created++;
          },
        ),
      () => `${created}/${n} orders created`,
    );
  }

  async function pushAll(prefix: string, n: number) {
    let answered = 0;
    return step(
      `${n} concurrent pushes ${prefix}-*`,
      BUDGET.pushes,
      () =>
        Promise.all(
          Array.from({ length: n }, (_, i) =>
            apps()
              [i % 2]()
              .post('/payments/stk-push')
              .set('Authorization', auth)
              .send({ phoneNumber: SILENT_PHONE, amount: 10 + i, orderId: `${prefix}-${i}` })
              .then((r) => {
                answered++;
                return r;
              }),
          ),
        ),
      () =>
        `${answered}/${n} answered; simulator saw ${JSON.stringify({ oauth: a.sim.stats().oauthRequests, pushes: a.sim.stats().pushRequests })}`,
    );
  }

  async function storedTokens(): Promise<Array<{ key: string; token: string }>> {
    const res = await a.db.execute(sql`select key, token from provider_tokens`);
    return (
      (res as unknown as { rows?: Array<{ key: string; token: string }> }).rows ??
      (res as unknown as Array<{ key: string; token: string }>)
    ).map((r) => ({ ...r }));
  }

  it(
    '50 concurrent pushes across two instances cause one OAuth call; an invalidated token one more',
    async () => {
      await createOrders('W1', 50);
      await createOrders('W2', 50);
      expect(a.sim.stats().oauthRequests).toBe(0);

      const first = await pushAll('W1', 50);
      expect(unexpectedFailures(first)).toEqual([]);
      expect(a.sim.stats().oauthRequests).toBe(1);
      expect(a.sim.stats().pushRequests).toBe(50);

      const rows = await storedTokens();
      expect(rows).toHaveLength(1);
      // The key identifies the app by base URL + sha256(consumer key): no secret, no raw key.
      expect(rows[0].key).toMatch(/^http:\/\/127\.0\.0\.1:\d+\|[0-9a-f]{64}$/);
      expect(rows[0].key).not.toContain('smartduka-sim-secret');
      expect(rows[0].key).not.toContain('smartduka-sim-key');
      const firstToken = rows[0].token;

      // Daraja drops every issued token: both instances see 404.001.03, one of them refreshes.
      a.sim.setFaults({ invalidateTokens: true });
      const second = await pushAll('W2', 50);
      expect(unexpectedFailures(second)).toEqual([]);
      expect(a.sim.stats().oauthRequests).toBe(2);

      const after = await storedTokens();
      expect(after).toHaveLength(1);
      expect(after[0].token).not.toBe(firstToken);
    },
    testTimeout(BUDGET.orders, BUDGET.orders, BUDGET.pushes, BUDGET.pushes),
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
