/** Request validation for POST /v3/payments and POST /v3/charges?type=mpesa. Messages follow Flutterwave's "<field> is required" style. */
import { createHash } from 'node:crypto';
import { isHttpUrl, isPlainObject } from '../shared/http';
import { currencyExponent, parseMajorAmount } from '../shared/money';
import type { FlwCustomizations, FlwPaymentType } from './types';

export type Validated<T> = { ok: true; value: T } | { ok: false; message: string };

export interface ValidCustomer {
  email: string;
  name: string | null;
  phoneNumber: string | null;
}

export interface ValidPayment {
  txRef: string;
  amountMinor: bigint;
  currency: string;
  currencyDefaulted: boolean;
  redirectUrl: string | null;
  customer: ValidCustomer;
  customizations: FlwCustomizations;
  meta: Record<string, unknown> | null;
  paymentOptions: FlwPaymentType[];
  sessionDurationMinutes: number | null;
  maxRetryAttempt: number | null;
}

export interface ValidMpesaCharge {
  txRef: string;
  amountMinor: bigint;
  currency: 'KES';
  redirectUrl: string | null;
  customer: ValidCustomer;
  meta: Record<string, unknown> | null;
}

/** Currency Flutterwave falls back to when `currency` is omitted (the trap: always send KES). */
export const FLW_DEFAULT_CURRENCY = 'NGN';
export const MAX_TX_REF_LENGTH = 100;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const KENYAN_MSISDN = /^254(7|1)\d{8}$/;
const SUPPORTED_OPTIONS: readonly FlwPaymentType[] = ['card', 'mpesa'];

function fail<T>(message: string): Validated<T> {
  return { ok: false, message };
}

function optionalString(body: Record<string, unknown>, field: string, label = field): Validated<string | null> {
  const v = body[field];
  if (v === undefined || v === null || v === '') return { ok: true, value: null };
  if (typeof v !== 'string') return fail(`${label} must be a string`);
  return { ok: true, value: v };
}

function validTxRef(value: unknown): Validated<string> {
  if (value === undefined || value === null || value === '') return fail('tx_ref is required');
  if (typeof value !== 'string' || value.trim() === '') return fail('tx_ref must be a non-empty string');
  if (value.length > MAX_TX_REF_LENGTH) return fail(`tx_ref must not be longer than ${MAX_TX_REF_LENGTH} characters`);
  return { ok: true, value };
}

function validAmount(value: unknown, exponent: number, wholeOnly: boolean): Validated<bigint> {
  if (value === undefined || value === null || value === '') return fail('amount is required');
  const parsed = parseMajorAmount(value, wholeOnly ? 0 : exponent, true);
  if (!parsed.ok)
    return fail(`amount ${wholeOnly ? parsed.reason.replace('for this currency', 'for M-Pesa') : parsed.reason}`);
  return { ok: true, value: wholeOnly ? parsed.minor * 10n ** BigInt(exponent) : parsed.minor };
}

function validMeta(value: unknown): Validated<Record<string, unknown> | null> {
  if (value === undefined || value === null) return { ok: true, value: null };
  if (!isPlainObject(value)) return fail('meta must be an object');
  return { ok: true, value: structuredClone(value) };
}

function validRedirect(value: unknown): Validated<string | null> {
  if (value === undefined || value === null || value === '') return { ok: true, value: null };
  if (!isHttpUrl(value)) return fail('redirect_url must be a valid url');
  return { ok: true, value };
}

function validOptionalInt(
  body: Record<string, unknown>,
  field: string,
  min: number,
  max: number,
): Validated<number | null> {
  const v = body[field];
  if (v === undefined || v === null) return { ok: true, value: null };
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max)
    return fail(`${field} must be a whole number between ${min} and ${max}`);
  return { ok: true, value: n };
}

/** `"card, mpesa"` → the options this simulator can show; unknown ones are ignored like a real page would hide them. */
export function parsePaymentOptions(value: string | null, currency: string): FlwPaymentType[] {
  const wanted = (value ?? 'card')
    .split(',')
    .map((o) => o.trim().toLowerCase())
    .filter((o): o is FlwPaymentType => (SUPPORTED_OPTIONS as readonly string[]).includes(o))
    .filter((o) => o !== 'mpesa' || currency === 'KES');
  const unique = [...new Set(wanted)];
  return unique.length > 0 ? unique : ['card'];
}

/** SHA-256 checksum Flutterwave documents: amount + currency + customer_email + tx_ref + sha256(secret_key), hex. */
export function payloadHash(amount: string, currency: string, email: string, txRef: string, secretKey: string): string {
  const keyHash = createHash('sha256').update(secretKey).digest('hex');
  return createHash('sha256').update(`${amount}${currency}${email}${txRef}${keyHash}`).digest('hex');
}

