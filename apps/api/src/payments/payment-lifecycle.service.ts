import { Inject, Injectable, Logger } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { createHmac, randomUUID } from 'node:crypto';
import type { AuthUser } from '../auth/auth.types';
import { AppError, ConflictError, NotFoundError } from '../common/errors';
import type { HttpResult } from '../common/idempotent-http';
import { toMajor } from '../common/money';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { pgErrorCode, Tx, UNIQUE_VIOLATION } from '../database/database';
import type { NewPayment, Payment } from '../database/schema';
import { OrderBalance, ORDERS_PORT, OrdersPort } from '../orders/orders.port';
import type { StkOutcome } from './providers/mpesa/daraja.types';
import { normaliseMpesaReceipt } from './providers/mpesa/receipt';
import { canTransition, holdsMoney, isInFlight, isTerminal, OUTCOME_UNKNOWN, PaymentStatus, SECOND_CHARGE } from './payment-status';
import type { PaymentResponseDto } from './payments.dto';
import { PaymentsRepository } from './payments.repository';

export const PAYMENT_COMPLETED_EVENT = 'payment.completed';

export interface PaymentCompletedEvent {
  paymentId: string;
  shopId: string;
  orderId: string;
  amountMinor: bigint;
  currency: string;
  provider: string;
  mpesaReceiptNumber: string | null;
  /** true when this completion also settled the order */
  orderPaid: boolean;
}

/** HttpResult lives in common/ (the controllers' sendHttpResult takes it); re-exported for the services. */
export type { HttpResult } from '../common/idempotent-http';

export { OUTCOME_UNKNOWN } from './payment-status';

export type Outcome = StkOutcome;

const PROVIDER_LABELS: Record<string, string> = { mpesa: 'M-Pesa', flutterwave: 'Flutterwave', pesapal: 'Pesapal' };

const REASONS: Record<Outcome, string> = {
  completed: 'PAID',
  failed: 'FAILED_AT_PROVIDER',
  cancelled: 'CANCELLED_BY_CUSTOMER',
  expired: 'NO_RESPONSE_FROM_CUSTOMER',
};

/**
 * What a provider told us about a transaction (callback, webhook, IPN-confirmed status, query),
 * normalised. The lifecycle checks it against what the server knows before anything changes.
 */
export interface OutcomeReport {
  outcome: Outcome;
  resultCode: string | null;
  resultDesc: string;
  /** where it came from; 'query'/'verify' answers come from asking the provider ourselves */
  source: 'callback' | 'query' | 'webhook' | 'verify' | 'ipn' | 'statement';
  /** the report carries an amount that must match before value is given (M-Pesa callbacks, every card/wallet status) */
  amountRequired: boolean;
  amountMinor?: bigint;
  currency?: string;
  /** M-Pesa ids */
  checkoutRequestId?: string;
  merchantRequestId?: string;
  /** card/wallet: the provider's transaction id and our reference as the provider reports them */
  providerTransactionId?: string;
  reference?: string;
  /** M-Pesa receipt (mpesa) or provider confirmation code (others) */
  receipt?: string;
  transactionDate?: string;
  paymentMethod?: string;
}

export type ApplyResult = 'applied' | 'duplicate' | 'unknown_payment' | 'review' | 'ignored';

export interface OpenPaymentInput {
  user: AuthUser;
  orderId: string;
  amountMinor: bigint;
  currency: string;
  provider: string;
  /** shown in messages: "M-Pesa", "Flutterwave", "Pesapal" */
  providerLabel: string;
  idempotencyKey?: string;
  requestHash: string;
  /** provider-specific columns of the new row (phone, references, ...) */
  fields: Partial<NewPayment>;
  /** extra audit data for the 'created' event (no secrets, masked phones only) */
  eventData: Record<string, unknown>;
}

/**
 * The provider-independent core of every payment: order rules, the payment row and its audit
 * events, Idempotency-Key replays, the one place a payment reaches an outcome (under a row lock,
 * checked against what the server knows), and the order update in the same transaction.
 * Provider services (M-Pesa, Flutterwave, Pesapal) only translate provider messages into
 * OutcomeReports and call this.
 */
