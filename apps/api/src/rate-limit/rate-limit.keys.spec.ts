import { formatPhoneNumber } from '../payments/providers/mpesa/phone';
import { derivePhoneKeySecret, phoneKey, retryAfterSeconds, shopKey } from './rate-limit.keys';

describe('rate-limit keys', () => {
  const secret = derivePhoneKeySecret('callback-signing-secret-0123456789abcdef');

  it('gives one key per customer whatever format the cashier typed', () => {
    const keys = ['+254 712 345 678', '254712345678', '0712345678', '712345678', '0712-345-678', '(0712) 345 678'].map(
      (p) => phoneKey(secret, formatPhoneNumber(p)),
    );
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(/^[0-9a-f]{64}$/);
  });

  it('gives different numbers different keys, and never contains the number', () => {
    const a = phoneKey(secret, '254712345678');
    const b = phoneKey(secret, '254712345679');
    const c = phoneKey(secret, '254112345678');
    expect(new Set([a, b, c]).size).toBe(3);
    for (const k of [a, b, c]) {
      expect(k).not.toContain('12345678');
    }
  });

  it('is keyed by the server secret (a plain hash of the number would be brute-forceable)', () => {
    const other = derivePhoneKeySecret('another-callback-secret-0123456789abcdef');
    expect(phoneKey(other, '254712345678')).not.toBe(phoneKey(secret, '254712345678'));
    expect(phoneKey(derivePhoneKeySecret('callback-signing-secret-0123456789abcdef'), '254712345678')).toBe(
      phoneKey(secret, '254712345678'),
    );
    // the derived key is not the secret itself
    expect(secret.toString('utf8')).not.toContain('callback-signing-secret');
    expect(() => derivePhoneKeySecret('')).toThrow(/server secret/);
  });

  it.each(['0712345678', '+254712345678', '25471234567', '254812345678', ''])(
    'refuses a phone that is not normalised (%p)',
    (raw) => {
      expect(() => phoneKey(secret, raw)).toThrow(/normalised MSISDN/);
    },
  );

  it('uses the shop id as the shop key', () => {
    expect(shopKey('shop-1')).toBe('shop-1');
    expect(shopKey('shop-2')).not.toBe(shopKey('shop-1'));
  });

  it.each([
    [0, 1],
    [-5, 1],
    [Number.NaN, 1],
    [1, 1],
    [999, 1],
    [1000, 1],
    [1001, 2],
    [24_500, 25],
    [60_000, 60],
  ])('Retry-After for %p ms is %p s (whole seconds, rounded up, at least 1)', (ms, s) => {
    expect(retryAfterSeconds(ms)).toBe(s);
  });
});
