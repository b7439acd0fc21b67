import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional, ApiResponse } from '@nestjs/swagger';
import { ERROR_CODES, type ErrorCode } from './error-codes';

const CODE_PROPERTY = {
  enum: ERROR_CODES,
  enumName: 'ErrorCode',
  description: 'Stable machine-readable code: one of these, whatever the status',
} as const;

export class ErrorResponseDto {
  @ApiProperty({ example: 400 }) statusCode!: number;
  @ApiProperty({ ...CODE_PROPERTY, example: 'VALIDATION_FAILED' }) code!: ErrorCode;
  @ApiProperty({ example: 'amount must be a whole number of shillings' }) message!: string;
  @ApiPropertyOptional({ type: 'object', additionalProperties: true }) details?: Record<string, unknown>;
  @ApiPropertyOptional({ example: 'req-1f3c' }) requestId?: string;
}

/** What a provider error (502/503/504, CUSTOMER_BUSY) carries in `details`, besides anything else. */
export class ProviderErrorDetailsDto {
  @ApiPropertyOptional({ enum: ['mpesa', 'flutterwave', 'pesapal'] }) provider?: string;
  @ApiPropertyOptional({
    description: "The provider's own error code (Daraja errorCode, Pesapal error.code)",
    example: '500.003.02',
  })
  providerErrorCode?: string;
  @ApiPropertyOptional({
    description: "The provider's own error message",
    example: 'Error Occurred: Spike Arrest Violation',
  })
  providerErrorMessage?: string;
  @ApiPropertyOptional({
    description: "The provider's id for its answer (Daraja requestId), to quote to its support",
    example: '1c5b-4ba8-815c-ac45c57a3db01495926',
  })
  providerRequestId?: string;
  @ApiPropertyOptional({ description: 'The payment the answer belongs to (payment initiation)' }) paymentId?: string;
  @ApiPropertyOptional({
    enum: ['failed', 'unresolved'],
    description:
      'failed: nothing was done, a new payment may be started; unresolved: the outcome is unknown, do not start another payment: check this one',
  })
  status?: string;
}

export class ProviderErrorResponseDto {
  @ApiProperty({ example: 503 }) statusCode!: number;
  @ApiProperty({ ...CODE_PROPERTY, example: 'PROVIDER_UNREACHABLE' }) code!: ErrorCode;
  @ApiProperty({ example: 'M-Pesa could not be reached (ECONNREFUSED); the STK push was not sent' }) message!: string;
  @ApiPropertyOptional({ type: ProviderErrorDetailsDto }) details?: ProviderErrorDetailsDto;
  @ApiPropertyOptional({ example: 'req-1f3c' }) requestId?: string;
}

/**
 * Per status, what it means and its codes. The provider codes and statuses come from one table,
 * PROVIDER_ERROR_KINDS (payments/providers/provider-errors.ts), the same for every provider:
 * 502 = the provider answered badly or refused; 503 = not processed, try again later (rate limited,
 * unreachable); 504 = timeout, outcome unknown.
 */
export const ERROR_DESCRIPTIONS: Readonly<Record<number, string>> = {
  400: 'Invalid input (VALIDATION_FAILED, INVALID_JSON, INVALID_PHONE_NUMBER, AMOUNT_EXCEEDS_OUTSTANDING, ...)',
  401: 'Missing, invalid or expired token (UNAUTHORIZED, TOKEN_EXPIRED)',
  403: 'Role not allowed, or callback sender not on the IP allowlist (FORBIDDEN)',
  404: 'Not found in your shop (NOT_FOUND)',
  409:
    'Conflict (PAYMENT_IN_PROGRESS, PAYMENT_OUTCOME_UNKNOWN, PAYMENT_NOT_RELEASABLE, IDEMPOTENCY_KEY_REUSED, ORDER_EXISTS, ORDER_ALREADY_PAID), ' +
    'the customer already has an open M-Pesa prompt (CUSTOMER_BUSY: nothing was sent, try again after Retry-After), ' +
    'or the provider reference the call needs is not known yet (PROVIDER_REFERENCE_REQUIRED)',
  413: 'Body too large',
  502:
    'The payment provider (M-Pesa, Flutterwave, Pesapal) answered badly or refused the request ' +
    '(PROVIDER_REJECTED, PROVIDER_AUTH_FAILED, PROVIDER_UNAVAILABLE, PROVIDER_BAD_RESPONSE, PROVIDER_REFERENCE_MISMATCH). ' +
    'details.status says whether the payment failed (nothing was done) or is unresolved (a 5xx, a connection broken after sending or an unreadable answer: outcome unknown; do not retry, poll it)',
  503:
    'Not processed; try again after Retry-After seconds: the provider is rate limiting (PROVIDER_RATE_LIMITED) or could not be reached, so nothing was sent (PROVIDER_UNREACHABLE). ' +
    'Also: the provider is switched off here (PROVIDER_DISABLED, hosted providers only), or the database is down (DATABASE_UNAVAILABLE). ' +
    "Careful with DATABASE_UNAVAILABLE: when details.paymentId is set, the provider was asked and its answer could not be recorded: do not start another payment, check that one's status",
  504: 'The provider did not answer in time (PROVIDER_TIMEOUT): outcome unknown. The payment is unresolved and will be settled by its notification, a status check or the reconciler; do not retry it',
};

const PROVIDER_ERROR_STATUSES = new Set([502, 503, 504]);

const RETRY_AFTER: Readonly<Record<number, string>> = {
  409: 'With CUSTOMER_BUSY: whole seconds to wait before pushing to this phone again',
  503: 'Whole seconds to wait before trying again',
};

/** Documents the error shape for the given statuses (provider statuses with the provider's details and Retry-After). */
export function ApiErrors(...statuses: number[]) {
  return applyDecorators(
    ...statuses.map((status) =>
      ApiResponse({
        status,
        description: ERROR_DESCRIPTIONS[status] ?? 'Error',
        type: PROVIDER_ERROR_STATUSES.has(status) ? ProviderErrorResponseDto : ErrorResponseDto,
        ...(RETRY_AFTER[status]
          ? {
              headers: { 'Retry-After': { description: RETRY_AFTER[status], schema: { type: 'integer', minimum: 1 } } },
            }
          : {}),
      }),
    ),
  );
}
