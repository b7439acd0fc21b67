import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsISO8601, IsOptional, Matches, Max, Min } from 'class-validator';
import { MERCHANT_ACCOUNT_PROVIDERS, PAYMENT_STATUSES } from '../database/schema';
import { ORDER_ID_PATTERN } from '../orders/orders.dto';
import { PaymentResponseDto } from './payments.dto';

/** An ISO-8601 instant with a date, a time and a zone (Z or ±hh:mm): a bare date has no zone, so it is refused. */
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

export class PaymentHistoryQueryDto {
  @ApiPropertyOptional({ example: 'ORD-12345' })
  @IsOptional()
  @Matches(ORDER_ID_PATTERN, { message: "orderId must be 1-64 characters: letters, digits, '.', '_' or '-'" })
  orderId?: string;

  @ApiPropertyOptional({ enum: PAYMENT_STATUSES })
  @IsOptional()
  @IsIn([...PAYMENT_STATUSES], { message: `status must be one of: ${PAYMENT_STATUSES.join(', ')}` })
  status?: string;

  @ApiPropertyOptional({ enum: MERCHANT_ACCOUNT_PROVIDERS })
  @IsOptional()
  @IsIn([...MERCHANT_ACCOUNT_PROVIDERS], {
    message: `provider must be one of: ${MERCHANT_ACCOUNT_PROVIDERS.join(', ')}`,
  })
  provider?: string;

  @ApiPropertyOptional({ format: 'date-time', description: 'Created at or after this instant (inclusive)' })
  @IsOptional()
  @Matches(ISO_INSTANT, { message: 'from must be an ISO-8601 instant with a zone, e.g. 2026-12-02T00:00:00+03:00' })
  @IsISO8601({ strict: true }, { message: 'from must be a real date and time' })
  from?: string;

  @ApiPropertyOptional({ format: 'date-time', description: 'Created before this instant (exclusive)' })
  @IsOptional()
  @Matches(ISO_INSTANT, { message: 'to must be an ISO-8601 instant with a zone, e.g. 2026-12-03T00:00:00+03:00' })
  @IsISO8601({ strict: true }, { message: 'to must be a real date and time' })
  to?: string;

  @ApiPropertyOptional({ description: 'nextCursor of the previous page' })
  @IsOptional()
  @Matches(/^[A-Za-z0-9_-]{1,200}$/, { message: 'cursor must be the nextCursor of a previous page' })
  cursor?: string;

  @ApiPropertyOptional({ default: 25, minimum: 1, maximum: 100 })
  @IsOptional()
  @Type(() => Number)
  @IsInt({ message: 'limit must be a whole number' })
  @Min(1, { message: 'limit must be between 1 and 100' })
  @Max(100, { message: 'limit must be between 1 and 100' })
  limit?: number;
}

export class PaymentHistoryDto {
  @ApiProperty({ type: [PaymentResponseDto] }) data!: PaymentResponseDto[];
  @ApiPropertyOptional({ nullable: true, type: String }) nextCursor!: string | null;
}

export class ReceiptShopDto {
  @ApiProperty() id!: string;
  @ApiProperty() name!: string;
}

export class ReceiptDto {
  @ApiProperty({ format: 'uuid' }) paymentId!: string;
  @ApiProperty({ type: ReceiptShopDto }) shop!: ReceiptShopDto;
  @ApiProperty() orderId!: string;
  @ApiProperty({ example: 'mpesa' }) provider!: string;
  @ApiProperty({ example: 'completed' }) status!: string;
  @ApiProperty({ example: 100, description: 'Major units, like PaymentResponseDto.amount' }) amount!: number;
  @ApiProperty({ example: 'KES' }) currency!: string;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    description: 'M-Pesa receipt number, or the provider confirmation / reference',
  })
  confirmation!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, example: '2547******78' }) phone!: string | null;
  @ApiProperty({ format: 'date-time' }) paidAt!: string;
  @ApiProperty({ example: '2026-12-02 14:05' }) paidAtNairobi!: string;
}

export class ReceiptPrintQueryDto {
  @ApiPropertyOptional({ enum: ['58', '80'], default: '80', description: 'Thermal paper width in mm' })
  @IsOptional()
  @IsIn(['58', '80'], { message: 'width must be 58 or 80' })
  width?: '58' | '80';
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

export class DailyReportQueryDto {
  @ApiProperty({ example: '2026-12-01', description: 'First Nairobi calendar day (inclusive)' })
  @Matches(DAY, { message: 'from must be a date YYYY-MM-DD' })
  @IsISO8601({ strict: true }, { message: 'from must be a real date' })
  from!: string;

  @ApiProperty({
    example: '2026-12-02',
    description: 'Last Nairobi calendar day (inclusive); at most 92 days from `from`',
  })
  @Matches(DAY, { message: 'to must be a date YYYY-MM-DD' })
  @IsISO8601({ strict: true }, { message: 'to must be a real date' })
  to!: string;
}

export class CountAmountDto {
  @ApiProperty() count!: number;
  @ApiProperty({ description: 'Major units, like PaymentResponseDto.amount' }) amount!: number;
}

export class DailyProviderDto {
  @ApiProperty() provider!: string;
  @ApiProperty() currency!: string;
  @ApiProperty({ type: CountAmountDto, description: 'Payments completed that day (by completedAt)' })
  completed!: CountAmountDto;
  @ApiProperty({ description: 'Payments created that day that failed' }) failed!: number;
  @ApiProperty({ description: 'Payments created that day that were cancelled' }) cancelled!: number;
  @ApiProperty({ description: 'Payments created that day that expired' }) expired!: number;
  @ApiProperty({ type: CountAmountDto, description: 'Refunds that succeeded that day' }) refunds!: CountAmountDto;
  @ApiPropertyOptional({ nullable: true, type: Number, description: 'Median seconds from created to completed' })
  medianSecondsToPaid!: number | null;
}

export class DailyDayDto {
  @ApiProperty({ example: '2026-12-02' }) date!: string;
  @ApiProperty({ type: [DailyProviderDto] }) providers!: DailyProviderDto[];
}

export class DailyReportDto {
  @ApiProperty({ example: 'Africa/Nairobi' }) timezone!: string;
  @ApiProperty() from!: string;
  @ApiProperty() to!: string;
  @ApiProperty({ type: [DailyDayDto] }) days!: DailyDayDto[];
}
