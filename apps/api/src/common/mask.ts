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
