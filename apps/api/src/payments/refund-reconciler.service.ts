import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { AuthUser } from '../auth/auth.types';
import { NotFoundError } from '../common/errors';
import { safeError } from '../common/logging';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import type { Refund } from '../database/schema';
import { MerchantAccountsService } from './merchant-accounts.service';
import { PaymentsRepository } from './payments.repository';
import type { ProviderName } from './providers/payment-provider';
import { reconcileBackoffSeconds } from './reconcile';
import { RefundProvidersRegistry } from './refund-providers.registry';
import { RefundsRepository } from './refunds.repository';
import { RefundResponse, RefundsService, toRefundResponse } from './refunds.service';
import {
  canRefundTransition,
  FINAL_REFUND_STATUSES,
  OPEN_REFUND_STATUSES,
  REFUND_GAVE_UP,
  type RefundReport,
} from './refunds.types';

export interface RefundTickReport {
  refundsChecked: number;
  actions: Partial<Record<string, number>>;
}

/**
 * Drives open refunds to a final state, as the payment reconciler does payments: due refunds are
 * claimed with FOR UPDATE SKIP LOCKED and a lease (RefundsRepository.claimDue), each is looked at by
 * its provider (which never sends a refund again without proof the first never happened), the
 * answer goes through RefundsService.applyReport, failures back off, and after REFUND_MAX_LOOKS
 * looks a refund is parked in review for a person (it still counts against its payment).
 */
@Injectable()
export class RefundReconciler {
  private readonly logger = new Logger(RefundReconciler.name);

