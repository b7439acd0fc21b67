import { sql } from 'drizzle-orm';
import { Client } from 'pg';
import { scopedCallbackToken } from '../src/payments/providers/mpesa/callback-token';
import { C2bTestContext, PAYBILL, startC2bTestApp } from './helpers/c2b';
import { TEST_CALLBACK_SECRET, TestApp } from './helpers/test-app';

const BUDGET_MS = 800;

/**
 * C2B under operator faults, through HTTP on a real Postgres: slow or locked tables during
 * validation (Daraja gives up after about 8 s; we must answer within MPESA_C2B_VALIDATION_BUDGET_MS).
 * Process kills and dropped connections: c2b-crash.e2e.ts.
 */
(process.env.DATABASE_URL ? describe : describe.skip)('C2B under database faults', () => {
  let c: C2bTestContext;
  let t: TestApp;

  beforeAll(async () => {
    c = await startC2bTestApp({ env: { MPESA_C2B_VALIDATION_BUDGET_MS: String(BUDGET_MS) } });
    t = c.t;
    expect((await c.register('shop-a', { validation: true })).status).toBe(200);
  });
  afterAll(() => c.close());

  const validationUrl = () =>
    `/payments/c2b/${c.accountA}/validation/${scopedCallbackToken(TEST_CALLBACK_SECRET, 'c2b-validation', c.accountA)}`;
  const body = (ref: string, amount = '50') => ({
    TransactionType: 'Pay Bill',
    TransID: 'VALSLOW001',
    TransTime: '20261204101010',
    TransAmount: amount,
    BusinessShortCode: PAYBILL,
    BillRefNumber: ref,
    MSISDN: '254712345678',
    FirstName: 'Jane',
  });

  /** Another session holds `lock` until the returned function is called. */
  async function holdLock(lock: string): Promise<() => Promise<void>> {
    const other = new Client({ connectionString: t.database.url });
    await other.connect();
    await other.query('begin');
    await other.query(lock);
    return async () => {
      await other.query('rollback');
      await other.end();
    };
  }

  it.each([
    ['the merchant account lookup', 'VS-1', 'lock table merchant_accounts in access exclusive mode'],
    ['the registration lookup', 'VS-2', 'lock table c2b_registrations in access exclusive mode'],
    ['the order lookup', 'VS-3', 'lock table orders in access exclusive mode'],
  ])(
    'validation answers within its budget when %s is stuck behind a lock (accepted: undecided)',
    async (_what, orderId, lock) => {
      await c.order('shop-a', orderId, 100);
      const release = await holdLock(lock);
      try {
        const started = Date.now();
        const res = await t.http().post(validationUrl()).send(body(orderId)).timeout(20_000);
        const took = Date.now() - started;
        expect({ status: res.status, body: res.body }).toEqual({
          status: 200,
          body: { ResultCode: '0', ResultDesc: 'Accepted' },
        });
        // The budget and a margin for a loaded machine, far below Daraja's ~8 s.
        expect(took).toBeLessThan(BUDGET_MS + 2000);
      } finally {
        await release();
      }
    },
  );

  it('a forged validation URL is still 404 at once while the account table is locked', async () => {
    const release = await holdLock('lock table merchant_accounts in access exclusive mode');
    try {
      const res = await t
        .http()
        .post(`/payments/c2b/${c.accountA}/validation/${'a'.repeat(64)}`)
        .send(body('X'));
      expect(res.status).toBe(404);
    } finally {
      await release();
    }
    expect(await c.query(sql`select 1 from c2b_transactions where trans_id = 'VALSLOW001'`)).toEqual([]);
  });
});
