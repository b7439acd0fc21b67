import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  IsInt,
  IsIn,
  IsNumber,
  IsOptional,
  IsString,
  IsUUID,
  Matches,
  Max,
  Min,
  ValidateBy,
  ValidateIf,
} from 'class-validator';
import { decimalPlaces, ORDER_ID_PATTERN } from '../orders/orders.dto';
import { IsAuditReason, PaymentResponseDto } from './payments.dto';

/** Largest refund amount a request may name (major units): far above any payment, below float trouble. */
const MAX_REFUND_AMOUNT = 100_000_000;

export class RefundIdParam {
  @ApiProperty({ format: 'uuid', description: 'The refundId' })
  @IsUUID('all', { message: 'refundId must be a refund id (UUID)' })
  refundId!: string;
}

export class RefundListQueryDto {
  @IsOptional()
  @IsIn(['requested', 'pending', 'unknown', 'succeeded', 'failed', 'review'], {
    message: 'status must be one of requested, pending, unknown, succeeded, failed, review',
  })
  @ApiPropertyOptional({ enum: ['requested', 'pending', 'unknown', 'succeeded', 'failed', 'review'] })
  status?: string;

  @IsOptional()
  @Type(() => Number)
  @IsInt({ message: 'limit must be a whole number' })
  @Min(1, { message: 'limit must be between 1 and 200' })
  @Max(200, { message: 'limit must be between 1 and 200' })
  @ApiPropertyOptional({ default: 50, minimum: 1, maximum: 200 })
  limit?: number;
}

export class RefundRequestDto {
  @ApiPropertyOptional({
    example: 150,
    description:
      "In the payment's currency, major units (KES shillings; M-Pesa refunds are whole shillings). Absent: everything still refundable on the payment.",
  })
  // Only an absent amount means "everything left": an explicit null is refused, never read as a full refund.
  @ValidateIf((o: { amount?: unknown }) => o.amount !== undefined)
  @IsNumber({ allowNaN: false, allowInfinity: false }, { message: 'amount must be a number' })
  @ValidateBy(
    {
      name: 'maxTwoDecimals',
      validator: { validate: (v: unknown) => typeof v !== 'number' || !Number.isFinite(v) || decimalPlaces(v) <= 2 },
    },
    { message: 'amount must have at most 2 decimal places' },
  )
  @Min(0.01, { message: 'amount must be more than 0' })
  @Max(MAX_REFUND_AMOUNT, { message: `amount must be at most ${MAX_REFUND_AMOUNT}` })
  amount?: number;

  @ApiPropertyOptional({ example: 'KES', description: "Must be the payment's currency when given" })
  @ValidateIf((o: { currency?: unknown }) => o.currency !== undefined)
  @IsString({ message: 'currency must be a string' })
  @Matches(/^[A-Z]{3}$/, { message: 'currency must be a 3-letter ISO code such as KES' })
  currency?: string;

  @ApiProperty({
    example: 'Customer was charged twice for order 1042',
    description:
      'Why the money goes back (kept with the refund and its audit trail): 3-500 characters, no control characters',
  })
  @IsString({ message: 'reason must be a string' })
  @IsAuditReason(3, 500, { message: 'reason must be 3-500 characters of text saying why (no control characters)' })
  reason!: string;
}

export class ResolveReviewDto {
  @ApiProperty({
    enum: ['refund', 'accept', 'release'],
    description:
      'refund: give all of it back; accept: keep the money against this order or `orderId`; release: close it with the note, nothing sent',
  })
  @IsIn(['refund', 'accept', 'release'], { message: 'action must be one of refund, accept, release' })
  action!: 'refund' | 'accept' | 'release';

  @ApiProperty({
    example: 'Customer paid twice; second charge refunded',
    description: '3-500 characters, kept in the audit log',
  })
  @IsString({ message: 'note must be a string' })
  @IsAuditReason(3, 500, { message: 'note must be 3-500 characters of text saying why (no control characters)' })
  note!: string;

  @ApiPropertyOptional({ example: 'ORD-12346', description: 'accept only: the order the money is kept against' })
  @IsOptional()
  @IsString({ message: 'orderId must be a string' })
  @Matches(ORDER_ID_PATTERN, { message: "orderId must be 1-64 characters: letters, digits, '.', '_' or '-'" })
  orderId?: string;
}

export class SettleRefundDto {
  @ApiProperty({ enum: ['succeeded', 'failed'], description: 'What the provider (its portal, the statement) shows' })
  @IsIn(['succeeded', 'failed'], { message: 'outcome must be succeeded or failed' })
  outcome!: 'succeeded' | 'failed';

  @ApiProperty({
    example: 'M-Pesa org portal shows reversal RCX1234567 of 150 KES',
    description: '3-500 characters, kept in the audit log',
  })
  @IsString({ message: 'note must be a string' })
  @IsAuditReason(3, 500, { message: 'note must be 3-500 characters of text saying why (no control characters)' })
  note!: string;
}

export class RefundResponseDto {
  @ApiProperty({ format: 'uuid' }) refundId!: string;
  @ApiProperty({ format: 'uuid' }) paymentId!: string;
  @ApiProperty() orderId!: string;
  @ApiProperty({ enum: ['mpesa', 'flutterwave', 'pesapal'] }) provider!: string;
  @ApiProperty({ example: 150 }) amount!: number;
  @ApiProperty({ example: 'KES' }) currency!: string;
  @ApiProperty({
    enum: ['requested', 'pending', 'unknown', 'succeeded', 'failed', 'review'],
    description:
      'requested: being sent; pending: the provider took it, its result is awaited; unknown: the answer is missing, it is being checked (never sent twice blindly); ' +
      'succeeded / failed: final; review: a person must look (it may have paid out)',
  })
  status!: string;
  @ApiPropertyOptional({ nullable: true, type: String, example: 'INITIATOR_INVALID' }) statusReason!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, example: '2001' }) resultCode!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) resultDesc!: string | null;
  @ApiProperty() reason!: string;
  @ApiProperty({ enum: ['request', 'review', 'provider'] }) source!: string;
  @ApiProperty({ example: 'user:manager-1' }) requestedBy!: string;
  @ApiPropertyOptional({ nullable: true, type: String }) providerRefundId!: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time' }) updatedAt!: string;
  @ApiPropertyOptional({ nullable: true, type: String, format: 'date-time' }) completedAt!: string | null;
}

export class RefundListDto {
  @ApiProperty({ type: [RefundResponseDto] }) items!: RefundResponseDto[];
}

export class RefundReconcileDto {
  @ApiProperty({ type: RefundResponseDto }) refund!: RefundResponseDto;
  @ApiProperty({
    enum: ['settled', 'still_open', 'provider_error', 'moved_to_review', 'deferred', 'already_final', 'in_progress'],
    description:
      'in_progress: another look at this refund (the reconciler, another manager) is running; nothing was sent',
  })
  action!: string;
}

export class ReviewResolutionDto {
  @ApiProperty({ type: PaymentResponseDto }) payment!: PaymentResponseDto;
  @ApiPropertyOptional({ type: RefundResponseDto, nullable: true }) refund!: RefundResponseDto | null;
}
