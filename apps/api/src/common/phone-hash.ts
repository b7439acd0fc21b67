import { createHmac } from 'node:crypto';

/**
 * Keyed hash of a normalised MSISDN (`2547XXXXXXXX`): lets us find a customer's payments without
 * storing the number, and (unlike a plain SHA-256 of one of ~2·10⁸ Kenyan numbers) cannot be
 * reversed by trying them all without the server secret (CALLBACK_SIGNING_SECRET).
 */
export function phoneHash(secret: string, msisdn: string): string {
  const key = createHmac('sha256', secret).update('smartduka/payments/phone-hash/v1').digest();
  return createHmac('sha256', key).update(msisdn).digest('hex');
}
