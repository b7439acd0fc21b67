import { Logger } from '@nestjs/common';
import { safeError } from '../../../common/logging';
import type { Refund } from '../../../database/schema';
import type { StoredNotification } from '../../provider-services.registry';
import { PaymentsRepository } from '../../payments.repository';
import { UNVERIFIED_CALLBACK_WINDOW_SECONDS } from '../../reconcile';
import { RefundsService } from '../../refunds.service';
import type { RefundReport } from '../../refunds.types';
import { CallbackScope, verifyScopedCallbackToken } from './callback-token';
import {
  DarajaResult,
  parseDarajaResult,
  parseQueueTimeout,
  reversalResultReport,
  statusFacts,
} from './daraja-results';
import { CallbackShapeError } from './mpesa.errors';
import { MpesaReceiptCheck } from './mpesa-receipt-check';
import { mpesaRefundData, MpesaRefundService, refundStatusReport } from './mpesa.refunds';

/** callback_inbox.kind of the Result API bodies this service handles (urlPaymentId = the refund id; for payment_status_result the payment id). */
export type MpesaResultKind = 'reversal_result' | 'reversal_timeout' | 'status_result' | 'payment_status_result';

export const MPESA_RESULT_KINDS: readonly MpesaResultKind[] = [
  'reversal_result',
  'reversal_timeout',
  'status_result',
  'payment_status_result',
];

const SCOPE_OF: Record<MpesaResultKind, CallbackScope> = {
  reversal_result: 'refund-result',
  reversal_timeout: 'refund-timeout',
  status_result: 'refund-status',
  payment_status_result: 'payment-status',
};

export interface ResultDelivery {
  kind: MpesaResultKind;
  /** The refund id from the URL (a payment's, for payment_status_result). */
  id: string;
  token: string;
  body: unknown;
  rawBody: string;
  sourceIp?: string;
}

export const RESULT_ACK = { ResultCode: 0, ResultDesc: 'Accepted' } as const;

/**
 * A result naming ids the refund does not hold yet may have overtaken the storing of them (Daraja
 * answered the request, its Result came before our report of that answer was committed): it is kept
 * for the reconciler to try again after this long, up to MISMATCH_MAX_ATTEMPTS, then recorded as a mismatch.
 */
const MISMATCH_RETRY_SECONDS = 15;
const MISMATCH_MAX_ATTEMPTS = 3;

const ACTOR: Record<MpesaResultKind, string> = {
  reversal_result: 'daraja:reversal_result',
  reversal_timeout: 'daraja:reversal_timeout',
  status_result: 'daraja:status_result',
  payment_status_result: 'daraja:status_result',
};

/**
 * Daraja's Results for refunds (reversal result, queue timeout, Transaction Status result): stored
 * in callback_inbox before they are acknowledged, applied once through RefundsService.applyReport
 * (under the refund's row lock, only from an open status), the row marked with what happened. A
 * delivery on a URL whose token does not verify is stored (coalesced per window) and never applied.
 */
export class MpesaResultsService {
  private readonly logger = new Logger(MpesaResultsService.name);

  constructor(
    private readonly repo: PaymentsRepository,
    private readonly refunds: RefundsService,
    private readonly mpesaRefunds: MpesaRefundService,
    private readonly receiptCheck: MpesaReceiptCheck,
    private readonly signingSecret: string,
    private readonly reversalWaitSeconds: number,
  ) {}

  /** Stores, acknowledges, applies. Throws CallbackShapeError (400) for a body that is not one, after storing it. */
  async receive(d: ResultDelivery): Promise<typeof RESULT_ACK> {
    const verified = verifyScopedCallbackToken(this.signingSecret, SCOPE_OF[d.kind], d.id, d.token);
    const urlPaymentId = /^[\x21-\x7e]{1,64}$/.test(d.id) ? d.id : null;
    const row = {
      provider: 'mpesa',
      kind: d.kind,
      urlPaymentId,
      sourceIp: d.sourceIp ?? null,
      rawBody: d.rawBody,
      attempts: 1,
    };
    let shapeError: CallbackShapeError | undefined;
    try {
      this.parse(d.kind, d.body);
    } catch (err) {
      if (!(err instanceof CallbackShapeError)) throw err;
      shapeError = err;
    }
    if (!verified || shapeError) {
      // Never applied: one row per window for all of a kind (an unauthenticated flood adds a bounded number of rows).
      const outcome = shapeError ? 'invalid_shape' : 'rejected_unverified';
      const stored = await this.repo.storeCoalescedCallback(
        { ...row, verified, processedAt: new Date(), outcome },
        { group: `mpesa|kind:${d.kind}:${outcome}`, windowSeconds: UNVERIFIED_CALLBACK_WINDOW_SECONDS },
      );
      if (stored.first)
        this.logger.warn(
          { inboxId: stored.id.toString(), kind: d.kind, urlPaymentId },
          verified
            ? 'M-Pesa result with an unreadable body'
            : 'M-Pesa result on a URL whose token does not verify: ignored',
        );
      if (shapeError) throw shapeError;
      return RESULT_ACK;
    }
    const inboxId = await this.repo.insertCallback({ ...row, verified: true });
    try {
      const outcome = await this.process(d.kind, d.id, d.body);
      if (outcome === 'mismatch') await this.repo.deferCallback(inboxId, MISMATCH_RETRY_SECONDS);
      else await this.repo.markCallbackProcessed(inboxId, outcome);
    } catch (err) {
      // Stored, not processed: acknowledged anyway (it is durable); the reconciler replays it.
      this.logger.error(
        { err: safeError(err), inboxId: inboxId.toString(), kind: d.kind, refundId: d.id },
        'M-Pesa result stored but processing failed',
      );
    }
    return RESULT_ACK;
  }

