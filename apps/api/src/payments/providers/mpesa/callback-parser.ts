import { isPlainObject } from '../../../common/json';
import { CallbackShapeError } from './mpesa.errors';
import type { ParsedStkCallback, StkCallbackMetadata } from './daraja.types';
import { mapResultCode, normaliseResultCode } from './result-codes';
import { normaliseMpesaReceipt } from './receipt';

/** Upper bound for ids / short string fields: Daraja ids are ~30–40 chars. */
const MAX_ID_LENGTH = 200;
/** Upper bound for ResultDesc. */
const MAX_DESC_LENGTH = 1000;
/** Upper bound on the number of CallbackMetadata items (Daraja sends 4–5). */
const MAX_ITEMS = 50;

type Json = Record<string, unknown>;

/** Ids and receipts are plain ASCII; anything else (NUL, control or non-ASCII characters) is not Daraja. */
const VISIBLE_ASCII = /^[\x21-\x7e]+$/;

function fail(message: string): never {
  throw new CallbackShapeError(`Invalid STK callback: ${message}`);
}

function requireId(obj: Json, field: string): string {
  const v = obj[field];
  if (typeof v !== 'string') fail(`Body.stkCallback.${field} must be a string`);
  const s = v.trim();
  if (s.length === 0) fail(`Body.stkCallback.${field} must not be empty`);
  if (s.length > MAX_ID_LENGTH) fail(`Body.stkCallback.${field} is longer than ${MAX_ID_LENGTH} characters`);
  if (!VISIBLE_ASCII.test(s)) fail(`Body.stkCallback.${field} must contain only visible ASCII characters`);
  return s;
}

function parseResultCode(v: unknown): string {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) fail('Body.stkCallback.ResultCode must be an integer');
    return String(v);
  }
  if (typeof v === 'string') {
    const s = v.trim();
    // Numeric strings ("0", "1032"), plus Daraja's non-numeric codes such as "SFC_IC0003".
    if (/^-?\d{1,15}$/.test(s) || /^(?=.*\d)[A-Za-z][A-Za-z0-9_.-]{0,31}$/.test(s)) return normaliseResultCode(s);
    fail('Body.stkCallback.ResultCode must be a number or a numeric string');
  }
  fail('Body.stkCallback.ResultCode must be a number or a numeric string');
}

function parseAmount(v: unknown): number {
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v;
  if (typeof v === 'string' && /^\d{1,12}(\.\d{1,4})?$/.test(v.trim())) return Number(v.trim());
  fail('CallbackMetadata Amount must be a non-negative number');
}

function parseReceipt(v: unknown): string {
  if (typeof v !== 'string') fail('CallbackMetadata MpesaReceiptNumber must be a string');
  const s = v.trim();
  if (s.length === 0 || s.length > MAX_ID_LENGTH) fail('CallbackMetadata MpesaReceiptNumber has an invalid length');
  if (!VISIBLE_ASCII.test(s)) fail('CallbackMetadata MpesaReceiptNumber must contain only visible ASCII characters');
  return normaliseMpesaReceipt(s);
}

function parseTransactionDate(v: unknown): string {
  const s = typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : typeof v === 'string' ? v.trim() : undefined;
  if (s === undefined || !/^\d{14}$/.test(s))
    fail('CallbackMetadata TransactionDate must be a 14-digit yyyyMMddHHmmss value');
  return s;
}

function parsePhone(v: unknown): string {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v <= 0) fail('CallbackMetadata PhoneNumber must be a positive integer');
    return String(v);
  }
  if (typeof v === 'string') {
    // Kept verbatim: Safaricom may start masking/hashing it (as it did for C2B MSISDN).
    const s = v.trim();
    if (s.length === 0 || s.length > MAX_ID_LENGTH) fail('CallbackMetadata PhoneNumber has an invalid length');
    return s;
  }
  fail('CallbackMetadata PhoneNumber must be a number or a string');
}

