import { RateLimitService } from '../src/rate-limit/rate-limit.service';
import { countSql, isListenConnection } from './helpers/sql-count';
import { startTestApp, TestApp } from './helpers/test-app';

/**
 * What one STK push costs the database (issue 13: at most 6 SQL statements, BEGIN and COMMIT
 * included, and at most 3 commits), counted on pg's Client.prototype.query while the real app
 * serves POST /payments/stk-push under the production rate limits on the shared Postgres store,
 * with an Idempotency-Key (the most expensive form). The OAuth token and the shop's account are
 * warmed by a first push, as in steady state. A change that adds a statement to the push path
 * fails here, naming the statements.
 */
const onPostgres = Boolean(process.env.DATABASE_URL);
(onPostgres ? describe : describe.skip)('STK push: SQL statements and commits per push (Postgres)', () => {
  const MAX_STATEMENTS = 6;
  const MAX_COMMITS = 3;
  let t: TestApp;
  let auth: string;
  let counter: ReturnType<typeof countSql>;
  let n = 0;

  beforeAll(async () => {
    t = await startTestApp({
      env: {
        // production's limits (config defaults outside NODE_ENV=test), counted in Postgres ('auto' on Postgres)
        RATE_LIMIT_SHOP_PER_MINUTE: '120',
        RATE_LIMIT_PHONE_PER_WINDOW: '1',
        RATE_LIMIT_PHONE_WINDOW_SECONDS: '30',
        // nothing else talks to the database meanwhile
        RECONCILER_ENABLED: 'false',
      },
      sim: { callbackDelayMs: 600_000 },
    });
    expect(t.app.get(RateLimitService).store).toBe('postgres');
    auth = `Bearer ${t.token('shop-cost')}`;
    counter = countSql(isListenConnection);
  });
  afterAll(async () => {
    counter?.stop();
    await t?.close();
  });

  async function order(total: number): Promise<string> {
    const id = `COST-${++n}`;
    const res = await t.http().post('/orders').set('Authorization', auth).send({ id, total });
    expect(res.status).toBe(201);
    return id;
  }

  /** The statements one request sends, from its start to its answer (and a moment after, for anything it left running). */
  async function cost(send: () => Promise<{ status: number }>, status: number) {
    await new Promise((r) => setTimeout(r, 20));
    counter.reset();
    const res = await send();
    expect(res.status).toBe(status);
    await new Promise((r) => setTimeout(r, 50));
    const seen = { statements: counter.statements, commits: counter.commits, byText: [...counter.byText] };
    counter.reset();
    return seen;
  }

  const push = (orderId: string, amount: number, phone: string, key?: string) => () => {
    const req = t.http().post('/payments/stk-push').set('Authorization', auth);
    if (key) req.set('Idempotency-Key', key);
    return req.send({ phoneNumber: phone, amount, orderId });
  };

  it(`a push with an Idempotency-Key: at most ${MAX_STATEMENTS} statements and ${MAX_COMMITS} commits`, async () => {
    // warm: the OAuth token and the shop's account are fetched once, then cached
    await cost(push(await order(10), 10, '0711000001', 'cost-warm'), 201);
    for (let i = 2; i <= 4; i++) {
      const orderId = await order(100);
      const c = await cost(push(orderId, 40, `071100000${i}`, `cost-${orderId}`), 201);
      const detail = JSON.stringify(c.byText, null, 1);
      // It really counted the push: the key lookup, the limits, the payment, Daraja's answer.
      expect(c.statements).toBeGreaterThanOrEqual(4);
      if (c.statements > MAX_STATEMENTS || c.commits > MAX_COMMITS)
        throw new Error(`push ${i}: ${c.statements} statements, ${c.commits} commits:\n${detail}`);
      expect(c.statements).toBeLessThanOrEqual(MAX_STATEMENTS);
      expect(c.commits).toBeLessThanOrEqual(MAX_COMMITS);
      // The key is read once (the rate limiter's read is handed to the service).
      const keyReads = c.byText.filter(([text]) => /from "idempotency_keys"/.test(text) && /^select/i.test(text));
      expect(keyReads.reduce((a, [, k]) => a + k, 0)).toBe(1);
    }
  });

  it('a push without a key costs no more; a replay of a stored answer is one read and no commit', async () => {
    const orderId = await order(100);
    const plain = await cost(push(orderId, 40, '0711000011'), 201);
    expect(plain.statements).toBeGreaterThanOrEqual(3);
    expect(plain.statements).toBeLessThanOrEqual(MAX_STATEMENTS);
    expect(plain.commits).toBeLessThanOrEqual(MAX_COMMITS);

    const keyed = await order(100);
    await cost(push(keyed, 40, '0711000012', `replay-${keyed}`), 201);
    // a replay answers what the first answered (201), marked Idempotent-Replayed
    const replay = await cost(push(keyed, 40, '0711000012', `replay-${keyed}`), 201);
    expect({ statements: replay.statements, commits: replay.commits }).toEqual({ statements: 1, commits: 0 });
  });

  it('a push the order refuses (more than it owes): the order is checked in the write itself, nothing is kept', async () => {
    const orderId = await order(50);
    const c = await cost(push(orderId, 60, '0711000021', `over-${orderId}`), 400);
    // key lookup, both limits, the refused write, and the two limit points given back
    expect(c.statements).toBeLessThanOrEqual(5);
    expect(c.commits).toBeLessThanOrEqual(4);
    const accepted = await cost(push(orderId, 50, '0711000021', `over-${orderId}-2`), 201);
    expect(accepted.statements).toBeLessThanOrEqual(MAX_STATEMENTS);
  });
});
