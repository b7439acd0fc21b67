import type { NewPayment, Payment } from '../database/schema';
import type { PaymentResponseDto } from './payments.dto';

export type Outcome = 'completed' | 'failed' | 'cancelled' | 'expired';

/**
 * What a provider told us about a transaction (callback, webhook, IPN-confirmed status, query),
 * normalised. The lifecycle checks it against what the server knows before anything changes.
 */
export interface OutcomeReport {
  outcome: Outcome;
  resultCode: string | null;
  resultDesc: string;
  /** where it came from; 'query'/'verify' answers come from asking the provider ourselves */
  source: 'callback' | 'query' | 'webhook' | 'verify' | 'ipn' | 'statement' | 'c2b';
  /** the report carries an amount that must match before value is given (M-Pesa callbacks, every card/wallet status) */
  amountRequired: boolean;
  amountMinor?: bigint;
  currency?: string;
  /** M-Pesa ids */
  checkoutRequestId?: string;
  merchantRequestId?: string;
  /** card/wallet: the provider's transaction id and our reference as the provider reports them */
  providerTransactionId?: string;
  reference?: string;
  /** M-Pesa receipt (mpesa) or provider confirmation code (others) */
  receipt?: string;
  transactionDate?: string;
  paymentMethod?: string;
}

/** The payments another payment's report may collide with, read inside the transaction applying it. */
export interface PaymentLookups {
  /** The payment holding this M-Pesa receipt (compared normalised). */
  byReceipt(receipt: string): Promise<Payment | null>;
  byProviderTransaction(provider: string, providerTransactionId: string): Promise<Payment | null>;
}

/**
 * What differs between providers when a payment reaches an outcome: how their receipts are
 * compared and stored, what makes a report a duplicate of another payment's, and whether a receipt
 * can come after the outcome. Each provider folder registers its rules by provider name
 * (PaymentLifecycle.registerOutcomeRules, at module init); the lifecycle never names a provider.
 */
export interface OutcomeRules {
  /** The receipt as this provider's receipts are compared and stored. */
  normaliseReceipt(receipt: string): string;
  /** The columns a reported receipt (and its date) is stored in, when the payment completes or goes to review holding the money. */
  receiptColumns(r: OutcomeReport): Partial<NewPayment>;
  /** A success reporting what another payment already holds (its receipt, its transaction): the review reason (DUPLICATE_…), else undefined. */
  duplicateProblem(p: Payment, r: OutcomeReport, find: PaymentLookups): Promise<string | undefined>;
  /** Receipts that arrive after the outcome. Absent: the receipt of a closed payment never changes. */
  lateReceipts?: LateReceiptRules;
  /** What the cashier is shown for this provider's payments. Absent: a hosted checkout's (its reference, transaction id, confirmation code, method, checkout link). */
  presentation?: PresentationRules;
}

export interface PresentationRules {
  /** What the customer holds as proof of paying ("M-Pesa SMS"). */
  customerProof: string;
  /** A payment of unknown outcome the provider cannot be asked about: only its statement (or a manager's release) settles it. */
  onlyStatementSettles(p: Payment): boolean;
  /** The provider's own fields of GET /payments/:id and friends. */
  responseFields(p: Payment): Partial<PaymentResponseDto>;
}

/**
 * A provider whose outcome can be learnt without its receipt (M-Pesa: an STK query answers with
 * no receipt), so the receipt comes later, and whose verified reports can show the customer
 * paid one payment twice (another receipt for the same push).
 */
export interface LateReceiptRules {
  /** The receipt the payment holds (null: none yet). */
  held(p: Payment): string | null;
  /** Reports that may give a payment that took the money the receipt it lacks. */
  attachFrom: readonly OutcomeReport['source'][];
  /** Verified reports (with their amount) whose other receipt, for a payment that holds one, is a second charge. */
  secondChargeFrom: readonly OutcomeReport['source'][];
  /** Whether another payment already holds this receipt. */
  inUse(receipt: string, find: PaymentLookups): Promise<boolean>;
  /** The columns a late receipt is recorded in: only the receipt and its date, never an amount or a status. */
  columns(p: Payment, r: OutcomeReport & { receipt: string }): Partial<NewPayment>;
}

/**
 * The rules of a hosted checkout (card/wallet) provider: its receipt is a confirmation code
 * (provider_receipt), stored as reported; a success naming a transaction id another payment of the
 * same provider holds is DUPLICATE_TRANSACTION; the outcome and its receipt arrive together.
 */
export const HOSTED_CHECKOUT_OUTCOME_RULES: OutcomeRules = {
  normaliseReceipt: (receipt) => receipt,
  receiptColumns: (r) => ({ providerReceipt: r.receipt ?? null }),
  async duplicateProblem(p, r, find) {
    if (!r.providerTransactionId) return undefined;
    const other = await find.byProviderTransaction(p.provider, r.providerTransactionId);
    return other && other.id !== p.id ? 'DUPLICATE_TRANSACTION' : undefined;
  },
};
