import { Body, Controller, Get, HttpCode, Inject, Param, Post, Query, Req, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import type { AuthUser } from '../../../auth/auth.types';
import { JwtAuthGuard } from '../../../auth/jwt-auth.guard';
import { CurrentUser, Roles } from '../../../auth/roles.decorator';
import { ApiErrors } from '../../../common/api-errors.decorator';
import { AppError } from '../../../common/errors';
import { ipAllowed } from '../../../common/ip-allowlist';
import { toMajor } from '../../../common/money';
import type { AppConfig } from '../../../config/app-config';
import { APP_CONFIG } from '../../../config/config.module';
import { ShopParam } from '../../merchant-accounts.controller';
import { C2bIngestService } from './c2b-ingest.service';
import { C2bMatching } from './c2b-matching.service';
import { C2bRegistrationService, C2bRegistrationView } from './c2b-registration.service';
import type { C2bTransactionRow } from '../../../database/schema';
import { C2bRepository } from './c2b.repository';
import {
  C2bClaimDto,
  C2bClaimResultDto,
  C2bConfirmationAckDto,
  C2bFeedItemDto,
  C2bFeedQueryDto,
  C2bIdParam,
  C2bRegisterDto,
  C2bRegistrationDto,
  C2bValidationAnswerDto,
} from './c2b.dto';
import { parseNairobiTimestamp } from './nairobi-time';
import { normaliseMpesaReceipt } from './receipt';

const C2B_EXAMPLE = {
  TransactionType: 'Pay Bill',
  TransID: 'RKTQDM7W6S',
  TransTime: '20191122063845',
  TransAmount: '10',
  BusinessShortCode: '600638',
  BillRefNumber: 'ORD-12345',
  InvoiceNumber: '',
  OrgAccountBalance: '',
  ThirdPartyTransID: '',
  MSISDN: '25470****149',
  FirstName: 'John',
  MiddleName: '',
  LastName: 'Doe',
};

/**
 * Daraja's C2B notifications, on each merchant account's capability URLs (no JWT: Daraja signs
 * nothing, the HMAC in the path is the proof). Paths avoid the words Daraja refuses (daraja.md §2.4).
 */
@ApiTags('payments (till and paybill)')
@Controller('payments/c2b')
export class C2bNotificationsController {
  constructor(
    private readonly ingest: C2bIngestService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Post(':accountId/confirmation/:token')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Daraja C2B confirmation: a customer paid the till or paybill (per-account capability URL)',
    description:
      "Stored (one row per account and TransID; repeats are counted) before the reply, then matched: an open order named by BillRefNumber is paid through the payment core; anything else lands in the shop's feed of unclaimed payments. A wrong token or unknown account is 404 and changes nothing.",
  })
  @ApiBody({ schema: { type: 'object', example: C2B_EXAMPLE } })
  @ApiOkResponse({ type: C2bConfirmationAckDto })
  @ApiErrors(400, 403, { status: 404, codes: [{ code: 'NOT_FOUND', message: 'C2B URL not found' }] }, 413)
  confirmation(
    @Param('accountId') accountId: string,
    @Param('token') token: string,
    @Body() body: unknown,
    @Req() req: Request,
  ): Promise<C2bConfirmationAckDto> {
    this.allow(req);
    return this.ingest.confirm(accountId, token, body);
  }

  @Post(':accountId/validation/:token')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Daraja C2B validation: accept or refuse a payment before it is made (when enabled on the shortcode)',
    description:
      'Answers within MPESA_C2B_VALIDATION_BUDGET_MS (Daraja waits about 8 s): "0" Accepted, or Rejected with C2B00012 (a paybill account number that names no open order) or C2B00013 (a bad amount, or more than the order owes). Undecided in time: accepted.',
  })
  @ApiBody({ schema: { type: 'object', example: C2B_EXAMPLE } })
  @ApiOkResponse({ type: C2bValidationAnswerDto })
  @ApiErrors(400, 403, { status: 404, codes: [{ code: 'NOT_FOUND', message: 'C2B URL not found' }] }, 413)
  validation(
    @Param('accountId') accountId: string,
    @Param('token') token: string,
    @Body() body: unknown,
    @Req() req: Request,
  ): Promise<C2bValidationAnswerDto> {
    this.allow(req);
    return this.ingest.validate(accountId, token, body);
  }

  private allow(req: Request): void {
    if (!ipAllowed(req.ip, this.config.mpesa.callbackIpAllowlist))
      throw new AppError('FORBIDDEN', 'Callback sender is not on the allowlist', 403);
  }
}

