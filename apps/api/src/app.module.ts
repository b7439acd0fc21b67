import { DynamicModule, Module } from '@nestjs/common';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { ScheduleModule } from '@nestjs/schedule';
import { LoggerModule } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import { AuthModule } from './auth/auth.module';
import { loggerParams } from './common/logging';
import type { AppConfig } from './config/app-config';
import { AppConfigModule } from './config/config.module';
import type { DatabaseHandle } from './database/database';
import { DatabaseModule } from './database/database.module';
import { HealthController } from './health/health.controller';
import { ReadinessService } from './health/readiness.service';
import { MetricsModule } from './metrics/metrics.module';
import { OrdersModule } from './orders/orders.module';
import { MerchantAccountsModule } from './payments/merchant-accounts.module';
import { PaymentsModule } from './payments/payments.module';
import { FlutterwaveModule } from './payments/providers/flutterwave/flutterwave.module';
import { PesapalModule } from './payments/providers/pesapal/pesapal.module';
import { RateLimitModule } from './rate-limit/rate-limit.module';
import { ReconciliationModule } from './reconciliation/reconciliation.module';

export interface AppModuleOptions {
  config: AppConfig;
  database: DatabaseHandle;
  /** close the database when the app shuts down (true for the real server) */
  closeDatabaseOnShutdown: boolean;
  /** where the JSON logs go (default stdout) */
  logDestination?: DestinationStream;
}

@Module({})
export class AppModule {
  static forRoot(options: AppModuleOptions): DynamicModule {
    return {
      module: AppModule,
      imports: [
        AppConfigModule.forRoot(options.config),
        LoggerModule.forRoot(loggerParams(options.config, options.logDestination)),
        DatabaseModule.forRoot(options.database, { closeOnShutdown: options.closeDatabaseOnShutdown }),
        EventEmitterModule.forRoot(),
        ScheduleModule.forRoot(),
        AuthModule,
        RateLimitModule,
        OrdersModule,
        PaymentsModule,
        MerchantAccountsModule,
        FlutterwaveModule,
        PesapalModule,
        ReconciliationModule,
        MetricsModule,
      ],
      controllers: [HealthController],
      providers: [ReadinessService],
    };
  }
}
