import { Module, OnModuleInit } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { OrdersModule } from '../orders/orders.module';
import { DARAJA_OPTIONS, DarajaService, DarajaServiceOptions } from './providers/mpesa/daraja.service';
import { DarajaTokenRepository } from './providers/mpesa/daraja-token.repository';
import { PaymentsOperationsController } from './payments-operations.controller';
import { PaymentsController } from './payments.controller';
import { PaymentLifecycle } from './payment-lifecycle.service';
import { MpesaProvider } from './providers/mpesa/mpesa.provider';
import { MPESA_OUTCOME_RULES } from './providers/mpesa/mpesa.outcome-rules';
import { ProviderServicesRegistry } from './provider-services.registry';
import { PaymentsRepository } from './payments.repository';
import { PaymentsService } from './payments.service';
import { ReconcilerService } from './reconciler.service';

@Module({
  imports: [AuthModule, OrdersModule],
  // Operations first: its static /payments/review must win over PaymentsController's /payments/:id.
  controllers: [PaymentsOperationsController, PaymentsController],
  providers: [
    {
      provide: DARAJA_OPTIONS,
      inject: [APP_CONFIG, DarajaTokenRepository],
      useFactory: (config: AppConfig, tokenStore: DarajaTokenRepository): DarajaServiceOptions => {
        const m = config.mpesa;
        if (!m.baseUrl) throw new Error('M-Pesa base URL is not set (the embedded simulator did not start?)');
        return {
          defaultAccount: {
            id: 'default',
            baseUrl: m.baseUrl,
            consumerKey: m.consumerKey,
            consumerSecret: m.consumerSecret,
            shortcode: m.shortcode,
            passkey: m.passkey,
            transactionType: m.transactionType,
            tillNumber: m.tillNumber,
          },
          timeoutMs: m.httpTimeoutMs,
          tokenRefreshMarginSeconds: 300,
          callbackBaseUrl: m.callbackUrl,
          callbackSigningSecret: m.callbackSigningSecret,
          // OAuth tokens shared by all instances via Postgres (daraja.md §1.3).
          tokenStore,
        };
      },
    },
    DarajaTokenRepository,
    DarajaService,
    { provide: MpesaProvider, inject: [DarajaService], useFactory: (daraja: DarajaService) => new MpesaProvider(daraja) },
    PaymentsRepository,
    PaymentLifecycle,
    ProviderServicesRegistry,
    PaymentsService,
    ReconcilerService,
  ],
  exports: [MpesaProvider, PaymentsService, PaymentLifecycle, PaymentsRepository, ProviderServicesRegistry, DarajaService, ReconcilerService],
})
export class PaymentsModule implements OnModuleInit {
  constructor(private readonly lifecycle: PaymentLifecycle) {}

  onModuleInit(): void {
    this.lifecycle.registerOutcomeRules('mpesa', MPESA_OUTCOME_RULES);
  }
}
