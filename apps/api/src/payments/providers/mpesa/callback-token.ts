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

/**
 * What a scoped capability URL answers: a refund's reversal result / queue timeout / Transaction
 * Status result, or a payment's Transaction Status result. Each scope is its own HMAC domain, so a
 * payment's STK callback token (HMAC of the bare id) never opens a refund's URL, and a refund's
 * result token never opens its timeout or status URL.
 */
export type CallbackScope =
  'refund-result' | 'refund-timeout' | 'refund-status' | 'payment-status' | 'c2b-confirmation' | 'c2b-validation';

const SCOPES: readonly CallbackScope[] = [
  'refund-result',
  'refund-timeout',
  'refund-status',
  'payment-status',
  // A merchant account's C2B URLs (the id is merchant_accounts.id): confirmation and validation apart.
  'c2b-confirmation',
  'c2b-validation',
];

/** hex(HMAC-SHA256(secret, "smartduka:<scope>:<id>")): ids are uuids, so no bare id is ever such a string. */
export function scopedCallbackToken(secret: string, scope: CallbackScope, id: string): string {
  if (!SCOPES.includes(scope)) throw new Error(`scopedCallbackToken: unknown scope ${String(scope)}`);
  if (typeof id !== 'string' || id.length === 0) throw new Error('scopedCallbackToken: id must be a non-empty string');
  return callbackToken(secret, `smartduka:${scope}:${id}`);
}

/** Constant-time check of a scoped token; never throws. */
export function verifyScopedCallbackToken(secret: unknown, scope: CallbackScope, id: unknown, token: unknown): boolean {
  if (!SCOPES.includes(scope) || typeof id !== 'string' || id.length === 0) return false;
  return verifyCallbackToken(secret, `smartduka:${scope}:${id}`, token);
}
