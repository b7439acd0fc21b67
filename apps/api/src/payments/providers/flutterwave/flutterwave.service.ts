import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { AuthUser } from '../../../auth/auth.types';
import { AppError, ValidationFailedError } from '../../../common/errors';
import { safeError, safeMessage } from '../../../common/logging';
import { maskEmail, maskPhone } from '../../../common/mask';
import { toMajor } from '../../../common/money';
import type { AppConfig } from '../../../config/app-config';
import { APP_CONFIG } from '../../../config/config.module';
import type { Payment } from '../../../database/schema';
import type { Tx } from '../../../database/database';
import { MerchantAccountsService } from '../../merchant-accounts.service';
import { PaymentInitiation } from '../../payment-initiation.service';
import {
  ApplyResult,
  HttpResult,
  OUTCOME_UNKNOWN,
  OutcomeReport,
  PaymentLifecycle,
} from '../../payment-lifecycle.service';
import { isInFlight } from '../../payment-status';
import type { PaymentResponseDto } from '../../payments.dto';
import { PaymentsRepository } from '../../payments.repository';
import { reconcileLook, ReconcileResult, UNVERIFIED_CALLBACK_WINDOW_SECONDS } from '../../reconcile';
import { phoneHash } from '../../phone-hash';
import { SharedLookups } from '../../shared-lookup';
import { ProviderPaymentService, ProviderServicesRegistry, StoredNotification } from '../../provider-services.registry';
import { formatMinor } from '../amount';
import { FlutterwaveAccountKind } from './flutterwave.account';
import { FLUTTERWAVE_PROVIDER } from './flutterwave.constants';
import { FlutterwaveRefunds } from './flutterwave.refunds';
import { FlutterwaveProvider } from './flutterwave.provider';
import type { InitiateRequest, Notification, StatusResult } from '../payment-provider';
import { ProviderError } from '../provider-errors';
import { FlutterwaveInitDto, FlutterwaveInitResponseDto, FlutterwaveVerifyDto } from './flutterwave.dto';
import {
  chooseReturnUrl,
  displayAmount,
  FLW_CHECKOUT_WINDOW_SECONDS,
  FLW_CLOSED_RECHECK_INTERVAL_SECONDS,
  FLW_INTERACTIVE_MIN_INTERVAL_SECONDS,
  FLW_PROVIDER,
  FLW_READ_MIN_INTERVAL_SECONDS,
  FLW_REFRESH_AFTER_SECONDS,
  flwDataStatus,
  normalizeCustomerPhone,
  parseMajorAmount,
  planLook,
  renderResultPage,
  resolveReturnUrl,
  resultTexts,
  returnLocation,
  TX_REF_RE,
  txRefFor,
} from './flutterwave.helpers';

/** The adapter, or null when Flutterwave is switched off on this instance. */
export { FLUTTERWAVE_PROVIDER };

const LABEL = 'Flutterwave';
export const CHECKOUT_EXPIRED = 'CHECKOUT_EXPIRED';

/** What one verification did. */
type Look =
  | { action: 'applied'; result: ApplyResult; st: StatusResult }
  | { action: 'waiting'; st: StatusResult }
  | { action: 'expired'; st: StatusResult }
  | { action: 'failed_not_found'; st: StatusResult }
  | { action: 'moved_to_review'; st: StatusResult };

export interface WebhookInput {
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  rawBody: string;
  sourceIp?: string;
}

/** The answer to the browser coming back from the hosted checkout. */
export type RedirectAnswer = { kind: 'redirect'; location: string } | { kind: 'page'; status: number; html: string };

/**
 * Flutterwave v3 hosted checkout, on the provider-independent lifecycle: init (the payment row with
 * our tx_ref is written before Flutterwave is called), verification (the only thing that ever gives
 * value: status, tx_ref, id, amount and currency are checked by PaymentLifecycle.applyOutcome),
 * webhooks (stored first, authenticated by verif-hash, then confirmed with the verify API in the
 * background), the browser redirect (verified, never trusted) and reconciliation.
 */
@Injectable()
export class FlutterwaveService implements ProviderPaymentService, OnModuleInit, BeforeApplicationShutdown {
  readonly provider = FLW_PROVIDER;
  private readonly logger = new Logger(FlutterwaveService.name);
  /** Webhook confirmations still running (awaited on shutdown). */
  private readonly background = new Set<Promise<unknown>>();
  /** Webhook verifications, per payment: concurrent webhooks share one (see settleFromNotification). */
  private readonly lookups: SharedLookups<Look>;

