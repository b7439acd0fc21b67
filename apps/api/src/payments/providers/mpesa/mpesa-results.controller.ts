import { Body, Controller, HttpCode, Inject, Param, Post, Req } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { ApiErrors } from '../../../common/api-errors.decorator';
import { AppError } from '../../../common/errors';
import { ipAllowed } from '../../../common/ip-allowlist';
import type { AppConfig } from '../../../config/app-config';
import { APP_CONFIG } from '../../../config/config.module';
import { CallbackAckDto } from '../../payments.dto';
import { MpesaResultKind, MpesaResultsService } from './mpesa-results.service';

type RawRequest = Request & { rawBody?: Buffer };

/**
 * Daraja's Result API deliveries for refunds, on per-refund capability URLs under the STK callback
 * base (MPESA_CALLBACK_URL): `/payments/callback/refunds/<refundId>/<result|timeout|status>/<token>`,
 * and a payment's receipt check `/payments/callback/payments/<paymentId>/status/<token>`; each token
 * its own HMAC scope. No "mpesa" in the path: Daraja refuses callback URLs containing it.
 */
@ApiTags('payments')
@Controller('payments/callback')
export class MpesaResultsController {
  constructor(
    private readonly results: MpesaResultsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Post('refunds/:refundId/result/:token')
  @HttpCode(200)
  @ApiOperation({
    summary: "Daraja's Reversal Result for a refund (per-refund capability URL)",
    description:
      "Stored before the reply, then applied once (its ConversationID must be one of the refund's reversals). A bad token: stored, never applied.",
  })
  @ApiOkResponse({ type: CallbackAckDto })
  @ApiErrors(400, 403, 413)
  result(@Param('refundId') id: string, @Param('token') token: string, @Body() body: unknown, @Req() req: RawRequest) {
    return this.receive('reversal_result', id, token, body, req);
  }

  @Post('refunds/:refundId/timeout/:token')
  @HttpCode(200)
  @ApiOperation({
    summary:
      "Daraja's QueueTimeOutURL notice for a refund's reversal: the refund becomes unknown and is checked with Transaction Status",
  })
  @ApiOkResponse({ type: CallbackAckDto })
  @ApiErrors(400, 403, 413)
  timeout(@Param('refundId') id: string, @Param('token') token: string, @Body() body: unknown, @Req() req: RawRequest) {
    return this.receive('reversal_timeout', id, token, body, req);
  }

  @Post('refunds/:refundId/status/:token')
  @HttpCode(200)
  @ApiOperation({ summary: "Daraja's Transaction Status Result (or its timeout notice) for a refund" })
  @ApiOkResponse({ type: CallbackAckDto })
  @ApiErrors(400, 403, 413)
  status(@Param('refundId') id: string, @Param('token') token: string, @Body() body: unknown, @Req() req: RawRequest) {
    return this.receive('status_result', id, token, body, req);
  }

  @Post('payments/:paymentId/status/:token')
  @HttpCode(200)
  @ApiOperation({
    summary:
      "Daraja's Transaction Status Result for a payment checked by its receipt (POST /payments/:id/mpesa-receipt)",
    description:
      'Stored before the reply; settles the payment only when M-Pesa shows a completed payment of its amount to its shortcode, made after the push.',
  })
  @ApiOkResponse({ type: CallbackAckDto })
  @ApiErrors(400, 403, 413)
  paymentStatus(
    @Param('paymentId') id: string,
    @Param('token') token: string,
    @Body() body: unknown,
    @Req() req: RawRequest,
  ) {
    return this.receive('payment_status_result', id, token, body, req);
  }

  private receive(kind: MpesaResultKind, id: string, token: string, body: unknown, req: RawRequest) {
    if (!ipAllowed(req.ip, this.config.mpesa.callbackIpAllowlist))
      throw new AppError('FORBIDDEN', 'Callback sender is not on the allowlist', 403);
    return this.results.receive({
      kind,
      id,
      token,
      body,
      rawBody: req.rawBody?.toString('utf8') ?? '',
      sourceIp: req.ip,
    });
  }
}
