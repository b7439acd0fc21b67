import { AppError } from '../../../common/errors';

/**
 * Every failed Daraja call becomes one of these.
 * `outcome` tells the caller whether the request could have been acted upon
 * by Safaricom: 'not_processed' is safe to retry / mark failed; 'unknown'
 * (timeouts, ambiguous 5xx after the request was sent) must never be retried
 * blindly for an STK push: the payment becomes `unresolved`.
 */
export type DarajaCallOutcome = 'not_processed' | 'unknown';

export abstract class DarajaError extends AppError {
  abstract readonly outcome: DarajaCallOutcome;
  /** Daraja's own errorCode / errorMessage / requestId when it sent an error envelope. */
  readonly darajaErrorCode?: string;
  readonly darajaErrorMessage?: string;
  readonly darajaRequestId?: string;
  readonly httpStatus?: number;
  constructor(
    code: string,
    message: string,
    statusCode: number,
    info: { darajaErrorCode?: string; darajaErrorMessage?: string; darajaRequestId?: string; httpStatus?: number } = {},
    headers?: Record<string, string>,
  ) {
    super(
      code,
      message,
      statusCode,
      info.darajaErrorCode || info.darajaErrorMessage
        ? { providerErrorCode: info.darajaErrorCode, providerErrorMessage: info.darajaErrorMessage }
        : undefined,
      headers,
    );
    this.darajaErrorCode = info.darajaErrorCode;
    this.darajaErrorMessage = info.darajaErrorMessage;
    this.darajaRequestId = info.darajaRequestId;
    this.httpStatus = info.httpStatus;
  }
}

/** OAuth rejected our consumer key/secret (HTTP 400, empty body), or a token stayed invalid after one refresh. */
export class DarajaAuthError extends DarajaError {
  readonly outcome = 'not_processed' as const;
  constructor(message: string, info: ConstructorParameters<typeof DarajaError>[3] = {}) {
    super('PROVIDER_AUTH_FAILED', message, 502, info);
  }
}

/** Daraja rejected the request itself (400.002.02 Invalid X, 500.001.1001 Wrong credentials, Merchant does not exist...). */
export class DarajaInvalidRequestError extends DarajaError {
  readonly outcome = 'not_processed' as const;
  constructor(message: string, info: ConstructorParameters<typeof DarajaError>[3] = {}) {
    super('PROVIDER_REJECTED', message, 502, info);
  }
}

/** "Unable to lock subscriber": the customer already has an open M-Pesa prompt. */
export class DarajaSubscriberBusyError extends DarajaError {
  readonly outcome = 'not_processed' as const;
  constructor(message: string, info: ConstructorParameters<typeof DarajaError>[3] = {}) {
    super('CUSTOMER_BUSY', message, 409, info, { 'Retry-After': '60' });
  }
}

/** 500.003.02 spike arrest / system busy, 500.003.03 quota: rejected before processing, retry later. */
export class DarajaRateLimitedError extends DarajaError {
  readonly outcome = 'not_processed' as const;
  constructor(message: string, info: ConstructorParameters<typeof DarajaError>[3] = {}, retryAfterSeconds = 30) {
    super('PROVIDER_RATE_LIMITED', message, 503, info, { 'Retry-After': String(retryAfterSeconds) });
  }
}

/** Connection refused / DNS failure: the request never reached Daraja. */
export class DarajaUnreachableError extends DarajaError {
  readonly outcome = 'not_processed' as const;
  constructor(message: string, info: ConstructorParameters<typeof DarajaError>[3] = {}) {
    super('PROVIDER_UNAVAILABLE', message, 502, info);
  }
}

/** 5xx (other than the above) after the request was sent: Safaricom may or may not have acted on it. */
export class DarajaUnavailableError extends DarajaError {
  readonly outcome = 'unknown' as const;
  constructor(message: string, info: ConstructorParameters<typeof DarajaError>[3] = {}) {
    super('PROVIDER_UNAVAILABLE', message, 502, info);
  }
}

/** No answer within the configured timeout: outcome unknown. */
export class DarajaTimeoutError extends DarajaError {
  readonly outcome = 'unknown' as const;
  constructor(message: string, info: ConstructorParameters<typeof DarajaError>[3] = {}) {
    super('PROVIDER_TIMEOUT', message, 504, info);
  }
}

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
