import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional, ApiResponse } from '@nestjs/swagger';

export class ErrorResponseDto {
  @ApiProperty({ example: 400 }) statusCode!: number;
  @ApiProperty({ example: 'VALIDATION_FAILED', description: 'Stable machine-readable code' }) code!: string;
  @ApiProperty({ example: 'amount must be a whole number of shillings' }) message!: string;
  @ApiPropertyOptional({ type: 'object', additionalProperties: true }) details?: Record<string, unknown>;
  @ApiPropertyOptional({ example: 'req-1f3c' }) requestId?: string;
}

const DESCRIPTIONS: Record<number, string> = {
  400: 'Invalid input (VALIDATION_FAILED, INVALID_JSON, INVALID_PHONE_NUMBER, AMOUNT_EXCEEDS_OUTSTANDING, ...)',
  401: 'Missing, invalid or expired token (UNAUTHORIZED, TOKEN_EXPIRED)',
  403: 'Role not allowed, or callback sender not on the IP allowlist (FORBIDDEN)',
  404: 'Not found in your shop (NOT_FOUND)',
  409: 'Conflict (PAYMENT_IN_PROGRESS, PAYMENT_OUTCOME_UNKNOWN, PAYMENT_NOT_RELEASABLE, IDEMPOTENCY_KEY_REUSED, ORDER_EXISTS, ORDER_ALREADY_PAID, CUSTOMER_BUSY)',
  413: 'Body too large',
  502: 'The payment provider (M-Pesa, Flutterwave, Pesapal) rejected the request or could not be reached (PROVIDER_REJECTED, PROVIDER_UNAVAILABLE, PROVIDER_AUTH_FAILED). details.status says whether the payment failed (nothing sent) or is unresolved (do not retry; poll it)',
  503: 'The provider is rate limiting or unreachable before anything was sent (PROVIDER_RATE_LIMITED, see Retry-After), the provider is switched off here (PROVIDER_DISABLED), or the database is down',
  504: 'The provider did not answer in time (PROVIDER_TIMEOUT): the payment is unresolved and will be settled by its notification, a status check or the reconciler',
};

/** Documents the error shape for the given statuses. */
export function ApiErrors(...statuses: number[]) {
  return applyDecorators(...statuses.map((status) => ApiResponse({ status, description: DESCRIPTIONS[status] ?? 'Error', type: ErrorResponseDto })));
}
