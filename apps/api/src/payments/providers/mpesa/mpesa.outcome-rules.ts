import type { OutcomeRules } from '../../outcome-rules';
import { normaliseMpesaReceipt } from './receipt';

/**
 * M-Pesa's outcome rules (see OutcomeRules):
 * - receipts are compared and stored trimmed and upper-case, whoever reported them, in
 *   mpesa_receipt_number with Daraja's TransactionDate;
 * - a success whose receipt another payment holds is DUPLICATE_RECEIPT;
 * - a payment that took the money but learnt it from an STK query (no receipt) gets its receipt
 *   from the success callback or the statement row only it fits;
 * - Daraja's verified success callback for a push with ANOTHER receipt than the payment holds
 *   (the statement settled it with the customer's C2B payment, then the prompt was paid too) is
 *   a second charge.
 */
export const MPESA_OUTCOME_RULES: OutcomeRules = {
  normaliseReceipt: normaliseMpesaReceipt,
  receiptColumns: (r) => ({ mpesaReceiptNumber: r.receipt ?? null, transactionDate: r.transactionDate ?? null }),
  async duplicateProblem(_p, r, find) {
    return r.receipt && (await find.byReceipt(r.receipt)) ? 'DUPLICATE_RECEIPT' : undefined;
  },
  lateReceipts: {
    held: (p) => p.mpesaReceiptNumber,
    attachFrom: ['callback', 'statement'],
    secondChargeFrom: ['callback'],
    inUse: async (receipt, find) => (await find.byReceipt(receipt)) !== null,
    columns: (p, r) => ({ mpesaReceiptNumber: r.receipt, transactionDate: r.transactionDate ?? p.transactionDate }),
  },
  presentation: {
    customerProof: 'M-Pesa SMS',
    // Without a CheckoutRequestID an STK query has nothing to ask with.
    onlyStatementSettles: (p) => !p.checkoutRequestId,
    responseFields: (p) => ({ accountReference: p.accountReference, transactionDesc: p.transactionDesc }),
  },
};
