import { Body, Controller, Get, HttpCode, Param, Post, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiProperty, ApiResponse, ApiTags } from '@nestjs/swagger';
import { IsString } from 'class-validator';
import type { AuthUser } from '../../../auth/auth.types';
import { JwtAuthGuard } from '../../../auth/jwt-auth.guard';
import { CurrentUser, Roles } from '../../../auth/roles.decorator';
import { ApiErrors } from '../../../common/api-errors.decorator';
import { OrderIdParam } from '../../../orders/orders.dto';
import { ShopParam } from '../../merchant-accounts.controller';
import { MpesaPullService, PullRegistrationView } from './mpesa-pull.service';
import { MpesaQrAnswer, MpesaQrService } from './mpesa-qr.service';

class MpesaQrResponseDto implements MpesaQrAnswer {
  @ApiProperty({ example: 'ORD-12345' }) orderId!: string;
  @ApiProperty({
    example: 1500,
    description: "The order's outstanding amount in whole KES, what the payer's app fills in",
  })
  amount!: number;
  @ApiProperty({ enum: ['KES'] }) currency!: 'KES';
  @ApiProperty({ enum: ['till', 'paybill'] }) type!: 'till' | 'paybill';
  @ApiProperty({ example: '600111', description: 'The till or paybill number the QR pays' }) businessNumber!: string;
  @ApiProperty({
    type: String,
    nullable: true,
    example: 'ORD-12345',
    description:
      "Paybill: the order id as account number (it comes back as the payment's BillRefNumber); null for a till",
  })
  accountNumber!: string | null;
  @ApiProperty({ example: 'SmartDuka' }) merchantName!: string;
  @ApiProperty({ description: 'The PNG image, base64: show it as data:image/png;base64,…', example: 'iVBORw0KGgo…' })
  pngBase64!: string;
  @ApiProperty({ example: 300 }) width!: number;
  @ApiProperty({ example: 300 }) height!: number;
}

export class PullRegistrationDto {
  @ApiProperty({
    example: '254722000000',
    description: "The Safaricom number on the shortcode's KYC (M-Pesa Org portal > Details); not stored, not logged",
  })
  @IsString({ message: 'nominatedNumber must be a string' })
  nominatedNumber!: string;
}

class PullRegistrationResponseDto implements PullRegistrationView {
  @ApiProperty({ example: '600111' }) shortcode!: string;
  @ApiProperty({ example: 'production' }) environment!: string;
  @ApiProperty({ enum: ['registered', 'already_registered'] }) outcome!: 'registered' | 'already_registered';
  @ApiProperty({ example: 'Shortcode Registered Successfully' }) description!: string;
  @ApiProperty({ example: '2026-12-03T08:00:00.000Z' }) registeredAt!: string;
  @ApiProperty({ example: 'user:mgr-1 (manager)' }) registeredBy!: string;
}

/** Dynamic QR of an order (any POS role of the order's shop). */
@ApiTags('orders')
@ApiBearerAuth()
@UseGuards(JwtAuthGuard)
@Controller('orders')
export class MpesaQrController {
  constructor(private readonly qr: MpesaQrService) {}

