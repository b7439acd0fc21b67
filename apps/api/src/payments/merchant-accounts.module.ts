import { Module } from '@nestjs/common';
import { MerchantAccountsController } from './merchant-accounts.controller';
import { PaymentsCoreModule } from './payments-core.module';

/** The HTTP side of per-shop merchant accounts (the service lives in the core: every provider resolves through it). */
@Module({
  imports: [PaymentsCoreModule],
  controllers: [MerchantAccountsController],
})
export class MerchantAccountsModule {}
