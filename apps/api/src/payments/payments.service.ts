import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { AuthUser } from '../auth/auth.types';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { AppError, ConflictError, NotFoundError } from '../common/errors';
import { ipAllowed } from '../common/ip-allowlist';
import { safeError, safeMessage } from '../common/logging';
import { maskCheckoutRequestId, maskPhone, parseMaskedCheckoutRequestId } from '../common/mask';
import type { Payment } from '../database/schema';
import { CallbackShapeError } from './providers/mpesa/mpesa.errors';
import { formatPhoneNumber } from './providers/mpesa/phone';
import type { DarajaAccount } from './providers/mpesa/daraja.types';
import { MpesaAccountKind } from './providers/mpesa/mpesa.account';
import { MerchantAccountsService } from './merchant-accounts.service';
import { MpesaResultsService } from './providers/mpesa/mpesa-results.service';
import { fitAccountReference, fittedOrRefused } from './providers/mpesa/stk-fields';
import {
  MpesaInitiateResult,
  MpesaNotification,
  MpesaProvider,
  MpesaStatusResult,
} from './providers/mpesa/mpesa.provider';
import { ProviderError } from './providers/provider-errors';
import { CallbackApplier } from './callback-applier';
import { PaymentInitiation } from './payment-initiation.service';
import { HttpResult, OUTCOME_UNKNOWN, OutcomeReport, PaymentLifecycle } from './payment-lifecycle.service';
import { isInFlight } from './payment-status';
import { phoneHash } from './phone-hash';
import { ProviderPaymentService, ProviderServicesRegistry, StoredNotification } from './provider-services.registry';
import { PaymentResponseDto, StkPushDto, StkPushResponseDto } from './payments.dto';
import { IdempotencyRecord, PaymentsRepository } from './payments.repository';
import { reconcileLook, ReconcileResult, UNVERIFIED_CALLBACK_WINDOW_SECONDS } from './reconcile';
import { SharedLookups } from './shared-lookup';

export type { ReconcileAction, ReconcileResult } from './reconcile';
export { PAYMENT_COMPLETED_EVENT } from './payment-lifecycle.service';
export type { HttpResult, PaymentCompletedEvent } from './payment-lifecycle.service';

export interface CallbackInput {
  paymentId?: string;
  token?: string;
  body: unknown;
  rawBody: string;
  sourceIp?: string;
}

const DEFAULT_TRANSACTION_DESC = 'POS payment';
/** Minimum seconds between two STK queries for the same payment (across all instances). */
const QUERY_MIN_INTERVAL_SECONDS = 2;
const UNVERIFIED_DISTINCT_BODIES = 4;

/** One shared STK query turn (see sharedStatusQuery). */
type StatusQueryTurn =
  /** another caller asked Daraja about this payment less than QUERY_MIN_INTERVAL_SECONDS ago (here or on another instance) */
  | { asked: false }
  /** Daraja's answer; `applied` is what applying a final answer recorded; `shared`: another caller asked, this one waited for it */
  | { asked: true; shared: boolean; result: MpesaStatusResult; applied?: string };

/**
 * M-Pesa Express (STK push): the push, the status by CheckoutRequestID, Daraja's callbacks and
 * M-Pesa's reconciler and status-read steps, on the shared PaymentLifecycle. Registered in
 * ProviderServicesRegistry as 'mpesa' like every provider's service.
 */
@Injectable()
export class PaymentsService implements ProviderPaymentService, OnModuleInit, BeforeApplicationShutdown {
  readonly provider = 'mpesa';
  private readonly logger = new Logger(PaymentsService.name);
  /** Background callback confirmations still running (awaited on shutdown). */
  private readonly background = new Set<Promise<unknown>>();
  /** STK queries running in this process, per payment + CheckoutRequestID: concurrent askers share the answer. */
  private readonly statusQueries: SharedLookups<{ result: MpesaStatusResult; applied?: string }>;

  constructor(
    private readonly repo: PaymentsRepository,
    private readonly mpesa: MpesaProvider,
    private readonly lifecycle: PaymentLifecycle,
    private readonly initiation: PaymentInitiation,
    private readonly registry: ProviderServicesRegistry,
    private readonly accounts: MerchantAccountsService,
    private readonly mpesaAccounts: MpesaAccountKind,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly results: MpesaResultsService,
    private readonly applier: CallbackApplier,
  ) {
    this.statusQueries = new SharedLookups((id, at) => this.repo.recordLookupAnswered(id, at));
  }

