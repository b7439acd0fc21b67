import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { PaymentsModule } from '../payments/payments.module';
import { ReconciliationController } from './reconciliation.controller';
import { StatementMatchingService } from './statement-matching.service';
import { StatementRepository } from './statement.repository';

@Module({
  // PaymentsModule: statement matching settles open/unknown payments through PaymentLifecycle.
  imports: [AuthModule, PaymentsModule],
  controllers: [ReconciliationController],
  providers: [StatementRepository, StatementMatchingService],
})
export class ReconciliationModule {}
