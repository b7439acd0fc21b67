import { createReadStream, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { AppError } from '../common/errors';
import { ConfigValidationError, loadConfig, loadDotEnv } from '../config/app-config';
import { openDatabase, pgliteDirFor } from '../database/database';
import { StatementMatchingService, StatementReport } from '../reconciliation/statement-matching.service';
import { StatementRepository } from '../reconciliation/statement.repository';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { OrdersRepository } from '../orders/orders.repository';
import { OrdersService } from '../orders/orders.service';
import { PaymentLifecycle } from '../payments/payment-lifecycle.service';
import { PaymentsRepository } from '../payments/payments.repository';
import { MPESA_OUTCOME_RULES } from '../payments/providers/mpesa/mpesa.outcome-rules';

/**
 * Matches an M-Pesa statement export (CSV) against a shop's payments. Changes nothing, except that
 * (like POST /reconciliation/statements) it settles an open or OUTCOME_UNKNOWN payment that exactly
 * one row fits by receipt, amount, phone and time (see StatementMatchingService).
 *   pnpm --filter @smartduka/api run statement --shop shop-1 --file statement.csv [--shortcode 600111] [--json] [--all-time]
 * Progress goes to stderr every 10,000 rows; the report to stdout (a summary, or JSON with --json).
 */
async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2).filter((a) => a !== '--'),
    options: {
      shop: { type: 'string' },
      file: { type: 'string' },
      json: { type: 'boolean', default: false },
      'all-time': { type: 'boolean', default: false },
      shortcode: { type: 'string' },
    },
  });
  if (!values.shop || !values.file) {
    process.stderr.write(
      'usage: statement --shop <shopId> --file <statement.csv> [--shortcode <paybill/store number>] [--json] [--all-time]\n',
    );
    return 2;
  }
  if (values.shortcode !== undefined && !/^\d{5,7}$/.test(values.shortcode)) {
    process.stderr.write('--shortcode must be the 5 to 7 digit paybill or store number the statement is for\n');
    return 2;
  }
  // pnpm --filter runs us in apps/api: resolve the file against where the command was typed.
  const file = resolve(process.env.INIT_CWD ?? process.cwd(), values.file);
  if (!existsSync(file)) {
    process.stderr.write(`no such file: ${file}\n`);
    return 2;
  }
  loadDotEnv();
  const config = loadConfig(process.env);
  const db = await openDatabase({
    databaseUrl: config.databaseUrl,
    pgliteDir: config.databaseUrl ? undefined : pgliteDirFor(config.dataDir),
    poolSize: 2,
  });
  try {
    const events = new EventEmitter2();
    const lifecycle = new PaymentLifecycle(
      new PaymentsRepository(db.db),
      new OrdersService(new OrdersRepository(db.db), events),
      events,
      config,
    );
    // The statement settles M-Pesa payments only: their rules are all it needs (what PaymentsModule registers in the app).
    lifecycle.registerOutcomeRules('mpesa', MPESA_OUTCOME_RULES);
    const service = new StatementMatchingService(new StatementRepository(db.db), lifecycle, config);
    const report = await service.match(values.shop, createReadStream(file, { highWaterMark: 256 * 1024 }), {
      window: values['all-time'] ? 'all' : 'statement',
      // A statement belongs to one shortcode: with --shortcode only the payments made with an
      // account of it (as POST /reconciliation/statements); without, every M-Pesa payment of the shop.
      scope: values.shortcode
        ? { shortcode: values.shortcode, includePlatform: values.shortcode === config.mpesa.shortcode }
        : undefined,
      actor: 'cli:statement',
      onProgress: ({ rows, elapsedMs }) =>
        process.stderr.write(
          `  ${rows.toLocaleString('en')} rows, ${Math.round((rows / Math.max(elapsedMs, 1)) * 1000).toLocaleString('en')} rows/s\n`,
        ),
    });
    process.stdout.write(values.json ? JSON.stringify(report, null, 2) + '\n' : summary(report));
    return 0;
  } finally {
    await db.close();
  }
}

