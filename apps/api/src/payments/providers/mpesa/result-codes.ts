import type { StkOutcome } from './daraja.types';

/**
 * Maps an STK `ResultCode` (number in callbacks, string in query responses) to our outcome.
 * Switch on the code, never on ResultDesc. Delivery timeouts (1037, 1036) and 1019 are 'expired':
 * nobody was charged and the customer can simply be asked again. Unknown / non-numeric codes
 * (SFC_IC0003, 2028, E3008, anything new) are failures; the caller keeps the raw code and description.
 */
export function mapResultCode(code: string | number): StkOutcome {
  switch (normaliseResultCode(code)) {
    case '0':
      return 'completed';
    case '1032': // Request cancelled by user
    case '1031': // older variant of 1032
      return 'cancelled';
    case '1037': // DS timeout / "No response from user.": phone off, unreachable or not answered
    case '1036': // "[STK_CB - ]SMSC ACK timeout.": the prompt never reached the SIM (daraja.md §2.6; payload cb15, 2019)
    case '1019': // Transaction has expired
      return 'expired';
    default:
      return 'failed';
  }
}

/**
 * Canonical string form of a result code: numbers and numeric strings become their
 * integer decimal form ("0", "1032"); other strings are trimmed and kept as they are.
 */
export function normaliseResultCode(code: string | number): string {
  if (typeof code === 'number') return String(code);
  const s = String(code ?? '').trim();
  if (/^-?\d+$/.test(s) && s.length <= 15) return String(Number(s));
  return s;
}
