import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { AuthUser } from '../auth/auth.types';
import { AppError, ConflictError, NotFoundError, ValidationFailedError } from '../common/errors';
import type { HttpResult } from '../common/idempotent-http';
import { safeError, safeMessage } from '../common/logging';
import { maskCheckoutRequestIdsInJson } from '../common/mask';
import { toMajor, toMinor } from '../common/money';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { pgErrorCode, UNIQUE_VIOLATION, type Tx } from '../database/database';
import type { Payment, Refund } from '../database/schema';
import { ORDERS_PORT, type OrdersPort } from '../orders/orders.port';
import { MerchantAccountsService } from './merchant-accounts.service';
import type { ResolvedAccount } from './merchant-accounts.types';
import { holdsMoney, OUTCOME_UNKNOWN } from './payment-status';
import { PaymentLifecycle } from './payment-lifecycle.service';
import type { PaymentResponseDto } from './payments.dto';
import { PaymentsRepository } from './payments.repository';
import type { ProviderName } from './providers/payment-provider';
import { ProviderError } from './providers/provider-errors';
import { RefundProvidersRegistry } from './refund-providers.registry';
import { RefundsRepository } from './refunds.repository';
import {
  canRefundTransition,
  COUNTED_REFUND_STATUSES,
  FINAL_REFUND_STATUSES,
  REFUND_AMOUNT_MISMATCH,
  type RefundProviderService,
  type RefundReport,
  type RefundStatus,
} from './refunds.types';

export interface RefundRequestInput {
  /** Major units; absent = everything still refundable. */
  amount?: number;
  /** When given, must be the payment's currency. */
  currency?: string;
  reason: string;
}

export interface RefundResponse {
  refundId: string;
  paymentId: string;
  orderId: string;
  provider: string;
  amount: number;
  currency: string;
  status: string;
  statusReason: string | null;
  resultCode: string | null;
  resultDesc: string | null;
  reason: string;
  source: string;
  requestedBy: string;
  providerRefundId: string | null;
  createdAt: string;
  updatedAt: string;
  completedAt: string | null;
}

export type ReviewAction = 'refund' | 'accept' | 'release';

export interface ReviewResolutionInput {
  action: ReviewAction;
  note: string;
  /** accept: the order the money is kept against (default: the payment's own order). */
  orderId?: string;
}

/** Seconds a `requested` refund is left to the request sending it before the reconciler takes it over. */
const REQUEST_LEASE_SECONDS = 120;
/** Seconds before the reconciler first asks about a refund whose answer is unknown (timeout). */
const UNKNOWN_FIRST_LOOK_SECONDS = 30;

/**
 * Money back, for every provider: the one place a refund is created (under the payment's row lock,
 * so the refunds of a payment never add up to more than it collected, however many managers press
 * at once), reaches a status (under the refund's row lock, once: a final status is never left), and
 * is audited (payment_events, one per step). Each provider's RefundProviderService only sends and
 * reads; results that arrive later (M-Pesa's ResultURL, webhooks, IPNs) come back through
 * applyReport. The reconciler drives open refunds to a final state with reconcileDue.
 */
@Injectable()
export class RefundsService {
  private readonly logger = new Logger(RefundsService.name);

