import type { Logger } from '@nestjs/common';
import { AppError } from '../common/errors';
import { safeMessage } from '../common/logging';
import type { AppConfig } from '../config/app-config';
import type { Payment } from '../database/schema';
import { isInFlight } from './payment-status';
import type { PaymentsRepository } from './payments.repository';
import { ProviderError } from './providers/provider-errors';

/**
 * What every provider's reconciler look reports, the timing rules they share, and the look's
 * skeleton (reconcileLook) each provider fills in with its own steps.
 */

/** What one reconciliation look at a payment did. */
export type ReconcileAction =
  /** a final answer from the provider was applied (or had already been) */
  | 'settled'
  /** the provider says the customer has not answered yet; looked again later */
  | 'still_pending'
  /** a hosted checkout ended unpaid (its window passed; the provider confirmed nothing was charged) */
  | 'expired'
  /** the provider never heard of it for longer than its not-found window (M-Pesa: MPESA_NOT_FOUND_FAIL_AFTER_SECONDS) */
  | 'failed_not_found'
  /** no outcome within the window / query budget: a person decides */
  | 'moved_to_review'
  /** the query failed (spike arrest, 5xx, timeout): looked again after a backoff */
  | 'provider_error'
  /** nothing to do now (another instance just queried, or the push is still in progress) */
  | 'deferred'
  /** the payment was already final */
  | 'already_final';

export interface ReconcileResult {
  action: ReconcileAction;
  /** what the provider answered, when it was asked */
  provider?: { kind: string; resultCode?: string; resultDesc?: string; errorCode?: string; message?: string };
}

/**
 * Unverified deliveries (no valid capability token: never trusted, only a reason to ask the provider)
 * are coalesced per window: for one payment, identical bodies share a row (with a count) and at
 * most UNVERIFIED_DISTINCT_BODIES different bodies get their own; ones naming no payment of ours,
 * and bodies that are not callbacks, are one row per kind. An unauthenticated sender cannot turn N
 * requests into N rows, N audit events and N STK queries, nor hide a genuine body behind a forged
 * one. Shared with the hosted providers' notifications.
 */
export const UNVERIFIED_CALLBACK_WINDOW_SECONDS = 10;

/** Seconds before the reconciler's next look after `attempt` looks: base·2^(attempt-1), capped, ±20 % jitter so instances spread out. */
export function reconcileBackoffSeconds(
  attempt: number,
  baseSeconds: number,
  maxSeconds: number,
  random: () => number = Math.random,
): number {
  const exp = Math.min(maxSeconds, baseSeconds * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.max(0, Math.round(exp * (0.8 + 0.4 * random())));
}

/** The provider-specific steps of one reconciler look (see reconcileLook). */
export interface ReconcileSteps {
  /**
   * Before asking: a result when the payment cannot or need not be asked now (nothing to ask with
   * yet, its window or query budget is over: parked in review), having scheduled what it needs.
   */
  before?(): Promise<ReconcileResult | undefined>;
  /** One ask per payment per this many seconds, across instances (shared with status reads). */
  claimIntervalSeconds: number;
  /**
   * Asks the provider and applies its answer. `nextLookSeconds`: when to look again (counted as a
   * look); none when the payment is settled for good or parked in review.
   */
  ask(backoffSeconds: number): Promise<{ result: ReconcileResult; nextLookSeconds?: number }>;
  /** After a failed ask: a result when it is time to give up into review; undefined backs off. */
  giveUp?(failure: { code: string; message: string }): Promise<ReconcileResult | undefined>;
  /** Names the ask in the log line ("reconciler: <what> failed; backing off"). */
  what: string;
}

export interface ReconcileContext {
  repo: Pick<PaymentsRepository, 'claimStatusQuery' | 'scheduleCheck'>;
  config: AppConfig['reconciler'];
  logger: Pick<Logger, 'warn'>;
}

/**
 * One reconciler look at an open payment (claimed by the caller), the same for every provider:
 * the provider's `before` (nothing to ask with yet, window or budget over) → claim the ask (one
 * per payment per interval, across instances; else look again after it) → ask → look again after
 * what the ask says, else after reconcileBackoffSeconds. A failed ask (5xx, timeout, spike arrest)
 * gives up into review when the provider says it is time, else backs off: at least the provider's
 * Retry-After. Never starts a payment again.
 */
export async function reconcileLook(
  p: Payment,
  ctx: ReconcileContext,
  steps: ReconcileSteps,
): Promise<ReconcileResult> {
  const { repo, config: rc } = ctx;
  if (!isInFlight(p.status)) return { action: 'already_final' };
  const early = await steps.before?.();
  if (early) return early;
  if (!(await repo.claimStatusQuery(p.id, steps.claimIntervalSeconds))) {
    // Someone (a status read, a notification, another instance) is asking right now; look again shortly.
    await repo.scheduleCheck(p.id, steps.claimIntervalSeconds, false);
    return { action: 'deferred' };
  }
  const backoff = reconcileBackoffSeconds(p.reconcileAttempts + 1, rc.backoffBaseSeconds, rc.backoffMaxSeconds);
  try {
    const { result, nextLookSeconds } = await steps.ask(backoff);
    if (nextLookSeconds !== undefined) await repo.scheduleCheck(p.id, nextLookSeconds, true);
    return result;
  } catch (err) {
    const code = err instanceof AppError ? err.code : 'UNKNOWN';
    const message = safeMessage(err);
    const given = await steps.giveUp?.({ code, message });
    if (given) return given;
    // Spike arrest asks us to slow down: wait at least what it says (or, when it says nothing, the
    // Retry-After we would give our own client for it).
    const retryAfter = err instanceof ProviderError ? retryAfterOf(err) : 0;
    await repo.scheduleCheck(p.id, Math.max(backoff, retryAfter), true);
    ctx.logger.warn({ paymentId: p.id, code, msg: message }, `reconciler: ${steps.what} failed; backing off`);
    return {
      action: 'provider_error',
      provider: { kind: 'error', errorCode: err instanceof ProviderError ? (err.providerCode ?? code) : code, message },
    };
  }
}

function retryAfterOf(err: ProviderError): number {
  const told = err.kind === 'rate_limited' ? Number(err.headers?.['Retry-After'] ?? 0) : (err.retryAfterSeconds ?? 0);
  return Number.isFinite(told) ? told : 0;
}
