import { Inject, Injectable, Optional } from '@nestjs/common';
import { AppError } from '../common/errors';
import { toMajor } from '../common/money';
import { phoneHash } from '../payments/phone-hash';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { PaymentLifecycle } from '../payments/payment-lifecycle.service';
import { holdsMoney, isInFlight } from '../payments/payment-status';
import { csvRecordBatches, CsvTooLongError } from './csv';
import { LedgerReceipt, StatementRepository, StatementScope, UnsettledMpesaPayment } from './statement.repository';
import {
  ColumnMap,
  mapHeader,
  parseRow,
  StatementHeaderError,
  StatementRow,
  timeKeyOf,
  timeKeyToIso,
} from './statement-row';

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

/** An open or OUTCOME_UNKNOWN payment the statement settled: exactly one row and one payment fitted each other. */
export interface SettledItem {
  receipt: string;
  line: number;
  paymentId: string;
  orderId: string;
  amount: number;
  amountMinor: string;
  completionTime: string | null;
  /** the payment afterwards: `completed`, or `review` (e.g. EXCEEDS_OUTSTANDING: it no longer fits its order) */
  status: string;
  statusReason: string | null;
}

/**
 * A receipt recorded on a payment that took the money without us learning its receipt (completed,
 * or in review for a refund, after an STK query): exactly one row and this one payment fitted each
 * other. Only the receipt (and time) changed: never its amount or status. Same fields as SettledItem.
 */
export type ReceiptRecordedItem = SettledItem;

/**
 * A statement row that may be the money of a payment without a receipt, left for a person: why
 * nothing was changed, and which payments it could be. `payment_still_open`: the one payment it
 * fits is still open at Daraja (it has a CheckoutRequestID): its STK query or callback tells the
 * truth (reconcile it); a row that could be another payment's money never settles it.
 */
export interface PossibleMatchItem {
  receipt: string;
  line: number;
  amount: number;
  amountMinor: string;
  completionTime: string | null;
  phone: string | null;
  why:
    | 'phone_masked'
    | 'several_payments_fit'
    | 'several_rows_fit'
    | 'payment_still_open'
    | 'receipt_used_elsewhere'
    | 'payment_changed';
  candidates: { paymentId: string; orderId: string; status: string }[];
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
  /** OUTCOME_UNKNOWN payments (and open ones without a CheckoutRequestID) settled by a row whose receipt is new and whose amount, phone (keyed hash) and time fit exactly that one payment */
  settledFromStatement: ListSection<SettledItem>;
  /** payments that took money without a receipt (completed or refund-due after an STK query) that got the receipt of the one row fitting only them */
  receiptsRecorded: ListSection<ReceiptRecordedItem>;
  /** rows that could be such a payment's money but do not prove it (masked phone, more than one fit, a payment Daraja can still answer for): a person decides; nothing was changed */
  possibleMatches: ListSection<PossibleMatchItem>;
  duplicateReceiptsInStatement: number;
  /** min/max completion time of the money-in rows (Nairobi, ISO 8601); missingFromStatement is limited to it unless window = 'all' */
  window: { from: string | null; to: string | null; applied: boolean };
  durationMs: number;
}

export type { StatementScope };

export interface MatchOptions {
  /** Unset: every M-Pesa payment of the shop (the CLI and the benchmark). */
  scope?: StatementScope;
  /** who settles payments from this statement, for the audit log (e.g. user:<sub>) */
  actor?: string;
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
/**
 * A statement row can be an open/unknown payment's money only if it was completed within this
 * window around the push: the prompt lives a minute or two (daraja.md §2.5); the margins absorb
 * Daraja's queueing and the clocks of Safaricom and this server.
 */
export const SETTLE_WINDOW_BEFORE_SECONDS = 120;
export const SETTLE_WINDOW_AFTER_SECONDS = 600;
/** title lines tolerated before the header row */
const PREAMBLE_MAX = 10;

interface Candidate extends UnsettledMpesaPayment {
  /**
   * settle: its outcome cannot be learned from Daraja (review/OUTCOME_UNKNOWN, or open without a
   * CheckoutRequestID): a row only it fits settles it. open: Daraja knows it (open with a
   * CheckoutRequestID): only ever a possible match. paid: it took money without a receipt: a row
   * only it fits gives it the receipt, and a row that could be its money settles nothing else.
   */
  kind: 'settle' | 'open' | 'paid';
  /** Nairobi yyyyMMddHHmmss bounds of the settle window */
  fromKey: string;
  toKey: string;
}

function candidateKind(c: UnsettledMpesaPayment): Candidate['kind'] {
  if (holdsMoney(c)) return 'paid';
  return isInFlight(c.status) && c.checkoutRequestId ? 'open' : 'settle';
}

/** Candidates by amount and phone (keyed hash, or masked form): a row is compared only with the few it could be. */
const fitKey = (amountMinor: bigint, phone: string): string => `${amountMinor}|${phone}`;

interface RowFit {
  row: StatementRow;
  fits: Candidate[];
  /** only the masked phone matched: not proof */
  masked: boolean;
  unknownItem: UnknownReceiptItem;
}

/**
 * Matches an M-Pesa statement export against the shop's payments, streaming: records are read in
 * batches (one query per batch), only the receipts seen (a Set of short strings) and capped item
 * lists are kept, then the shop's completed payments are paged through to find the ones the
 * statement lacks. Memory is O(distinct receipts), not O(file).
 *
 * It also settles payments that may have taken money without us learning it and whose outcome
 * Daraja cannot tell (in review with OUTCOME_UNKNOWN, or open without a CheckoutRequestID): a row
 * whose receipt is unknown settles one when its amount, phone (the keyed hash of a full number in
 * Details) and completion time fit exactly that payment and no other row fits it too. Payments
 * that took money without a receipt (completed or refund-due after an STK query) are fits as well:
 * a row that could be theirs settles nothing else, and gives its receipt to the one it alone fits.
 * Anything less certain is listed for a person (possibleMatches).
 * Without a PaymentLifecycle (the benchmark) it only matches.
 */
@Injectable()
export class StatementMatchingService {
  constructor(
    private readonly repo: StatementRepository,
    @Optional() private readonly lifecycle?: PaymentLifecycle,
    @Optional() @Inject(APP_CONFIG) private readonly config?: AppConfig,
  ) {}