  constructor(
    private readonly repo: PaymentsRepository,
    private readonly lifecycle: PaymentLifecycle,
    private readonly initiation: PaymentInitiation,
    private readonly registry: ProviderServicesRegistry,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    /** The platform account's adapter, or null when Flutterwave is switched off; also reads webhook bodies. */
    @Inject(FLUTTERWAVE_PROVIDER) private readonly flw: FlutterwaveProvider | null,
    private readonly accounts: MerchantAccountsService,
    private readonly kind: FlutterwaveAccountKind,
    private readonly refunds: FlutterwaveRefunds,
  ) {
    this.lookups = new SharedLookups((id, at) => this.repo.recordLookupAnswered(id, at));
  }

  onModuleInit(): void {
    if (this.flw) this.registry.register(this);
  }

  get enabled(): boolean {
    return this.flw !== null;
  }

  private requireEnabled(): FlutterwaveProvider {
    if (!this.flw)
      throw new AppError(
        'PROVIDER_DISABLED',
        'Flutterwave payments are switched off on this server (FLUTTERWAVE_ENABLED=false)',
        503,
        { provider: FLW_PROVIDER },
      );
    return this.flw;
  }

  /** The adapter of the account payment `p` was made with (payments.merchant_account_id; null = the platform's), whatever the shop's account is now. */
  private async clientFor(p: Pick<Payment, 'merchantAccountId'>): Promise<FlutterwaveProvider> {
    this.requireEnabled();
    return this.kind.adapterFor(await this.accounts.resolveForExisting(p.merchantAccountId, FLW_PROVIDER));
  }

  /** Where Flutterwave sends the customer's browser: always this API, which verifies before anything else. */
  redirectEndpoint(): string {
    return `${this.config.publicBaseUrl}/payments/flutterwave/redirect`;
  }

  // ------------------------------------------------------------------ init

  async initiate(user: AuthUser, dto: FlutterwaveInitDto, idempotencyKey?: string): Promise<HttpResult> {
    const flw = this.requireEnabled();
    const requestHash = this.lifecycle.requestHash('POST /payments/flutterwave/init', dto);
    if (idempotencyKey) {
      const replay = await this.lifecycle.replayIdempotent(user.shopId, idempotencyKey, requestHash);
      if (replay) return replay;
    }

    const balance = await this.lifecycle.requireOrder(user.shopId, dto.orderId);
    const currency = dto.currency ?? balance.currency;
    if (currency !== balance.currency) {
      throw new AppError(
        'CURRENCY_NOT_SUPPORTED',
        `Order ${dto.orderId} is in ${balance.currency}; pay it in ${balance.currency}, not ${currency}`,
        400,
      );
    }
    const amountMinor = parseMajorAmount(dto.amount, currency);
    const returnUrl = resolveReturnUrl(dto.redirectUrl, this.config.posReturnUrl);
    const phone = normalizeCustomerPhone(dto.customer.phoneNumber);
    const paymentId = randomUUID();
    const txRef = txRefFor(paymentId);
    const request: InitiateRequest = {
      paymentId,
      reference: txRef,
      amountMinor,
      currency,
      description: `Order ${dto.orderId}`,
      customer: {
        email: dto.customer.email,
        ...(phone ? { phoneNumber: phone } : {}),
        ...(dto.customer.name ? { name: dto.customer.name } : {}),
      },
      redirectUrl: this.redirectEndpoint(),
    };
    // Every rule of the adapter (currency, cents, email, phone, URL) is checked before anything is written.
    flw.buildPaymentRequest(request);
    await this.lifecycle.checkOrder(
      user.shopId,
      dto.orderId,
      amountMinor,
      currency,
      LABEL,
      formatMinor(amountMinor, currency),
      balance,
    );

    // The shop's own account (or the platform's): resolved before anything is stored, so a shop
    // without one is told so and nothing is written; recorded on the payment for every later call.
    const account = await this.accounts.resolveForPayment(user.shopId, FLW_PROVIDER);
    const client = this.kind.adapterFor(account);

    const lost = await this.lifecycle.openPayment(paymentId, {
      user,
      orderId: dto.orderId,
      amountMinor,
      currency,
      provider: FLW_PROVIDER,
      providerLabel: LABEL,
      idempotencyKey,
      requestHash,
      fields: {
        providerReference: txRef,
        phoneMasked: phone ? maskPhone(phone) : null,
        phoneHash: phone ? phoneHash(this.config.mpesa.callbackSigningSecret, phone) : null,
        merchantAccountId: account.accountId,
      },
      eventData: {
        txRef,
        customerEmail: maskEmail(dto.customer.email),
        phone: phone ? maskPhone(phone) : null,
        returnUrl: returnUrl ?? null,
        merchantAccountId: account.accountId,
      },
    });
    if (lost) return lost;

    return this.sendInit(
      client,
      request,
      dto.orderId,
      idempotencyKey ? { shopId: user.shopId, key: idempotencyKey } : undefined,
    );
  }