  onModuleInit(): void {
    this.registry.register(this);
  }

  /** The keyed phone hash every provider stores (see phone-hash.ts). */
  private phoneHash(msisdn: string): string {
    return phoneHash(this.config.mpesa.callbackSigningSecret, msisdn);
  }

  // ------------------------------------------------------------------ STK push

  /** `knownKey`: the Idempotency-Key as this request already read it (the rate limiter's lookup), so it is not read twice. */
  async initiateStkPush(
    user: AuthUser,
    dto: StkPushDto,
    idempotencyKey?: string,
    knownKey?: { record: IdempotencyRecord | null },
  ): Promise<HttpResult> {
    const phone = formatPhoneNumber(dto.phoneNumber);
    const requestHash = this.lifecycle.requestHash('POST /payments/stk-push', dto);

    if (idempotencyKey) {
      const replay = await this.lifecycle.replayIdempotent(user.shopId, idempotencyKey, requestHash, knownKey);
      if (replay) return replay;
    }

    const amountMinor = BigInt(dto.amount) * 100n;
    // The order is checked where the payment is written (openPayment, one statement). What is
    // refused before that (no account for the shop, a text that cannot be sent) is refused after
    // the order's own errors, as when the order was read first: an unknown or paid order says so.
    let account: Awaited<ReturnType<MerchantAccountsService['resolveForPayment']>>;
    let daraja: DarajaAccount;
    let accountReference: string;
    let transactionDesc: string;
    try {
      // The shop's own account (or its chain's, or the platform's): resolved before anything is
      // stored, so a shop without one is told so and nothing is written; recorded on the payment.
      account = await this.accounts.resolveForPayment(user.shopId, 'mpesa');
      daraja = this.mpesaAccounts.toDaraja(account);
      // What Daraja is sent (and the customer sees): the POS's text made to fit. requestHash above is over the raw body.
      accountReference =
        dto.accountReference == null
          ? defaultAccountReference(dto.orderId)
          : fittedOrRefused('accountReference', dto.accountReference);
      transactionDesc =
        dto.transactionDesc == null
          ? DEFAULT_TRANSACTION_DESC
          : fittedOrRefused('transactionDesc', dto.transactionDesc);
    } catch (err) {
      await this.lifecycle.checkOrder(user.shopId, dto.orderId, amountMinor, 'KES', 'M-Pesa', String(dto.amount));
      throw err;
    }

    const paymentId = randomUUID();
    const lost = await this.lifecycle.openPayment(paymentId, {
      user,
      orderId: dto.orderId,
      amountMinor,
      currency: 'KES',
      provider: 'mpesa',
      providerLabel: 'M-Pesa',
      idempotencyKey,
      requestHash,
      fields: {
        phoneMasked: maskPhone(phone),
        phoneHash: this.phoneHash(phone),
        accountReference,
        transactionDesc,
        merchantAccountId: account.accountId,
      },
      eventData: {
        phone: maskPhone(phone),
        accountReference,
        customerEmail: dto.customerEmail ?? null,
        merchantAccountId: account.accountId,
      },
    });
    if (lost) return lost;

    return this.sendPush(
      paymentId,
      daraja,
      phone,
      dto.amount,
      accountReference,
      transactionDesc,
      dto.orderId,
      idempotencyKey ? { shopId: user.shopId, key: idempotencyKey } : undefined,
    );
  }

