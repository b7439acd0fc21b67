import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import type { Payment, Refund } from '../../../database/schema';
import { MerchantAccountsService } from '../../merchant-accounts.service';
import type { ResolvedAccount } from '../../merchant-accounts.types';
import { RefundProvidersRegistry } from '../../refund-providers.registry';
import { RefundsService } from '../../refunds.service';
import {
  RefundContext,
  RefundProviderService,
  RefundRefusedError,
  RefundReport,
  REFUND_AMOUNT_MISMATCH,
} from '../../refunds.types';
import { currencyExponent, formatMinor } from '../amount';
import { FlutterwaveAccountKind } from './flutterwave.account';
import { FLW_PROVIDER } from './flutterwave.helpers';
import { FLUTTERWAVE_PROVIDER } from './flutterwave.constants';
import { FlutterwaveProvider, FlwRefundState, readFlwRefund } from './flutterwave.provider';

/** How long before a refund's own creation a refund found in Flutterwave's list may be it (clock skew). */
const FIND_SKEW_MS = 5 * 60_000;
/** Pages of GET /v3/refunds read when looking for a refund whose submission answer was lost. */
const FIND_MAX_PAGES = 10;
/** A pending Flutterwave refund (M-Pesa's pending-momo, a card refund processing): look again in 10 minutes. */
const PENDING_LOOK_SECONDS = 600;
/** No trace of a refund whose answer was lost: look again in an hour (its webhook may still come). */
const UNKNOWN_LOOK_SECONDS = 3600;

/**
 * Flutterwave v3 refunds (flutterwave.md §7): POST /v3/transactions/:id/refund (full or partial),
 * GET /v3/refunds/:id, and — for a refund whose submission answer was lost — the account's
 * refund list (GET /v3/refunds), matched on the transaction and amount. Sent with the account the
 * payment was made with. Never sends a refund twice: a refund without an id that cannot be found
 * stays unknown (the reconciler gives up and a person looks).
 */
@Injectable()
export class FlutterwaveRefunds implements RefundProviderService, OnModuleInit {
  readonly provider = FLW_PROVIDER;
  private readonly logger = new Logger(FlutterwaveRefunds.name);

  constructor(
    private readonly kind: FlutterwaveAccountKind,
    private readonly registry: RefundProvidersRegistry,
    /** The platform's adapter, or null when Flutterwave is switched off here (then no refunds are offered). */
    @Inject(FLUTTERWAVE_PROVIDER) private readonly platform: FlutterwaveProvider | null,
    private readonly refunds: RefundsService,
    private readonly accounts: MerchantAccountsService,
  ) {}

  onModuleInit(): void {
    if (this.platform) this.registry.register(this);
  }

  precheck(payment: Payment, amountMinor: bigint, _others: readonly Refund[], account: ResolvedAccount): void {
    flutterwaveRefundPrecheck(payment, amountMinor, this.kind.adapterFor(account));
  }

  async submit(ctx: RefundContext): Promise<RefundReport> {
    const { refund, payment } = ctx;
    const adapter = this.kind.adapterFor(ctx.account);
    const result = await adapter.refund({
      providerRef: payment.providerTransactionId as string,
      reference: payment.providerReference ?? payment.id,
      amountMinor: refund.amountMinor,
      currency: refund.currency,
      reason: refund.reason,
    });
    if (result.status !== 'accepted') {
      return {
        status: 'failed',
        reason: 'REFUSED_BY_PROVIDER',
        message: `Flutterwave refused the refund: ${result.message ?? 'no reason given'}`.slice(0, 500),
        ...(result.providerRefundRef ? { providerRefundId: result.providerRefundRef } : {}),
        submitted: true,
      };
    }
    const env = result.raw as { data?: unknown } | undefined;
    const state = readFlwRefund(env?.data, refund.currency);
    if (!state) {
      // Taken, but without a refund we can read: look it up later (by the list), never resend.
      return {
        status: 'unknown',
        message: 'Flutterwave took the refund but did not say which refund it is; it will be looked up',
        submitted: true,
        nextLookSeconds: PENDING_LOOK_SECONDS,
      };
    }
    return { ...reportFor(state, refund), submitted: true };
  }

