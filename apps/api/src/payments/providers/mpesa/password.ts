/**
 * Lipa na M-Pesa Online password: base64(BusinessShortCode + Passkey + Timestamp),
 * plain string concatenation, UTF-8, standard base64. The timestamp must be the very
 * same string sent in the request's `Timestamp` field.
 */
export function stkPassword(shortcode: string, passkey: string, timestamp: string): string {
  return Buffer.from(`${shortcode}${passkey}${timestamp}`, 'utf8').toString('base64');
}
