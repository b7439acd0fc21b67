import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { PaymentsCoreModule } from '../payments/payments-core.module';
import { ReconciliationController } from './reconciliation.controller';
import { StatementMatchingService } from './statement-matching.service';
import { StatementRepository } from './statement.repository';

@Module({
  // PaymentsCoreModule: statement matching settles open/unknown payments through PaymentLifecycle.
  imports: [AuthModule, PaymentsCoreModule],
  controllers: [ReconciliationController],
  providers: [StatementRepository, StatementMatchingService],
})
export class ReconciliationModule {}