/** The shop's feed of payments customers made from their phones that no order claimed yet. */
@ApiTags('payments (till and paybill)')
@ApiBearerAuth()
@UseGuards(JwtAuthGuard)
@Controller('payments/c2b')
export class C2bFeedController {
  constructor(
    private readonly repo: C2bRepository,
    private readonly matching: C2bMatching,
  ) {}

  @Get('unclaimed')
  @Roles('cashier', 'manager', 'admin')
  @ApiOperation({
    summary: "The shop's unclaimed till / paybill payments, newest first (search by the receipt on the customer's SMS)",
    description:
      "Payments customers made from their phone (till, paybill, Dynamic QR) that no order took: till payments (no account number) and paybill payments whose account number names no open order of the shop. `receipt` finds one by the code on the customer's SMS (any case); `limit` 1-100 (50). A cashier claims one with POST /payments/c2b/{id}/claim. Not listed: payments already applied, the C2B twin of an STK payment of this shop (same receipt: it is that payment), and rows a manager must look at (GET /payments/c2b/review). An empty list is `[]`.",
  })
  @ApiOkResponse({ type: [C2bFeedItemDto] })
  @ApiErrors(
    {
      status: 400,
      codes: [
        {
          code: 'VALIDATION_FAILED',
          message: 'receipt must be an M-Pesa receipt (the code on the SMS, e.g. SL12ABC3DE)',
          details: {
            problems: ['receipt must be an M-Pesa receipt (the code on the SMS, e.g. SL12ABC3DE)'],
            errors: [
              { param: 'receipt', message: 'receipt must be an M-Pesa receipt (the code on the SMS, e.g. SL12ABC3DE)' },
            ],
          },
        },
      ],
    },
    401,
    {
      status: 403,
      codes: [{ code: 'FORBIDDEN', message: 'This action needs one of the roles: cashier, manager, admin' }],
    },
  )
  async unclaimed(@CurrentUser() user: AuthUser, @Query() q: C2bFeedQueryDto): Promise<C2bFeedItemDto[]> {
    const rows = await this.repo.feed(
      user.shopId,
      q.limit ?? 50,
      q.receipt ? normaliseMpesaReceipt(q.receipt.trim()) : undefined,
    );
    return rows.map(feedItem);
  }

  @Get('review')
  @Roles('manager', 'admin')
  @ApiOperation({
    summary:
      "The shop's till / paybill confirmations a manager must look at: unreadable ones (e.g. an amount with cents) and ones that could settle more than one push",
    description:
      '`reason` says why (SEVERAL_PUSHES_FIT, RECEIPT_OF_ANOTHER_SHOP, AMOUNT_NOT_WHOLE_SHILLINGS, ...). None of them moved money here, and none can be claimed (409 C2B_NEEDS_REVIEW): check the payment in the M-Pesa org portal, then settle it (e.g. POST /payments/{id}/mpesa-receipt for a push of unknown outcome).',
  })
  @ApiOkResponse({ type: [C2bFeedItemDto] })
  @ApiErrors(400, 401, { status: 403, codes: ['FORBIDDEN'] })
  async review(@CurrentUser() user: AuthUser, @Query() q: C2bFeedQueryDto): Promise<C2bFeedItemDto[]> {
    return (await this.repo.needingReview(user.shopId, q.limit ?? 50)).map(feedItem);
  }

  @Post(':id/claim')
  @HttpCode(200)
  @Roles('cashier', 'manager', 'admin')
  @ApiOperation({
    summary: 'Claims an unclaimed till / paybill payment for an order (once: a second claim is 409)',
    description:
      'Body `{orderId}`: an order of your shop. The payment is applied to the order through the payment core: more than the order still owes goes to review (EXCEEDS_OUTSTANDING) for a refund of the difference (the answer says `status: review`). Exactly once: of two cashiers pressing at once one gets 200, the other 409 C2B_ALREADY_CLAIMED. A refusal changes nothing: the payment stays in the feed. 404: no such C2B payment or order in your shop.',
  })
  @ApiOkResponse({ type: C2bClaimResultDto })
  @ApiErrors(
    400,
    401,
    403,
    {
      status: 404,
      codes: [{ code: 'NOT_FOUND', message: 'Order not found', details: { orderId: 'ORD-12345' } }],
    },
    {
      status: 409,
      codes: [
        {
          code: 'C2B_ALREADY_CLAIMED',
          message:
            'This M-Pesa payment (receipt SL12ABC3DE) was already taken for order ORD-12345; it cannot be claimed again',
          details: { c2bPaymentId: '0b9f…', status: 'applied', orderId: 'ORD-12345' },
        },
        {
          code: 'C2B_NEEDS_REVIEW',
          message:
            "This M-Pesa payment (receipt SL12ABC3DE) needs a manager's check before it can be used for an order: ask a manager (it is in the review list)",
        },
        {
          code: 'ORDER_ALREADY_PAID',
          message: 'Order ORD-12345 is already fully paid: claim this payment for another order',
        },
        {
          code: 'PAYMENT_IN_PROGRESS',
          message:
            'Order ORD-12345 has a payment waiting for the customer (or of unknown outcome): wait for it to finish before claiming this one',
        },
        {
          code: 'C2B_ALREADY_APPLIED',
          message: 'Receipt SL12ABC3DE is already recorded on a payment: it is not claimed twice',
        },
      ],
    },
  )
  claim(@CurrentUser() user: AuthUser, @Param() p: C2bIdParam, @Body() body: C2bClaimDto): Promise<C2bClaimResultDto> {
    return this.matching.claim(user, p.id, body.orderId);
  }
}

