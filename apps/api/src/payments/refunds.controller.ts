import { Body, Controller, Get, Headers, HttpCode, Param, Post, Query, Req, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import type { AuthUser } from '../auth/auth.types';
import { JwtAuthGuard } from '../auth/jwt-auth.guard';
import { CurrentUser, Roles } from '../auth/roles.decorator';
import { ApiErrors } from '../common/api-errors.decorator';
import { checkIdempotencyKey, IdempotencyKeyHeader, sendHttpResult } from '../common/idempotent-http';
import { PaymentIdParam } from './payments.dto';
import {
  RefundIdParam,
  RefundListDto,
  RefundListQueryDto,
  RefundReconcileDto,
  RefundRequestDto,
  RefundResponseDto,
  ResolveReviewDto,
  ReviewResolutionDto,
  SettleRefundDto,
} from './refunds.dto';
import { RefundReconciler } from './refund-reconciler.service';
import { RefundsService } from './refunds.service';

/** Money back, for a shop's manager or admin (never a cashier), own shop only. */
@ApiTags('refunds')
@ApiBearerAuth()
@UseGuards(JwtAuthGuard)
@Controller()
export class RefundsController {
  constructor(
    private readonly refunds: RefundsService,
    private readonly reconciler: RefundReconciler,
  ) {}

  @Post('payments/:id/refunds')
  @Roles('manager', 'admin')
  @ApiOperation({
    summary: 'Give money back on a payment (all of it, or part)',
    description:
      "A completed payment, or one in review that took the customer's money (EXCEEDS_OUTSTANDING, ORDER_ALREADY_PAID, PAID_AFTER_CLOSE, SECOND_CHARGE). " +
      'The refunds of a payment never add up to more than it collected (a refund that is not failed counts, even while pending). ' +
      "Each provider's limits are checked before anything is sent (422 with why: M-Pesa needs the shop's initiator and whole shillings; Pesapal refunds once per payment, mobile money in full). " +
      '201 with the refund: `pending` (the provider took it; its result comes later), `succeeded`, `failed` (with why), or `unknown` (being checked; never sent twice blindly). ' +
      'Send an `Idempotency-Key` so a retried request replays the first answer instead of refunding twice.',
  })
  @IdempotencyKeyHeader()
  @ApiResponse({ status: 201, type: RefundResponseDto })
  @ApiErrors(400, 401, 403, 404, 409, 422, 503)
  async request(
    @CurrentUser() user: AuthUser,
    @Param() p: PaymentIdParam,
    @Body() body: RefundRequestDto,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) res: Response,
    @Req() req: Request & { id?: string },
  ): Promise<unknown> {
    checkIdempotencyKey(idempotencyKey);
    const input = { amount: body.amount, currency: body.currency, reason: body.reason.trim() };
    return sendHttpResult(req, res, await this.refunds.request(user, p.id, input, idempotencyKey));
  }

  @Get('payments/:id/refunds')
  @Roles('manager', 'admin')
  @ApiOperation({ summary: "A payment's refunds, oldest first" })
  @ApiOkResponse({ type: RefundListDto })
  @ApiErrors(400, 401, 403, 404)
  list(@CurrentUser() user: AuthUser, @Param() p: PaymentIdParam): Promise<RefundListDto> {
    return this.refunds.listForShopPayment(user, p.id);
  }

  @Get('refunds')
  @Roles('manager', 'admin')
  @ApiOperation({
    summary: "The shop's refunds, newest first",
    description:
      '`?status=review`: refunds a person must look at (the reconciler gave up, or the provider reported another amount); they still count against their payment, as they may have paid out.',
  })
  @ApiOkResponse({ type: RefundListDto })
  @ApiErrors(400, 401, 403)
  listAll(@CurrentUser() user: AuthUser, @Query() q: RefundListQueryDto): Promise<RefundListDto> {
    return this.refunds.listForShop(user, q.limit ?? 50, q.status ? [q.status] : undefined);
  }

  @Get('refunds/:refundId')
  @Roles('manager', 'admin')
  @ApiOperation({ summary: 'One refund' })
  @ApiOkResponse({ type: RefundResponseDto })
  @ApiErrors(400, 401, 403, 404)
  get(@CurrentUser() user: AuthUser, @Param() p: RefundIdParam): Promise<RefundResponseDto> {
    return this.refunds.getForShop(user, p.refundId);
  }

  @Post('refunds/:refundId/reconcile')
  @HttpCode(200)
  @Roles('manager', 'admin')
  @ApiOperation({
    summary: 'Ask the provider about one refund now',
    description:
      'An open refund is looked up as the reconciler would (M-Pesa: a Transaction Status query, whose answer arrives later); a refund in review is looked up and settled only by a final answer. Never sends the refund again without proof the first never happened.',
  })
  @ApiOkResponse({ type: RefundReconcileDto })
  @ApiErrors(400, 401, 403, 404)
  reconcile(@CurrentUser() user: AuthUser, @Param() p: RefundIdParam): Promise<RefundReconcileDto> {
    return this.reconciler.reconcileNow(user, p.refundId);
  }

  @Post('refunds/:refundId/settle')
  @HttpCode(200)
  @Roles('manager', 'admin')
  @ApiOperation({
    summary: 'Settle a refund in review by hand, after checking with the provider',
    description:
      "For a refund the reconciler gave up on, or whose provider answer needs a person (e.g. M-Pesa says the payment was already reversed after a resend): `succeeded` when the provider's portal or statement shows the money went back, `failed` when it did not (the amount becomes refundable again). 409 for a refund not in review.",
  })
  @ApiOkResponse({ type: RefundResponseDto })
  @ApiErrors(400, 401, 403, 404, {
    status: 409,
    codes: [
      {
        code: 'REFUND_NOT_IN_REVIEW',
        message: 'Only a refund in review can be settled by hand; this one is succeeded',
      },
      {
        code: 'REFUND_BUSY',
        message:
          'This refund is being checked with the provider right now; look at it again in a minute before settling it',
      },
    ],
  })
  settle(
    @CurrentUser() user: AuthUser,
    @Param() p: RefundIdParam,
    @Body() body: SettleRefundDto,
  ): Promise<RefundResponseDto> {
    return this.refunds.settleByManager(user, p.refundId, body.outcome, body.note.trim());
  }

  @Post('payments/:id/resolve')
  @Roles('manager', 'admin')
  @ApiOperation({
    summary: 'Resolve a payment in review: refund it, accept it, or release it with a note',
    description:
      'refund: all it holds goes back (201 with the refund; if the refund fails the payment comes back to the review list). accept: the money stays and the payment is completed against its own order or `orderId`, which must owe at least its amount. ' +
      'release: closed with the note, nothing sent; for a payment whose outcome is unknown this releases its order as POST /payments/:id/release does. ' +
      'Resolved payments leave GET /payments/review. 409 for a payment not in review or already resolved, and for refund/accept of one not known to hold money.',
  })
  @IdempotencyKeyHeader()
  @ApiResponse({ status: 201, type: ReviewResolutionDto, description: 'refund' })
  @ApiResponse({ status: 200, type: ReviewResolutionDto, description: 'accept, release' })
  @ApiErrors(400, 401, 403, 404, 409, 422, 503)
  async resolve(
    @CurrentUser() user: AuthUser,
    @Param() p: PaymentIdParam,
    @Body() body: ResolveReviewDto,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) res: Response,
    @Req() req: Request & { id?: string },
  ): Promise<unknown> {
    checkIdempotencyKey(idempotencyKey);
    const input = { action: body.action, note: body.note.trim(), orderId: body.orderId };
    return sendHttpResult(req, res, await this.refunds.resolveReview(user, p.id, input, idempotencyKey));
  }
}
