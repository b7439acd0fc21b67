import { Inject, Injectable, Logger } from '@nestjs/common';
import type { AuthUser } from '../auth/auth.types';
import { AppError, NotFoundError } from '../common/errors';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import type { Payment } from '../database/schema';
import { PaymentLifecycle } from './payment-lifecycle.service';
import { isInFlight } from './payment-status';
import type { PaymentResponseDto } from './payments.dto';
import { PaymentsRepository } from './payments.repository';
import { ProviderServicesRegistry, StoredNotification } from './provider-services.registry';
import type { ReconcileResult } from './reconcile';

/** A stored callback that failed this many processing attempts is marked gave_up and logged. */
const MAX_INBOX_ATTEMPTS = 20;

/**
 * The provider-independent operations on payments of any provider: the status read by id, the
 * review list, an operator's release and reconcile-now, and the reconciler's dispatch (one look
 * at an open payment, one replay of a stored notification). Each goes to the payment's provider
 * service through ProviderServicesRegistry; a provider switched off on this instance (not
 * registered) leaves the work to an instance that has it.
 */
@Injectable()
export class PaymentOperationsService {
  private readonly logger = new Logger(PaymentOperationsService.name);

  constructor(
    private readonly repo: PaymentsRepository,
    private readonly lifecycle: PaymentLifecycle,
    private readonly registry: ProviderServicesRegistry,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** GET /payments/:id: an open payment is refreshed from its provider when due (provider trouble never fails the read). */
  async getPayment(user: AuthUser, id: string): Promise<PaymentResponseDto> {
    const p = await this.repo.findForShop(user.shopId, id);
    if (!p) throw new NotFoundError('Payment', { paymentId: id });
    return this.lifecycle.toResponse(await this.refreshIfDue(p));
  }

  private async refreshIfDue(p: Payment): Promise<Payment> {
    if (!isInFlight(p.status)) return p;
    return (await this.registry.get(p.provider)?.refreshIfDue(p)) ?? p;
  }

  async listReview(
    user: AuthUser,
    limit: number,
    cursor?: string,
  ): Promise<{ items: PaymentResponseDto[]; nextCursor: string | null }> {
    const before = cursor ? decodeCursor(cursor) : undefined;
    const rows = await this.repo.listForReview(user.shopId, limit + 1, before);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map((p) => this.lifecycle.toResponse(p)),
      nextCursor: rows.length > limit && last ? encodeCursor(last) : null,
    };
  }

  /** A manager releases the order of a payment whose outcome is unknown (see PaymentLifecycle.release). */
  async release(user: AuthUser, id: string, reason: string): Promise<PaymentResponseDto> {
    return this.lifecycle.toResponse(await this.lifecycle.release(user, id, reason.trim()));
  }

  /**
   * An operator asks to reconcile one payment now: audited, then its provider's reconcileNow
   * (e.g. M-Pesa also looks up a payment in review, settling it only when its outcome was unknown).
   */
  async reconcileNow(user: AuthUser, id: string): Promise<{ payment: PaymentResponseDto } & ReconcileResult> {
    const p = await this.repo.findForShop(user.shopId, id);
    if (!p) throw new NotFoundError('Payment', { paymentId: id });
    await this.repo.insertEvent({
      paymentId: p.id,
      type: 'reconcile_requested',
      actor: `user:${user.sub}`,
      data: { status: p.status },
    });
    const service = this.registry.get(p.provider);
    const result = service ? await service.reconcileNow(p) : await this.reconcile(p);
    const fresh = (await this.repo.findById(p.id)) ?? p;
    return { payment: this.lifecycle.toResponse(fresh), ...result };
  }

  /**
   * One reconciler look at an open payment (claimed by the caller), by its provider. Settles it
   * when it can; otherwise the provider schedules the next look, or parks it in review. Never
   * starts a payment again.
   */
  async reconcile(p: Payment): Promise<ReconcileResult> {
    if (!isInFlight(p.status)) return { action: 'already_final' };
    const service = this.registry.get(p.provider);
    if (service) return service.reconcile(p);
    // The provider is switched off on this instance: leave the payment to an instance that has it.
    await this.repo.scheduleCheck(p.id, this.config.reconciler.leaseSeconds, false);
    return { action: 'deferred' };
  }

  /**
   * Processes a stored notification again (its first processing never finished), by its
   * provider; one that failed MAX_INBOX_ATTEMPTS times is given up (a person must look).
   */
  async replayStoredNotification(row: StoredNotification): Promise<string> {
    const service = this.registry.get(row.provider);
    if (!service) {
      // Provider switched off here: another instance that has it picks the row up after the lease.
      // This claim tried nothing, so it must not count towards the give-up.
      await this.repo.uncountCallbackAttempt(row.id);
      return 'deferred';
    }
    if (row.attempts > MAX_INBOX_ATTEMPTS) {
      this.logger.error(
        { inboxId: row.id.toString(), attempts: row.attempts },
        'stored callback could not be processed; giving up (a person must look)',
      );
      await this.repo.markCallbackProcessed(row.id, 'gave_up');
      return 'gave_up';
    }
    return service.replayStoredNotification(row);
  }
}

export function encodeCursor(p: Payment): string {
  return Buffer.from(`${p.createdAt.toISOString()}|${p.id}`).toString('base64url');
}

const CURSOR_TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const CURSOR_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Payments are not older than this; a cursor outside [this, year 9999] never came from encodeCursor. */
const CURSOR_EARLIEST_MS = Date.UTC(2000, 0, 1);

/**
 * Only what encodeCursor writes: `<toISOString() of a 4-digit year ≥ 2000>|<uuid>`, round-tripping
 * exactly. Anything else (year +275760 or 0, which Postgres refuses with a 500, an offset instead of
 * Z, Feb 30, a non-UUID id) is a 400 before it reaches SQL.
 */
export function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  const invalid = () => new AppError('INVALID_CURSOR', 'cursor is not a value this endpoint returned', 400);
  const parts = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  if (parts.length !== 2) throw invalid();
  const [iso, id] = parts as [string, string];
  if (!CURSOR_TIME_RE.test(iso) || !CURSOR_ID_RE.test(id)) throw invalid();
  const createdAt = new Date(iso);
  if (Number.isNaN(createdAt.getTime()) || createdAt.toISOString() !== iso || createdAt.getTime() < CURSOR_EARLIEST_MS)
    throw invalid();
  return { createdAt, id };
}
