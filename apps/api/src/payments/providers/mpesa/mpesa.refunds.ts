import { ProviderError } from '../provider-errors';
import type { Payment, Refund } from '../../../database/schema';
import type { ResolvedAccount } from '../../merchant-accounts.types';
import {
  COUNTED_REFUND_STATUSES,
  RefundContext,
  RefundProviderService,
  RefundRefusedError,
  RefundReport,
} from '../../refunds.types';
import type { StatusFacts } from './daraja-results';
import { DarajaService } from './daraja.service';
import type { DarajaAccount } from './daraja.types';

/**
 * What an M-Pesa refund keeps in refunds.provider_data (merged shallowly by RefundsService, so
 * every report writes whole values).
 */
export interface MpesaRefundData {
  /** The latest reversal's ids (null after a send whose answer was lost: its ids are unknown). */
  originatorConversationId?: string | null;
  conversationId?: string | null;
  /** Reversal requests sent (or possibly sent: an answer lost counts). */
  reversalsSent?: number;
  /** When the latest reversal was sent (ISO). */
  lastReversalSentAt?: string;
  /** Every reversal accepted by Daraja, oldest first: a late result for any of them is still the truth. */
  reversals?: Array<{ originatorConversationId: string; conversationId: string; sentAt: string }>;
  /** Transaction Status queries sent for this refund. */
  statusQueries?: number;
  lastStatusQuery?: StatusQueryRecord;
  /** A status answer proved the latest reversal never happened: the next look may send another (this many sent when proved). */
  resubmitProofFor?: number | null;
  /** The reversal's own receipt, once a result gave it. */
  reversalReceipt?: string;
}

export interface StatusQueryRecord {
  originatorConversationId: string;
  conversationId: string;
  /** What it asked about: the latest reversal (by its OriginatorConversationID) or the payment (by its receipt). */
  by: 'reversal' | 'receipt';
  sentAt: string;
  /** reversalsSent when it was sent. */
  forReversal: number;
  /** Its result was applied (a second copy is a duplicate). */
  answered?: boolean;
}

export function mpesaRefundData(r: Refund): MpesaRefundData {
  return (r.providerData ?? {}) as MpesaRefundData;
}

export interface MpesaRefundOptions {
  /** See AppConfig.mpesa.reversalWaitSeconds. */
  reversalWaitSeconds: number;
  /** The DarajaAccount of a resolved account (MpesaAccountKind.toDaraja). */
  toDaraja(account: ResolvedAccount): DarajaAccount;
}

/** Whole shillings as Daraja's number; undefined when the minor amount has cents. */
function wholeShillings(minor: bigint): number | undefined {
  if (minor <= 0n || minor % 100n !== 0n) return undefined;
  return Number(minor / 100n);
}

/** The status a report keeps for a refund that is still open (a requested one whose sending was interrupted is unknown). */
function openStatus(r: Refund): 'pending' | 'unknown' {
  return r.status === 'pending' ? 'pending' : 'unknown';
}

/**
 * M-Pesa refunds are Daraja Reversals of the payment's receipt (daraja.md §6.1), asked about with
 * Transaction Status (§6.2). A reversal is never sent a second time unless a Transaction Status
 * answer, asked after the reversal had time to show up, proves the first never happened.
 */
export class MpesaRefundService implements RefundProviderService {
  readonly provider = 'mpesa';

  constructor(
    private readonly daraja: DarajaService,
    private readonly options: MpesaRefundOptions,
  ) {}

  precheck(payment: Payment, amountMinor: bigint, others: readonly Refund[], account: ResolvedAccount): void {
    if (!payment.mpesaReceiptNumber)
      throw new RefundRefusedError(
        'MPESA_NO_RECEIPT',
        'This payment has no M-Pesa receipt, so M-Pesa cannot reverse it: settle the payment first (its receipt is on the M-Pesa statement)',
      );
    if (payment.currency !== 'KES')
      throw new RefundRefusedError(
        'MPESA_CURRENCY',
        `M-Pesa refunds are in KES; this payment is in ${payment.currency}`,
      );
    if (wholeShillings(amountMinor) === undefined)
      throw new RefundRefusedError(
        'MPESA_WHOLE_SHILLINGS',
        'M-Pesa reverses whole shillings only: refund an amount without cents',
        { amountMinor: amountMinor.toString() },
      );
    const open = others.find((o) => (COUNTED_REFUND_STATUSES as readonly string[]).includes(o.status));
    if (open)
      throw new RefundRefusedError(
        'MPESA_ONE_REVERSAL',
        'M-Pesa reverses a payment once: this payment already has a refund that went through or is still open. Refund the rest another way',
        { refundId: open.id, status: open.status },
      );
    if (!account.settings.initiatorName || !account.secrets.initiatorPassword)
      throw new RefundRefusedError(
        'MPESA_INITIATOR_NOT_CONFIGURED',
        "The shop's M-Pesa account has no initiator: add the API operator's name and password (initiatorName, initiatorPassword, from the M-Pesa org portal, with the Org Reversals Initiator role) to the shop's M-Pesa account",
      );
    if (!this.daraja.canEncryptCredentials)
      throw new RefundRefusedError(
        'MPESA_CERTIFICATE_NOT_CONFIGURED',
        "This deployment has no M-Pesa certificate for its environment (MPESA_CERT_FILE / MPESA_CERT_PEM), so it cannot send reversals: ask the platform's operator to configure it",
      );
  }