  /**
   * Calls Daraja once, through the core's init path (PaymentInitiation): never retried; a push
   * with an unknown outcome becomes 'unresolved'. What Daraja answered, its audit event and the
   * Idempotency-Key's stored answer are written in one transaction.
   */
  private sendPush(
    paymentId: string,
    account: DarajaAccount,
    phone: string,
    amount: number,
    accountReference: string,
    transactionDesc: string,
    orderId: string,
    idem?: { shopId: string; key: string },
  ): Promise<HttpResult> {
    const pushEvent = (accepted: MpesaInitiateResult, ms: number) => ({
      actor: 'daraja:stk-push',
      data: {
        merchantRequestId: accepted.providerRequestId,
        checkoutRequestId: accepted.providerRef,
        responseCode: accepted.providerCode,
        responseDescription: accepted.description,
        ms,
      },
    });
    const pushAnswer = (accepted: MpesaInitiateResult, status: string): StkPushResponseDto => ({
      paymentId,
      status: status === 'initiated' ? 'pending' : status,
      merchantRequestId: accepted.providerRequestId,
      // Masked like every answer: the id ends with the payer's number.
      checkoutRequestId: maskCheckoutRequestId(accepted.providerRef),
      responseCode: accepted.providerCode,
      responseDescription: accepted.description,
      customerMessage: accepted.customerMessage,
      amount,
      currency: 'KES',
      orderId,
      accountReference,
      transactionDesc,
    });
    return this.initiation.run<MpesaInitiateResult>({
      paymentId,
      provider: 'mpesa',
      label: 'M-Pesa',
      actor: 'daraja:stk-push',
      idem,
      send: () =>
        this.mpesa.initiate({
          paymentId,
          reference: accountReference,
          amountMinor: BigInt(amount) * 100n,
          currency: 'KES',
          description: transactionDesc,
          customer: { phoneNumber: phone },
          account,
        }),
      // The payment's ids and status, its provider_response event and the key's answer: one statement.
      recordAnswerAlone: async (accepted, ms, idem) => {
        const body = pushAnswer(accepted, 'pending');
        const status = await this.repo.recordPushAnswer(
          paymentId,
          accepted.providerRequestId,
          accepted.providerRef,
          pushEvent(accepted, ms),
          idem ? { ...idem, status: 201, body: { ...body } } : undefined,
        );
        return { status: 201, body: pushAnswer(accepted, status) };
      },
      // not_processed: Safaricom never acted on it, so no prompt reached the customer.
      unknownReason: 'PUSH_OUTCOME_UNKNOWN',
      texts: {
        unknownOutcome: 'The customer may still get the prompt: do not push again, check the payment status.',
        unexpected: 'Could not confirm the M-Pesa request. Do not retry: check the payment status.',
        doNotRepeat: 'Do not push again',
      },
      errorEventData: (err) => ({ darajaErrorCode: err?.providerCode ?? null }),
    });
  }

  // ------------------------------------------------------------------ status

  /**
   * STK query through the provider adapter, with the account the payment was made with (never the
   * shop's current one): pending / not_found / a final outcome drive the rules here.
   */
  private async queryStk(checkoutRequestId: string, merchantAccountId: string | null): Promise<MpesaStatusResult> {
    const account = await this.accounts.resolveForExisting(merchantAccountId, 'mpesa');
    return this.mpesa.fetchStatus(
      { reference: checkoutRequestId, providerRef: checkoutRequestId },
      this.mpesaAccounts.toDaraja(account),
    );
  }

  async getStkStatus(
    user: AuthUser,
    checkoutRequestId: string,
    merchantRequestId?: string,
  ): Promise<PaymentResponseDto> {
    const masked = parseMaskedCheckoutRequestId(checkoutRequestId);
    let p: Payment | null;
    if (masked) {
      // As answered (the payer's number masked): the stamp before it is to the millisecond, so two
      // payments of one shop behind it are practically impossible; if they are there, do not guess.
      // The MerchantRequestID given beside it (Daraja answers both) tells such twins apart.
      const all = await this.repo.findByMaskedCheckoutRequestId(masked.prefix, masked.lastTwo, user.shopId);
      const found = merchantRequestId ? all.filter((x) => x.merchantRequestId === merchantRequestId) : all;
      if (found.length > 1)
        throw new ConflictError(
          'CHECKOUT_REQUEST_ID_AMBIGUOUS',
          'More than one payment of this shop has this checkoutRequestId: add its merchantRequestId, look the payment up by its paymentId (GET /payments/:id) or use the full CheckoutRequestID',
          { checkoutRequestId },
        );
      p = found[0] ?? null;
    } else {
      p = await this.repo.findByCheckoutRequestId(checkoutRequestId, user.shopId);
    }
    if (!p || (merchantRequestId && p.merchantRequestId !== merchantRequestId))
      throw new NotFoundError('Payment', { checkoutRequestId: maskCheckoutRequestId(checkoutRequestId) });
    return this.toResponse(await this.refreshIfDue(p));
  }

