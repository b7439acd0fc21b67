import { BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { safeError } from '../common/logging';
import type { Tx } from '../database/database';
import { callbackApplyDelay, callbackApplyQueue } from '../metrics/metrics';
import type { ApplyPrefetch } from './apply-prefetch';
import type { OutcomeReport } from './outcome-rules';
import { PaymentLifecycle } from './payment-lifecycle.service';
import { PaymentsRepository } from './payments.repository';

/** One stored, acknowledged notification to apply; `receivedAt` is when it was acknowledged (process clock, ms). */
export interface ApplyJob {
  inboxId: bigint;
  receivedAt: number;
  /** the payment it is about: a batch applies its jobs in this order, so two batches lock rows in the same order */
  paymentId: string;
  /** the outcome it reports: with it, a batch reads what applying needs for all its jobs at once (PaymentLifecycle.prefetchFor) */
  report?: OutcomeReport;
  /** applies it inside `tx` (with what the batch read ahead); the outcome is recorded on its inbox row in the same transaction */
  apply(tx: Tx, pre?: ApplyPrefetch): Promise<{ outcome: string; afterCommit?: () => void }>;
}

/**
 * Applies stored notifications after they were acknowledged, off the request path.
 *
 * The notification is durable before it is queued here (its callback_inbox row committed), so the
 * queue is only a fast path: a job dropped because the queue is full, one whose apply failed, or
 * one still queued when the process dies is replayed from its row by the reconciler
 * (RECONCILER_INBOX_RETRY_AFTER_SECONDS after it arrived). Applying is idempotent under the
 * payment's row lock, so a job and a replay of the same row never apply twice.
 *
 * Jobs queued together are applied together: up to CALLBACK_APPLY_BATCH in ONE transaction that
 * also records every outcome on its row in one statement (one commit, not one per callback), and
 * reads what applying needs (the payments locked, the receipts' holders, the order balances) for
 * the whole batch in a few statements (PaymentLifecycle.prefetchFor) instead of per job, and
 * writes the plain outcomes (payments, their events, the orders they pay) in three. When
 * the queue is short a batch is one job, so nothing waits for others to arrive. A batch that fails
 * is retried one job per transaction, so one bad callback never holds back the others. At most
 * CALLBACK_APPLY_CONCURRENCY batches run at once, leaving the rest of the pool to the requests;
 * the queue is bounded by CALLBACK_APPLY_QUEUE_MAX.
 */
@Injectable()
export class CallbackApplier implements BeforeApplicationShutdown {
  private readonly logger = new Logger(CallbackApplier.name);
  private readonly queue: ApplyJob[] = [];
  private head = 0;
  private running = 0;
  private closed = false;
  private waiters: (() => void)[] = [];
  private readonly concurrency: number;
  private readonly max: number;
  private readonly batchMax: number;

  constructor(
    private readonly repo: PaymentsRepository,
    private readonly lifecycle: PaymentLifecycle,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.concurrency = config.callbackApply.concurrency;
    this.max = config.callbackApply.queueMax;
    this.batchMax = config.callbackApply.batch;
  }

  /** Queues a job; false when it was not taken (full, or shutting down): the reconciler replays its row. */
  enqueue(job: ApplyJob): boolean {
    if (this.closed || this.queue.length - this.head >= this.max) {
      callbackApplyQueue.inc({ result: 'left_to_reconciler' });
      return false;
    }
    this.queue.push(job);
    callbackApplyQueue.inc({ result: 'queued' });
    this.pump();
    return true;
  }

  /** Jobs queued or running (the readiness and metrics view). */
  get backlog(): number {
    return this.queue.length - this.head + this.running;
  }

  private pump(): void {
    while (this.running < this.concurrency && this.head < this.queue.length) {
      const batch = this.queue.slice(this.head, this.head + this.batchMax);
      this.head += batch.length;
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      this.running += batch.length;
      void this.execute(batch);
    }
  }

  private async execute(batch: ApplyJob[]): Promise<void> {
    try {
      if (batch.length > 1) {
        try {
          await this.applyTogether([...batch].sort((a, b) => (a.paymentId < b.paymentId ? -1 : 1)));
          return;
        } catch (err) {
          // e.g. a deadlock with a request applying to one of these payments: one job at a time.
          this.logger.warn(
            { err: safeError(err), jobs: batch.length },
            'applying stored callbacks together failed; applying them one at a time',
          );
        }
      }
      for (const job of batch) {
        try {
          await this.applyTogether([job]);
        } catch (err) {
          // Stored and acknowledged: the reconciler replays the row.
          this.logger.error(
            { err: safeError(err), inboxId: job.inboxId.toString() },
            'applying a stored callback failed; the reconciler will replay it',
          );
        }
      }
    } finally {
      this.running -= batch.length;
      this.pump();
      if (this.backlog === 0) for (const w of this.waiters.splice(0)) w();
    }
  }

  private async applyTogether(jobs: ApplyJob[]): Promise<void> {
    const after: (() => void)[] = [];
    const applied: ApplyJob[] = [];
    await this.repo.transaction(async (tx) => {
      applied.length = 0;
      after.length = 0;
      const outcomes: { id: bigint; outcome: string }[] = [];
      // A row the reconciler replayed meanwhile (it was due, or left to it) is not applied again.
      const open = await this.repo.lockUnfinishedCallbacksIn(
        tx,
        jobs.map((j) => j.inboxId),
      );
      for (const job of jobs) if (open.has(job.inboxId.toString())) applied.push(job);
      // Two or more: what applying reads (payments, receipts, order balances) in a few statements for all.
      const reported = applied.flatMap((j) => (j.report ? [{ paymentId: j.paymentId, report: j.report }] : []));
      const pre = reported.length > 1 ? await this.lifecycle.prefetchFor(tx, reported) : undefined;
      for (const job of applied) {
        const r = await job.apply(tx, pre);
        outcomes.push({ id: job.inboxId, outcome: r.outcome });
        if (r.afterCommit) after.push(r.afterCommit);
      }
      // The batch's plain outcomes were deferred: written now, in a few statements for all.
      await pre?.flush();
      await this.repo.finishCallbacksIn(tx, outcomes);
    });
    const now = Date.now();
    for (const job of applied) callbackApplyDelay.observe((now - job.receivedAt) / 1000);
    for (const f of after) f();
  }

  /** Resolves when nothing is queued or running (tests; shutdown). */
  drained(): Promise<void> {
    if (this.backlog === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /**
   * Before the database closes: stops taking jobs and lets the queued ones finish (bounded: what is
   * left is replayed from the inbox).
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.closed = true;
    if (this.backlog === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.drained(),
      new Promise<void>((r) => {
        timer = setTimeout(r, 5000);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
    if (this.backlog > 0)
      this.logger.warn(
        { backlog: this.backlog },
        'shutting down with stored callbacks not yet applied; the reconciler replays them',
      );
  }
}
