/** Timestamp formats seen on the wire. */

const NAIROBI_OFFSET_MS = 3 * 60 * 60 * 1000;

/** `2026-10-02T09:14:22.000Z` (Flutterwave). */
export function isoMillis(at: Date): string {
  return at.toISOString();
}

/** .NET round-trip UTC with 7 fractional digits: `2026-10-02T09:19:30.5177702Z` (Pesapal token / IPN dates). */
export function dotNetUtc(at: Date): string {
  const iso = at.toISOString(); // yyyy-MM-ddTHH:mm:ss.sssZ
  return `${iso.slice(0, 23)}0000Z`;
}

/**
 * Pesapal's GetTransactionStatus `created_date`: East Africa local wall clock, no zone designator,
 * trailing zeros of the fraction trimmed (`2026-10-02T12:14:22.75`).
 */
export function eatLocalNoZone(at: Date): string {
  const iso = new Date(at.getTime() + NAIROBI_OFFSET_MS).toISOString();
  const base = iso.slice(0, 19);
  const fraction = iso.slice(20, 23).replace(/0+$/, '');
  return fraction ? `${base}.${fraction}` : base;
}
