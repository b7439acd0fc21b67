/** Nairobi wall-clock helpers. Africa/Nairobi is fixed UTC+3 with no DST, so a constant offset is exact. */

const NAIROBI_OFFSET_MS = 3 * 60 * 60 * 1000;

interface WallClock {
  year: string;
  month: string;
  day: string;
  hour: string;
  minute: string;
  second: string;
  millis: string;
}

function nairobiWallClock(at: Date): WallClock {
  // ISO form of the shifted instant: yyyy-MM-ddTHH:mm:ss.sssZ
  const iso = new Date(at.getTime() + NAIROBI_OFFSET_MS).toISOString();
  return {
    year: iso.slice(0, 4),
    month: iso.slice(5, 7),
    day: iso.slice(8, 10),
    hour: iso.slice(11, 13),
    minute: iso.slice(14, 16),
    second: iso.slice(17, 19),
    millis: iso.slice(20, 23),
  };
}

/** `yyyyMMddHHmmss` in Nairobi time (Daraja Timestamp, callback TransactionDate). */
export function formatNairobiTimestamp(at: Date): string {
  const c = nairobiWallClock(at);
  return `${c.year}${c.month}${c.day}${c.hour}${c.minute}${c.second}`;
}

/** `ddMMyyyyHHmmss` in Nairobi time, as embedded in CheckoutRequestID. */
export function formatCheckoutStamp(at: Date): string {
  const c = nairobiWallClock(at);
  return `${c.day}${c.month}${c.year}${c.hour}${c.minute}${c.second}`;
}

/** Three-digit millisecond part of the Nairobi wall clock. */
export function nairobiMillis(at: Date): string {
  return nairobiWallClock(at).millis;
}

/**
 * Parses a strict 14-digit `yyyyMMddHHmmss` Nairobi timestamp into the instant it denotes.
 * Returns undefined for anything else, including impossible calendar dates (20240230…).
 */
export function parseNairobiTimestamp(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(value);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return undefined;
  const wallAsUtc = Date.UTC(year, month - 1, day, hour, minute, second);
  const check = new Date(wallAsUtc);
  if (check.getUTCFullYear() !== year || check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day)
    return undefined;
  return new Date(wallAsUtc - NAIROBI_OFFSET_MS);
}

/** True when `instant` is at most `toleranceSeconds` away from `now` (either direction). */
export function isWithinTolerance(instant: Date, now: Date, toleranceSeconds: number): boolean {
  return Math.abs(now.getTime() - instant.getTime()) <= toleranceSeconds * 1000;
}
