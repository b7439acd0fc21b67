import { Module, OnModuleInit } from '@nestjs/common';
import { AuthModule } from '../../../auth/auth.module';
import type { AppConfig } from '../../../config/app-config';
import { APP_CONFIG } from '../../../config/config.module';
import { HOSTED_CHECKOUT_OUTCOME_RULES } from '../../outcome-rules';
import { PaymentLifecycle } from '../../payment-lifecycle.service';
import { PaymentsCoreModule } from '../../payments-core.module';
import type { PesapalProvider } from './pesapal.provider';
import { createPesapalProvider, ipnOptionsFor, PesapalIpnService } from './pesapal-ipn.service';
import { PESAPAL_IPN, PESAPAL_PROVIDER } from './pesapal.constants';
import { PesapalController, PesapalEnabledGuard } from './pesapal.controller';
import { PesapalService } from './pesapal.service';
import { ProviderSettingsRepository } from './provider-settings.repository';

/**
 * Pesapal API 3.0: POST /payments/pesapal/init, GET /payments/pesapal/status, the IPN at
 * GET|POST /payments/pesapal/callback and the browser return GET /payments/pesapal/return.
 * Switched off (PESAPAL_ENABLED=false): the adapter is not built, nothing is registered with the
 * reconciler, and every route answers 503 PROVIDER_DISABLED.
 */
@Module({
  imports: [AuthModule, PaymentsCoreModule],
  controllers: [PesapalController],
  providers: [
    {
      provide: PESAPAL_PROVIDER,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig): PesapalProvider | null => createPesapalProvider(config),
    },
    ProviderSettingsRepository,
    {
      provide: PESAPAL_IPN,
      inject: [PESAPAL_PROVIDER, ProviderSettingsRepository, APP_CONFIG],
      useFactory: (
        provider: PesapalProvider | null,
        settings: ProviderSettingsRepository,
        config: AppConfig,
      ): PesapalIpnService | null =>
        provider ? new PesapalIpnService(provider, settings, ipnOptionsFor(config)) : null,
    },
    PesapalService,
    PesapalEnabledGuard,
  ],
  exports: [PesapalService],
})
export class PesapalModule implements OnModuleInit {
  constructor(private readonly lifecycle: PaymentLifecycle) {}

  /** Also when switched off: payments taken before still receive their outcomes. */
  onModuleInit(): void {
    this.lifecycle.registerOutcomeRules('pesapal', HOSTED_CHECKOUT_OUTCOME_RULES);
  }
}
