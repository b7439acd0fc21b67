import { Injectable } from '@nestjs/common';
import { AppError } from '../common/errors';
import { toMajor } from '../common/money';
import { csvRecordBatches, CsvTooLongError } from './csv';
import { LedgerReceipt, StatementRepository } from './statement.repository';
import { ColumnMap, mapHeader, parseRow, StatementHeaderError, StatementRow, timeKeyOf, timeKeyToIso } from './statement-row';

export interface ListSection<T> {
  count: number;
  /** the first `itemLimit` items, in statement (or id) order */
  items: T[];
}

export interface AmountMismatchItem {
  receipt: string;
  line: number;
  paymentId: string;
  orderId: string;
  statementAmount: number;
  ledgerAmount: number;
  statementAmountMinor: string;
  ledgerAmountMinor: string;
}

export interface UnknownReceiptItem {
  receipt: string;
  line: number;
  amount: number;
  amountMinor: string;
  completionTime: string | null;
  phone: string | null;
}

export interface NotCompletedItem {
  receipt: string;
  line: number;
  paymentId: string;
  orderId: string;
  ledgerStatus: string;
  statementAmount: number;
  ledgerAmount: number;
}

export interface MissingItem {
  receipt: string;
  paymentId: string;
  orderId: string;
  amount: number;
  amountMinor: string;
  transactionTime: string | null;
}

export interface StatementReport {
  shopId: string;
  /** data records read (header excluded, blank lines ignored) */
  rows: number;
  badRows: number;
  badRowSamples: { line: number; reason: string }[];
  /** valid records that are not money in: status other than Completed, or nothing in Paid In */
  skipped: { notCompleted: number; notPaidIn: number };
  matched: number;
  amountMismatch: ListSection<AmountMismatchItem>;
  unknownReceipts: ListSection<UnknownReceiptItem>;
  notCompletedInLedger: ListSection<NotCompletedItem>;
  missingFromStatement: ListSection<MissingItem>;
  duplicateReceiptsInStatement: number;
  /** min/max completion time of the money-in rows (Nairobi, ISO 8601); missingFromStatement is limited to it unless window = 'all' */
  window: { from: string | null; to: string | null; applied: boolean };
  durationMs: number;
}

export interface MatchOptions {
  /** 'statement' (default): only ledger payments completed within the statement's time span count as missing; 'all': every completed one */
  window?: 'statement' | 'all';
  batchSize?: number;
  itemLimit?: number;
  badRowSampleLimit?: number;
  progressEvery?: number;
  onProgress?: (p: { rows: number; elapsedMs: number }) => void;
}

export class StatementFormatError extends AppError {
  constructor(message: string) {
    super('INVALID_STATEMENT', message, 400);
  }
}

const MISSING_PAGE_SIZE = 5000;
/** title lines tolerated before the header row */
const PREAMBLE_MAX = 10;

/**
 * Matches an M-Pesa statement export against the shop's payments, streaming: records are read in
 * batches (one query per batch), only the receipts seen (a Set of short strings) and capped item
 * lists are kept, then the shop's completed payments are paged through to find the ones the
 * statement lacks. Memory is O(distinct receipts), not O(file).
 */
@Injectable()
export class StatementMatchingService {
  constructor(private readonly repo: StatementRepository) {}

  async match(shopId: string, source: AsyncIterable<Buffer | Uint8Array | string>, options: MatchOptions = {}): Promise<StatementReport> {
    const started = Date.now();
    const batchSize = options.batchSize ?? 1000;
    const itemLimit = options.itemLimit ?? 1000;
    const badLimit = options.badRowSampleLimit ?? 20;
    const progressEvery = options.progressEvery ?? 10_000;

    const report: StatementReport = {
      shopId,
      rows: 0,
      badRows: 0,
      badRowSamples: [],
      skipped: { notCompleted: 0, notPaidIn: 0 },
      matched: 0,
      amountMismatch: { count: 0, items: [] },
      unknownReceipts: { count: 0, items: [] },
      notCompletedInLedger: { count: 0, items: [] },
      missingFromStatement: { count: 0, items: [] },
      duplicateReceiptsInStatement: 0,
      window: { from: null, to: null, applied: false },
      durationMs: 0,
    };
    const add = <T>(section: ListSection<T>, item: T): void => {
      section.count++;
      if (section.items.length < itemLimit) section.items.push(item);
    };

    const seen = new Set<string>();
    let minKey: string | null = null;
    let maxKey: string | null = null;
    let header: ColumnMap | null = null;
    let batch: StatementRow[] = [];
    let headerError: StatementHeaderError | null = null;
    let preamble = 0;

    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const rows = batch;
      batch = [];
      const ledger = await this.repo.findByReceipts(shopId, rows.map((r) => r.receipt));
      const byReceipt = new Map<string, LedgerReceipt>();
      for (const p of ledger) byReceipt.set(p.receipt, p);
      for (const r of rows) {
        const p = byReceipt.get(r.receipt);
        if (!p) {
          add(report.unknownReceipts, {
            receipt: r.receipt,
            line: r.line,
            amount: toMajor(r.amountMinor, 'KES'),
            amountMinor: r.amountMinor.toString(),
            completionTime: r.timeKey ? timeKeyToIso(r.timeKey) : null,
            phone: r.phoneMasked,
          });
        } else if (p.status !== 'completed') {
          add(report.notCompletedInLedger, {
            receipt: r.receipt,
            line: r.line,
            paymentId: p.id,
            orderId: p.orderId,
            ledgerStatus: p.status,
            statementAmount: toMajor(r.amountMinor, 'KES'),
            ledgerAmount: toMajor(p.amountMinor, p.currency),
          });
        } else if (p.amountMinor !== r.amountMinor || p.currency !== 'KES') {
          add(report.amountMismatch, {
            receipt: r.receipt,
            line: r.line,
            paymentId: p.id,
            orderId: p.orderId,
            statementAmount: toMajor(r.amountMinor, 'KES'),
            ledgerAmount: toMajor(p.amountMinor, p.currency),
            statementAmountMinor: r.amountMinor.toString(),
            ledgerAmountMinor: p.amountMinor.toString(),
          });
        } else {
          report.matched++;
        }
      }
    };

