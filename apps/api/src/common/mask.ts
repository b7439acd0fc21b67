/**
 * Log-safe masking helpers. Use them for anything that ends up in logs or error details.
 */

/**
 * `254712345678` → `2547******78` (first 4 and last 2 digits kept).
 * Shorter digit strings (9–11 digits, e.g. `0712345678`) keep the first 2 and last 2.
 * Anything that does not look like a phone number is masked entirely (`***`).
 */
export function maskPhone(input: unknown): string {
  const raw = typeof input === 'number' && Number.isSafeInteger(input) ? String(input) : input;
  if (typeof raw !== 'string') return '***';
  const s = raw.trim();
  const m = /^(\+?)(\d+)$/.exec(s);
  if (!m) return '***';
  const [, plus, digits] = m;
  if (digits.length >= 12 && digits.length <= 15) {
    return plus + digits.slice(0, 4) + '*'.repeat(digits.length - 6) + digits.slice(-2);
  }
  if (digits.length >= 9 && digits.length <= 11) {
    return plus + digits.slice(0, 2) + '*'.repeat(digits.length - 4) + digits.slice(-2);
  }
  return '***';
}

/** Secrets (keys, passkeys, passwords, tokens) are never shown, not even their length. */
export function maskSecret(_secret?: unknown): string {
  return '***';
}

/**
 * Real CheckoutRequestIDs end with the payer's 9-digit national number since about 2022
 * (`ws_CO_13102022154520280706803305` for 254706803305): as logged, the last 9 digits are masked
 * but for the last 2, like maskPhone (`ws_CO_13102022154520280*******05`). The stamp before it
 * stays, so a log line can still be matched to a payment. Anything that is not a string is `***`.
 */
export function maskCheckoutRequestId(id: unknown): string {
  if (typeof id !== 'string') return '***';
  return id.replace(/(\d{9,})$/, (digits) => `${digits.slice(0, -9)}*******${digits.slice(-2)}`);
}

/** Every CheckoutRequestID-like token (`ws_CO_…`) in `text`, masked as maskCheckoutRequestId does. */
export function maskCheckoutRequestIdsIn(text: string): string {
  return text.replace(/ws_CO_[0-9A-Za-z_]*\d{9}(?![0-9A-Za-z_])/g, (id) => maskCheckoutRequestId(id));
}

/** 254/+254/0-prefixed Kenyan mobile numbers, optionally grouped (`0712 345 678`), not inside a longer word or number. */
const PREFIXED_PHONE_IN_TEXT = /(?<![0-9A-Za-z_.])(?:\+?254[ -]?|0)[17]\d{2}[ -]?\d{3}[ -]?\d{3}(?![0-9A-Za-z_]|\.\d)/g;
/** A bare national number (7xxxxxxxx / 1xxxxxxxx), not inside a longer word, number, decimal or dashed numeric id. */
const NATIONAL_PHONE_IN_TEXT = /(?<![0-9A-Za-z_.+])(?<!\d-)[17]\d{8}(?![0-9A-Za-z_]|[.-]\d)/g;

/**
 * Free text (an error message, a stack line, a provider's error description) as it may be logged:
 * CheckoutRequestID tails and every phone number form masked.
 */
export function maskPhonesIn(text: string): string {
  return maskCheckoutRequestIdsIn(text)
    .replace(PREFIXED_PHONE_IN_TEXT, (p) => maskPhone(p.replace(/[ -]/g, '')))
    .replace(NATIONAL_PHONE_IN_TEXT, (p) => maskPhone(p));
}