  /** The reconciler's replay of a stored row whose processing never finished (idempotent: applyReport applies once). */
  async replay(row: StoredNotification): Promise<string> {
    const kind = row.kind as MpesaResultKind;
    if (!MPESA_RESULT_KINDS.includes(kind)) {
      await this.repo.markCallbackProcessed(row.id, 'unknown_kind');
      return 'unknown_kind';
    }
    let outcome: string;
    if (!row.verified || !row.urlPaymentId) outcome = 'rejected_unverified';
    else {
      let body: unknown;
      try {
        body = JSON.parse(row.rawBody);
        this.parse(kind, body);
      } catch {
        await this.repo.markCallbackProcessed(row.id, 'invalid_shape');
        return 'invalid_shape';
      }
      outcome = await this.process(kind, row.urlPaymentId, body);
      if (outcome === 'mismatch' && row.attempts < MISMATCH_MAX_ATTEMPTS) {
        await this.repo.deferCallback(row.id, MISMATCH_RETRY_SECONDS);
        return 'deferred';
      }
    }
    await this.repo.markCallbackProcessed(row.id, outcome);
    return outcome;
  }

  private parse(kind: MpesaResultKind, body: unknown): DarajaResult | undefined {
    if (kind === 'reversal_timeout') {
      parseQueueTimeout(body);
      return undefined;
    }
    // The status URL is also the status query's QueueTimeOutURL: a body without a Result is its timeout notice.
    if (
      (kind === 'status_result' || kind === 'payment_status_result') &&
      !(typeof body === 'object' && body !== null && 'Result' in body)
    ) {
      parseQueueTimeout(body);
      return undefined;
    }
    return parseDarajaResult(body);
  }

  /** Applies one verified delivery; returns the inbox outcome. */
  private async process(kind: MpesaResultKind, refundId: string, body: unknown): Promise<string> {
    if (kind === 'payment_status_result') {
      if (!(typeof body === 'object' && body !== null && 'Result' in body)) return 'status_timeout';
      return this.receiptCheck.apply(refundId, parseDarajaResult(body));
    }
    const refund = await this.refunds.findById(refundId);
    if (!refund || refund.provider !== 'mpesa') return 'unknown_refund';
    const pd = mpesaRefundData(refund);
    const actor = ACTOR[kind];
    let report: RefundReport;
    if (kind === 'reversal_timeout') {
      const ids = parseQueueTimeout(body);
      if (!this.matchesReversal(refund, ids, false)) return 'mismatch';
      report = {
        status: 'unknown',
        reason: 'QUEUE_TIMEOUT',
        message:
          'M-Pesa did not process the reversal in time (queue timeout): checking with Transaction Status whether it happened',
        nextLookSeconds: 0,
      };
    } else if (kind === 'reversal_result') {
      const r = parseDarajaResult(body);
      if (!this.matchesReversal(refund, r)) {
        this.logger.warn(
          { refundId, conversationId: r.conversationId },
          'reversal result for another reversal: not applied',
        );
        return 'mismatch';
      }
      report = reversalResultReport(r, { reversalsSent: pd.reversalsSent ?? 0 });
      // A result for a reversal whose sync answer was lost: its ids become the refund's.
      if (!pd.conversationId && r.conversationId && r.originatorConversationId)
        report.providerData = {
          ...report.providerData,
          conversationId: r.conversationId,
          originatorConversationId: r.originatorConversationId,
        };
    } else {
      if (!(typeof body === 'object' && body !== null && 'Result' in body)) return 'status_timeout';
      const r = parseDarajaResult(body);
      const q = pd.lastStatusQuery;
      if (!q || (r.conversationId !== q.conversationId && r.originatorConversationId !== q.originatorConversationId)) {
        this.logger.warn(
          { refundId, conversationId: r.conversationId },
          'status result for another query: not applied',
        );
        return 'mismatch';
      }
      report = refundStatusReport(
        statusFacts(r),
        refund,
        q,
        this.mpesaRefunds.reversalSentAt(refund),
        this.reversalWaitSeconds,
      );
      // Answered: a later result for the same query is a duplicate.
      report.providerData = { ...report.providerData, lastStatusQuery: { ...q, answered: true } };
      if (q.answered) return 'duplicate';
    }
    const { changed } = await this.refunds.applyReport(refund.id, report, actor);
    return changed ? 'applied' : 'duplicate';
  }

  /** Does a result name one of this refund's reversals? A refund with no stored ids takes it (the verified URL is its own). */
  private matchesReversal(
    refund: Refund,
    ids: { conversationId?: string; originatorConversationId?: string },
    /** A Result must name one of the refund's reversals; a queue-timeout notice (it only leads to a status check) may name none. */
    idsRequired = true,
  ): boolean {
    const pd = mpesaRefundData(refund);
    const known = [
      ...(pd.reversals ?? []),
      ...(pd.conversationId
        ? [{ conversationId: pd.conversationId, originatorConversationId: pd.originatorConversationId }]
        : []),
    ];
    if (known.length === 0) return true;
    if (!ids.conversationId && !ids.originatorConversationId) return !idsRequired;
    return known.some(
      (k) =>
        (ids.conversationId !== undefined && k.conversationId === ids.conversationId) ||
        (ids.originatorConversationId !== undefined && k.originatorConversationId === ids.originatorConversationId),
    );
  }
}
