import { isPlainObject } from '../../../common/json';
import { normaliseMpesaReceipt } from './receipt';

/**
 * Daraja's C2B validation / confirmation body (daraja.md §7.2, daraja-more.md §3): 13 string
 * fields, read strictly. Pure: no hashing here (the caller hashes a plain MSISDN with its secret).
 */
export interface C2bPayload {
  /** null when the body carries no usable TransID */
  transId: string | null;
  transactionType: string | null;
  transTime: string | null;
  /** null when TransAmount is not a whole, positive number of shillings */
  amountMinor: bigint | null;
  businessShortcode: string | null;
  billRefNumber: string | null;
  invoiceNumber: string | null;
  thirdPartyTransId: string | null;
  msisdn: Msisdn;
  /** "John D." (first name and the last name's initial); null when none was given */
  customerName: string | null;
  /** Why this is not a payment we can book (bad amount, no TransID, not an object), else null. */
  problem: string | null;
}

/**
 * The MSISDN as it came: plain `2547…`/`2541…` (12 digits), masked (with `*`), or Safaricom's
 * SHA-256 hex of the plain 12 digits. `plain` is only handed to the caller to hash: never stored.
 */
export type Msisdn =
  | { form: 'plain'; plain: string }
  | { form: 'masked'; masked: string }
  | { form: 'sha256'; sha256: string }
  | { form: 'none' }
  | { form: 'unknown' };

const TRANS_ID = /^[A-Z0-9]{6,20}$/;
const TRANS_TIME = /^\d{14}$/;
/** "100", "100.00", "1,000.00": whole shillings, at most 9 digits (Daraja's limit is KES 250,000 a payment, far below). */
const AMOUNT = /^(\d{1,3}(?:,\d{3})+|\d{1,9})(?:\.(\d{1,2}))?$/;

/**
 * Control characters (NUL above all: Postgres text cannot hold it, so a confirmation carrying one
 * failed to be stored at all and was answered 500) are no part of any field Daraja sends.
 */
const CONTROL = /[\u0000-\u001f\u007f]/g;

export function withoutControlCharacters(s: string): string {
  return s.replace(CONTROL, '');
}

/** A field as text: strings as sent (control characters dropped, trimmed), numbers as their digits; anything else null. */
function text(body: Record<string, unknown>, key: string, max = 100): string | null {
  const v = body[key];
  const s =
    typeof v === 'string'
      ? v.replace(CONTROL, '').trim()
      : typeof v === 'number' && Number.isFinite(v)
        ? String(v)
        : null;
  if (s === null || s === '') return null;
  return s.slice(0, max);
}

/** TransAmount → minor units of KES, or the reason it is not an amount we book. */
export function parseC2bAmount(raw: unknown): { minor: bigint } | { problem: string } {
  const s = typeof raw === 'string' ? raw.trim() : typeof raw === 'number' ? String(raw) : null;
  if (s === null || s === '') return { problem: 'AMOUNT_MISSING' };
  const m = AMOUNT.exec(s);
  if (!m) return { problem: 'AMOUNT_INVALID' };
  const cents = (m[2] ?? '').padEnd(2, '0');
  // M-Pesa moves whole shillings (daraja.md §0.5): a fraction is not a real payment's amount.
  if (/[1-9]/.test(cents)) return { problem: 'AMOUNT_NOT_WHOLE_SHILLINGS' };
  const minor = BigInt(m[1].replace(/,/g, '')) * 100n;
  if (minor <= 0n) return { problem: 'AMOUNT_NOT_POSITIVE' };
  return { minor };
}