  /**
   * Asks Daraja (STK query) about a pending/unresolved payment that is old enough, records what
   * it learns, and returns the fresh row. Provider trouble never fails the read.
   */
  async refreshIfDue(p: Payment): Promise<Payment> {
    if (!isInFlight(p.status)) return p;
    const ageSeconds = (Date.now() - p.createdAt.getTime()) / 1000;
    if (!p.checkoutRequestId) {
      // Nothing to query with (the push answer was lost). After the window, a person decides;
      // the order stays blocked until it is settled (a late callback on the payment's own URL, the
      // statement) or a manager releases it.
      if (ageSeconds >= this.config.mpesa.unresolvedReviewAfterSeconds) await this.moveUnknownToReview(p.id);
      return (await this.repo.findById(p.id)) ?? p;
    }
    if (ageSeconds < this.config.mpesa.statusQueryAfterSeconds) return p;
    try {
      const turn = await this.sharedStatusQuery(p, p.checkoutRequestId);
      if (
        turn.asked &&
        turn.result.status === 'not_found' &&
        ageSeconds >= this.config.mpesa.notFoundFailAfterSeconds
      ) {
        await this.failNotFound(p.id, turn.result.description);
      }
    } catch (err) {
      this.logger.warn(
        { paymentId: p.id, code: err instanceof AppError ? err.code : 'UNKNOWN', msg: safeMessage(err) },
        'STK query failed; returning stored status',
      );
    }
    return (await this.repo.findById(p.id)) ?? p;
  }

  /**
   * The STK query of status reads and callback confirmations, shared: concurrent callers in this
   * process wait for one answer, and the database claim lets one caller across all instances ask
   * per QUERY_MIN_INTERVAL_SECONDS ({asked: false} for the others: whoever asked records the
   * answer). A final answer is applied once, here.
   */
  private async sharedStatusQuery(
    payment: Pick<Payment, 'id' | 'merchantAccountId'>,
    checkoutRequestId: string,
    actor = 'daraja:stk-query',
  ): Promise<StatusQueryTurn> {
    const paymentId = payment.id;
    const turn = await this.statusQueries.turn(
      paymentId,
      `${paymentId}|${checkoutRequestId}`,
      () => this.repo.claimStatusQuery(paymentId, QUERY_MIN_INTERVAL_SECONDS),
      async () => {
        const r = await this.queryStk(checkoutRequestId, payment.merchantAccountId);
        const report = queryReport(r);
        if (!report) return { result: r };
        // Applied under the row lock: a review payment other than OUTCOME_UNKNOWN is left as it is (recorded as a duplicate report).
        const applied = await this.lifecycle.applyOutcome(paymentId, report, actor);
        return { result: r, applied };
      },
    );
    return turn.asked ? { asked: true, shared: turn.shared, ...turn.value } : { asked: false };
  }

  private moveUnknownToReview(
    paymentId: string,
    data: Record<string, unknown> = { afterSeconds: this.config.mpesa.unresolvedReviewAfterSeconds },
    onlyWithoutCheckoutId = true,
  ): Promise<boolean> {
    return this.lifecycle.moveUnknownToReview(paymentId, data, onlyWithoutCheckoutId);
  }

  private async failNotFound(paymentId: string, message: string): Promise<void> {
    await this.lifecycle.failOpen(paymentId, 'NOT_FOUND_AT_PROVIDER', message, 'daraja:stk-query');
  }

  // ------------------------------------------------------------------ reconciliation

