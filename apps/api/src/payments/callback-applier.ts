import { BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { safeError } from '../common/logging';
import { callbackApplyDelay, callbackApplyQueue } from '../metrics/metrics';

/** One stored, acknowledged notification to apply; `receivedAt` is when it was acknowledged (process clock, ms). */
export interface ApplyJob {
  inboxId: bigint;
  receivedAt: number;
  run(): Promise<void>;
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
 * At most CALLBACK_APPLY_CONCURRENCY jobs run at once, leaving the rest of the pool to the
 * requests; the queue is bounded by CALLBACK_APPLY_QUEUE_MAX.
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

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.concurrency = config.callbackApply.concurrency;
    this.max = config.callbackApply.queueMax;
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
      const job = this.queue[this.head++];
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      this.running++;
      void this.execute(job);
    }
  }

  private async execute(job: ApplyJob): Promise<void> {
    try {
      await job.run();
      callbackApplyDelay.observe((Date.now() - job.receivedAt) / 1000);
    } catch (err) {
      // Stored and acknowledged: the reconciler replays the row.
      this.logger.error(
        { err: safeError(err), inboxId: job.inboxId.toString() },
        'applying a stored callback failed; the reconciler will replay it',
      );
    } finally {
      this.running--;
      this.pump();
      if (this.backlog === 0) for (const w of this.waiters.splice(0)) w();
    }
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
