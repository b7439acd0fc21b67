import { isPlainObject } from '../../../common/json';
import type { RefundReport } from '../../refunds.types';
import { CallbackShapeError } from './mpesa.errors';
import { normaliseResultCode } from './result-codes';

/**
 * Daraja's asynchronous "Result API" bodies (Reversal, Transaction Status; daraja.md §6) and what
 * they mean for a refund. Pure: no database, no HTTP.
 */

/** A Result POSTed to a ResultURL, normalised: codes as strings, parameters as a map. */
export interface DarajaResult {
  /** 0 = completed, 1 = waiting for further messages. */
  resultType?: number;
  /** Always a string: "0", "2001", "R000001". */
  resultCode: string;
  resultDesc: string;
  originatorConversationId?: string;
  conversationId?: string;
  /** A reversal's own receipt (success), or the transaction asked about. */
  transactionId?: string;
  /** ResultParameters.ResultParameter (array or single object) by Key; items without a Value are left out. */
  parameters: Record<string, string>;
}

function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}

function nonEmpty(v: unknown): string | undefined {
  const s = str(v)?.trim();
  return s ? s : undefined;
}

/** `{Result: {...}}` → DarajaResult; throws CallbackShapeError (400) on another shape. */
export function parseDarajaResult(body: unknown): DarajaResult {
  if (!isPlainObject(body) || !isPlainObject(body.Result))
    throw new CallbackShapeError('Not a Daraja Result: no Result object');
  const r = body.Result;
  const rawCode = r.ResultCode;
  if ((typeof rawCode !== 'string' && typeof rawCode !== 'number') || String(rawCode).trim() === '')
    throw new CallbackShapeError('Not a Daraja Result: Result.ResultCode must be a number or a string');
  const parameters: Record<string, string> = {};
  const holder = r.ResultParameters;
  if (holder !== undefined && holder !== null && holder !== '') {
    if (!isPlainObject(holder)) throw new CallbackShapeError('Result.ResultParameters must be an object');
    const list = holder.ResultParameter;
    const items = Array.isArray(list) ? list : list === undefined || list === null ? [] : [list];
    for (const item of items) {
      if (!isPlainObject(item) || typeof item.Key !== 'string')
        throw new CallbackShapeError('Result.ResultParameters.ResultParameter items must be {Key, Value}');
      const value = str(item.Value);
      if (value !== undefined) parameters[item.Key] = value;
    }
  }
  const resultType = typeof r.ResultType === 'number' ? r.ResultType : Number(str(r.ResultType) ?? NaN);
  return {
    resultType: Number.isFinite(resultType) ? resultType : undefined,
    resultCode: normaliseResultCode(rawCode),
    resultDesc: str(r.ResultDesc) ?? '',
    originatorConversationId: nonEmpty(r.OriginatorConversationID),
    conversationId: nonEmpty(r.ConversationID),
    transactionId: nonEmpty(r.TransactionID),
    parameters,
  };
}

/** The ids a QueueTimeOutURL notice names, if any (its shape is not documented: read leniently; any JSON object is a notice). */
export function parseQueueTimeout(body: unknown): { originatorConversationId?: string; conversationId?: string } {
  if (!isPlainObject(body)) throw new CallbackShapeError('Not a Daraja queue timeout notice: not a JSON object');
  const r = isPlainObject(body.Result) ? body.Result : body;
  return { originatorConversationId: nonEmpty(r.OriginatorConversationID), conversationId: nonEmpty(r.ConversationID) };
}

/** "200", "200.00", 200 → 20000n minor units; undefined when it is not an amount of shillings with at most 2 decimals. */
export function shillingsToMinor(v: string | undefined): bigint | undefined {
  if (v === undefined) return undefined;
  const m = /^\s*(\d{1,12})(?:\.(\d{1,2}))?\s*$/.exec(v);
  if (!m) return undefined;
  return BigInt(m[1]) * 100n + BigInt((m[2] ?? '').padEnd(2, '0'));
}

/** Our code, status and manager-facing message for each documented reversal ResultCode (daraja.md §6.1). */
export interface ReversalCodeMeaning {
  reason: string;
  message: string;
}

const NOTHING_SENT = 'No money was sent back.';