    try {
      for await (const records of csvRecordBatches(source)) {
        for (const rec of records) {
          if (header === null) {
            // Exports may start with a few title lines ("M-PESA STATEMENT", period, ...): the header is
            // the first of the first PREAMBLE_MAX records that names the required columns.
            try {
              header = mapHeader(rec.fields);
            } catch (err) {
              if (!(err instanceof StatementHeaderError)) throw err;
              headerError ??= err;
              if (++preamble >= PREAMBLE_MAX) throw headerError;
            }
            continue;
          }
          report.rows++;
          if (options.onProgress && report.rows % progressEvery === 0) options.onProgress({ rows: report.rows, elapsedMs: Date.now() - started });
          const res = parseRow(rec.line, rec.fields, header);
          if (res.kind === 'bad') {
            report.badRows++;
            if (report.badRowSamples.length < badLimit) report.badRowSamples.push({ line: res.line, reason: res.reason });
            continue;
          }
          if (res.kind === 'skipped') {
            if (res.reason === 'not_completed') report.skipped.notCompleted++;
            else report.skipped.notPaidIn++;
            continue;
          }
          const row = res.row;
          if (seen.has(row.receipt)) {
            report.duplicateReceiptsInStatement++;
            continue;
          }
          seen.add(row.receipt);
          if (row.timeKey) {
            if (minKey === null || row.timeKey < minKey) minKey = row.timeKey;
            if (maxKey === null || row.timeKey > maxKey) maxKey = row.timeKey;
          }
          batch.push(row);
          if (batch.length >= batchSize) await flush();
        }
      }
    } catch (err) {
      if (err instanceof StatementHeaderError) throw new StatementFormatError(err.message);
      if (err instanceof CsvTooLongError) throw new StatementFormatError(err.message);
      throw err;
    }
    if (header === null) throw new StatementFormatError(headerError?.message ?? 'The statement is empty: expected a header row naming "Receipt No." and "Paid In"');
    await flush();

    // Completed payments the statement does not show.
    const applyWindow = (options.window ?? 'statement') === 'statement' && minKey !== null && maxKey !== null;
    report.window = { from: minKey ? timeKeyToIso(minKey) : null, to: maxKey ? timeKeyToIso(maxKey) : null, applied: applyWindow };
    let after: string | null = null;
    for (;;) {
      const page = await this.repo.completedMpesaPage(shopId, after, MISSING_PAGE_SIZE);
      for (const p of page) {
        if (seen.has(p.receipt)) continue;
        const key = ledgerTimeKey(p.transactionDate, p.completedAt);
        if (applyWindow && (key === null || key < minKey! || key > maxKey!)) continue;
        add(report.missingFromStatement, {
          receipt: p.receipt,
          paymentId: p.id,
          orderId: p.orderId,
          amount: toMajor(p.amountMinor, p.currency),
          amountMinor: p.amountMinor.toString(),
          transactionTime: key ? timeKeyToIso(key) : null,
        });
      }
      if (page.length < MISSING_PAGE_SIZE) break;
      after = page[page.length - 1].id;
    }
    report.durationMs = Date.now() - started;
    return report;
  }
}

/** When M-Pesa says the payment happened (Nairobi yyyyMMddHHmmss): Daraja's TransactionDate, else our completed_at. */
function ledgerTimeKey(transactionDate: string | null, completedAt: Date | null): string | null {
  if (transactionDate && /^\d{14}$/.test(transactionDate)) return transactionDate;
  return completedAt ? timeKeyOf(completedAt) : null;
}
