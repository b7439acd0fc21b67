import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  IsDefined,
  IsEmail,
  IsObject,
  IsOptional,
  IsString,
  IsUrl,
  IsUUID,
  Length,
  Matches,
  MaxLength,
  ValidateBy,
  ValidateNested,
} from 'class-validator';
import { ORDER_ID_PATTERN } from '../../../orders/orders.dto';

/** Validated nested under `customer`: the ValidationPipe puts `customer.` before each message. */
export class FlutterwaveCustomerDto {
  @ApiProperty({
    example: 'customer@example.com',
    description:
      'Required by Flutterwave (its receipt goes there). For walk-in customers use a stable address you control, e.g. walkin@yourshop.co.ke',
  })
  @IsString({ message: 'email must be a string' })
  @MaxLength(254, { message: 'email is too long' })
  @IsEmail({}, { message: 'email must be an email address (Flutterwave requires one)' })
  email!: string;

  @ApiPropertyOptional({
    example: '0712345678',
    description: '9-15 digits, optionally starting with +; Kenyan 07…/01… numbers are sent as 2547…/2541…',
  })
  @IsOptional()
  @IsString({ message: 'phoneNumber must be a string' })
  @Matches(/^\+?\d[\d -]{7,20}\d$/, {
    message: 'phoneNumber must be 9-15 digits, optionally starting with + (spaces and dashes allowed)',
  })
  phoneNumber?: string;

  @ApiPropertyOptional({ example: 'Wanjiku Kamau', description: 'Shown on the hosted checkout page' })
  @IsOptional()
  @IsString({ message: 'name must be a string' })
  @Length(1, 100, { message: 'name must be 1-100 characters' })
  @Matches(/^[^\x00-\x1f<>]+$/, { message: 'name must not contain control characters or < >' })
  name?: string;
}

const isAmountInput = (v: unknown): boolean =>
  (typeof v === 'number' && Number.isFinite(v)) || (typeof v === 'string' && v.length > 0 && v.length <= 32);

export class FlutterwaveInitDto {
  @ApiProperty({ example: 'ORD-12345', description: 'The order being paid (registered with POST /orders)' })
  @IsString({ message: 'orderId must be a string' })
  @Matches(ORDER_ID_PATTERN, { message: "orderId must be 1-64 characters: letters, digits, '.', '_' or '-'" })
  orderId!: string;

  @ApiProperty({
    oneOf: [{ type: 'number' }, { type: 'string' }],
    example: 2450.5,
    description:
      'Major units of the currency: a JSON number (2450.5) or a decimal string ("2450.50"); at most the currency\'s decimals (KES: 2). Cents only when FLUTTERWAVE_ALLOW_CENTS=true. At most what the order still owes.',
  })
  @IsDefined({ message: 'amount is required' })
  @ValidateBy(
    { name: 'amountInput', validator: { validate: isAmountInput } },
    { message: 'amount must be a number or a decimal string, e.g. 2450 or "2450.50"' },
  )
  amount!: number | string;

  @ApiPropertyOptional({ example: 'KES', description: "Defaults to the order's currency; if given it must equal it" })
  @IsOptional()
  @IsString({ message: 'currency must be a string' })
  @Matches(/^[A-Z]{3}$/, { message: 'currency must be a 3-letter ISO code in capitals, e.g. KES' })
  currency?: string;

  @ApiProperty({ type: FlutterwaveCustomerDto })
  @IsDefined({ message: 'customer is required (Flutterwave needs at least customer.email)' })
  @IsObject({ message: 'customer must be an object like {"email": "customer@example.com"}' })
  @ValidateNested()
  @Type(() => FlutterwaveCustomerDto)
  customer!: FlutterwaveCustomerDto;

  @ApiPropertyOptional({
    example: 'https://pos.example.co.ke/checkout/done',
    description:
      "Where the customer's browser lands after this API has verified the payment (with ?paymentId=&orderId=&status=). Must be on the origin of POS_RETURN_URL; refused when POS_RETURN_URL is not set. Flutterwave itself always returns to this API first.",
  })
  @IsOptional()
  @IsString({ message: 'redirectUrl must be a string' })
  @MaxLength(2000, { message: 'redirectUrl must be at most 2000 characters' })
  @IsUrl(
    { protocols: ['http', 'https'], require_protocol: true, require_tld: false },
    { message: 'redirectUrl must be an http(s) URL' },
  )
  redirectUrl?: string;
}

const isTransactionId = (v: unknown): boolean =>
  (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) || (typeof v === 'string' && /^\d{1,20}$/.test(v));

export class FlutterwaveVerifyDto {
  @ApiPropertyOptional({ format: 'uuid', description: 'Our payment id (from init)' })
  @IsOptional()
  @IsUUID('all', { message: 'paymentId must be a payment id (UUID)' })
  paymentId?: string;

  @ApiPropertyOptional({ example: 'SD-3f2c9a4e-8b1d-4c6e-9f0a-7d5e2b1c4a98', description: 'Our tx_ref (from init)' })
  @IsOptional()
  @IsString({ message: 'txRef must be a string' })
  @Matches(/^[\x21-\x7e]{1,100}$/, {
    message: 'txRef must be the txRef returned by init (1-100 visible characters, no spaces)',
  })
  txRef?: string;

  @ApiPropertyOptional({
    oneOf: [{ type: 'string' }, { type: 'integer' }],
    example: '9051234',
    description: "Flutterwave's transaction id (known once the payment has an outcome)",
  })
  @IsOptional()
  @ValidateBy(
    { name: 'transactionId', validator: { validate: isTransactionId } },
    { message: 'transactionId must be the numeric Flutterwave transaction id' },
  )
  transactionId?: string | number;
}

export class FlutterwaveInitResponseDto {
  @ApiProperty({ format: 'uuid' }) paymentId!: string;
  @ApiProperty({ example: 'pending' }) status!: string;
  @ApiProperty({
    example: 'https://checkout.flutterwave.com/v3/hosted/pay/flwlnk-01abc23def',
    description: "Hosted checkout page: open it on the customer's device or show it as a QR code",
  })
  link!: string;
  @ApiProperty({
    example: 'SD-3f2c9a4e-8b1d-4c6e-9f0a-7d5e2b1c4a98',
    description: 'Our reference at Flutterwave (tx_ref)',
  })
  txRef!: string;
  @ApiProperty({ example: 'ORD-12345' }) orderId!: string;
  @ApiProperty({ example: 2450.5 }) amount!: number;
  @ApiProperty({ example: 'KES' }) currency!: string;
}

export class FlutterwaveWebhookAckDto {
  @ApiProperty({ example: 'received' }) status!: string;
}
