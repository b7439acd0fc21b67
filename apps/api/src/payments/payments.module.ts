import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { PaymentsCoreModule } from './payments-core.module';
import { PaymentsOperationsController } from './payments-operations.controller';
import { PaymentsController } from './payments.controller';
import { MpesaModule } from './providers/mpesa/mpesa.module';
import { PaymentsService } from './payments.service';
import { ReconcilerService } from './reconciler.service';

/**
 * The M-Pesa STK front door (PaymentsService, PaymentsController) on the shared core, and the
 * operator routes. The Daraja wiring is in MpesaModule.
 */
@Module({
  imports: [AuthModule, PaymentsCoreModule, MpesaModule],
  // Operations first: its static /payments/review must win over PaymentsController's /payments/:id.
  controllers: [PaymentsOperationsController, PaymentsController],
  providers: [PaymentsService, ReconcilerService],
  exports: [PaymentsService, ReconcilerService],
})
export class PaymentsModule {}
