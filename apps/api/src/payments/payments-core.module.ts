import { CallbackApplier } from './callback-applier';
import { Module } from '@nestjs/common';
import { OrdersModule } from '../orders/orders.module';
import { MerchantAccountsRepository } from './merchant-accounts.repository';
import { MerchantAccountsService } from './merchant-accounts.service';
import { PaymentInitiation } from './payment-initiation.service';
import { PaymentLifecycle } from './payment-lifecycle.service';
import { PaymentOperationsService } from './payment-operations.service';
import { PaymentsRepository } from './payments.repository';
import { ProviderServicesRegistry } from './provider-services.registry';
import { ReconcilerService } from './reconciler.service';
import { RefundProvidersRegistry } from './refund-providers.registry';
import { RefundsRepository } from './refunds.repository';
import { RefundsService } from './refunds.service';
import { RefundReconciler } from './refund-reconciler.service';

/**
 * What every provider shares: the payments table (PaymentsRepository), the outcome core
 * (PaymentLifecycle), the shops' merchant accounts (MerchantAccountsService) with its one init path (PaymentInitiation), the registry each provider's service joins at module init, and what
 * dispatches through it (PaymentOperationsService: status by id, review, release, reconcile-now;
 * ReconcilerService). Provider modules (M-Pesa's front door, Flutterwave, Pesapal) import this
 * and nothing of each other.
 */
@Module({
  imports: [OrdersModule],
  providers: [
    CallbackApplier,
    PaymentsRepository,
    PaymentLifecycle,
    PaymentInitiation,
    ProviderServicesRegistry,
    PaymentOperationsService,
    ReconcilerService,
    MerchantAccountsRepository,
    MerchantAccountsService,
    RefundProvidersRegistry,
    RefundsRepository,
    RefundsService,
    RefundReconciler,
  ],
  exports: [
    CallbackApplier,
    PaymentsRepository,
    PaymentLifecycle,
    PaymentInitiation,
    ProviderServicesRegistry,
    PaymentOperationsService,
    ReconcilerService,
    MerchantAccountsRepository,
    MerchantAccountsService,
    RefundProvidersRegistry,
    RefundsRepository,
    RefundsService,
    RefundReconciler,
  ],
})
export class PaymentsCoreModule {}
