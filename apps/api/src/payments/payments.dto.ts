import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  IsEmail,
  IsInt,
  IsOptional,
  IsString,
  IsUUID,
  Matches,
  MaxLength,
  Max,
  Min,
  ValidateBy,
  ValidationOptions,
} from 'class-validator';
import { MASKED_CHECKOUT_REQUEST_ID } from '../common/mask';
import { ORDER_ID_PATTERN } from '../orders/orders.dto';
import { fitAccountReference, fitTransactionDesc, STK_TEXT_FIELD_MAX_INPUT } from './providers/mpesa/stk-fields';

export const MAX_STK_AMOUNT = 250_000;

/** A string that `fit` can turn into something Daraja takes (anything else is reported by @IsString). */
function FitsForMpesa(fit: (raw: string) => string | undefined, message: string, options?: ValidationOptions) {
  return ValidateBy(
    {
      name: 'fitsForMpesa',
      validator: {
        validate: (v: unknown) => typeof v !== 'string' || fit(v) !== undefined,
        defaultMessage: () => message,
      },
    },
    options,
  );
}

export class StkPushDto {
  @ApiProperty({
    example: '0712345678',
    description:
      'Customer phone: +254712345678, 254712345678, 0712345678, 712345678, 0112345678 or 112345678 (spaces/dashes allowed)',
  })
  @IsString({ message: 'phoneNumber must be a string' })
  @MaxLength(32, { message: 'phoneNumber is too long' })
  phoneNumber!: string;

  @ApiProperty({
    example: 100,
    description: `Whole Kenyan shillings, 1 to ${MAX_STK_AMOUNT}. M-Pesa does not accept cents.`,
  })
  @IsInt({ message: 'amount must be a whole number of shillings (M-Pesa does not accept cents)' })
  @Min(1, { message: 'amount must be at least 1 shilling' })
  @Max(MAX_STK_AMOUNT, {
    message: `amount must be at most ${MAX_STK_AMOUNT} shillings (the M-Pesa per-transaction limit)`,
  })
  amount!: number;

  @ApiProperty({ example: 'ORD-12345', description: 'The order being paid (registered with POST /orders)' })
  @IsString({ message: 'orderId must be a string' })
  @Matches(ORDER_ID_PATTERN, { message: "orderId must be 1-64 characters: letters, digits, '.', '_' or '-'" })
  orderId!: string;

  @ApiPropertyOptional({
    example: 'SmartDuka-Order-12345',
    maxLength: STK_TEXT_FIELD_MAX_INPUT,
    description:
      'Shown to the customer as the account number. M-Pesa takes 1-12 letters/digits: other characters are removed (accents folded: é → e) and the last 12 kept ' +
      '("SmartDuka-Order-12345" is sent as "kaOrder12345"); the response and GET /payments/:id say what was sent. Refused only when no letter or digit is left. ' +
      'Default: the order id made to fit the same way.',
  })
  @IsOptional()
  @IsString({ message: 'accountReference must be a string' })
  @MaxLength(STK_TEXT_FIELD_MAX_INPUT, {
    message: `accountReference must be at most ${STK_TEXT_FIELD_MAX_INPUT} characters`,
  })
  @FitsForMpesa(
    fitAccountReference,
    'accountReference must contain at least one letter or digit (M-Pesa shows it to the customer as the account number)',
  )
  accountReference?: string;

  @ApiPropertyOptional({ example: 'ops@duka.co.ke', description: 'Kept in the audit log only' })
  @IsOptional()
  @IsEmail({}, { message: 'customerEmail must be an email address' })
  @MaxLength(254)
  customerEmail?: string;

  @ApiPropertyOptional({
    example: 'Duka payment',
    maxLength: STK_TEXT_FIELD_MAX_INPUT,
    description:
      'M-Pesa takes 1-13 characters: letters, digits, spaces and . , _ - are kept (accents folded, other characters removed, spaces collapsed) and the first 13 sent ' +
      '("SmartDuka POS payment" is sent as "SmartDuka POS"); the response and GET /payments/:id say what was sent. Refused only when nothing is left. Default "POS payment".',
  })
  @IsOptional()
  @IsString({ message: 'transactionDesc must be a string' })
  @MaxLength(STK_TEXT_FIELD_MAX_INPUT, {
    message: `transactionDesc must be at most ${STK_TEXT_FIELD_MAX_INPUT} characters`,
  })
  @FitsForMpesa(
    fitTransactionDesc,
    'transactionDesc must contain at least one letter, digit or . , _ - (M-Pesa shows a short description)',
  )
  transactionDesc?: string;
}