  constructor(
    private readonly repo: RefundsRepository,
    private readonly payments: PaymentsRepository,
    private readonly refunds: RefundsService,
    private readonly registry: RefundProvidersRegistry,
    private readonly accounts: MerchantAccountsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * One pass over due open refunds (claimed with SKIP LOCKED and a lease): each is looked at by its
   * provider and the answer applied; after REFUND_MAX_LOOKS looks without a final answer it goes to
   * review (a person must look: it may have paid out, so it still counts against the payment).
   */
  async reconcileDue(limit: number): Promise<RefundTickReport> {
    const rc = this.config.reconciler;
    const token = randomUUID();
    const due = await this.repo.claimDue(limit, rc.leaseSeconds, token);
    const report: RefundTickReport = { refundsChecked: 0, actions: {} };
    for (const claimed of due) {
      let action: string;
      try {
        // A fresh lease just before this refund's look (the ones before it in the batch may have been
        // slow), and the row as it is now; a claim lost meanwhile means another holder has it.
        const r = await this.repo.renewClaim(claimed.id, rc.leaseSeconds, token);
        if (!r) {
          report.actions.claim_lost = (report.actions.claim_lost ?? 0) + 1;
          continue;
        }
        action = await this.look(r);
        await this.repo.releaseClaim(r.id, token);
      } catch (err) {
        // The claim is kept: its lease runs out and another pass tries again.
        action = 'error';
        this.logger.error(
          { refundId: claimed.id, err: safeError(err) },
          'reconciling a refund failed; retried after the lease',
        );
      }
      report.actions[action] = (report.actions[action] ?? 0) + 1;
      report.refundsChecked++;
    }
    return report;
  }

  /** One look at a claimed refund. Returns what happened (for the pass's report). */
  async look(r: Refund): Promise<string> {
    const rc = this.config.reconciler;
    const provider = this.registry.get(r.provider);
    if (!provider) {
      // Switched off on this instance: leave it to one that has it.
      await this.repo.schedule(r.id, rc.leaseSeconds, false);
      return 'deferred';
    }
    if (r.reconcileAttempts >= rc.refundMaxLooks) {
      await this.toReview(
        r.id,
        REFUND_GAVE_UP,
        `No final answer from ${r.provider} after ${r.reconcileAttempts} looks: check with the provider whether the money went back, then settle it there`,
      );
      return 'moved_to_review';
    }
    const payment = await this.refunds.paymentOf(r);
    const account = await this.accounts.resolveForExisting(r.merchantAccountId, r.provider as ProviderName);
    let report: RefundReport;
    try {
      report = await provider.look({ refund: r, payment, account });
    } catch (err) {
      const backoff = reconcileBackoffSeconds(r.reconcileAttempts + 1, rc.backoffBaseSeconds, rc.backoffMaxSeconds);
      this.logger.warn(
        { refundId: r.id, err: safeError(err), backoffSeconds: backoff },
        'asking about a refund failed; backing off',
      );
      await this.repo.schedule(r.id, backoff, true);
      return 'provider_error';
    }
    const backoff = reconcileBackoffSeconds(r.reconcileAttempts + 1, rc.backoffBaseSeconds, rc.backoffMaxSeconds);
    const { refund } = await this.refunds.applyReport(
      r.id,
      { ...report, nextLookSeconds: report.nextLookSeconds ?? backoff },
      `system:reconciler`,
    );
    if ((FINAL_REFUND_STATUSES as readonly string[]).includes(refund.status)) return 'settled';
    if (refund.status === 'review') return 'moved_to_review';
    await this.repo.schedule(r.id, report.nextLookSeconds ?? backoff, true);
    return 'still_open';
  }

  /** Parks an open refund for a person (the reconciler gave up): still counted against the payment. */
  private async toReview(refundId: string, reason: string, message: string): Promise<void> {
    await this.repo.transaction(async (tx) => {
      const r = await this.repo.lock(tx, refundId);
      if (!r || !canRefundTransition(r.status, 'review')) return;
      await this.repo.update(
        r.id,
        { status: 'review', statusReason: reason, resultDesc: message, nextCheckAt: null },
        tx,
      );
      await this.payments.insertEvent(
        {
          paymentId: r.paymentId,
          type: 'refund_status_changed',
          fromStatus: r.status,
          toStatus: 'review',
          actor: 'system:reconciler',
          data: { refundId: r.id, reason },
        },
        tx,
      );
      this.logger.warn({ refundId: r.id, reason }, 'refund moved to review');
    });
  }

  /** A manager asks about one refund now (its provider's look, whatever its schedule). */
  async reconcileNow(user: AuthUser, refundId: string): Promise<{ refund: RefundResponse; action: string }> {
    const r = await this.repo.findForShop(user.shopId, refundId);
    if (!r) throw new NotFoundError('Refund', { refundId });
    if ((FINAL_REFUND_STATUSES as readonly string[]).includes(r.status))
      return { refund: toRefundResponse(r), action: 'already_final' };
    await this.payments.insertEvent({
      paymentId: r.paymentId,
      type: 'refund_reconcile_requested',
      actor: `user:${user.sub}`,
      data: { refundId: r.id, status: r.status },
    });
    // The same claim as the reconciler's: never two looks (two Transaction Status queries, two
    // resends) at once for one refund, however often the button is pressed.
    const token = randomUUID();
    const claimed = await this.repo.claimOne(
      r.id,
      [...OPEN_REFUND_STATUSES, 'review'],
      this.config.reconciler.leaseSeconds,
      token,
    );
    if (!claimed) return { refund: toRefundResponse(r), action: 'in_progress' };
    // Released once the look is recorded; a look that failed half-way keeps the claim until its lease ends.
    const action = claimed.status === 'review' ? await this.lookInReview(claimed) : await this.look(claimed);
    await this.repo.releaseClaim(r.id, token);
    return { refund: toRefundResponse((await this.repo.findById(r.id)) ?? r), action };
  }

  /** A refund in review is asked about too (its truth may settle it), never sent again. */
  private async lookInReview(r: Refund): Promise<string> {
    const provider = this.registry.get(r.provider);
    if (!provider) return 'deferred';
    const payment = await this.refunds.paymentOf(r);
    const account = await this.accounts.resolveForExisting(r.merchantAccountId, r.provider as ProviderName);
    try {
      const report = await provider.look({ refund: r, payment, account });
      // A final answer settles it; any other keeps what it adds (e.g. the id of the status query
      // whose result, arriving later, settles it) and leaves it in review.
      const { refund } = await this.refunds.applyReport(r.id, report, 'system:reconcile-now');
      return (FINAL_REFUND_STATUSES as readonly string[]).includes(refund.status) ? 'settled' : 'still_open';
    } catch (err) {
      this.logger.warn({ refundId: r.id, err: safeError(err) }, 'asking about a refund in review failed');
      return 'provider_error';
    }
  }
}