  /**
   * One reconciler look at an open payment (claimed by the caller), M-Pesa's steps in the shared
   * skeleton (reconcileLook): settles it by STK query when it can; otherwise the next look comes
   * with exponential backoff, and after the window or the query budget it is parked in review.
   * Never pushes again.
   */
  reconcile(p: Payment): Promise<ReconcileResult> {
    const rc = this.config.reconciler;
    const ageSeconds = (Date.now() - p.createdAt.getTime()) / 1000;
    const checkoutRequestId = p.checkoutRequestId;
    return reconcileLook(
      p,
      { repo: this.repo, config: rc, logger: this.logger },
      {
        what: 'STK query',
        claimIntervalSeconds: QUERY_MIN_INTERVAL_SECONDS,
        before: async () => {
          if (!checkoutRequestId) {
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
            await this.moveUnknownToReview(
              p.id,
              {
                giveUp: ageSeconds >= rc.giveUpAfterSeconds ? 'window' : 'query_budget',
                ageSeconds: Math.round(ageSeconds),
                queries: p.reconcileAttempts,
              },
              false,
            );
            return { action: 'moved_to_review' };
          }
          return undefined;
        },
        ask: async (backoff) => {
          const r = await this.queryStk(checkoutRequestId as string, p.merchantAccountId);
          const report = queryReport(r);
          if (report) {
            await this.lifecycle.applyOutcome(p.id, report, 'reconciler:stk-query');
            return { result: { action: 'settled', provider: queryInfo(r) }, nextLookSeconds: 0 };
          }
          if (r.status === 'not_found' && ageSeconds >= this.config.mpesa.notFoundFailAfterSeconds) {
            await this.failNotFound(p.id, r.description);
            return { result: { action: 'failed_not_found', provider: queryInfo(r) } };
          }
          return { result: { action: 'still_pending', provider: queryInfo(r) }, nextLookSeconds: backoff };
        },
      },
    );
  }

  /**
   * An operator asks to reconcile one M-Pesa payment now: an open one, or one in review with a
   * CheckoutRequestID, is looked up at Daraja (operatorLook); others are reported as final.
   */
  async reconcileNow(p: Payment): Promise<ReconcileResult> {
    if (isInFlight(p.status) || (p.status === 'review' && p.checkoutRequestId)) return this.operatorLook(p);
    return { action: 'already_final' };
  }

  /**
   * An operator's look at one M-Pesa payment (open, or in review). Unlike the reconciler's look it
   * spends none of the reconciler's query budget and never gives up on the payment (pressing
   * "reconcile" again and again must not park a payment whose customer still has the prompt), and
   * it asks through the shared per-payment throttle (one STK query per payment per
   * QUERY_MIN_INTERVAL_SECONDS, whoever asks). A review payment is settled only when it is there
   * because its outcome was unknown; other review cases are reported, never changed.
   */
  private async operatorLook(p: Payment): Promise<ReconcileResult> {
    if (!p.checkoutRequestId) {
      // Nothing to query with (the push answer was lost): the same age rule as the reconciler's.
      if (
        isInFlight(p.status) &&
        (Date.now() - p.createdAt.getTime()) / 1000 >= this.config.mpesa.unresolvedReviewAfterSeconds
      ) {
        await this.moveUnknownToReview(p.id);
        return { action: 'moved_to_review' };
      }
      return { action: 'deferred' };
    }
    try {
      const turn = await this.sharedStatusQuery(p, p.checkoutRequestId, 'reconciler:stk-query');
      // Someone asked Daraja about this payment moments ago and recorded the answer.
      if (!turn.asked) return { action: 'deferred' };
      const r = turn.result;
      const provider = queryInfo(r);
      if (r.status === 'pending' || r.status === 'not_found') {
        const ageSeconds = (Date.now() - p.createdAt.getTime()) / 1000;
        if (
          r.status === 'not_found' &&
          isInFlight(p.status) &&
          ageSeconds >= this.config.mpesa.notFoundFailAfterSeconds
        ) {
          await this.failNotFound(p.id, r.description);
          return { action: 'failed_not_found', provider };
        }
        return { action: 'still_pending', provider };
      }
      if (p.status === 'review' && p.statusReason !== OUTCOME_UNKNOWN) return { action: 'already_final', provider };
      return { action: 'settled', provider };
    } catch (err) {
      const code = err instanceof AppError ? err.code : 'UNKNOWN';
      return {
        action: 'provider_error',
        provider: {
          kind: 'error',
          errorCode: err instanceof ProviderError ? (err.providerCode ?? code) : code,
          message: safeMessage(err),
        },
      };
    }
  }

