import type { ErrorCode } from '../common/error-codes';
import { AppError } from '../common/errors';
import type { Payment, Refund } from '../database/schema';
import type { ResolvedAccount } from './merchant-accounts.types';

/**
 * The refund model every provider shares (payments/refunds.service.ts owns its state; each
 * provider's RefundProviderService only talks to its provider). See `refunds` in
 * database/schema.ts for what each status means.
 */
export type RefundStatus = 'requested' | 'pending' | 'unknown' | 'succeeded' | 'failed' | 'review';

/** Refunds the reconciler drives (claimed by next_check_at). */
export const OPEN_REFUND_STATUSES: readonly RefundStatus[] = ['requested', 'pending', 'unknown'];

/** Refunds that have given, or may still give, money back: they count against what is refundable. */
export const COUNTED_REFUND_STATUSES: readonly RefundStatus[] = [
  'requested',
  'pending',
  'unknown',
  'succeeded',
  'review',
];

export const FINAL_REFUND_STATUSES: readonly RefundStatus[] = ['succeeded', 'failed'];

const REFUND_TRANSITIONS: Record<RefundStatus, readonly RefundStatus[]> = {
  requested: ['pending', 'unknown', 'succeeded', 'failed', 'review'],
  pending: ['unknown', 'succeeded', 'failed', 'review'],
  unknown: ['pending', 'succeeded', 'failed', 'review'],
  // A person looks; the provider's truth (a late result, a status answer) still settles it.
  review: ['succeeded', 'failed'],
  succeeded: [],
  failed: [],
};

export function canRefundTransition(from: string, to: RefundStatus): boolean {
  return (REFUND_TRANSITIONS[from as RefundStatus] ?? []).includes(to);
}

/** statusReason of a refund the reconciler stopped asking about: a person must look (it may have paid out). */
export const REFUND_GAVE_UP = 'GAVE_UP';
/** statusReason of a refund whose provider report did not add up (another amount): a person must look. */
export const REFUND_AMOUNT_MISMATCH = 'AMOUNT_MISMATCH';

/** What a provider says about one refund (a submission's answer, a result, a status answer). */
export interface RefundReport {
  /** review: the answer needs a person (e.g. M-Pesa says "already reversed" after a resend); nothing is sent again. */
  status: 'pending' | 'succeeded' | 'failed' | 'unknown' | 'review';
  /** Our code for the outcome: ALREADY_REVERSED, UNKNOWN_RECEIPT, INITIATOR_INVALID, MISSING_ROLE, ... */
  reason?: string;
  /** The provider's own result/error code, as a string. */
  providerCode?: string;
  /** A message a manager's screen can show (never a secret, never a phone number). */
  message?: string;
  /** The provider's id of the refund (Flutterwave refund id, M-Pesa reversal receipt). */
  providerRefundId?: string;
  /** What the provider says was given back, when it says: a success for another amount goes to review. */
  amountMinor?: bigint;
  /** Merged (shallowly) into refunds.provider_data: conversation ids, status queries sent, ... */
  providerData?: Record<string, unknown>;
  /** 'pending' / 'unknown': when the reconciler should look next (seconds); default its backoff. */
  nextLookSeconds?: number;
  /** This report is a new submission of the refund to the provider (counts refunds.submissions). */
  submitted?: boolean;
}

export interface RefundContext {
  refund: Refund;
  payment: Payment;
  /** The account the payment was made with (its credentials send the refund). */
  account: ResolvedAccount;
}

/**
 * One provider's refunds (registered in RefundProvidersRegistry at module init). It builds the
 * provider's requests and reads its answers; RefundsService owns statuses, the cap, idempotency and
 * the audit trail.
 */
export interface RefundProviderService {
  readonly provider: string;
  /**
   * The provider's own limits, checked before anything is written or sent: throws a
   * RefundRefusedError saying why a refund of `amountMinor` of this payment cannot succeed (full
   * only, one refund per payment, whole shillings, no initiator configured, ...). `others` are the
   * payment's other refunds (every status).
   */
  precheck(payment: Payment, amountMinor: bigint, others: readonly Refund[], account: ResolvedAccount): void;
  /**
   * Sends the refund (a `requested` row, written and committed). A ProviderError whose outcome is
   * not_processed makes it failed; any other error leaves it unknown (the reconciler asks later).
   */
  submit(ctx: RefundContext): Promise<RefundReport>;
  /**
   * The reconciler's look at an open refund: asks the provider where it stands (M-Pesa:
   * Transaction Status, whose answer comes later; answer 'pending' with nextLookSeconds). A
   * `requested` refund (its sending was interrupted) or an `unknown` one may be sent again only
   * when the provider's own answer shows the first never happened.
   */
  look(ctx: RefundContext): Promise<RefundReport>;
}

/** 422: the provider cannot do this refund; nothing was written or sent. */
export class RefundRefusedError extends AppError {
  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(code, message, 422, details);
  }
}
