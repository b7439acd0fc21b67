import type { Payment } from '../database/schema';
import type { OutcomeReport } from './outcome-rules';
import { isTerminal, OUTCOME_UNKNOWN } from './payment-status';

/** A payment in review only because its outcome was unknown: the truth can still settle it. */
export function isSettleable(p: Pick<Payment, 'status' | 'statusReason'>): boolean {
  return p.status === 'review' && p.statusReason === OUTCOME_UNKNOWN;
}

/** The payment has its outcome: terminal, or in review for any reason but OUTCOME_UNKNOWN. */
export function isClosed(p: Pick<Payment, 'status' | 'statusReason'>): boolean {
  return isTerminal(p.status) || (p.status === 'review' && !isSettleable(p));
}

/** Closed statuses in which the payment took no money (a success reported then is PAID_AFTER_CLOSE). */
export const CLOSED_WITHOUT_MONEY: readonly string[] = ['failed', 'cancelled', 'expired'];

export function amountMatches(p: Payment, r: OutcomeReport): boolean {
  return (
    r.amountMinor !== undefined &&
    r.amountMinor === p.amountMinor &&
    (r.currency === undefined || r.currency === p.currency)
  );
}

/** Checks a reported outcome against what the server knows. M-Pesa queries carry no amount: the id is ours. */
export function integrityProblem(p: Payment, r: OutcomeReport): string | undefined {
  if (r.checkoutRequestId && p.checkoutRequestId && r.checkoutRequestId !== p.checkoutRequestId)
    return 'CHECKOUT_REQUEST_ID_MISMATCH';
  if (r.providerTransactionId && p.providerTransactionId && r.providerTransactionId !== p.providerTransactionId)
    return 'TRANSACTION_ID_MISMATCH';
  if (r.reference !== undefined && p.providerReference && r.reference !== p.providerReference)
    return 'REFERENCE_MISMATCH';
  if (r.outcome !== 'completed' || !r.amountRequired) return undefined;
  if (r.currency !== undefined && r.currency !== p.currency) return 'CURRENCY_MISMATCH';
  if (r.amountMinor === undefined || r.amountMinor !== p.amountMinor) return 'AMOUNT_MISMATCH';
  return undefined;
}

/** The provider's result as stored on the payment (its description cut to 500 characters). */
export function resultOf(r: OutcomeReport): Pick<Payment, 'resultCode' | 'resultDesc'> {
  return { resultCode: r.resultCode, resultDesc: r.resultDesc.slice(0, 500) };
}

/** The provider's ids and payment method the payment did not know yet (the ones it knows are kept). */
export function knownIds(
  p: Payment,
  r: OutcomeReport,
): Pick<Payment, 'checkoutRequestId' | 'merchantRequestId' | 'providerTransactionId' | 'paymentMethod'> {
  return {
    checkoutRequestId: p.checkoutRequestId ?? r.checkoutRequestId ?? null,
    merchantRequestId: p.merchantRequestId ?? r.merchantRequestId ?? null,
    providerTransactionId: p.providerTransactionId ?? r.providerTransactionId ?? null,
    paymentMethod: p.paymentMethod ?? r.paymentMethod ?? null,
  };
}

/** What the audit events record of a report (no secrets: reports carry none, phones are not in them). */
export function reportSummary(r: OutcomeReport): Record<string, unknown> {
  return {
    source: r.source,
    resultCode: r.resultCode,
    resultDesc: r.resultDesc,
    checkoutRequestId: r.checkoutRequestId,
    providerTransactionId: r.providerTransactionId,
    reference: r.reference,
    receipt: r.receipt,
    amountMinor: r.amountMinor?.toString(),
    currency: r.currency,
  };
}
