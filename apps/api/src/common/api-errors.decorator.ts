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
  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description:
      'Depends on the code. VALIDATION_FAILED from the request checks: `problems` (every message) and `errors` (each with the field it concerns).',
    properties: {
      problems: { type: 'array', items: { type: 'string' }, example: ['amount must be a positive integer'] },
      errors: {
        type: 'array',
        description:
          'One entry per problem: `param` is the field it concerns (nested fields dotted, e.g. customer.phone; as Stripe names it)',
        items: {
          type: 'object',
          required: ['param', 'message'],
          properties: {
            param: { type: 'string', example: 'amount' },
            message: { type: 'string', example: 'amount must be a positive integer' },
          },
        },
      },
    },
  })
  details?: Record<string, unknown>;
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

export interface ErrorExample {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

/**
 * Per status, the example answers documented when an operation names no codes of its own: codes
 * that status really carries (the filter and the typed errors send them with it).
 */
export const ERROR_EXAMPLES: Readonly<Record<number, readonly ErrorExample[]>> = {
  400: [
    {
      code: 'VALIDATION_FAILED',
      message: 'amount must be a positive integer',
      details: {
        problems: ['amount must be a positive integer'],
        errors: [{ param: 'amount', message: 'amount must be a positive integer' }],
      },
    },
    { code: 'INVALID_JSON', message: 'Request body is not valid JSON' },
  ],
  401: [
    { code: 'UNAUTHORIZED', message: 'Missing Authorization: Bearer <token> header' },
    { code: 'TOKEN_EXPIRED', message: 'Your session has expired: sign in again' },
  ],
  403: [{ code: 'FORBIDDEN', message: 'This action needs one of the roles: manager, admin' }],
  404: [{ code: 'NOT_FOUND', message: 'Payment not found' }],
  409: [
    {
      code: 'PAYMENT_IN_PROGRESS',
      message:
        'Order ord_1001 already has a payment waiting for the customer; wait for it to finish or check its status',
    },
    {
      code: 'IDEMPOTENCY_KEY_REUSED',
      message: 'This Idempotency-Key was already used with a different request; use a new key',
    },
  ],
  413: [{ code: 'PAYLOAD_TOO_LARGE', message: 'Request body is too large' }],
  415: [
    { code: 'UNSUPPORTED_MEDIA_TYPE', message: 'Send the request body as JSON with Content-Type: application/json' },
  ],
  422: [{ code: 'REFUND_WRONG_PROVIDER', message: 'This payment was not made with Pesapal' }],
  429: [
    {
      code: 'RATE_LIMITED_SHOP',
      message: 'This shop has sent too many M-Pesa requests (limit 30 a minute); try again in 12 s',
      details: { retryAfterSeconds: 12, limit: 30, windowSeconds: 60 },
    },
  ],
  502: [
    {
      code: 'PROVIDER_REJECTED',
      message: 'M-Pesa refused the STK push: Invalid Access Token',
      details: { provider: 'mpesa', providerErrorCode: '404.001.03', status: 'failed' },
    },
  ],
  503: [
    {
      code: 'PROVIDER_UNREACHABLE',
      message: 'M-Pesa could not be reached (ECONNREFUSED); the STK push was not sent',
      details: { provider: 'mpesa', status: 'failed' },
    },
    {
      code: 'DATABASE_UNAVAILABLE',
      message: 'The payments database is unavailable for a moment. Try again in a few seconds.',
    },
  ],
  504: [
    {
      code: 'PROVIDER_TIMEOUT',
      message: 'M-Pesa did not answer in time; the outcome is unknown: check the payment before trying again',
      details: { provider: 'mpesa', status: 'unresolved' },
    },
  ],
};

/** An error status, or a status with the codes this operation answers with it (the examples shown). */
export type DocumentedError = number | { status: number; codes: readonly (ErrorCode | ErrorExample)[] };

function examplesFor(status: number, codes?: readonly (ErrorCode | ErrorExample)[]): ErrorExample[] {
  const known = ERROR_EXAMPLES[status] ?? [];
  if (!codes) return [...known];
  return codes.map((c) => {
    if (typeof c !== 'string') return c;
    const example = known.find((e) => e.code === c);
    if (!example) throw new Error(`ApiErrors: no example message for ${status} ${c}; pass {code, message}`);
    return example;
  });
}

/**
 * The OpenAPI `examples` of one error response: one per code, named by it, each a whole answer
 * with its status and a real code (so Swagger UI and the client docs do not show a 400 for a 404).
 */
export function errorExamples(
  status: number,
  codes?: readonly (ErrorCode | ErrorExample)[],
): Record<string, { summary: string; value: Record<string, unknown> }> {
  return Object.fromEntries(
    examplesFor(status, codes).map((e) => [
      e.code,
      {
        summary: e.code,
        value: { statusCode: status, ...e, requestId: '0f8e3a52-7c1d-4b7e-9a51-2c6f0d4b8e11' },
      },
    ]),
  );
}

/**
 * Documents the error shape for the given statuses (provider statuses with the provider's details
 * and Retry-After), each with examples of the codes it carries: the status's usual codes, or the
 * ones given (`{ status: 409, codes: ['ORDER_EXISTS'] }`).
 */
export function ApiErrors(...errors: DocumentedError[]) {
  return applyDecorators(
    ...errors.map((error) => {
      const status = typeof error === 'number' ? error : error.status;
      const examples = errorExamples(status, typeof error === 'number' ? undefined : error.codes);
      return ApiResponse({
        status,
        description: ERROR_DESCRIPTIONS[status] ?? 'Error',
        type: PROVIDER_ERROR_STATUSES.has(status) ? ProviderErrorResponseDto : ErrorResponseDto,
        ...(Object.keys(examples).length ? { examples } : {}),
        ...(RETRY_AFTER[status]
          ? {
              headers: { 'Retry-After': { description: RETRY_AFTER[status], schema: { type: 'integer', minimum: 1 } } },
            }
          : {}),
      });
    }),
  );
}
