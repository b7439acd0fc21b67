/**
 * Decimal money at the wire edge. Both providers take and return *major* units as JSON numbers
 * (2450, 2450.5); internally everything is integer minor units (bigint) so no float arithmetic
 * ever touches an amount.
 */

/** ISO 4217 exponents for the currencies the simulators accept. */
export const CURRENCY_EXPONENTS: Readonly<Record<string, number>> = Object.freeze({
  KES: 2,
  NGN: 2,
  USD: 2,
  EUR: 2,
  GBP: 2,
  GHS: 2,
  ZAR: 2,
  TZS: 2,
  ZMW: 2,
  MWK: 2,
  UGX: 0,
  RWF: 0,
  XAF: 0,
  XOF: 0,
});

export function currencyExponent(currency: string): number | undefined {
  return Object.prototype.hasOwnProperty.call(CURRENCY_EXPONENTS, currency) ? CURRENCY_EXPONENTS[currency] : undefined;
}

export type AmountParse = { ok: true; minor: bigint } | { ok: false; reason: string };

const DECIMAL = /^(\d+)(?:\.(\d+))?$/;

/** Parses a plain decimal string ("2450", "2450.50") into minor units. */
export function decimalToMinor(text: string, exponent: number): AmountParse {
  const match = DECIMAL.exec(text);
  if (!match) return { ok: false, reason: 'must be a plain decimal number' };
  const whole = match[1] ?? '0';
  const fraction = (match[2] ?? '').replace(/0+$/, '');
  if (fraction.length > exponent) {
    return {
      ok: false,
      reason:
        exponent === 0 ? 'must be a whole number for this currency' : `must have at most ${exponent} decimal places`,
    };
  }
  return { ok: true, minor: BigInt(whole) * 10n ** BigInt(exponent) + BigInt(fraction.padEnd(exponent, '0') || '0') };
}

/**
 * A JSON amount in major units → minor units. Numbers are read through their shortest decimal
 * representation (what the client wrote), so 0.1 stays 0.1. Numeric strings are accepted only
 * when `allowString` is set. Must be > 0.
 */
export function parseMajorAmount(value: unknown, exponent: number, allowString: boolean): AmountParse {
  let text: string;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return { ok: false, reason: 'must be a finite number' };
    text = String(value);
    if (/e/i.test(text)) return { ok: false, reason: 'is out of range' };
  } else if (typeof value === 'string' && allowString) {
    text = value.trim();
  } else {
    return { ok: false, reason: allowString ? 'must be a number' : 'must be a JSON number' };
  }
  if (text.startsWith('-')) return { ok: false, reason: 'must be greater than zero' };
  const parsed = decimalToMinor(text, exponent);
  if (!parsed.ok) return parsed;
  if (parsed.minor <= 0n) return { ok: false, reason: 'must be greater than zero' };
  return parsed;
}

/** "2450.50" (fixed exponent digits). */
export function minorToDecimalString(minor: bigint, exponent: number): string {
  const negative = minor < 0n;
  const abs = negative ? -minor : minor;
  const scale = 10n ** BigInt(exponent);
  const whole = (abs / scale).toString();
  const fraction = exponent > 0 ? `.${(abs % scale).toString().padStart(exponent, '0')}` : '';
  return `${negative ? '-' : ''}${whole}${fraction}`;
}

/** Major-unit JSON number, as the providers put on the wire (2450, 2450.5, 68.6). Exact: parsed from the decimal string. */
export function minorToMajorNumber(minor: bigint, exponent: number): number {
  return Number(minorToDecimalString(minor, exponent));
}

/** "KES 2,450.00" for the checkout pages. */
export function formatForDisplay(minor: bigint, currency: string, exponent: number): string {
  const [whole = '0', fraction] = minorToDecimalString(minor, exponent).split('.');
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${currency} ${grouped}${fraction !== undefined ? `.${fraction}` : ''}`;
}

/** `minor * basisPoints / 10000`, rounded half up, integer. */
export function basisPointsOf(minor: bigint, basisPoints: number): bigint {
  return (minor * BigInt(basisPoints) + 5000n) / 10000n;
}
