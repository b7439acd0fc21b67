import { createHmac } from 'node:crypto';

/**
 * Limiter keys. A phone number never reaches the store or a log: its key is an HMAC of the
 * normalised MSISDN (2547XXXXXXXX), so the same customer is one key whatever format the cashier
 * typed, and the 2·10⁸ possible Kenyan numbers cannot be brute-forced back from the store without
 * the server secret (a plain SHA-256 could).
 */

/** Domain separation: the phone-key secret is derived from a server secret, never the secret itself. */
const PHONE_KEY_CONTEXT = 'smartduka/rate-limit/phone-key/v1';

/**
 * The HMAC key for phone keys, derived from a secret every instance shares (the callback
 * signing secret must be the same on all instances anyway, so shared limits line up).
 */
export function derivePhoneKeySecret(serverSecret: string): Buffer {
  if (!serverSecret) throw new Error('a server secret is needed to derive rate-limit phone keys');
  return createHmac('sha256', serverSecret).update(PHONE_KEY_CONTEXT).digest();
}

/** Key of one phone number: hex HMAC-SHA256 of the normalised MSISDN. */
export function phoneKey(secret: Buffer, msisdn: string): string {
  if (!/^254[17]\d{8}$/.test(msisdn))
    throw new Error('phoneKey expects a normalised MSISDN (2547XXXXXXXX or 2541XXXXXXXX)');
  return createHmac('sha256', secret).update(msisdn).digest('hex');
}

/** Key of one shop: the JWT shopId (already limited to 1-64 of [A-Za-z0-9._:@-] by the JWT strategy). */
export function shopKey(shopId: string): string {
  return shopId;
}

/** Whole seconds for Retry-After: rounded up, at least 1. */
export function retryAfterSeconds(msBeforeNext: number): number {
  if (!Number.isFinite(msBeforeNext) || msBeforeNext <= 0) return 1;
  return Math.max(1, Math.ceil(msBeforeNext / 1000));
}
