import { sql } from 'drizzle-orm';
import { randomBytes } from 'node:crypto';
import { startTestApp, TestApp } from './test-app';
import { recordSecrets } from '../log-scan/sink';

/** Shared set-up of the C2B tests (c2b.e2e.ts, c2b-claims.e2e.ts): two shops with their own M-Pesa accounts. */
export const PAYBILL = '600411';
export const STORE = '600422';
export const TILL = '5223456';
export const PAYER = '254712345678';

export interface C2bTestContext {
  t: TestApp;
  /** shop-a: paybill PAYBILL; shop-b: till TILL under store STORE */
  accountA: string;
  accountB: string;
  /** shop-a's paybill passkey (a test that rotates the account's credentials sends it again) */
  passkeyA: string;
  /** the app's CREDENTIALS_KEYS (for another instance or a command on the same database) */
  credentialsKeys: string;
  mgr(shop: string): string;
  cashier(shop: string, sub?: string): string;
  query<T = Record<string, unknown>>(q: ReturnType<typeof sql>): Promise<T[]>;
  order(shop: string, id: string, total: number): Promise<void>;
  register(shop: string, body?: Record<string, unknown>): ReturnType<ReturnType<TestApp['http']>['post']>;
  c2bRow(transId: string): Promise<Record<string, unknown>>;
  paymentsWithReceipt(
    transId: string,
  ): Promise<{ id: string; status: string; status_reason: string | null; order_id: string; amount_minor: string }[]>;
  counts(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

export async function startC2bTestApp(
  options: { registered?: boolean; env?: Record<string, string> } = {},
): Promise<C2bTestContext> {
  const k1 = randomBytes(32).toString('base64');
  const passkeyA = randomBytes(32).toString('hex');
  const passkeyB = randomBytes(32).toString('hex');
  const t = await startTestApp({
    env: { CREDENTIALS_KEYS: `k1:${k1}`, RATE_LIMIT_PHONE_WINDOW_SECONDS: '1', ...options.env },
    sim: {
      accounts: [
        { shortcode: PAYBILL, passkey: passkeyA },
        { shortcode: STORE, passkey: passkeyB, tillNumbers: [TILL] },
      ],
    },
  });
  recordSecrets([
    { kind: 'passkey', value: passkeyA, pair: PAYBILL },
    { kind: 'passkey', value: passkeyB, pair: STORE },
  ]);
  const mgr = (shop: string) => `Bearer ${t.token(shop, 'manager', `mgr-${shop}`)}`;
  const cashier = (shop: string, sub = `cashier-${shop}`) => `Bearer ${t.token(shop, 'cashier', sub)}`;
  const query = async <T = Record<string, unknown>>(q: ReturnType<typeof sql>): Promise<T[]> =>
    ((await t.db.execute(q)) as unknown as { rows: T[] }).rows;
  const put = async (shop: string, body: Record<string, unknown>): Promise<string> => {
    const res = await t
      .http()
      .put(`/shops/${shop}/merchant-accounts/mpesa`)
      .set('Authorization', mgr(shop))
      .send({
        environment: 'simulator',
        consumerKey: 'smartduka-sim-key',
        consumerSecret: 'smartduka-sim-secret',
        ...body,
      });
    if (res.status !== 200) throw new Error(`PUT account ${shop}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.accountId;
  };
  const accountA = await put('shop-a', { type: 'paybill', shortcode: PAYBILL, passkey: passkeyA });
  const accountB = await put('shop-b', { type: 'till', shortcode: STORE, tillNumber: TILL, passkey: passkeyB });
  const register = (shop: string, body: Record<string, unknown> = {}) =>
    t.http().post(`/shops/${shop}/c2b-registration`).set('Authorization', mgr(shop)).send(body);
  if (options.registered)
    for (const shop of ['shop-a', 'shop-b'])
      if ((await register(shop)).status !== 200) throw new Error(`C2B registration of ${shop} failed`);
  return {
    t,
    accountA,
    accountB,
    passkeyA,
    credentialsKeys: `k1:${k1}`,
    mgr,
    cashier,
    query,
    register,
    async order(shop, id, total) {
      const res = await t.http().post('/orders').set('Authorization', cashier(shop)).send({ id, total });
      if (res.status !== 201) throw new Error(`order ${id}: ${res.status}`);
    },
    async c2bRow(transId) {
      return (await query<Record<string, unknown>>(sql`select * from c2b_transactions where trans_id = ${transId}`))[0];
    },
    paymentsWithReceipt: (transId) =>
      query(
        sql`select id, status, status_reason, order_id, amount_minor::text from payments where mpesa_receipt_number = ${transId}`,
      ),
    async counts() {
      return (
        await query<Record<string, number>>(sql`select
          (select count(*) from payments)::int as payments,
          (select count(*) from c2b_transactions)::int as c2b,
          (select coalesce(sum(deliveries), 0) from c2b_transactions)::int as deliveries,
          (select count(*) from orders where paid_at is not null)::int as paid_orders`)
      )[0];
    },
    close: () => t.close(),
  };
}
