import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { ReconciliationController } from './reconciliation.controller';
import { StatementMatchingService } from './statement-matching.service';
import { StatementRepository } from './statement.repository';

@Module({
  imports: [AuthModule],
  controllers: [ReconciliationController],
  providers: [StatementRepository, StatementMatchingService],
})
export class ReconciliationModule {}