/** Plain, masked or SHA-256 (daraja-more.md §3: `/^[0-9a-f]{64}$/i` hash · contains `*` masked · `/^254\d{9}$/` plain). */
export function classifyMsisdn(raw: unknown): Msisdn {
  const s =
    typeof raw === 'string' ? raw.trim() : typeof raw === 'number' && Number.isSafeInteger(raw) ? String(raw) : '';
  if (s === '') return { form: 'none' };
  if (/^[0-9a-f]{64}$/i.test(s)) return { form: 'sha256', sha256: s.toLowerCase() };
  const compact = s.replace(/[\s-]/g, '');
  if (/^\+?254[17]\d{8}$/.test(compact)) return { form: 'plain', plain: compact.replace(/^\+/, '') };
  if (compact.includes('*') && /^[0-9*]{6,15}$/.test(compact)) {
    // A mask hides at least 3 digits (Daraja's own example 25470****149 shows 8 of 12): one that
    // shows (nearly) the whole number is not kept.
    const digits = compact.replace(/\*/g, '').length;
    const stars = compact.length - digits;
    if (digits <= 8 && stars >= 3) return { form: 'masked', masked: compact };
  }
  return { form: 'unknown' };
}

/** "John", "Doe" → "John D."; names longer than 30 characters are cut. */
export function maskCustomerName(first: unknown, last: unknown): string | null {
  const f = typeof first === 'string' ? first.replace(CONTROL, '').trim().slice(0, 30) : '';
  const l = typeof last === 'string' ? last.replace(CONTROL, '').trim() : '';
  // A name field carrying digits is not a name (it could be a phone number): never shown.
  const clean = (s: string) => (/\d/.test(s) ? '' : s);
  const initial = clean(l).charAt(0).toUpperCase();
  const name = [clean(f), initial ? `${initial}.` : ''].filter(Boolean).join(' ');
  return name || null;
}

export function parseC2bPayload(body: unknown): C2bPayload {
  const empty: C2bPayload = {
    transId: null,
    transactionType: null,
    transTime: null,
    amountMinor: null,
    businessShortcode: null,
    billRefNumber: null,
    invoiceNumber: null,
    thirdPartyTransId: null,
    msisdn: { form: 'none' },
    customerName: null,
    problem: 'NOT_A_C2B_BODY',
  };
  if (!isPlainObject(body)) return empty;
  const rawId = text(body, 'TransID', 40);
  const transId = rawId === null ? null : normaliseMpesaReceipt(rawId);
  const amount = parseC2bAmount(body['TransAmount']);
  const transTime = text(body, 'TransTime', 20);
  let problem: string | null = null;
  if (!transId || !TRANS_ID.test(transId)) problem = 'TRANS_ID_INVALID';
  else if ('problem' in amount) problem = amount.problem;
  return {
    transId: transId && TRANS_ID.test(transId) ? transId : null,
    transactionType: text(body, 'TransactionType', 60),
    transTime: transTime && TRANS_TIME.test(transTime) ? transTime : null,
    amountMinor: 'minor' in amount ? amount.minor : null,
    businessShortcode: text(body, 'BusinessShortCode', 20),
    billRefNumber: text(body, 'BillRefNumber', 40),
    invoiceNumber: text(body, 'InvoiceNumber', 40),
    thirdPartyTransId: text(body, 'ThirdPartyTransID', 60),
    msisdn: classifyMsisdn(body['MSISDN']),
    customerName: maskCustomerName(body['FirstName'], body['LastName']),
    problem,
  };
}

/** Daraja's acknowledgement of a confirmation (daraja.md §7.3: ResultCode always 0, a number). */
export const C2B_CONFIRMATION_ACK = Object.freeze({ ResultCode: 0 as const, ResultDesc: 'Success' as const });

/** Documented validation result codes (daraja.md §7.3). */
export const C2B_REJECT = {
  invalidMsisdn: 'C2B00011',
  invalidAccountNumber: 'C2B00012',
  invalidAmount: 'C2B00013',
  invalidKyc: 'C2B00014',
  invalidShortcode: 'C2B00015',
  otherError: 'C2B00016',
} as const;
export type C2bRejectCode = (typeof C2B_REJECT)[keyof typeof C2B_REJECT];

export type C2bValidationAnswer =
  { ResultCode: '0'; ResultDesc: 'Accepted' } | { ResultCode: C2bRejectCode; ResultDesc: 'Rejected' };

export const C2B_ACCEPT: C2bValidationAnswer = Object.freeze({ ResultCode: '0', ResultDesc: 'Accepted' });
export function c2bReject(code: C2bRejectCode): C2bValidationAnswer {
  return { ResultCode: code, ResultDesc: 'Rejected' };
}