export function validatePayment(body: Record<string, unknown>, secretKey: string): Validated<ValidPayment> {
  const txRef = validTxRef(body['tx_ref']);
  if (!txRef.ok) return txRef;

  let currency = FLW_DEFAULT_CURRENCY;
  let currencyDefaulted = true;
  if (body['currency'] !== undefined && body['currency'] !== null && body['currency'] !== '') {
    if (typeof body['currency'] !== 'string' || currencyExponent(body['currency']) === undefined)
      return fail('currency is not supported');
    currency = body['currency'];
    currencyDefaulted = false;
  }
  const exponent = currencyExponent(currency) ?? 2;
  const amount = validAmount(body['amount'], exponent, false);
  if (!amount.ok) return amount;

  const redirectUrl = validRedirect(body['redirect_url']);
  if (!redirectUrl.ok) return redirectUrl;

  const rawCustomer = body['customer'];
  if (rawCustomer === undefined || rawCustomer === null) return fail('customer is required');
  if (!isPlainObject(rawCustomer)) return fail('customer must be an object');
  const email = rawCustomer['email'];
  if (email === undefined || email === null || email === '') return fail('customer.email is required');
  if (typeof email !== 'string' || !EMAIL.test(email)) return fail('customer.email must be a valid email');
  const name = optionalString(rawCustomer, 'name', 'customer.name');
  if (!name.ok) return name;
  // The guide spells it `phonenumber`; some reference pages use `phone_number`. Accept both.
  const phone =
    rawCustomer['phonenumber'] !== undefined
      ? optionalString(rawCustomer, 'phonenumber', 'customer.phonenumber')
      : optionalString(rawCustomer, 'phone_number', 'customer.phone_number');
  if (!phone.ok) return phone;

  const options = optionalString(body, 'payment_options');
  if (!options.ok) return options;

  const customizations: FlwCustomizations = {};
  const rawCustomizations = body['customizations'];
  if (rawCustomizations !== undefined && rawCustomizations !== null) {
    if (!isPlainObject(rawCustomizations)) return fail('customizations must be an object');
    for (const key of ['title', 'description', 'logo'] as const) {
      const v = optionalString(rawCustomizations, key, `customizations.${key}`);
      if (!v.ok) return v;
      if (v.value !== null) customizations[key] = v.value;
    }
  }

  const meta = validMeta(body['meta']);
  if (!meta.ok) return meta;
  const sessionDuration = validOptionalInt(body, 'session_duration', 1, 1440);
  if (!sessionDuration.ok) return sessionDuration;
  const maxRetry = validOptionalInt(body, 'max_retry_attempt', 1, 100);
  if (!maxRetry.ok) return maxRetry;

  const hash = body['payload_hash'];
  if (hash !== undefined && hash !== null && hash !== '') {
    const expected = payloadHash(String(body['amount']), currency, email, txRef.value, secretKey);
    if (typeof hash !== 'string' || hash.toLowerCase() !== expected)
      return fail('Invalid payload_hash: the checksum does not match the payload');
  }

  return {
    ok: true,
    value: {
      txRef: txRef.value,
      amountMinor: amount.value,
      currency,
      currencyDefaulted,
      redirectUrl: redirectUrl.value,
      customer: { email, name: name.value, phoneNumber: phone.value },
      customizations,
      meta: meta.value,
      paymentOptions: parsePaymentOptions(options.value, currency),
      sessionDurationMinutes: sessionDuration.value,
      maxRetryAttempt: maxRetry.value,
    },
  };
}

export function validateMpesaCharge(body: Record<string, unknown>): Validated<ValidMpesaCharge> {
  const txRef = validTxRef(body['tx_ref']);
  if (!txRef.ok) return txRef;
  const currency = body['currency'];
  if (currency === undefined || currency === null || currency === '') return fail('currency is required');
  if (currency !== 'KES') return fail('currency must be KES for M-Pesa charges');
  const amount = validAmount(body['amount'], 2, true);
  if (!amount.ok) return amount;
  const email = body['email'];
  if (email === undefined || email === null || email === '') return fail('email is required');
  if (typeof email !== 'string' || !EMAIL.test(email)) return fail('email must be a valid email');
  const phone = body['phone_number'];
  if (phone === undefined || phone === null || phone === '') return fail('phone_number is required');
  if (typeof phone !== 'string' || !KENYAN_MSISDN.test(phone))
    return fail('phone_number must be a Kenyan M-Pesa number in the format 2547XXXXXXXX or 2541XXXXXXXX');
  const fullname = optionalString(body, 'fullname');
  if (!fullname.ok) return fullname;
  const meta = validMeta(body['meta']);
  if (!meta.ok) return meta;
  const redirectUrl = validRedirect(body['redirect_url']);
  if (!redirectUrl.ok) return redirectUrl;
  return {
    ok: true,
    value: {
      txRef: txRef.value,
      amountMinor: amount.value,
      currency: 'KES',
      redirectUrl: redirectUrl.value,
      customer: { email, name: fullname.value, phoneNumber: phone },
      meta: meta.value,
    },
  };
}
