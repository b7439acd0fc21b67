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

/**
 * `wanjiku@example.com` → `w***@example.com`: the first letter and the domain only, for audit data
 * (emails never reach logs). Anything that is not a string with a local part and a domain → `***`.
 */
export function maskEmail(email: unknown): string {
  if (typeof email !== 'string') return '***';
  const at = email.lastIndexOf('@');
  if (at < 1 || at === email.length - 1) return '***';
  return `${email[0]}***@${email.slice(at + 1)}`;
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

/**
 * A CheckoutRequestID as the API answers it (maskCheckoutRequestId): what stood before the payer's
 * national number, 7 stars, the number's last 2 digits. At most 100 characters, like a full id.
 */
export const MASKED_CHECKOUT_REQUEST_ID = /^([A-Za-z0-9_-]{1,91})\*{7}(\d{2})$/;

/** The parts of a masked CheckoutRequestID (`ws_CO_13102022154520280*******78`), or null if it is not one. */
export function parseMaskedCheckoutRequestId(id: string): { prefix: string; lastTwo: string } | null {
  const m = MASKED_CHECKOUT_REQUEST_ID.exec(id);
  return m ? { prefix: m[1], lastTwo: m[2] } : null;
}

/**
 * Every CheckoutRequestID-like token (`ws_CO_…`) in `text`, masked as maskCheckoutRequestId does.
 * One already masked (`ws_CO_…*******78`) is left as it is.
 */
export function maskCheckoutRequestIdsIn(text: string): string {
  return text.replace(/ws_CO_[0-9A-Za-z_]*\d{9}(?![0-9A-Za-z_*])/g, (id) => maskCheckoutRequestId(id));
}

/**
 * A stored JSON answer (an idempotent replay's body) with every CheckoutRequestID in it masked:
 * answers stored before ids were answered masked still held them in full.
 */
export function maskCheckoutRequestIdsInJson<T>(value: T): T {
  if (value === null || value === undefined) return value;
  return JSON.parse(maskCheckoutRequestIdsIn(JSON.stringify(value))) as T;
}

/**
 * A Kenyan mobile number not inside a longer number: 254/+254 (also URL-encoded %2B254) or 0, then
 * 7xx/1xx and six digits, optionally grouped (`0712 345 678`, `+254-712-345-678`); or the bare
 * national number 7xxxxxxxx / 1xxxxxxxx. A URL escape before it (`%20`) is a boundary too. Letters,
 * `_` and `.` around it are boundaries (`ord_0712345678`, `INV712345678`, `0712345678x`); which of
 * those matches really are phone numbers is for isPhoneNumberAt to say.
 */
const PHONE_CANDIDATE =
  /(?:(?<![0-9%])|(?<=%[0-9A-Fa-f]{2}))(?:(?:(?:\+|%2[Bb])?254[ -]?|0)[17]\d{2}[ -]?\d{3}[ -]?\d{3}|(?<national>[17]\d{8}))(?!\d)/g;
const UUID_IN_TEXT = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
/** A 2019 CheckoutRequestID (`ws_CO_DMZ_264695293_11032019122104433`): its first number is no phone number. */
const DMZ_CHECKOUT_ID = /ws_CO_DMZ_\d+_\d+/g;
/** Hex blobs: digests, trace and span ids (16+ hex digits). Shorter words are ids a phone may be typed into. */
const HEX_BLOB = /^[0-9A-Fa-f]{16,}$/;
const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
const isWordChar = (c: string | undefined): boolean => c !== undefined && /[0-9A-Za-z]/.test(c);

/**
 * Whether the candidate text[start, end) is a phone number and not a part of something else:
 * not a decimal (`0.0712345678`, `1.712345678`, `712345678.25`), for the bare national form not a
 * part of a dashed numeric id (`12345-171234567-1`, a MerchantRequestID) nor after `+`; not digits
 * inside a hex blob (a word of 16+ hex digits: `…ce9171234567ab…`); not inside a UUID or a DMZ
 * CheckoutRequestID (`skip`: their spans).
 */
function isPhoneNumberAt(
  text: string,
  start: number,
  end: number,
  national: boolean,
  skip: [number, number][],
): boolean {
  if (skip.some(([s, e]) => start < e && s < end)) return false;
  const before = text[start - 1];
  const after = text[end];
  if (before === '.' && isDigit(text[start - 2])) return false;
  if (national) {
    if (before === '+') return false;
    if (before === '-' && isDigit(text[start - 2])) return false;
    if ((after === '.' || after === '-') && isDigit(text[end + 1])) return false;
  }
  if (isWordChar(before) || isWordChar(after)) {
    let s = start;
    let e = end;
    // A URL escape (%20, %2F) ends a word.
    const escapeEndsAt = (i: number) => text[i - 3] === '%' && /^[0-9A-Fa-f]{2}$/.test(text.slice(i - 2, i));
    while (isWordChar(text[s - 1]) && !escapeEndsAt(s)) s--;
    while (isWordChar(text[e])) e++;
    if (HEX_BLOB.test(text.slice(s, e))) return false;
  }
  return true;
}

/** The spans of `re`'s matches in `text`. */
function spansOf(re: RegExp, text: string): [number, number][] {
  return [...text.matchAll(re)].map((m) => [m.index, m.index + m[0].length]);
}

/**
 * Free text (an error message, a stack line, a provider's error description, a request URL) as it
 * may be logged: CheckoutRequestID tails and every phone number form masked, also where a phone
 * number touches a letter, `_` or `.` (`/orders/ord_0712345678` → `/orders/ord_07******78`).
 * UUIDs, hex digests, timestamps, decimals and dashed numeric ids stay as they are.
 */
export function maskPhonesIn(text: string): string {
  const masked = maskCheckoutRequestIdsIn(text);
  const skip = [...spansOf(UUID_IN_TEXT, masked), ...spansOf(DMZ_CHECKOUT_ID, masked)];
  return masked.replace(PHONE_CANDIDATE, (phone: string, ...rest: unknown[]) => {
    const groups = rest[rest.length - 1] as { national?: string };
    const offset = rest[rest.length - 3] as number;
    if (!isPhoneNumberAt(masked, offset, offset + phone.length, groups.national !== undefined, skip)) return phone;
    return maskPhone(phone.replace(/^%2B/i, '+').replace(/[ -]/g, ''));
  });
}