  /**
   * Calls Flutterwave once, through the core's init path (PaymentInitiation): never retried; an
   * unknown outcome leaves the payment 'unresolved' for the reconciler. The link, its event and
   * the Idempotency-Key's answer are written in one transaction.
   */
  private sendInit(
    flw: FlutterwaveProvider,
    req: InitiateRequest,
    orderId: string,
    idem?: { shopId: string; key: string },
  ): Promise<HttpResult> {
    const minutes = Math.ceil(this.unresolvedWindowSeconds() / 60);
    return this.initiation.run<string>({
      paymentId: req.paymentId,
      provider: FLW_PROVIDER,
      label: LABEL,
      actor: 'flutterwave:init',
      idem,
      send: async () => {
        const res = await flw.initiate(req);
        if (!res.redirectUrl)
          throw new ProviderError(
            FLW_PROVIDER,
            'bad_response',
            'Flutterwave accepted the payment request but sent no checkout link; outcome unknown',
          );
        return res.redirectUrl;
      },
      recordAnswer: (link, tx, ms) => this.recordLink(req, orderId, link, tx, ms),
      unknownReason: 'INIT_OUTCOME_UNKNOWN',
      texts: {
        unknownOutcome: `Flutterwave may have created the checkout link, but it did not reach us: check this payment's status; if Flutterwave never saw it, it is closed automatically within about ${minutes} minute${minutes === 1 ? '' : 's'} and the order can be paid again.`,
        unexpected: 'Could not confirm the Flutterwave checkout link. Check the payment status before trying again.',
        doNotRepeat: 'Do not start another payment for this order',
      },
      errorEventData: (err) => ({ providerHttpStatus: err?.providerHttpStatus ?? null }),
      resultCode: (err) =>
        err.providerCode ?? (err.providerHttpStatus !== undefined ? `HTTP_${err.providerHttpStatus}` : null),
    });
  }

  private async recordLink(
    req: InitiateRequest,
    orderId: string,
    link: string,
    tx: Tx,
    ms: number,
  ): Promise<HttpResult> {
    const { paymentId, reference: txRef } = req;
    const moved = await this.repo.transitionIf(paymentId, 'initiated', { status: 'pending', checkoutUrl: link }, tx);
    await this.repo.insertEvent(
      {
        paymentId,
        type: 'provider_response',
        fromStatus: 'initiated',
        toStatus: moved ? 'pending' : null,
        actor: 'flutterwave:init',
        data: { txRef, linkCreated: true, ms },
      },
      tx,
    );
    const body: FlutterwaveInitResponseDto = {
      paymentId,
      status: 'pending',
      link,
      txRef,
      orderId,
      amount: toMajor(req.amountMinor, req.currency),
      currency: req.currency,
    };
    if (!moved) {
      const fresh = await this.repo.findById(paymentId, tx);
      // Already settled by a verification that overtook this answer: report it as it is.
      if (fresh?.status === 'completed') return { status: 201, body: { ...body, status: 'completed' } };
      // Closed while Flutterwave was answering (the reconciler gave up on a stuck request): its link must not be used.
      return {
        status: 409,
        body: {
          statusCode: 409,
          code: 'PAYMENT_CLOSED',
          message: 'The payment was closed before Flutterwave answered; start a new payment for this order',
          details: { paymentId, status: fresh?.status },
        },
      };
    }
    return { status: 201, body };
  }

  // ------------------------------------------------------------------ verify (cashier)

