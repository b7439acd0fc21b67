/** Request-body validation for STK push and STK query, in the order the simulator checks fields. */
import { badRequest, ERRORS, type DarajaError } from './errors';
import { isWithinTolerance, parseNairobiTimestamp } from './time';
import type { SimulatorAccount } from './types';

export type Validation<T> = { ok: true; value: T } | { ok: false; error: DarajaError };

export interface ValidationContext {
  /** the Lipa-na-M-Pesa account of a shortcode, if there is one */
  account: (shortcode: string) => SimulatorAccount | undefined;
  /** consumer key of the app whose token made the call */
  consumerKey: string;
  /** whether that app went live for this shortcode */
  appMayUse: (shortcode: string) => boolean;
  now: Date;
  /** null = no window (any real date; the Password must still match the Timestamp sent) */
  timestampToleranceSeconds: number | null;
}

/** The Timestamp of a valid request, as sent, and how far it is from Nairobi now. */
export interface SentTimestamp {
  timestamp: string;
  /** the Timestamp read as Nairobi wall-clock time minus now, in whole seconds (a UTC Timestamp ≈ -10800) */
  timestampSkewSeconds: number;
}

export interface ValidPush extends SentTimestamp {
  consumerKey: string;
  shortcode: string;
  transactionType: TransactionType;
  amount: number;
  partyA: string;
  partyB: string;
  phoneNumber: string;
  callbackUrl: string;
  accountReference: string;
  transactionDesc: string;
  /** false when TransactionType/PartyB do not match the account (accepted, answered later with 2028). */
  productPermitted: boolean;
}

export interface ValidQuery extends SentTimestamp {
  consumerKey: string;
  shortcode: string;
  checkoutRequestId: string;
}

export const TRANSACTION_TYPES = ['CustomerPayBillOnline', 'CustomerBuyGoodsOnline'] as const;
export type TransactionType = (typeof TRANSACTION_TYPES)[number];

export const MIN_AMOUNT = 1;
export const MAX_AMOUNT = 250_000;
export const MAX_ACCOUNT_REFERENCE = 12;
export const MAX_TRANSACTION_DESC = 13;
export const MSISDN_PATTERN = /^254(7|1)\d{8}$/;
export const FORBIDDEN_CALLBACK_WORDS = ['mpesa', 'm-pesa', 'safaricom', 'exe', 'exec', 'cmd', 'sql', 'query'] as const;

const SHORTCODE_PATTERN = /^\d{5,7}$/;

/** `number` or numeric string → digit string; anything else → undefined. */
function digitString(value: unknown): string | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? String(value) : undefined;
  if (typeof value === 'string') return /^\d+$/.test(value) ? value : undefined;
  return undefined;
}

