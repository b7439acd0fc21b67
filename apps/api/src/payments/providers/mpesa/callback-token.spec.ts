import { createHmac } from 'node:crypto';
import {
  callbackToken,
  CallbackScope,
  scopedCallbackToken,
  verifyCallbackToken,
  verifyScopedCallbackToken,
} from './callback-token';

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

describe('scopedCallbackToken', () => {
  const ID = '3f2a1c9e-7b4d-4e8f-9a01-23456789abcd';
  const scopes: CallbackScope[] = ['refund-result', 'refund-timeout', 'refund-status', 'payment-status'];

  it('is the HMAC of a scoped string, hex, and verifies only in its own scope', () => {
    for (const scope of scopes) {
      const t = scopedCallbackToken(SECRET, scope, ID);
      expect(t).toBe(createHmac('sha256', SECRET).update(`smartduka:${scope}:${ID}`).digest('hex'));
      for (const other of scopes) expect(verifyScopedCallbackToken(SECRET, other, ID, t)).toBe(other === scope);
    }
  });

  it("a payment's STK callback token never opens a refund or status URL of the same id, nor the reverse", () => {
    const stk = callbackToken(SECRET, ID);
    for (const scope of scopes) {
      expect(verifyScopedCallbackToken(SECRET, scope, ID, stk)).toBe(false);
      expect(verifyCallbackToken(SECRET, ID, scopedCallbackToken(SECRET, scope, ID))).toBe(false);
    }
  });

  it('is bound to the id and the secret', () => {
    const t = scopedCallbackToken(SECRET, 'refund-result', ID);
    expect(verifyScopedCallbackToken(SECRET, 'refund-result', ID.replace('3f', '4f'), t)).toBe(false);
    expect(verifyScopedCallbackToken(`${SECRET}x`, 'refund-result', ID, t)).toBe(false);
    expect(verifyScopedCallbackToken(SECRET, 'refund-result', ID, t.toUpperCase())).toBe(false);
    expect(verifyScopedCallbackToken(SECRET, 'refund-result', ID, undefined)).toBe(false);
    expect(verifyScopedCallbackToken(SECRET, 'bogus' as CallbackScope, ID, t)).toBe(false);
    expect(() => scopedCallbackToken(SECRET, 'bogus' as CallbackScope, ID)).toThrow(/unknown scope/);
    expect(() => scopedCallbackToken(SECRET, 'refund-result', '')).toThrow(/non-empty/);
  });
});
