/**
 * Money helpers. Amounts are integer minor units (bigint) with an ISO currency code;
 * floats appear only at the JSON edge (major units as the POS sends them) and are
 * converted through their decimal string, never by multiplying floats.
 */
export const CURRENCY_EXPONENT: Record<string, number> = { KES: 2, UGX: 0, TZS: 2, USD: 2, RWF: 0 };

export function exponentOf(currency: string): number {
  const e = CURRENCY_EXPONENT[currency];
  if (e === undefined) throw new Error(`unsupported currency ${currency}`);
  return e;
}

/** 1500.5 KES → 150050n. Throws if the value has more decimals than the currency allows. */
export function toMinor(major: number, currency: string): bigint {
  const exp = exponentOf(currency);
  if (!Number.isFinite(major)) throw new RangeError('amount must be a finite number');
  // The shortest decimal that round-trips (what the client wrote: 1500.5, 0.29), not binary noise.
  let s = String(major);
  if (/e/i.test(s)) s = major.toFixed(20).replace(/0+$/, '');
  const [intPart, frac = ''] = s.replace('-', '').split('.');
  if (/[1-9]/.test(frac.slice(exp))) throw new RangeError(`amount has more than ${exp} decimal places`);
  const minor = BigInt(intPart) * 10n ** BigInt(exp) + BigInt(frac.slice(0, exp).padEnd(exp, '0') || '0');
  return major < 0 ? -minor : minor;
}

/** 150050n KES → 1500.5 (a JSON number for display/API; exact for amounts below 2^53 minor units). */
export function toMajor(minor: bigint, currency: string): number {
  const exp = exponentOf(currency);
  const div = 10n ** BigInt(exp);
  const neg = minor < 0n;
  const abs = neg ? -minor : minor;
  const s = `${abs / div}.${(abs % div).toString().padStart(exp, '0')}`;
  return (neg ? -1 : 1) * Number(exp === 0 ? (abs / div).toString() : s);
}
