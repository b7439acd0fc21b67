/**
 * Daraja Pull Transactions (daraja-more.md §2): the register and query requests and the reading of
 * their answers. Pure: no HTTP, no database. C2B only, the last 48 hours, one-time registration.
 *
 * The ambiguity this module keeps visible: a query answered `1001` (HTTP 200) means "no rows in the
 * window" OR "this shortcode is not provisioned for Pull" ("No records found or Organization Name
 * not available"). parsePullQueryAnswer says `no_rows_or_not_provisioned`; only the caller, who
 * knows whether the shortcode's registration succeeded, may read it as "empty".
 */
import { ValidationFailedError } from '../../../common/errors';
import { isPlainObject } from '../../../common/json';
import { ProviderError } from '../provider-errors';
import { nairobiTimestamp, parseNairobiTimestamp } from './nairobi-time';

export const PULL_REGISTER_PATH = '/pulltransactions/v1/register';
export const PULL_QUERY_PATH = '/pulltransactions/v1/query';
/** How far back Daraja serves (48 h), less a minute so a request sent at the edge is not refused for its own transit time. */
export const PULL_WINDOW_MS = 48 * 3600_000 - 60_000;
/** Pages walked at most per pull (frappe caps at 50). */
export const PULL_MAX_PAGES = 50;

type Json = Record<string, unknown>;

/** A field by its documented name or the docs' table spelling with spaces ("ResponseStatus" / "Response Status"). */
function field(json: Json, name: string): unknown {
  if (json[name] !== undefined) return json[name];
  const spaced = name.replace(/([a-z])([A-Z])/g, '$1 $2');
  return json[spaced];
}

function text(v: unknown): string | undefined {
  if (typeof v === 'string') return v.trim() === '' ? undefined : v.trim();
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}

// --- register --------------------------------------------------------------------------------

export interface PullRegisterBody {
  ShortCode: string;
  RequestType: 'Pull';
  NominatedNumber: string;
  CallBackURL: string;
}

/** `nominatedNumber`: the Safaricom MSISDN of the shortcode's KYC, already 2547XXXXXXXX / 2541XXXXXXXX. */
export function buildPullRegisterBody(
  shortCode: string,
  nominatedNumber: string,
  callbackUrl: string,
): PullRegisterBody {
  if (!/^\d{5,7}$/.test(shortCode))
    throw new ValidationFailedError('The shortcode must be 5 to 7 digits', { field: 'shortCode' });
  if (!/^254[17]\d{8}$/.test(nominatedNumber))
    throw new ValidationFailedError(
      "nominatedNumber must be the Safaricom number on the shortcode's KYC (Org portal > Details), as 2547XXXXXXXX",
      { field: 'nominatedNumber' },
    );
  if (!/^https:\/\/\S+$/i.test(callbackUrl) && !/^http:\/\/(127\.0\.0\.1|localhost)[:/]/i.test(callbackUrl))
    throw new ValidationFailedError('The Pull callback URL must be https', { field: 'callbackUrl' });
  return { ShortCode: shortCode, RequestType: 'Pull', NominatedNumber: nominatedNumber, CallBackURL: callbackUrl };
}

export type PullRegisterOutcome =
  /** `1000` "Shortcode Registered Successfully". */
  | { kind: 'registered'; responseRefId?: string; description: string }
  /** `1001` "ShortCode already Registered" (by us earlier, or by another integration: its callback URL is unknown to us). */
  | { kind: 'already_registered'; responseRefId?: string; description: string }
  /** Anything else Daraja answered with HTTP 200 (nothing was registered). */
  | { kind: 'refused'; code: string; description: string };

