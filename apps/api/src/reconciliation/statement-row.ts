/**
 * Turning M-Pesa statement CSV records into typed rows: header detection and field parsing.
 * Pure functions, no I/O.
 */
import { maskPhone } from '../common/mask';
import { normaliseMpesaReceipt } from '../payments/providers/mpesa/receipt';

export type Column = 'receipt' | 'time' | 'amount' | 'details' | 'status';

/** Accepted header names (compared lower-cased, trimmed, with runs of spaces/underscores folded). */
const HEADER_ALIASES: Record<string, Column> = {
  'receipt no.': 'receipt',
  'receipt no': 'receipt',
  receipt: 'receipt',
  'receipt number': 'receipt',
  'completion time': 'time',
  completion_time: 'time',
  'paid in': 'amount',
  amount: 'amount',
  details: 'details',
  phone: 'details',
  'transaction status': 'status',
  status: 'status',
};

export type ColumnMap = Partial<Record<Column, number>>;

export class StatementHeaderError extends Error {}

export function mapHeader(fields: string[]): ColumnMap {
  const map: ColumnMap = {};
  fields.forEach((raw, idx) => {
    const key = raw.trim().toLowerCase().replace(/\s+/g, ' ');
    const col = HEADER_ALIASES[key];
    // first matching column wins ("details" before "phone" if both are present is fine either way)
    if (col && map[col] === undefined) map[col] = idx;
  });
  const missing = (['receipt', 'amount'] as const).filter((c) => map[c] === undefined);
  if (missing.length) {
    throw new StatementHeaderError(
      `The statement's header row must name the columns "Receipt No." (or receipt) and "Paid In" (or amount); missing: ${missing.join(', ')}. Header seen: ${fields
        .map((f) => f.trim())
        .join(', ')
        .slice(0, 200)}`,
    );
  }
  return map;
}

export interface StatementRow {
  line: number;
  receipt: string;
  amountMinor: bigint;
  /** yyyyMMddHHmmss, Nairobi time (like payments.transaction_date); null when the column is absent/empty */
  timeKey: string | null;
  /** masked phone found in Details, if any (never the full number, never names) */
  phoneMasked: string | null;
  /**
   * The full number (`2547XXXXXXXX`) when Details shows one unmasked: kept in memory only, to
   * compare its keyed hash with a payment's phone hash; never reported, stored or logged.
   */
  msisdn?: string;
}

export type RowResult =
  | { kind: 'row'; row: StatementRow }
  /** a valid record that is not money in (status other than Completed, or nothing paid in) */
  | { kind: 'skipped'; reason: 'not_completed' | 'not_paid_in' }
  | { kind: 'bad'; line: number; reason: string };

const RECEIPT_RE = /^[A-Z0-9]{8,20}$/;

export function parseRow(line: number, fields: string[], map: ColumnMap): RowResult {
  const get = (c: Column): string | undefined => (map[c] === undefined ? undefined : fields[map[c]!]?.trim());
  const status = get('status');
  if (status !== undefined && status !== '' && status.toLowerCase() !== 'completed')
    return { kind: 'skipped', reason: 'not_completed' };

  const receipt = normaliseMpesaReceipt(get('receipt') ?? '');
  if (!RECEIPT_RE.test(receipt))
    return { kind: 'bad', line, reason: receipt ? 'receipt is not 8-20 letters/digits' : 'receipt is empty' };

  const amountText = get('amount') ?? '';
  if (amountText === '' || amountText === '-') return { kind: 'skipped', reason: 'not_paid_in' };
  const amountMinor = parseAmountMinor(amountText);
  if (amountMinor === null)
    return { kind: 'bad', line, reason: `amount "${amountText.slice(0, 30)}" is not a number like 1,250.00` };
  if (amountMinor <= 0n) return { kind: 'skipped', reason: 'not_paid_in' };

  let timeKey: string | null = null;
  const timeText = get('time');
  if (timeText) {
    timeKey = parseTimeKey(timeText);
    if (timeKey === null)
      return {
        kind: 'bad',
        line,
        reason: `completion time "${timeText.slice(0, 30)}" is not yyyy-MM-dd HH:mm:ss, dd/MM/yyyy HH:mm:ss or ISO 8601`,
      };
  }
  const details = get('details');
  const msisdn = details ? msisdnFromDetails(details) : undefined;
  return {
    kind: 'row',
    row: {
      line,
      receipt,
      amountMinor,
      timeKey,
      phoneMasked: details ? phoneFromDetails(details) : null,
      ...(msisdn ? { msisdn } : {}),
    },
  };
}

