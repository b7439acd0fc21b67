import { BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { createHash, randomUUID } from 'node:crypto';
import type { AuthUser } from '../auth/auth.types';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { AppError, ConflictError, NotFoundError } from '../common/errors';
import { safeError } from '../common/logging';
import { maskPhone } from '../common/mask';
import { toMajor } from '../common/money';
import { pgErrorCode, UNIQUE_VIOLATION } from '../database/database';
import type { Payment } from '../database/schema';
import { ORDERS_PORT, OrdersPort } from '../orders/orders.port';
import { parseStkCallback } from './daraja/callback-parser';
import { CallbackShapeError, DarajaError, DarajaRateLimitedError } from './daraja/daraja.errors';
import { DarajaService } from './daraja/daraja.service';
import type { ParsedStkCallback, StkOutcome } from './daraja/daraja.types';
import { canTransition, isInFlight, isTerminal, PaymentStatus } from './payment-status';
import { PaymentResponseDto, StkPushDto, StkPushResponseDto } from './payments.dto';
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

/** An HTTP-level result the controller sends as is (so idempotent replays are byte-identical). */
export interface HttpResult<T = unknown> {
  status: number;
  body: T;
  replayed?: boolean;
  headers?: Record<string, string>;
}

export interface CallbackInput {
  paymentId?: string;
  token?: string;
  body: unknown;
  rawBody: string;
  sourceIp?: string;
}

/** What a callback or a status query tells us about the transaction. */
interface OutcomeReport {
  outcome: StkOutcome;
  resultCode: string;
  resultDesc: string;
  source: 'callback' | 'query';
  checkoutRequestId?: string;
  merchantRequestId?: string;
  amount?: number;
  receipt?: string;
  transactionDate?: string;
}

type ApplyResult = 'applied' | 'duplicate' | 'unknown_payment' | 'review' | 'ignored';

/** What one reconciliation look at a payment did. */
export type ReconcileAction =
  /** a final answer from Daraja was applied (or had already been) */
  | 'settled'
  /** Daraja says the customer has not answered yet; looked again later */
  | 'still_pending'
  /** Daraja never heard of it for longer than MPESA_NOT_FOUND_FAIL_AFTER_SECONDS */
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
  /** what Daraja answered, when it was asked */
  provider?: { kind: string; resultCode?: string; resultDesc?: string; errorCode?: string; message?: string };
}

type InboxRow = { id: bigint; verified: boolean; urlPaymentId: string | null; rawBody: string; attempts: number };

/** A stored callback that failed this many processing attempts is marked gave_up and logged. */
const MAX_INBOX_ATTEMPTS = 20;

const REASONS: Record<StkOutcome, string> = {
  completed: 'PAID',
  failed: 'FAILED_AT_PROVIDER',
  cancelled: 'CANCELLED_BY_CUSTOMER',
  expired: 'NO_RESPONSE_FROM_CUSTOMER',
};

const DEFAULT_TRANSACTION_DESC = 'POS payment';
/** statusReason of a payment moved to review because nobody could tell whether the push went out. */
const OUTCOME_UNKNOWN = 'OUTCOME_UNKNOWN';
/** Minimum seconds between two STK queries for the same payment (across all instances). */
const QUERY_MIN_INTERVAL_SECONDS = 2;

@Injectable()
export class PaymentsService implements BeforeApplicationShutdown {
  private readonly logger = new Logger(PaymentsService.name);
  /** Background callback confirmations still running (awaited on shutdown). */
  private readonly background = new Set<Promise<unknown>>();