  /**
   * Processes a stored callback again (its first processing never finished). Safe to repeat:
   * applyOutcome is idempotent under the row lock.
   */
  async replayStoredNotification(row: StoredNotification): Promise<string> {
    // Reversal / Transaction Status results (callback_inbox.kind set) belong to the Result API handler.
    if (row.kind) return this.results.replay(row);
    let parsed: MpesaNotification;
    try {
      // Whether it was verified was decided (and stored) when it arrived: the URL is not stored.
      parsed = this.mpesa.parseNotification({ headers: {}, query: {}, body: JSON.parse(row.rawBody) });
    } catch {
      await this.repo.markCallbackProcessed(row.id, 'invalid_shape');
      return 'invalid_shape';
    }
    if (row.verified && row.urlPaymentId && !needsQuery(parsed)) {
      // Under the row's lock, as the CallbackApplier applies it: whichever comes second finds it
      // processed and leaves it (no second pass recording it as a duplicate).
      const paymentId = row.urlPaymentId;
      const done = await this.repo.transaction(async (tx) => {
        if ((await this.repo.lockUnfinishedCallbacksIn(tx, [row.id])).size === 0) return undefined;
        const applied = await this.lifecycle.applyOutcomeIn(tx, paymentId, callbackReport(parsed), 'daraja:callback');
        await this.repo.finishCallbacksIn(tx, [{ id: row.id, outcome: applied.result }]);
        return applied;
      });
      if (!done) return 'deferred';
      done.afterCommit?.();
      return done.result;
    }
    if (row.verified && row.urlPaymentId) {
      const outcome = await this.processVerifiedCallback(row.urlPaymentId, parsed);
      await this.finishInboxRow(row.id, outcome);
      return outcome;
    }
    await this.confirmUnverifiedCallback(row.id, parsed, row.urlPaymentId ?? undefined, false);
    return 'confirmed';
  }

  // ------------------------------------------------------------------ callbacks

  /**
   * Stores the callback body first (a failure here is a 5xx, so nothing is acknowledged that was
   * not stored), then processes it. Callbacks on a valid capability URL are applied at once;
   * others are confirmed with an STK query in the background before anything changes.
   */
  async receiveCallback(input: CallbackInput): Promise<{ ResultCode: 0; ResultDesc: 'Accepted' }> {
    if (!ipAllowed(input.sourceIp, this.config.mpesa.callbackIpAllowlist))
      throw new AppError('FORBIDDEN', 'Callback sender is not on the allowlist', 403);
    let parsed: MpesaNotification | undefined;
    let verified = false;
    let shapeError: CallbackShapeError | undefined;
    try {
      parsed = this.mpesa.parseNotification({
        headers: {},
        query: {},
        params: { paymentId: input.paymentId, token: input.token },
        body: input.body,
      });
      verified = parsed.verified;
    } catch (err) {
      if (!(err instanceof CallbackShapeError)) throw err;
      shapeError = err;
    }
    const row = {
      provider: 'mpesa',
      attempts: 1,
      urlPaymentId: input.paymentId && /^[\x21-\x7e]{1,64}$/.test(input.paymentId) ? input.paymentId : null,
      verified,
      checkoutRequestId: parsed?.providerRef ?? null,
      sourceIp: input.sourceIp ?? null,
      rawBody: input.rawBody,
    };
    if (shapeError || !parsed) {
      // Not a callback: one row per window for all of them (the first body, counted), before the 400.
      await this.repo.storeCoalescedCallback(
        { ...row, processedAt: new Date(), outcome: 'invalid_shape' },
        { group: 'mpesa|kind:invalid_shape', windowSeconds: UNVERIFIED_CALLBACK_WINDOW_SECONDS },
      );
      throw shapeError ?? new CallbackShapeError('Not an STK callback');
    }

    if (verified && input.paymentId && !needsQuery(parsed)) {
      // The common case: ONE autocommit write before the answer (a repeat of what the payment
      // already holds is recognised in it and stored as processed), then applied off the request
      // path. Should the process die first, the reconciler replays the stored row.
      const stored = await this.repo.insertVerifiedCallback(
        {
          urlPaymentId: input.paymentId,
          checkoutRequestId: parsed.providerRef,
          sourceIp: row.sourceIp,
          rawBody: row.rawBody,
        },
        { success: parsed.report.status === 'completed', receipt: parsed.report.paid?.receipt },
      );
      if (!stored.duplicate) {
        const paymentId = input.paymentId;
        const report = callbackReport(parsed);
        this.applier.enqueue({
          inboxId: stored.id,
          receivedAt: Date.now(),
          paymentId,
          report,
          apply: async (tx, pre) => {
            const applied = await this.lifecycle.applyOutcomeIn(tx, paymentId, report, 'daraja:callback', {
              batch: pre,
            });
            return { outcome: applied.result, afterCommit: applied.afterCommit };
          },
        });
      }
      return { ResultCode: 0, ResultDesc: 'Accepted' };
    }

    if (!(verified && input.paymentId)) {
      // Unverified: stored (or counted on a row of this window) before the answer.
      const known = await this.repo.findByCheckoutRequestId(parsed.providerRef);
      if (!known) {
        // Names no payment of ours: one row per window for all of them, nothing to confirm.
        const stored = await this.repo.storeCoalescedCallback(
          { ...row, processedAt: new Date(), outcome: 'unknown_payment' },
          { group: 'mpesa|kind:unknown_payment', windowSeconds: UNVERIFIED_CALLBACK_WINDOW_SECONDS },
        );
        if (stored.first)
          this.logger.warn(
            { inboxId: stored.id.toString(), urlPaymentId: row.urlPaymentId },
            'unverified callback for an unknown CheckoutRequestID (further ones in this window are only counted)',
          );
        return { ResultCode: 0, ResultDesc: 'Accepted' };
      }
      // A payment of ours: identical bodies share a row, a different body (e.g. the genuine one
      // after a forged one) gets its own. A new row starts a confirmation; so does a delivery on a
      // row whose confirmation already finished while the payment is still open (the shared query
      // throttle keeps that to one STK query per interval). Deliveries during a confirmation wait for it.
      const stored = await this.repo.storeCoalescedCallback(
        { ...row, checkoutRequestId: parsed.providerRef },
        {
          group: `mpesa|co:${parsed.providerRef}`,
          windowSeconds: UNVERIFIED_CALLBACK_WINDOW_SECONDS,
          distinctBodies: UNVERIFIED_DISTINCT_BODIES,
        },
      );
      if (stored.first || (stored.finished && isInFlight(known.status)))
        this.runInBackground(this.confirmUnverifiedCallback(stored.id, parsed, input.paymentId, stored.first));
      return { ResultCode: 0, ResultDesc: 'Accepted' };
    }
    const inboxId = await this.repo.insertCallback(row);
    try {
      const outcome = await this.processVerifiedCallback(input.paymentId, parsed);
      await this.finishInboxRow(inboxId, outcome);
    } catch (err) {
      // Stored but not processed: acknowledged anyway (it is durable); status refresh / reconciliation settle it.
      this.logger.error(
        { err: safeError(err), inboxId: inboxId.toString(), paymentId: input.paymentId },
        'callback stored but processing failed',
      );
    }
    return { ResultCode: 0, ResultDesc: 'Accepted' };
  }

