/**
 * Statement matching end to end: the real app over HTTP, a real database (Postgres via
 * DATABASE_URL, else PGlite). Ledger fixtures are inserted directly (setup only); the statement is
 * uploaded as a raw text/csv body. Timing is measured by bench/statement.bench.ts, not here.
 *
 * shop-1 ledger                                   statement (shop-1 upload)
 *   RCM0000001 completed 100.00                     line 2  RCM0000001 100.00            → matched
 *   RCM0000002 completed 250.00                     line 3  RCM0000002 205.00 (dd/MM)    → amount mismatch
 *   RCF0000003 failed     50.00                     line 4  RCU0000007 3,000.00 (ISO)    → unknown (phone masked)
 *   RCM0000004 completed  75.00 (in window,         line 5  RCF0000003 50.00             → not completed in ledger
 *              completed_at only)                   line 6  RCM0000001 again             → duplicate
 *   RCM0000005 completed  80.00 (before window)     line 7  BAD!                         → bad row
 *   RCM0000006 completed 1250.00                    line 8  RCM0000006 "1,250.00"        → matched
 * shop-2 ledger                                     line 9  RCX0000009 (shop-2's)        → unknown for shop-1
 *   RCX0000009 completed  10.00                     line 10 withdrawal (no Paid In)      → skipped
 *                                                   line 11 Failed                       → skipped
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { payments } from '../src/database/schema';
import { startTestApp, TestApp } from './helpers/test-app';

const CSV = [
  'Receipt No.,Completion Time,Details,Transaction Status,Paid In,Withdrawn,Balance',
  'RCM0000001,2026-11-01 10:00:00,"Pay Bill from 2547******78 - JANE, D",Completed,100.00,,1000.00',
  'RCM0000002,01/11/2026 11:00:00,Pay Bill,Completed,205.00,,',
  'RCU0000007,2026-11-01T12:00:00,"Pay Bill from 254711222333 - ""BIG"" JOHN",Completed,"3,000.00",,',
  'RCF0000003,2026-11-01 13:00:00,Pay Bill,Completed,50.00,,',
  'RCM0000001,2026-11-01 10:00:00,dup,Completed,100.00,,',
  'BAD!,2026-11-01 10:00:00,x,Completed,10.00,,',
  'RCM0000006,2026-11-02 09:00:00,"Merchant, Payment",Completed,"1,250.00",,',
  'RCX0000009,2026-11-02 10:00:00,x,Completed,10.00,,',
  'RCW0000010,2026-11-02 11:00:00,withdrawal,Completed,,500.00,',
  'RCM0000011,2026-11-02 12:00:00,x,Failed,20.00,,',
].join('\r\n');
const BODY = Buffer.from('\uFEFF' + CSV + '\r\n', 'utf8');

describe('POST /reconciliation/statements', () => {
  let t: TestApp;
  const ids: Record<string, string> = {};

  const seed = (
    shopId: string,
    receipt: string,
    amountMinor: bigint,
    status: string,
    when: { transactionDate?: string; completedAt?: Date },
  ) => {
    const id = randomUUID();
    ids[receipt] = id;
    return {
      id,
      shopId,
      orderId: `ORD-${receipt}`,
      amountMinor,
      currency: 'KES',
      provider: 'mpesa',
      status,
      createdBy: 'seed',
      mpesaReceiptNumber: receipt,
      transactionDate: when.transactionDate ?? null,
      completedAt: status === 'completed' ? (when.completedAt ?? new Date()) : null,
    };
  };

  const upload = (body: Buffer | string, token: string, query = '') =>
    t
      .http()
      .post(`/reconciliation/statements${query}`)
      .set('Authorization', `Bearer ${token}`)
      .set('Content-Type', 'text/csv')
      .send(body);

  beforeAll(async () => {
    t = await startTestApp();
    await t.db.insert(payments).values([
      seed('shop-1', 'RCM0000001', 10000n, 'completed', { transactionDate: '20261101100000' }),
      seed('shop-1', 'RCM0000002', 25000n, 'completed', { transactionDate: '20261101110000' }),
      seed('shop-1', 'RCF0000003', 5000n, 'failed', {}),
      seed('shop-1', 'RCM0000004', 7500n, 'completed', { completedAt: new Date('2026-11-01T12:00:00Z') }), // 15:00 Nairobi
      seed('shop-1', 'RCM0000005', 8000n, 'completed', { transactionDate: '20261020090000' }),
      seed('shop-1', 'RCM0000006', 125000n, 'completed', { transactionDate: '20261102090000' }),
      seed('shop-2', 'RCX0000009', 1000n, 'completed', { transactionDate: '20261102100000' }),
    ]);
  });
  afterAll(() => t.close());

  it('reports matched, amount differences, unknown receipts, not-completed and missing payments, duplicates and bad rows', async () => {
    const res = await upload(BODY, t.token('shop-1', 'manager', 'manager-1'));
    expect(res.status).toBe(200);
    const r = res.body;
    expect(r).toMatchObject({
      shopId: 'shop-1',
      rows: 10,
      badRows: 1,
      badRowSamples: [{ line: 7, reason: expect.stringMatching(/receipt/) }],
      skipped: { notCompleted: 1, notPaidIn: 1 },
      matched: 2,
      duplicateReceiptsInStatement: 1,
      window: { from: '2026-11-01T10:00:00+03:00', to: '2026-11-02T10:00:00+03:00', applied: true },
    });
    expect(typeof r.durationMs).toBe('number');
    expect(r.amountMismatch).toEqual({
      count: 1,
      items: [
        {
          receipt: 'RCM0000002',
          line: 3,
          paymentId: ids.RCM0000002,
          orderId: 'ORD-RCM0000002',
          statementAmount: 205,
          ledgerAmount: 250,
          statementAmountMinor: '20500',
          ledgerAmountMinor: '25000',
        },
      ],
    });
    expect(r.unknownReceipts).toEqual({
      count: 2,
      items: [
        {
          receipt: 'RCU0000007',
          line: 4,
          amount: 3000,
          amountMinor: '300000',
          completionTime: '2026-11-01T12:00:00+03:00',
          phone: '2547******33',
        },
        // another shop's receipt is unknown here: nothing about shop-2's payment leaks
        {
          receipt: 'RCX0000009',
          line: 9,
          amount: 10,
          amountMinor: '1000',
          completionTime: '2026-11-02T10:00:00+03:00',
          phone: null,
        },
      ],
    });
    expect(r.notCompletedInLedger).toEqual({
      count: 1,
      items: [
        {
          receipt: 'RCF0000003',
          line: 5,
          paymentId: ids.RCF0000003,
          orderId: 'ORD-RCF0000003',
          ledgerStatus: 'failed',
          statementAmount: 50,
          ledgerAmount: 50,
        },
      ],
    });
    expect(r.missingFromStatement).toEqual({
      count: 1,
      items: [
        {
          receipt: 'RCM0000004',
          paymentId: ids.RCM0000004,
          orderId: 'ORD-RCM0000004',
          amount: 75,
          amountMinor: '7500',
          transactionTime: '2026-11-01T15:00:00+03:00',
        },
      ],
    });
    // no full phone number and no customer name anywhere in the report
    expect(JSON.stringify(r)).not.toMatch(/254711222333|JOHN|JANE/);
  });

  it('window=all also lists completed payments outside the statement period', async () => {
    const res = await upload(BODY, t.token('shop-1', 'admin', 'admin-1'), '?window=all');
    expect(res.status).toBe(200);
    expect(res.body.window.applied).toBe(false);
    expect(res.body.missingFromStatement.count).toBe(2);
    expect(res.body.missingFromStatement.items.map((i: { receipt: string }) => i.receipt).sort()).toEqual([
      'RCM0000004',
      'RCM0000005',
    ]);
    expect((await upload(BODY, t.token('shop-1', 'admin', 'admin-1'), '?window=forever')).status).toBe(400);
  });

  it("another shop's manager gets a report about that shop only", async () => {
    const res = await upload(BODY, t.token('shop-2', 'manager', 'manager-2'));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      shopId: 'shop-2',
      matched: 1,
      amountMismatch: { count: 0 },
      notCompletedInLedger: { count: 0 },
      missingFromStatement: { count: 0, items: [] },
    });
    expect(res.body.unknownReceipts.count).toBe(5);

    const empty = await upload(BODY, t.token('shop-3', 'manager', 'manager-3'));
    expect(empty.status).toBe(200);
    expect(empty.body).toMatchObject({
      shopId: 'shop-3',
      matched: 0,
      amountMismatch: { count: 0, items: [] },
      notCompletedInLedger: { count: 0, items: [] },
      missingFromStatement: { count: 0, items: [] },
    });
    expect(empty.body.unknownReceipts.count).toBe(6);
  });

  it('matches across many batches (several thousand rows, LF endings, lower-case header, other column order)', async () => {
    const lines = ['amount,receipt,status,completion_time'];
    for (let i = 0; i < 4500; i++)
      lines.push(`${i + 1}.00,RCB${String(i).padStart(7, '0')},Completed,2026-11-01 10:00:00`);
    lines.push('100.00,RCM0000001,Completed,2026-11-01 10:00:00');
    const res = await upload(lines.join('\n'), t.token('shop-1', 'manager', 'manager-1'));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ rows: 4501, badRows: 0, matched: 1, unknownReceipts: { count: 4500 } });
    expect(res.body.unknownReceipts.items).toHaveLength(1000); // lists are capped, counts are not
  });

  it('skips a few title lines before the header row', async () => {
    const csv =
      'M-PESA STATEMENT\nPeriod,2026-11-01 - 2026-11-02\n\nReceipt No.,Paid In,Completion Time\nRCM0000001,100.00,2026-11-01 10:00:00\n';
    const res = await upload(csv, t.token('shop-1', 'manager'));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ rows: 1, badRows: 0, matched: 1 });
  });

  it('403 for a cashier, 401 without a token', async () => {
    const res = await upload(BODY, t.token('shop-1', 'cashier'));
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('FORBIDDEN');
    const anon = await t.http().post('/reconciliation/statements').set('Content-Type', 'text/csv').send(BODY);
    expect(anon.status).toBe(401);
  });

  it('415 for JSON or other content types', async () => {
    const json = await t
      .http()
      .post('/reconciliation/statements')
      .set('Authorization', `Bearer ${t.token('shop-1', 'manager')}`)
      .send({ csv: CSV });
    expect(json.status).toBe(415);
    expect(json.body.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    const plain = await t
      .http()
      .post('/reconciliation/statements')
      .set('Authorization', `Bearer ${t.token('shop-1', 'manager')}`)
      .set('Content-Type', 'text/plain')
      .send(CSV);
    expect(plain.status).toBe(415);
    // text/csv stays refused everywhere else
    const elsewhere = await t
      .http()
      .post('/orders')
      .set('Authorization', `Bearer ${t.token('shop-1', 'manager')}`)
      .set('Content-Type', 'text/csv')
      .send(CSV);
    expect(elsewhere.status).toBe(415);
  });

  it('400 for a statement without the required columns, or an empty body', async () => {
    const res = await upload('Date,Withdrawn\n2026-11-01,10\n', t.token('shop-1', 'manager'));
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('INVALID_STATEMENT');
    expect(res.body.message).toMatch(/Paid In/);
    const empty = await upload('', t.token('shop-1', 'manager'));
    expect(empty.status).toBe(400);
    expect(empty.body.code).toBe('INVALID_STATEMENT');
  });

  it('413 for a declared body over 50 MB, answered before the body is read', async () => {
    const url = new URL('/reconciliation/statements', t.baseUrl);
    const status = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(url, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${t.token('shop-1', 'manager')}`,
          'Content-Type': 'text/csv',
          'Content-Length': String(60 * 1024 * 1024),
        },
      });
      req.on('response', (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => {
          resolve({ status: res.statusCode!, body });
          req.destroy();
        });
      });
      req.on('error', reject);
      req.write('Receipt No.,Paid In\n');
    });
    expect(status.status).toBe(413);
    expect(JSON.parse(status.body).code).toBe('PAYLOAD_TOO_LARGE');
  });
});