  async verify(user: AuthUser, dto: FlutterwaveVerifyDto): Promise<PaymentResponseDto> {
    this.requireEnabled();
    const given = (['paymentId', 'txRef', 'transactionId'] as const).filter((k) => dto[k] !== undefined);
    if (given.length !== 1) {
      throw new ValidationFailedError(
        `Send exactly one of paymentId, txRef or transactionId${given.length ? ` (got ${given.join(' and ')})` : ''}`,
      );
    }
    let p: Payment | null;
    if (dto.paymentId !== undefined) {
      p = await this.repo.findForShop(user.shopId, dto.paymentId);
      if (p && p.provider !== FLW_PROVIDER)
        throw new AppError('WRONG_PROVIDER', `Payment ${p.id} is a ${p.provider} payment, not a Flutterwave one`, 400, {
          paymentId: p.id,
          provider: p.provider,
        });
    } else if (dto.txRef !== undefined) {
      p = await this.repo.findByProviderReference(FLW_PROVIDER, dto.txRef, user.shopId);
    } else {
      const found = await this.repo.findByProviderTransaction(FLW_PROVIDER, String(dto.transactionId));
      p = found && found.shopId === user.shopId ? found : null;
    }
    if (!p) {
      const key = given[0];
      const hint =
        key === 'transactionId'
          ? ' (a transaction id is known here only once the payment has an outcome; verify by paymentId or txRef)'
          : '';
      throw new AppError('NOT_FOUND', `Flutterwave payment not found${hint}`, 404, { [key]: String(dto[key]) });
    }
    await this.repo.insertEvent({
      paymentId: p.id,
      type: 'verify_requested',
      actor: `user:${user.sub}`,
      data: { status: p.status },
    });
    await this.verifyNow(p, `user:${user.sub}`, { interactive: true });
    return this.lifecycle.toResponse((await this.repo.findById(p.id)) ?? p);
  }

  /**
   * Asks Flutterwave about a payment and records what it says. Open payments are asked at most once
   * per FLW_INTERACTIVE_MIN_INTERVAL_SECONDS (across instances); a payment parked in review because
   * its outcome was unknown, or closed without money, is asked too (the truth settles the first and
   * shows up a late payment on the second). Provider errors propagate.
   */
  private async verifyNow(p: Payment, actor: string, opts: { interactive: boolean; hintId?: string }): Promise<void> {
    if (p.status === 'completed') return;
    if (p.status === 'review' && p.statusReason !== OUTCOME_UNKNOWN) return;
    if (isInFlight(p.status)) {
      // Through the shared lookup: a webhook's verification running in this process right now (the
      // customer's browser comes back as Flutterwave sends the webhook) is waited for and its
      // answer used, instead of the redirect seeing "claimed moments ago" and showing 'pending'.
      const interval = opts.interactive ? FLW_INTERACTIVE_MIN_INTERVAL_SECONDS : FLW_READ_MIN_INTERVAL_SECONDS;
      await this.lookups.turn(
        p.id,
        p.id,
        () => this.repo.claimLookup(p.id, interval, FLW_CLOSED_RECHECK_INTERVAL_SECONDS),
        () => this.look(p, actor, opts.hintId),
      );
      return;
    }
    await this.look(p, actor, opts.hintId);
  }

  // ------------------------------------------------------------------ the one verification path

  /**
   * Verifies with Flutterwave and acts on the answer (planLook): final answers go through
   * PaymentLifecycle.applyOutcome with everything Flutterwave reported (id, tx_ref, amount,
   * currency), never from a webhook or redirect body. `hintId` is an untrusted transaction id from
   * a webhook/redirect: used only when Flutterwave confirms it belongs to this tx_ref.
   */
  private async look(p: Payment, actor: string, hintId?: string): Promise<Look> {
    const st = await this.fetchStatus(p, hintId);
    const hasLink = p.checkoutUrl !== null;
    const plan = planLook({
      status: st.status,
      inFlight: isInFlight(p.status),
      hasLink,
      ageSeconds: ageSeconds(p),
      windowSeconds: this.windowSeconds(p),
    });
    switch (plan) {
      case 'apply':
        return { action: 'applied', result: await this.apply(p, st, actor), st };
      case 'wait':
        return { action: 'waiting', st };
      case 'expire':
        await this.expireOpen(p.id, actor, { windowSeconds: this.windowSeconds(p), flutterwave: st.status });
        return { action: 'expired', st };
      case 'fail_not_found':
        await this.lifecycle.failOpen(
          p.id,
          'NOT_FOUND_AT_PROVIDER',
          'Flutterwave has no transaction for this payment: its checkout link never reached the customer',
          actor,
        );
        return { action: 'failed_not_found', st };
      case 'review':
        await this.lifecycle.moveUnknownToReview(
          p.id,
          {
            provider: FLW_PROVIDER,
            flutterwaveStatus: st.status,
            ageSeconds: Math.round(ageSeconds(p)),
            windowSeconds: this.windowSeconds(p),
          },
          false,
        );
        return { action: 'moved_to_review', st };
    }
  }

