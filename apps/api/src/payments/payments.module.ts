import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { PaymentsCoreModule } from './payments-core.module';
import { PaymentsOperationsController } from './payments-operations.controller';
import { PaymentsController } from './payments.controller';
import { MpesaModule } from './providers/mpesa/mpesa.module';
import { PaymentsService } from './payments.service';
import { RefundsController } from './refunds.controller';

/**
 * The /payments routes: the M-Pesa STK front door (PaymentsService, PaymentsController; the
 * Daraja wiring is in MpesaModule) and the operator routes over the shared core.
 */
@Module({
  imports: [AuthModule, PaymentsCoreModule, MpesaModule],
  // Operations first: its static /payments/review must win over PaymentsController's /payments/:id.
  controllers: [PaymentsOperationsController, RefundsController, PaymentsController],
  providers: [PaymentsService],
})
export class PaymentsModule {}