  async submit(ctx: RefundContext): Promise<RefundReport> {
    return this.sendReversal(ctx, false);
  }

  async look(ctx: RefundContext): Promise<RefundReport> {
    const { refund } = ctx;
    const pd = mpesaRefundData(refund);
    const sent = pd.reversalsSent ?? 0;
    // Proof that the latest reversal never happened (a status answer asked after its wait): send it
    // again, or for the first time when the request sending it died before anything was recorded.
    if (refund.status !== 'review' && pd.resubmitProofFor === sent) return this.sendReversal(ctx, sent > 0);
    const sentAt = this.reversalSentAt(refund);
    const waitUntil = sentAt + this.options.reversalWaitSeconds * 1000;
    const now = Date.now();
    // A reversal Daraja took is left to its result until its wait passes (an earlier answer could not prove anything).
    if (refund.status === 'pending' && now < waitUntil)
      return { status: openStatus(refund), nextLookSeconds: Math.ceil((waitUntil - now) / 1000) };
    return this.askStatus(ctx);
  }

  /** When the latest reversal was (or may have been) sent: a requested refund's sending was interrupted at about its creation. */
  reversalSentAt(refund: Refund): number {
    const at = mpesaRefundData(refund).lastReversalSentAt;
    const t = at ? Date.parse(at) : NaN;
    return Number.isFinite(t) ? t : refund.createdAt.getTime();
  }

  private async askStatus(ctx: RefundContext): Promise<RefundReport> {
    const { refund, payment, account } = ctx;
    const pd = mpesaRefundData(refund);
    const byReversal = typeof pd.originatorConversationId === 'string' && pd.originatorConversationId.length > 0;
    const url = this.daraja.scopedCallbackUrl('refund-status', refund.id);
    const keep: RefundReport['status'] = refund.status === 'review' ? 'unknown' : openStatus(refund);
    try {
      const accepted = await this.daraja.queryTransactionStatus(
        {
          ...(byReversal
            ? { originalConversationId: pd.originatorConversationId as string }
            : { transactionId: payment.mpesaReceiptNumber as string }),
          remarks: 'Refund status check',
          resultUrl: url,
          queueTimeOutUrl: url,
        },
        this.options.toDaraja(account),
      );
      const record: StatusQueryRecord = {
        originatorConversationId: accepted.originatorConversationId,
        conversationId: accepted.conversationId,
        by: byReversal ? 'reversal' : 'receipt',
        sentAt: new Date().toISOString(),
        forReversal: pd.reversalsSent ?? 0,
      };
      return {
        status: keep,
        providerData: { statusQueries: (pd.statusQueries ?? 0) + 1, lastStatusQuery: record },
      };
    } catch (err) {
      if (!(err instanceof ProviderError)) throw err;
      return {
        status: keep,
        providerCode: err.providerCode,
        message: `Could not ask M-Pesa where the refund stands (${err.message.slice(0, 300)}); asking again later`,
      };
    }
  }

  private async sendReversal(ctx: RefundContext, again: boolean): Promise<RefundReport> {
    const { refund, payment, account } = ctx;
    const pd = mpesaRefundData(refund);
    const sent = pd.reversalsSent ?? 0;
    const amount = wholeShillings(refund.amountMinor);
    if (amount === undefined || !payment.mpesaReceiptNumber)
      return {
        status: 'failed',
        reason: 'MPESA_NOT_REVERSIBLE',
        message: 'M-Pesa cannot reverse this refund (no receipt, or an amount with cents); nothing was sent',
      };
    const sentAt = new Date().toISOString();
    try {
      const accepted = await this.daraja.sendReversal(
        {
          transactionId: payment.mpesaReceiptNumber,
          amount,
          remarks: `Refund ${refund.id}`,
          resultUrl: this.daraja.scopedCallbackUrl('refund-result', refund.id),
          queueTimeOutUrl: this.daraja.scopedCallbackUrl('refund-timeout', refund.id),
        },
        this.options.toDaraja(account),
      );
      const reversals = [
        ...(pd.reversals ?? []),
        {
          originatorConversationId: accepted.originatorConversationId,
          conversationId: accepted.conversationId,
          sentAt,
        },
      ];
      return {
        status: 'pending',
        submitted: true,
        message: 'M-Pesa accepted the reversal; waiting for its result',
        providerData: {
          originatorConversationId: accepted.originatorConversationId,
          conversationId: accepted.conversationId,
          reversalsSent: sent + 1,
          lastReversalSentAt: sentAt,
          reversals,
          resubmitProofFor: null,
        },
        nextLookSeconds: this.options.reversalWaitSeconds,
      };
    } catch (err) {
      if (!(err instanceof ProviderError)) throw err;
      if (err.outcome === 'unknown')
        // It may have reached Daraja: counted, its ids unknown; Transaction Status (by receipt) finds out.
        return {
          status: 'unknown',
          submitted: true,
          reason: err.code,
          providerCode: err.providerCode,
          message: `The reversal may or may not have reached M-Pesa (${err.message.slice(0, 300)}); it is being checked`,
          providerData: {
            originatorConversationId: null,
            conversationId: null,
            reversalsSent: sent + 1,
            lastReversalSentAt: sentAt,
            resubmitProofFor: null,
          },
          nextLookSeconds: this.options.reversalWaitSeconds,
        };
      if (again && (err.kind === 'rate_limited' || err.kind === 'unreachable'))
        // A resend that never left: still proved, try again on the next look.
        return {
          status: 'unknown',
          providerCode: err.providerCode,
          message: `M-Pesa could not be reached to send the reversal again (${err.message.slice(0, 300)}); retrying`,
          nextLookSeconds: err.retryAfterSeconds ?? 60,
        };
      return {
        status: 'failed',
        reason: isInvalidCredential(err) ? 'INITIATOR_CREDENTIAL_INVALID' : err.code,
        providerCode: err.providerCode,
        message: err.message.slice(0, 500),
      };
    }
  }
}