const C2B_NOT_AVAILABLE_EXAMPLE = {
  code: 'C2B_NOT_AVAILABLE' as const,
  message:
    'This shop has no M-Pesa account of its own: till and paybill payments are registered per account (a manager adds it under Settings > Payments first)',
};

/** Registering a shop's account's C2B URLs with Daraja (manager/admin of the shop, or an operator). */
@ApiTags('merchant accounts')
@ApiBearerAuth()
@UseGuards(JwtAuthGuard)
@Controller('shops/:shopId/c2b-registration')
export class C2bRegistrationController {
  constructor(private readonly registrations: C2bRegistrationService) {}

  @Get()
  @Roles('manager', 'admin', 'operator')
  @ApiOperation({
    summary: "What was registered with Daraja for the shop's M-Pesa account, and when (null: nothing yet)",
    description:
      "The newest registration of the shop's current M-Pesa account, or else of its shortcode by an earlier account row of the shop (credentials rotated since: those URLs stay in force), URLs shown without their tokens. Nothing registered yet: an empty body. A shop on the platform's account, or a chain branch (registered at its head office): 409 C2B_NOT_AVAILABLE.",
  })
  @ApiOkResponse({ type: C2bRegistrationDto })
  @ApiErrors(400, 401, 403, { status: 409, codes: [C2B_NOT_AVAILABLE_EXAMPLE] })
  get(@CurrentUser() user: AuthUser, @Param() p: ShopParam): Promise<C2bRegistrationView | null> {
    return this.registrations.get(user, p.shopId);
  }

  @Post()
  @HttpCode(200)
  @Roles('manager', 'admin', 'operator')
  @ApiOperation({
    summary: "Registers the shop's till / paybill confirmation (and validation) URLs with Daraja",
    description:
      'Production registration is one-time at Safaricom: a second registration of the same shortcode is refused (409 C2B_ALREADY_REGISTERED) unless force is true, after the old URLs were deleted on the M-Pesa portal. The sandbox re-registers freely; the answer says what it replaced.',
  })
  @ApiOkResponse({ type: C2bRegistrationDto })
  @ApiErrors(
    400,
    401,
    403,
    {
      status: 409,
      codes: [
        C2B_NOT_AVAILABLE_EXAMPLE,
        {
          code: 'C2B_ALREADY_REGISTERED',
          message:
            "Shortcode 600411 already has C2B URLs registered, by another shop's M-Pesa account. Production registration is one-time at Safaricom: delete the old URLs on the M-Pesa portal (URL management) or through apisupport first, then register again with force: true (the CLI: --force).",
          details: { shortcode: '600411' },
        },
      ],
    },
    502,
    503,
  )
  register(
    @CurrentUser() user: AuthUser,
    @Param() p: ShopParam,
    @Body() body: C2bRegisterDto,
  ): Promise<C2bRegistrationView> {
    return this.registrations.register(user, p.shopId, body);
  }
}

/** amount 0 for an invalid row without one (its reason says why). */
function feedItem(r: C2bTransactionRow): C2bFeedItemDto {
  return {
    id: r.id,
    receipt: r.transId ?? '',
    amount: toMajor(r.amountMinor ?? 0n, r.currency),
    currency: r.currency,
    paidAt: nairobiIso(r.transTime),
    receivedAt: r.receivedAt.toISOString(),
    customerName: r.customerName,
    transactionType: r.transactionType,
    accountNumber: r.billRefNumber,
    reason: r.statusReason,
  };
}

function nairobiIso(key: string | null): string | null {
  if (!key) return null;
  try {
    return parseNairobiTimestamp(key).toISOString();
  } catch {
    return null;
  }
}