/** "1,250.00" → 125000n KES cents; "-" / garbage → null. Thousands separators must be well placed. */
export function parseAmountMinor(text: string): bigint | null {
  const m = /^(-)?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?$/.exec(text.trim());
  if (!m) return null;
  const whole = BigInt(m[2].replace(/,/g, ''));
  const cents = BigInt((m[3] ?? '').padEnd(2, '0'));
  const v = whole * 100n + cents;
  return m[1] ? -v : v;
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
const NAIROBI_OFFSET_MS = 3 * 3600_000; // Africa/Nairobi is UTC+3 all year (no DST)

/**
 * Completion time → yyyyMMddHHmmss in Nairobi time.
 * `2026-11-01 14:05:09`, `01/11/2026 14:05:09` (day first, as Safaricom exports) and ISO 8601
 * (`2026-11-01T14:05:09`, local Nairobi unless it carries Z or an offset). Seconds optional.
 */
export function parseTimeKey(text: string): string | null {
  const s = text.trim();
  let m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/.exec(s);
  let y: number, mo: number, d: number, h: number, mi: number, se: number, zone: string | undefined;
  if (m) {
    [y, mo, d, h, mi, se] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? '0'].map(Number);
    zone = m[7];
  } else {
    m = /^(\d{1,2})\/(\d{1,2})\/(\d{4}) (\d{1,2}):(\d{2})(?::(\d{2}))?$/.exec(s);
    if (!m) return null;
    [d, mo, y, h, mi, se] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? '0'].map(Number);
  }
  let ms = Date.UTC(y, mo - 1, d, h, mi, se);
  const check = new Date(ms);
  if (
    check.getUTCFullYear() !== y ||
    check.getUTCMonth() !== mo - 1 ||
    check.getUTCDate() !== d ||
    h > 23 ||
    mi > 59 ||
    se > 59
  )
    return null;
  if (zone) {
    let offsetMs = 0;
    if (zone !== 'Z') {
      const z = /^([+-])(\d{2}):?(\d{2})$/.exec(zone)!;
      offsetMs = (z[1] === '-' ? -1 : 1) * (Number(z[2]) * 60 + Number(z[3])) * 60_000;
    }
    ms = ms - offsetMs + NAIROBI_OFFSET_MS; // → UTC → Nairobi wall clock
  }
  return timeKeyFromNairobiMs(ms);
}

function timeKeyFromNairobiMs(ms: number): string {
  const t = new Date(ms);
  return `${t.getUTCFullYear()}${pad(t.getUTCMonth() + 1)}${pad(t.getUTCDate())}${pad(t.getUTCHours())}${pad(t.getUTCMinutes())}${pad(t.getUTCSeconds())}`;
}

/** A real instant → Nairobi yyyyMMddHHmmss. */
export function timeKeyOf(date: Date): string {
  return timeKeyFromNairobiMs(date.getTime() + NAIROBI_OFFSET_MS);
}

/** yyyyMMddHHmmss (Nairobi) → ISO 8601 with the +03:00 offset, for reports. */
export function timeKeyToIso(key: string): string {
  return `${key.slice(0, 4)}-${key.slice(4, 6)}-${key.slice(6, 8)}T${key.slice(8, 10)}:${key.slice(10, 12)}:${key.slice(12, 14)}+03:00`;
}

/**
 * Statement Details look like "Customer Transfer of Funds Charge ... 2547******78 - JOHN DOE" or hold a
 * full number. Returns the phone masked (first 4 / last 2 digits) and never anything else (no names).
 */
export function phoneFromDetails(details: string): string | null {
  const masked = /(?:\+?254|0)[17][0-9*]{6,8}[0-9]{2}/.exec(details);
  if (!masked) return null;
  const v = masked[0].replace(/^\+/, '');
  if (v.includes('*'))
    return v.length === 12
      ? v.slice(0, 4) + '******' + v.slice(-2)
      : v.slice(0, 2) + '*'.repeat(v.length - 4) + v.slice(-2);
  return maskPhone(v);
}

/** The full Kenyan mobile number in Details as `2547XXXXXXXX` / `2541XXXXXXXX`, or undefined when there is none or it is masked. */
export function msisdnFromDetails(details: string): string | undefined {
  const m = /(?:\+?254|0)[17][0-9*]{6,8}[0-9]{2}/.exec(details);
  if (!m || m[0].includes('*')) return undefined;
  const digits = m[0].replace(/^\+/, '');
  const msisdn = digits.startsWith('0') ? `254${digits.slice(1)}` : digits;
  return /^254[17]\d{8}$/.test(msisdn) ? msisdn : undefined;
}
