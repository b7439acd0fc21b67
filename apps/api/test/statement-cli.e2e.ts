import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import { DatabaseHandle, openDatabase, pgliteDirFor } from '../src/database/database';
import { orders, payments } from '../src/database/schema';
import { phoneHash } from '../src/payments/phone-hash';
import { timeKeyOf } from '../src/reconciliation/statement-row';
import { runCli as runCliScript } from './helpers/cli';
import { TEST_CALLBACK_SECRET } from './helpers/test-app';
import { createTestDatabase, TestDatabase } from './helpers/test-db';

/**
 * `pnpm statement` (src/cli/statement.ts) builds the payment core by hand, outside the app: it
 * must settle a payment the way POST /reconciliation/statements does. Against the test database
 * on DATABASE_URL, else an embedded PGlite in a temporary DATA_DIR (closed while the CLI runs).
 */

const runCli = (args: string[], env: Record<string, string>) => runCliScript('statement.ts', args, env);

const nairobi = (d: Date) => {
  const k = timeKeyOf(d);
  return `${k.slice(0, 4)}-${k.slice(4, 6)}-${k.slice(6, 8)} ${k.slice(8, 10)}:${k.slice(10, 12)}:${k.slice(12, 14)}`;
};

describe('the statement CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sd-statement-cli-'));
  let postgres: TestDatabase | undefined;
  let env: Record<string, string>;
  let open: () => Promise<DatabaseHandle>;

  beforeAll(async () => {
    if (process.env.DATABASE_URL) {
      postgres = await createTestDatabase();
      env = { DATABASE_URL: postgres.url! };
      open = async () => postgres!.handle;
    } else {
      env = { DATA_DIR: dir };
      open = () => openDatabase({ pgliteDir: pgliteDirFor(dir) });
    }
  });
  afterAll(async () => {
    await postgres?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('settles the payment whose outcome was unknown that one statement row fits, and pays its order', async () => {
    const paymentId = randomUUID();
    const createdAt = new Date(Date.now() - 120_000);
    let db = await open();
    await db.migrate();
    await db.db.insert(orders).values({ shopId: 'shop-cli', id: 'ORD-CLI-1', totalMinor: 10_000n, currency: 'KES' });
    await db.db.insert(payments).values({
      id: paymentId,
      shopId: 'shop-cli',
      orderId: 'ORD-CLI-1',
      amountMinor: 10_000n,
      currency: 'KES',
      provider: 'mpesa',
      status: 'review',
      statusReason: 'OUTCOME_UNKNOWN',
      createdBy: 'test',
      phoneMasked: '2547******07',
      phoneHash: phoneHash(TEST_CALLBACK_SECRET, '254700000007'),
      accountReference: 'ORDCLI1',
      transactionDesc: 'POS payment',
      createdAt,
    });
    if (!postgres) await db.close();

    const file = join(dir, 'statement.csv');
    writeFileSync(
      file,
      [
        'Receipt No.,Completion Time,Details,Transaction Status,Paid In',
        `RCCLI00001,${nairobi(new Date(createdAt.getTime() + 45_000))},"Pay Bill from 254700000007 - JOHN DOE Acc. ORD-CLI-1",Completed,100.00`,
      ].join('\n'),
    );
    const run = await runCli(['--shop', 'shop-cli', '--file', file, '--json'], env);
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
    const report = JSON.parse(run.stdout);
    expect(report.settledFromStatement).toEqual({
      count: 1,
      items: [
        expect.objectContaining({
          receipt: 'RCCLI00001',
          paymentId,
          orderId: 'ORD-CLI-1',
          status: 'completed',
          statusReason: 'PAID',
        }),
      ],
    });
    expect(run.stdout).not.toMatch(/254700000007|JOHN/);

    db = await open();
    try {
      expect((await db.db.select().from(payments).where(eq(payments.id, paymentId)))[0]).toMatchObject({
        status: 'completed',
        statusReason: 'PAID',
        mpesaReceiptNumber: 'RCCLI00001',
      });
      expect((await db.db.select().from(orders).where(eq(orders.id, 'ORD-CLI-1')))[0].paidAt).toBeInstanceOf(Date);
    } finally {
      if (!postgres) await db.close();
    }
  }, 60_000);

  it('with --shortcode, a statement of another shortcode settles nothing of the platform account', async () => {
    const paymentId = randomUUID();
    const createdAt = new Date(Date.now() - 120_000);
    let db = await open();
    await db.migrate();
    await db.db.insert(orders).values({ shopId: 'shop-cli', id: 'ORD-CLI-2', totalMinor: 10_000n, currency: 'KES' });
    await db.db.insert(payments).values({
      id: paymentId,
      shopId: 'shop-cli',
      orderId: 'ORD-CLI-2',
      amountMinor: 10_000n,
      currency: 'KES',
      provider: 'mpesa',
      status: 'review',
      statusReason: 'OUTCOME_UNKNOWN',
      createdBy: 'test',
      phoneMasked: '2547******08',
      phoneHash: phoneHash(TEST_CALLBACK_SECRET, '254700000008'),
      accountReference: 'ORDCLI2',
      transactionDesc: 'POS payment',
      createdAt,
    });
    if (!postgres) await db.close();
    const file = join(dir, 'statement-2.csv');
    writeFileSync(
      file,
      [
        'Receipt No.,Completion Time,Details,Transaction Status,Paid In',
        `RCCLI00002,${nairobi(new Date(createdAt.getTime() + 45_000))},"Pay Bill from 254700000008 - JANE DOE",Completed,100.00`,
      ].join('\n'),
    );
    const bad = await runCli(['--shop', 'shop-cli', '--file', file, '--shortcode', '12'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--shortcode must be/);
    // 600999 is not the platform's shortcode (174379): the platform-account payment is not its to settle.
    const run = await runCli(['--shop', 'shop-cli', '--file', file, '--json', '--shortcode', '600999'], env);
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(run.stdout).settledFromStatement.count).toBe(0);
    db = await open();
    try {
      expect((await db.db.select().from(payments).where(eq(payments.id, paymentId)))[0].status).toBe('review');
    } finally {
      if (!postgres) await db.close();
    }
  }, 60_000);
});