  private async fetchStatus(p: Payment, hintId?: string): Promise<StatusResult> {
    const flw = await this.clientFor(p);
    const reference = p.providerReference;
    if (!reference) throw new Error(`Flutterwave payment ${p.id} has no tx_ref`);
    if (hintId) {
      try {
        const st = await flw.fetchStatus({ reference, providerRef: hintId });
        if (st.status === 'completed') return st;
        // Not a success: the tx_ref's own answer decides (another attempt may be pending or paid).
      } catch (err) {
        const foreign =
          err instanceof ValidationFailedError || (err instanceof ProviderError && err.kind === 'reference_mismatch');
        if (!foreign) throw err;
        this.logger.warn(
          { paymentId: p.id },
          'transaction id from a notification does not belong to this payment; verifying by tx_ref',
        );
      }
    }
    return flw.fetchStatus({ reference });
  }

  private async apply(p: Payment, st: StatusResult, actor: string): Promise<ApplyResult> {
    const result = await this.lifecycle.applyOutcome(p.id, outcomeReport(st), actor);
    if (result === 'duplicate' && st.status === 'completed') {
      const now = await this.repo.findById(p.id);
      if (now && now.status !== 'completed') {
        // Money collected on a payment we had already closed: only a person can sort this out.
        this.logger.error(
          { paymentId: p.id, status: now.status, flutterwaveTransactionId: st.providerRef },
          'Flutterwave reports a successful charge for a payment that is already closed; refund or reconcile it by hand',
        );
      }
    }
    return result;
  }

  /** An open payment whose link expired unused: nothing was charged. Under the row lock, like PaymentLifecycle.failOpen. */
  private expireOpen(paymentId: string, actor: string, data: Record<string, unknown>): Promise<boolean> {
    return this.lifecycle.closeOpen(
      paymentId,
      'expired',
      CHECKOUT_EXPIRED,
      'The checkout link expired without a payment attempt; nothing was charged',
      actor,
      data,
    );
  }

  /** A payment with a link is decided when the link's life (plus a margin) is over; one without a link after the unresolved window. */
  private windowSeconds(p: Payment): number {
    return p.checkoutUrl !== null ? FLW_CHECKOUT_WINDOW_SECONDS : this.unresolvedWindowSeconds();
  }

  /** How long an init without a link (unknown outcome, or a crash mid-call) is left alone: never shorter than a call in progress. */
  private unresolvedWindowSeconds(): number {
    return Math.max(
      this.config.mpesa.unresolvedReviewAfterSeconds,
      Math.ceil(this.config.flutterwave.timeoutMs / 1000) + 5,
    );
  }

  // ------------------------------------------------------------------ ProviderPaymentService

  async refreshIfDue(p: Payment): Promise<Payment> {
    if (!this.flw || !isInFlight(p.status)) return p;
    const age = ageSeconds(p);
    if (age < FLW_REFRESH_AFTER_SECONDS) return p;
    // No link was handed out: nothing to ask until the unresolved window is over.
    if (p.checkoutUrl === null && age < this.unresolvedWindowSeconds()) return p;
    if (!(await this.repo.claimStatusQuery(p.id, FLW_READ_MIN_INTERVAL_SECONDS)))
      return (await this.repo.findById(p.id)) ?? p;
    try {
      await this.look(p, 'flutterwave:status-read');
    } catch (err) {
      this.logger.warn(
        { paymentId: p.id, code: err instanceof AppError ? err.code : 'UNKNOWN', msg: safeMessage(err) },
        'Flutterwave verify failed; returning stored status',
      );
    }
    return (await this.repo.findById(p.id)) ?? p;
  }