export function parsePullRegisterAnswer(json: unknown): PullRegisterOutcome {
  if (!isPlainObject(json))
    throw new ProviderError('mpesa', 'bad_response', 'M-Pesa answered the Pull registration without a JSON body');
  const code = text(field(json, 'ResponseStatus')) ?? text(field(json, 'ResponseCode'));
  const description = text(field(json, 'ResponseDescription')) ?? text(field(json, 'ResponseMessage')) ?? '';
  const responseRefId = text(field(json, 'ResponseRefID'));
  if (code === undefined)
    throw new ProviderError('mpesa', 'bad_response', 'M-Pesa answered the Pull registration without a status');
  if (code === '1000') return { kind: 'registered', responseRefId, description };
  if (code === '1001' && /already\s*registered/i.test(description))
    return { kind: 'already_registered', responseRefId, description };
  return { kind: 'refused', code, description };
}

// --- query -----------------------------------------------------------------------------------

export interface PullQueryBody {
  ShortCode: string;
  /** `YYYY-MM-DD HH:mm:ss`, Nairobi local time (the zone is unstated; peers send Nairobi time). */
  StartDate: string;
  EndDate: string;
  /** The page index, from "0" (daraja-more.md §2: the FAQ's "acts like the page number", as frappe walks it). */
  OffSetValue: string;
}

export interface PullWindow {
  start: Date;
  end: Date;
  /** True when the asked window reached further back than Daraja serves, or into the future, and was cut. */
  clamped: boolean;
}

/** The asked [from, to] cut to what Daraja serves: not before now − 48 h, not after now. Null when nothing is left. */
export function clampPullWindow(from: Date, to: Date, now: Date = new Date()): PullWindow | null {
  for (const [name, d] of [
    ['from', from],
    ['to', to],
  ] as const)
    if (!(d instanceof Date) || !Number.isFinite(d.getTime()))
      throw new ValidationFailedError(`${name} must be a valid time`, { field: name });
  const earliest = now.getTime() - PULL_WINDOW_MS;
  const start = Math.max(from.getTime(), earliest);
  const end = Math.min(to.getTime(), now.getTime());
  if (start >= end) return null;
  return { start: new Date(start), end: new Date(end), clamped: start !== from.getTime() || end !== to.getTime() };
}

/** `YYYY-MM-DD HH:mm:ss` in Nairobi time. */
export function pullDate(d: Date): string {
  const t = nairobiTimestamp(d);
  return `${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 8)} ${t.slice(8, 10)}:${t.slice(10, 12)}:${t.slice(12, 14)}`;
}

export function buildPullQueryBody(shortCode: string, window: PullWindow, page: number): PullQueryBody {
  if (!/^\d{5,7}$/.test(shortCode))
    throw new ValidationFailedError('The shortcode must be 5 to 7 digits', { field: 'shortCode' });
  if (!Number.isSafeInteger(page) || page < 0 || page >= PULL_MAX_PAGES)
    throw new ValidationFailedError(`page must be 0 to ${PULL_MAX_PAGES - 1}`, { field: 'page' });
  return {
    ShortCode: shortCode,
    StartDate: pullDate(window.start),
    EndDate: pullDate(window.end),
    OffSetValue: String(page),
  };
}

/** One row of a Pull answer, as Daraja wrote it but typed. */
export interface PullRow {
  transactionId: string;
  /** Whole and decimal amounts exactly (`233.8` → 23380n), never through a float product. */
  amountMinor: bigint;
  time: Date;
  /** As given: documented numeric (`72200000`); whether masked or hashed is undocumented. */
  msisdn: string | null;
  transactionType: string | null;
  billReference: string | null;
  /** The shortcode's own organisation name (not the payer's). */
  organizationName: string | null;
}

export type PullQueryAnswer =
  | { kind: 'rows'; rows: PullRow[]; totalPages: number | null; unreadableRows: number }
  /** `1001`: an empty window OR a shortcode not provisioned for Pull; the caller decides by its registration. */
  | { kind: 'no_rows_or_not_provisioned'; code: '1001'; message: string };

/** KES amount `233.8` / `"233.80"` / `100` → minor units; undefined for anything else (negative, > 2 decimals, not a number). */
export function pullAmountMinor(v: unknown): bigint | undefined {
  const s = typeof v === 'number' && Number.isFinite(v) ? String(v) : typeof v === 'string' ? v.trim() : undefined;
  if (s === undefined) return undefined;
  const m = /^(\d{1,12})(?:\.(\d{1,2})0*)?$/.exec(s);
  if (!m) return undefined;
  return BigInt(m[1]) * 100n + BigInt((m[2] ?? '').padEnd(2, '0'));
}

