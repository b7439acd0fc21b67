import { Controller, Get, Param, Query, Res, UseGuards } from '@nestjs/common';
import type { Response } from 'express';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiProduces, ApiProperty, ApiTags } from '@nestjs/swagger';
import type { AuthUser } from '../auth/auth.types';
import { JwtAuthGuard } from '../auth/jwt-auth.guard';
import { CurrentUser } from '../auth/roles.decorator';
import { ApiErrors } from '../common/api-errors.decorator';
import { OrdersService } from '../orders/orders.service';
import { OrderIdParam, OrderResponseDto } from '../orders/orders.dto';
import {
  DailyReportDto,
  DailyReportQueryDto,
  PaymentHistoryDto,
  PaymentHistoryQueryDto,
  ReceiptDto,
  ReceiptPrintQueryDto,
} from './payment-history.dto';
import { PaymentHistoryService } from './payment-history.service';
import { PaymentIdParam, PaymentResponseDto } from './payments.dto';

/** GET /payments (history) and the receipts; same roles as GET /payments/:id (any POS role, own shop). */
@ApiTags('payments')
@ApiBearerAuth()
@UseGuards(JwtAuthGuard)
@Controller('payments')
export class PaymentHistoryController {
  constructor(private readonly history: PaymentHistoryService) {}

  @Get()
  @ApiOperation({
    summary: "The shop's payments, newest first, paged with `cursor` (from inclusive, to exclusive, on createdAt)",
  })
  @ApiOkResponse({ type: PaymentHistoryDto })
  @ApiErrors(400, 401)
  list(@CurrentUser() user: AuthUser, @Query() q: PaymentHistoryQueryDto): Promise<PaymentHistoryDto> {
    return this.history.history(
      user,
      { orderId: q.orderId, status: q.status, provider: q.provider, from: q.from, to: q.to },
      q.limit ?? 25,
      q.cursor,
    );
  }

  @Get(':id/receipt')
  @ApiOperation({ summary: 'Receipt data of a completed payment (409 PAYMENT_NOT_COMPLETED otherwise)' })
  @ApiOkResponse({ type: ReceiptDto })
  @ApiErrors(400, 401, 404, {
    status: 409,
    codes: [{ code: 'PAYMENT_NOT_COMPLETED', message: 'There is no receipt: this payment is pending, not completed' }],
  })
  receipt(@CurrentUser() user: AuthUser, @Param() p: PaymentIdParam): Promise<ReceiptDto> {
    return this.history.receipt(user, p.id);
  }

  @Get(':id/receipt/print')
  @ApiProduces('text/html')
  @ApiOperation({ summary: 'Printable receipt for 58 mm or 80 mm thermal paper (HTML)' })
  @ApiOkResponse({ description: 'text/html page', schema: { type: 'string' } })
  @ApiErrors(400, 401, 404, {
    status: 409,
    codes: [{ code: 'PAYMENT_NOT_COMPLETED', message: 'There is no receipt: this payment is pending, not completed' }],
  })
  async print(
    @CurrentUser() user: AuthUser,
    @Param() p: PaymentIdParam,
    @Query() q: ReceiptPrintQueryDto,
    @Res({ passthrough: true }) res: Response,
  ): Promise<string> {
    const html = await this.history.receiptHtml(user, p.id, q.width ?? '80');
    // Set only on success: an error stays application/json like every other error.
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    return html;
  }
}

@ApiTags('reports')
@ApiBearerAuth()
@UseGuards(JwtAuthGuard)
@Controller('reports')
export class ReportsController {
  constructor(private readonly history: PaymentHistoryService) {}

  @Get('daily')
  @ApiOperation({
    summary: 'End-of-day summary per Nairobi calendar day and provider (from..to inclusive, at most 92 days)',
  })
  @ApiOkResponse({ type: DailyReportDto })
  @ApiErrors(400, 401)
  daily(@CurrentUser() user: AuthUser, @Query() q: DailyReportQueryDto): Promise<DailyReportDto> {
    return this.history.daily(user, q.from, q.to);
  }
}

export class OrderWithPaymentsDto extends OrderResponseDto {
  @ApiProperty({ type: [PaymentResponseDto] }) payments!: PaymentResponseDto[];
}

/** GET /orders/:id with its payments (here, not in OrdersModule, which payments depend on). */
@ApiTags('orders')
@ApiBearerAuth()
@UseGuards(JwtAuthGuard)
@Controller('orders')
export class OrderPaymentsController {
  constructor(
    private readonly orders: OrdersService,
    private readonly history: PaymentHistoryService,
  ) {}

  @Get(':id')
  @ApiOperation({
    summary: "An order's total, paid and outstanding amounts (derived from completed payments), with its payments",
  })
  @ApiOkResponse({ type: OrderWithPaymentsDto })
  @ApiErrors(400, 401, 404)
  async get(@CurrentUser() user: AuthUser, @Param() params: OrderIdParam): Promise<OrderWithPaymentsDto> {
    const order = await this.orders.get(user.shopId, params.id);
    return { ...order, payments: await this.history.forOrder(user.shopId, params.id) };
  }
}
