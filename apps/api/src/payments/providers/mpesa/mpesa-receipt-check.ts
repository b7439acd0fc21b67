import { Logger } from '@nestjs/common';
import type { AuthUser } from '../../../auth/auth.types';
import { AppError, ConflictError, NotFoundError, ValidationFailedError } from '../../../common/errors';
import type { Payment } from '../../../database/schema';
import { MerchantAccountsService } from '../../merchant-accounts.service';
import type { ResolvedAccount } from '../../merchant-accounts.types';
import { PaymentLifecycle } from '../../payment-lifecycle.service';
import { OUTCOME_UNKNOWN } from '../../payment-status';
import { PaymentsRepository } from '../../payments.repository';
import { DarajaResult, partyShortcode, statusFacts } from './daraja-results';
import { DarajaService } from './daraja.service';
import type { DarajaAccount } from './daraja.types';
import { parseNairobiTimestamp } from './nairobi-time';

/** payment_events.type of a Transaction Status query sent for a payment by its receipt (its ids match the result). */
export const RECEIPT_CHECK_EVENT = 'mpesa_receipt_check';
/** payment_events.type of its answer when the answer did not settle the payment. */
export const RECEIPT_CHECK_ANSWER_EVENT = 'mpesa_receipt_check_answered';

const RECEIPT = /^[A-Z0-9]{10}$/;
/** A payment's transaction cannot have finished before its push was created (allowing this much clock skew). */
const CLOCK_SLACK_MS = 10 * 60 * 1000;

export interface ReceiptCheckAnswer {
  paymentId: string;
  receipt: string;
  status: 'checking';
  message: string;
}

/** Is this payment one whose outcome is unknown (so a receipt may settle it)? */
function outcomeUnknown(p: Payment): boolean {
  return p.status === 'unresolved' || (p.status === 'review' && p.statusReason === OUTCOME_UNKNOWN);
}

/**
 * POST /payments/:id/mpesa-receipt: a manager knows the receipt of an M-Pesa payment whose outcome
 * is unknown (the customer's SMS, the statement). A Transaction Status query by that receipt asks
 * M-Pesa; its result (on the payment's own capability URL) settles the payment through the
 * lifecycle only when it shows a completed payment of this amount to this shop's shortcode, made
 * after the push. The receipt the manager typed is never trusted on its own.
 */
export class MpesaReceiptCheck {
  private readonly logger = new Logger(MpesaReceiptCheck.name);

  constructor(
    private readonly repo: PaymentsRepository,
    private readonly lifecycle: PaymentLifecycle,
    private readonly accounts: MerchantAccountsService,
    private readonly daraja: DarajaService,
    private readonly toDaraja: (account: ResolvedAccount) => DarajaAccount,
  ) {}

  async request(user: AuthUser, paymentId: string, rawReceipt: unknown): Promise<ReceiptCheckAnswer> {
    if (typeof rawReceipt !== 'string')
      throw new ValidationFailedError('receipt is required: the M-Pesa receipt, e.g. NLJ7RT61SV', { field: 'receipt' });
    const receipt = rawReceipt.trim().toUpperCase();
    if (!RECEIPT.test(receipt))
      throw new ValidationFailedError('receipt must be an M-Pesa receipt: 10 letters and digits, e.g. NLJ7RT61SV', {
        field: 'receipt',
      });
    const p = await this.repo.findForShop(user.shopId, paymentId);
    if (!p) throw new NotFoundError('Payment', { paymentId });
    if (p.provider !== 'mpesa')
      throw new ConflictError('NOT_MPESA', 'Only an M-Pesa payment can be settled by its M-Pesa receipt');
    if (!outcomeUnknown(p))
      throw new ConflictError(
        'OUTCOME_KNOWN',
        `This payment's outcome is known (${p.status}${p.statusReason ? `, ${p.statusReason}` : ''}): a receipt settles only a payment whose outcome is unknown`,
        { status: p.status },
      );
    const holder = await this.repo.findByReceipt(receipt);
    if (holder && holder.id !== p.id)
      // Another shop's payment is that shop's business: only this shop's own is named.
      throw new ConflictError(
        'RECEIPT_IN_USE',
        holder.shopId === user.shopId
          ? 'This receipt already belongs to another payment'
          : "This receipt already belongs to another shop's payment",
        holder.shopId === user.shopId ? { paymentId: holder.id } : undefined,
      );
    const account = await this.accounts.resolveForExisting(p.merchantAccountId, 'mpesa');
    if (!account.settings.initiatorName || !account.secrets.initiatorPassword)
      throw new AppError(
        'MPESA_INITIATOR_NOT_CONFIGURED',
        "The shop's M-Pesa account has no initiator: add the API operator's name and password (with the Transaction Status query ORG API role) to check a receipt",
        422,
      );
    if (!this.daraja.canEncryptCredentials)
      throw new AppError(
        'MPESA_CERTIFICATE_NOT_CONFIGURED',
        'This deployment has no M-Pesa certificate for its environment (MPESA_CERT_FILE), so it cannot ask M-Pesa about a receipt',
        422,
      );
    const url = this.daraja.scopedCallbackUrl('payment-status', p.id);
    const accepted = await this.daraja.queryTransactionStatus(
      { transactionId: receipt, remarks: 'Payment receipt check', resultUrl: url, queueTimeOutUrl: url },
      this.toDaraja(account),
    );
    await this.repo.insertEvent({
      paymentId: p.id,
      type: RECEIPT_CHECK_EVENT,
      fromStatus: p.status,
      actor: `user:${user.sub}`,
      data: {
        receipt,
        originatorConversationId: accepted.originatorConversationId,
        conversationId: accepted.conversationId,
      },
    });
    return {
      paymentId: p.id,
      receipt,
      status: 'checking',
      message: 'M-Pesa is asked about this receipt; the payment is settled when its answer shows it paid this order',
    };
  }