  async look(ctx: RefundContext): Promise<RefundReport> {
    const { refund, payment } = ctx;
    const adapter = this.kind.adapterFor(ctx.account);
    if (refund.providerRefundId) {
      const state = await adapter.fetchRefund(refund.providerRefundId, refund.currency);
      if (state === 'not_found')
        return {
          status: 'unknown',
          reason: 'NOT_FOUND_AT_PROVIDER',
          message: `Flutterwave has no refund ${refund.providerRefundId} for this account`,
          nextLookSeconds: UNKNOWN_LOOK_SECONDS,
        };
      if (state.transactionId && state.transactionId !== payment.providerTransactionId)
        return {
          status: 'unknown',
          reason: 'REFERENCE_MISMATCH',
          message: `Flutterwave refund ${state.providerRefundId} belongs to another transaction`,
          nextLookSeconds: UNKNOWN_LOOK_SECONDS,
        };
      return reportFor(state, refund);
    }
    // Sent (or perhaps sent) without an answer: find it in the account's refunds.
    const found = await this.findSubmitted(adapter, payment, refund);
    if (found.kind === 'one') return reportFor(found.state, refund);
    return {
      status: 'unknown',
      reason: found.kind === 'several' ? 'AMBIGUOUS_AT_PROVIDER' : 'NOT_FOUND_AT_PROVIDER',
      message:
        found.kind === 'several'
          ? `Flutterwave shows ${found.count} refunds of this transaction for this amount; a person must match them`
          : 'Flutterwave shows no refund of this transaction for this amount yet; it is not sent again',
      nextLookSeconds: UNKNOWN_LOOK_SECONDS,
    };
  }

  /**
   * A refund webhook (flat PascalCase, flutterwave.md §5c), authenticated by the verif-hash of
   * `payment`'s account and stored. Like a charge webhook, its body only says which refund to look
   * at: GET /v3/refunds/:id decides. Ours (by Flutterwave's refund id) → applyReport; a completed
   * one we never asked for (a chargeback, a refund made in the dashboard) → recorded as a
   * provider-reported refund — unless a refund of ours is still being sent without its id (its
   * answer carries the id: 'deferred', tried again shortly and by the reconciler). Returns the
   * inbox outcome.
   */
  async handleWebhook(payment: Payment, body: unknown, actor: string): Promise<string> {
    const told = readFlwRefund(body, payment.currency);
    if (!told) return 'invalid_shape';
    if (told.transactionId !== undefined && told.transactionId !== payment.providerTransactionId)
      return 'mismatch_ignored';
    const adapter = this.kind.adapterFor(
      await this.accounts.resolveForExisting(payment.merchantAccountId, FLW_PROVIDER),
    );
    let state: FlwRefundState | 'not_found';
    try {
      state = await adapter.fetchRefund(told.providerRefundId, payment.currency);
    } catch (err) {
      this.logger.warn(
        { paymentId: payment.id, kind: err instanceof Error ? err.name : 'error' },
        'Flutterwave refund lookup for a refund webhook failed; tried again later',
      );
      return 'deferred';
    }
    if (state === 'not_found') return 'refund_not_found';
    if (state.transactionId !== undefined && state.transactionId !== payment.providerTransactionId)
      return 'mismatch_ignored';
    // Looked up after Flutterwave answered, so a submission answered meanwhile is seen with its id.
    const ours = await this.refunds.findByProviderRefundId(FLW_PROVIDER, state.providerRefundId);
    if (ours && ours.paymentId !== payment.id) return 'mismatch_ignored';
    if (ours) {
      const { refund, changed } = await this.refunds.applyReport(ours.id, reportFor(state, ours), actor);
      return changed ? `refund_${refund.status}` : 'refund_duplicate';
    }
    const others = await this.refunds.listForPayment(payment.id);
    const named = others.find((r) => r.providerRefundId === state.providerRefundId);
    if (named) {
      const { refund, changed } = await this.refunds.applyReport(named.id, reportFor(state, named), actor);
      return changed ? `refund_${refund.status}` : 'refund_duplicate';
    }
    // One of ours is being sent (or its answer was lost) without its id yet: its answer, or the
    // reconciler's look, names it; this webhook is tried again after that.
    if (others.some((r) => !r.providerRefundId && (r.status === 'requested' || r.status === 'unknown')))
      return 'deferred';
    if (state.status !== 'succeeded' || state.amountMinor === undefined) return `refund_not_ours_${state.status}`;
    const recorded = await this.refunds.recordProviderReported(
      payment,
      {
        amountMinor: state.amountMinor,
        providerRefundId: state.providerRefundId,
        message: `Flutterwave refunded ${formatMinor(state.amountMinor, payment.currency)} on its own (a chargeback or a refund made on the Flutterwave dashboard)`,
        reason: 'REPORTED_BY_PROVIDER',
      },
      actor,
    );
    // recordProviderReported settles one of ours instead when it has this id by then.
    return recorded.source === 'provider' ? 'refund_recorded' : 'refund_duplicate';
  }

