/**
 * What every provider's reconciler look reports, and the timing rules they share.
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
export function reconcileBackoffSeconds(attempt: number, baseSeconds: number, maxSeconds: number, random: () => number = Math.random): number {
  const exp = Math.min(maxSeconds, baseSeconds * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.max(0, Math.round(exp * (0.8 + 0.4 * random())));
}
