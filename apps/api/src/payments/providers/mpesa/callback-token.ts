import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Capability token for a per-payment callback URL. Daraja does not sign callbacks, so the
 * only proof a callback is genuine-ish is that it hit a URL only we (and Safaricom) know:
 * `token = hex(HMAC-SHA256(secret, paymentId))`, 64 characters (256 bits).
 *
 * Hex, not base64url: Daraja refuses callback URLs containing words such as "exe", "cmd" or
 * "sql" in any case, and about 1 in 250 base64url tokens spells one of them by chance. Hex
 * digits (0-9a-f) cannot.
 */
export function callbackToken(secret: string, paymentId: string): string {
  if (typeof secret !== 'string' || secret.length === 0) {
    throw new Error('callbackToken: signing secret must be a non-empty string');
  }
  if (typeof paymentId !== 'string' || paymentId.length === 0) {
    throw new Error('callbackToken: paymentId must be a non-empty string');
  }
  return createHmac('sha256', secret).update(paymentId, 'utf8').digest('hex');
}

/**
 * Constant-time check of a callback token. Never throws: wrong types, wrong length, an
 * empty secret or any other garbage simply return false.
 */
export function verifyCallbackToken(secret: unknown, paymentId: unknown, token: unknown): boolean {
  try {
    if (typeof secret !== 'string' || secret.length === 0) return false;
    if (typeof paymentId !== 'string' || paymentId.length === 0) return false;
    if (typeof token !== 'string' || token.length === 0) return false;
    const expected = Buffer.from(callbackToken(secret, paymentId), 'utf8');
    const given = Buffer.from(token, 'utf8');
    if (given.length !== expected.length) return false;
    return timingSafeEqual(given, expected);
  } catch {
    return false;
  }
}