export const REVERSAL_RESULT_CODES: Readonly<Record<string, ReversalCodeMeaning>> = {
  R000002: {
    reason: 'UNKNOWN_RECEIPT',
    message: `M-Pesa does not know this payment's receipt as a payment to this shortcode. ${NOTHING_SENT} Check the receipt on the M-Pesa statement; if it is right, refund another way.`,
  },
  '2001': {
    reason: 'INITIATOR_INVALID',
    message: `M-Pesa refused the initiator name or password. ${NOTHING_SENT} Update the initiator on the shop's M-Pesa account (the API operator's name and password from the M-Pesa org portal, for this environment), then ask again.`,
  },
  '21': {
    reason: 'MISSING_ROLE',
    message: `The initiator is not allowed to reverse payments. ${NOTHING_SENT} Give the API operator the "Org Reversals Initiator" role on the M-Pesa org portal, then ask again.`,
  },
  '8006': {
    reason: 'INITIATOR_LOCKED',
    message: `The initiator's password is locked on M-Pesa. ${NOTHING_SENT} Unlock or reset it on the M-Pesa org portal, update the shop's M-Pesa account with the new password, then ask again.`,
  },
  '1': {
    reason: 'INSUFFICIENT_BALANCE',
    message: `The shortcode's M-Pesa account does not hold enough to give this money back. ${NOTHING_SENT} Top up the account, then ask again.`,
  },
  '11': {
    reason: 'DEBIT_PARTY_INVALID_STATE',
    message: `M-Pesa says the shop's account cannot send money in its present state (e.g. dormant or frozen). ${NOTHING_SENT} Contact Safaricom business care, or refund another way.`,
  },
  '2006': {
    reason: 'ACCOUNT_RULE',
    message: `An M-Pesa account rule refused the reversal (e.g. a limit). ${NOTHING_SENT} Contact Safaricom business care, or refund another way.`,
  },
  '2028': {
    reason: 'NOT_PERMITTED',
    message: `M-Pesa does not allow reversals for this shortcode's product. ${NOTHING_SENT} Ask Safaricom to enable reversals, or refund another way.`,
  },
};

/** What this refund knows about its own reversals, for reading a result. */
export interface ReversalContext {
  /** Reversal requests this refund has sent (providerData.reversalsSent). */
  reversalsSent: number;
}

/**
 * A reversal Result as a RefundReport.
 * - 0: succeeded, the reversal's own receipt (Result.TransactionID) and the amount it gave back.
 * - R000001 "already reversed": when this refund sent only one reversal, that one was refused, so
 *   this refund gave nothing back: failed, ALREADY_REVERSED, telling the manager the payment was
 *   reversed elsewhere (another refund, the M-Pesa portal, Safaricom) and to check the statement
 *   before giving money another way. When this refund sent more than one, the earlier one is
 *   most likely the reversal M-Pesa means: review (nothing is sent again; a person checks the
 *   M-Pesa portal and settles it).
 * - every other documented code: failed, with our reason and what to do; any other code: failed,
 *   REVERSAL_FAILED with Daraja's code and text. None of them moved money.
 * - ResultType 1 ("waiting for further messages"): pending.
 */
export function reversalResultReport(r: DarajaResult, ctx: ReversalContext): RefundReport {
  const base = { providerCode: r.resultCode };
  if (r.resultType === 1 && r.resultCode !== '0')
    return { ...base, status: 'pending', message: 'M-Pesa is still processing the reversal' };
  if (r.resultCode === '0') {
    return {
      ...base,
      status: 'succeeded',
      providerRefundId: r.transactionId,
      amountMinor: shillingsToMinor(r.parameters.Amount),
      message: 'M-Pesa reversed the payment: the money is back with the customer',
      providerData: { reversalReceipt: r.transactionId, reversalCompletedTime: r.parameters.TransCompletedTime },
    };
  }
  if (r.resultCode === 'R000001') {
    if (ctx.reversalsSent > 1)
      // Most likely this refund's own earlier reversal (whose answer was lost) went through; sending
      // again can only be refused again, so a person checks and settles it (POST /refunds/:id/settle).
      return {
        ...base,
        status: 'review',
        reason: 'ALREADY_REVERSED',
        message:
          'M-Pesa says this payment was already reversed, and this refund had sent an earlier reversal whose answer was lost: most likely that one gave the money back. Check the M-Pesa org portal or statement, then settle this refund as succeeded or failed',
      };
    return {
      ...base,
      status: 'failed',
      reason: 'ALREADY_REVERSED',
      message:
        'M-Pesa says this payment was already reversed (by an earlier refund, on the M-Pesa org portal or by Safaricom), so this refund sent nothing. Check the M-Pesa statement before giving the money back another way.',
    };
  }
  const known = REVERSAL_RESULT_CODES[r.resultCode];
  if (known) return { ...base, status: 'failed', reason: known.reason, message: known.message };
  return {
    ...base,
    status: 'failed',
    reason: 'REVERSAL_FAILED',
    message: `M-Pesa refused the reversal (code ${r.resultCode}${r.resultDesc ? `: ${r.resultDesc}` : ''}). ${NOTHING_SENT}`,
  };
}

