import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { safeError } from '../../../common/logging';
import type { AppConfig } from '../../../config/app-config';
import { APP_CONFIG } from '../../../config/config.module';
import { MerchantAccountsRepository } from '../../merchant-accounts.repository';
import { C2bIngestService } from './c2b-ingest.service';
import { MpesaPullService } from './mpesa-pull.service';

export interface C2bPullPassResult {
  /** registered shortcodes asked */
  shortcodes: number;
  /** transactions Pull listed (all pages, all shortcodes) */
  listed: number;
  /** of them, new rows stored and matched (the rest were already stored: left as they are) */
  stored: number;
  /** shortcodes skipped (no own M-Pesa account, another environment, not provisioned) or failed */
  skipped: number;
}

/**
 * Recovers confirmations Daraja never delivered (or we never stored): every MPESA_C2B_PULL_INTERVAL_MS,
 * for each shortcode registered for Pull Transactions, the last MPESA_C2B_PULL_LOOKBACK_SECONDS
 * (cut to Daraja's 48 hours) are pulled and each transaction goes through the confirmation's own
 * path (C2bIngestService.ingestPulled): stored under the shop's M-Pesa account (the one its C2B URLs
 * are registered for) and matched. Every instance may run it: the (account, TransID) unique row
 * makes a TransID one row whoever stores it first, and one already stored is a no-op.
 */
@Injectable()
export class C2bPullService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(C2bPullService.name);
  private timer?: NodeJS.Timeout;
  private running?: Promise<C2bPullPassResult>;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly pull: MpesaPullService,
    private readonly ingest: C2bIngestService,
    private readonly accounts: MerchantAccountsRepository,
  ) {}

  onApplicationBootstrap(): void {
    const c = this.config.mpesa.c2b.pull;
    if (!c.enabled) return;
    this.timer = setInterval(() => void this.tick(), c.intervalMs);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One pass (a pass already running in this process is joined, not doubled). Errors are logged, never thrown. */
  tick(now: Date = new Date()): Promise<C2bPullPassResult> {
    this.running ??= this.runOnce(now).finally(() => (this.running = undefined));
    return this.running;
  }

  private async runOnce(now: Date): Promise<C2bPullPassResult> {
    const result: C2bPullPassResult = { shortcodes: 0, listed: 0, stored: 0, skipped: 0 };
    const from = new Date(now.getTime() - this.config.mpesa.c2b.pull.lookbackSeconds * 1000);
    let registrations;
    try {
      registrations = await this.pull.registrations();
    } catch (err) {
      this.logger.error(
        { err: safeError(err) },
        'Pull Transactions pass could not list registrations; next pass retries',
      );
      return result;
    }
    for (const reg of registrations) {
      result.shortcodes++;
      const log = { shopId: reg.shopId, shortcode: reg.shortcode };
      try {
        // The shop's current account (C2bRegistrationService.ownAccount). Confirmations may still arrive
        // on an older row's URLs (credentials rotated): ingestPulled leaves a TransID stored there alone.
        const account = await this.accounts.findActive(reg.shopId, 'mpesa');
        if (!account || account.environment !== reg.environment) {
          result.skipped++;
          this.logger.warn(log, 'Pull Transactions: the shop has no M-Pesa account of this registration; skipped');
          continue;
        }
        const pulled = await this.pull.pullForShop(reg.shopId, from, now, now);
        if (pulled.outcome !== 'transactions') {
          result.skipped++;
          this.logger.warn({ ...log, outcome: pulled.outcome }, 'Pull Transactions: nothing to ingest');
          continue;
        }
        result.listed += pulled.transactions.length;
        for (const t of pulled.transactions) {
          try {
            if (await this.ingest.ingestPulled(account, t)) result.stored++;
          } catch (err) {
            this.logger.error(
              { ...log, receipt: t.transId, err: safeError(err) },
              'Pull Transactions: storing a pulled transaction failed; the next pass retries',
            );
          }
        }
        if (pulled.truncated)
          this.logger.warn(log, 'Pull Transactions: more pages than read; the rest waits for the next pass');
      } catch (err) {
        result.skipped++;
        this.logger.error({ ...log, err: safeError(err) }, 'Pull Transactions pass failed for a shortcode');
      }
    }
    if (result.stored) this.logger.log(result, 'Pull Transactions pass recovered missed C2B payments');
    return result;
  }
}
