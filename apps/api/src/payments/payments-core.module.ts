import { Module } from '@nestjs/common';
import { OrdersModule } from '../orders/orders.module';
import { PaymentLifecycle } from './payment-lifecycle.service';
import { PaymentsRepository } from './payments.repository';
import { ProviderServicesRegistry } from './provider-services.registry';

/**
 * What every provider shares: the payments table (PaymentsRepository), the outcome core
 * (PaymentLifecycle) and the registry each provider's service joins at module init. Provider
 * modules (M-Pesa's front door, Flutterwave, Pesapal) import this and nothing of each other.
 */
@Module({
  imports: [OrdersModule],
  providers: [PaymentsRepository, PaymentLifecycle, ProviderServicesRegistry],
  exports: [PaymentsRepository, PaymentLifecycle, ProviderServicesRegistry],
})
export class PaymentsCoreModule {}
