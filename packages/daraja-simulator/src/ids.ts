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

/** CheckoutRequestID: `ws_CO_` + ddMMyyyyHHmmss (Nairobi) + milliseconds + 9 random digits. */
export function newCheckoutRequestId(at: Date): string {
  return `ws_CO_${formatCheckoutStamp(at)}${nairobiMillis(at)}${randomFrom(DIGITS, 9)}`;
}

/** M-Pesa receipt: 10 uppercase alphanumerics, starting with a letter (e.g. NLJ7RT61SV). */
export function newReceiptNumber(): string {
  return `${randomFrom(UPPER, 1)}${randomFrom(UPPER + DIGITS, 9)}`;
}

/** Gateway requestId in the `1c5b-4ba8-815c-ac45c57a3db01495926` shape. */
export function newRequestId(): string {
  return `${randomFrom(HEX, 4)}-${randomFrom(HEX, 4)}-${randomFrom(HEX, 4)}-${randomFrom(HEX, 12)}${randomFrom(DIGITS, 7)}`;
}