  /** A verified Transaction Status result for a payment: applied when it proves the payment. Returns the inbox outcome. */
  async apply(paymentId: string, r: DarajaResult): Promise<string> {
    const p = await this.repo.findById(paymentId);
    if (!p || p.provider !== 'mpesa') return 'unknown_payment';
    const checks = (await this.repo.listEvents(p.id)).filter((e) => e.type === RECEIPT_CHECK_EVENT);
    const check = checks.reverse().find((e) => {
      const d = (e.data ?? {}) as Record<string, unknown>;
      return d.conversationId === r.conversationId || d.originatorConversationId === r.originatorConversationId;
    });
    if (!check) return 'mismatch';
    const asked = String(((check.data ?? {}) as Record<string, unknown>).receipt ?? '');
    const facts = statusFacts(r);
    const answered = async (outcome: string, why: string): Promise<string> => {
      await this.repo.insertEvent({
        paymentId: p.id,
        type: RECEIPT_CHECK_ANSWER_EVENT,
        fromStatus: p.status,
        actor: 'daraja:status_result',
        data: { receipt: asked, outcome, why, resultCode: r.resultCode },
      });
      this.logger.warn({ paymentId: p.id, outcome }, 'receipt check did not settle the payment');
      return outcome;
    };
    if (facts.kind !== 'found')
      return answered(
        facts.kind === 'not_found' ? 'receipt_not_found' : 'receipt_check_failed',
        facts.kind === 'refused'
          ? facts.message
          : facts.kind === 'not_found'
            ? 'M-Pesa does not know this receipt'
            : `M-Pesa answered code ${facts.resultCode}`,
      );
    if (facts.receiptNo && facts.receiptNo.toUpperCase() !== asked)
      return answered('receipt_mismatch', `M-Pesa answered about receipt ${facts.receiptNo}, not ${asked}`);
    if (facts.transactionStatus !== 'completed')
      return answered('not_completed', `M-Pesa shows the transaction as ${facts.transactionStatus}`);
    const account = await this.accounts.resolveForExisting(p.merchantAccountId, 'mpesa');
    const ours = [account.settings.shortcode, account.settings.tillNumber].filter(Boolean);
    const credit = partyShortcode(facts.creditPartyName);
    if (!credit || !ours.includes(credit))
      return answered('other_shortcode', "The receipt's money went to another shortcode than this shop's");
    if (facts.finalisedTime && /^\d{14}$/.test(facts.finalisedTime)) {
      const at = parseNairobiTimestamp(facts.finalisedTime).getTime();
      if (at < p.createdAt.getTime() - CLOCK_SLACK_MS)
        return answered('before_payment', 'The receipt is for a transaction made before this payment was started');
    }
    // Settled meanwhile (a late callback)? The lifecycle decides: duplicate, late receipt, second charge.
    return this.lifecycle.applyOutcome(
      p.id,
      {
        outcome: 'completed',
        resultCode: '0',
        resultDesc: `M-Pesa Transaction Status: receipt ${asked} completed`,
        source: 'query',
        amountRequired: true,
        amountMinor: facts.amountMinor,
        receipt: asked,
        transactionDate: facts.finalisedTime,
      },
      'daraja:status_result',
    );
  }
}
