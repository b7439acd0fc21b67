import { InvalidPhoneNumberError } from './mpesa.errors';

/** What Daraja accepts for PartyA / PhoneNumber: 254 + 7xxxxxxxx or 1xxxxxxxx. */
export const DARAJA_MSISDN_REGEX = /^254(7|1)\d{8}$/;

/** Generous upper bound on the raw input (formatting characters included). */
const MAX_RAW_LENGTH = 32;

/**
 * Normalises a Kenyan mobile number to `2547XXXXXXXX` / `2541XXXXXXXX`.
 *
 * Accepted: `+254 712 345 678`, `254712345678`, `0712345678`, `712345678`, `0112345678`,
 * `112345678`, with spaces, dashes or parentheses anywhere. Format check only: with
 * mobile number portability any 07xx/01xx number may be an M-Pesa line, so no
 * Safaricom-prefix rejection here.
 *
 * @throws InvalidPhoneNumberError for anything else (non-strings included).
 */
export function formatPhoneNumber(input: unknown): string {
  if (typeof input !== 'string') throw new InvalidPhoneNumberError(undefined);
  if (input.length === 0 || input.length > MAX_RAW_LENGTH) throw new InvalidPhoneNumberError(input);

  const compact = input.replace(/[\s\-()]/g, '');
  let national: string | undefined;
  let m: RegExpMatchArray | null;
  if ((m = /^\+?254(\d{9})$/.exec(compact))) national = m[1];
  else if ((m = /^0(\d{9})$/.exec(compact))) national = m[1];
  else if ((m = /^(\d{9})$/.exec(compact))) national = m[1];

  const msisdn = national === undefined ? undefined : `254${national}`;
  if (msisdn === undefined || !DARAJA_MSISDN_REGEX.test(msisdn)) throw new InvalidPhoneNumberError(input);
  return msisdn;
}

/** True when `s` is already in Daraja's `2547XXXXXXXX` / `2541XXXXXXXX` form. */
export function isDarajaMsisdn(s: unknown): s is string {
  return typeof s === 'string' && DARAJA_MSISDN_REGEX.test(s);
}