  constructor(
    private readonly repo: PaymentsRepository,
    private readonly daraja: DarajaService,
    @Inject(ORDERS_PORT) private readonly orders: OrdersPort,
    private readonly events: EventEmitter2,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  // ------------------------------------------------------------------ STK push

  async initiateStkPush(user: AuthUser, dto: StkPushDto, idempotencyKey?: string): Promise<HttpResult> {
    const phone = this.daraja.formatPhoneNumber(dto.phoneNumber);
    const requestHash = hashRequest('POST /payments/stk-push', dto);

    if (idempotencyKey) {
      const replay = await this.replayIdempotent(user.shopId, idempotencyKey, requestHash);
      if (replay) return replay;
    }

    const balance = await this.orders.getBalance(user.shopId, dto.orderId);
    if (!balance) throw new NotFoundError('Order', { orderId: dto.orderId });
    if (balance.currency !== 'KES') throw new AppError('CURRENCY_NOT_SUPPORTED', `M-Pesa takes KES only; order ${dto.orderId} is in ${balance.currency}`, 400);
    const amountMinor = BigInt(dto.amount) * 100n;
    if (balance.outstandingMinor <= 0n) {
      throw new ConflictError('ORDER_ALREADY_PAID', `Order ${dto.orderId} is already fully paid`, { orderId: dto.orderId });
    }
    if (amountMinor > balance.outstandingMinor) {
      throw new AppError('AMOUNT_EXCEEDS_OUTSTANDING', `Amount ${dto.amount} is more than the ${toMajor(balance.outstandingMinor, 'KES')} KES still owed on order ${dto.orderId}`, 400, {
        outstanding: toMajor(balance.outstandingMinor, 'KES'),
      });
    }

    const paymentId = randomUUID();
    const accountReference = dto.accountReference ?? defaultAccountReference(dto.orderId);
    const transactionDesc = dto.transactionDesc ?? DEFAULT_TRANSACTION_DESC;
    const actor = `user:${user.sub}`;

    try {
      await this.repo.transaction(async (tx) => {
        await this.repo.insertPayment({
          id: paymentId,
          shopId: user.shopId,
          orderId: dto.orderId,
          amountMinor,
          currency: 'KES',
          provider: 'mpesa',
          status: 'initiated',
          idempotencyKey: idempotencyKey ?? null,
          createdBy: user.sub,
          phoneMasked: maskPhone(phone),
          phoneHash: sha256(phone),
          accountReference,
          transactionDesc,
        }, tx);
        await this.repo.insertEvent({
          paymentId,
          type: 'created',
          toStatus: 'initiated',
          actor,
          data: { amountMinor: amountMinor.toString(), currency: 'KES', orderId: dto.orderId, phone: maskPhone(phone), accountReference, customerEmail: dto.customerEmail ?? null },
        }, tx);
        if (idempotencyKey) await this.repo.insertIdempotencyKey(user.shopId, idempotencyKey, requestHash, paymentId, tx);
      });
    } catch (err) {
      if (pgErrorCode(err) !== UNIQUE_VIOLATION) throw err;
      // Lost a race: either the same Idempotency-Key or another payment in flight for the order.
      if (idempotencyKey) {
        const replay = await this.replayIdempotent(user.shopId, idempotencyKey, requestHash);
        if (replay) return replay;
      }
      const existing = await this.repo.findInFlightForOrder(user.shopId, dto.orderId);
      throw new ConflictError('PAYMENT_IN_PROGRESS', `Order ${dto.orderId} already has a payment waiting for the customer; wait for it to finish or check its status`, {
        payment: existing ? this.toResponse(existing) : undefined,
      });
    }

    const result = await this.sendPush(paymentId, phone, dto.amount, accountReference, transactionDesc, actor, dto.orderId);
    if (idempotencyKey) await this.repo.storeIdempotentResponse(user.shopId, idempotencyKey, result.status, result.body);
    return result;
  }

  /** Calls Daraja once. Never retried here: a push with an unknown outcome becomes 'unresolved'. */
  private async sendPush(paymentId: string, phone: string, amount: number, accountReference: string, transactionDesc: string, actor: string, orderId: string): Promise<HttpResult> {
    const started = Date.now();
    try {
      const res = await this.daraja.initiateStkPush({ phoneNumber: phone, amount, accountReference, transactionDesc, callbackUrl: this.daraja.callbackUrlFor(paymentId) });
      const updated = await this.repo.recordPushAccepted(paymentId, res.merchantRequestId, res.checkoutRequestId);
      await this.repo.insertEvent({
        paymentId,
        type: 'provider_response',
        fromStatus: 'initiated',
        toStatus: updated.status,
        actor: 'daraja:stk-push',
        data: { merchantRequestId: res.merchantRequestId, checkoutRequestId: res.checkoutRequestId, responseCode: res.responseCode, responseDescription: res.responseDescription, ms: Date.now() - started },
      });
      const body: StkPushResponseDto = {
        paymentId,
        status: updated.status === 'initiated' ? 'pending' : updated.status,
        merchantRequestId: res.merchantRequestId,
        checkoutRequestId: res.checkoutRequestId,
        responseCode: res.responseCode,
        responseDescription: res.responseDescription,
        customerMessage: res.customerMessage,
        amount,
        currency: 'KES',
        orderId,
      };
      return { status: 201, body };
    } catch (err) {
      const known = err instanceof DarajaError;
      // not_processed: Safaricom never acted on it, so no prompt reached the customer.
      const to: PaymentStatus = known && err.outcome === 'not_processed' ? 'failed' : 'unresolved';
      const reason = known ? err.code : 'PUSH_OUTCOME_UNKNOWN';
      const moved = await this.repo.transitionIf(paymentId, 'initiated', {
        status: to,
        statusReason: reason,
        resultCode: known ? err.darajaErrorCode ?? null : null,
        resultDesc: known ? (err.darajaErrorMessage ?? err.message).slice(0, 500) : null,
      });
      await this.repo.insertEvent({
        paymentId,
        type: 'provider_error',
        fromStatus: 'initiated',
        toStatus: moved ? to : null,
        actor: 'daraja:stk-push',
        data: { code: reason, message: err instanceof Error ? err.message : String(err), darajaErrorCode: known ? err.darajaErrorCode ?? null : null, ms: Date.now() - started },
      });
      if (!known) {
        this.logger.error({ err: safeError(err), paymentId }, 'unexpected error while sending STK push; payment left unresolved');
        throw new AppError('PROVIDER_UNAVAILABLE', 'Could not confirm the M-Pesa request. Do not retry: check the payment status.', 502, { paymentId, status: 'unresolved' });
      }
      const message = to === 'unresolved'
        ? `${err.message}. The customer may still get the prompt: do not push again, check the payment status.`
        : err.message;
      const headers = err.headers;
      return {
        status: err.statusCode,
        // If a callback overtook the late answer, report the payment's real status.
        body: { statusCode: err.statusCode, code: err.code, message, details: { ...(err.details ?? {}), paymentId, status: moved ? to : (await this.repo.findById(paymentId))?.status } },
        headers,
      };
    }
  }

  private async replayIdempotent(shopId: string, key: string, requestHash: string): Promise<HttpResult | null> {
    const rec = await this.repo.findIdempotencyKey(shopId, key);
    if (!rec) return null;
    if (rec.requestHash !== requestHash) {
      throw new ConflictError('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was already used with a different request body; use a new key for a new payment');
    }
    if (rec.responseStatus === null) {
      throw new ConflictError('IDEMPOTENCY_REQUEST_IN_PROGRESS', 'A request with this Idempotency-Key is still being processed; retry in a few seconds', { paymentId: rec.paymentId });
    }
    return { status: rec.responseStatus, body: rec.responseBody, replayed: true };
  }

  // ------------------------------------------------------------------ status

  async getStkStatus(user: AuthUser, checkoutRequestId: string, merchantRequestId?: string): Promise<PaymentResponseDto> {
    const p = await this.repo.findByCheckoutRequestId(checkoutRequestId, user.shopId);
    if (!p || (merchantRequestId && p.merchantRequestId !== merchantRequestId)) throw new NotFoundError('Payment', { checkoutRequestId });
    return this.toResponse(await this.refreshIfDue(p));
  }

  async getPayment(user: AuthUser, id: string): Promise<PaymentResponseDto> {
    const p = await this.repo.findForShop(user.shopId, id);
    if (!p) throw new NotFoundError('Payment', { paymentId: id });
    return this.toResponse(await this.refreshIfDue(p));
  }

  /**
   * Asks Daraja (STK query) about a pending/unresolved payment that is old enough, records what
   * it learns, and returns the fresh row. Provider trouble never fails the read.
   */
  private async refreshIfDue(p: Payment): Promise<Payment> {
    if (!isInFlight(p.status)) return p;
    const ageSeconds = (Date.now() - p.createdAt.getTime()) / 1000;
    if (!p.checkoutRequestId) {
      // Nothing to query with (the push answer was lost). After the window, a person decides;
      // the order is free again and a late callback on the payment's own URL still settles it.
      if (ageSeconds >= this.config.mpesa.unresolvedReviewAfterSeconds) await this.moveUnknownToReview(p.id);
      return (await this.repo.findById(p.id)) ?? p;
    }
    if (ageSeconds < this.config.mpesa.statusQueryAfterSeconds) return p;
    if (!(await this.repo.claimStatusQuery(p.id, QUERY_MIN_INTERVAL_SECONDS))) return (await this.repo.findById(p.id)) ?? p;
    try {
      const r = await this.daraja.queryStkStatus(p.checkoutRequestId);
      if (r.kind === 'final') {
        await this.applyOutcome(p.id, { outcome: r.outcome, resultCode: r.resultCode, resultDesc: r.resultDesc, source: 'query', checkoutRequestId: r.checkoutRequestId, merchantRequestId: r.merchantRequestId }, 'daraja:stk-query');
      } else if (r.kind === 'not_found' && ageSeconds >= this.config.mpesa.notFoundFailAfterSeconds) {
        await this.failNotFound(p.id, r.errorMessage);
      }
    } catch (err) {
      this.logger.warn({ paymentId: p.id, code: err instanceof AppError ? err.code : 'UNKNOWN', msg: err instanceof Error ? err.message : String(err) }, 'STK query failed; returning stored status');
    }
    return (await this.repo.findById(p.id)) ?? p;
  }

  /**
   * Parks an open payment whose outcome nobody can establish in review (OUTCOME_UNKNOWN): the
   * order is free again, a person decides, and a late callback or query can still settle it.
   * `onlyWithoutCheckoutId` = the push answer was lost (nothing to query with).
   */
  private async moveUnknownToReview(paymentId: string, data: Record<string, unknown> = { afterSeconds: this.config.mpesa.unresolvedReviewAfterSeconds }, onlyWithoutCheckoutId = true): Promise<boolean> {
    return this.repo.transaction(async (tx) => {
      const p = await this.repo.lock(tx, paymentId);
      if (!p || !isInFlight(p.status) || (onlyWithoutCheckoutId && p.checkoutRequestId)) return false;
      await this.repo.update(p.id, { status: 'review', statusReason: OUTCOME_UNKNOWN }, tx);
      await this.repo.insertEvent({ paymentId, type: 'status_changed', fromStatus: p.status, toStatus: 'review', actor: 'system', data: { reason: OUTCOME_UNKNOWN, ...data } }, tx);
      this.logger.warn({ paymentId, reason: OUTCOME_UNKNOWN }, 'payment moved to review');
      return true;
    });
  }

  private async failNotFound(paymentId: string, message: string): Promise<void> {
    await this.repo.transaction(async (tx) => {
      const p = await this.repo.lock(tx, paymentId);
      if (!p || !isInFlight(p.status)) return;
      await this.repo.update(paymentId, { status: 'failed', statusReason: 'NOT_FOUND_AT_PROVIDER', resultDesc: message.slice(0, 500) }, tx);
      await this.repo.insertEvent({ paymentId, type: 'status_changed', fromStatus: p.status, toStatus: 'failed', actor: 'daraja:stk-query', data: { reason: 'NOT_FOUND_AT_PROVIDER', message } }, tx);
    });
  }

  // ------------------------------------------------------------------ reconciliation

  /**
   * One reconciler look at an open payment (claimed by the caller). Settles it by STK query when
   * it can; otherwise schedules the next look with exponential backoff, and after the window or
   * the query budget parks it in review. Never pushes again.
   */
  async reconcile(p: Payment): Promise<ReconcileResult> {
    const rc = this.config.reconciler;
    if (!isInFlight(p.status)) return { action: 'already_final' };
    const ageSeconds = (Date.now() - p.createdAt.getTime()) / 1000;

    if (!p.checkoutRequestId) {
      // The push answer never arrived (or the push is still on its way): nothing to query with.
      const reviewAt = this.config.mpesa.unresolvedReviewAfterSeconds;
      if (ageSeconds >= reviewAt) {
        await this.moveUnknownToReview(p.id);
        return { action: 'moved_to_review' };
      }
      await this.repo.scheduleCheck(p.id, Math.max(1, Math.ceil(reviewAt - ageSeconds)), false);
      return { action: 'deferred' };
    }

    if (ageSeconds >= rc.giveUpAfterSeconds || p.reconcileAttempts >= rc.maxQueries) {
      await this.moveUnknownToReview(p.id, { giveUp: ageSeconds >= rc.giveUpAfterSeconds ? 'window' : 'query_budget', ageSeconds: Math.round(ageSeconds), queries: p.reconcileAttempts }, false);
      return { action: 'moved_to_review' };
    }
    if (!(await this.repo.claimStatusQuery(p.id, QUERY_MIN_INTERVAL_SECONDS))) {
      // A status read on some instance is asking right now; look again shortly.
      await this.repo.scheduleCheck(p.id, QUERY_MIN_INTERVAL_SECONDS, false);
      return { action: 'deferred' };
    }
    const backoff = reconcileBackoffSeconds(p.reconcileAttempts + 1, rc.backoffBaseSeconds, rc.backoffMaxSeconds);
    try {
      const r = await this.daraja.queryStkStatus(p.checkoutRequestId);
      if (r.kind === 'final') {
        await this.applyOutcome(p.id, { outcome: r.outcome, resultCode: r.resultCode, resultDesc: r.resultDesc, source: 'query', checkoutRequestId: r.checkoutRequestId, merchantRequestId: r.merchantRequestId }, 'reconciler:stk-query');
        await this.repo.scheduleCheck(p.id, 0, true);
        return { action: 'settled', provider: { kind: r.kind, resultCode: r.resultCode, resultDesc: r.resultDesc } };
      }
      if (r.kind === 'not_found' && ageSeconds >= this.config.mpesa.notFoundFailAfterSeconds) {
        await this.failNotFound(p.id, r.errorMessage);
        return { action: 'failed_not_found', provider: { kind: r.kind, errorCode: r.errorCode, message: r.errorMessage } };
      }
      await this.repo.scheduleCheck(p.id, backoff, true);
      return { action: 'still_pending', provider: { kind: r.kind, errorCode: r.errorCode, message: r.errorMessage } };
    } catch (err) {
      // Spike arrest asks us to slow down: wait at least what it says.
      const retryAfter = err instanceof DarajaRateLimitedError ? Number(err.headers?.['Retry-After'] ?? 0) : 0;
      await this.repo.scheduleCheck(p.id, Math.max(backoff, Number.isFinite(retryAfter) ? retryAfter : 0), true);
      const code = err instanceof AppError ? err.code : 'UNKNOWN';
      this.logger.warn({ paymentId: p.id, code, msg: err instanceof Error ? err.message : String(err) }, 'reconciler STK query failed; backing off');
      return { action: 'provider_error', provider: { kind: 'error', errorCode: err instanceof DarajaError ? err.darajaErrorCode ?? code : code, message: err instanceof Error ? err.message : String(err) } };
    }
  }

  /**
   * An operator asks to reconcile one payment now. Open payments go through `reconcile` (ignoring
   * the schedule); a payment in review is looked up at Daraja and settled only when it is in
   * review because its outcome was unknown; other review cases are reported, not changed.
   */
  async reconcileNow(user: AuthUser, id: string): Promise<{ payment: PaymentResponseDto } & ReconcileResult> {
    const p = await this.repo.findForShop(user.shopId, id);
    if (!p) throw new NotFoundError('Payment', { paymentId: id });
    await this.repo.insertEvent({ paymentId: p.id, type: 'reconcile_requested', actor: `user:${user.sub}`, data: { status: p.status } });
    let result: ReconcileResult;
    if (isInFlight(p.status)) {
      result = await this.reconcile(p);
    } else if (p.status === 'review' && p.checkoutRequestId) {
      result = await this.lookUpReview(p);
    } else {
      result = { action: 'already_final' };
    }
    const fresh = (await this.repo.findById(p.id)) ?? p;
    return { payment: this.toResponse(fresh), ...result };
  }

  private async lookUpReview(p: Payment): Promise<ReconcileResult> {
    try {
      const r = await this.daraja.queryStkStatus(p.checkoutRequestId!);
      if (r.kind !== 'final') return { action: 'still_pending', provider: { kind: r.kind, errorCode: r.errorCode, message: r.errorMessage } };
      const provider = { kind: r.kind, resultCode: r.resultCode, resultDesc: r.resultDesc };
      if (p.statusReason !== OUTCOME_UNKNOWN) return { action: 'already_final', provider };
      await this.applyOutcome(p.id, { outcome: r.outcome, resultCode: r.resultCode, resultDesc: r.resultDesc, source: 'query', checkoutRequestId: r.checkoutRequestId, merchantRequestId: r.merchantRequestId }, 'reconciler:stk-query');
      return { action: 'settled', provider };
    } catch (err) {
      const code = err instanceof AppError ? err.code : 'UNKNOWN';
      return { action: 'provider_error', provider: { kind: 'error', errorCode: err instanceof DarajaError ? err.darajaErrorCode ?? code : code, message: err instanceof Error ? err.message : String(err) } };
    }
  }

  async listReview(user: AuthUser, limit: number, cursor?: string): Promise<{ items: PaymentResponseDto[]; nextCursor: string | null }> {
    const before = cursor ? decodeCursor(cursor) : undefined;
    const rows = await this.repo.listForReview(user.shopId, limit + 1, before);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return { items: page.map((p) => this.toResponse(p)), nextCursor: rows.length > limit && last ? encodeCursor(last) : null };
  }

  /**
   * Processes a stored callback again (its first processing never finished). Safe to repeat:
   * applyOutcome is idempotent under the row lock.
   */
  async replayStoredCallback(row: InboxRow): Promise<string> {
    if (row.attempts > MAX_INBOX_ATTEMPTS) {
      this.logger.error({ inboxId: row.id.toString(), attempts: row.attempts }, 'stored callback could not be processed; giving up (a person must look)');
      await this.repo.markCallbackProcessed(row.id, 'gave_up');
      return 'gave_up';
    }
    let parsed: ParsedStkCallback;
    try {
      parsed = parseStkCallback(JSON.parse(row.rawBody));
    } catch {
      await this.repo.markCallbackProcessed(row.id, 'invalid_shape');
      return 'invalid_shape';
    }
    if (row.verified && row.urlPaymentId) {
      const outcome = await this.processVerifiedCallback(row.urlPaymentId, parsed);
      await this.repo.markCallbackProcessed(row.id, outcome);
      return outcome;
    }
    await this.confirmUnverifiedCallback(row.id, parsed, row.urlPaymentId ?? undefined);
    return 'confirmed';
  }

  // ------------------------------------------------------------------ callbacks

  /**
   * Stores the callback body first (a failure here is a 5xx, so nothing is acknowledged that was
   * not stored), then processes it. Callbacks on a valid capability URL are applied at once;
   * others are confirmed with an STK query in the background before anything changes.
   */
  async receiveCallback(input: CallbackInput): Promise<{ ResultCode: 0; ResultDesc: 'Accepted' }> {
    let parsed: ParsedStkCallback | undefined;
    let verified = false;
    let shapeError: CallbackShapeError | undefined;
    try {
      const v = this.daraja.validateCallback({ paymentId: input.paymentId, token: input.token, body: input.body });
      parsed = v.callback;
      verified = v.verified;
    } catch (err) {
      if (!(err instanceof CallbackShapeError)) throw err;
      shapeError = err;
    }
    const inboxId = await this.repo.insertCallback({
      provider: 'mpesa',
      attempts: 1,
      urlPaymentId: input.paymentId && /^[\x21-\x7e]{1,64}$/.test(input.paymentId) ? input.paymentId : null,
      verified,
      checkoutRequestId: parsed?.checkoutRequestId ?? null,
      sourceIp: input.sourceIp ?? null,
      rawBody: input.rawBody,
    });
    if (shapeError || !parsed) {
      await this.repo.markCallbackProcessed(inboxId, 'invalid_shape');
      throw shapeError ?? new CallbackShapeError('Not an STK callback');
    }

    if (verified && input.paymentId) {
      try {
        const outcome = await this.processVerifiedCallback(input.paymentId, parsed);
        await this.repo.markCallbackProcessed(inboxId, outcome);
      } catch (err) {
        // Stored but not processed: acknowledged anyway (it is durable); status refresh / reconciliation settle it.
        this.logger.error({ err: safeError(err), inboxId: inboxId.toString(), paymentId: input.paymentId }, 'callback stored but processing failed');
      }
    } else {
      this.runInBackground(this.confirmUnverifiedCallback(inboxId, parsed, input.paymentId));
    }
    return { ResultCode: 0, ResultDesc: 'Accepted' };
  }

  private async processVerifiedCallback(paymentId: string, cb: ParsedStkCallback): Promise<string> {
    if (cb.outcome === 'completed' && !cb.metadata) {
      // A success without amount/receipt cannot be checked: confirm it with Daraja instead.
      return this.confirmByQuery(paymentId, cb.checkoutRequestId);
    }
    return this.applyOutcome(
      paymentId,
      {
        outcome: cb.outcome,
        resultCode: cb.resultCode,
        resultDesc: cb.resultDesc,
        source: 'callback',
        checkoutRequestId: cb.checkoutRequestId,
        merchantRequestId: cb.merchantRequestId,
        amount: cb.metadata?.amount,
        receipt: cb.metadata?.mpesaReceiptNumber,
        transactionDate: cb.metadata?.transactionDate,
      },
      'daraja:callback',
    );
  }

  private async confirmUnverifiedCallback(inboxId: bigint, cb: ParsedStkCallback, urlPaymentId?: string): Promise<void> {
    const p = await this.repo.findByCheckoutRequestId(cb.checkoutRequestId);
    if (!p) {
      this.logger.warn({ inboxId: inboxId.toString(), urlPaymentId }, 'unverified callback for an unknown CheckoutRequestID');
      await this.repo.markCallbackProcessed(inboxId, 'unknown_payment');
      return;
    }
    await this.repo.insertEvent({ paymentId: p.id, type: 'unverified_callback', actor: 'daraja:callback', data: { inboxId: inboxId.toString(), resultCode: cb.resultCode } });
    const outcome = await this.confirmByQuery(p.id, cb.checkoutRequestId);
    await this.repo.markCallbackProcessed(inboxId, `unverified_${outcome}`);
  }

  /** Asks Daraja what happened and applies only that. */
  private async confirmByQuery(paymentId: string, checkoutRequestId: string): Promise<string> {
    const p = await this.repo.findById(paymentId);
    if (!p) return 'unknown_payment';
    if (!isInFlight(p.status)) return 'duplicate';
    if (p.checkoutRequestId && p.checkoutRequestId !== checkoutRequestId) return 'mismatch_ignored';
    const r = await this.daraja.queryStkStatus(checkoutRequestId);
    if (r.kind !== 'final') return `query_${r.kind}`;
    return this.applyOutcome(paymentId, { outcome: r.outcome, resultCode: r.resultCode, resultDesc: r.resultDesc, source: 'query', checkoutRequestId: r.checkoutRequestId, merchantRequestId: r.merchantRequestId }, 'daraja:stk-query');
  }

  /**
   * The one place a payment reaches an outcome, whoever reported it. Holds the row lock, so
   * concurrent duplicates (in this or another instance) see the first one's result and change
   * nothing. Completion requires matching ids and amount; mismatches go to review.
   */
  private async applyOutcome(paymentId: string, r: OutcomeReport, actor: string): Promise<ApplyResult> {
    let completed: Payment | undefined;
    let orderPaid = false;
    const result = await this.repo.transaction(async (tx): Promise<ApplyResult> => {
      const p = await this.repo.lock(tx, paymentId);
      if (!p) return 'unknown_payment';
      const summary = { source: r.source, resultCode: r.resultCode, resultDesc: r.resultDesc, checkoutRequestId: r.checkoutRequestId, receipt: r.receipt, amount: r.amount };

      // A payment parked in review only because its outcome was unknown can still be settled by the truth.
      const settleable = p.status === 'review' && p.statusReason === OUTCOME_UNKNOWN;
      if (isTerminal(p.status) || (p.status === 'review' && !settleable)) {
        // Late enrichment: a success callback after a query-confirmed completion carries the receipt.
        if (p.status === 'completed' && r.outcome === 'completed' && r.receipt && !p.mpesaReceiptNumber && r.source === 'callback' && this.amountMatches(p, r.amount) && !(await this.repo.findByReceipt(r.receipt, tx))) {
          await this.repo.update(p.id, { mpesaReceiptNumber: r.receipt, transactionDate: r.transactionDate ?? null }, tx);
          await this.repo.insertEvent({ paymentId, type: 'receipt_recorded', actor, data: summary }, tx);
          return 'applied';
        }
        await this.repo.insertEvent({ paymentId, type: 'duplicate_ignored', fromStatus: p.status, actor, data: { ...summary, reportedOutcome: r.outcome } }, tx);
        return 'duplicate';
      }

      const problem = this.integrityProblem(p, r) ?? (r.outcome === 'completed' && r.receipt && (await this.repo.findByReceipt(r.receipt, tx)) ? 'DUPLICATE_RECEIPT' : undefined);
      if (problem) {
        await this.repo.update(p.id, { status: 'review', statusReason: problem, resultCode: r.resultCode, resultDesc: r.resultDesc.slice(0, 500) }, tx);
        await this.repo.insertEvent({ paymentId, type: 'integrity_failure', fromStatus: p.status, toStatus: 'review', actor, data: { ...summary, problem, expectedAmount: p.amountMinor.toString(), expectedCheckoutRequestId: p.checkoutRequestId } }, tx);
        this.logger.warn({ paymentId, problem }, 'payment moved to review');
        return 'review';
      }

      const to: PaymentStatus = r.outcome;
      if (!canTransition(p.status, to) && !settleable) return 'ignored';
      await this.repo.update(p.id, {
        status: to,
        statusReason: REASONS[r.outcome],
        resultCode: r.resultCode,
        resultDesc: r.resultDesc.slice(0, 500),
        checkoutRequestId: p.checkoutRequestId ?? r.checkoutRequestId ?? null,
        merchantRequestId: p.merchantRequestId ?? r.merchantRequestId ?? null,
        ...(to === 'completed' ? { mpesaReceiptNumber: r.receipt ?? null, transactionDate: r.transactionDate ?? null, completedAt: new Date() } : {}),
      }, tx);
      await this.repo.insertEvent({ paymentId, type: 'status_changed', fromStatus: p.status, toStatus: to, actor, data: summary }, tx);
      if (to === 'completed') {
        completed = { ...p, status: to, mpesaReceiptNumber: r.receipt ?? null };
        // Same transaction: the payment and its order's paid flag commit together or not at all.
        orderPaid = await this.orders.settleIfPaid(p.shopId, p.orderId, tx);
      }
      return 'applied';
    });
    if (completed) this.afterCompletion(completed, orderPaid);
    return result;
  }

  private amountMatches(p: Payment, amount: number | undefined): boolean {
    return amount !== undefined && Number.isInteger(amount) && BigInt(amount) * 100n === p.amountMinor;
  }

  /** Checks a reported success against what the server knows. Queries carry no amount: the id is ours. */
  private integrityProblem(p: Payment, r: OutcomeReport): string | undefined {
    if (r.checkoutRequestId && p.checkoutRequestId && r.checkoutRequestId !== p.checkoutRequestId) return 'CHECKOUT_REQUEST_ID_MISMATCH';
    if (r.outcome !== 'completed' || r.source !== 'callback') return undefined;
    if (!this.amountMatches(p, r.amount)) return 'AMOUNT_MISMATCH';
    return undefined;
  }

  /** Runs after the completing transaction committed (the order was settled inside it): tell other modules. */
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

  // ------------------------------------------------------------------ helpers

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
      createdAt: p.createdAt.toISOString(),
      updatedAt: p.updatedAt.toISOString(),
      completedAt: p.completedAt ? p.completedAt.toISOString() : null,
    };
  }

  private runInBackground(task: Promise<unknown>): void {
    const tracked = task.catch((err) => this.logger.error({ err: safeError(err) }, 'background callback confirmation failed')).finally(() => this.background.delete(tracked));
    this.background.add(tracked);
  }

  async beforeApplicationShutdown(): Promise<void> {
    await Promise.allSettled([...this.background]);
  }
}

