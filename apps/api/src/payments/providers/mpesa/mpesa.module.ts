import { Inject, Logger, Module, OnModuleInit } from '@nestjs/common';
import type { AppConfig } from '../../../config/app-config';
import { APP_CONFIG } from '../../../config/config.module';
import { DARAJA_OPTIONS, DarajaService, DarajaServiceOptions } from './daraja.service';
import { darajaOptionsFor } from './daraja-options';
import { DarajaTokenRepository } from './daraja-token.repository';
import { PaymentLifecycle } from '../../payment-lifecycle.service';
import { PaymentsCoreModule } from '../../payments-core.module';
import { MPESA_OUTCOME_RULES } from './mpesa.outcome-rules';
import { MpesaProvider } from './mpesa.provider';
import { MpesaAccountKind } from './mpesa.account';
import { MerchantAccountsService } from '../../merchant-accounts.service';
import { MerchantAccountsRepository } from '../../merchant-accounts.repository';
import { PaymentsRepository } from '../../payments.repository';
import { RefundProvidersRegistry } from '../../refund-providers.registry';
import { RefundsService } from '../../refunds.service';
import { MpesaRefundService } from './mpesa.refunds';
import { MpesaResultsController } from './mpesa-results.controller';
import { MpesaResultsService } from './mpesa-results.service';
import { MpesaReceiptCheck } from './mpesa-receipt-check';
import { MpesaReceiptController } from './mpesa-receipt.controller';
import { AuthModule } from '../../../auth/auth.module';
import { OrdersModule } from '../../../orders/orders.module';
import { ORDERS_PORT, type OrdersPort } from '../../../orders/orders.port';
import { MpesaPullController, MpesaQrController } from './mpesa-qr.controller';
import { MpesaPullNoticeController } from './mpesa-pull-notice.controller';
import { MpesaPullRepository } from './mpesa-pull.repository';
import { MpesaPullService } from './mpesa-pull.service';
import { MpesaQrService } from './mpesa-qr.service';
import { C2bFeedController, C2bNotificationsController, C2bRegistrationController } from './c2b.controller';
import { C2bIngestService } from './c2b-ingest.service';
import { C2bConfirmationLane } from './c2b-confirmation-lane';
import { C2bMatching } from './c2b-matching.service';
import { C2bRegistrationService } from './c2b-registration.service';
import { C2bPullService } from './c2b-pull.service';
import { C2bRetryService } from './c2b-retry.service';
import { C2bRepository } from './c2b.repository';

