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
  @ApiErrors(400, 403, 404, 413)
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
  @ApiErrors(400, 403, 404, 413)
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
  })
  @ApiOkResponse({ type: [C2bFeedItemDto] })
  @ApiErrors(400, 401, 403)
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
  })
  @ApiOkResponse({ type: [C2bFeedItemDto] })
  @ApiErrors(400, 401, 403)
  async review(@CurrentUser() user: AuthUser, @Query() q: C2bFeedQueryDto): Promise<C2bFeedItemDto[]> {
    return (await this.repo.needingReview(user.shopId, q.limit ?? 50)).map(feedItem);
  }

  @Post(':id/claim')
  @HttpCode(200)
  @Roles('cashier', 'manager', 'admin')
  @ApiOperation({
    summary: 'Claims an unclaimed till / paybill payment for an order (once: a second claim is 409)',
    description:
      'The payment is applied to the order through the payment core: more than the order still owes goes to review (EXCEEDS_OUTSTANDING) for a refund of the difference.',
  })
  @ApiOkResponse({ type: C2bClaimResultDto })
  @ApiErrors(400, 401, 403, 404, 409)
  claim(@CurrentUser() user: AuthUser, @Param() p: C2bIdParam, @Body() body: C2bClaimDto): Promise<C2bClaimResultDto> {
    return this.matching.claim(user, p.id, body.orderId);
  }
}

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
  })
  @ApiOkResponse({ type: C2bRegistrationDto })
  @ApiErrors(400, 401, 403, 409)
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
  @ApiErrors(400, 401, 403, 409, 502, 503)
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