/** Seconds before the reconciler's next look after `attempt` looks: base·2^(attempt-1), capped, ±20 % jitter so instances spread out. */
export function reconcileBackoffSeconds(attempt: number, baseSeconds: number, maxSeconds: number, random: () => number = Math.random): number {
  const exp = Math.min(maxSeconds, baseSeconds * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.max(0, Math.round(exp * (0.8 + 0.4 * random())));
}

function encodeCursor(p: Payment): string {
  return Buffer.from(`${p.createdAt.toISOString()}|${p.id}`).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  const [iso, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const createdAt = new Date(iso ?? '');
  if (!id || !/^[0-9a-f-]{36}$/i.test(id) || Number.isNaN(createdAt.getTime())) throw new AppError('INVALID_CURSOR', 'cursor is not a value this endpoint returned', 400);
  return { createdAt, id };
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** Stable hash of a request: same fields and values in any key order give the same hash. */
export function hashRequest(route: string, body: object): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(canonical) : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])])) : v;
  return sha256(route + '\n' + JSON.stringify(canonical({ ...body })));
}

/** Daraja shows AccountReference to the customer; it must be ≤ 12 letters/digits. */
export function defaultAccountReference(orderId: string): string {
  const alnum = orderId.replace(/[^A-Za-z0-9]/g, '');
  return (alnum || 'POS').slice(-12);
}
