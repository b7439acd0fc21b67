import { Body, Controller, Get, Headers, HttpCode, Post, Query, Req, Res, UseGuards } from '@nestjs/common';
import { checkIdempotencyKey, IdempotencyKeyHeader, sendHttpResult } from '../../../common/idempotent-http';
import {
  ApiBearerAuth,
  ApiBody,
  ApiHeader,
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
import { PaymentResponseDto } from '../../payments.dto';
import {
  FlutterwaveInitDto,
  FlutterwaveInitResponseDto,
  FlutterwaveVerifyDto,
  FlutterwaveWebhookAckDto,
} from './flutterwave.dto';
import { FlutterwaveService } from './flutterwave.service';

@ApiTags('payments: flutterwave')
@Controller('payments/flutterwave')
export class FlutterwaveController {
  constructor(private readonly flutterwave: FlutterwaveService) {}

  @Post('init')
  @UseGuards(JwtAuthGuard)
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Create a Flutterwave hosted checkout link (card / M-Pesa) for an order',
    description:
      'Writes the payment with our own tx_ref first, then asks Flutterwave for a hosted checkout link. Show `link` to the customer (open it on their phone or as a QR code). ' +
      "`pending` only means the link exists: the payment is `completed` once Flutterwave's verify API confirms status, tx_ref, amount and currency (webhook, redirect, GET /payments/:id or the reconciler). " +
      'Same order rules as M-Pesa: amount ≤ what the order still owes, one payment in flight per order. Never retried automatically; send an `Idempotency-Key` so a retried request replays the first answer.',
  })
  @IdempotencyKeyHeader()
  @ApiResponse({ status: 201, type: FlutterwaveInitResponseDto })
  @ApiErrors(400, 401, 404, 409, 502, 503, 504)
  async init(
    @CurrentUser() user: AuthUser,
    @Body() body: FlutterwaveInitDto,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) res: Response,
    @Req() req: Request & { id?: string },
  ): Promise<unknown> {
    checkIdempotencyKey(idempotencyKey);
    return sendHttpResult(req, res, await this.flutterwave.initiate(user, body, idempotencyKey));
  }

  @Post('verify')
  @HttpCode(200)
  @UseGuards(JwtAuthGuard)
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Verify a Flutterwave payment with Flutterwave now and record the outcome',
    description:
      "Send exactly one of `paymentId`, `txRef` or `transactionId`. Asks Flutterwave's verify API (at most once a second per payment) and records what it says: " +
      'value is given only when status, tx_ref, amount and currency all match what was stored at init; a mismatch parks the payment in `review`. Returns the payment.',
  })
  @ApiOkResponse({ type: PaymentResponseDto })
  @ApiErrors(400, 401, 404, 502, 503, 504)
  verify(@CurrentUser() user: AuthUser, @Body() body: FlutterwaveVerifyDto): Promise<PaymentResponseDto> {
    return this.flutterwave.verify(user, body);
  }

  @Post('webhook')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Flutterwave webhook (dashboard → Settings → Webhooks)',
    description:
      'Authenticated by the `verif-hash` header (the dashboard "secret hash", compared in constant time; a v4-style `flutterwave-signature` HMAC is accepted too). ' +
      "The raw body is stored before the reply; a missing or wrong hash is a 401 and changes no payment. An authenticated webhook is acknowledged at once and its payment is then verified with Flutterwave's verify API before anything changes: the body only says which payment to look at. Duplicates are harmless.",
  })
  @ApiHeader({
    name: 'verif-hash',
    required: true,
    description: 'The secret hash set on the Flutterwave dashboard (FLUTTERWAVE_SECRET_HASH)',
  })
  @ApiBody({
    schema: {
      type: 'object',
      example: {
        event: 'charge.completed',
        data: {
          id: 9051234,
          tx_ref: 'SD-3f2c9a4e-8b1d-4c6e-9f0a-7d5e2b1c4a98',
          flw_ref: 'FLW-MOCK-1',
          amount: 2450,
          currency: 'KES',
          status: 'successful',
        },
      },
    },
  })
  @ApiOkResponse({ type: FlutterwaveWebhookAckDto })
  @ApiErrors(
    400,
    {
      status: 401,
      codes: [
        {
          code: 'INVALID_WEBHOOK_SIGNATURE',
          message:
            "Webhook refused: the verif-hash header is missing or does not match the secret hash of the payment's Flutterwave account",
        },
      ],
    },
    413,
    503,
  )
  async webhook(@Body() body: unknown, @Req() req: Request & { rawBody?: Buffer }): Promise<FlutterwaveWebhookAckDto> {
    await this.flutterwave.receiveWebhook({
      headers: req.headers,
      body,
      rawBody: req.rawBody?.toString('utf8') ?? '',
      sourceIp: req.ip,
    });
    return { status: 'received' };
  }

  @Get('redirect')
  @ApiOperation({
    summary: "The customer's browser back from the hosted checkout (Flutterwave's redirect_url)",
    description:
      'Never marks anything paid by itself: looks the payment up by tx_ref, verifies it with Flutterwave, records the outcome, then redirects (302) to POS_RETURN_URL (or the init redirectUrl) with ?paymentId=&orderId=&status=, or shows a small result page when none is configured.',
  })
  @ApiQuery({ name: 'tx_ref', required: true })
  @ApiQuery({
    name: 'status',
    required: false,
    description: 'What Flutterwave says happened (successful, completed, cancelled, failed): a hint, never trusted',
  })
  @ApiQuery({ name: 'transaction_id', required: false })
  @ApiProduces('text/html')
  @ApiResponse({ status: 200, description: 'Result page (no POS_RETURN_URL)' })
  @ApiResponse({ status: 302, description: 'To POS_RETURN_URL with ?paymentId=&orderId=&status=' })
  @ApiResponse({ status: 404, description: 'Unknown tx_ref (small HTML page)' })
  async redirect(@Query() query: Record<string, unknown>, @Res() res: Response): Promise<void> {
    const answer = await this.flutterwave.handleRedirect(query);
    // The URL carried the tx_ref: keep it out of Referer headers; never cache a payment's state.
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Cache-Control', 'no-store');
    if (answer.kind === 'redirect') {
      res.redirect(302, answer.location);
      return;
    }
    res.setHeader(
      'Content-Security-Policy',
      "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    );
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.status(answer.status).type('html').send(answer.html);
  }
}