const METADATA_PARSERS = {
  Amount: (v: unknown, m: StkCallbackMetadata) => (m.amount = parseAmount(v)),
  MpesaReceiptNumber: (v: unknown, m: StkCallbackMetadata) => (m.mpesaReceiptNumber = parseReceipt(v)),
  TransactionDate: (v: unknown, m: StkCallbackMetadata) => (m.transactionDate = parseTransactionDate(v)),
  PhoneNumber: (v: unknown, m: StkCallbackMetadata) => (m.phoneNumber = parsePhone(v)),
} as const;

function parseMetadata(v: unknown): StkCallbackMetadata {
  if (!isPlainObject(v)) fail('Body.stkCallback.CallbackMetadata must be an object');
  const items = v.Item;
  if (!Array.isArray(items)) fail('Body.stkCallback.CallbackMetadata.Item must be an array');
  if (items.length > MAX_ITEMS) fail(`Body.stkCallback.CallbackMetadata.Item has more than ${MAX_ITEMS} entries`);

  const metadata: StkCallbackMetadata = {};
  const seen = new Set<string>();
  items.forEach((item, i) => {
    if (!isPlainObject(item)) fail(`CallbackMetadata.Item[${i}] must be an object`);
    const name = item.Name;
    if (typeof name !== 'string' || name.length === 0 || name.length > MAX_ID_LENGTH) {
      fail(`CallbackMetadata.Item[${i}].Name must be a non-empty string`);
    }
    if (!Object.prototype.hasOwnProperty.call(METADATA_PARSERS, name)) return; // Balance and anything unknown: ignored
    if (seen.has(name)) fail(`CallbackMetadata.Item contains ${name} more than once`);
    seen.add(name);
    const value = item.Value;
    if (value === undefined || value === null) return; // present without a value: treat as missing
    METADATA_PARSERS[name as keyof typeof METADATA_PARSERS](value, metadata);
  });
  return metadata;
}

/**
 * Strict parser for the STK callback Daraja POSTs to our CallBackURL:
 * `{Body:{stkCallback:{MerchantRequestID, CheckoutRequestID, ResultCode, ResultDesc, CallbackMetadata?}}}`.
 *
 * - ResultCode (a JSON number in callbacks) is normalised to a string.
 * - CallbackMetadata.Item is read as a map by Name: order is irrelevant, items may be missing,
 *   Balance (often without Value, sometimes a weird string) is ignored.
 * - A success (ResultCode 0) without CallbackMetadata is returned with `metadata` undefined:
 *   the caller decides what to do with it.
 *
 * @throws CallbackShapeError when the body does not have this shape / these types.
 */
export function parseStkCallback(body: unknown): ParsedStkCallback {
  if (!isPlainObject(body)) fail('body must be a JSON object');
  const outer = body.Body;
  if (!isPlainObject(outer)) fail('Body must be an object');
  const cb = outer.stkCallback;
  if (!isPlainObject(cb)) fail('Body.stkCallback must be an object');

  const merchantRequestId = requireId(cb, 'MerchantRequestID');
  const checkoutRequestId = requireId(cb, 'CheckoutRequestID');
  if (!('ResultCode' in cb)) fail('Body.stkCallback.ResultCode is missing');
  const resultCode = parseResultCode(cb.ResultCode);
  const desc = cb.ResultDesc;
  if (typeof desc !== 'string') fail('Body.stkCallback.ResultDesc must be a string');
  if (desc.length > MAX_DESC_LENGTH) fail(`Body.stkCallback.ResultDesc is longer than ${MAX_DESC_LENGTH} characters`);

  const metadata =
    cb.CallbackMetadata === undefined || cb.CallbackMetadata === null ? undefined : parseMetadata(cb.CallbackMetadata);

  const parsed: ParsedStkCallback = {
    merchantRequestId,
    checkoutRequestId,
    resultCode,
    // Control characters (NUL in particular) cannot be stored in Postgres text/jsonb: replace them.
    resultDesc: desc.replace(/[\u0000-\u001f\u007f]/g, ' '),
    outcome: mapResultCode(resultCode),
  };
  if (metadata !== undefined) parsed.metadata = metadata;
  return parsed;
}
