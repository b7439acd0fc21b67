/**
 * Africa/Nairobi is fixed UTC+3 (no DST since 1942). We deliberately avoid Intl so the
 * result does not depend on the ICU data / TZ database of the host.
 */
const NAIROBI_OFFSET_MS = 3 * 60 * 60 * 1000;

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** `yyyyMMddHHmmss` in Nairobi local time (what Daraja expects in `Timestamp`). */
export function nairobiTimestamp(date: Date = new Date()): string {
  const ms = date instanceof Date ? date.getTime() : NaN;
  if (!Number.isFinite(ms)) throw new RangeError('nairobiTimestamp: invalid date');
  const d = new Date(ms + NAIROBI_OFFSET_MS);
  const year = d.getUTCFullYear();
  if (year < 1000 || year > 9999) throw new RangeError('nairobiTimestamp: year out of range');
  return (
    pad(year, 4) +
    pad(d.getUTCMonth() + 1) +
    pad(d.getUTCDate()) +
    pad(d.getUTCHours()) +
    pad(d.getUTCMinutes()) +
    pad(d.getUTCSeconds())
  );
}

/**
 * Parses a Daraja `yyyyMMddHHmmss` Nairobi-local timestamp (e.g. callback TransactionDate)
 * into an absolute Date. Throws RangeError on anything that is not a real calendar instant.
 */
export function parseNairobiTimestamp(s: string): Date {
  if (typeof s !== 'string' || !/^\d{14}$/.test(s)) {
    throw new RangeError('parseNairobiTimestamp: expected 14 digits yyyyMMddHHmmss');
  }
  const year = Number(s.slice(0, 4));
  const month = Number(s.slice(4, 6));
  const day = Number(s.slice(6, 8));
  const hour = Number(s.slice(8, 10));
  const minute = Number(s.slice(10, 12));
  const second = Number(s.slice(12, 14));
  const utcWall = Date.UTC(year, month - 1, day, hour, minute, second);
  const check = new Date(utcWall);
  if (
    check.getUTCFullYear() !== year ||
    check.getUTCMonth() !== month - 1 ||
    check.getUTCDate() !== day ||
    check.getUTCHours() !== hour ||
    check.getUTCMinutes() !== minute ||
    check.getUTCSeconds() !== second
  ) {
    throw new RangeError(`parseNairobiTimestamp: not a valid date/time: ${s}`);
  }
  return new Date(utcWall - NAIROBI_OFFSET_MS);
}