  async match(
    shopId: string,
    source: AsyncIterable<Buffer | Uint8Array | string>,
    options: MatchOptions = {},
  ): Promise<StatementReport> {
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
      settledFromStatement: { count: 0, items: [] },
      receiptsRecorded: { count: 0, items: [] },
      possibleMatches: { count: 0, items: [] },
      duplicateReceiptsInStatement: 0,
      window: { from: null, to: null, applied: false },
      durationMs: 0,
    };
    const add = <T>(section: ListSection<T>, item: T): void => {
      section.count++;
      if (section.items.length < itemLimit) section.items.push(item);
    };

    const settling = this.lifecycle !== undefined && this.config !== undefined;
    const candidates = new Map<string, Candidate[]>();
    if (settling) {
      for (const c of await this.repo.unsettledMpesaPayments(shopId, options.scope)) {
        if (c.currency !== 'KES') continue;
        const cand: Candidate = {
          ...c,
          kind: candidateKind(c),
          fromKey: timeKeyOf(new Date(c.createdAt.getTime() - SETTLE_WINDOW_BEFORE_SECONDS * 1000)),
          toKey: timeKeyOf(new Date(c.createdAt.getTime() + SETTLE_WINDOW_AFTER_SECONDS * 1000)),
        };
        for (const phone of [c.phoneHash, c.phoneMasked === null ? null : `masked:${c.phoneMasked}`]) {
          if (phone === null) continue;
          const key = fitKey(c.amountMinor, phone);
          const list = candidates.get(key);
          if (list) list.push(cand);
          else candidates.set(key, [cand]);
        }
      }
    }
    const rowFits: RowFit[] = [];
    const hashOf = (msisdn: string): string => phoneHash(this.config!.mpesa.callbackSigningSecret, msisdn);

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
      const ledger = await this.repo.findByReceipts(
        shopId,
        rows.map((r) => r.receipt),
      );
      const byReceipt = new Map<string, LedgerReceipt>();
      for (const p of ledger) byReceipt.set(p.receipt, p);
      for (const r of rows) {
        const p = byReceipt.get(r.receipt);
        if (!p) {
          const unknownItem: UnknownReceiptItem = {
            receipt: r.receipt,
            line: r.line,
            amount: toMajor(r.amountMinor, 'KES'),
            amountMinor: r.amountMinor.toString(),
            completionTime: r.timeKey ? timeKeyToIso(r.timeKey) : null,
            phone: r.phoneMasked,
          };
          add(report.unknownReceipts, unknownItem);
          const key = r.timeKey;
          if (key && candidates.size > 0 && (r.msisdn || r.phoneMasked)) {
            const hash = r.msisdn ? hashOf(r.msisdn) : undefined;
            const fits = (candidates.get(fitKey(r.amountMinor, hash ?? `masked:${r.phoneMasked}`)) ?? []).filter(
              (c) => key >= c.fromKey && key <= c.toKey,
            );
            if (fits.length > 0) rowFits.push({ row: r, fits, masked: !hash, unknownItem });
          }
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
          if (options.onProgress && report.rows % progressEvery === 0)
            options.onProgress({ rows: report.rows, elapsedMs: Date.now() - started });
          const res = parseRow(rec.line, rec.fields, header);
          if (res.kind === 'bad') {
            report.badRows++;
            if (report.badRowSamples.length < badLimit)
              report.badRowSamples.push({ line: res.line, reason: res.reason });
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
    if (header === null)
      throw new StatementFormatError(
        headerError?.message ?? 'The statement is empty: expected a header row naming "Receipt No." and "Paid In"',
      );
    await flush();
    if (rowFits.length > 0) await this.settleUnknown(rowFits, report, add, options.actor ?? 'statement');

    // Completed payments the statement does not show.
    const applyWindow = (options.window ?? 'statement') === 'statement' && minKey !== null && maxKey !== null;
    report.window = {
      from: minKey ? timeKeyToIso(minKey) : null,
      to: maxKey ? timeKeyToIso(maxKey) : null,
      applied: applyWindow,
    };
    let after: string | null = null;
    for (;;) {
      const page = await this.repo.completedMpesaPage(shopId, after, MISSING_PAGE_SIZE, options.scope);
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

  /**
   * Settles each payment that exactly one row fits (and that row fits only it) with the row's
   * receipt, amount and time, through PaymentLifecycle (row lock, the order's balance: a success
   * that no longer fits the order goes to review). A payment that took money without a receipt
   * counts as a fit too: a row that could be its money settles no other payment, and when it is
   * the only fit it gets the row's receipt (receiptsRecorded). A payment Daraja can still answer
   * for (open with a CheckoutRequestID) is never settled here. Every other fit is listed for a person.
   */
  private async settleUnknown(
    rowFits: RowFit[],
    report: StatementReport,
    add: <T>(section: ListSection<T>, item: T) => void,
    actor: string,
  ): Promise<void> {
    const rowsPerPayment = new Map<string, number>();
    for (const f of rowFits) for (const c of f.fits) rowsPerPayment.set(c.id, (rowsPerPayment.get(c.id) ?? 0) + 1);
    const possible = (f: RowFit, why: PossibleMatchItem['why']): void =>
      add(report.possibleMatches, {
        receipt: f.row.receipt,
        line: f.row.line,
        amount: f.unknownItem.amount,
        amountMinor: f.unknownItem.amountMinor,
        completionTime: f.unknownItem.completionTime,
        phone: f.row.phoneMasked,
        why,
        candidates: f.fits.map((c) => ({ paymentId: c.id, orderId: c.orderId, status: c.status })),
      });
    const sure: RowFit[] = [];
    for (const f of rowFits) {
      if (f.masked) possible(f, 'phone_masked');
      else if (f.fits.length > 1) possible(f, 'several_payments_fit');
      else if ((rowsPerPayment.get(f.fits[0].id) ?? 0) > 1) possible(f, 'several_rows_fit');
      else if (f.fits[0].kind === 'open') possible(f, 'payment_still_open');
      else sure.push(f);
    }
    // A receipt another shop's payment already has is not this payment's money.
    const inUse = await this.repo.receiptsInUse(sure.map((f) => f.row.receipt));
    const known = new Set<UnknownReceiptItem>();
    for (const f of sure) {
      if (inUse.has(f.row.receipt)) {
        possible(f, 'receipt_used_elsewhere');
        continue;
      }
      const p = f.fits[0];
      const result = await this.lifecycle!.applyOutcome(
        p.id,
        {
          outcome: 'completed',
          resultCode: null,
          resultDesc: `Found on the M-Pesa statement: receipt ${f.row.receipt}, line ${f.row.line}`,
          source: 'statement',
          amountRequired: true,
          amountMinor: f.row.amountMinor,
          currency: 'KES',
          receipt: f.row.receipt,
          transactionDate: f.row.timeKey ?? undefined,
        },
        actor,
      );
      // A paid payment only ever gets its receipt ('applied'); 'review' would mean it was settled.
      if (result !== 'applied' && (result !== 'review' || p.kind === 'paid')) {
        possible(f, 'payment_changed');
        continue;
      }
      const now = await this.repo.paymentState(p.id);
      known.add(f.unknownItem);
      add(p.kind === 'paid' ? report.receiptsRecorded : report.settledFromStatement, {
        receipt: f.row.receipt,
        line: f.row.line,
        paymentId: p.id,
        orderId: p.orderId,
        amount: f.unknownItem.amount,
        amountMinor: f.unknownItem.amountMinor,
        completionTime: f.unknownItem.completionTime,
        status: now?.status ?? 'unknown',
        statusReason: now?.statusReason ?? null,
      });
    }
    if (known.size > 0) {
      // Their receipts are known now: no longer "unknown to us".
      report.unknownReceipts.count -= known.size;
      report.unknownReceipts.items = report.unknownReceipts.items.filter((i) => !known.has(i));
    }
  }
}

/** When M-Pesa says the payment happened (Nairobi yyyyMMddHHmmss): Daraja's TransactionDate, else our completed_at. */
function ledgerTimeKey(transactionDate: string | null, completedAt: Date | null): string | null {
  if (transactionDate && /^\d{14}$/.test(transactionDate)) return transactionDate;
  return completedAt ? timeKeyOf(completedAt) : null;
}
