import {
  Body,
  Controller,
  Get,
  Headers,
  HttpCode,
  Inject,
  Param,
  Post,
  Query,
  Req,
  Res,
  UseGuards,
} from '@nestjs/common';
import { checkIdempotencyKey, IdempotencyKeyHeader, recallKeyLookup, sendHttpResult } from '../common/idempotent-http';
import { ApiBearerAuth, ApiBody, ApiOkResponse, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import type { AuthUser } from '../auth/auth.types';
import { JwtAuthGuard } from '../auth/jwt-auth.guard';
import { CurrentUser } from '../auth/roles.decorator';
import { ApiErrors } from '../common/api-errors.decorator';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { StkPushRateLimits } from '../rate-limit/stk-push-rate-limit.interceptor';
import {
  CallbackAckDto,
  PaymentIdParam,
  PaymentResponseDto,
  StkPushDto,
  StkPushResponseDto,
  StkStatusQueryDto,
} from './payments.dto';
import { PaymentOperationsService } from './payment-operations.service';
import type { IdempotencyRecord } from './payments.repository';
import { PaymentsService } from './payments.service';

@ApiTags('payments')
@Controller('payments')
export class PaymentsController {
  constructor(
    private readonly payments: PaymentsService,
    private readonly operations: PaymentOperationsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Post('stk-push')
  @UseGuards(JwtAuthGuard)
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Ask the customer to pay an order with M-Pesa (STK push)',
    description:
      'Sends an M-Pesa prompt to the phone. `pending` means Safaricom accepted the request; the money has moved only when the status becomes `completed`. ' +
      'Never retried automatically: on a timeout the payment is `unresolved` and settles through the callback or a status query. ' +
      'Send an `Idempotency-Key` so a retried request replays the first answer instead of prompting twice.',
  })
  @IdempotencyKeyHeader()
  @ApiResponse({ status: 201, type: StkPushResponseDto })
  @ApiErrors(400, 401, 404, 409, 502, 503, 504)
  @StkPushRateLimits()
  async stkPush(
    @CurrentUser() user: AuthUser,
    @Body() body: StkPushDto,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) res: Response,
    @Req() req: Request & { id?: string },
  ): Promise<unknown> {
    checkIdempotencyKey(idempotencyKey);
    // The rate limiter has usually read the key already: the service uses that instead of reading it again.
    const known = idempotencyKey ? recallKeyLookup<IdempotencyRecord>(req, user.shopId, idempotencyKey) : undefined;
    return sendHttpResult(req, res, await this.payments.initiateStkPush(user, body, idempotencyKey, known));
  }

  @Get('stk-status')
  @UseGuards(JwtAuthGuard)
  @ApiBearerAuth()
  @ApiOperation({
    summary:
      'Status of an STK push by its checkoutRequestId as answered (masked) or in full; asks Daraja when the payment is still open and a few seconds old',
  })
  @ApiOkResponse({ type: PaymentResponseDto })
  @ApiErrors(400, 401, 404, {
    status: 409,
    codes: [
      {
        code: 'CHECKOUT_REQUEST_ID_AMBIGUOUS',
        message:
          'More than one payment of this shop has this checkoutRequestId: add its merchantRequestId, look the payment up by its paymentId (GET /payments/:id) or use the full CheckoutRequestID',
      },
    ],
  })
  stkStatus(@CurrentUser() user: AuthUser, @Query() q: StkStatusQueryDto): Promise<PaymentResponseDto> {
    return this.payments.getStkStatus(user, q.checkoutRequestId, q.merchantRequestId);
  }

  @Get(':id')
  @UseGuards(JwtAuthGuard)
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'A payment by id, any provider (an open one is refreshed from its provider, like stk-status)',
  })
  @ApiOkResponse({ type: PaymentResponseDto })
  @ApiErrors(400, 401, 404)
  get(@CurrentUser() user: AuthUser, @Param() p: PaymentIdParam): Promise<PaymentResponseDto> {
    return this.operations.getPayment(user, p.id);
  }

  @Post('callback/:paymentId/:token')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Daraja STK callback (per-payment capability URL)',
    description:
      'Daraja signs nothing, so each push gives Daraja its own URL `/payments/callback/<paymentId>/<HMAC-SHA256(CALLBACK_SIGNING_SECRET, paymentId)>`. ' +
      'The body is stored (one INSERT) before the reply. On a valid URL the callback is applied right after the reply when its CheckoutRequestID and amount match the payment (a mismatch moves the payment to review); a callback with a bad token is confirmed with an STK query before anything changes.',
  })
  @ApiBody({
    schema: {
      type: 'object',
      example: {
        Body: {
          stkCallback: {
            MerchantRequestID: '29115-34620561-1',
            CheckoutRequestID: 'ws_CO_191220191020363925',
            ResultCode: 0,
            ResultDesc: 'The service request is processed successfully.',
            CallbackMetadata: {
              Item: [
                { Name: 'Amount', Value: 1 },
                { Name: 'MpesaReceiptNumber', Value: 'NLJ7RT61SV' },
                { Name: 'Balance' },
                { Name: 'TransactionDate', Value: 20191219102115 },
                { Name: 'PhoneNumber', Value: 254708374149 },
              ],
            },
          },
        },
      },
    },
  })
  @ApiOkResponse({ type: CallbackAckDto })
  @ApiErrors(400, 403, 413)
  callbackWithToken(
    @Param('paymentId') paymentId: string,
    @Param('token') token: string,
    @Body() body: unknown,
    @Req() req: Request & { rawBody?: Buffer },
  ): Promise<CallbackAckDto> {
    return this.callback(req, body, paymentId, token);
  }

  @Post('callback')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Daraja STK callback on the bare URL: stored, then confirmed with an STK query before anything changes',
  })
  @ApiOkResponse({ type: CallbackAckDto })
  @ApiErrors(400, 403, 413)
  callbackBare(@Body() body: unknown, @Req() req: Request & { rawBody?: Buffer }): Promise<CallbackAckDto> {
    return this.callback(req, body);
  }

  private callback(
    req: Request & { rawBody?: Buffer },
    body: unknown,
    paymentId?: string,
    token?: string,
  ): Promise<CallbackAckDto> {
    return this.payments.receiveCallback({
      paymentId,
      token,
      body,
      rawBody: req.rawBody?.toString('utf8') ?? '',
      sourceIp: req.ip,
    });
  }
}
