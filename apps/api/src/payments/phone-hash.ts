import { createHmac } from 'node:crypto';
import { formatPhoneNumber } from './providers/mpesa/phone';

/** Domain separation: the key is derived from the server secret, never the secret itself. Changing it orphans every stored hash. */
const PHONE_HASH_CONTEXT = 'smartduka/payments/phone-hash/v1';

/**
 * The one phone hash every provider stores (payments.phone_hash): a keyed HMAC-SHA256 of the
 * normalised number. It lets us find a customer's payments without storing the number, and,
 * unlike a plain SHA-256 of one of ~2·10⁸ Kenyan numbers, cannot be reversed by trying them all
 * without the server secret (the callback signing secret, which every instance shares).
 *
 * Kenyan numbers in any form the POS sends (`0712 345 678`, `+254712345678`, `712345678`) hash as
 * `254712345678`, so one customer has one hash whichever provider took the payment; other numbers
 * hash as their digits.
 */
export function phoneHash(serverSecret: string, phone: string): string {
  if (!serverSecret) throw new Error('a server secret is needed to hash phone numbers');
  const key = createHmac('sha256', serverSecret).update(PHONE_HASH_CONTEXT).digest();
  return createHmac('sha256', key).update(normalise(phone)).digest('hex');
}

function normalise(phone: string): string {
  try {
    return formatPhoneNumber(phone);
  } catch {
    return phone.replace(/\D/g, '');
  }
}