  private async processVerifiedCallback(paymentId: string, cb: MpesaNotification): Promise<string> {
    // A success without amount/receipt cannot be checked: confirm it with Daraja instead.
    if (needsQuery(cb)) return this.confirmByQuery(paymentId, cb.providerRef);
    return this.lifecycle.applyOutcome(paymentId, callbackReport(cb), 'daraja:callback');
  }

  /**
   * Confirms an unverified stored callback by STK query (shared, throttled). Its row is finished
   * when the payment is settled, or when a query claimed after the row's last delivery answered;
   * otherwise (throttled: someone asked just before it arrived) it is left for the reconciler
   * after the interval. `audit`: the row's first confirmation records an unverified_callback event.
   */
  private async confirmUnverifiedCallback(
    inboxId: bigint,
    cb: MpesaNotification,
    urlPaymentId?: string,
    audit = true,
  ): Promise<void> {
    const p = await this.repo.findByCheckoutRequestId(cb.providerRef);
    if (!p) {
      this.logger.warn(
        { inboxId: inboxId.toString(), urlPaymentId },
        'unverified callback for an unknown CheckoutRequestID',
      );
      await this.repo.markCallbackProcessed(inboxId, 'unknown_payment');
      return;
    }
    if (audit)
      await this.repo.insertEvent({
        paymentId: p.id,
        type: 'unverified_callback',
        actor: 'daraja:callback',
        data: { inboxId: inboxId.toString(), resultCode: cb.report.providerCode },
      });
    const outcome = await this.confirmByQuery(p.id, cb.providerRef);
    const now = await this.repo.findById(p.id);
    if (!now || !isInFlight(now.status)) {
      await this.repo.markCallbackProcessed(
        inboxId,
        `unverified_${outcome === 'query_throttled' ? 'duplicate' : outcome}`,
      );
      return;
    }
    await this.repo.finishIfAnswered(
      inboxId,
      p.id,
      `unverified_${outcome === 'query_throttled' ? 'answered' : outcome}`,
      QUERY_MIN_INTERVAL_SECONDS,
    );
  }