  constructor(
    private readonly repo: RefundsRepository,
    private readonly payments: PaymentsRepository,
    private readonly lifecycle: PaymentLifecycle,
    private readonly registry: RefundProvidersRegistry,
    private readonly accounts: MerchantAccountsService,
    @Inject(ORDERS_PORT) private readonly orders: OrdersPort,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  // ---------------------------------------------------------------- reads

  findById(id: string): Promise<Refund | null> {
    return this.repo.findById(id);
  }

  findByProviderRefundId(provider: string, providerRefundId: string): Promise<Refund | null> {
    return this.repo.findByProviderRefundId(provider, providerRefundId);
  }

  listForPayment(paymentId: string): Promise<Refund[]> {
    return this.repo.listForPayment(paymentId);
  }

  async paymentOf(refund: Refund): Promise<Payment> {
    const p = await this.payments.findById(refund.paymentId);
    if (!p) throw new Error(`refund ${refund.id} names a payment that does not exist`);
    return p;
  }

  async listForShopPayment(user: AuthUser, paymentId: string): Promise<{ items: RefundResponse[] }> {
    const p = await this.payments.findForShop(user.shopId, paymentId);
    if (!p) throw new NotFoundError('Payment', { paymentId });
    const rows = await this.repo.listForPayment(p.id);
    return { items: rows.map(toRefundResponse) };
  }

  /** GET /refunds: the shop's refunds, newest first (e.g. ?status=review: the ones a person must look at). */
  async listForShop(user: AuthUser, limit: number, statuses?: readonly string[]): Promise<{ items: RefundResponse[] }> {
    const rows = await this.repo.listForShop(user.shopId, limit, statuses);
    return { items: rows.map(toRefundResponse) };
  }

  async getForShop(user: AuthUser, refundId: string): Promise<RefundResponse> {
    const r = await this.repo.findForShop(user.shopId, refundId);
    if (!r) throw new NotFoundError('Refund', { refundId });
    return toRefundResponse(r);
  }

  // ---------------------------------------------------------------- requesting

  /**
   * POST /payments/:id/refunds. Everything that can be refused is refused before anything is
   * written (404, 409 not refundable / nothing left, 400 currency, 422 more than refundable or
   * what the provider cannot do); then the refund is written `requested` with its Idempotency-Key
   * and committed, then sent. The answer is 201 with the refund's status after sending: pending
   * (the provider's result comes later), succeeded, failed, or unknown (the reconciler finds out).
   */
  async request(
    user: AuthUser,
    paymentId: string,
    input: RefundRequestInput,
    idempotencyKey?: string,
  ): Promise<HttpResult<RefundResponse | unknown>> {
    const route = `POST /payments/${paymentId}/refunds`;
    const requestHash = this.lifecycle.requestHash(route, { ...input });
    if (idempotencyKey) {
      const replay = await this.replay(user.shopId, idempotencyKey, requestHash);
      if (replay) return replay;
    }
    const payment = await this.payments.findForShop(user.shopId, paymentId);
    if (!payment) throw new NotFoundError('Payment', { paymentId });
    const { provider, account } = await this.prepare(payment, input);
    const written = await this.writeOrReplay(user, idempotencyKey, requestHash, (tx) =>
      this.insertRequested(tx, payment.id, user, input, provider, account, 'request', idempotencyKey, requestHash),
    );
    if (!('id' in written)) return written;
    const refund = written;
    const sent = await this.send(refund, payment, account, provider, `user:${user.sub}`);
    const result: HttpResult<RefundResponse> = { status: 201, body: toRefundResponse(sent) };
    if (idempotencyKey) await this.payments.storeIdempotentResponse(user.shopId, idempotencyKey, 201, result.body);
    return result;
  }

  /** The provider's service and the payment's account, and the refusals that need no lock. */
  private async prepare(
    payment: Payment,
    input: { currency?: string },
  ): Promise<{ provider: RefundProviderService; account: ResolvedAccount }> {
    refuseUnlessRefundable(payment);
    if (input.currency !== undefined && input.currency !== payment.currency)
      throw new ValidationFailedError(
        `currency must be the payment's currency (${payment.currency}): a refund is given back in what was paid`,
        { code: 'CURRENCY_MISMATCH' },
      );
    const provider = this.registry.get(payment.provider);
    if (!provider)
      throw new AppError(
        'PROVIDER_SWITCHED_OFF',
        `Refunds of ${payment.provider} payments are not available on this server right now; try again later`,
        503,
        { provider: payment.provider },
        { 'Retry-After': '30' },
      );
    const account = await this.accounts.resolveForExisting(payment.merchantAccountId, payment.provider as ProviderName);
    return { provider, account };
  }

  /**
   * Under the payment's row lock: what is left to refund (collected minus every refund that is not
   * failed), the amount (default: all of it), the provider's limits, then the row, its event and the
   * Idempotency-Key. Two requests for one payment are counted one after the other.
   */
  private async insertRequested(
    tx: Tx,
    paymentId: string,
    user: AuthUser,
    input: RefundRequestInput,
    provider: RefundProviderService,
    account: ResolvedAccount,
    source: 'request' | 'review',
    idempotencyKey: string | undefined,
    requestHash: string,
  ): Promise<Refund> {
    const p = await this.payments.lock(tx, paymentId);
    if (!p) throw new NotFoundError('Payment', { paymentId });
    refuseUnlessRefundable(p);
    const others = await this.repo.listForPayment(p.id, tx);
    const counted = countedMinor(others);
    const refundable = p.amountMinor - counted;
    if (refundable <= 0n)
      throw new ConflictError(
        'NOTHING_TO_REFUND',
        `Nothing is left to refund on this payment: its ${fmt(p.amountMinor, p.currency)} has been refunded or is being refunded`,
        { refundable: 0 },
      );
    let amountMinor = refundable;
    if (input.amount !== undefined) {
      try {
        amountMinor = toMinor(input.amount, p.currency);
      } catch {
        throw new ValidationFailedError(`amount has more decimal places than ${p.currency} allows`);
      }
      if (amountMinor <= 0n) throw new ValidationFailedError('amount must be more than 0');
      if (amountMinor > refundable)
        throw new AppError(
          'REFUND_EXCEEDS_REFUNDABLE',
          `At most ${fmt(refundable, p.currency)} can be refunded on this payment (collected ${fmt(p.amountMinor, p.currency)}, ` +
            `already refunded or being refunded ${fmt(counted, p.currency)})`,
          422,
          { refundable: toMajor(refundable, p.currency), currency: p.currency },
        );
    }
    provider.precheck(p, amountMinor, others, account);
    const id = randomUUID();
    const refund = await this.repo.insert(
      {
        id,
        paymentId: p.id,
        shopId: p.shopId,
        orderId: p.orderId,
        provider: p.provider,
        merchantAccountId: p.merchantAccountId,
        amountMinor,
        currency: p.currency,
        status: 'requested',
        reason: input.reason,
        source,
        requestedBy: `user:${user.sub}`,
        idempotencyKey: idempotencyKey ?? null,
        nextCheckAt: new Date(Date.now() + REQUEST_LEASE_SECONDS * 1000),
        // Held by this request while it sends (its token: the refund's own id); nobody else talks
        // to the provider about it meanwhile.
        claimedUntil: new Date(Date.now() + REQUEST_LEASE_SECONDS * 1000),
        claimedBy: id,
      },
      tx,
    );
    await this.payments.insertEvent(
      {
        paymentId: p.id,
        type: 'refund_requested',
        actor: `user:${user.sub}`,
        data: {
          refundId: refund.id,
          amountMinor: amountMinor.toString(),
          currency: p.currency,
          source,
          refundableBeforeMinor: refundable.toString(),
        },
      },
      tx,
    );
    if (idempotencyKey)
      await this.payments.insertIdempotencyKey(user.shopId, idempotencyKey, requestHash, p.id, tx, refund.id);
    return refund;
  }

  /** Sends a written refund and applies the provider's answer; provider trouble never throws here. */
  private async send(
    refund: Refund,
    payment: Payment,
    account: ResolvedAccount,
    provider: RefundProviderService,
    actor: string,
  ): Promise<Refund> {
    let report: RefundReport;
    try {
      report = { ...(await provider.submit({ refund, payment, account })), submitted: true };
    } catch (err) {
      report = failureReport(err);
      if (report.status === 'unknown')
        this.logger.warn(
          { refundId: refund.id, err: safeError(err) },
          'refund sent but the answer is unknown; the reconciler asks',
        );
    }
    const { refund: after } = await this.applyReport(refund.id, report, actor);
    await this.repo.releaseClaim(refund.id, refund.id);
    return after;
  }

  /**
   * Runs the transaction writing a refund and its Idempotency-Key; a request that lost the race for
   * the same key gets the winner's answer (or IDEMPOTENCY_REQUEST_IN_PROGRESS) instead of an error.
   */
  private async writeOrReplay(
    user: AuthUser,
    idempotencyKey: string | undefined,
    requestHash: string,
    write: (tx: Tx) => Promise<Refund>,
  ): Promise<Refund | HttpResult> {
    try {
      return await this.repo.transaction(write);
    } catch (err) {
      if (idempotencyKey && pgErrorCode(err) === UNIQUE_VIOLATION) {
        const replay = await this.replay(user.shopId, idempotencyKey, requestHash);
        if (replay) return replay;
      }
      throw err;
    }
  }

  private async replay(
    shopId: string,
    key: string,
    requestHash: string,
    /** The answer to give from the refund itself when the first request died before storing its own. */
    answerFrom: (r: Refund) => Promise<unknown> = async (r) => toRefundResponse(r),
  ): Promise<HttpResult | null> {
    const rec = await this.payments.findIdempotencyKey(shopId, key);
    if (!rec) return null;
    if (rec.requestHash !== requestHash)
      throw new ConflictError(
        'IDEMPOTENCY_KEY_REUSED',
        'This Idempotency-Key was already used with a different request; use a new key for a new refund',
      );
    if (rec.responseStatus === null) {
      // The first request is still sending, or died before storing its answer: once it cannot be
      // running any more, the refund itself is the answer (the reconciler finds out where it stands).
      const r = rec.refundId ? await this.repo.findById(rec.refundId) : null;
      if (r && Date.now() - rec.createdAt.getTime() > (REQUEST_LEASE_SECONDS + 30) * 1000)
        return { status: 201, body: await answerFrom(r), replayed: true };
      throw new ConflictError(
        'IDEMPOTENCY_REQUEST_IN_PROGRESS',
        'A request with this Idempotency-Key is still being processed; retry in a few seconds',
        { refundId: rec.refundId },
      );
    }
    // Masked again: an answer stored before ids were answered masked holds the payer's number.
    return { status: rec.responseStatus, body: maskCheckoutRequestIdsInJson(rec.responseBody), replayed: true };
  }

  // ---------------------------------------------------------------- outcomes

  /**
   * The one place a refund changes status: under its row lock, only along the allowed transitions
   * (a final status is never left; a report for one is recorded as ignored), a success for another
   * amount goes to review, the provider's state is merged, and the step is an audit event. A failed
   * refund that resolved a payment in review puts that payment back in the review list.
   */
  async applyReport(
    refundId: string,
    report: RefundReport,
    actor: string,
  ): Promise<{ refund: Refund; changed: boolean }> {
    return this.repo.transaction(async (tx) => {
      const r = await this.repo.lock(tx, refundId);
      if (!r) throw new NotFoundError('Refund', { refundId });
      let target: RefundStatus = report.status;
      let reason = report.reason ?? null;
      if (target === 'succeeded' && report.amountMinor !== undefined && report.amountMinor !== r.amountMinor) {
        target = 'review';
        reason = REFUND_AMOUNT_MISMATCH;
      }
      const providerData = { ...(r.providerData as Record<string, unknown>), ...(report.providerData ?? {}) };
      const submissions = r.submissions + (report.submitted ? 1 : 0);
      if (r.status === target || !canRefundTransition(r.status, target)) {
        const final = (FINAL_REFUND_STATUSES as readonly string[]).includes(r.status);
        // Same status (still pending) or a report for a final refund: keep what it adds, change nothing else.
        if (!final) {
          await this.repo.update(
            r.id,
            {
              providerData,
              submissions,
              providerRefundId: r.providerRefundId ?? report.providerRefundId ?? null,
              // What the latest answer says (e.g. "M-Pesa shows no reversal: it will be sent"), status unchanged.
              resultCode: report.providerCode ?? r.resultCode,
              resultDesc: report.message ?? r.resultDesc,
              nextCheckAt: this.nextLook(r, report),
            },
            tx,
          );
        } else if (r.status === 'failed' && r.statusReason === 'SETTLED_FAILED' && report.status === 'succeeded') {
          // A manager settled it failed by hand; the provider now says the money went back. Nothing
          // final is changed, but a person must know at once (the amount may have been refunded again).
          this.logger.error(
            { refundId: r.id, paymentId: r.paymentId, providerCode: report.providerCode },
            'the provider reports a refund settled failed by hand as succeeded: check it with the provider',
          );
          await this.payments.insertEvent(
            {
              paymentId: r.paymentId,
              type: 'refund_settlement_contradicted',
              actor,
              data: { refundId: r.id, status: r.status, reported: report.status, providerCode: report.providerCode },
            },
            tx,
          );
        } else if (r.status !== target || report.providerCode !== r.resultCode) {
          await this.payments.insertEvent(
            {
              paymentId: r.paymentId,
              type: 'refund_report_ignored',
              actor,
              data: { refundId: r.id, status: r.status, reported: report.status, providerCode: report.providerCode },
            },
            tx,
          );
        }
        return { refund: (await this.repo.findById(r.id, tx)) ?? r, changed: false };
      }
      const final = target === 'succeeded' || target === 'failed';
      await this.repo.update(
        r.id,
        {
          status: target,
          statusReason: reason,
          resultCode: report.providerCode ?? r.resultCode,
          resultDesc: report.message ?? r.resultDesc,
          providerRefundId: r.providerRefundId ?? report.providerRefundId ?? null,
          providerData,
          submissions,
          nextCheckAt: final || target === 'review' ? null : this.nextLook(r, report),
          completedAt: final ? new Date() : null,
        },
        tx,
      );
      await this.payments.insertEvent(
        {
          paymentId: r.paymentId,
          type: 'refund_status_changed',
          fromStatus: r.status,
          toStatus: target,
          actor,
          data: {
            refundId: r.id,
            reason,
            providerCode: report.providerCode,
            ...(reason === REFUND_AMOUNT_MISMATCH ? { reportedAmountMinor: report.amountMinor?.toString() } : {}),
          },
        },
        tx,
      );
      if (target === 'failed' && r.source === 'review') await this.reopenReview(tx, r, actor);
      const level = target === 'review' || target === 'failed' ? 'warn' : 'log';
      this.logger[level]({ refundId: r.id, from: r.status, to: target, reason }, 'refund status changed');
      return { refund: (await this.repo.findById(r.id, tx))!, changed: true };
    });
  }

  private nextLook(r: Refund, report: RefundReport): Date {
    const seconds =
      report.nextLookSeconds ??
      (report.status === 'unknown' ? UNKNOWN_FIRST_LOOK_SECONDS : this.config.reconciler.refundFirstLookSeconds);
    // A refund still being sent keeps its lease; otherwise the provider's answer sets the next look.
    return new Date(Date.now() + Math.max(0, seconds) * 1000);
  }

  /** The refund that resolved a payment in review failed: the payment needs a person again. */
  private async reopenReview(tx: Tx, r: Refund, actor: string): Promise<void> {
    const p = await this.payments.lock(tx, r.paymentId);
    if (!p || p.resolution !== 'refunded') return;
    await this.payments.update(
      p.id,
      { resolution: null, resolutionNote: null, resolvedBy: null, resolvedAt: null },
      tx,
    );
    await this.payments.insertEvent(
      { paymentId: p.id, type: 'review_reopened', actor, data: { refundId: r.id, why: 'the refund failed' } },
      tx,
    );
  }

  /**
   * POST /refunds/:id/settle: a manager settles a refund parked in review, having checked with the
   * provider (its portal, the statement) whether the money went back. Audited with who and the note.
   */
  async settleByManager(
    user: AuthUser,
    refundId: string,
    outcome: 'succeeded' | 'failed',
    note: string,
  ): Promise<RefundResponse> {
    const r = await this.repo.findForShop(user.shopId, refundId);
    if (!r) throw new NotFoundError('Refund', { refundId });
    if (r.status !== 'review')
      throw new ConflictError(
        'REFUND_NOT_IN_REVIEW',
        `Only a refund in review can be settled by hand; this one is ${r.status}` +
          ((FINAL_REFUND_STATUSES as readonly string[]).includes(r.status)
            ? ''
            : ' and is still being checked with the provider'),
        { status: r.status },
      );
    // Not while the provider is being asked about it (reconcile-now): its answer could contradict the settlement.
    const token = randomUUID();
    if (!(await this.repo.claimOne(r.id, ['review'], this.config.reconciler.leaseSeconds, token)))
      throw new ConflictError(
        'REFUND_BUSY',
        'This refund is being checked with the provider right now; look at it again in a minute before settling it',
      );
    let settled: { refund: Refund; changed: boolean };
    try {
      settled = await this.applyReport(
        r.id,
        { status: outcome, reason: outcome === 'succeeded' ? 'SETTLED_SUCCEEDED' : 'SETTLED_FAILED', message: note },
        `user:${user.sub}`,
      );
    } finally {
      await this.repo.releaseClaim(r.id, token);
    }
    const { refund, changed } = settled;
    if (!changed)
      throw new ConflictError('REFUND_NOT_IN_REVIEW', `This refund was settled meanwhile: it is ${refund.status}`, {
        status: refund.status,
      });
    return toRefundResponse(refund);
  }

  /**
   * A refund the provider made on its own (a chargeback, a refund made in its dashboard, Pesapal's
   * `reversed`), or the provider's report of one of ours by its id: recorded once (by the provider's
   * refund id) as succeeded.
   */
  async recordProviderReported(
    payment: Payment,
    input: { amountMinor: bigint; providerRefundId: string; message: string; reason?: string },
    actor: string,
  ): Promise<Refund> {
    const existing = await this.repo.findByProviderRefundId(payment.provider, input.providerRefundId);
    if (existing) {
      if (existing.paymentId !== payment.id)
        throw new Error(`provider refund ${input.providerRefundId} belongs to another payment`);
      return (
        await this.applyReport(
          existing.id,
          { status: 'succeeded', amountMinor: input.amountMinor, message: input.message },
          actor,
        )
      ).refund;
    }
    try {
      return await this.repo.transaction(async (tx) => {
        const p = (await this.payments.lock(tx, payment.id)) ?? payment;
        const others = await this.repo.listForPayment(p.id, tx);
        const counted = countedMinor(others);
        const over = counted + input.amountMinor > p.amountMinor;
        const refund = await this.repo.insert(
          {
            id: randomUUID(),
            paymentId: p.id,
            shopId: p.shopId,
            orderId: p.orderId,
            provider: p.provider,
            merchantAccountId: p.merchantAccountId,
            amountMinor: input.amountMinor,
            currency: p.currency,
            // More back than the payment had left: the provider did it, but a person must look.
            status: over ? 'review' : 'succeeded',
            statusReason: over ? 'EXCEEDS_REFUNDABLE' : (input.reason ?? null),
            resultDesc: input.message.slice(0, 500),
            reason: input.message.slice(0, 500),
            source: 'provider',
            requestedBy: actor,
            providerRefundId: input.providerRefundId,
            completedAt: over ? null : new Date(),
          },
          tx,
        );
        await this.payments.insertEvent(
          {
            paymentId: p.id,
            type: 'refund_reported_by_provider',
            toStatus: refund.status,
            actor,
            data: { refundId: refund.id, amountMinor: input.amountMinor.toString(), over },
          },
          tx,
        );
        if (over)
          this.logger.error(
            { paymentId: p.id, refundId: refund.id },
            'the provider reports more refunded than the payment had left; in review',
          );
        return refund;
      });
    } catch (err) {
      // Reported twice at once: the other delivery recorded it.
      if (pgErrorCode(err) !== UNIQUE_VIOLATION) throw err;
      const r = await this.repo.findByProviderRefundId(payment.provider, input.providerRefundId);
      if (!r) throw err;
      return r;
    }
  }

  // ---------------------------------------------------------------- review resolution

  /**
   * POST /payments/:id/resolve: a manager resolves a payment in review.
   * - refund: all of what it holds goes back (a refund like POST /payments/:id/refunds, source
   *   review); the payment leaves the review list, and comes back to it if that refund fails.
   * - accept: the money stays: the payment is completed against its own order or `orderId` (which
   *   must be in its currency and owe at least its amount), counting towards that order.
   * - release: closed with the note and nothing sent (the money was given back another way, or was
   *   never taken). A payment whose outcome is unknown is released as POST /payments/:id/release does:
   *   its order may take a new payment and the truth still settles it.
   */
  async resolveReview(
    user: AuthUser,
    paymentId: string,
    input: ReviewResolutionInput,
    idempotencyKey?: string,
  ): Promise<HttpResult<{ payment: PaymentResponseDto; refund: RefundResponse | null } | unknown>> {
    const p = await this.payments.findForShop(user.shopId, paymentId);
    if (!p) throw new NotFoundError('Payment', { paymentId });
    const requestHash = this.lifecycle.requestHash(`POST /payments/${paymentId}/resolve`, { ...input });
    if (idempotencyKey) {
      // A retry of a refund resolution gets its first answer, though the payment is resolved by now;
      // a key first used for another request is refused, whatever the action.
      const replay = await this.replay(user.shopId, idempotencyKey, requestHash, async (r) => ({
        payment: this.lifecycle.toResponse((await this.payments.findById(r.paymentId)) ?? p),
        refund: toRefundResponse(r),
      }));
      if (replay) return replay;
    }
    refuseUnlessOpenReview(p);
    if (input.action === 'release') {
      if (p.statusReason === OUTCOME_UNKNOWN) {
        const released = await this.lifecycle.release(user, p.id, input.note);
        return { status: 200, body: { payment: this.lifecycle.toResponse(released), refund: null } };
      }
      const resolved = await this.payments.transaction(async (tx) => {
        const locked = await this.payments.lock(tx, p.id);
        if (!locked) throw new NotFoundError('Payment', { paymentId });
        refuseUnlessOpenReview(locked);
        return this.markResolved(tx, locked, user, 'released', input.note);
      });
      return { status: 200, body: { payment: this.lifecycle.toResponse(resolved), refund: null } };
    }
    if (!holdsMoney(p))
      throw new ConflictError(
        'PAYMENT_NOT_RESOLVABLE',
        `This payment is in review because ${p.statusReason ?? 'of a problem'}: it is not known to hold the customer's money, so it cannot be ${input.action === 'refund' ? 'refunded' : 'accepted'}. Reconcile it, or release it with a note`,
      );
    if (input.action === 'accept') return { status: 200, body: await this.accept(user, p, input) };
    // refund
    const { provider, account } = await this.prepare(p, {});
    const written = await this.writeOrReplay(user, idempotencyKey, requestHash, async (tx) => {
      const created = await this.insertRequested(
        tx,
        p.id,
        user,
        { reason: input.note },
        provider,
        account,
        'review',
        idempotencyKey,
        requestHash,
      );
      const locked = (await this.payments.lock(tx, p.id))!;
      refuseUnlessOpenReview(locked);
      await this.markResolved(tx, locked, user, 'refunded', input.note, { refundId: created.id });
      return created;
    });
    if (!('id' in written)) return written;
    const refund = written;
    const sent = await this.send(refund, p, account, provider, `user:${user.sub}`);
    const fresh = (await this.payments.findById(p.id)) ?? p;
    const result = { status: 201, body: { payment: this.lifecycle.toResponse(fresh), refund: toRefundResponse(sent) } };
    if (idempotencyKey) await this.payments.storeIdempotentResponse(user.shopId, idempotencyKey, 201, result.body);
    return result;
  }

  private async accept(
    user: AuthUser,
    p: Payment,
    input: ReviewResolutionInput,
  ): Promise<{ payment: PaymentResponseDto; refund: null }> {
    const orderId = input.orderId ?? p.orderId;
    let orderPaid = false;
    const accepted = await this.payments.transaction(async (tx) => {
      const locked = await this.payments.lock(tx, p.id);
      if (!locked) throw new NotFoundError('Payment', { paymentId: p.id });
      refuseUnlessOpenReview(locked);
      const refunds = await this.repo.listForPayment(locked.id, tx);
      if (refunds.some((r) => r.status !== 'failed'))
        throw new ConflictError(
          'PAYMENT_HAS_REFUNDS',
          'This payment has a refund that is not failed; it cannot also be kept against an order',
        );
      const balance = await this.orders.getBalance(locked.shopId, orderId, tx);
      if (!balance) throw new NotFoundError('Order', { orderId });
      // Under the order's row lock (getBalance above), which a new payment takes too before it is written.
      const blocking = await this.payments.findBlockingForOrder(locked.shopId, orderId, tx);
      if (blocking && blocking.id !== locked.id)
        throw new ConflictError(
          'ORDER_HAS_OPEN_PAYMENT',
          `Order ${orderId} has a payment that may still take the customer's money (${blocking.status}); wait for it to finish, or accept against another order`,
          { paymentId: blocking.id, status: blocking.status },
        );
      if (balance.currency !== locked.currency)
        throw new ConflictError(
          'ORDER_CURRENCY_MISMATCH',
          `Order ${orderId} is in ${balance.currency}; this payment is in ${locked.currency}`,
        );
      if (balance.outstandingMinor < locked.amountMinor)
        throw new ConflictError(
          'ORDER_CANNOT_TAKE_PAYMENT',
          `Order ${orderId} owes ${fmt(balance.outstandingMinor, balance.currency)}; this payment of ${fmt(locked.amountMinor, locked.currency)} would take it past its total. ` +
            'Accept it against an order that owes at least its amount, or refund it',
          { outstanding: toMajor(balance.outstandingMinor, balance.currency) },
        );
      await this.payments.update(
        locked.id,
        {
          status: 'completed',
          orderId,
          completedAt: locked.completedAt ?? new Date(),
          resolution: 'accepted',
          resolutionNote: input.note,
          resolvedBy: `user:${user.sub}`,
          resolvedAt: new Date(),
        },
        tx,
      );
      await this.payments.insertEvent(
        {
          paymentId: locked.id,
          type: 'review_resolved',
          fromStatus: 'review',
          toStatus: 'completed',
          actor: `user:${user.sub}`,
          data: { resolution: 'accepted', reason: locked.statusReason, fromOrderId: locked.orderId, orderId },
        },
        tx,
      );
      orderPaid = await this.orders.settleIfPaid(locked.shopId, orderId, tx);
      return (await this.payments.findById(locked.id, tx))!;
    });
    if (orderPaid) this.orders.notifyPaid(accepted.shopId, orderId);
    this.logger.log({ paymentId: p.id, orderId }, 'payment in review accepted');
    return { payment: this.lifecycle.toResponse(accepted), refund: null };
  }

  private async markResolved(
    tx: Tx,
    p: Payment,
    user: AuthUser,
    resolution: 'refunded' | 'released',
    note: string,
    data: Record<string, unknown> = {},
  ): Promise<Payment> {
    await this.payments.update(
      p.id,
      { resolution, resolutionNote: note, resolvedBy: `user:${user.sub}`, resolvedAt: new Date() },
      tx,
    );
    await this.payments.insertEvent(
      {
        paymentId: p.id,
        type: 'review_resolved',
        actor: `user:${user.sub}`,
        data: { resolution, reason: p.statusReason, ...data },
      },
      tx,
    );
    return (await this.payments.findById(p.id, tx))!;
  }
}

function refuseUnlessRefundable(p: Payment): void {
  if (p.resolution === 'released')
    throw new ConflictError(
      'PAYMENT_RELEASED',
      `This payment was closed from review with a note by ${p.resolvedBy ?? 'a manager'} ("${(p.resolutionNote ?? '').slice(0, 100)}"): the money was settled another way, so it cannot be refunded here`,
      { resolution: p.resolution },
    );
  if (holdsMoney(p)) return;
  const why =
    p.status === 'review'
      ? `it is in review because ${p.statusReason ?? 'of a problem'}, which does not mean it took the customer's money`
      : `it is ${p.status}`;
  throw new ConflictError(
    'PAYMENT_NOT_REFUNDABLE',
    `Only a completed payment (or one in review that took the customer's money) can be refunded; this one is not: ${why}`,
    { status: p.status, statusReason: p.statusReason },
  );
}

function refuseUnlessOpenReview(p: Payment): void {
  if (p.status !== 'review')
    throw new ConflictError(
      'PAYMENT_NOT_IN_REVIEW',
      `Only a payment in review can be resolved; this one is ${p.status}`,
      {
        status: p.status,
      },
    );
  if (p.resolution !== null)
    throw new ConflictError(
      'PAYMENT_ALREADY_RESOLVED',
      `This payment was already resolved (${p.resolution}) by ${p.resolvedBy ?? 'someone'}`,
      { resolution: p.resolution },
    );
  if (p.statusReason === OUTCOME_UNKNOWN && p.releasedAt)
    throw new ConflictError('PAYMENT_ALREADY_RESOLVED', 'This payment was already released', {
      resolution: 'released',
    });
}

/** What a failed submission means for the refund: not sent → failed; anything else → unknown. */
function failureReport(err: unknown): RefundReport {
  if (err instanceof ProviderError) {
    const message = err.message.slice(0, 500);
    if (err.outcome === 'not_processed')
      return { status: 'failed', reason: err.code, providerCode: err.providerCode, message };
    return { status: 'unknown', reason: err.code, providerCode: err.providerCode, message };
  }
  if (err instanceof AppError) return { status: 'failed', reason: err.code, message: err.message.slice(0, 500) };
  return {
    status: 'unknown',
    reason: 'SEND_FAILED',
    message: `The refund may or may not have reached the provider (${safeMessage(err).slice(0, 200)}); it is being checked`,
  };
}

/** What a payment's refunds have given back or may still give back (every status but failed). */
function countedMinor(refunds: readonly Refund[]): bigint {
  return refunds
    .filter((r) => (COUNTED_REFUND_STATUSES as readonly string[]).includes(r.status))
    .reduce((sum, r) => sum + r.amountMinor, 0n);
}

function fmt(minor: bigint, currency: string): string {
  return `${toMajor(minor, currency)} ${currency}`;
}

export function toRefundResponse(r: Refund): RefundResponse {
  return {
    refundId: r.id,
    paymentId: r.paymentId,
    orderId: r.orderId,
    provider: r.provider,
    amount: toMajor(r.amountMinor, r.currency),
    currency: r.currency,
    status: r.status,
    statusReason: r.statusReason,
    resultCode: r.resultCode,
    resultDesc: r.resultDesc,
    reason: r.reason,
    source: r.source,
    requestedBy: r.requestedBy,
    providerRefundId: r.providerRefundId,
    createdAt: r.createdAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
    completedAt: r.completedAt ? r.completedAt.toISOString() : null,
  };
}
