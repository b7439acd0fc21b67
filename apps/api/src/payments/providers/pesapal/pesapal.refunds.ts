import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import type { Payment, Refund } from '../../../database/schema';
import type { ResolvedAccount } from '../../merchant-accounts.types';
import { RefundProvidersRegistry } from '../../refund-providers.registry';
import { RefundContext, RefundProviderService, RefundRefusedError, RefundReport } from '../../refunds.types';
import { currencyExponent, formatMinor } from '../amount';
import type { StatusResult } from '../payment-provider';
import { PesapalAccountKind } from './pesapal.account';
import { PESAPAL_PROVIDER, REVERSED_AT_PROVIDER } from './pesapal.constants';
import type { PesapalProvider } from './pesapal.provider';

const PROVIDER = 'pesapal';
/** Pesapal's finance team approves refunds by hand (pesapal.md §8): look again every 6 hours; the IPN of the reversal usually comes first. */
export const PESAPAL_APPROVAL_LOOK_SECONDS = 6 * 3600;
/** Pesapal could not be read usefully: look again in an hour. */
const UNKNOWN_LOOK_SECONDS = 3600;
/** Reason of a refund Pesapal received and its finance team has not decided on yet. */
export const AWAITING_APPROVAL = 'AWAITING_APPROVAL';

/**
 * Card brands Pesapal reports as payment_method (pesapal.md §7: "CARD, MPESA, MTN, TIGO etc.";
 * the official sample shows "Visa"). Only these may be refunded in part; anything else — mobile
 * money, or a method Pesapal did not name — is refunded in full only.
 */
const CARD_METHOD =
  /^(visa|master ?card|mastercard|amex|american ?express|card|credit ?card|debit ?card|diners|discover|jcb|union ?pay)$/i;

export function isPesapalCardMethod(method: string | null | undefined): boolean {
  return typeof method === 'string' && CARD_METHOD.test(method.trim());
}

/**
 * Pesapal refunds (pesapal.md §8): RefundRequest with the payment's confirmation code. A 200 only
 * means Pesapal received it: the merchant's finance team approves it later, and the approval shows
 * as the payment REVERSED (status_code 3) — by IPN (pesapal.service.ts settles the refund then) or
 * by the reconciler's GetTransactionStatus here. Pesapal reports no rejection through the API (the
 * payment simply stays COMPLETED), so a refund that is never approved stays pending until the
 * reconciler gives up and a person looks.
 */
@Injectable()
export class PesapalRefunds implements RefundProviderService, OnModuleInit {
  readonly provider = PROVIDER;

  constructor(
    private readonly kind: PesapalAccountKind,
    private readonly registry: RefundProvidersRegistry,
    /** The platform's adapter, or null when Pesapal is switched off here (then no refunds are offered). */
    @Inject(PESAPAL_PROVIDER) private readonly platform: PesapalProvider | null,
  ) {}

  onModuleInit(): void {
    if (this.platform) this.registry.register(this);
  }

  private adapter(account: ResolvedAccount): PesapalProvider {
    return this.kind.clientFor(account).provider;
  }

  precheck(payment: Payment, amountMinor: bigint, others: readonly Refund[], account: ResolvedAccount): void {
    pesapalRefundPrecheck(payment, amountMinor, others, this.adapter(account).capabilities);
  }

  async submit(ctx: RefundContext): Promise<RefundReport> {
    const { refund, payment } = ctx;
    const result = await this.adapter(ctx.account).refund({
      providerRef: payment.providerTransactionId as string,
      reference: payment.providerReference as string,
      amountMinor: refund.amountMinor,
      currency: refund.currency,
      reason: refund.reason,
      receipt: payment.providerReceipt as string,
      initiatedBy: refund.requestedBy.slice(0, 100),
    });
    if (result.status !== 'accepted')
      return {
        status: 'failed',
        reason: 'REFUSED_BY_PROVIDER',
        message: `Pesapal refused the refund request: ${result.message ?? 'no reason given'}`.slice(0, 500),
        submitted: true,
      };
    return {
      status: 'pending',
      reason: AWAITING_APPROVAL,
      message:
        "Pesapal received the refund request; it is returned once the merchant's Pesapal finance team approves it",
      providerData: { pesapalRequestedAt: new Date().toISOString() },
      nextLookSeconds: PESAPAL_APPROVAL_LOOK_SECONDS,
      submitted: true,
    };
  }

  async look(ctx: RefundContext): Promise<RefundReport> {
    const { refund, payment } = ctx;
    const s = await this.adapter(ctx.account).fetchStatus({
      reference: payment.providerReference as string,
      providerRef: payment.providerTransactionId as string,
    });
    return pesapalRefundLook(s, refund);
  }
}

