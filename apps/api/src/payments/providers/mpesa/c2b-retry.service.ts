import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { safeError } from '../../../common/logging';
import type { AppConfig } from '../../../config/app-config';
import { APP_CONFIG } from '../../../config/config.module';
import { C2bMatching } from './c2b-matching.service';
import { C2bRepository } from './c2b.repository';

/** A stored confirmation is matched in its request; one left unmatched this long is matched by this pass. */
export const C2B_RETRY_AFTER_SECONDS = 30;

/**
 * Confirmations are acknowledged once stored, then matched; a process that died in between (or a
 * matching that failed) leaves the row `received`. Daraja does not send it again, so this pass,
 * on the reconciler's interval (RECONCILER_ENABLED / RECONCILER_INTERVAL_MS), matches such rows.
 * Matching is idempotent under the row's lock; each row is taken for C2B_RETRY_AFTER_SECONDS.
 */
@Injectable()
export class C2bRetryService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(C2bRetryService.name);
  private timer?: NodeJS.Timeout;
  private running?: Promise<number>;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly repo: C2bRepository,
    private readonly matching: C2bMatching,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.config.reconciler.enabled) return;
    this.timer = setInterval(() => void this.tick(), this.config.reconciler.intervalMs);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One pass: how many rows it matched. Errors are logged, never thrown. */
  tick(): Promise<number> {
    this.running ??= this.runOnce().finally(() => (this.running = undefined));
    return this.running;
  }

  private async runOnce(): Promise<number> {
    let matched = 0;
    try {
      const ids = await this.repo.takeUnmatched(this.config.reconciler.batchSize, C2B_RETRY_AFTER_SECONDS);
      for (const id of ids) {
        try {
          const status = await this.matching.match(id);
          matched++;
          this.logger.log({ c2bPaymentId: id, status }, 'unmatched C2B confirmation matched by the retry pass');
        } catch (err) {
          this.logger.error(
            { c2bPaymentId: id, err: safeError(err) },
            'matching a stored C2B confirmation failed; retried later',
          );
        }
      }
    } catch (err) {
      this.logger.error({ err: safeError(err) }, 'C2B retry pass failed; the next one tries again');
    }
    return matched;
  }
}
