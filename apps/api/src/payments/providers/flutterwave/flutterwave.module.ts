import { Module, OnModuleInit } from '@nestjs/common';
import { AuthModule } from '../../../auth/auth.module';
import type { AppConfig } from '../../../config/app-config';
import { APP_CONFIG } from '../../../config/config.module';
import { HOSTED_CHECKOUT_OUTCOME_RULES } from '../../outcome-rules';
import { PaymentLifecycle } from '../../payment-lifecycle.service';
import { PaymentsCoreModule } from '../../payments-core.module';
import { FlutterwaveProvider } from './flutterwave.provider';
import { FlutterwaveController } from './flutterwave.controller';
import { FLW_CHECKOUT_SESSION_MINUTES, FLW_MAX_RETRY_ATTEMPTS, FLW_PROVIDER } from './flutterwave.helpers';
import { FLUTTERWAVE_PROVIDER, FlutterwaveService } from './flutterwave.service';

/** The Flutterwave adapter for this deployment, or null when FLUTTERWAVE_ENABLED is off (the routes then answer 503). */
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
    FlutterwaveService,
  ],
})
export class FlutterwaveModule implements OnModuleInit {
  constructor(private readonly lifecycle: PaymentLifecycle) {}

  /** Also when switched off: payments taken before still receive their outcomes. */
  onModuleInit(): void {
    this.lifecycle.registerOutcomeRules(FLW_PROVIDER, HOSTED_CHECKOUT_OUTCOME_RULES);
  }
}