  /** The account's refunds of this payment's transaction for this amount, created around or after the refund. */
  private async findSubmitted(
    adapter: FlutterwaveProvider,
    payment: Payment,
    refund: Refund,
  ): Promise<{ kind: 'one'; state: FlwRefundState } | { kind: 'none' } | { kind: 'several'; count: number }> {
    const since = refund.createdAt.getTime() - FIND_SKEW_MS;
    const from = new Date(since).toISOString().slice(0, 10);
    const matches: FlwRefundState[] = [];
    for (let page = 1; page <= FIND_MAX_PAGES; page++) {
      const { refunds, totalPages } = await adapter.listRefunds({ from, page }, refund.currency);
      for (const r of refunds) {
        if (r.transactionId !== payment.providerTransactionId || r.amountMinor !== refund.amountMinor) continue;
        if (r.createdAt && r.createdAt.getTime() < since) continue;
        matches.push(r);
      }
      if (page >= totalPages) break;
    }
    if (matches.length === 1) return { kind: 'one', state: matches[0] };
    if (matches.length === 0) return { kind: 'none' };
    this.logger.warn(
      { refundId: refund.id, paymentId: payment.id, matches: matches.length },
      'several Flutterwave refunds could be this one; left for a person',
    );
    return { kind: 'several', count: matches.length };
  }
}

/**
 * Flutterwave's limits (flutterwave.md §7): partial refunds allowed; the refund is in the
 * payment's currency, which the adapter must support; whole units where the adapter sends no
 * cents; the payment needs Flutterwave's transaction id. Throws RefundRefusedError (422).
 */
export function flutterwaveRefundPrecheck(payment: Payment, amountMinor: bigint, adapter: FlutterwaveProvider): void {
  if (payment.provider !== FLW_PROVIDER)
    throw new RefundRefusedError('REFUND_WRONG_PROVIDER', 'This payment was not made with Flutterwave');
  if (!payment.providerTransactionId || !/^\d{1,20}$/.test(payment.providerTransactionId))
    throw new RefundRefusedError(
      'REFUND_NO_PROVIDER_TRANSACTION',
      'Flutterwave refunds a transaction by its id, and this payment has no Flutterwave transaction id (it was never verified as paid at Flutterwave)',
    );
  const caps = adapter.capabilities;
  if (!caps.currencies.includes(payment.currency) || currencyExponent(payment.currency) === undefined)
    throw new RefundRefusedError(
      'REFUND_CURRENCY_NOT_SUPPORTED',
      `Flutterwave refunds are in the payment's own currency, and ${payment.currency} is not one this account refunds in (${caps.currencies.join(', ')})`,
    );
  const unit = 10n ** BigInt(currencyExponent(payment.currency) as number);
  if (!caps.fractionalAmounts && amountMinor % unit !== 0n)
    throw new RefundRefusedError(
      'REFUND_WHOLE_UNITS_ONLY',
      `Flutterwave refunds on this account are in whole ${payment.currency} (no cents): ${formatMinor(amountMinor, payment.currency)} cannot be sent`,
    );
}

/** A Flutterwave refund's state → the report for our refund (a success for another amount is flagged). */
export function reportFor(state: FlwRefundState, refund: Pick<Refund, 'amountMinor' | 'currency'>): RefundReport {
  const base: RefundReport = {
    status: state.status,
    providerRefundId: state.providerRefundId,
    ...(state.providerStatus ? { providerCode: state.providerStatus } : {}),
    ...(state.amountMinor !== undefined ? { amountMinor: state.amountMinor } : {}),
    providerData: { flutterwaveStatus: state.providerStatus ?? null },
  };
  switch (state.status) {
    case 'succeeded':
      if (state.amountMinor !== undefined && state.amountMinor !== refund.amountMinor)
        return {
          ...base,
          reason: REFUND_AMOUNT_MISMATCH,
          message: `Flutterwave reports ${formatMinor(state.amountMinor, refund.currency)} refunded, not ${formatMinor(refund.amountMinor, refund.currency)}`,
        };
      return { ...base, message: 'Flutterwave completed the refund' };
    case 'failed':
      return {
        ...base,
        reason: 'FAILED_AT_PROVIDER',
        message: `Flutterwave reports the refund ${state.providerStatus ?? 'failed'}`,
      };
    case 'pending':
      return {
        ...base,
        reason: 'PROCESSING_AT_PROVIDER',
        message: `Flutterwave is processing the refund (${state.providerStatus ?? 'pending'})`,
        nextLookSeconds: PENDING_LOOK_SECONDS,
      };
    default:
      return {
        ...base,
        reason: 'UNRECOGNISED_PROVIDER_STATUS',
        message: `Flutterwave reports the refund as "${state.providerStatus ?? '?'}", which we do not recognise`,
        nextLookSeconds: UNKNOWN_LOOK_SECONDS,
      };
  }
}
