import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsBoolean, IsIn, IsInt, IsOptional, IsString, IsUUID, Matches, Max, Min } from 'class-validator';
import { ORDER_ID_PATTERN } from '../../../orders/orders.dto';

export class C2bIdParam {
  @ApiProperty({ format: 'uuid', description: 'The id of the C2B payment (from the feed)' })
  @IsUUID('all', { message: 'id must be the id of a C2B payment (UUID)' })
  id!: string;
}

export class C2bFeedQueryDto {
  @IsOptional()
  @Type(() => Number)
  @IsInt({ message: 'limit must be a whole number' })
  @Min(1, { message: 'limit must be between 1 and 100' })
  @Max(100, { message: 'limit must be between 1 and 100' })
  @ApiPropertyOptional({ default: 50, minimum: 1, maximum: 100 })
  limit?: number;

  @IsOptional()
  @Matches(/^\s*[A-Za-z0-9]{6,20}\s*$/, {
    message: 'receipt must be an M-Pesa receipt (the code on the SMS, e.g. SL12ABC3DE)',
  })
  @ApiPropertyOptional({
    description: "The receipt on the customer's M-Pesa SMS (TransID), any case",
    example: 'SL12ABC3DE',
  })
  receipt?: string;
}

export class C2bFeedItemDto {
  @ApiProperty({ format: 'uuid', description: 'The C2B payment to claim: POST /payments/c2b/{id}/claim' }) id!: string;
  @ApiProperty({ example: 'SL12ABC3DE', description: "The receipt on the customer's SMS" }) receipt!: string;
  @ApiProperty({ example: 250, description: 'In KES (whole shillings; 0 for an unreadable confirmation in review)' })
  amount!: number;
  @ApiProperty({ example: 'KES' }) currency!: string;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    description: 'When M-Pesa says it was paid: its TransTime (Nairobi time) as an ISO 8601 instant in UTC',
  })
  paidAt!: string | null;
  @ApiProperty({ description: 'When the confirmation reached us' }) receivedAt!: string;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    example: 'John D.',
    description: 'First name and initial, as M-Pesa gave them (the phone number is never shown)',
  })
  customerName!: string | null;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    example: 'Buy Goods',
    description: "M-Pesa's TransactionType: Buy Goods (till) or Pay Bill",
  })
  transactionType!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'The account number the customer typed (paybill)' })
  accountNumber!: string | null;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    example: 'NO_REFERENCE',
    description:
      'Why it was not matched to an order. In the feed: NO_REFERENCE (a till payment: no account number), NO_ORDER (the account number names no order of the shop), ORDER_NOT_OPEN (that order was already paid), ORDER_BUSY (that order had a payment in flight), ORDER_CURRENCY, RECEIPT_HELD. In review: SEVERAL_PUSHES_FIT (it could settle more than one STK push of unknown outcome), RECEIPT_OF_ANOTHER_SHOP (a payment of another shop holds the same receipt), AMOUNT_NOT_WHOLE_SHILLINGS, AMOUNT_INVALID, AMOUNT_MISSING, AMOUNT_NOT_POSITIVE (an unreadable confirmation)',
  })
  reason!: string | null;
}

export class C2bClaimDto {
  @ApiProperty({ example: 'ORD-12345' })
  @IsString({ message: 'orderId must be a string' })
  @Matches(ORDER_ID_PATTERN, { message: "orderId must be 1-64 characters: letters, digits, '.', '_' or '-'" })
  orderId!: string;
}

export class C2bClaimResultDto {
  @ApiProperty({ format: 'uuid' }) c2bPaymentId!: string;
  @ApiProperty({ format: 'uuid' }) paymentId!: string;
  @ApiProperty() orderId!: string;
  @ApiProperty({
    example: 'completed',
    description: 'completed, or review (more than the order owed: refund the difference)',
  })
  status!: string;
  @ApiPropertyOptional({ nullable: true, type: String, example: 'PAID' }) statusReason!: string | null;
}

export class C2bRegisterDto {
  @IsOptional()
  @IsBoolean({ message: 'validation must be true or false' })
  @ApiPropertyOptional({
    default: false,
    description: 'Also register the validation URL (Safaricom must enable external validation on the shortcode)',
  })
  validation?: boolean;

  @IsOptional()
  @IsIn(['Completed', 'Cancelled'], { message: 'responseType must be "Completed" or "Cancelled"' })
  @ApiPropertyOptional({
    enum: ['Completed', 'Cancelled'],
    default: 'Completed',
    description: 'What Daraja does when the validation URL does not answer in time',
  })
  responseType?: 'Completed' | 'Cancelled';

  @IsOptional()
  @IsBoolean({ message: 'force must be true or false' })
  @ApiPropertyOptional({
    default: false,
    description:
      'Register again although URLs were registered before. Production registration is one-time at Safaricom: delete the old URLs on the M-Pesa portal (URL management) or through apisupport first',
  })
  force?: boolean;
}

export class C2bRegistrationDto {
  @ApiProperty() accountId!: string;
  @ApiProperty() environment!: string;
  @ApiProperty({ example: '600000' }) shortcode!: string;
  @ApiProperty({ enum: ['v1', 'v2'] }) apiVersion!: string;
  @ApiProperty({ enum: ['Completed', 'Cancelled'] }) responseType!: string;
  @ApiProperty() validation!: boolean;
  @ApiProperty({ description: 'The confirmation URL, its token cut off' }) confirmationUrl!: string;
  @ApiPropertyOptional({ nullable: true, type: String }) validationUrl!: string | null;
  @ApiProperty({ type: 'object', additionalProperties: true }) response!: Record<string, unknown>;
  @ApiProperty() forced!: boolean;
  @ApiProperty() registeredBy!: string;
  @ApiProperty() registeredAt!: string;
  @ApiPropertyOptional({
    description:
      "Set when this registration replaced an earlier one (sandbox, or forced): when that one was made, or `another shop` when it was another shop's (nothing more is told of it)",
  })
  replaced?: string;
}

export class C2bConfirmationAckDto {
  @ApiProperty({ example: 0 }) ResultCode!: number;
  @ApiProperty({ example: 'Success' }) ResultDesc!: string;
}

export class C2bValidationAnswerDto {
  @ApiProperty({ example: '0', description: '"0", or C2B00011..C2B00016 (daraja.md §7.3)' }) ResultCode!: string;
  @ApiProperty({ example: 'Accepted', enum: ['Accepted', 'Rejected'] }) ResultDesc!: string;
}
