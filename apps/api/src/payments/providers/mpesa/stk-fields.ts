/**
 * What the POS sends as AccountReference / TransactionDesc, made to fit what Daraja documents
 * (daraja.md §2.1): AccountReference letters and digits, at most 12 (the customer's prompt shows it
 * as the account number; longer values can push the prompt past 182 characters → ResultCode 1025);
 * TransactionDesc at most 13. The real sandbox accepted 15 and 14 characters (2026), so refusing a
 * longer value protects nothing: the API sends a value that fits and reports what it sent.
 * Only input that leaves nothing after cleaning is refused (by the DTO, with a clear 400).
 */
import { ValidationFailedError } from '../../../common/errors';
import { ACCOUNT_REFERENCE_MAX_LENGTH, TRANSACTION_DESC_MAX_LENGTH } from './daraja.service';

/** Upper bound on the raw text the API accepts for either field, so the request stays bounded. */
export const STK_TEXT_FIELD_MAX_INPUT = 100;

/** Compatibility forms and accents folded to ASCII where Unicode allows (`é` → `e`, `１` → `1`). */
function foldToAscii(s: string): string {
  return s.normalize('NFKD').replace(/\p{M}+/gu, '');
}

/**
 * Letters and digits only, the LAST 12 kept: the distinguishing end of an order or invoice number
 * ("SmartDuka-Order-12345" → "kaOrder12345"). Undefined when no letter or digit is left.
 */
export function fitAccountReference(raw: string): string | undefined {
  const alnum = foldToAscii(raw).replace(/[^A-Za-z0-9]/g, '');
  return alnum.length > 0 ? alnum.slice(-ACCOUNT_REFERENCE_MAX_LENGTH) : undefined;
}

/**
 * Letters, digits, single spaces and `. , _ -` (characters such as `@ # &` are reported to break
 * requests), the FIRST 13 kept ("SmartDuka POS payment" → "SmartDuka POS"). Undefined when nothing is left.
 */
export function fitTransactionDesc(raw: string): string | undefined {
  const cleaned = foldToAscii(raw)
    .replace(/\s+/g, ' ')
    .replace(/[^A-Za-z0-9 .,_-]/g, '')
    .replace(/ {2,}/g, ' ')
    .trim();
  const fitted = cleaned.slice(0, TRANSACTION_DESC_MAX_LENGTH).trimEnd();
  return fitted.length > 0 ? fitted : undefined;
}

/**
 * The fitted value, for text the DTO already accepted (it refuses what leaves nothing); keeps callers
 * honest if they skip the DTO.
 */
export function fittedOrRefused(field: 'accountReference' | 'transactionDesc', raw: string): string {
  const value = field === 'accountReference' ? fitAccountReference(raw) : fitTransactionDesc(raw);
  if (value === undefined)
    throw new ValidationFailedError(`${field} has nothing M-Pesa can show once cleaned`, { field });
  return value;
}