  /**
   * One reconciler look (the shared skeleton, reconcileLook): verify and act on the answer; a
   * payment without a link is left alone until its window is over; Flutterwave unreachable past
   * the window and the give-up time: review.
   */
  reconcile(p: Payment): Promise<ReconcileResult> {
    const rc = this.config.reconciler;
    const age = ageSeconds(p);
    const window = this.windowSeconds(p);
    return reconcileLook(
      p,
      { repo: this.repo, config: rc, logger: this.logger },
      {
        what: 'Flutterwave verify',
        claimIntervalSeconds: FLW_READ_MIN_INTERVAL_SECONDS,
        before: async () => {
          if (p.checkoutUrl !== null || age >= window) return undefined;
          // The init call may still be running (or its answer was lost): look when the window is over.
          await this.repo.scheduleCheck(p.id, Math.max(1, Math.ceil(window - age)), false);
          return { action: 'deferred' };
        },
        ask: async (backoff) => {
          const look = await this.look(p, 'reconciler:flutterwave-verify');
          const provider = { kind: look.st.status, ...(look.st.description ? { message: look.st.description } : {}) };
          switch (look.action) {
            case 'applied':
              return {
                result: { action: look.result === 'review' ? 'moved_to_review' : 'settled', provider },
                nextLookSeconds: 0,
              };
            case 'expired':
              return {
                result: {
                  action: 'expired',
                  provider: {
                    kind: 'checkout_expired',
                    message: 'the checkout link expired without a payment attempt',
                  },
                },
              };
            case 'failed_not_found':
              return { result: { action: 'failed_not_found', provider } };
            case 'moved_to_review':
              return { result: { action: 'moved_to_review', provider } };
            case 'waiting':
              // Look again with backoff, but no later than the end of the window (when it is decided).
              return {
                result: { action: 'still_pending', provider },
                nextLookSeconds: Math.min(backoff, Math.max(1, Math.ceil(window - age))),
              };
          }
        },
        giveUp: async ({ code, message }) => {
          if (age < Math.max(window, rc.giveUpAfterSeconds)) return undefined;
          // Flutterwave could not be asked for longer than the window and the give-up time: a person decides.
          await this.lifecycle.moveUnknownToReview(
            p.id,
            { provider: FLW_PROVIDER, giveUp: 'verify_failing', ageSeconds: Math.round(age), lastError: code },
            false,
          );
          return { action: 'moved_to_review', provider: { kind: 'error', errorCode: code, message } };
        },
      },
    );
  }

  /** An operator's reconcile: the reconciler's look, now (a payment no longer open is reported as it is). */
  reconcileNow(p: Payment): Promise<ReconcileResult> {
    return this.reconcile(p);
  }

  async replayStoredNotification(row: StoredNotification): Promise<string> {
    if (!row.verified) {
      await this.repo.markCallbackProcessed(row.id, 'rejected_unverified');
      return 'rejected_unverified';
    }
    const flw = this.requireEnabled();
    // Authenticated when it was received (verified = true); the body only says which payment to verify.
    const n = flw.parseNotification({ headers: {}, query: {}, body: undefined, rawBody: row.rawBody });
    return this.processNotification(row.id, n, 'reconciler:flutterwave-webhook', false);
  }

  // ------------------------------------------------------------------ webhooks

  /**
   * Stores the webhook first (a database failure is a 5xx, so nothing unstored is acknowledged).
   * A missing or wrong verif-hash is refused with 401 and changes no payment; refused ones are
   * stored one row per window (the first body, counted). An authenticated one is stored on its
   * own and acknowledged at once; its payment is verified with Flutterwave in the background (a
   * crash leaves the row unprocessed and the reconciler finishes it).
   */
  async receiveWebhook(input: WebhookInput): Promise<void> {
    const n = await this.authenticateWebhook(input);
    const row = {
      provider: FLW_PROVIDER,
      attempts: 1,
      urlPaymentId: null,
      checkoutRequestId: null,
      sourceIp: input.sourceIp ?? null,
      rawBody: input.rawBody,
    };
    if (!n.verified) {
      const stored = await this.repo.storeCoalescedCallback(
        { ...row, processedAt: new Date(), outcome: 'rejected_unverified' },
        { group: `${FLW_PROVIDER}|kind:rejected_unverified`, windowSeconds: UNVERIFIED_CALLBACK_WINDOW_SECONDS },
      );
      if (stored.first)
        this.logger.warn(
          { inboxId: stored.id.toString(), sourceIp: input.sourceIp },
          'Flutterwave webhook refused: verif-hash missing or wrong (further ones in this window are only counted)',
        );
      throw new AppError(
        'INVALID_WEBHOOK_SIGNATURE',
        "Webhook refused: the verif-hash header is missing or does not match the secret hash of the payment's Flutterwave account",
        401,
      );
    }
    const refund = n.eventType === 'refund';
    const inboxId = await this.repo.insertCallback({ ...row, verified: true, kind: refund ? 'refund_webhook' : null });
    this.runInBackground(
      this.processNotification(inboxId, n, refund ? 'flutterwave:refund-webhook' : 'flutterwave:webhook'),
    );
  }

