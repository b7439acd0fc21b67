import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { eq } from 'drizzle-orm';
import { DatabaseHandle, openDatabase, pgliteDirFor } from '../src/database/database';
import { orders, payments } from '../src/database/schema';
import { phoneHash } from '../src/payments/phone-hash';
import { timeKeyOf } from '../src/reconciliation/statement-row';
import { TEST_CALLBACK_SECRET, TEST_JWT_SECRET } from './helpers/test-app';
import { createTestDatabase, TestDatabase } from './helpers/test-db';

/**
 * `pnpm statement` (src/cli/statement.ts) builds the payment core by hand, outside the app: it
 * must settle a payment the way POST /reconciliation/statements does. Against the test database
 * on DATABASE_URL, else an embedded PGlite in a temporary DATA_DIR (closed while the CLI runs).
 */

const API_DIR = resolve(__dirname, '..');

function runCli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const base = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !['DATABASE_URL', 'DATA_DIR', 'NODE_OPTIONS'].includes(k)),
    ) as Record<string, string>;
    const child = spawn(process.execPath, ['-r', '@swc-node/register', 'src/cli/statement.ts', ...args], {
      cwd: API_DIR,
      env: {
        ...base,
        NODE_ENV: 'test',
        LOG_LEVEL: 'silent',
        JWT_SECRET: TEST_JWT_SECRET,
        CALLBACK_SIGNING_SECRET: TEST_CALLBACK_SECRET,
        INIT_CWD: API_DIR,
        ...env,
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', fail);
    child.once('exit', (code) => done({ code, stdout, stderr }));
  });
}

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