function summary(r: StatementReport): string {
  const lines: string[] = [];
  const row = (label: string, value: string | number): void =>
    void lines.push(`${label.padEnd(34)}${String(value).padStart(10)}`);
  lines.push(
    `Statement matching for ${r.shopId}  (window ${r.window.from ?? '-'} .. ${r.window.to ?? '-'}${r.window.applied ? '' : ', all time'})`,
  );
  row('rows read', r.rows);
  row('bad rows', r.badRows);
  row('skipped (not Completed / no Paid In)', `${r.skipped.notCompleted}/${r.skipped.notPaidIn}`);
  row('duplicate receipts in statement', r.duplicateReceiptsInStatement);
  row('matched', r.matched);
  row('amount differs', r.amountMismatch.count);
  row('receipt unknown to us', r.unknownReceipts.count);
  row('not completed in our ledger', r.notCompletedInLedger.count);
  row('completed but missing from stmt', r.missingFromStatement.count);
  row('unknown payments settled', r.settledFromStatement.count);
  row('receipts recorded (paid, no receipt)', r.receiptsRecorded.count);
  row('possible matches for a person', r.possibleMatches.count);
  row('duration (ms)', r.durationMs);
  const show = <T>(title: string, items: T[], count: number, fmt: (i: T) => string): void => {
    if (!count) return;
    lines.push('', `${title} (${count}${count > 20 ? '; first 20 shown, --json lists more' : ''}):`);
    for (const i of items.slice(0, 20)) lines.push('  ' + fmt(i));
  };
  show('Bad rows', r.badRowSamples, r.badRows, (b) => `line ${b.line}: ${b.reason}`);
  show(
    'Amount differs',
    r.amountMismatch.items,
    r.amountMismatch.count,
    (i) => `${i.receipt}  line ${i.line}  statement ${i.statementAmount}  ours ${i.ledgerAmount}  order ${i.orderId}`,
  );
  show(
    'Unknown receipts',
    r.unknownReceipts.items,
    r.unknownReceipts.count,
    (i) => `${i.receipt}  line ${i.line}  ${i.amount}  ${i.completionTime ?? ''}  ${i.phone ?? ''}`,
  );
  show(
    'Not completed in our ledger',
    r.notCompletedInLedger.items,
    r.notCompletedInLedger.count,
    (i) => `${i.receipt}  line ${i.line}  ours ${i.ledgerStatus}  order ${i.orderId}`,
  );
  show(
    'Settled from the statement',
    r.settledFromStatement.items,
    r.settledFromStatement.count,
    (i) =>
      `${i.receipt}  line ${i.line}  ${i.amount}  payment ${i.paymentId}  now ${i.status}${i.statusReason ? ` (${i.statusReason})` : ''}`,
  );
  show(
    'Receipts recorded on paid payments',
    r.receiptsRecorded.items,
    r.receiptsRecorded.count,
    (i) =>
      `${i.receipt}  line ${i.line}  ${i.amount}  payment ${i.paymentId}  ${i.status}${i.statusReason ? ` (${i.statusReason})` : ''}`,
  );
  show(
    'Possible matches (not settled)',
    r.possibleMatches.items,
    r.possibleMatches.count,
    (i) =>
      `${i.receipt}  line ${i.line}  ${i.amount}  ${i.why}  payments ${i.candidates.map((c) => c.paymentId).join(', ')}`,
  );
  show(
    'Missing from statement',
    r.missingFromStatement.items,
    r.missingFromStatement.count,
    (i) => `${i.receipt}  ${i.amount}  ${i.transactionTime ?? ''}  order ${i.orderId}`,
  );
  return lines.join('\n') + '\n';
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(
      (err instanceof ConfigValidationError || err instanceof AppError ? err.message : String(err)) + '\n',
    );
    process.exit(1);
  },
);
