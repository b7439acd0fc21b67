import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsNumber, IsOptional, IsString, Matches, Max, Min, ValidateBy } from 'class-validator';

export const ORDER_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
export const SUPPORTED_CURRENCIES = ['KES'] as const;

/** Decimal places of a number as written, exponent notation included (1e-7 → 7; class-validator's maxDecimalPlaces throws on it). */
export function decimalPlaces(value: number): number {
  const m = /^(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(String(Math.abs(value)));
  if (!m) return Infinity;
  return Math.max(0, (m[2] ?? '').length - Number(m[3] ?? 0));
}

export class CreateOrderDto {
  @ApiProperty({ example: 'ORD-12345', description: "The POS's own order id: 1-64 letters, digits, '.', '_' or '-'" })
  @IsString()
  @Matches(ORDER_ID_PATTERN, { message: "id must be 1-64 characters: letters, digits, '.', '_' or '-'" })
  id!: string;

  @ApiProperty({ example: 1500.5, description: 'Order total in KES (major units), up to 2 decimals' })
  @IsNumber(
    { allowNaN: false, allowInfinity: false },
    { message: 'total must be a number with at most 2 decimal places' },
  )
  @ValidateBy(
    {
      name: 'maxTwoDecimals',
      validator: { validate: (v: unknown) => typeof v !== 'number' || !Number.isFinite(v) || decimalPlaces(v) <= 2 },
    },
    { message: 'total must be a number with at most 2 decimal places' },
  )
  @Min(0.01, { message: 'total must be at least 0.01' })
  @Max(100_000_000, { message: 'total must be at most 100000000' })
  total!: number;

  @ApiPropertyOptional({ enum: SUPPORTED_CURRENCIES, default: 'KES' })
  @IsOptional()
  @IsIn(SUPPORTED_CURRENCIES, { message: `currency must be one of ${SUPPORTED_CURRENCIES.join(', ')}` })
  currency?: string;
}

export class OrderIdParam {
  @ApiProperty({ example: 'ORD-12345', description: "The POS's order id" })
  @IsString()
  @Matches(ORDER_ID_PATTERN, { message: "id must be 1-64 characters: letters, digits, '.', '_' or '-'" })
  id!: string;
}

export type OrderStatus = 'unpaid' | 'partially_paid' | 'paid' | 'partially_refunded' | 'refunded';

export class OrderResponseDto {
  @ApiProperty({ example: 'ORD-12345' }) id!: string;
  @ApiProperty({ example: 1500.5 }) total!: number;
  @ApiProperty({ example: 'KES' }) currency!: string;
  @ApiProperty({
    example: 500,
    description: 'Money kept: the sum of completed payments minus what was refunded of them',
  })
  paid!: number;
  @ApiProperty({ example: 0, description: 'Sum of succeeded refunds of the completed payments' })
  refunded!: number;
  @ApiProperty({
    example: 1000.5,
    description:
      'What the order still owes: its total minus what its completed payments took in (a refund gives money back for the goods; it does not reopen the order)',
  })
  outstanding!: number;
  @ApiProperty({
    enum: ['unpaid', 'partially_paid', 'paid', 'partially_refunded', 'refunded'],
    description: 'refunded: everything taken was given back; partially_refunded: part of it',
  })
  status!: OrderStatus;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) paidAt!: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
}
