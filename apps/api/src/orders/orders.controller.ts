import { Body, Controller, HttpStatus, Post, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import type { AuthUser } from '../auth/auth.types';
import { JwtAuthGuard } from '../auth/jwt-auth.guard';
import { CurrentUser } from '../auth/roles.decorator';
import { ApiErrors } from '../common/api-errors.decorator';
import { CreateOrderDto, OrderResponseDto } from './orders.dto';
import { OrdersService } from './orders.service';

@ApiTags('orders')
@ApiBearerAuth()
@UseGuards(JwtAuthGuard)
@Controller('orders')
export class OrdersController {
  constructor(private readonly orders: OrdersService) {}

  @Post()
  @ApiOperation({ summary: 'Register a POS order so payments can be checked against its total' })
  @ApiCreatedResponse({
    type: OrderResponseDto,
    description: 'Created (200 when the same order was already registered with the same total)',
  })
  @ApiErrors(400, 401, {
    status: 409,
    codes: [{ code: 'ORDER_EXISTS', message: 'Order ord_1001 already exists with a different total or currency' }],
  })
  async create(
    @CurrentUser() user: AuthUser,
    @Body() body: CreateOrderDto,
    @Res({ passthrough: true }) res: Response,
  ): Promise<OrderResponseDto> {
    const { created, order } = await this.orders.create(user.shopId, body);
    res.status(created ? HttpStatus.CREATED : HttpStatus.OK);
    return order;
  }
  // GET /orders/:id (with its payments) is payments/payment-history.controller.ts OrderPaymentsController.
}
