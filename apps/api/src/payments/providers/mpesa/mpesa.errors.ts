import { AppError } from '../../../common/errors';

/*
 * M-Pesa input errors. A failed Daraja call is a ProviderError('mpesa', kind, ...) (../provider-errors.ts),
 * like every provider's.
 */

/** The callback body is not an STK callback (wrong shape / types). */
export class CallbackShapeError extends AppError {
  constructor(message: string) {
    super('INVALID_CALLBACK', message, 400);
  }
}

/** Phone number not in an accepted format. */
export class InvalidPhoneNumberError extends AppError {
  constructor(input: string | undefined) {
    super(
      'INVALID_PHONE_NUMBER',
      'phoneNumber must be a Kenyan mobile number: +254712345678, 254712345678, 0712345678, 712345678, 0112345678 or 112345678 (spaces and dashes allowed)',
      400,
      input === undefined ? undefined : { received: maskForMessage(input) },
    );
  }
}

function maskForMessage(input: string): string {
  const s = String(input);
  return s.length <= 4 ? '*'.repeat(s.length) : s.slice(0, 4) + '*'.repeat(Math.max(0, s.length - 6)) + s.slice(-2);
}