/** A CheckoutRequestID in full (as Daraja issued it) or masked as this API answers it. */
const FULL_OR_MASKED_CHECKOUT_REQUEST_ID = new RegExp(`^[A-Za-z0-9_-]{1,100}$|${MASKED_CHECKOUT_REQUEST_ID.source}`);

export class StkStatusQueryDto {
  @ApiProperty({
    example: 'ws_CO_26052021113352454*******78',
    description:
      "The checkoutRequestId as stk-push and the payment reads answer it (masked: it ends with the payer's number), or the full CheckoutRequestID from Daraja",
  })
  @IsString()
  @Matches(FULL_OR_MASKED_CHECKOUT_REQUEST_ID, {
    message:
      'checkoutRequestId must be the CheckoutRequestID returned by stk-push, as answered (ws_CO_…*******78: 7 stars, then 2 digits) or in full',
  })
  checkoutRequestId!: string;

  @ApiPropertyOptional({ example: '29115-34620561-1' })
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9_-]{1,100}$/, {
    message: 'merchantRequestId must be the MerchantRequestID returned by stk-push',
  })
  merchantRequestId?: string;
}

export class PaymentIdParam {
  @ApiProperty({ format: 'uuid', description: 'The paymentId' })
  @IsUUID('all', { message: 'id must be a payment id (UUID)' })
  id!: string;
}

/** Characters a person can see: letters, digits, punctuation and symbols (not blanks, control, format or zero-width characters, nor combining marks alone). */
const VISIBLE_CHAR = /[\p{L}\p{N}\p{P}\p{S}]/gu;
/** Not well-formed UTF-16 (String.prototype.isWellFormed, outside this project's ES2022 lib). */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * A free-text reason kept in the audit log: well-formed UTF-16 (a lone surrogate cannot be stored
 * as JSON in Postgres), no control characters, and `min`-`max` characters once trimmed of which at
 * least `min` are visible ("   ab   " and "\u200b\u200b\u200b" say nothing).
 */
export function isAuditReason(v: unknown, min: number, max: number): boolean {
  if (typeof v !== 'string' || LONE_SURROGATE.test(v)) return false;
  const s = v.trim();
  const length = [...s].length;
  return (
    length >= min && length <= max && !/[\u0000-\u001f\u007f]/.test(s) && (s.match(VISIBLE_CHAR)?.length ?? 0) >= min
  );
}

export function IsAuditReason(min: number, max: number, options?: ValidationOptions) {
  return ValidateBy(
    {
      name: 'isAuditReason',
      validator: { validate: (v: unknown) => typeof v !== 'string' || isAuditReason(v, min, max) },
    },
    options,
  );
}

export class ReleasePaymentDto {
  @ApiProperty({
    example: 'Customer shows no M-Pesa SMS; Daraja has no answer after 40 minutes',
    description:
      'Why the order may take a new payment (kept in the audit log, trimmed): 3-500 characters, at least 3 of them visible, no control characters',
  })
  @IsString({ message: 'reason must be a string' })
  @IsAuditReason(3, 500, {
    message:
      'reason must be 3-500 characters of text saying why the order may take a new payment (no control characters)',
  })
  reason!: string;
}

const CHECKOUT_REQUEST_ID_EXAMPLE = 'ws_CO_19122019102036392*******78';
const CHECKOUT_REQUEST_ID_DESCRIPTION =
  "Daraja's CheckoutRequestID, masked: it ends with the payer's 9-digit national number, so all of it but the last 2 digits of that number is replaced by 7 stars. GET /payments/stk-status accepts it as it is here (or the full id)";

