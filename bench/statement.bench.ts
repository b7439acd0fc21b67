/**
 * Statement matching benchmark: seeds a fresh database with 100,000 completed M-Pesa payments,
 * writes a ~100,000-row statement CSV (with amount mismatches, unknown receipts, ledger failures,
 * duplicates and bad rows), streams it through StatementMatchingService and reports time and peak
 * RSS of this process (which does the matching, as the API would). Writes
 * bench/results/statement-<date>.json (PGlite: statement-<date>-pglite.json).
 * Targets (on Postgres): < 3 s and < 300 MB peak RSS for 100,000 rows.
 *
 *   pnpm bench:statement                    a new database on DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test), dropped after
 *   BENCH_DB=pglite pnpm bench:statement    in-memory PGlite instead
 *   BENCH_SMOKE=1 pnpm bench:statement      2,000 rows, no targets (results in a temp folder)
 *   BENCH_ROWS=20000 ...                                                           (smaller run)
 *   BENCH_BATCH=5000   statement rows per query (default 1000, as the API)
 *   BENCH_NO_ANALYZE=1 skip ANALYZE after seeding: the first read of 100k just-inserted rows (hint bits,
 *                      no planner statistics) roughly doubles the time; production tables are analyzed
 *   BENCH_KEEP=1       keep the database and the CSV (to time the CLI against them)
 */
