/**
 * Exact conversion between our bigint minor units and the providers' decimal major-unit amounts.
 *
 * Flutterwave and Pesapal take and return amounts as JSON numbers in major units (2450, 1500.5)
 * or, for Pesapal refunds, decimal strings ("100.00"). No float arithmetic is ever done on money:
 * numbers are converted through their shortest round-trip decimal text (what the provider wrote),
 * and only values with at most 15 significant digits are accepted, so that text is exactly the
 * decimal the provider sent.
 */
import { ValidationFailedError } from '../../common/errors';
import { CURRENCY_EXPONENT } from '../../common/money';

/** Every decimal with ≤ 15 significant digits survives text → IEEE double → text unchanged. */
const MAX_SIGNIFICANT_DIGITS = 15;

const DECIMAL_RE = /^(-?)(\d+)(?:\.(\d+))?$/;

/** Decimal places of `currency` (KES 2, UGX 0, …), or undefined if we do not handle it. */
export function currencyExponent(currency: string): number | undefined {
  if (typeof currency !== 'string' || !Object.prototype.hasOwnProperty.call(CURRENCY_EXPONENT, currency))
    return undefined;
  return CURRENCY_EXPONENT[currency];
}

/** 150050n KES → "1500.50" (always exactly the currency's number of decimals). */
export function formatMinor(minor: bigint, currency: string): string {
  const exp = requireExponent(currency);
  const neg = minor < 0n;
  const abs = neg ? -minor : minor;
  const div = 10n ** BigInt(exp);
  const whole = (abs / div).toString();
  const text = exp === 0 ? whole : `${whole}.${(abs % div).toString().padStart(exp, '0')}`;
  return neg ? `-${text}` : text;
}

/** "1500.50" → "1500.5", "2450.00" → "2450": the text JavaScript prints for the same number. */
function canonical(decimalText: string): string {
  if (!decimalText.includes('.')) return decimalText;
  return decimalText.replace(/0+$/, '').replace(/\.$/, '');
}

/** Digits from the first non-zero one to the last one that matters ("2450.00" → 4, "0.29" → 2). */
function significantDigits(decimalText: string): number {
  const m = DECIMAL_RE.exec(decimalText);
  if (!m) return Number.POSITIVE_INFINITY;
  const [, , intPart, frac = ''] = m;
  return (intPart + frac.replace(/0+$/, '')).replace(/^0+/, '').length;
}

export interface OutgoingAmount {
  /** For JSON number fields: 1500.5. */
  number: number;
  /** Fixed decimals: "1500.50". */
  text: string;
}

/**
 * Validates and converts an amount we are about to send. Throws ValidationFailedError (400) for
 * a non-positive amount, an unsupported currency, cents where only whole units are allowed, or
 * an amount too large to be sent exactly.
 */
export function toOutgoingAmount(
  minor: bigint,
  currency: string,
  opts: { supportedCurrencies: readonly string[]; wholeUnitsOnly: boolean; providerLabel: string },
): OutgoingAmount {
  if (
    typeof currency !== 'string' ||
    !opts.supportedCurrencies.includes(currency) ||
    currencyExponent(currency) === undefined
  ) {
    throw new ValidationFailedError(
      `${opts.providerLabel} payments are not available in ${typeof currency === 'string' && currency ? currency : 'that currency'}; use ${opts.supportedCurrencies.join(', ')}`,
      { field: 'currency' },
    );
  }
  if (typeof minor !== 'bigint' || minor <= 0n) {
    throw new ValidationFailedError('amount must be greater than zero', { field: 'amount' });
  }
  const exp = currencyExponent(currency) as number;
  const div = 10n ** BigInt(exp);
  if (opts.wholeUnitsOnly && minor % div !== 0n) {
    throw new ValidationFailedError(`${opts.providerLabel} only accepts whole ${currency} amounts (no cents)`, {
      field: 'amount',
    });
  }
  const text = formatMinor(minor, currency);
  if (significantDigits(text) > MAX_SIGNIFICANT_DIGITS) {
    throw new ValidationFailedError('amount is too large', { field: 'amount' });
  }
  const number = Number(text);
  // Belt and braces: the JSON we send must spell exactly this decimal.
  if (String(number) !== canonical(text)) {
    throw new ValidationFailedError('amount cannot be sent exactly', { field: 'amount' });
  }
  return { number, text };
}

/**
 * Parses a provider amount (JSON number like 1500.5, or a decimal string like "1500.50") into
 * minor units of `currency`, exactly. Returns undefined when it is absent, not a plain decimal,
 * has more decimals than the currency allows (non-zero), has more than 15 significant digits,
 * or the currency is unknown.
 */
export function parseProviderAmount(value: unknown, currency: unknown): bigint | undefined {
  if (typeof currency !== 'string') return undefined;
  const exp = currencyExponent(currency);
  if (exp === undefined) return undefined;
  let text: string;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return undefined;
    text = String(value); // shortest round-trip text; exponent forms are rejected below
  } else if (typeof value === 'string') {
    text = value.trim();
  } else {
    return undefined;
  }
  const m = DECIMAL_RE.exec(text);
  if (!m) return undefined;
  if (significantDigits(text) > MAX_SIGNIFICANT_DIGITS) return undefined;
  const [, sign, intPart, frac = ''] = m;
  if (/[1-9]/.test(frac.slice(exp))) return undefined;
  const minor = BigInt(intPart) * 10n ** BigInt(exp) + BigInt(frac.slice(0, exp).padEnd(exp, '0') || '0');
  return sign === '-' ? -minor : minor;
}

function requireExponent(currency: string): number {
  const exp = currencyExponent(currency);
  if (exp === undefined)
    throw new ValidationFailedError(`unsupported currency ${String(currency)}`, { field: 'currency' });
  return exp;
}
