/**
 * M-Pesa receipts (MpesaReceiptNumber, a statement's "Receipt No.") are upper-case letters and
 * digits (e.g. NLJ7RT61SV). Every receipt is stored and compared in this form, wherever it came
 * from, so `rcptz00001` and `RCPTZ00001` are the same receipt (the column has a CHECK for it).
 *
 * "Normalised" has ONE definition, here and in SQL (the CHECK payments_mpesa_receipt_normalised and
 * migration 0004): upper-case, without leading/trailing ASCII blanks (space, \t, \n, \v, \f, \r):
 * `upper(regexp_replace(x, '^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$', '', 'g'))`. Not String.trim(), which
 * also strips Unicode spaces Postgres does not (the callback parser and the statement reader trim
 * those before, and accept only ASCII letters and digits).
 */
const BLANKS = /^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g;

export function normaliseMpesaReceipt(receipt: string): string {
  return receipt.replace(BLANKS, '').toUpperCase();
}
