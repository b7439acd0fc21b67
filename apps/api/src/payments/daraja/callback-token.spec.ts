import { createHmac } from 'node:crypto';
import { callbackToken, verifyCallbackToken } from './callback-token';

const SECRET = 'test-signing-secret-0123456789abcdef';
const PAYMENT = '01J9ZK3T4V5W6X7Y8Z9A0B1C2D';

describe('callbackToken', () => {
  it('is the 43-char base64url HMAC-SHA256 of the payment id', () => {
    const t = callbackToken(SECRET, PAYMENT);
    expect(t).toHaveLength(43);
    expect(t).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(t).toBe(createHmac('sha256', SECRET).update(PAYMENT).digest('base64url'));
  });

  it('matches a fixed vector', () => {
    expect(callbackToken('secret', 'pay_1')).toBe('XvYLdSH0412h-tCZtgL7QPyez-y2XMDhnSQEAi4PIHI');
  });

  it('refuses an empty secret or payment id', () => {
    expect(() => callbackToken('', PAYMENT)).toThrow();
    expect(() => callbackToken(SECRET, '')).toThrow();
  });
});

describe('verifyCallbackToken', () => {
  const good = callbackToken(SECRET, PAYMENT);

  it('accepts the right token', () => {
    expect(verifyCallbackToken(SECRET, PAYMENT, good)).toBe(true);
  });

  it('rejects a tampered token (same length)', () => {
    const tampered = (good[0] === 'A' ? 'B' : 'A') + good.slice(1);
    expect(tampered).toHaveLength(good.length);
    expect(verifyCallbackToken(SECRET, PAYMENT, tampered)).toBe(false);
  });

  it.each([
    ['truncated', good.slice(0, 42)],
    ['extended', good + 'A'],
    ['empty', ''],
    ['padded base64', good + '='],
    ['multi-byte chars of equal length', 'é'.repeat(43)],
  ])('rejects a wrong-length token (%s)', (_label, token) => {
    expect(verifyCallbackToken(SECRET, PAYMENT, token)).toBe(false);
  });

  it('rejects a token for another payment id', () => {
    expect(verifyCallbackToken(SECRET, 'other-payment', good)).toBe(false);
  });

  it('rejects a token made with another secret', () => {
    expect(verifyCallbackToken('another-secret', PAYMENT, good)).toBe(false);
  });

  it.each([[undefined], [null], [42], [{}], [[good]], [Buffer.from(good)]])('never throws on non-string token %p', (token) => {
    expect(verifyCallbackToken(SECRET, PAYMENT, token)).toBe(false);
  });

  it('never throws on a bad secret or payment id', () => {
    expect(verifyCallbackToken('', PAYMENT, good)).toBe(false);
    expect(verifyCallbackToken(undefined, PAYMENT, good)).toBe(false);
    expect(verifyCallbackToken(SECRET, undefined, good)).toBe(false);
    expect(verifyCallbackToken(SECRET, '', good)).toBe(false);
  });
});