import { once } from 'node:events';
import { createReadStream, createWriteStream, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { openDatabase, DatabaseHandle } from '../apps/api/src/database/database';
import { freshPostgres, machineInfo, SMOKE, table, verdictTable, writeResult, type TargetVerdict } from './lib/common';
import { StatementMatchingService } from '../apps/api/src/reconciliation/statement-matching.service';
import { StatementRepository } from '../apps/api/src/reconciliation/statement.repository';
import { sql } from './lib/deps';

const N = SMOKE ? 2_000 : Number(process.env.BENCH_ROWS ?? 100_000);
const PGLITE = process.env.BENCH_DB === 'pglite';
const SHOP = 'bench-shop';
const pad = (n: number, w: number): string => String(n).padStart(w, '0');
const receipt = (i: number): string => `BN${pad(i, 8)}`;

async function freshDatabase(): Promise<{
  handle: DatabaseHandle;
  kind: string;
  version?: string;
  dispose: () => Promise<void>;
}> {
  if (PGLITE) {
    const handle = await openDatabase({});
    await handle.migrate();
    return { handle, kind: 'pglite (in-memory)', dispose: () => handle.close() };
  }
  const db = await freshPostgres('statement', 4);
  if (process.env.BENCH_KEEP === '1') process.stderr.write(`database ${db.url}\n`);
  return {
    handle: db.handle,
    kind: `postgres ${db.serverVersion}`,
    version: db.serverVersion,
    dispose: () => db.dispose(),
  };
}

async function seed(handle: DatabaseHandle): Promise<void> {
  // i-th payment: completed at 2026-11-01 00:00 Nairobi + 20 s * i; every 1000th (i % 1000 = 7) failed.
  await handle.db.execute(sql`
    insert into payments (id, shop_id, order_id, amount_minor, currency, provider, status, created_by, mpesa_receipt_number, transaction_date, completed_at)
    select gen_random_uuid(), ${SHOP}, 'ORD-' || i, ((i % 5000) + 1) * 100, 'KES', 'mpesa',
           case when i % 1000 = 7 then 'failed' else 'completed' end, 'bench',
           'BN' || lpad(i::text, 8, '0'),
           to_char(timestamp '2026-11-01 00:00:00' + i * interval '20 seconds', 'YYYYMMDDHH24MISS'),
           case when i % 1000 = 7 then null else (timestamp '2026-11-01 00:00:00' + i * interval '20 seconds') at time zone 'Africa/Nairobi' end
    from generate_series(1, ${N}) as i`);
  // another shop's payments: must never show up
  await handle.db.execute(sql`
    insert into payments (id, shop_id, order_id, amount_minor, currency, provider, status, created_by, mpesa_receipt_number, transaction_date, completed_at)
    select gen_random_uuid(), 'other-shop', 'ORD-' || i, 100, 'KES', 'mpesa', 'completed', 'bench', 'BO' || lpad(i::text, 8, '0'), '20261101000000', now()
    from generate_series(1, 2000) as i`);
  if (process.env.BENCH_NO_ANALYZE !== '1') await handle.db.execute(sql`analyze payments`);
}

interface Expected {
  rows: number;
  matched: number;
  amountMismatch: number;
  unknownReceipts: number;
  notCompletedInLedger: number;
  missingFromStatement: number;
  duplicateReceiptsInStatement: number;
  badRows: number;
}

async function writeCsv(file: string): Promise<Expected> {
  const out = createWriteStream(file);
  const e: Expected = {
    rows: 0,
    matched: 0,
    amountMismatch: 0,
    unknownReceipts: 0,
    notCompletedInLedger: 0,
    missingFromStatement: 0,
    duplicateReceiptsInStatement: 0,
    badRows: 0,
  };
  let buf = '\uFEFFReceipt No.,Completion Time,Details,Transaction Status,Paid In,Withdrawn,Balance\r\n';
  const write = async (line: string): Promise<void> => {
    e.rows++;
    buf += line + '\r\n';
    if (buf.length > 64 * 1024) {
      if (!out.write(buf)) await once(out, 'drain');
      buf = '';
    }
  };
  const time = (i: number): string => {
    const t = new Date(Date.UTC(2026, 10, 1) + i * 20_000);
    const hms = `${pad(t.getUTCHours(), 2)}:${pad(t.getUTCMinutes(), 2)}:${pad(t.getUTCSeconds(), 2)}`;
    return i % 2
      ? `${t.getUTCFullYear()}-${pad(t.getUTCMonth() + 1, 2)}-${pad(t.getUTCDate(), 2)} ${hms}`
      : `${pad(t.getUTCDate(), 2)}/${pad(t.getUTCMonth() + 1, 2)}/${t.getUTCFullYear()} ${hms}`;
  };
  const money = (minor: number): string => `"${(minor / 100).toLocaleString('en-US', { minimumFractionDigits: 2 })}"`;
  const dupes = Math.min(100, N);
  const bad = 50;
  const main = N - dupes - bad; // total data rows = N
  for (let i = 1; i <= N; i++) {
    const amount = ((i % 5000) + 1) * 100;
    if (i > main) {
      // ledger payments beyond the statement's last row: outside its window, so not "missing"
      continue;
    }
    const details = `"Pay Bill Online from 2547******${pad(i % 100, 2)} - CUSTOMER, ${i} Acc. ORD-${i}"`;
    if (i % 500 === 3) {
      await write(`BU${pad(i, 8)},${time(i)},${details},Completed,${money(amount)},,`);
      e.unknownReceipts++;
      if (i % 1000 !== 7) e.missingFromStatement++;
    } else if (i % 1000 === 11) {
      await write(`${receipt(i)},${time(i)},${details},Completed,${money(amount + 100)},,`);
      e.amountMismatch++;
    } else {
      await write(`${receipt(i)},${time(i)},${details},Completed,${money(amount)},,`);
      if (i % 1000 === 7) e.notCompletedInLedger++;
      else e.matched++;
    }
  }
  for (let d = 1; d <= dupes; d++) {
    const i = d * 10; // a plainly matched row (never one of the unknown / mismatch / failed ones above)
    await write(`${receipt(i)},${time(i)},dup,Completed,${money(((i % 5000) + 1) * 100)},,`);
    e.duplicateReceiptsInStatement++;
  }
  for (let b = 0; b < bad; b++) {
    await write(`NOT-A-RECEIPT-${b},${time(1)},bad,Completed,10.00,,`);
    e.badRows++;
  }
  out.end(buf);
  await once(out, 'finish');
  return e;
}

async function main(): Promise<void> {
  const db = await freshDatabase();
  const tmp = join(os.tmpdir(), `statement-bench-${process.pid}.csv`);
  try {
    let t0 = Date.now();
    await seed(db.handle);
    const seedMs = Date.now() - t0;
    const expected = await writeCsv(tmp);
    const bytes = statSync(tmp).size;
    process.stderr.write(
      `seeded ${N} payments in ${seedMs} ms (${db.kind}); statement ${expected.rows} rows, ${(bytes / 1e6).toFixed(1)} MB\n`,
    );

    (globalThis as { gc?: () => void }).gc?.();
    const rssBefore = process.memoryUsage().rss;
    let peakRss = rssBefore;
    let peakHeap = process.memoryUsage().heapUsed;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      if (m.rss > peakRss) peakRss = m.rss;
      if (m.heapUsed > peakHeap) peakHeap = m.heapUsed;
    }, 20);
    // time spent in the two queries (wrapped here, the service is untouched)
    const repo = new StatementRepository(db.handle.db);
    const dbMs = { findByReceipts: 0, completedMpesaPage: 0 };
    for (const name of ['findByReceipts', 'completedMpesaPage'] as const) {
      const orig = repo[name].bind(repo) as (...a: unknown[]) => Promise<unknown>;
      (repo as unknown as Record<string, unknown>)[name] = async (...a: unknown[]) => {
        const s = performance.now();
        try {
          return await orig(...a);
        } finally {
          dbMs[name] += performance.now() - s;
        }
      };
    }
    const service = new StatementMatchingService(repo);
    t0 = Date.now();
    const report = await service.match(SHOP, createReadStream(tmp, { highWaterMark: 256 * 1024 }), {
      batchSize: Number(process.env.BENCH_BATCH ?? 1000),
      onProgress: ({ rows, elapsedMs }) =>
        process.stderr.write(`  ${rows} rows, ${Math.round((rows / Math.max(elapsedMs, 1)) * 1000)} rows/s\n`),
    });
    const ms = Date.now() - t0;
    clearInterval(sampler);
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);

    const got: Expected = {
      rows: report.rows,
      matched: report.matched,
      amountMismatch: report.amountMismatch.count,
      unknownReceipts: report.unknownReceipts.count,
      notCompletedInLedger: report.notCompletedInLedger.count,
      missingFromStatement: report.missingFromStatement.count,
      duplicateReceiptsInStatement: report.duplicateReceiptsInStatement,
      badRows: report.badRows,
    };
    const correct = JSON.stringify(got) === JSON.stringify(expected);
    const mb = (b: number): number => Math.round((b / 1024 / 1024) * 10) / 10;
    const result = {
      benchmark: 'statement-matching',
      date: new Date().toISOString(),
      smoke: SMOKE,
      database: db.kind,
      ledgerPayments: N,
      statement: { rows: expected.rows, bytes },
      batchSize: Number(process.env.BENCH_BATCH ?? 1000),
      durationMs: ms,
      rowsPerSecond: Math.round((expected.rows / ms) * 1000),
      queryMs: {
        findByReceipts: Math.round(dbMs.findByReceipts),
        completedMpesaPage: Math.round(dbMs.completedMpesaPage),
      },
      memory: {
        rssBeforeMb: mb(rssBefore),
        peakRssMb: mb(peakRss),
        peakHeapUsedMb: mb(peakHeap),
        sampleIntervalMs: 20,
      },
      counts: got,
      countsAsExpected: correct,
      targets: [] as TargetVerdict[],
      machine: machineInfo(db.version),
    };
    if (!SMOKE && !PGLITE && N >= 100_000) {
      result.targets.push({
        name: `statement matching, ${N} rows: time`,
        target: '< 3000 ms',
        value: `${ms} ms`,
        met: ms < 3000,
        miss: ms >= 3000 ? `+${ms - 3000} ms` : undefined,
      });
      const peak = mb(peakRss);
      result.targets.push({
        name: `statement matching, ${N} rows: peak RSS`,
        target: '< 300 MB',
        value: `${peak} MB`,
        met: peak < 300,
        miss: peak >= 300 ? `+${Math.round(peak - 300)} MB` : undefined,
      });
    }
    const file = writeResult('statement', result, PGLITE ? 'pglite' : undefined);
    process.stdout.write(
      `\n${table(['database', 'rows', 'time ms', 'rows/s', 'query ms', 'peak RSS MB', 'heap peak MB', 'counts'], [[db.kind, expected.rows, ms, result.rowsPerSecond, result.queryMs.findByReceipts + result.queryMs.completedMpesaPage, mb(peakRss), mb(peakHeap), correct ? 'as expected' : 'WRONG']])}\n`,
    );
    if (result.targets.length) process.stdout.write(`\n${verdictTable(result.targets)}\n`);
    process.stdout.write(`\n-> ${file}\n`);
    process.stderr.write(
      `${expected.rows} rows in ${ms} ms (queries: ${JSON.stringify(result.queryMs)}), peak RSS ${mb(peakRss)} MB (before: ${mb(rssBefore)} MB)\n`,
    );
    if (!(ms > 0 && peakRss > 0 && expected.rows === N)) {
      process.stderr.write(`IMPLAUSIBLE FIGURES: ${ms} ms, ${peakRss} bytes, ${expected.rows} rows\n`);
      process.exitCode = 1;
    }
    if (!correct) {
      process.stderr.write(`COUNTS DIFFER: expected ${JSON.stringify(expected)}\n`);
      process.exitCode = 1;
    }
  } finally {
    // BENCH_KEEP=1 keeps the database and the CSV (e.g. to time the CLI against them)
    if (process.env.BENCH_KEEP === '1') process.stderr.write(`kept ${tmp} and the database (drop it yourself)\n`);
    else {
      rmSync(tmp, { force: true });
      await db.dispose();
    }
  }
}

main().catch((err) => {
  process.stderr.write(String(err?.stack ?? err) + '\n');
  process.exit(1);
});