/** The Daraja client for this deployment (credentials from config, OAuth tokens shared through Postgres) and the M-Pesa adapter over it. */
@Module({
  imports: [AuthModule, PaymentsCoreModule, OrdersModule],
  controllers: [
    MpesaResultsController,
    MpesaReceiptController,
    MpesaQrController,
    MpesaPullController,
    MpesaPullNoticeController,
    C2bNotificationsController,
    C2bFeedController,
    C2bRegistrationController,
  ],
  providers: [
    C2bRepository,
    C2bMatching,
    C2bIngestService,
    C2bConfirmationLane,
    C2bRegistrationService,
    C2bRetryService,
    C2bPullService,
    {
      provide: DARAJA_OPTIONS,
      inject: [APP_CONFIG, DarajaTokenRepository],
      useFactory: (config: AppConfig, tokenStore: DarajaTokenRepository): DarajaServiceOptions =>
        darajaOptionsFor(config, tokenStore),
    },
    DarajaTokenRepository,
    DarajaService,
    MpesaPullRepository,
    {
      provide: MpesaQrService,
      inject: [
        APP_CONFIG,
        ORDERS_PORT,
        MerchantAccountsService,
        DarajaService,
        MpesaAccountKind,
        PaymentsRepository,
        C2bRepository,
        MerchantAccountsRepository,
      ],
      useFactory: (
        config: AppConfig,
        orders: OrdersPort,
        accounts: MerchantAccountsService,
        daraja: DarajaService,
        kind: MpesaAccountKind,
        payments: PaymentsRepository,
        c2b: C2bRepository,
        accountRows: MerchantAccountsRepository,
      ) =>
        new MpesaQrService(
          orders,
          accounts,
          daraja,
          (a) => kind.toDaraja(a),
          { merchantName: config.mpesa.qrMerchantName, size: config.mpesa.qrSize },
          (shopId, orderId) => payments.findBlockingForOrder(shopId, orderId),
          // The URLs in force for the shortcode are the newest registration's (Safaricom keeps one set
          // per shortcode): the QR's payment reaches this shop if that one was made by any of its
          // account rows (registered before its credentials were rotated, too), not another shop's.
          async (accountId) => {
            const row = accountId === null ? null : await accountRows.findById(accountId);
            const shortcode = (row?.settings as Record<string, string> | undefined)?.shortcode;
            if (!row || !shortcode) return false;
            return (await c2b.inForceFor(shortcode, row.environment, row.shopId))?.shopId === row.shopId;
          },
        ),
    },
    {
      provide: MpesaPullService,
      inject: [
        APP_CONFIG,
        MpesaPullRepository,
        MerchantAccountsService,
        DarajaService,
        MpesaAccountKind,
        PaymentsRepository,
      ],
      useFactory: (
        config: AppConfig,
        repo: MpesaPullRepository,
        accounts: MerchantAccountsService,
        daraja: DarajaService,
        kind: MpesaAccountKind,
        inbox: PaymentsRepository,
      ) =>
        new MpesaPullService(
          repo,
          accounts,
          daraja,
          (a) => kind.toDaraja(a),
          { baseUrl: config.mpesa.callbackUrl, secret: config.mpesa.callbackSigningSecret },
          inbox,
        ),
    },
    {
      provide: MpesaProvider,
      inject: [DarajaService],
      useFactory: (daraja: DarajaService) => new MpesaProvider(daraja),
    },
    {
      provide: MpesaAccountKind,
      inject: [APP_CONFIG, DarajaService],
      useFactory: (config: AppConfig, daraja: DarajaService) => new MpesaAccountKind(config, daraja),
    },
    {
      provide: MpesaRefundService,
      inject: [APP_CONFIG, DarajaService, MpesaAccountKind],
      useFactory: (config: AppConfig, daraja: DarajaService, kind: MpesaAccountKind) =>
        new MpesaRefundService(daraja, {
          reversalWaitSeconds: config.mpesa.reversalWaitSeconds,
          toDaraja: (account) => kind.toDaraja(account),
        }),
    },
    {
      provide: MpesaReceiptCheck,
      inject: [PaymentsRepository, PaymentLifecycle, MerchantAccountsService, DarajaService, MpesaAccountKind],
      useFactory: (
        repo: PaymentsRepository,
        lifecycle: PaymentLifecycle,
        accounts: MerchantAccountsService,
        daraja: DarajaService,
        kind: MpesaAccountKind,
      ) => new MpesaReceiptCheck(repo, lifecycle, accounts, daraja, (a) => kind.toDaraja(a)),
    },
    {
      provide: MpesaResultsService,
      inject: [APP_CONFIG, PaymentsRepository, RefundsService, MpesaRefundService, MpesaReceiptCheck],
      useFactory: (
        config: AppConfig,
        repo: PaymentsRepository,
        refunds: RefundsService,
        mpesaRefunds: MpesaRefundService,
        receiptCheck: MpesaReceiptCheck,
      ) =>
        new MpesaResultsService(
          repo,
          refunds,
          mpesaRefunds,
          receiptCheck,
          config.mpesa.callbackSigningSecret,
          config.mpesa.reversalWaitSeconds,
        ),
    },
  ],
  exports: [
    DarajaService,
    MpesaProvider,
    MpesaAccountKind,
    MpesaResultsService,
    MpesaPullService,
    C2bRegistrationService,
  ],
})
export class MpesaModule implements OnModuleInit {
  constructor(
    private readonly lifecycle: PaymentLifecycle,
    private readonly accounts: MerchantAccountsService,
    private readonly kind: MpesaAccountKind,
    private readonly refundProviders: RefundProvidersRegistry,
    private readonly refunds: MpesaRefundService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** M-Pesa's receipt rules for the outcome core (see mpesa.outcome-rules.ts), its kind of merchant account and its refunds (reversals). */
  onModuleInit(): void {
    this.lifecycle.registerOutcomeRules('mpesa', MPESA_OUTCOME_RULES);
    this.accounts.registerKind(this.kind);
    this.refundProviders.register(this.refunds);
    // Payments work without it, so it does not stop the boot; say so at once rather than at the first refund.
    const m = this.config.mpesa;
    const log = new Logger('MpesaModule');
    if (!m.securityCertificate && m.env !== 'simulator')
      log.warn(
        `No M-Pesa certificate for MPESA_ENV=${m.env} (MPESA_CERT_FILE / MPESA_CERT_PEM): M-Pesa refunds and receipt checks are refused until one is set`,
      );
    else if (m.securityCertificate && !m.securityCertificate.pinned && m.env === 'production')
      log.warn(
        `The M-Pesa certificate (${m.securityCertificate.source}, SHA-256 ${m.securityCertificate.sha256}) is not pinned: set MPESA_CERT_SHA256 to the fingerprint Safaricom's portal shows`,
      );
  }
}