  /**
   * Asks Daraja what happened and applies only that, through the shared per-payment query
   * throttle: 'query_throttled' when another caller asked moments ago (or is asking: its answer is
   * recorded once, by it) and the payment is still open.
   */
  private async confirmByQuery(paymentId: string, checkoutRequestId: string): Promise<string> {
    const p = await this.repo.findById(paymentId);
    if (!p) return 'unknown_payment';
    if (!isInFlight(p.status)) return 'duplicate';
    if (p.checkoutRequestId && p.checkoutRequestId !== checkoutRequestId) return 'mismatch_ignored';
    const turn = await this.sharedStatusQuery(p, checkoutRequestId);
    if (!turn.asked || turn.shared) {
      // Someone else asked (just before, or is asking now): their answer is recorded by them.
      const now = await this.repo.findById(paymentId);
      return now && !isInFlight(now.status) ? 'duplicate' : 'query_throttled';
    }
    if (turn.result.status === 'pending' || turn.result.status === 'not_found') return `query_${turn.result.status}`;
    return turn.applied ?? 'applied';
  }

  /**
   * Records what processing a verified stored callback concluded. One whose confirming query was
   * throttled (another caller asked Daraja moments ago, the payment is still open) stays
   * unprocessed: the reconciler asks again after the interval.
   */
  private async finishInboxRow(inboxId: bigint, outcome: string): Promise<void> {
    if (outcome === 'query_throttled') await this.repo.deferCallback(inboxId, QUERY_MIN_INTERVAL_SECONDS);
    else await this.repo.markCallbackProcessed(inboxId, outcome);
  }

  // ------------------------------------------------------------------ helpers

  toResponse(p: Payment): PaymentResponseDto {
    return this.lifecycle.toResponse(p);
  }

  private runInBackground(task: Promise<unknown>): void {
    const tracked = task
      .catch((err) => this.logger.error({ err: safeError(err) }, 'background callback confirmation failed'))
      .finally(() => this.background.delete(tracked));
    this.background.add(tracked);
  }

  async beforeApplicationShutdown(): Promise<void> {
    await Promise.allSettled([...this.background]);
  }
}

/** A success callback without CallbackMetadata carries no amount or receipt: it must be confirmed by STK query. */
function needsQuery(cb: MpesaNotification): boolean {
  return cb.report.status === 'completed' && !cb.report.paid;
}

function callbackReport(cb: MpesaNotification): OutcomeReport {
  return {
    outcome: cb.report.status,
    resultCode: cb.report.providerCode,
    resultDesc: cb.report.description,
    source: 'callback',
    amountRequired: true,
    amountMinor: cb.report.paid?.amountMinor,
    checkoutRequestId: cb.providerRef,
    merchantRequestId: cb.providerRequestId,
    receipt: cb.report.paid?.receipt,
    transactionDate: cb.report.paid?.transactionDate,
  };
}

/** A final STK query answer as the lifecycle's report (no amount: the CheckoutRequestID is ours); undefined while it is not final. */
function queryReport(r: MpesaStatusResult): OutcomeReport | undefined {
  if (r.status === 'pending' || r.status === 'not_found') return undefined;
  return {
    outcome: r.status,
    resultCode: r.providerCode,
    resultDesc: r.description,
    source: 'query',
    amountRequired: false,
    checkoutRequestId: r.providerRef,
    merchantRequestId: r.providerRequestId,
  };
}

/** What Daraja answered, for a ReconcileResult: a final answer's ResultCode/ResultDesc, else its errorCode/errorMessage. */
function queryInfo(r: MpesaStatusResult): NonNullable<ReconcileResult['provider']> {
  if (r.status === 'pending' || r.status === 'not_found')
    return { kind: r.status, errorCode: r.providerCode, message: r.description };
  return { kind: 'final', resultCode: r.providerCode, resultDesc: r.description };
}

/** Daraja shows AccountReference to the customer; it must be ≤ 12 letters/digits (the order id's last 12). */
export function defaultAccountReference(orderId: string): string {
  return fitAccountReference(orderId) ?? 'POS';
}