  /**
   * Reads a webhook and checks its verif-hash against the secret hash of the account the payment it
   * names was made with (found by tx_ref, else by transaction id: the body is not trusted for
   * anything else). A hash of another shop's account, or one of no account, does not verify it;
   * a webhook naming no payment of ours is checked against the platform's hash only. Every way of
   * failing ends the same (verified: false), so a refusal tells the sender nothing.
   */
  private async authenticateWebhook(input: WebhookInput): Promise<Notification> {
    const flw = this.requireEnabled();
    const unverified = flw.parseNotification({ headers: {}, query: {}, body: input.body, rawBody: input.rawBody });
    const p = await this.paymentNamedBy(unverified);
    let client: FlutterwaveProvider | null = null;
    try {
      if (p) client = await this.clientFor(p);
      else {
        const platform = this.kind.platformAccount();
        client = platform ? this.kind.adapterFor(platform) : null;
      }
    } catch (err) {
      this.logger.error(
        { paymentId: p?.id, code: err instanceof AppError ? err.code : 'UNKNOWN', msg: safeMessage(err) },
        "Flutterwave webhook cannot be authenticated: the payment's merchant account cannot be read",
      );
    }
    if (!client) return { ...unverified, verified: false };
    return client.parseNotification({ headers: input.headers, query: {}, body: input.body, rawBody: input.rawBody });
  }

  /** The payment a webhook body names: by our tx_ref, else by Flutterwave's transaction id. */
  private async paymentNamedBy(n: Notification): Promise<Payment | null> {
    let p = n.reference ? await this.repo.findByProviderReference(FLW_PROVIDER, n.reference) : null;
    if (!p && n.providerRef) p = await this.repo.findByProviderTransaction(FLW_PROVIDER, n.providerRef);
    return p ?? null;
  }

  /**
   * Processes a stored webhook; its row is marked unless it waits for a verification ('deferred':
   * one ran just before it arrived). Then it is tried once more here after the interval (the
   * webhook is authenticated, so this is Flutterwave telling us something happened), and else by
   * the reconciler.
   */
  private async processNotification(
    inboxId: bigint,
    n: Notification,
    actor: string,
    retryHere = true,
  ): Promise<string> {
    const outcome = await this.settleFromNotification(n, actor, inboxId);
    if (outcome !== 'deferred') {
      await this.repo.markCallbackProcessed(inboxId, outcome);
    } else if (retryHere) {
      this.runInBackground(
        new Promise((r) => setTimeout(r, FLW_INTERACTIVE_MIN_INTERVAL_SECONDS * 1000 + 100)).then(() =>
          this.processNotification(inboxId, n, actor, false),
        ),
      );
    }
    return outcome;
  }

  private async settleFromNotification(n: Notification, actor: string, inboxId: bigint): Promise<string> {
    const p = await this.paymentNamedBy(n);
    if (p && n.eventType === 'refund') return this.refunds.handleWebhook(p, n.raw, actor);
    if (!p) {
      this.logger.warn(
        { inboxId: inboxId.toString(), reference: n.reference, transactionId: n.providerRef },
        'Flutterwave webhook for no payment of ours',
      );
      return n.reference || n.providerRef ? 'unknown_payment' : 'no_reference';
    }
    if (p.status === 'completed') return 'already_completed';
    if (p.status === 'review' && p.statusReason !== OUTCOME_UNKNOWN) return 'in_review';
    // One verification per payment at a time (concurrent webhooks share it), one per interval
    // across instances; a payment closed without money once after it closed, then per
    // FLW_CLOSED_RECHECK_INTERVAL_SECONDS.
    const turn = await this.lookups.turn(
      p.id,
      p.id,
      () => this.repo.claimLookup(p.id, FLW_INTERACTIVE_MIN_INTERVAL_SECONDS, FLW_CLOSED_RECHECK_INTERVAL_SECONDS),
      () => this.look(p, actor, n.providerRef),
    );
    if (turn.asked && !turn.shared) {
      const look = turn.value;
      return look.action === 'applied'
        ? look.result
        : look.action === 'waiting'
          ? `verify_${look.st.status}`
          : look.action;
    }
    // Another verification of this payment just ran (or was running): what it found is recorded by it.
    const fresh = (await this.repo.findById(p.id)) ?? p;
    if (fresh.status === 'completed') return 'already_completed';
    if (fresh.status === 'review' && fresh.statusReason !== OUTCOME_UNKNOWN) return 'in_review';
    const open = isInFlight(fresh.status) || fresh.status === 'review';
    const finished = await this.repo.finishIfAnswered(
      inboxId,
      p.id,
      'answered',
      open ? FLW_INTERACTIVE_MIN_INTERVAL_SECONDS : FLW_CLOSED_RECHECK_INTERVAL_SECONDS,
    );
    return finished ? 'answered' : 'deferred';
  }

