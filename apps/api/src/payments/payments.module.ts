import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { OrderPaymentsController, PaymentHistoryController, ReportsController } from './payment-history.controller';
import { PaymentHistoryService } from './payment-history.service';
import { PaymentEventsController } from './payment-events.controller';
import { EventStreamAuthGuard } from './payment-events.guard';
import { PaymentEventsRepository } from './payment-events.repository';
import { PaymentEventsService } from './payment-events.service';
import { ReportsRepository } from './reports.repository';
import { OrdersModule } from '../orders/orders.module';
import { PaymentsCoreModule } from './payments-core.module';
import { PaymentsOperationsController } from './payments-operations.controller';
import { PaymentsController } from './payments.controller';
import { MpesaModule } from './providers/mpesa/mpesa.module';
import { PaymentsService } from './payments.service';
import { StkCallbackLane } from './stk-callback-lane';
import { RefundsController } from './refunds.controller';

/**
 * The /payments routes: the M-Pesa STK front door (PaymentsService, PaymentsController; the
 * Daraja wiring is in MpesaModule) and the operator routes over the shared core.
 */
@Module({
  imports: [AuthModule, OrdersModule, PaymentsCoreModule, MpesaModule],
  // Operations first: its static /payments/review must win over PaymentsController's /payments/:id.
  // The event streams first too: /payments/events must not be read as /payments/:id.
  controllers: [
    PaymentEventsController,
    PaymentsOperationsController,
    PaymentHistoryController,
    RefundsController,
    PaymentsController,
    ReportsController,
    OrderPaymentsController,
  ],
  providers: [
    PaymentsService,
    StkCallbackLane,
    PaymentHistoryService,
    ReportsRepository,
    PaymentEventsRepository,
    PaymentEventsService,
    EventStreamAuthGuard,
  ],
})
export class PaymentsModule {}