/**
 * `trxDate`: ISO with a zone (`2020-08-05T10:13:00Z`, as documented) is read as given; without a zone
 * (`2020-08-05 13:13:00`, `20200805131300`) as Nairobi time. Which zone Daraja's `Z` really is is
 * not confirmed: compare with the C2B confirmation's TransTime of the same TransID on first use.
 */
export function pullTime(v: unknown): Date | undefined {
  if (typeof v !== 'string') return undefined;
  const s = v.trim();
  try {
    if (/^\d{14}$/.test(s)) return parseNairobiTimestamp(s);
    const local = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?$/.exec(s);
    if (local)
      return parseNairobiTimestamp(`${local[1]}${local[2]}${local[3]}${local[4]}${local[5]}${local[6] ?? '00'}`);
  } catch {
    return undefined;
  }
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(s)) return undefined;
  const d = new Date(s);
  return Number.isFinite(d.getTime()) ? d : undefined;
}

/** `Response: [[row, …]]` (as frappe saw it live), `Transaction: "[[]]"` (as documented), or flat: every row object, any nesting. */
function flattenRows(v: unknown): unknown[] {
  let value = v;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value) as unknown;
    } catch {
      return [];
    }
  }
  if (isPlainObject(value)) return [value];
  if (!Array.isArray(value)) return [];
  return value.flatMap((x) => (Array.isArray(x) ? flattenRows(x) : [x]));
}

function parseRow(row: unknown): PullRow | undefined {
  if (!isPlainObject(row)) return undefined;
  const transactionId = text(row.transactionId);
  const amountMinor = pullAmountMinor(row.amount);
  const time = pullTime(row.trxDate);
  if (
    !transactionId ||
    !/^[A-Z0-9]{6,20}$/i.test(transactionId) ||
    amountMinor === undefined ||
    amountMinor <= 0n ||
    !time
  )
    return undefined;
  return {
    transactionId: transactionId.toUpperCase(),
    amountMinor,
    time,
    msisdn: text(row.msisdn) ?? null,
    transactionType: text(row.transactiontype) ?? null,
    billReference: text(row.billreference) ?? null,
    organizationName: text(row.organizationname) ?? null,
  };
}

/**
 * Reads a 2xx query answer. `1000` → rows (unreadable ones counted, never guessed at); `1001` → the
 * ambiguous "none"; any other code → ProviderError 'rejected' (e.g. `400.001` invalid ShortCode).
 */
export function parsePullQueryAnswer(json: unknown): PullQueryAnswer {
  if (!isPlainObject(json))
    throw new ProviderError('mpesa', 'bad_response', 'M-Pesa answered the Pull query without a JSON body');
  const code = text(field(json, 'ResponseCode'));
  const message = text(field(json, 'ResponseMessage')) ?? text(field(json, 'ResponseDescription')) ?? '';
  if (code === '1001') return { kind: 'no_rows_or_not_provisioned', code, message };
  if (code !== '1000')
    throw new ProviderError(
      'mpesa',
      code === undefined ? 'bad_response' : 'rejected',
      code === undefined
        ? 'M-Pesa answered the Pull query without a ResponseCode'
        : `M-Pesa refused the Pull query: ${code}${message ? ` ${message}` : ''}`,
      { providerCode: code, providerMessage: message || undefined },
    );
  const raw = flattenRows(field(json, 'Response') ?? field(json, 'Transaction'));
  const rows: PullRow[] = [];
  let unreadableRows = 0;
  for (const r of raw) {
    const row = parseRow(r);
    if (row) rows.push(row);
    else unreadableRows++;
  }
  const pages = Number(text(field(json, 'TotalPages')));
  return { kind: 'rows', rows, totalPages: Number.isSafeInteger(pages) && pages >= 0 ? pages : null, unreadableRows };
}