  private runInBackground(task: Promise<unknown>): void {
    const tracked = task
      .catch((err) =>
        this.logger.error(
          { err: safeError(err) },
          'background Flutterwave webhook confirmation failed; the reconciler retries it',
        ),
      )
      .finally(() => this.background.delete(tracked));
    this.background.add(tracked);
  }

  async beforeApplicationShutdown(): Promise<void> {
    await Promise.allSettled([...this.background]);
  }

  // ------------------------------------------------------------------ redirect

  /**
   * The browser back from the hosted checkout. Its query (status, tx_ref, transaction_id) is a hint
   * only: the payment is verified with Flutterwave and only that is recorded. Then the browser goes
   * to the POS return URL, or sees a small result page.
   */
  async handleRedirect(query: Record<string, unknown>): Promise<RedirectAnswer> {
    const txRef = singleString(query.tx_ref);
    if (txRef === undefined) {
      return page(400, {
        state: 'error',
        title: 'Payment reference missing',
        message:
          'This page needs the payment reference (tx_ref) that Flutterwave adds when it sends you back. Ask the cashier for the payment status.',
      });
    }
    if (!this.flw)
      return page(503, {
        state: 'error',
        title: 'Payments unavailable',
        message: 'Flutterwave payments are switched off on this server. Ask the cashier for the payment status.',
      });
    const p = TX_REF_RE.test(txRef) ? await this.repo.findByProviderReference(FLW_PROVIDER, txRef) : null;
    if (!p)
      return page(404, {
        state: 'error',
        title: 'Payment not found',
        message: 'We do not know this payment. Ask the cashier for the payment status.',
      });

    const hint = singleString(query.transaction_id);
    const hintId = hint !== undefined && /^\d{1,20}$/.test(hint) ? hint : undefined;
    if (isInFlight(p.status)) {
      try {
        await this.verifyNow(p, 'flutterwave:redirect', { interactive: true, hintId });
      } catch (err) {
        this.logger.warn(
          { paymentId: p.id, code: err instanceof AppError ? err.code : 'UNKNOWN', msg: safeMessage(err) },
          'Flutterwave verify on redirect failed; showing stored status',
        );
      }
    }
    const fresh = (await this.repo.findById(p.id)) ?? p;
    const created = (await this.repo.listEvents(p.id)).find((e) => e.type === 'created');
    const stored = (created?.data as { returnUrl?: unknown } | null | undefined)?.returnUrl;
    const target = chooseReturnUrl(stored, this.config.posReturnUrl);
    if (target)
      return {
        kind: 'redirect',
        location: returnLocation(target, { paymentId: fresh.id, orderId: fresh.orderId, status: fresh.status }),
      };
    const reported = singleString(query.status)?.toLowerCase();
    const texts = resultTexts(fresh.status, reported);
    return page(200, {
      state: isInFlight(fresh.status) ? 'pending' : fresh.status,
      ...texts,
      rows: [
        ['Order', fresh.orderId],
        ['Amount', displayAmount(fresh.amountMinor, fresh.currency)],
        ['Status', fresh.status],
        ['Payment', fresh.id],
      ],
    });
  }
}

function page(status: number, view: Parameters<typeof renderResultPage>[0]): RedirectAnswer {
  return { kind: 'page', status, html: renderResultPage(view) };
}

function singleString(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 && v.length <= 200 ? v : undefined;
}

function ageSeconds(p: Payment): number {
  return (Date.now() - p.createdAt.getTime()) / 1000;
}

/** A verified final answer as the lifecycle's report: amount and currency are always required for value. */
function outcomeReport(st: StatusResult): OutcomeReport {
  const outcome =
    st.status === 'completed' || st.status === 'cancelled' || st.status === 'expired' ? st.status : 'failed';
  return {
    outcome,
    resultCode: flwDataStatus(st.raw) ?? st.status,
    resultDesc: st.description ?? `Flutterwave: ${st.status}`,
    source: 'verify',
    amountRequired: true,
    amountMinor: st.amountMinor,
    currency: st.currency,
    reference: st.reference,
    providerTransactionId: st.providerRef,
    receipt: st.receipt,
    paymentMethod: st.paymentMethod,
  };
}
