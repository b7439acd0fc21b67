/**
 * Payment (intent) statuses.
 * - initiated: row written, STK push being sent
 * - pending: Daraja accepted the push; waiting for the customer
 * - unresolved: we do not know whether the push reached Daraja (timeout / ambiguous 5xx); settled by
 *   callback or STK query, never by pushing again
 * - completed | failed | cancelled | expired: terminal, never left
 * - review: something did not add up (amount/id mismatch, duplicate receipt); a person must look.
 *   Never marks the order paid.
 */
export type PaymentStatus =
  'initiated' | 'pending' | 'unresolved' | 'completed' | 'failed' | 'cancelled' | 'expired' | 'review';

/**
 * statusReason of a payment parked in review because nobody could establish its outcome; the truth
 * may still settle it, and until then (or until a manager releases it) it blocks its order.
 */
export const OUTCOME_UNKNOWN = 'OUTCOME_UNKNOWN';

/** statusReason of a review row holding money collected a second time for one push (PaymentLifecycle.recordSecondCharge). */
export const SECOND_CHARGE = 'SECOND_CHARGE';

/** Review reasons of a payment that did take the customer's money (a refund is due): it holds a receipt like a completed one. */
export const REFUND_DUE_REASONS: readonly string[] = [
  'EXCEEDS_OUTSTANDING',
  'ORDER_ALREADY_PAID',
  'PAID_AFTER_CLOSE',
  SECOND_CHARGE,
];

/** The payment took the customer's money: completed, or in review for a refund. */
export function holdsMoney(p: { status: string; statusReason: string | null }): boolean {
  return (
    p.status === 'completed' ||
    (p.status === 'review' && p.statusReason !== null && REFUND_DUE_REASONS.includes(p.statusReason))
  );
}

export const IN_FLIGHT_STATUSES: readonly PaymentStatus[] = ['initiated', 'pending', 'unresolved'];
export const TERMINAL_STATUSES: readonly PaymentStatus[] = ['completed', 'failed', 'cancelled', 'expired'];

export function isTerminal(s: string): boolean {
  return (TERMINAL_STATUSES as readonly string[]).includes(s);
}

export function isInFlight(s: string): boolean {
  return (IN_FLIGHT_STATUSES as readonly string[]).includes(s);
}

const TRANSITIONS: Record<PaymentStatus, readonly PaymentStatus[]> = {
  initiated: ['pending', 'unresolved', 'completed', 'failed', 'cancelled', 'expired', 'review'],
  pending: ['completed', 'failed', 'cancelled', 'expired', 'review', 'unresolved'],
  unresolved: ['pending', 'completed', 'failed', 'cancelled', 'expired', 'review'],
  review: [],
  completed: [],
  failed: [],
  cancelled: [],
  expired: [],
};

export function canTransition(from: string, to: PaymentStatus): boolean {
  return (TRANSITIONS[from as PaymentStatus] ?? []).includes(to);
}