/** Non-empty string, or a number taken as its decimal text. */
function textValue(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

export function stkPassword(shortcode: string, passkey: string, timestamp: string): string {
  return Buffer.from(`${shortcode}${passkey}${timestamp}`, 'utf8').toString('base64');
}

export function parseAmount(value: unknown): number | undefined {
  const digits = digitString(value);
  if (digits === undefined) return undefined;
  const amount = Number(digits);
  return amount >= MIN_AMOUNT && amount <= MAX_AMOUNT ? amount : undefined;
}

export function parseMsisdn(value: unknown): string | undefined {
  const digits = digitString(value);
  return digits !== undefined && MSISDN_PATTERN.test(digits) ? digits : undefined;
}

/** Applies Daraja's CallBackURL rules (daraja.md §2.4); returns the URL unchanged when acceptable. */
export function parseCallbackUrl(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length === 0 || /\s/.test(value)) return undefined;
  const authority = /^https?:\/\/([^/?#]+)/i.exec(value);
  if (!authority) return undefined;
  const hostPort = authority[1] ?? '';
  if (hostPort.includes('@') || hostPort !== hostPort.toLowerCase()) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    return undefined;
  }
  if ((parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.hostname === '') return undefined;
  const lower = value.toLowerCase();
  if (FORBIDDEN_CALLBACK_WORDS.some((word) => lower.includes(word))) return undefined;
  return value;
}

/** BusinessShortCode + Timestamp + Password, shared by push and query. */
function validateCredentials(
  body: Record<string, unknown>,
  ctx: ValidationContext,
): Validation<{ shortcode: string; account: SimulatorAccount } & SentTimestamp> {
  const shortcode = digitString(body['BusinessShortCode']);
  if (shortcode === undefined || !SHORTCODE_PATTERN.test(shortcode))
    return { ok: false, error: badRequest('BusinessShortCode') };
  const account = ctx.account(shortcode);
  // A shortcode the calling app did not go live for is, to that app, a merchant that does not exist
  // (daraja.md §2.3: "BusinessShortCode ≠ Go-Live shortcode"). Checked before the Password, as Daraja resolves
  // the merchant first: a foreign app learns nothing about the passkey.
  if (!account || !ctx.appMayUse(shortcode)) return { ok: false, error: ERRORS.merchantDoesNotExist };

  const timestamp = body['Timestamp'];
  const instant = typeof timestamp === 'string' ? parseNairobiTimestamp(timestamp) : undefined;
  const tolerance = ctx.timestampToleranceSeconds;
  if (
    typeof timestamp !== 'string' ||
    !instant ||
    (tolerance !== null && !isWithinTolerance(instant, ctx.now, tolerance))
  ) {
    return { ok: false, error: badRequest('Timestamp') };
  }

  if (body['Password'] !== stkPassword(shortcode, account.passkey, timestamp)) {
    return { ok: false, error: ERRORS.wrongCredentials };
  }
  const timestampSkewSeconds = Math.round((instant.getTime() - ctx.now.getTime()) / 1000);
  return { ok: true, value: { shortcode, account, timestamp, timestampSkewSeconds } };
}

function isProductPermitted(
  type: TransactionType,
  shortcode: string,
  partyB: string,
  account: SimulatorAccount,
): boolean {
  if (type === 'CustomerPayBillOnline') return partyB === shortcode;
  return (account.tillNumbers ?? []).includes(partyB);
}

export function validatePush(body: Record<string, unknown>, ctx: ValidationContext): Validation<ValidPush> {
  const creds = validateCredentials(body, ctx);
  if (!creds.ok) return creds;
  const { shortcode, account, timestamp, timestampSkewSeconds } = creds.value;

  const type = body['TransactionType'];
  const transactionType = TRANSACTION_TYPES.find((t) => t === type);
  if (!transactionType) return { ok: false, error: badRequest('TransactionType') };

  const amount = parseAmount(body['Amount']);
  if (amount === undefined) return { ok: false, error: badRequest('Amount') };

  const partyA = parseMsisdn(body['PartyA']);
  if (partyA === undefined) return { ok: false, error: badRequest('PartyA') };

  const partyB = digitString(body['PartyB']);
  if (partyB === undefined || !SHORTCODE_PATTERN.test(partyB)) return { ok: false, error: badRequest('PartyB') };

  const phoneNumber = parseMsisdn(body['PhoneNumber']);
  if (phoneNumber === undefined) return { ok: false, error: badRequest('PhoneNumber') };

  const callbackUrl = parseCallbackUrl(body['CallBackURL']);
  if (callbackUrl === undefined) return { ok: false, error: badRequest('CallBackURL') };

  const accountReference = textValue(body['AccountReference']);
  if (
    accountReference === undefined ||
    accountReference.length === 0 ||
    accountReference.length > MAX_ACCOUNT_REFERENCE
  ) {
    return { ok: false, error: badRequest('AccountReference') };
  }

  const transactionDesc = textValue(body['TransactionDesc']);
  if (transactionDesc === undefined || transactionDesc.length === 0 || transactionDesc.length > MAX_TRANSACTION_DESC) {
    return { ok: false, error: badRequest('TransactionDesc') };
  }

  return {
    ok: true,
    value: {
      consumerKey: ctx.consumerKey,
      shortcode,
      timestamp,
      timestampSkewSeconds,
      transactionType,
      amount,
      partyA,
      partyB,
      phoneNumber,
      callbackUrl,
      accountReference,
      transactionDesc,
      productPermitted: isProductPermitted(transactionType, shortcode, partyB, account),
    },
  };
}

export function validateQuery(body: Record<string, unknown>, ctx: ValidationContext): Validation<ValidQuery> {
  const creds = validateCredentials(body, ctx);
  if (!creds.ok) return creds;
  const checkoutRequestId = body['CheckoutRequestID'];
  if (typeof checkoutRequestId !== 'string' || checkoutRequestId.trim() === '') {
    return { ok: false, error: badRequest('CheckoutRequestID') };
  }
  const { shortcode, timestamp, timestampSkewSeconds } = creds.value;
  return {
    ok: true,
    value: { consumerKey: ctx.consumerKey, shortcode, timestamp, timestampSkewSeconds, checkoutRequestId },
  };
}
