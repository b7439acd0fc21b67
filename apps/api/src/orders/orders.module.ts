import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { OrdersController } from './orders.controller';
import { ORDERS_PORT } from './orders.port';
import { OrdersRepository } from './orders.repository';
import { OrdersService } from './orders.service';

@Module({
  imports: [AuthModule],
  controllers: [OrdersController],
  providers: [OrdersRepository, OrdersService, { provide: ORDERS_PORT, useExisting: OrdersService }],
  exports: [ORDERS_PORT, OrdersService],
})
export class OrdersModule {}