function isInvalidCredential(err: ProviderError): boolean {
  return /invalid security ?credential/i.test(err.providerMessage ?? '');
}

/**
 * A Transaction Status answer for a refund (it answered `query`) as a RefundReport.
 * - Asked by the reversal's OriginatorConversationID: the reversal completed → succeeded (its
 *   receipt and amount); no such transaction, when asked after the reversal's wait → proof it never
 *   happened: the next look may send it again; too early → still open.
 * - Asked by the payment's receipt (the reversal's ids are unknown: its answer was lost, or its
 *   sending interrupted): the payment shows as reversed → succeeded (the money is back); still
 *   completed after the wait → proof no reversal happened; otherwise still open.
 * - The status query itself refused (the initiator) or an answer we cannot read: still open, with
 *   the message; the reconciler asks again and gives up to review in the end.
 */
export function refundStatusReport(
  facts: StatusFacts,
  refund: Refund,
  query: StatusQueryRecord,
  reversalSentAt: number,
  waitSeconds: number,
): RefundReport {
  const pd = mpesaRefundData(refund);
  const sent = pd.reversalsSent ?? 0;
  const keep = openStatus(refund);
  const afterWait = Date.parse(query.sentAt) >= reversalSentAt + waitSeconds * 1000 && query.forReversal === sent;
  const proof: RefundReport = {
    status: 'unknown',
    reason: 'REVERSAL_NOT_FOUND',
    message:
      sent > 0
        ? 'M-Pesa shows no reversal for this refund: it will be sent again'
        : 'M-Pesa shows no reversal for this refund: it will be sent',
    providerData: { resubmitProofFor: sent },
    nextLookSeconds: 0,
  };
  if (facts.kind === 'refused')
    return { status: keep, providerCode: facts.resultCode, reason: 'STATUS_QUERY_REFUSED', message: facts.message };
  if (facts.kind === 'inconclusive')
    return {
      status: keep,
      providerCode: facts.resultCode,
      message: `M-Pesa's status answer says nothing yet (code ${facts.resultCode}); asking again later`,
    };
  if (query.by === 'reversal') {
    if (facts.kind === 'found' && facts.transactionStatus === 'completed')
      return {
        status: 'succeeded',
        providerCode: '0',
        providerRefundId: facts.receiptNo,
        amountMinor: facts.amountMinor,
        message: 'M-Pesa shows the reversal completed: the money is back with the customer',
        providerData: facts.receiptNo ? { reversalReceipt: facts.receiptNo } : undefined,
      };
    if (facts.kind === 'not_found') {
      if (afterWait && refund.status !== 'review') return { ...proof, providerCode: facts.resultCode };
      return { status: keep, providerCode: facts.resultCode, message: 'M-Pesa does not show the reversal yet' };
    }
    return { status: keep, message: `M-Pesa shows the reversal as ${facts.transactionStatus}` };
  }
  // by receipt: the payment itself
  if (facts.kind === 'found' && facts.transactionStatus === 'reversed')
    return {
      status: 'succeeded',
      providerCode: '0',
      message: 'M-Pesa shows the payment as reversed: the money is back with the customer',
    };
  if (facts.kind === 'found' && facts.transactionStatus === 'completed') {
    if (afterWait && refund.status !== 'review') return proof;
    return { status: keep, message: 'M-Pesa does not show a reversal of the payment yet' };
  }
  if (facts.kind === 'not_found')
    return {
      status: keep,
      providerCode: facts.resultCode,
      message: "M-Pesa's status check does not find the payment's receipt; asking again later",
    };
  return { status: keep, message: `M-Pesa shows the payment as ${facts.transactionStatus}` };
}
