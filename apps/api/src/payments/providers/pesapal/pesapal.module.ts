import { Module, OnModuleInit } from '@nestjs/common';
import { AuthModule } from '../../../auth/auth.module';
import type { AppConfig } from '../../../config/app-config';
import { APP_CONFIG } from '../../../config/config.module';
import { HOSTED_CHECKOUT_OUTCOME_RULES } from '../../outcome-rules';
import { PaymentLifecycle } from '../../payment-lifecycle.service';
import { MerchantAccountsService } from '../../merchant-accounts.service';
import { PaymentsCoreModule } from '../../payments-core.module';
import { PesapalAccountKind } from './pesapal.account';
import type { PesapalProvider } from './pesapal.provider';
import { createPesapalProvider, ipnOptionsFor, PesapalIpnService } from './pesapal-ipn.service';
import { PESAPAL_IPN, PESAPAL_PROVIDER } from './pesapal.constants';
import { PesapalController, PesapalEnabledGuard } from './pesapal.controller';
import { PesapalRefunds } from './pesapal.refunds';
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
    {
      provide: PesapalAccountKind,
      inject: [APP_CONFIG, ProviderSettingsRepository, PESAPAL_PROVIDER, PESAPAL_IPN],
      useFactory: (
        config: AppConfig,
        settings: ProviderSettingsRepository,
        provider: PesapalProvider | null,
        ipn: PesapalIpnService | null,
      ) => new PesapalAccountKind(config, settings, provider && ipn ? { provider, ipn } : null),
    },
    PesapalService,
    PesapalRefunds,
    PesapalEnabledGuard,
  ],
  exports: [PesapalService],
})
export class PesapalModule implements OnModuleInit {
  constructor(
    private readonly lifecycle: PaymentLifecycle,
    private readonly accounts: MerchantAccountsService,
    private readonly kind: PesapalAccountKind,
  ) {}

  /**
   * Also when switched off: payments taken before still receive their outcomes, and managers can
   * set up their shops' accounts before it is switched on (payments still answer 503 until then).
   */
  onModuleInit(): void {
    this.lifecycle.registerOutcomeRules('pesapal', HOSTED_CHECKOUT_OUTCOME_RULES);
    this.accounts.registerKind(this.kind);
  }
}