export class StkPushResponseDto {
  @ApiProperty({ format: 'uuid' }) paymentId!: string;
  @ApiProperty({ example: 'pending' }) status!: string;
  @ApiProperty({ example: '29115-34620561-1' }) merchantRequestId!: string;
  @ApiProperty({ example: CHECKOUT_REQUEST_ID_EXAMPLE, description: CHECKOUT_REQUEST_ID_DESCRIPTION })
  checkoutRequestId!: string;
  @ApiProperty({ example: '0' }) responseCode!: string;
  @ApiProperty({ example: 'Success. Request accepted for processing' }) responseDescription!: string;
  @ApiProperty({ example: 'Success. Request accepted for processing' }) customerMessage!: string;
  @ApiProperty({ example: 100 }) amount!: number;
  @ApiProperty({ example: 'KES' }) currency!: string;
  @ApiProperty({ example: 'ORD-12345' }) orderId!: string;
  @ApiProperty({
    example: 'kaOrder12345',
    description: 'The AccountReference sent to M-Pesa (what the customer sees as the account number), after fitting',
  })
  accountReference!: string;
  @ApiProperty({ example: 'SmartDuka POS', description: 'The TransactionDesc sent to M-Pesa, after fitting' })
  transactionDesc!: string;
}

export class PaymentResponseDto {
  @ApiProperty({ format: 'uuid' }) paymentId!: string;
  @ApiProperty({ example: 'ORD-12345' }) orderId!: string;
  @ApiProperty({
    enum: ['initiated', 'pending', 'unresolved', 'completed', 'failed', 'cancelled', 'expired', 'review'],
  })
  status!: string;
  @ApiPropertyOptional({ nullable: true, type: String, example: 'CANCELLED_BY_CUSTOMER' }) statusReason!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, example: '0', description: 'Daraja ResultCode (string)' })
  resultCode!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) resultDesc!: string | null;
  @ApiProperty({ example: 100 }) amount!: number;
  @ApiProperty({ example: 'KES' }) currency!: string;
  @ApiProperty({ example: 'mpesa' }) provider!: string;
  @ApiPropertyOptional({ nullable: true, type: String, example: 'NLJ7RT61SV' }) mpesaReceiptNumber!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) merchantRequestId!: string | null;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    example: CHECKOUT_REQUEST_ID_EXAMPLE,
    description: CHECKOUT_REQUEST_ID_DESCRIPTION,
  })
  checkoutRequestId!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, example: '2547******78' }) phone!: string | null;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    example: 'kaOrder12345',
    description: 'M-Pesa: the AccountReference sent to Daraja (what the customer saw)',
  })
  accountReference?: string | null;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    example: 'SmartDuka POS',
    description: 'M-Pesa: the TransactionDesc sent to Daraja',
  })
  transactionDesc?: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time' }) updatedAt!: string;
  @ApiPropertyOptional({ nullable: true, type: String, format: 'date-time' }) completedAt!: string | null;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    format: 'date-time',
    description:
      'When a manager released the order of this payment whose outcome is unknown (POST /payments/:id/release): it no longer blocks a new payment',
  })
  releasedAt!: string | null;
  @ApiPropertyOptional({
    nullable: true,
    enum: ['refunded', 'accepted', 'released'],
    description:
      'How a manager resolved this payment in review (POST /payments/:id/resolve); null while it still needs a person',
  })
  resolution!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, format: 'date-time' }) resolvedAt!: string | null;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    description: 'Card/wallet payments: our tx_ref (Flutterwave) or merchant reference (Pesapal)',
  })
  reference?: string | null;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    description: "Card/wallet payments: the provider's transaction id (Flutterwave id, Pesapal OrderTrackingId)",
  })
  providerTransactionId?: string | null;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    description: 'Card/wallet payments: provider confirmation code (Flutterwave flw_ref, Pesapal confirmation_code)',
  })
  providerReceipt?: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, example: 'card' }) paymentMethod?: string | null;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    description: 'Card/wallet payments: the hosted checkout link for the customer',
  })
  checkoutUrl?: string | null;
}

export class CallbackAckDto {
  @ApiProperty({ example: 0 }) ResultCode!: number;
  @ApiProperty({ example: 'Accepted' }) ResultDesc!: string;
}
