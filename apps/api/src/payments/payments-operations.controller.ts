import { Body, Controller, Get, HttpCode, Param, Post, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiProperty, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, Matches, Max, Min } from 'class-validator';
import type { AuthUser } from '../auth/auth.types';
import { JwtAuthGuard } from '../auth/jwt-auth.guard';
import { CurrentUser, Roles } from '../auth/roles.decorator';
import { ApiErrors } from '../common/api-errors.decorator';
import { PaymentIdParam, PaymentResponseDto, ReleasePaymentDto } from './payments.dto';
import { PaymentOperationsService } from './payment-operations.service';

export class ReviewListQueryDto {
  @IsOptional()
  @Type(() => Number)
  @IsInt({ message: 'limit must be a whole number' })
  @Min(1, { message: 'limit must be between 1 and 100' })
  @Max(100, { message: 'limit must be between 1 and 100' })
  @ApiPropertyOptional({ default: 50, minimum: 1, maximum: 100 })
  limit?: number;

  @IsOptional()
  @Matches(/^[A-Za-z0-9_-]{1,200}$/, { message: 'cursor must be the nextCursor of a previous page' })
  @ApiPropertyOptional({ description: 'nextCursor of the previous page' })
  cursor?: string;
}

export class ReviewListDto {
  @ApiProperty({ type: [PaymentResponseDto] }) items!: PaymentResponseDto[];
  @ApiPropertyOptional({ nullable: true, type: String }) nextCursor!: string | null;
}

export class ReconcileResultDto {
  @ApiProperty({ type: PaymentResponseDto }) payment!: PaymentResponseDto;
  @ApiProperty({
    enum: [
      'settled',
      'still_pending',
      'expired',
      'failed_not_found',
      'moved_to_review',
      'provider_error',
      'deferred',
      'already_final',
    ],
  })
  action!: string;
  @ApiPropertyOptional({
    description: 'What Daraja answered to the STK query, when it was asked',
    type: 'object',
    additionalProperties: true,
  })
  provider?: Record<string, unknown>;
}

/**
 * Operator tools (manager/admin, own shop only). Registered before PaymentsController so
 * `/payments/review` is not taken for a payment id.
 */
@ApiTags('payments (operators)')
@ApiBearerAuth()
@UseGuards(JwtAuthGuard)
@Controller('payments')
export class PaymentsOperationsController {
  constructor(private readonly payments: PaymentOperationsService) {}

  @Get('review')
  @Roles('manager', 'admin')
  @ApiOperation({
    summary:
      'Payments that need a person: amount/id mismatches, duplicate receipts, and payments whose outcome could not be established',
    description:
      'Newest first, paged with `cursor`. `statusReason` says why (e.g. AMOUNT_MISMATCH, DUPLICATE_RECEIPT, EXCEEDS_OUTSTANDING or ORDER_ALREADY_PAID: money to refund, ' +
      'SECOND_CHARGE: a second receipt for one push, recorded as a payment of its own (`resultDesc` names the first), refund one; ' +
      'OUTCOME_UNKNOWN: blocks its order until settled or released, see `releasedAt`).',
  })
  @ApiOkResponse({ type: ReviewListDto })
  @ApiErrors(400, 401, 403)
  listReview(@CurrentUser() user: AuthUser, @Query() q: ReviewListQueryDto): Promise<ReviewListDto> {
    return this.payments.listReview(user, q.limit ?? 50, q.cursor);
  }

  @Post(':id/reconcile')
  @HttpCode(200)
  @Roles('manager', 'admin')
  @ApiOperation({
    summary: 'Reconcile one payment now (STK query)',
    description:
      "An open payment is settled from Daraja's answer (or rescheduled when Daraja has none yet). A payment in review is looked up and settled only when it is there because its outcome was unknown; " +
      'other review cases (amount mismatch, duplicate receipt) are reported in `provider`, never changed automatically. Never sends a new prompt.',
  })
  @ApiOkResponse({ type: ReconcileResultDto })
  @ApiErrors(400, 401, 403, 404)
  reconcile(@CurrentUser() user: AuthUser, @Param() p: PaymentIdParam): Promise<ReconcileResultDto> {
    return this.payments.reconcileNow(user, p.id);
  }

  @Post(':id/release')
  @HttpCode(200)
  @Roles('manager', 'admin')
  @ApiOperation({
    summary: 'Release the order of a payment whose outcome is unknown, so it can take a new payment',
    description:
      'A payment in `review` with `OUTCOME_UNKNOWN` may still have charged the customer, so it blocks its order: a new payment answers `409 PAYMENT_OUTCOME_UNKNOWN`. ' +
      "Check the customer's M-Pesa SMS (or reconcile the payment when it has a CheckoutRequestID; without one only the M-Pesa statement can tell) first; release only when you are satisfied nothing was paid. " +
      'The reason (3-500 characters once trimmed, at least 3 of them visible, no control characters) is kept in the audit log with who released it. ' +
      'The payment stays in review: a late report of the truth still settles it, and a success that no longer fits the order goes to review (`EXCEEDS_OUTSTANDING`) for a refund. ' +
      '`409 PAYMENT_NOT_RELEASABLE` for any other payment (still open, outcome known, or already released).',
  })
  @ApiOkResponse({ type: PaymentResponseDto })
  @ApiErrors(400, 401, 403, 404, {
    status: 409,
    codes: [
      {
        code: 'PAYMENT_NOT_RELEASABLE',
        message:
          'This payment is still waiting for the customer or the provider: wait for it to finish, or reconcile it',
      },
    ],
  })
  release(
    @CurrentUser() user: AuthUser,
    @Param() p: PaymentIdParam,
    @Body() body: ReleasePaymentDto,
  ): Promise<PaymentResponseDto> {
    return this.payments.release(user, p.id, body.reason);
  }
}
