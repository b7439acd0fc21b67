import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  IsDefined,
  IsEmail,
  IsObject,
  IsOptional,
  IsString,
  IsUUID,
  Length,
  Matches,
  MaxLength,
  ValidateBy,
  ValidateNested,
} from 'class-validator';
import { ORDER_ID_PATTERN } from '../../../orders/orders.dto';

/** No control characters and no angle brackets: text shown to the payer on Pesapal's page. */
const PLAIN_TEXT = /^[^\x00-\x1f\x7f<>]+$/;

export class PesapalCustomerDto {
  @ApiPropertyOptional({
    example: 'jane@example.com',
    description: 'Email or phone number (or both) is required: Pesapal needs one',
  })
  @IsOptional()
  @IsString({ message: 'email must be a string' })
  @MaxLength(254, { message: 'email must be at most 254 characters' })
  @IsEmail({}, { message: 'email must be an email address' })
  email?: string;

  @ApiPropertyOptional({
    example: '0712345678',
    description: '9-15 digits, optionally starting with + (spaces and dashes are ignored)',
  })
  @IsOptional()
  @IsString({ message: 'phoneNumber must be a string' })
  @Matches(/^\+?[0-9][0-9 -]{7,24}$/, { message: 'phoneNumber must be 9-15 digits, optionally starting with +' })
  phoneNumber?: string;

  @ApiPropertyOptional({ example: 'Jane' })
  @IsOptional()
  @IsString({ message: 'firstName must be a string' })
  @Length(1, 100, { message: 'firstName must be 1-100 characters' })
  @Matches(PLAIN_TEXT, { message: 'firstName must be plain text' })
  firstName?: string;

  @ApiPropertyOptional({ example: 'Wanjiku' })
  @IsOptional()
  @IsString({ message: 'lastName must be a string' })
  @Length(1, 100, { message: 'lastName must be 1-100 characters' })
  @Matches(PLAIN_TEXT, { message: 'lastName must be plain text' })
  lastName?: string;
}

const AMOUNT_MESSAGE = 'amount must be a positive number or decimal string in major units, e.g. 1500 or "1500.50"';

export class PesapalInitDto {
  @ApiProperty({ example: 'ORD-12345', description: 'The order being paid (registered with POST /orders)' })
  @IsString({ message: 'orderId must be a string' })
  @Matches(ORDER_ID_PATTERN, { message: "orderId must be 1-64 characters: letters, digits, '.', '_' or '-'" })
  orderId!: string;

  @ApiProperty({
    oneOf: [
      { type: 'number', example: 1500.5 },
      { type: 'string', example: '1500.50' },
    ],
    description:
      'Major units (shillings), at most the order outstanding; cents allowed unless PESAPAL_ALLOW_CENTS=false. Converted exactly, never through floating point.',
  })
  @ValidateBy(
    {
      name: 'isMajorAmount',
      validator: {
        validate: (v: unknown) =>
          (typeof v === 'number' && Number.isFinite(v) && v > 0) ||
          (typeof v === 'string' && /^\d{1,15}(\.\d{1,15})?$/.test(v) && /[1-9]/.test(v)),
      },
    },
    { message: AMOUNT_MESSAGE },
  )
  amount!: number | string;

  @ApiPropertyOptional({ example: 'KES', description: "Defaults to the order's currency; must equal it" })
  @IsOptional()
  @IsString({ message: 'currency must be a string' })
  @Matches(/^[A-Z]{3}$/, { message: 'currency must be a 3-letter ISO code in capitals, e.g. KES' })
  currency?: string;

  @ApiPropertyOptional({
    example: 'Duka POS order ORD-12345',
    description: 'Shown to the payer; 1-100 characters. Default "Order <orderId>".',
  })
  @IsOptional()
  @IsString({ message: 'description must be a string' })
  @Length(1, 100, { message: 'description must be 1-100 characters (Pesapal limit)' })
  @Matches(PLAIN_TEXT, { message: 'description must be plain text (no control characters or < >)' })
  description?: string;

  @ApiProperty({ type: PesapalCustomerDto })
  @IsDefined({ message: 'customer is required: give the customer email address or phone number (Pesapal needs one)' })
  @IsObject({ message: 'customer must be an object with email and/or phoneNumber' })
  @ValidateNested()
  @Type(() => PesapalCustomerDto)
  customer!: PesapalCustomerDto;
}

export class PesapalInitResponseDto {
  @ApiProperty({ format: 'uuid' }) paymentId!: string;
  @ApiProperty({ example: 'pending' }) status!: string;
  @ApiProperty({ example: '96a5e1d9-f711-4423-82ce-dd758f972713', description: 'Pesapal OrderTrackingId' })
  orderTrackingId!: string;
  @ApiProperty({
    example: 'https://pay.pesapal.com/iframe/PesapalIframe3/Index?OrderTrackingId=96a5e1d9-…',
    description: "Pesapal's payment page: open it, embed it, or show it as a QR code",
  })
  redirectUrl!: string;
  @ApiProperty({ example: 'SD-ORD-12345-7KQ2M9XW4HPA', description: 'Our merchant reference (unique per attempt)' })
  reference!: string;
  @ApiProperty({ example: 1500.5 }) amount!: number;
  @ApiProperty({ example: 'KES' }) currency!: string;
  @ApiProperty({ example: 'ORD-12345' }) orderId!: string;
}

export class PesapalStatusQueryDto {
  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID('all', { message: 'paymentId must be a payment id (UUID)' })
  paymentId?: string;

  @ApiPropertyOptional({ example: '96a5e1d9-f711-4423-82ce-dd758f972713' })
  @IsOptional()
  @IsString({ message: 'orderTrackingId must be a string' })
  @Matches(/^[A-Za-z0-9-]{1,100}$/, {
    message: 'orderTrackingId must be the OrderTrackingId returned by /payments/pesapal/init',
  })
  orderTrackingId?: string;
}

export class PesapalIpnAckDto {
  @ApiProperty({ example: 'IPNCHANGE' }) orderNotificationType!: string;
  @ApiProperty({ example: '96a5e1d9-f711-4423-82ce-dd758f972713' }) orderTrackingId!: string;
  @ApiProperty({ example: 'SD-ORD-12345-7KQ2M9XW4HPA' }) orderMerchantReference!: string;
  @ApiProperty({ enum: [200, 500], description: '200 = processed; 500 = not processed (Pesapal retries)' })
  status!: number;
}