/**
 * What GetTransactionStatus says about a refund of the payment: REVERSED → the money went back;
 * still COMPLETED → not approved yet (for a refund whose sending was interrupted or whose answer was
 * lost: unknown whether Pesapal ever received it — never sent again); anything else does not add up.
 */
export function pesapalRefundLook(s: StatusResult, refund: Pick<Refund, 'status'>): RefundReport {
  const providerCode = statusCode(s.raw);
  if (s.status === 'reversed')
    return {
      status: 'succeeded',
      ...(providerCode ? { providerCode } : {}),
      message: `Pesapal reports the payment reversed${s.description ? `: ${s.description}` : ''}`.slice(0, 500),
    };
  if (s.status === 'completed') {
    if (refund.status === 'requested' || refund.status === 'unknown')
      return {
        status: 'unknown',
        ...(providerCode ? { providerCode } : {}),
        message:
          'Pesapal still shows the payment completed and cannot say whether it received this refund request; it is not sent again',
        nextLookSeconds: PESAPAL_APPROVAL_LOOK_SECONDS,
      };
    return {
      status: 'pending',
      reason: AWAITING_APPROVAL,
      ...(providerCode ? { providerCode } : {}),
      message: "Awaiting approval by the merchant's Pesapal finance team (the payment still shows completed)",
      nextLookSeconds: PESAPAL_APPROVAL_LOOK_SECONDS,
    };
  }
  return {
    status: 'unknown',
    reason: 'UNEXPECTED_PAYMENT_STATUS',
    ...(providerCode ? { providerCode } : {}),
    message: `Pesapal reports the refunded payment as ${s.status}`,
    nextLookSeconds: UNKNOWN_LOOK_SECONDS,
  };
}

/**
 * Pesapal's refund rules (pesapal.md §8), checked before anything is written or sent: one refund
 * per payment (any earlier one that did not fail blocks), mobile money only in full (a payment
 * whose method Pesapal did not name as a card is treated so), the payment's own currency (one the
 * adapter sends), whole units where it sends no cents, and the confirmation code and order tracking
 * id Pesapal needs.
 */
export function pesapalRefundPrecheck(
  payment: Payment,
  amountMinor: bigint,
  others: readonly Refund[],
  caps: { currencies: readonly string[]; fractionalAmounts: boolean },
): void {
  if (payment.provider !== PROVIDER)
    throw new RefundRefusedError('REFUND_WRONG_PROVIDER', 'This payment was not made with Pesapal');
  if (payment.statusReason === REVERSED_AT_PROVIDER)
    throw new RefundRefusedError(
      'PESAPAL_ALREADY_REVERSED',
      'Pesapal reports this payment reversed (an approved refund or a chargeback): it refunds nothing more. Check in Pesapal what went back',
    );
  if (!payment.providerReceipt || !payment.providerTransactionId || !payment.providerReference)
    throw new RefundRefusedError(
      'REFUND_NO_CONFIRMATION_CODE',
      'Pesapal refunds a payment by its confirmation code, and this payment has none recorded (Pesapal never confirmed it as paid)',
    );
  const earlier = others.find((r) => r.status !== 'failed');
  if (earlier)
    throw new RefundRefusedError(
      'REFUND_ONE_PER_PAYMENT',
      `Pesapal allows only one refund per payment, and this payment already has one (${earlier.status}, ${formatMinor(earlier.amountMinor, earlier.currency)})`,
      { refundId: earlier.id },
    );
  if (!caps.currencies.includes(payment.currency) || currencyExponent(payment.currency) === undefined)
    throw new RefundRefusedError(
      'REFUND_CURRENCY_NOT_SUPPORTED',
      `Pesapal refunds in the payment's own currency, and ${payment.currency} is not one this account refunds in (${caps.currencies.join(', ')})`,
    );
  if (amountMinor !== payment.amountMinor && !isPesapalCardMethod(payment.paymentMethod))
    throw new RefundRefusedError(
      'REFUND_FULL_ONLY',
      `Pesapal refunds ${payment.paymentMethod ? `${payment.paymentMethod} (mobile money)` : 'a payment whose method it did not report'} only in full: ${formatMinor(payment.amountMinor, payment.currency)}, not ${formatMinor(amountMinor, payment.currency)}`,
    );
  const unit = 10n ** BigInt(currencyExponent(payment.currency) as number);
  if (!caps.fractionalAmounts && amountMinor % unit !== 0n)
    throw new RefundRefusedError(
      'REFUND_WHOLE_UNITS_ONLY',
      `Pesapal refunds on this account are in whole ${payment.currency} (no cents): ${formatMinor(amountMinor, payment.currency)} cannot be sent`,
    );
}

function statusCode(raw: unknown): string | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const v = (raw as Record<string, unknown>).status_code;
  return typeof v === 'number' || typeof v === 'string' ? String(v) : undefined;
}
