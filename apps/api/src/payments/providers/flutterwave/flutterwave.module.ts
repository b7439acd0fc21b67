import { Module, OnModuleInit } from '@nestjs/common';
import { AuthModule } from '../../../auth/auth.module';
import type { AppConfig } from '../../../config/app-config';
import { APP_CONFIG } from '../../../config/config.module';
import { HOSTED_CHECKOUT_OUTCOME_RULES } from '../../outcome-rules';
import { PaymentLifecycle } from '../../payment-lifecycle.service';
import { PaymentsCoreModule } from '../../payments-core.module';
import { MerchantAccountsService } from '../../merchant-accounts.service';
import { FlutterwaveAccountKind } from './flutterwave.account';
import { FlutterwaveProvider } from './flutterwave.provider';
import { FlutterwaveController } from './flutterwave.controller';
import { FLW_CHECKOUT_SESSION_MINUTES, FLW_MAX_RETRY_ATTEMPTS, FLW_PROVIDER } from './flutterwave.helpers';
import { FLUTTERWAVE_PROVIDER } from './flutterwave.constants';
import { FlutterwaveRefunds } from './flutterwave.refunds';
import { FlutterwaveService } from './flutterwave.service';

/**
 * The adapter of this deployment's own (platform) account, or null when FLUTTERWAVE_ENABLED is off
 * (the routes then answer 503). Shops' own accounts get theirs from FlutterwaveAccountKind.adapterFor.
 */
export function createFlutterwaveProvider(config: AppConfig): FlutterwaveProvider | null {
  const f = config.flutterwave;
  if (!f.enabled) return null;
  if (!f.baseUrl)
    throw new Error(
      'Flutterwave is enabled but has no base URL (set FLUTTERWAVE_BASE_URL, or FLUTTERWAVE_ENV; the embedded simulator did not start?)',
    );
  return new FlutterwaveProvider({
    baseUrl: f.baseUrl,
    secretKey: f.secretKey,
    secretHash: f.secretHash,
    timeoutMs: f.timeoutMs,
    currencies: ['KES'],
    allowFractionalAmounts: f.allowFractionalAmounts,
    sessionDurationMinutes: FLW_CHECKOUT_SESSION_MINUTES,
    maxRetryAttempts: FLW_MAX_RETRY_ATTEMPTS,
  });
}

@Module({
  imports: [PaymentsCoreModule, AuthModule],
  controllers: [FlutterwaveController],
  providers: [
    { provide: FLUTTERWAVE_PROVIDER, inject: [APP_CONFIG], useFactory: createFlutterwaveProvider },
    {
      provide: FlutterwaveAccountKind,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => new FlutterwaveAccountKind(config),
    },
    FlutterwaveService,
    FlutterwaveRefunds,
  ],
})
export class FlutterwaveModule implements OnModuleInit {
  constructor(
    private readonly lifecycle: PaymentLifecycle,
    private readonly accounts: MerchantAccountsService,
    private readonly kind: FlutterwaveAccountKind,
  ) {}

  /**
   * Also when switched off: payments taken before still receive their outcomes, and managers can
   * set up their shops' accounts before it is switched on (payments still answer 503 until then).
   */
  onModuleInit(): void {
    this.lifecycle.registerOutcomeRules(FLW_PROVIDER, HOSTED_CHECKOUT_OUTCOME_RULES);
    this.accounts.registerKind(this.kind);
  }
}