/** Transaction Status ResultCodes that are about the query itself (who asked), not about the transaction. */
const STATUS_QUERY_REFUSED: Readonly<Record<string, string>> = {
  '2001':
    "M-Pesa refused the initiator name or password for a status check: update the initiator on the shop's M-Pesa account",
  '21': 'The initiator may not check transaction status: give the API operator the "Transaction Status query ORG API" role on the M-Pesa org portal',
  '8006': "The initiator's password is locked on M-Pesa: unlock or reset it on the M-Pesa org portal",
};

/**
 * Transaction Status ResultCodes meaning "no such transaction": only the documented one (daraja.md
 * §6.1, "OriginalTransactionID invalid"). Such an answer can prove a reversal never happened (and let
 * it be sent again), so no undocumented code is read this way: anything else is inconclusive.
 */
export const STATUS_NOT_FOUND_CODES: readonly string[] = ['R000002'];

/** What a Transaction Status Result says about the transaction asked about. */
export type StatusFacts =
  | {
      kind: 'found';
      /** TransactionStatus, lower-case: "completed", "reversed", "pending", ... */
      transactionStatus: string;
      receiptNo?: string;
      amountMinor?: bigint;
      creditPartyName?: string;
      debitPartyName?: string;
      reasonType?: string;
      finalisedTime?: string;
    }
  /** M-Pesa has no such transaction (for a reversal's OriginatorConversationID: it never happened). */
  | { kind: 'not_found'; resultCode: string; resultDesc: string }
  /** The query itself was refused (the initiator): says nothing about the transaction. */
  | { kind: 'refused'; resultCode: string; resultDesc: string; message: string }
  /** Any other answer: says nothing we can act on. */
  | { kind: 'inconclusive'; resultCode: string; resultDesc: string };

export function statusFacts(r: DarajaResult): StatusFacts {
  if (r.resultCode === '0') {
    const p = r.parameters;
    const status = nonEmpty(p.TransactionStatus)?.toLowerCase();
    if (!status) return { kind: 'inconclusive', resultCode: r.resultCode, resultDesc: 'no TransactionStatus' };
    return {
      kind: 'found',
      transactionStatus: status,
      receiptNo: nonEmpty(p.ReceiptNo) ?? r.transactionId,
      amountMinor: shillingsToMinor(p.Amount),
      creditPartyName: nonEmpty(p.CreditPartyName),
      debitPartyName: nonEmpty(p.DebitPartyName),
      reasonType: nonEmpty(p.ReasonType),
      finalisedTime: nonEmpty(p.FinalisedTime),
    };
  }
  const refused = STATUS_QUERY_REFUSED[r.resultCode];
  if (refused) return { kind: 'refused', resultCode: r.resultCode, resultDesc: r.resultDesc, message: refused };
  if (STATUS_NOT_FOUND_CODES.includes(r.resultCode))
    return { kind: 'not_found', resultCode: r.resultCode, resultDesc: r.resultDesc };
  return { kind: 'inconclusive', resultCode: r.resultCode, resultDesc: r.resultDesc };
}

/** The shortcode at the start of a party name such as "174379 - SmartDuka Ltd" (Transaction Status CreditPartyName). */
export function partyShortcode(name: string | undefined): string | undefined {
  const m = /^\s*(\d{5,7})\b/.exec(name ?? '');
  return m ? m[1] : undefined;
}
