import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { safeError } from '../common/logging';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { PaymentsRepository } from './payments.repository';
import { PaymentOperationsService } from './payment-operations.service';
import type { ReconcileAction } from './reconcile';
import { reconcilerActions } from '../metrics/metrics';
import { RefundReconciler } from './refund-reconciler.service';

export interface ReconcileTickReport {
  callbacksReplayed: number;
  /** old unverified inbox rows deleted by the retention step */
  callbacksDeleted: number;
  paymentsChecked: number;
  actions: Partial<Record<ReconcileAction, number>>;
  /** open refunds looked at (RefundReconciler.reconcileDue) */
  refundsChecked: number;
  refundActions: Partial<Record<string, number>>;
}

const INTERVAL_NAME = 'payments-reconciler';
/** Payments of one batch looked at concurrently (each is at most one STK query). */
const CONCURRENCY = 4;
/** Old inbox rows deleted per pass per instance (one statement; instances skip each other's rows). */
const RETENTION_BATCH = 500;

/**
 * Outcomes of unverified inbox rows after which nothing changed (no payment, no order): only
 * these are deleted by the retention step, and only on unverified rows. A row whose confirmation
 * changed a payment (applied, review, reversal_recorded, linked, ...), one a person must look at
 * (gave_up) and one whose outcome is not listed here stay.
 */
export const UNCHANGED_INBOX_OUTCOMES = [
  // any provider: names no payment of ours / not a notification / refused
  'unknown_payment',
  'invalid_shape',
  'mismatch_ignored',
  'rejected_unverified',
  // M-Pesa unverified callbacks, after their confirming STK query
  'unverified_unknown_payment',
  'unverified_duplicate',
  'unverified_ignored',
  'unverified_mismatch_ignored',
  'unverified_query_pending',
  'unverified_query_not_found',
  'unverified_query_throttled',
  'unverified_answered',
  // Pesapal IPNs (never signed), after GetTransactionStatus or without it
  'pending',
  'duplicate',
  'ignored',
  'answered',
  'final',
] as const;

/**
 * Drives every open payment to a final state and finishes stored callbacks whose processing was
 * interrupted. Every instance runs it on an interval (@nestjs/schedule); the work itself is
 * claimed in Postgres with FOR UPDATE SKIP LOCKED and a lease (PaymentsRepository.claimDue*),
 * so instances share the load, never query the same payment at once, and a crashed instance's
 * claims pass to the others when the lease ends. No state lives in this process.
 */
@Injectable()
export class ReconcilerService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(ReconcilerService.name);
  private running?: Promise<ReconcileTickReport>;
  private stopped = false;

  constructor(
    private readonly repo: PaymentsRepository,
    private readonly payments: PaymentOperationsService,
    private readonly refunds: RefundReconciler,
    private readonly scheduler: SchedulerRegistry,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.config.reconciler.enabled) return;
    const timer = setInterval(() => void this.tick(), this.config.reconciler.intervalMs);
    timer.unref();
    this.scheduler.addInterval(INTERVAL_NAME, timer);
  }

  /** One pass (a pass already running is joined, not doubled). Errors are logged, never thrown. */
  tick(): Promise<ReconcileTickReport> {
    if (this.running) return this.running;
    this.running = this.runOnce().finally(() => (this.running = undefined));
    return this.running;
  }

  private async runOnce(): Promise<ReconcileTickReport> {
    const rc = this.config.reconciler;
    const report: ReconcileTickReport = {
      callbacksReplayed: 0,
      callbacksDeleted: 0,
      paymentsChecked: 0,
      actions: {},
      refundsChecked: 0,
      refundActions: {},
    };
    if (this.stopped) return report;
    try {
      // Stored callbacks first: they may settle payments without a query.
      const rows = await this.repo.claimUnprocessedCallbacks(rc.batchSize, rc.leaseSeconds, rc.inboxRetryAfterSeconds);
      for (const row of rows) {
        try {
          if ((await this.payments.replayStoredNotification(row)) !== 'deferred') {
            report.callbacksReplayed++;
            reconcilerActions.inc({ action: 'callback_replayed' });
          }
        } catch (err) {
          this.logger.error(
            { err: safeError(err), inboxId: row.id.toString(), attempts: row.attempts },
            'replaying a stored callback failed; will retry after the lease',
          );
        }
      }
      if (this.stopped) return report;
      const due = await this.repo.claimDuePayments(rc.batchSize, rc.leaseSeconds, rc.pendingGraceSeconds);
      let next = 0;
      const worker = async () => {
        while (next < due.length && !this.stopped) {
          const p = due[next++];
          try {
            const r = await this.payments.reconcile(p);
            report.actions[r.action] = (report.actions[r.action] ?? 0) + 1;
            reconcilerActions.inc({ action: r.action });
          } catch (err) {
            // The claim's lease runs out and another pass (here or elsewhere) tries again.
            this.logger.error({ err: safeError(err), paymentId: p.id }, 'reconciling a payment failed');
          }
          report.paymentsChecked++;
        }
      };
      await Promise.all(Array.from({ length: Math.min(CONCURRENCY, due.length) }, worker));
      if (!this.stopped) await this.reconcileRefunds(report);
      if (!this.stopped) report.callbacksDeleted = await this.deleteOldCallbacks();
      if (report.paymentsChecked || report.callbacksReplayed || report.callbacksDeleted || report.refundsChecked)
        this.logger.log({ ...report }, 'reconciler pass');
    } catch (err) {
      this.logger.error({ err: safeError(err) }, 'reconciler pass failed');
    }
    return report;
  }

  /** Open refunds after payments: a refund's look may need its payment settled first. Errors never stop the pass. */
  private async reconcileRefunds(report: ReconcileTickReport): Promise<void> {
    try {
      const r = await this.refunds.reconcileDue(this.config.reconciler.batchSize);
      report.refundsChecked = r.refundsChecked;
      report.refundActions = r.actions;
    } catch (err) {
      this.logger.error({ err: safeError(err) }, 'reconciling refunds failed; the next pass tries again');
    }
  }

  /** Retention: one batch of processed unverified rows that changed nothing, older than CALLBACK_INBOX_RETENTION_DAYS. */
  private async deleteOldCallbacks(): Promise<number> {
    try {
      return await this.repo.deleteStaleUnverifiedCallbacks(
        this.config.reconciler.inboxRetentionDays,
        UNCHANGED_INBOX_OUTCOMES,
        RETENTION_BATCH,
      );
    } catch (err) {
      this.logger.error({ err: safeError(err) }, 'deleting old callback inbox rows failed; the next pass tries again');
      return 0;
    }
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.scheduler.doesExist('interval', INTERVAL_NAME)) this.scheduler.deleteInterval(INTERVAL_NAME);
    await this.running;
  }
}
