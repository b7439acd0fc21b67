import { createHmac } from 'node:crypto';
import { callbackToken, verifyCallbackToken } from './callback-token';

const SECRET = 'test-signing-secret-0123456789abcdef';
const PAYMENT = '01J9ZK3T4V5W6X7Y8Z9A0B1C2D';

describe('callbackToken', () => {
  it('is the 64-char hex HMAC-SHA256 of the payment id', () => {
    const t = callbackToken(SECRET, PAYMENT);
    expect(t).toHaveLength(64);
    expect(t).toMatch(/^[0-9a-f]{64}$/);
    // no word Daraja refuses in callback URLs can be spelled in hex
    expect(t).not.toMatch(/exe|cmd|sql|query|mpesa|safaricom/i);
    expect(t).toBe(createHmac('sha256', SECRET).update(PAYMENT).digest('hex'));
  });

  it('matches a fixed vector', () => {
    expect(callbackToken('secret', 'pay_1')).toBe('5ef60b7521f4e35da1fad099b602fb40fc9ecfecb65cc0e19d2404022e0f2072');
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
    ['multi-byte chars of equal length', 'é'.repeat(64)],
  ])('rejects a wrong-length token (%s)', (_label, token) => {
    expect(verifyCallbackToken(SECRET, PAYMENT, token)).toBe(false);
  });

  it('rejects a token for another payment id', () => {
    expect(verifyCallbackToken(SECRET, 'other-payment', good)).toBe(false);
  });

  it('rejects a token made with another secret', () => {
    expect(verifyCallbackToken('another-secret', PAYMENT, good)).toBe(false);
  });

  it.each([[undefined], [null], [42], [{}], [[good]], [Buffer.from(good)]])(
    'never throws on non-string token %p',
    (token) => {
      expect(verifyCallbackToken(SECRET, PAYMENT, token)).toBe(false);
    },
  );

  it('never throws on a bad secret or payment id', () => {
    expect(verifyCallbackToken('', PAYMENT, good)).toBe(false);
    expect(verifyCallbackToken(undefined, PAYMENT, good)).toBe(false);
    expect(verifyCallbackToken(SECRET, undefined, good)).toBe(false);
    expect(verifyCallbackToken(SECRET, '', good)).toBe(false);
  });
});
