import { ValidationFailedError } from '../../common/errors';
import { currencyExponent, formatMinor, parseProviderAmount, toOutgoingAmount } from './amount';

const KES_ONLY = { supportedCurrencies: ['KES'], wholeUnitsOnly: false, providerLabel: 'TestPay' };

describe('formatMinor', () => {
  it.each([
    [150050n, 'KES', '1500.50'],
    [245000n, 'KES', '2450.00'],
    [1n, 'KES', '0.01'],
    [29n, 'KES', '0.29'],
    [-150050n, 'KES', '-1500.50'],
    [1500n, 'UGX', '1500'],
  ])('%p %s → %s', (minor, currency, text) => {
    expect(formatMinor(minor, currency)).toBe(text);
  });

  it('refuses an unknown currency', () => {
    expect(() => formatMinor(1n, 'XYZ')).toThrow(ValidationFailedError);
  });
});

describe('toOutgoingAmount', () => {
  it('converts exactly, both as a JSON number and as fixed decimals', () => {
    expect(toOutgoingAmount(150050n, 'KES', KES_ONLY)).toEqual({ number: 1500.5, text: '1500.50' });
    expect(toOutgoingAmount(245000n, 'KES', KES_ONLY)).toEqual({ number: 2450, text: '2450.00' });
    // 0.29 * 100 is 28.999999999999996 in floats; we never multiply.
    expect(toOutgoingAmount(29n, 'KES', KES_ONLY)).toEqual({ number: 0.29, text: '0.29' });
    expect(JSON.stringify({ amount: toOutgoingAmount(150050n, 'KES', KES_ONLY).number })).toBe('{"amount":1500.5}');
  });

  it('rejects cents when only whole units are allowed, with a readable message', () => {
    const err = (() => {
      try {
        toOutgoingAmount(150050n, 'KES', { ...KES_ONLY, wholeUnitsOnly: true });
      } catch (e) {
        return e as ValidationFailedError;
      }
      throw new Error('no error');
    })();
    expect(err).toBeInstanceOf(ValidationFailedError);
    expect(err.statusCode).toBe(400);
    expect(err.message).toBe('TestPay only accepts whole KES amounts (no cents)');
    expect(toOutgoingAmount(150000n, 'KES', { ...KES_ONLY, wholeUnitsOnly: true })).toEqual({
      number: 1500,
      text: '1500.00',
    });
  });

  it('rejects zero, negative, non-bigint and too-large amounts', () => {
    expect(() => toOutgoingAmount(0n, 'KES', KES_ONLY)).toThrow('amount must be greater than zero');
    expect(() => toOutgoingAmount(-5n, 'KES', KES_ONLY)).toThrow('amount must be greater than zero');
    expect(() => toOutgoingAmount(100 as unknown as bigint, 'KES', KES_ONLY)).toThrow(
      'amount must be greater than zero',
    );
    expect(toOutgoingAmount(999_999_999_999_999n, 'KES', KES_ONLY).text).toBe('9999999999999.99');
    expect(() => toOutgoingAmount(1_000_000_000_000_001n, 'KES', KES_ONLY)).toThrow('amount is too large');
  });

  it('rejects currencies the provider does not take or we do not know', () => {
    expect(() => toOutgoingAmount(100n, 'USD', KES_ONLY)).toThrow('TestPay payments are not available in USD; use KES');
    expect(() => toOutgoingAmount(100n, 'XYZ', { ...KES_ONLY, supportedCurrencies: ['XYZ'] })).toThrow(
      ValidationFailedError,
    );
  });

  it('uses the currency exponent (UGX has no minor unit)', () => {
    expect(currencyExponent('UGX')).toBe(0);
    expect(toOutgoingAmount(1500n, 'UGX', { ...KES_ONLY, supportedCurrencies: ['UGX'] })).toEqual({
      number: 1500,
      text: '1500',
    });
  });
});

describe('parseProviderAmount', () => {
  it.each<[unknown, string, bigint]>([
    [1500.5, 'KES', 150050n],
    [2450, 'KES', 245000n],
    [2450.0, 'KES', 245000n],
    [0.29, 'KES', 29n],
    [68.6, 'KES', 6860n],
    [2381.4, 'KES', 238140n],
    [0.3, 'KES', 30n],
    ['100.00', 'KES', 10000n],
    ['1500.5', 'KES', 150050n],
    [' 10 ', 'KES', 1000n],
    ['1500.500', 'KES', 150050n],
    [1500, 'UGX', 1500n],
    [-12.5, 'KES', -1250n],
    [9999999999999.99, 'KES', 999999999999999n],
  ])('%p %s → %p', (value, currency, minor) => {
    expect(parseProviderAmount(value, currency)).toBe(minor);
  });

  it.each<[unknown, unknown]>([
    [1500.555, 'KES'], // more decimals than KES has
    ['1500.505', 'KES'],
    [1500.5, 'UGX'], // UGX has none
    [0.1 + 0.2, 'KES'], // 0.30000000000000004: binary noise is not an amount
    [1e-7, 'KES'],
    [1e21, 'KES'],
    // eslint-disable-next-line no-loss-of-precision -- the point of the case: a literal a double cannot hold exactly
    [12345678901234567, 'KES'], // beyond exact double precision
    ['12345678901234.567', 'KES'],
    [Number.NaN, 'KES'],
    [Number.POSITIVE_INFINITY, 'KES'],
    ['1,500.50', 'KES'],
    ['KES 100', 'KES'],
    ['', 'KES'],
    [null, 'KES'],
    [undefined, 'KES'],
    [{}, 'KES'],
    [100, 'XYZ'],
    [100, undefined],
  ])('%p %p → undefined', (value, currency) => {
    expect(parseProviderAmount(value, currency)).toBeUndefined();
  });

  it('round-trips every outgoing KES amount from 0.01 to 20.00, and large ones, exactly', () => {
    const samples: bigint[] = [];
    for (let minor = 1n; minor <= 2000n; minor += 1n) samples.push(minor);
    samples.push(25_000_099n, 999_999_999n, 123_456_789_012_345n, 999_999_999_999_999n);
    for (const minor of samples) {
      const out = toOutgoingAmount(minor, 'KES', KES_ONLY);
      // What the provider sends back after JSON encoding and decoding.
      const echoed: unknown = JSON.parse(JSON.stringify({ amount: out.number })).amount;
      expect(parseProviderAmount(echoed, 'KES')).toBe(minor);
      expect(parseProviderAmount(out.text, 'KES')).toBe(minor);
    }
  });
});
