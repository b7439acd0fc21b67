/**
 * M-Pesa receipts (MpesaReceiptNumber, a statement's "Receipt No.") are upper-case letters and
 * digits (e.g. NLJ7RT61SV). Every receipt is stored and compared in this form, wherever it came
 * from, so `rcptz00001` and `RCPTZ00001` are the same receipt (the column has a CHECK for it).
 */
export function normaliseMpesaReceipt(receipt: string): string {
  return receipt.trim().toUpperCase();
}
