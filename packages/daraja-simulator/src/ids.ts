/** Generators for the opaque identifiers Daraja hands out. */
import { randomInt } from 'node:crypto';
import { formatCheckoutStamp, nairobiMillis } from './time';

const DIGITS = '0123456789';
const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const ALNUM = `${UPPER}abcdefghijklmnopqrstuvwxyz${DIGITS}`;
const HEX = '0123456789abcdef';

export function randomFrom(alphabet: string, length: number): string {
  let out = '';
  for (let i = 0; i < length; i += 1) out += alphabet.charAt(randomInt(alphabet.length));
  return out;
}

/** OAuth access token: 28 random alphanumerics (opaque, not a JWT). */
export function newAccessToken(): string {
  return randomFrom(ALNUM, 28);
}

/** MerchantRequestID in the classic `29115-34620561-1` shape. */
export function newMerchantRequestId(): string {
  return `${randomInt(10000, 100000)}-${randomInt(10000000, 100000000)}-1`;
}

/**
 * CheckoutRequestID as Daraja has issued them since about 2022: `ws_CO_` + ddMMyyyyHHmmss (Nairobi)
 * + milliseconds + the payer's 9-digit national number (`ws_CO_13102022154520280706803305` for
 * 254706803305; see shared/reference/daraja-payloads). So a simulated id carries the phone number
 * exactly where a real one does, and code that logs ids unmasked is caught in tests.
 */
export function newCheckoutRequestId(at: Date, msisdn: string): string {
  const national = /^254(\d{9})$/.exec(msisdn)?.[1] ?? randomFrom(DIGITS, 9);
  return `ws_CO_${formatCheckoutStamp(at)}${nairobiMillis(at)}${national}`;
}

/** A CheckoutRequestID as the simulator logs it: the national number masked but for its last 2 digits. */
export function maskCheckoutRequestIds(text: string): string {
  return text.replace(/(ws_CO_[0-9A-Za-z_]*?)\d{7}(\d{2})(?![0-9A-Za-z_])/g, '$1*******$2');
}

/** M-Pesa receipt: 10 uppercase alphanumerics, starting with a letter (e.g. NLJ7RT61SV). */
export function newReceiptNumber(): string {
  return `${randomFrom(UPPER, 1)}${randomFrom(UPPER + DIGITS, 9)}`;
}

/** Gateway requestId in the `1c5b-4ba8-815c-ac45c57a3db01495926` shape. */
export function newRequestId(): string {
  return `${randomFrom(HEX, 4)}-${randomFrom(HEX, 4)}-${randomFrom(HEX, 4)}-${randomFrom(HEX, 12)}${randomFrom(DIGITS, 7)}`;
}