@Injectable()
export class PaymentLifecycle {
  private readonly logger = new Logger(PaymentLifecycle.name);

  constructor(
    private readonly repo: PaymentsRepository,
    @Inject(ORDERS_PORT) private readonly orders: OrdersPort,
    private readonly events: EventEmitter2,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Longest a request can hold an Idempotency-Key unanswered: the slowest provider timeout plus a margin. */
  private requestLifetimeSeconds(): number {
    const c = this.config;
    return Math.max(c.mpesa.httpTimeoutMs, c.flutterwave.timeoutMs, c.pesapal.timeoutMs) / 1000 + 30;
  }

  /** The order's balance, or 404 (a card/wallet init needs the order's currency before its amount can be read). */
  async requireOrder(shopId: string, orderId: string): Promise<OrderBalance> {
    const balance = await this.orders.getBalance(shopId, orderId);
    if (!balance) throw new NotFoundError('Order', { orderId });
    return balance;
  }

  /** The order exists, is in `currency`, is not paid, and owes at least `amountMinor` (`known`: a balance just read). */
  async checkOrder(shopId: string, orderId: string, amountMinor: bigint, currency: string, providerLabel: string, amountText: string, known?: OrderBalance): Promise<void> {
    const balance = known ?? (await this.requireOrder(shopId, orderId));
    if (balance.currency !== currency) {
      throw new AppError('CURRENCY_NOT_SUPPORTED', providerLabel === 'M-Pesa' ? `M-Pesa takes KES only; order ${orderId} is in ${balance.currency}` : `Order ${orderId} is in ${balance.currency}; pay it in ${balance.currency}, not ${currency}`, 400);
    }
    if (balance.outstandingMinor <= 0n) throw new ConflictError('ORDER_ALREADY_PAID', `Order ${orderId} is already fully paid`, { orderId });
    if (amountMinor > balance.outstandingMinor) {
      throw new AppError('AMOUNT_EXCEEDS_OUTSTANDING', `Amount ${amountText} is more than the ${toMajor(balance.outstandingMinor, currency)} ${currency} still owed on order ${orderId}`, 400, {
        outstanding: toMajor(balance.outstandingMinor, currency),
      });
    }
  }

  /**
   * Writes the payment as 'initiated' (before any provider call), its 'created' event and the
   * Idempotency-Key, in one transaction. A lost race returns the replay of the winner's answer or
   * a PAYMENT_IN_PROGRESS conflict naming the open payment.
   */
  async openPayment(paymentId: string, input: OpenPaymentInput): Promise<HttpResult | null> {
    const { user, orderId, amountMinor, currency, provider, idempotencyKey, requestHash } = input;
    try {
      await this.repo.transaction(async (tx) => {
        await this.repo.insertPayment({ ...input.fields, id: paymentId, shopId: user.shopId, orderId, amountMinor, currency, provider, status: 'initiated', idempotencyKey: idempotencyKey ?? null, createdBy: user.sub }, tx);
        await this.repo.insertEvent({ paymentId, type: 'created', toStatus: 'initiated', actor: `user:${user.sub}`, data: { amountMinor: amountMinor.toString(), currency, orderId, provider, ...input.eventData } }, tx);
        if (idempotencyKey) await this.repo.insertIdempotencyKey(user.shopId, idempotencyKey, requestHash, paymentId, tx);
      });
      return null;
    } catch (err) {
      if (pgErrorCode(err) !== UNIQUE_VIOLATION) throw err;
      // Lost a race: either the same Idempotency-Key or another payment in flight for the order.
      if (idempotencyKey) {
        const replay = await this.replayIdempotent(user.shopId, idempotencyKey, requestHash);
        if (replay) return replay;
      }
      const existing = await this.repo.findBlockingForOrder(user.shopId, orderId);
      if (existing?.status === 'review') throw this.outcomeUnknownConflict(existing);
      throw new ConflictError('PAYMENT_IN_PROGRESS', `Order ${orderId} already has a payment waiting for the customer; wait for it to finish or check its status`, {
        payment: existing ? this.toResponse(existing) : undefined,
      });
    }
  }

  /** 409 for a new payment on an order whose earlier payment may have taken the money (its outcome is unknown). */
  private outcomeUnknownConflict(p: Payment): ConflictError {
    const label = PROVIDER_LABELS[p.provider] ?? p.provider;
    const mpesa = p.provider === 'mpesa';
    // Without a CheckoutRequestID an STK query has nothing to ask with: reconcile cannot learn
    // anything, only the statement (or a manager's release) settles it.
    const manager = mpesa && !p.checkoutRequestId ? 'ask a manager to release it or upload the M-Pesa statement' : 'ask a manager to reconcile or release it';
    return new ConflictError(
      'PAYMENT_OUTCOME_UNKNOWN',
      `Order ${p.orderId} has an earlier ${label} payment of ${toMajor(p.amountMinor, p.currency)} ${p.currency} whose outcome is unknown: it may be paid. ` +
        `Do not charge again: check the customer's ${mpesa ? 'M-Pesa SMS' : 'payment confirmation'}, or ${manager}.`,
      { payment: this.toResponse(p) },
    );
  }

  /**
   * A manager releases the order of a payment whose outcome is unknown, so a new payment can be
   * taken (e.g. the customer shows no SMS and the provider has no answer). Audited with who and why.
   * The payment stays in review: a late report of the truth still settles it (and a success that
   * no longer fits the order goes to review, EXCEEDS_OUTSTANDING).
   */
  async release(user: AuthUser, paymentId: string, reason: string): Promise<Payment> {
    return this.repo.transaction(async (tx) => {
      const p = await this.repo.lock(tx, paymentId);
      if (!p || p.shopId !== user.shopId) throw new NotFoundError('Payment', { paymentId });
      const details = { paymentId, status: p.status, statusReason: p.statusReason };
      if (isInFlight(p.status)) {
        throw new ConflictError('PAYMENT_NOT_RELEASABLE', 'This payment is still waiting for the customer or the provider: wait for it to finish, or reconcile it (POST /payments/:id/reconcile); only a payment whose outcome is unknown can be released', details);
      }
      if (p.status !== 'review' || p.statusReason !== OUTCOME_UNKNOWN) {
        throw new ConflictError('PAYMENT_NOT_RELEASABLE', `This payment's outcome is known (${p.status}${p.statusReason ? `, ${p.statusReason}` : ''}): it does not block its order, so there is nothing to release`, details);
      }
      if (p.releasedAt) {
        throw new ConflictError('PAYMENT_NOT_RELEASABLE', `This payment's order was already released on ${p.releasedAt.toISOString()}`, { ...details, releasedAt: p.releasedAt.toISOString() });
      }
      const releasedAt = new Date();
      await this.repo.update(p.id, { releasedAt }, tx);
      await this.repo.insertEvent({ paymentId, type: 'order_released', fromStatus: p.status, actor: `user:${user.sub}`, data: { reason, role: user.role, orderId: p.orderId } }, tx);
      this.logger.warn({ paymentId, orderId: p.orderId, actor: `user:${user.sub}` }, 'order released from a payment whose outcome is unknown');
      return (await this.repo.findById(p.id, tx)) ?? { ...p, releasedAt };
    });
  }

  async replayIdempotent(shopId: string, key: string, requestHash: string): Promise<HttpResult | null> {
    const rec = await this.repo.findIdempotencyKey(shopId, key);
    if (!rec) return null;
    if (rec.requestHash !== requestHash) {
      throw new ConflictError('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was already used with a different request body; use a new key for a new payment');
    }
    if (rec.responseStatus === null) {
      // The first request is still running, or it died (crash, lost connection to the database)
      // between calling the provider and storing its answer. Once no request can still be running
      // with it, the payment itself is the answer (it says what really happened): a key never
      // stays stuck.
      const ageSeconds = (Date.now() - rec.createdAt.getTime()) / 1000;
      const p = rec.paymentId && ageSeconds > this.requestLifetimeSeconds() ? await this.repo.findById(rec.paymentId) : null;
      if (p) {
        return { status: 200, body: this.toResponse(p), replayed: true };
      }
      throw new ConflictError('IDEMPOTENCY_REQUEST_IN_PROGRESS', 'A request with this Idempotency-Key is still being processed; retry in a few seconds', { paymentId: rec.paymentId });
    }
    return { status: rec.responseStatus, body: rec.responseBody, replayed: true };
  }

  /** The keyed hash of a payment-creating request, stored with its Idempotency-Key. */
  requestHash(route: string, body: object): string {
    return hashRequest(this.config.mpesa.callbackSigningSecret, route, body);
  }

  storeIdempotentResponse(shopId: string, key: string, result: HttpResult): Promise<void> {
    return this.repo.storeIdempotentResponse(shopId, key, result.status, result.body);
  }

  /**
   * Parks an open payment whose outcome nobody can establish in review (OUTCOME_UNKNOWN): the
   * push may have reached the provider, so the order stays blocked (payments_one_in_flight_per_order_uq)
   * until the truth settles it or a manager releases it (`release`).
   */
  async moveUnknownToReview(paymentId: string, data: Record<string, unknown>, onlyWithoutProviderId: boolean): Promise<boolean> {
    return this.repo.transaction(async (tx) => {
      const p = await this.repo.lock(tx, paymentId);
      if (!p || isTerminal(p.status) || p.status === 'review' || (onlyWithoutProviderId && p.checkoutRequestId)) return false;
      await this.repo.update(p.id, { status: 'review', statusReason: OUTCOME_UNKNOWN }, tx);
      await this.repo.insertEvent({ paymentId, type: 'status_changed', fromStatus: p.status, toStatus: 'review', actor: 'system', data: { reason: OUTCOME_UNKNOWN, ...data } }, tx);
      this.logger.warn({ paymentId, reason: OUTCOME_UNKNOWN }, 'payment moved to review');
      return true;
    });
  }

  /** Fails an open payment for a reason of ours (not a provider outcome), e.g. NOT_FOUND_AT_PROVIDER. */
  failOpen(paymentId: string, reason: string, message: string, actor: string): Promise<boolean> {
    return this.closeOpen(paymentId, 'failed', reason, message, actor);
  }

  /**
   * Closes a still-open payment as failed or expired for a reason of ours (NOT_FOUND_AT_PROVIDER,
   * CHECKOUT_EXPIRED), under the row lock; false if it was no longer open.
   */
  async closeOpen(paymentId: string, status: 'failed' | 'expired', reason: string, message: string, actor: string, data: Record<string, unknown> = {}): Promise<boolean> {
    return this.repo.transaction(async (tx) => {
      const p = await this.repo.lock(tx, paymentId);
      if (!p || isTerminal(p.status) || p.status === 'review') return false;
      await this.repo.update(paymentId, { status, statusReason: reason, resultDesc: message.slice(0, 500) }, tx);
      await this.repo.insertEvent({ paymentId, type: 'status_changed', fromStatus: p.status, toStatus: status, actor, data: { reason, message, ...data } }, tx);
      return true;
    });
  }

  /**
   * The one place a payment reaches an outcome, whoever reported it. Holds the row lock, so
   * concurrent duplicates (in this or another instance) see the first one's result and change
   * nothing. Completion requires matching ids, reference, amount and currency; mismatches go to
   * review. A completion marks the order paid in the same transaction.
   */
  async applyOutcome(paymentId: string, r: OutcomeReport, actor: string): Promise<ApplyResult> {
    const { result, afterCommit } = await this.repo.transaction((tx) => this.applyOutcomeIn(tx, paymentId, r, actor));
    afterCommit?.();
    return result;
  }

  /**
   * applyOutcome inside the caller's transaction (e.g. together with storing the callback that
   * reported it: one commit instead of three). The caller runs `afterCommit` once it committed.
   */
  async applyOutcomeIn(tx: Tx, paymentId: string, r: OutcomeReport, actor: string): Promise<{ result: ApplyResult; afterCommit?: () => void }> {
    let completed: Payment | undefined;
    let orderPaid = false;
    const result = await (async (): Promise<ApplyResult> => {
      const p = await this.repo.lock(tx, paymentId);
      if (!p) return 'unknown_payment';
      // M-Pesa receipts are compared (and stored) trimmed and upper-case, whoever reported them.
      if (p.provider === 'mpesa' && r.receipt !== undefined) r = { ...r, receipt: normaliseMpesaReceipt(r.receipt) };
      const summary = {
        source: r.source, resultCode: r.resultCode, resultDesc: r.resultDesc, checkoutRequestId: r.checkoutRequestId, providerTransactionId: r.providerTransactionId,
        reference: r.reference, receipt: r.receipt, amountMinor: r.amountMinor?.toString(), currency: r.currency,
      };

      // A payment parked in review only because its outcome was unknown can still be settled by the truth.
      const settleable = p.status === 'review' && p.statusReason === OUTCOME_UNKNOWN;
      if (isTerminal(p.status) || (p.status === 'review' && !settleable)) {
        // Late enrichment: a payment that took the money but learned it from a query (no receipt),
        // completed or in review for a refund, gets its receipt from the M-Pesa success callback
        // (or the statement row only it fits). Only the receipt: never its amount or status.
        if (
          p.provider === 'mpesa' && holdsMoney(p) && r.outcome === 'completed' && r.receipt && !p.mpesaReceiptNumber && (r.source === 'callback' || r.source === 'statement') &&
          amountMatches(p, r) && !integrityProblem(p, r) && !(await this.repo.findByReceipt(r.receipt, tx))
        ) {
          await this.repo.update(p.id, { mpesaReceiptNumber: r.receipt, transactionDate: r.transactionDate ?? p.transactionDate }, tx);
          await this.repo.insertEvent({ paymentId, type: 'receipt_recorded', fromStatus: p.status, actor, data: summary }, tx);
          return 'applied';
        }
        // Daraja's verified success for this push with ANOTHER receipt than the one the payment holds
        // (e.g. the statement settled it with the customer's C2B payment, then the STK prompt was paid
        // too): the money was collected twice. Neither the payment nor its order changes; the second
        // charge becomes a review row of its own (never counted toward the order) for a refund.
        if (
          p.provider === 'mpesa' && holdsMoney(p) && p.mpesaReceiptNumber && r.outcome === 'completed' && r.source === 'callback' && r.amountRequired && r.receipt &&
          r.receipt !== p.mpesaReceiptNumber && amountMatches(p, r) && !integrityProblem(p, r) && !(await this.repo.findByReceipt(r.receipt, tx))
        ) {
          await this.recordSecondCharge(tx, p, r, actor, summary);
          return 'review';
        }
        // Money moved on a payment we had closed (failed after "not found", an expired checkout, a
        // contradicting report): the truth must not be dropped. A person decides (refund or accept);
        // the order is not paid automatically.
        if (r.outcome === 'completed' && (p.status === 'failed' || p.status === 'cancelled' || p.status === 'expired') && !integrityProblem(p, r) && !(await this.duplicateProblem(p, r, tx))) {
          await this.repo.update(p.id, {
            status: 'review', statusReason: 'PAID_AFTER_CLOSE', resultCode: r.resultCode, resultDesc: r.resultDesc.slice(0, 500),
            checkoutRequestId: p.checkoutRequestId ?? r.checkoutRequestId ?? null, providerTransactionId: p.providerTransactionId ?? r.providerTransactionId ?? null,
            ...(p.provider === 'mpesa' ? { mpesaReceiptNumber: r.receipt ?? null, transactionDate: r.transactionDate ?? null } : { providerReceipt: r.receipt ?? null }),
          }, tx);
          await this.repo.insertEvent({ paymentId, type: 'integrity_failure', fromStatus: p.status, toStatus: 'review', actor, data: { ...summary, problem: 'PAID_AFTER_CLOSE', closedReason: p.statusReason } }, tx);
          this.logger.error({ paymentId, problem: 'PAID_AFTER_CLOSE', closedStatus: p.status }, 'provider reports money collected on a closed payment; moved to review');
          return 'review';
        }
        await this.repo.insertEvent({ paymentId, type: 'duplicate_ignored', fromStatus: p.status, actor, data: { ...summary, reportedOutcome: r.outcome } }, tx);
        return 'duplicate';
      }

      const problem = integrityProblem(p, r) ?? (await this.duplicateProblem(p, r, tx));
      if (problem) {
        await this.repo.update(p.id, { status: 'review', statusReason: problem, resultCode: r.resultCode, resultDesc: r.resultDesc.slice(0, 500) }, tx);
        await this.repo.insertEvent({ paymentId, type: 'integrity_failure', fromStatus: p.status, toStatus: 'review', actor, data: { ...summary, problem, expectedAmountMinor: p.amountMinor.toString(), expectedCurrency: p.currency, expectedCheckoutRequestId: p.checkoutRequestId, expectedReference: p.providerReference } }, tx);
        this.logger.warn({ paymentId, problem }, 'payment moved to review');
        return 'review';
      }

      const to: PaymentStatus = r.outcome;
      if (!canTransition(p.status, to) && !settleable) return 'ignored';
      if (to === 'completed') {
        // Money moved for more than the order still owes (a payment parked as OUTCOME_UNKNOWN
        // freed the order, then another went through): record the truth, never count it past the
        // total: a person refunds it. getBalance with `tx` locks the order row first, so two
        // completions of one order are weighed one after the other, each seeing the other's commit.
        const balance = await this.orders.getBalance(p.shopId, p.orderId, tx);
        if (balance && p.amountMinor > balance.outstandingMinor) {
          const problem = balance.outstandingMinor <= 0n ? 'ORDER_ALREADY_PAID' : 'EXCEEDS_OUTSTANDING';
          await this.repo.update(p.id, {
            status: 'review', statusReason: problem, resultCode: r.resultCode, resultDesc: r.resultDesc.slice(0, 500),
            checkoutRequestId: p.checkoutRequestId ?? r.checkoutRequestId ?? null, merchantRequestId: p.merchantRequestId ?? r.merchantRequestId ?? null,
            providerTransactionId: p.providerTransactionId ?? r.providerTransactionId ?? null, paymentMethod: p.paymentMethod ?? r.paymentMethod ?? null,
            ...(p.provider === 'mpesa' ? { mpesaReceiptNumber: r.receipt ?? null, transactionDate: r.transactionDate ?? null } : { providerReceipt: r.receipt ?? null }),
          }, tx);
          const note = problem === 'ORDER_ALREADY_PAID' ? 'the customer paid an order that was already paid: refund due' : 'the customer paid more than the order still owed: refund the difference or all of it';
          await this.repo.insertEvent({ paymentId, type: 'integrity_failure', fromStatus: p.status, toStatus: 'review', actor, data: { ...summary, problem, note, outstandingMinor: balance.outstandingMinor.toString(), paidMinor: balance.paidMinor.toString(), totalMinor: balance.totalMinor.toString() } }, tx);
          this.logger.warn({ paymentId, problem }, 'payment succeeded for more than its order still owed; moved to review for a refund');
          return 'review';
        }
      }
      const completing = to === 'completed';
      await this.repo.update(p.id, {
        status: to,
        statusReason: REASONS[r.outcome],
        resultCode: r.resultCode,
        resultDesc: r.resultDesc.slice(0, 500),
        checkoutRequestId: p.checkoutRequestId ?? r.checkoutRequestId ?? null,
        merchantRequestId: p.merchantRequestId ?? r.merchantRequestId ?? null,
        providerTransactionId: p.providerTransactionId ?? r.providerTransactionId ?? null,
        paymentMethod: p.paymentMethod ?? r.paymentMethod ?? null,
        ...(completing
          ? p.provider === 'mpesa'
            ? { mpesaReceiptNumber: r.receipt ?? null, transactionDate: r.transactionDate ?? null, completedAt: new Date() }
            : { providerReceipt: r.receipt ?? null, completedAt: new Date() }
          : {}),
      }, tx);
      await this.repo.insertEvent({ paymentId, type: 'status_changed', fromStatus: p.status, toStatus: to, actor, data: summary }, tx);
      if (completing) {
        completed = { ...p, status: to, mpesaReceiptNumber: p.provider === 'mpesa' ? r.receipt ?? null : null };
        // Same transaction: the payment and its order's paid flag commit together or not at all.
        orderPaid = await this.orders.settleIfPaid(p.shopId, p.orderId, tx);
      }
      return 'applied';
    })();
    const done = completed;
    return { result, afterCommit: done ? () => this.afterCompletion(done, orderPaid) : undefined };
  }

  /**
   * A second charge for payment `p` (see applyOutcomeIn): a new payment row of the same shop,
   * order and provider in review (SECOND_CHARGE) holding the second receipt and amount, and an
   * integrity_failure event on each row naming the other. No CheckoutRequestID (it is the first
   * row's), so it is outside the one-in-flight index; the receipt's unique index makes a repeat a
   * duplicate.
   */
  private async recordSecondCharge(tx: Tx, p: Payment, r: OutcomeReport, actor: string, summary: Record<string, unknown>): Promise<void> {
    const id = randomUUID();
    const amountMinor = r.amountMinor ?? p.amountMinor;
    const note = `the customer was charged twice: receipt ${r.receipt} came for the push of payment ${p.id}, which already holds receipt ${p.mpesaReceiptNumber}; refund one`;
    await this.repo.insertPayment({
      id, shopId: p.shopId, orderId: p.orderId, amountMinor, currency: p.currency, provider: p.provider, status: 'review', statusReason: SECOND_CHARGE,
      resultCode: r.resultCode, resultDesc: `Second charge: receipt ${r.receipt} for the push of payment ${p.id} (which holds ${p.mpesaReceiptNumber}); refund one`.slice(0, 500),
      createdBy: 'system', phoneMasked: p.phoneMasked, phoneHash: p.phoneHash, accountReference: p.accountReference, transactionDesc: p.transactionDesc,
      mpesaReceiptNumber: r.receipt ?? null, transactionDate: r.transactionDate ?? null,
    }, tx);
    await this.repo.insertEvent({ paymentId: id, type: 'integrity_failure', toStatus: 'review', actor, data: { ...summary, problem: SECOND_CHARGE, note, firstPaymentId: p.id, firstReceipt: p.mpesaReceiptNumber, orderId: p.orderId } }, tx);
    await this.repo.insertEvent({ paymentId: p.id, type: 'integrity_failure', fromStatus: p.status, actor, data: { ...summary, problem: SECOND_CHARGE, note, secondChargePaymentId: id, keptReceipt: p.mpesaReceiptNumber } }, tx);
    this.logger.error({ paymentId: p.id, secondChargePaymentId: id, problem: SECOND_CHARGE }, 'provider reports a second charge for a payment that already holds a receipt; recorded in review for a refund');
  }

  private async duplicateProblem(p: Payment, r: OutcomeReport, tx: Parameters<PaymentsRepository['findByReceipt']>[1]): Promise<string | undefined> {
    if (r.outcome !== 'completed') return undefined;
    if (p.provider === 'mpesa') return r.receipt && (await this.repo.findByReceipt(r.receipt, tx)) ? 'DUPLICATE_RECEIPT' : undefined;
    if (r.providerTransactionId) {
      const other = await this.repo.findByProviderTransaction(p.provider, r.providerTransactionId, tx);
      if (other && other.id !== p.id) return 'DUPLICATE_TRANSACTION';
    }
    return undefined;
  }

  /** After the completing transaction committed (the order was settled inside it): tell other modules. */
  private afterCompletion(p: Payment, orderPaid: boolean): void {
    if (orderPaid) this.orders.notifyPaid(p.shopId, p.orderId);
    const event: PaymentCompletedEvent = {
      paymentId: p.id,
      shopId: p.shopId,
      orderId: p.orderId,
      amountMinor: p.amountMinor,
      currency: p.currency,
      provider: p.provider,
      mpesaReceiptNumber: p.mpesaReceiptNumber,
      orderPaid,
    };
    this.events.emit(PAYMENT_COMPLETED_EVENT, event);
  }

  toResponse(p: Payment): PaymentResponseDto {
    return {
      paymentId: p.id,
      orderId: p.orderId,
      status: p.status,
      statusReason: p.statusReason,
      resultCode: p.resultCode,
      resultDesc: p.resultDesc,
      amount: toMajor(p.amountMinor, p.currency),
      currency: p.currency,
      provider: p.provider,
      mpesaReceiptNumber: p.mpesaReceiptNumber,
      merchantRequestId: p.merchantRequestId,
      checkoutRequestId: p.checkoutRequestId,
      phone: p.phoneMasked,
      ...(p.provider === 'mpesa'
        ? { accountReference: p.accountReference, transactionDesc: p.transactionDesc }
        : { reference: p.providerReference, providerTransactionId: p.providerTransactionId, providerReceipt: p.providerReceipt, paymentMethod: p.paymentMethod, checkoutUrl: p.checkoutUrl }),
      createdAt: p.createdAt.toISOString(),
      updatedAt: p.updatedAt.toISOString(),
      completedAt: p.completedAt ? p.completedAt.toISOString() : null,
      releasedAt: p.releasedAt ? p.releasedAt.toISOString() : null,
    };
  }
}

function amountMatches(p: Payment, r: OutcomeReport): boolean {
  return r.amountMinor !== undefined && r.amountMinor === p.amountMinor && (r.currency === undefined || r.currency === p.currency);
}

/** Checks a reported outcome against what the server knows. M-Pesa queries carry no amount: the id is ours. */
function integrityProblem(p: Payment, r: OutcomeReport): string | undefined {
  if (r.checkoutRequestId && p.checkoutRequestId && r.checkoutRequestId !== p.checkoutRequestId) return 'CHECKOUT_REQUEST_ID_MISMATCH';
  if (r.providerTransactionId && p.providerTransactionId && r.providerTransactionId !== p.providerTransactionId) return 'TRANSACTION_ID_MISMATCH';
  if (r.reference !== undefined && p.providerReference && r.reference !== p.providerReference) return 'REFERENCE_MISMATCH';
  if (r.outcome !== 'completed' || !r.amountRequired) return undefined;
  if (r.currency !== undefined && r.currency !== p.currency) return 'CURRENCY_MISMATCH';
  if (r.amountMinor === undefined || r.amountMinor !== p.amountMinor) return 'AMOUNT_MISMATCH';
  return undefined;
}

/** Domain separation for the request hash's key (derived from the server secret, never the secret itself). */
const REQUEST_HASH_CONTEXT = 'smartduka/payments/idempotency-request-hash/v1';

/**
 * Stable keyed hash of a request (same fields and values in any key order give the same hash),
 * stored with its Idempotency-Key. Keyed (HMAC) like the phone hash: a plain SHA-256 of a body that
 * holds the customer's phone, an order id and an amount could be reversed by trying every Kenyan
 * number.
 */
export function hashRequest(serverSecret: string, route: string, body: object): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(canonical) : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])])) : v;
  const key = createHmac('sha256', serverSecret).update(REQUEST_HASH_CONTEXT).digest();
  return createHmac('sha256', key).update(route + '\n' + JSON.stringify(canonical({ ...body }))).digest('hex');
}