  @Get(':id/mpesa-qr')
  @Roles('cashier', 'manager', 'admin')
  @ApiOperation({
    summary: "An M-Pesa QR (PNG, base64 in JSON) for the order's outstanding amount to the shop's till or paybill",
    description:
      "Daraja's Dynamic QR: the customer scans it with the M-PESA or My Safaricom app and approves with their PIN. The amount is the order's outstanding amount (whole KES), never one the client sends. For a paybill the account number is the order id, so the payment's confirmation names the order. Nothing is written: the payment arrives as a C2B confirmation, so the shop's own account must have registered its C2B URLs (POST /shops/{shopId}/c2b-registration); without them (or on the platform's account, or for a chain branch on its head office's account, whose QR payments would reach the head office) no QR is made: 409 C2B_NOT_AVAILABLE. Answered as JSON (a POS shows `data:image/png;base64,…`; the Bearer token keeps a plain <img src> from loading it anyway).",
  })
  @ApiOkResponse({ type: MpesaQrResponseDto })
  @ApiErrors(
    {
      status: 400,
      codes: [
        {
          code: 'MPESA_WHOLE_SHILLINGS',
          message: 'M-Pesa takes whole shillings: this order still owes cents, so it cannot be paid exactly by QR',
        },
        {
          code: 'MPESA_ACCOUNT_NUMBER_TOO_LONG',
          message:
            'A paybill account number holds at most 20 characters and this order id has 24: M-Pesa would not bring it back whole, so no QR is made (take the payment by STK push instead)',
        },
      ],
    },
    401,
    403,
    404,
    {
      status: 409,
      codes: [
        { code: 'ORDER_ALREADY_PAID', message: 'Order ORD-12345 is already fully paid: there is nothing to pay by QR' },
        {
          code: 'PAYMENT_IN_PROGRESS',
          message:
            'Order ORD-12345 has a payment waiting for the customer (or of unknown outcome): wait for it to finish before showing a QR',
        },
        {
          code: 'C2B_NOT_AVAILABLE',
          message:
            'M-Pesa QR is not set up for this shop yet: its till / paybill payments are not registered, so a QR payment would not be seen here. Take the payment by STK push (a manager registers them under Settings > Payments)',
        },
        {
          code: 'MERCHANT_ACCOUNT_REQUIRED',
          message:
            'This shop has no M-Pesa account set up yet: a manager adds it under Settings > Payments before taking M-Pesa payments',
        },
      ],
    },
    502,
    503,
    504,
  )
  get(@CurrentUser() user: AuthUser, @Param() p: OrderIdParam): Promise<MpesaQrAnswer> {
    return this.qr.forOrder(user, p.id);
  }
}

/** One-time Pull Transactions registration of a shop's M-Pesa shortcode (managers). */
@ApiTags('merchant accounts')
@ApiBearerAuth()
@UseGuards(JwtAuthGuard)
@Controller('shops/:shopId/merchant-accounts/mpesa')
export class MpesaPullController {
  constructor(private readonly pull: MpesaPullService) {}

  @Post('pull-registration')
  @HttpCode(201)
  @Roles('manager', 'admin', 'operator')
  @ApiOperation({
    summary: "Register the shop's shortcode for M-Pesa Pull Transactions (once: Safaricom does not allow a change)",
    description:
      "Production shortcodes only (and sandbox), of the shop's own M-Pesa account (a shop on the platform's account: 409 MERCHANT_ACCOUNT_REQUIRED). Registered once per shortcode: a second request is refused with 409 PULL_ALREADY_REGISTERED and nothing is sent (registered by another shop's account: the answer says only that). A shortcode Daraja says is already registered (by another integration) is recorded as `already_registered`. The till of a till account is registered. The nominated number is neither stored nor logged.",
  })
  @ApiResponse({ status: 201, type: PullRegistrationResponseDto })
  @ApiErrors(
    400,
    401,
    403,
    {
      status: 409,
      codes: [
        {
          code: 'PULL_ALREADY_REGISTERED',
          message:
            'Shortcode 600111 was registered for Pull Transactions on 2026-12-03T08:00:00.000Z; Safaricom registers a shortcode once, so it is not sent again',
        },
        {
          code: 'MERCHANT_ACCOUNT_REQUIRED',
          message:
            "This shop takes M-Pesa payments with the platform's account: Pull Transactions is registered for a shop's own M-Pesa account (a manager adds it under Settings > Payments first)",
        },
      ],
    },
    502,
    503,
    504,
  )
  register(
    @CurrentUser() user: AuthUser,
    @Param() p: ShopParam,
    @Body() body: PullRegistrationDto,
  ): Promise<PullRegistrationView> {
    return this.pull.register(user, p.shopId, body.nominatedNumber);
  }
}
