import {
  Body,
  CanActivate,
  Controller,
  Get,
  Headers,
  HttpCode,
  Inject,
  Injectable,
  Post,
  Query,
  Req,
  Res,
  UseGuards,
} from '@nestjs/common';
import { checkIdempotencyKey, IdempotencyKeyHeader, sendHttpResult } from '../../../common/idempotent-http';
import {
  ApiBearerAuth,
  ApiBody,
  ApiOkResponse,
  ApiOperation,
  ApiProduces,
  ApiQuery,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import type { AuthUser } from '../../../auth/auth.types';
import { JwtAuthGuard } from '../../../auth/jwt-auth.guard';
import { CurrentUser } from '../../../auth/roles.decorator';
import { ApiErrors } from '../../../common/api-errors.decorator';
import { AppError } from '../../../common/errors';
import type { AppConfig } from '../../../config/app-config';
import { APP_CONFIG } from '../../../config/config.module';
import { PaymentResponseDto } from '../../payments.dto';
import type { PesapalIpnAck } from './pesapal.types';
import { PesapalInitDto, PesapalInitResponseDto, PesapalIpnAckDto, PesapalStatusQueryDto } from './pesapal.dto';
import { PesapalService } from './pesapal.service';

/** Every Pesapal route answers 503 PROVIDER_DISABLED while PESAPAL_ENABLED is false (checked before authentication). */
@Injectable()
export class PesapalEnabledGuard implements CanActivate {
  constructor(private readonly pesapal: PesapalService) {}

  canActivate(): boolean {
    if (!this.pesapal.enabled) {
      throw new AppError(
        'PROVIDER_DISABLED',
        'Pesapal payments are switched off on this server (PESAPAL_ENABLED=false); use another payment method or ask an administrator to enable Pesapal',
        503,
        { provider: 'pesapal' },
      );
    }
    return true;
  }
}

const IPN_EXAMPLE = {
  OrderTrackingId: '96a5e1d9-f711-4423-82ce-dd758f972713',
  OrderMerchantReference: 'SD-ORD-12345-7KQ2M9XW4HPA',
  OrderNotificationType: 'IPNCHANGE',
};
const IPN_DESCRIPTION =
  'Pesapal IPNs are not signed and carry no status: the notification is stored, then (synchronously) the payment is confirmed with GetTransactionStatus — ' +
  "only for a merchant reference this API issued, and only when the OrderTrackingId matches the payment's — and the answer is recorded. " +
  'Always HTTP 200 with the acknowledgement Pesapal expects: `status` 200 once the status was fetched and recorded (whatever it was), 500 when it was not processed ' +
  '(unknown reference, mismatching ids, no identifiers, Pesapal or the database failing): Pesapal retries those.';

@ApiTags('payments: pesapal')
@Controller('payments/pesapal')
@UseGuards(PesapalEnabledGuard)
export class PesapalController {
  constructor(
    private readonly pesapal: PesapalService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Post('init')
  @UseGuards(JwtAuthGuard)
  @ApiBearerAuth()
  @ApiOperation({
    summary: "Open Pesapal's payment page for an order (cards, M-Pesa, Airtel Money…)",
    description:
      'Creates a Pesapal order (SubmitOrderRequest) with our own unique merchant reference, stored before the call, and returns the payment page URL to open, embed or show as a QR code. ' +
      '`pending` means the page exists; the money has moved only when the status becomes `completed` (IPN, status endpoint, reconciler). The same order rules as M-Pesa apply ' +
      '(amount ≤ outstanding, one payment in flight per order). Never retried automatically: on a timeout the payment is `unresolved`. Send an `Idempotency-Key`.',
  })
  @IdempotencyKeyHeader()
  @ApiResponse({ status: 201, type: PesapalInitResponseDto })
  @ApiErrors(400, 401, 404, 409, 502, 503, 504)
  async init(
    @CurrentUser() user: AuthUser,
    @Body() body: PesapalInitDto,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) res: Response,
    @Req() req: Request & { id?: string },
  ): Promise<unknown> {
    checkIdempotencyKey(idempotencyKey);
    return sendHttpResult(req, res, await this.pesapal.init(user, body, idempotencyKey));
  }

  @Get('status')
  @UseGuards(JwtAuthGuard)
  @ApiBearerAuth()
  @ApiOperation({
    summary:
      'A Pesapal payment by paymentId or orderTrackingId (exactly one); asks Pesapal (GetTransactionStatus) while it is still open',
  })
  @ApiOkResponse({ type: PaymentResponseDto })
  @ApiErrors(400, 401, 404)
  status(@CurrentUser() user: AuthUser, @Query() q: PesapalStatusQueryDto): Promise<PaymentResponseDto> {
    return this.pesapal.getStatus(user, q);
  }

  @Post('callback')
  @HttpCode(200)
  @ApiOperation({ summary: 'Pesapal IPN (registered as POST)', description: IPN_DESCRIPTION })
  @ApiBody({ schema: { type: 'object', example: IPN_EXAMPLE } })
  @ApiOkResponse({ type: PesapalIpnAckDto })
  @ApiErrors(400, 413)
  callbackPost(
    @Body() body: unknown,
    @Query() query: Record<string, unknown>,
    @Req() req: Request & { rawBody?: Buffer },
  ): Promise<PesapalIpnAck> {
    return this.pesapal.receiveIpn({
      method: 'POST',
      query,
      body,
      rawBody: req.rawBody?.toString('utf8') ?? '',
      sourceIp: req.ip,
    });
  }

  @Get('callback')
  @ApiOperation({ summary: 'Pesapal IPN (registered as GET)', description: IPN_DESCRIPTION })
  @ApiQuery({ name: 'OrderTrackingId', required: true })
  @ApiQuery({ name: 'OrderMerchantReference', required: true })
  @ApiQuery({ name: 'OrderNotificationType', required: false, example: 'IPNCHANGE' })
  @ApiOkResponse({ type: PesapalIpnAckDto })
  callbackGet(@Query() query: Record<string, unknown>, @Req() req: Request): Promise<PesapalIpnAck> {
    return this.pesapal.receiveIpn({ method: 'GET', query, body: undefined, rawBody: '', sourceIp: req.ip });
  }

  @Get('return')
  @ApiOperation({
    summary: "The customer's browser after Pesapal's payment page (the callback_url)",
    description:
      'Carries no status and marks nothing paid by itself: the payment is checked with GetTransactionStatus and recorded, then the browser goes to POS_RETURN_URL ' +
      '(`?paymentId=&orderId=&status=`) when set, otherwise it gets a small result page.',
  })
  @ApiQuery({ name: 'OrderTrackingId', required: false })
  @ApiQuery({ name: 'OrderMerchantReference', required: true })
  @ApiQuery({ name: 'OrderNotificationType', required: false, example: 'CALLBACKURL' })
  @ApiProduces('text/html')
  @ApiResponse({ status: 302, description: 'To POS_RETURN_URL?paymentId=&orderId=&status=' })
  @ApiResponse({ status: 200, description: 'Result page (no POS_RETURN_URL)' })
  @ApiResponse({ status: 400, description: 'Result page: the address names no payment' })
  @ApiResponse({ status: 404, description: 'Result page: unknown payment' })
  async return(@Query() query: Record<string, unknown>, @Res() res: Response): Promise<void> {
    const answer = await this.pesapal.handleReturn(query);
    res.setHeader('Cache-Control', 'no-store');
    if (answer.kind === 'redirect') {
      res.redirect(302, answer.location);
      return;
    }
    res.status(answer.status).type('html').send(answer.html);
  }
}
