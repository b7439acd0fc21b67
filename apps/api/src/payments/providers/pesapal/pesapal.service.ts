import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnModuleInit,
} from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { AuthUser } from '../../../auth/auth.types';
import { AppError, NotFoundError, ValidationFailedError } from '../../../common/errors';
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
import { holdsMoney, isInFlight } from '../../payment-status';
import { RefundsService } from '../../refunds.service';
import type { PaymentResponseDto } from '../../payments.dto';
import { PaymentsRepository } from '../../payments.repository';
import { reconcileLook, ReconcileResult, UNVERIFIED_CALLBACK_WINDOW_SECONDS } from '../../reconcile';
import { phoneHash } from '../../phone-hash';
import { LookupTurn, SharedLookups } from '../../shared-lookup';
import type { Notification, StatusResult } from '../payment-provider';
import { ProviderError } from '../provider-errors';
import { PesapalProvider, pesapalIpnAck } from './pesapal.provider';
import type { PesapalIpnAck } from './pesapal.types';
import { ProviderPaymentService, ProviderServicesRegistry, StoredNotification } from '../../provider-services.registry';
import { PesapalIpnService, pesapalUrls } from './pesapal-ipn.service';
import { PesapalAccountKind, PesapalClient } from './pesapal.account';
import {
  CHECKOUT_EXPIRED,
  CLOSED_RECHECK_INTERVAL_SECONDS,
  PESAPAL_IPN,
  PESAPAL_PROVIDER,
  REVERSED_AT_PROVIDER,
  STATUS_MIN_INTERVAL_SECONDS,
} from './pesapal.constants';
import type { PesapalInitDto, PesapalInitResponseDto } from './pesapal.dto';
import {
  decodeEnvelope,
  encodeEnvelope,
  IpnOutcome,
  ipnProcessed,
  isCancelledAtPesapal,
  isStaleIpnRejection,
  MERCHANT_REFERENCE_RE,
  merchantReference,
  normaliseCustomer,
  parseInitAmount,
  PESAPAL_LABEL,
  posReturnLocation,
  resultPage,
  statusCodeOf,
  TRACKING_ID_RE,
} from './pesapal.helpers';

const PROVIDER = 'pesapal';
const INIT_ROUTE = 'POST /payments/pesapal/init';

export interface IpnInput {
  method: string;
  query: Record<string, unknown>;
  body: unknown;
  rawBody: string;
  sourceIp?: string;
}

/** What the browser return answers: a redirect to the POS, or the small result page. */
export type ReturnAnswer = { kind: 'redirect'; location: string } | { kind: 'page'; status: number; html: string };

/** Where a provider status answer came from, for the audit trail. */
type Via = { actor: string; source: OutcomeReport['source'] };

/**
 * Pesapal API 3.0 payments (hosted payment page + IPN), on the shared PaymentLifecycle:
 *
 * - init: order rules and the Idempotency-Key as for M-Pesa; our merchant reference is written with
 *   the 'initiated' row before SubmitOrderRequest; the answer's OrderTrackingId and payment page URL
 *   are stored and the payment becomes 'pending'. A refused request fails the payment; one whose
 *   outcome is unknown (timeout, 5xx) leaves it 'unresolved' — an IPN naming both identifiers can
 *   still link and settle it.
 * - IPN (never signed, carries no status): stored in callback_inbox first (coalesced: one row per
 *   payment per window, or per kind for ones that name no payment of ours), then confirmed
 *   synchronously with GetTransactionStatus (only for a merchant reference we issued, whose tracking
 *   id matches ours when we know it), recorded through applyOutcome, and acknowledged with the JSON
 *   Pesapal expects — status 200 once recorded, 500 when not processed (see IPN_OUTCOMES).
 * - browser return, status reads, reconciler: the same status check and recording; nothing but a
 *   GetTransactionStatus answer ever changes a payment.
 * - notifications and returns share one lookup per payment (SharedLookups: concurrent callers wait
 *   for the running one; across instances one per STATUS_MIN_INTERVAL_SECONDS). A payment that
 *   can no longer change is never looked up by a notification; one that Pesapal may still change
 *   (completed → reversed, failed → paid after all) once after it closed, then per
 *   CLOSED_RECHECK_INTERVAL_SECONDS.
 *
 * Status mapping: 0 INVALID → still open (until the checkout window ends, then CancelOrder and
 * 'expired' CHECKOUT_EXPIRED); 1 COMPLETED → 'completed' only when reference, tracking id, amount and
 * currency match (else review; on a payment already closed: review PAID_AFTER_CLOSE); 2 FAILED →
 * CancelOrder (the page would accept another try) then 'failed'; 3 REVERSED → on a payment that held
 * money, its open refund of ours succeeded (pesapal.refunds.ts sent it; approving it reversed the
 * payment), or, when nobody here asked, a provider-reported refund of the whole payment (a chargeback
 * or a refund made at Pesapal); a completed payment also gets an audit event and statusReason
 * REVERSED_AT_PROVIDER (its status stays completed); on an open one 'failed' REVERSED_AT_PROVIDER.
 */
@Injectable()
export class PesapalService
  implements ProviderPaymentService, OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown
{
  readonly provider = PROVIDER;
  private readonly logger = new Logger(PesapalService.name);
  private bootEnsure?: Promise<unknown>;
  /** GetTransactionStatus + recording, per payment + tracking id: concurrent callers share one. */
  private readonly lookups: SharedLookups<IpnOutcome>;

  constructor(
    @Inject(PESAPAL_PROVIDER) private readonly pesapal: PesapalProvider | null,
    @Inject(PESAPAL_IPN) private readonly ipn: PesapalIpnService | null,
    private readonly repo: PaymentsRepository,
    private readonly lifecycle: PaymentLifecycle,
    private readonly initiation: PaymentInitiation,
    private readonly registry: ProviderServicesRegistry,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly accounts: MerchantAccountsService,
    private readonly kind: PesapalAccountKind,
    private readonly refunds: RefundsService,
  ) {
    this.lookups = new SharedLookups((id, at) => this.repo.recordLookupAnswered(id, at));
  }

  get enabled(): boolean {
    return this.config.pesapal.enabled && this.pesapal !== null && this.ipn !== null;
  }

  onModuleInit(): void {
    if (this.enabled) this.registry.register(this);
  }

  /** Registers / loads the IPN in the background: a Pesapal outage must not stop the boot (init retries it). */
  onApplicationBootstrap(): void {
    if (!this.enabled) return;
    this.bootEnsure = this.ipn!.ensure().then(
      (r) => this.logger.log(`Pesapal IPN ready (${r.source}): ${r.ipn.ipnId} ${r.ipn.type}`),
      (err) =>
        this.logger.warn(
          { code: err instanceof AppError ? err.code : 'UNKNOWN', msg: safeMessage(err) },
          'Pesapal IPN registration not ready yet; the first payment will retry it',
        ),
    );
  }

  /** Settles when the boot's IPN registration has been logged (it never rejects): `pnpm dev` prints its banner after it. */
  async bootSettled(): Promise<void> {
    await this.bootEnsure;
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.bootEnsure;
  }

  /** The platform account's adapter: what every account shares (capabilities) and the parser of IPN / return bodies. */
  private get client(): PesapalProvider {
    if (!this.pesapal) throw new AppError('PROVIDER_DISABLED', 'Pesapal payments are switched off on this server', 503);
    return this.pesapal;
  }

  /**
   * The adapter of the account payment `p` was made with (payments.merchant_account_id; null =
   * the platform's), for every call about it: status, cancel. An IPN is never signed, so this
   * status call with the payment's own account is what confirms it.
   */
  private async clientFor(p: Pick<Payment, 'merchantAccountId'>): Promise<PesapalProvider> {
    if (!this.pesapal) throw new AppError('PROVIDER_DISABLED', 'Pesapal payments are switched off on this server', 503);
    return this.kind.clientFor(await this.accounts.resolveForExisting(p.merchantAccountId, PROVIDER)).provider;
  }

  // ------------------------------------------------------------------------------------ init

  async init(user: AuthUser, dto: PesapalInitDto, idempotencyKey?: string): Promise<HttpResult> {
    const requestHash = this.lifecycle.requestHash(INIT_ROUTE, dto);
    if (idempotencyKey) {
      const replay = await this.lifecycle.replayIdempotent(user.shopId, idempotencyKey, requestHash);
      if (replay) return replay;
    }
    const pesapal = this.client;
    const customer = normaliseCustomer(dto.customer);
    const balance = await this.lifecycle.requireOrder(user.shopId, dto.orderId);
    const currency = dto.currency ?? balance.currency;
    const amount = parseInitAmount(dto.amount, currency, {
      supportedCurrencies: pesapal.capabilities.currencies,
      wholeUnitsOnly: !pesapal.capabilities.fractionalAmounts,
    });
    await this.lifecycle.checkOrder(
      user.shopId,
      dto.orderId,
      amount.minor,
      currency,
      PESAPAL_LABEL,
      amount.text,
      balance,
    );

    // The shop's own account (or the platform's): resolved before anything is stored, so a shop
    // without one is told so and nothing is written; recorded on the payment for every later call.
    const account = await this.accounts.resolveForPayment(user.shopId, PROVIDER);
    const client = this.kind.clientFor(account);

    // Before anything is written: without an IPN id (the account's own) Pesapal refuses the order anyway.
    let notificationId: string;
    try {
      notificationId = await client.ipn.ipnId();
    } catch (err) {
      if (err instanceof ProviderError) throw err.asNotProcessed('no payment was started; try again shortly');
      throw err;
    }

    const paymentId = randomUUID();
    const reference = merchantReference(dto.orderId);
    const description = dto.description?.trim() || `Order ${dto.orderId}`;
    const lost = await this.lifecycle.openPayment(paymentId, {
      user,
      orderId: dto.orderId,
      amountMinor: amount.minor,
      currency,
      provider: PROVIDER,
      providerLabel: PESAPAL_LABEL,
      idempotencyKey,
      requestHash,
      fields: {
        providerReference: reference,
        transactionDesc: description,
        phoneMasked: customer.phoneNumber ? maskPhone(customer.phoneNumber) : null,
        // The keyed hash M-Pesa uses (a plain SHA-256 of a phone number is reversible by trying them all).
        phoneHash: customer.phoneNumber
          ? phoneHash(this.config.mpesa.callbackSigningSecret, customer.phoneNumber)
          : null,
        merchantAccountId: account.accountId,
      },
      eventData: {
        merchantAccountId: account.accountId,
        reference,
        description,
        customerPhone: customer.phoneNumber ? maskPhone(customer.phoneNumber) : null,
        customerEmail: customer.email ? maskEmail(customer.email) : null,
      },
    });
    if (lost) return lost;

    return this.submit(
      client,
      paymentId,
      reference,
      amount.minor,
      currency,
      description,
      customer,
      notificationId,
      dto.orderId,
      idempotencyKey ? { shopId: user.shopId, key: idempotencyKey } : undefined,
    );
  }

  /**
   * SubmitOrderRequest, once (plus once more only after Pesapal refused a stale IPN id: that
   * request was not processed), through the core's init path (PaymentInitiation). Like M-Pesa:
   * refused → failed (the order is free again); outcome unknown → 'unresolved' (never retried,
   * settled by IPN / review); the answer, its event and the Idempotency-Key's answer in one
   * transaction; an unexpected error leaves the key unanswered.
   */
  private submit(
    client: PesapalClient,
    paymentId: string,
    reference: string,
    amountMinor: bigint,
    currency: string,
    description: string,
    customer: ReturnType<typeof normaliseCustomer>,
    notificationId: string,
    orderId: string,
    idem?: { shopId: string; key: string },
  ): Promise<HttpResult> {
    const request = {
      paymentId,
      reference,
      amountMinor,
      currency,
      description,
      customer,
      redirectUrl: pesapalUrls(this.config).returnUrl,
      notificationId,
    };
    return this.initiation.run({
      paymentId,
      provider: PROVIDER,
      label: PESAPAL_LABEL,
      actor: 'pesapal:submit-order',
      idem,
      send: async () => {
        try {
          return await client.provider.initiate(request);
        } catch (err) {
          if (!isStaleIpnRejection(err)) throw err;
          let fresh: string;
          try {
            fresh = await client.ipn.replaceStale(notificationId);
          } catch (e) {
            throw e instanceof ProviderError ? e.asNotProcessed('the payment request was not sent') : e;
          }
          return await client.provider.initiate({ ...request, notificationId: fresh });
        }
      },
      recordAnswer: async (res, tx, ms) => {
        const trackingId = res.providerRef as string;
        const redirectUrl = res.redirectUrl as string;
        const updated = await this.recordSubmitted(paymentId, trackingId, redirectUrl, ms, tx);
        const body: PesapalInitResponseDto = {
          paymentId,
          status: updated.status === 'initiated' ? 'pending' : updated.status,
          orderTrackingId: updated.providerTransactionId ?? trackingId,
          redirectUrl,
          reference,
          amount: toMajor(amountMinor, currency),
          currency,
          orderId,
        };
        return { status: 201, body };
      },
      unknownReason: 'INIT_OUTCOME_UNKNOWN',
      texts: {
        unknownOutcome:
          'Pesapal may have created the payment page: do not start another payment for this order yet, check the payment status.',
        unexpected:
          'Could not confirm the Pesapal payment request. Do not start another payment for this order yet: check the payment status.',
        doNotRepeat: 'Do not start another payment for this order',
      },
      errorEventData: (err) => ({ providerErrorCode: err?.providerCode ?? null }),
    });
  }

  private async recordSubmitted(
    paymentId: string,
    trackingId: string,
    redirectUrl: string,
    ms: number,
    tx: Tx,
  ): Promise<Payment> {
    const p = await this.repo.lock(tx, paymentId);
    if (!p) throw new Error(`payment ${paymentId} vanished`);
    if (p.providerTransactionId && p.providerTransactionId !== trackingId) {
      this.logger.error(
        { paymentId, stored: p.providerTransactionId, answered: trackingId },
        'Pesapal answered with another tracking id than the one already linked; keeping the linked one',
      );
    }
    const status = p.status === 'initiated' || p.status === 'unresolved' ? 'pending' : p.status;
    await this.repo.update(
      p.id,
      { providerTransactionId: p.providerTransactionId ?? trackingId, checkoutUrl: redirectUrl, status },
      tx,
    );
    await this.repo.insertEvent(
      {
        paymentId,
        type: 'provider_response',
        fromStatus: p.status,
        toStatus: status,
        actor: 'pesapal:submit-order',
        data: { orderTrackingId: trackingId, ms },
      },
      tx,
    );
    return { ...p, status, providerTransactionId: p.providerTransactionId ?? trackingId, checkoutUrl: redirectUrl };
  }

  // ---------------------------------------------------------------------------------- status

  async getStatus(user: AuthUser, q: { paymentId?: string; orderTrackingId?: string }): Promise<PaymentResponseDto> {
    if ((q.paymentId === undefined) === (q.orderTrackingId === undefined)) {
      throw new ValidationFailedError('Give exactly one of paymentId or orderTrackingId');
    }
    const p =
      q.paymentId !== undefined
        ? await this.repo.findForShop(user.shopId, q.paymentId)
        : await this.repo.findByProviderTransaction(PROVIDER, q.orderTrackingId!);
    if (!p || p.shopId !== user.shopId || p.provider !== PROVIDER)
      throw new NotFoundError(
        'Payment',
        q.paymentId !== undefined ? { paymentId: q.paymentId } : { orderTrackingId: q.orderTrackingId },
      );
    return this.lifecycle.toResponse(await this.refreshIfDue(p));
  }

  /**
   * Status reads (GET /payments/:id, /payments/pesapal/status): an open payment is checked with
   * GetTransactionStatus (at most once per STATUS_MIN_INTERVAL_SECONDS across instances) and what
   * Pesapal says is recorded. Provider trouble never fails the read.
   */
  async refreshIfDue(p: Payment): Promise<Payment> {
    if (!isInFlight(p.status) || !this.pesapal) return p;
    if (!p.providerTransactionId) {
      // Nothing to ask with (the SubmitOrderRequest answer was lost): a person decides after the window.
      if (ageSeconds(p) >= this.config.mpesa.unresolvedReviewAfterSeconds) {
        await this.lifecycle.moveUnknownToReview(
          p.id,
          { afterSeconds: this.config.mpesa.unresolvedReviewAfterSeconds, why: 'no Pesapal order tracking id' },
          false,
        );
      }
      return (await this.repo.findById(p.id)) ?? p;
    }
    try {
      await this.lookUp(p, p.providerTransactionId, { actor: 'pesapal:status-read', source: 'query' }, () =>
        this.repo.claimStatusQuery(p.id, STATUS_MIN_INTERVAL_SECONDS),
      );
    } catch (err) {
      this.logger.warn(
        { paymentId: p.id, code: err instanceof AppError ? err.code : 'UNKNOWN', msg: safeMessage(err) },
        'Pesapal status check failed; returning the stored status',
      );
    }
    return (await this.repo.findById(p.id)) ?? p;
  }

  // ------------------------------------------------------------------------------------- IPN

  /**
   * An IPN (GET query or POST body). Stored first; then confirmed synchronously, because the
   * acknowledgement must say whether it was processed: Pesapal retries a 500, not a 200. Never
   * throws: every failure becomes the "not processed" acknowledgement.
   *
   * Storing is coalesced per window (IPNs are never signed: anyone can send them): all IPNs for one
   * payment share a row (the first envelope, counted); ones that name no payment of ours, that are
   * not IPNs, or whose tracking id contradicts the payment's share one row per kind, and cost no
   * Pesapal call.
   */
  async receiveIpn(input: IpnInput): Promise<PesapalIpnAck> {
    const n = this.client.parseNotification({
      headers: {},
      query: input.query ?? {},
      body: input.body,
      rawBody: input.rawBody,
    });
    const reference = n.reference;
    const trackingId = n.providerRef;
    const usable =
      !!reference && !!trackingId && MERCHANT_REFERENCE_RE.test(reference) && TRACKING_ID_RE.test(trackingId);
    const row = {
      provider: PROVIDER,
      attempts: 1,
      urlPaymentId: null,
      verified: false, // Pesapal IPNs are never signed
      checkoutRequestId: trackingId && TRACKING_ID_RE.test(trackingId) ? trackingId : null,
      sourceIp: input.sourceIp ?? null,
      rawBody: encodeEnvelope(input.method, input.query ?? {}, input.rawBody),
    };
    const window = UNVERIFIED_CALLBACK_WINDOW_SECONDS;
    let inboxId: bigint;
    try {
      const rejected = async (
        outcome: IpnOutcome,
        why: string,
        data: Record<string, unknown> = {},
      ): Promise<PesapalIpnAck> => {
        const stored = await this.repo.storeCoalescedCallback(
          { ...row, processedAt: new Date(), outcome },
          { group: `pesapal|kind:${outcome}`, windowSeconds: window },
        );
        if (stored.first)
          this.logger.warn(
            { inboxId: stored.id.toString(), ...data },
            `${why} (further ones in this window are only counted)`,
          );
        return pesapalIpnAck(n, ipnProcessed(outcome));
      };
      if (!usable)
        return await rejected(
          'invalid_shape',
          'Pesapal notification without a usable OrderTrackingId / OrderMerchantReference',
        );
      const p = await this.repo.findByProviderReference(PROVIDER, reference);
      if (!p)
        return await rejected(
          'unknown_payment',
          'Pesapal notification for a merchant reference we never issued; not asking Pesapal',
          { reference },
        );
      if (p.providerTransactionId && p.providerTransactionId !== trackingId) {
        return await rejected(
          'mismatch_ignored',
          'Pesapal notification names another OrderTrackingId than the payment has; not asking Pesapal',
          { paymentId: p.id, trackingId },
        );
      }
      inboxId = (
        await this.repo.storeCoalescedCallback(row, { group: `pesapal|payment:${p.id}`, windowSeconds: window })
      ).id;
    } catch (err) {
      this.logger.error(
        { err: safeError(err) },
        'could not store a Pesapal IPN; answering "not processed" so Pesapal retries',
      );
      return pesapalIpnAck(n, false);
    }
    const outcome = await this.processNotification(inboxId, n, 'pesapal:ipn');
    return pesapalIpnAck(n, ipnProcessed(outcome));
  }

  /** The reconciler's replay of a stored IPN whose processing never finished. */
  async replayStoredNotification(row: StoredNotification): Promise<string> {
    const env = decodeEnvelope(row.rawBody);
    if (!env) {
      await this.repo.markCallbackProcessed(row.id, 'invalid_shape');
      return 'invalid_shape';
    }
    const n = this.client.parseNotification({ headers: {}, query: env.query, body: env.body, rawBody: env.body });
    const outcome = await this.processNotification(row.id, n, 'pesapal:ipn-replay');
    // Not marked (status call or database failed): the row's lease runs out and it is tried again.
    return outcome;
  }

  /**
   * Confirms one notification with Pesapal (the shared lookup of its payment) and records the
   * result; marks the inbox row processed unless a retry can help (status call or database failed:
   * the row stays for the reconciler) or a lookup is still due (someone asked moments before it
   * arrived: deferred to the reconciler until the interval has passed).
   */
  private async processNotification(inboxId: bigint, n: Notification, actor: string): Promise<IpnOutcome> {
    const mark = async (outcome: IpnOutcome): Promise<IpnOutcome> => {
      await this.repo.markCallbackProcessed(inboxId, outcome);
      return outcome;
    };
    try {
      const reference = n.reference;
      const trackingId = n.providerRef;
      if (!reference || !trackingId || !MERCHANT_REFERENCE_RE.test(reference) || !TRACKING_ID_RE.test(trackingId)) {
        this.logger.warn(
          { inboxId: inboxId.toString() },
          'Pesapal notification without a usable OrderTrackingId / OrderMerchantReference',
        );
        return mark('invalid_shape');
      }
      const p = await this.repo.findByProviderReference(PROVIDER, reference);
      if (!p) {
        this.logger.warn(
          { inboxId: inboxId.toString(), reference },
          'Pesapal notification for a merchant reference we never issued; not asking Pesapal',
        );
        return mark('unknown_payment');
      }
      if (p.providerTransactionId && p.providerTransactionId !== trackingId) {
        this.logger.warn(
          { inboxId: inboxId.toString(), paymentId: p.id, trackingId },
          'Pesapal notification names another OrderTrackingId than the payment has; not asking Pesapal',
        );
        return mark('mismatch_ignored');
      }
      // Nothing Pesapal says can change it any more: acknowledged, not asked.
      if (!mayStillChange(p)) return mark('final');
      let turn: LookupTurn<IpnOutcome>;
      try {
        turn = await this.lookUp(p, trackingId, { actor, source: 'ipn' }, () =>
          this.repo.claimLookup(p.id, STATUS_MIN_INTERVAL_SECONDS, CLOSED_RECHECK_INTERVAL_SECONDS),
        );
      } catch (err) {
        if (err instanceof ProviderError && err.kind === 'reference_mismatch') {
          this.logger.warn(
            { inboxId: inboxId.toString(), paymentId: p.id },
            'Pesapal says that OrderTrackingId belongs to another merchant reference; notification ignored',
          );
          return mark('mismatch_ignored');
        }
        if (err instanceof ProviderError || err instanceof AppError) {
          this.logger.warn(
            {
              inboxId: inboxId.toString(),
              paymentId: p.id,
              code: err instanceof AppError ? err.code : 'UNKNOWN',
              msg: safeMessage(err),
            },
            'Pesapal status check for an IPN failed; Pesapal and the reconciler will retry',
          );
          return 'status_failed';
        }
        throw err;
      }
      const fresh = (await this.repo.findById(p.id)) ?? p;
      const own = turn.asked && !turn.shared ? turn.value : undefined;
      // What changed a payment is recorded as such on its row, whatever arrived since.
      if ((own && CHANGED_PAYMENT.has(own)) || !mayStillChange(fresh)) return mark(own ?? 'final');
      // Still open (or closed, awaiting a possible reversal): finished if a lookup claimed after
      // the row's last delivery answered it, else the reconciler looks after the interval.
      const finished = await this.repo.finishIfAnswered(
        inboxId,
        p.id,
        own ?? 'answered',
        isOpen(fresh) ? STATUS_MIN_INTERVAL_SECONDS : CLOSED_RECHECK_INTERVAL_SECONDS,
      );
      return finished ? (own ?? 'answered') : 'deferred';
    } catch (err) {
      this.logger.error(
        { err: safeError(err), inboxId: inboxId.toString() },
        'processing a Pesapal IPN failed; it stays stored for a retry',
      );
      return 'error';
    }
  }

  /**
   * GetTransactionStatus for `p` and recording the answer, shared: concurrent callers for the same
   * payment and tracking id wait for one call, and `claim` (database) allows one per interval
   * across instances. Errors propagate to every caller that shared the call.
   */
  private lookUp(
    p: Payment,
    trackingId: string,
    via: Via,
    claim: () => Promise<string | null>,
  ): Promise<LookupTurn<IpnOutcome>> {
    return this.lookups.turn(p.id, `${p.id}|${trackingId}`, claim, async () => {
      const s = await (
        await this.clientFor(p)
      ).fetchStatus({ reference: p.providerReference as string, providerRef: trackingId });
      return this.settle(p, s, via);
    });
  }

  // ------------------------------------------------------------------------------ browser return

  /**
   * The customer's browser after Pesapal's page (our callback_url). Carries no status and is not
   * trusted: it only triggers a status check of a payment we know, then shows the stored result.
   */
  async handleReturn(query: Record<string, unknown>): Promise<ReturnAnswer> {
    const n = this.client.parseNotification({ headers: {}, query: query ?? {}, body: undefined });
    const reference = n.reference;
    if (
      !reference ||
      !MERCHANT_REFERENCE_RE.test(reference) ||
      (n.providerRef !== undefined && !TRACKING_ID_RE.test(n.providerRef))
    ) {
      return {
        kind: 'page',
        status: 400,
        html: resultPage(null, {
          title: 'Payment link not valid',
          text: 'This address does not name a payment. Please show this page to the cashier.',
        }),
      };
    }
    const p = await this.repo.findByProviderReference(PROVIDER, reference);
    if (!p)
      return {
        kind: 'page',
        status: 404,
        html: resultPage(null, {
          title: 'Payment not found',
          text: 'We could not find this payment. Please show this page to the cashier.',
        }),
      };
    const trackingId = p.providerTransactionId ?? n.providerRef;
    const matches = !n.providerRef || !p.providerTransactionId || n.providerRef === p.providerTransactionId;
    const open = isInFlight(p.status) || (p.status === 'review' && p.statusReason === OUTCOME_UNKNOWN);
    if (open && matches && trackingId) {
      try {
        await this.lookUp(p, trackingId, { actor: 'pesapal:return', source: 'query' }, () =>
          this.repo.claimLookup(p.id, STATUS_MIN_INTERVAL_SECONDS, CLOSED_RECHECK_INTERVAL_SECONDS),
        );
      } catch (err) {
        this.logger.warn(
          { paymentId: p.id, code: err instanceof AppError ? err.code : 'UNKNOWN', msg: safeMessage(err) },
          'Pesapal status check after the browser return failed; showing the stored status',
        );
      }
    }
    const fresh = (await this.repo.findById(p.id)) ?? p;
    const view = {
      paymentId: fresh.id,
      orderId: fresh.orderId,
      status: fresh.status,
      amountMinor: fresh.amountMinor,
      currency: fresh.currency,
    };
    if (this.config.posReturnUrl)
      return { kind: 'redirect', location: posReturnLocation(this.config.posReturnUrl, view) };
    return { kind: 'page', status: 200, html: resultPage(view) };
  }

  // ----------------------------------------------------------------------------- reconciliation

  /**
   * One reconciler look at an open Pesapal payment (claimed by the caller):
   * - no tracking id (init outcome unknown): Pesapal cannot be asked by merchant reference; after
   *   MPESA_UNRESOLVED_REVIEW_AFTER_SECONDS it goes to review (OUTCOME_UNKNOWN; an IPN can still settle it);
   * - otherwise GetTransactionStatus: a final answer is recorded; "not paid yet" is looked at again
   *   with backoff (at most RECONCILER_MAX_QUERIES looks, then once more at the window's end) until
   *   the checkout window (RECONCILER_GIVE_UP_AFTER_SECONDS) ends; then the order is cancelled at
   *   Pesapal and the payment expires (CHECKOUT_EXPIRED) — never without Pesapal confirming the
   *   cancellation, so a stale page cannot take money for an expired payment;
   * - Pesapal unreachable: backoff; still unknown at twice the window → review (OUTCOME_UNKNOWN).
   */
  reconcile(p: Payment): Promise<ReconcileResult> {
    const rc = this.config.reconciler;
    const age = ageSeconds(p);
    const window = this.config.pesapal.checkoutWindowSeconds;
    return reconcileLook(
      p,
      { repo: this.repo, config: rc, logger: this.logger },
      {
        what: 'Pesapal status check',
        claimIntervalSeconds: STATUS_MIN_INTERVAL_SECONDS,
        before: async () => {
          if (p.providerTransactionId) return undefined;
          const reviewAt = this.config.mpesa.unresolvedReviewAfterSeconds;
          if (age >= reviewAt) {
            const moved = await this.lifecycle.moveUnknownToReview(
              p.id,
              { afterSeconds: reviewAt, why: 'no Pesapal order tracking id' },
              false,
            );
            return { action: moved ? 'moved_to_review' : 'already_final' };
          }
          await this.repo.scheduleCheck(p.id, Math.max(1, Math.ceil(reviewAt - age)), false);
          return { action: 'deferred' };
        },
        ask: async (backoff) => {
          const attempt = p.reconcileAttempts + 1;
          const s = await (
            await this.clientFor(p)
          ).fetchStatus({
            reference: p.providerReference as string,
            providerRef: p.providerTransactionId ?? undefined,
          });
          if (s.status === 'pending' || s.status === 'not_found') {
            if (age >= window) return this.expireCheckout(p, s, backoff, age);
            const untilWindow = window - age;
            const next = attempt >= rc.maxQueries ? untilWindow : Math.min(backoff, untilWindow);
            return {
              result: { action: 'still_pending', provider: providerInfo(s) },
              nextLookSeconds: Math.max(1, Math.ceil(next)),
            };
          }
          const outcome = await this.settle(p, s, { actor: 'reconciler:pesapal-status', source: 'query' });
          if (outcome === 'unknown_status')
            return { result: { action: 'still_pending', provider: providerInfo(s) }, nextLookSeconds: backoff };
          return {
            result: { action: outcome === 'review' ? 'moved_to_review' : 'settled', provider: providerInfo(s) },
            nextLookSeconds: 0,
          };
        },
        giveUp: async ({ code, message }) => {
          if (age < 2 * window) return undefined;
          const moved = await this.lifecycle.moveUnknownToReview(
            p.id,
            { giveUp: 'provider_unreachable', ageSeconds: Math.round(age), lastError: code },
            false,
          );
          return moved
            ? { action: 'moved_to_review', provider: { kind: 'error', errorCode: code, message } }
            : undefined;
        },
      },
    );
  }

  /** An operator's reconcile: the reconciler's look, now (a payment no longer open is reported as it is). */
  reconcileNow(p: Payment): Promise<ReconcileResult> {
    return this.reconcile(p);
  }

  /** The window ended with the order unpaid: cancel it at Pesapal, then expire the payment. */
  private async expireCheckout(
    p: Payment,
    s: StatusResult,
    backoff: number,
    age: number,
  ): Promise<{ result: ReconcileResult; nextLookSeconds?: number }> {
    const trackingId = p.providerTransactionId as string;
    let cancelled: boolean;
    let refusal: string | undefined;
    const client = await this.clientFor(p);
    const c = await client.cancelOrder(trackingId);
    if (c.cancelled) {
      cancelled = true;
    } else {
      refusal = c.message;
      // Refused: paid in the meantime, already cancelled (by us, before a crash), or Pesapal says no.
      const again = await client.fetchStatus({
        reference: p.providerReference as string,
        providerRef: trackingId,
      });
      if (again.status !== 'pending' && again.status !== 'not_found') {
        const outcome = await this.settle(p, again, { actor: 'reconciler:pesapal-status', source: 'query' });
        const action =
          outcome === 'review' ? 'moved_to_review' : outcome === 'unknown_status' ? 'still_pending' : 'settled';
        return {
          result: { action, provider: providerInfo(again) },
          nextLookSeconds: outcome === 'unknown_status' ? backoff : 0,
        };
      }
      cancelled = isCancelledAtPesapal(again.raw);
    }
    await this.repo.insertEvent({
      paymentId: p.id,
      type: 'provider_cancel',
      actor: 'reconciler:pesapal-cancel',
      data: { orderTrackingId: trackingId, cancelled, message: refusal ?? c.message ?? null, reason: CHECKOUT_EXPIRED },
    });
    if (!cancelled) {
      // Never expire a payment whose page may still take money: look again later.
      if (age >= 2 * this.config.pesapal.checkoutWindowSeconds) {
        await this.lifecycle.moveUnknownToReview(p.id, { giveUp: 'cancel_refused', message: refusal ?? null }, false);
        return { result: { action: 'moved_to_review', provider: { kind: 'cancel_refused', message: refusal } } };
      }
      return {
        result: { action: 'still_pending', provider: { kind: 'cancel_refused', message: refusal } },
        nextLookSeconds: backoff,
      };
    }
    await this.expireOpen(p.id, s, trackingId);
    return {
      result: {
        action: 'expired',
        provider: { kind: 'expired', resultCode: statusCodeOf(s.raw) ?? undefined, resultDesc: CHECKOUT_EXPIRED },
      },
      nextLookSeconds: 0,
    };
  }

  private expireOpen(paymentId: string, s: StatusResult, trackingId: string): Promise<boolean> {
    return this.lifecycle.closeOpen(
      paymentId,
      'expired',
      CHECKOUT_EXPIRED,
      'Not paid within the checkout window; the order was cancelled at Pesapal',
      'reconciler:pesapal-cancel',
      {
        orderTrackingId: trackingId,
        statusCode: statusCodeOf(s.raw),
      },
    );
  }

  // --------------------------------------------------------------------------- recording outcomes

  /** Records what GetTransactionStatus said about `p`. The only place Pesapal answers change payments. */
  private async settle(p: Payment, s: StatusResult, via: Via): Promise<IpnOutcome> {
    if (!p.providerTransactionId && (s.reference === undefined || s.reference !== p.providerReference)) {
      // A tracking id we did not get from SubmitOrderRequest is adopted only when Pesapal itself names our reference.
      this.logger.warn(
        { paymentId: p.id },
        'Pesapal status answer does not name our merchant reference; not linking that order to the payment',
      );
      return 'mismatch_ignored';
    }
    switch (s.status) {
      case 'completed':
        return this.applyCompleted(p, s, via);
      case 'failed':
        return this.applyFailed(p, s, via);
      case 'reversed':
        return this.recordReversal(p, s, via);
      case 'pending':
      case 'not_found':
        return (await this.linkTrackingId(p, s.providerRef)) ? 'linked' : 'pending';
      default:
        this.logger.warn(
          { paymentId: p.id, statusCode: statusCodeOf(s.raw) },
          'Pesapal reported a payment status we do not know; nothing changed',
        );
        return 'unknown_status';
    }
  }

  private report(s: StatusResult, outcome: OutcomeReport['outcome'], via: Via, fallbackDesc: string): OutcomeReport {
    return {
      outcome,
      resultCode: statusCodeOf(s.raw),
      resultDesc: (s.description ?? fallbackDesc).slice(0, 500),
      source: via.source,
      amountRequired: true,
      amountMinor: s.amountMinor,
      currency: s.currency,
      reference: s.reference,
      providerTransactionId: s.providerRef,
      receipt: s.receipt,
      paymentMethod: s.paymentMethod,
    };
  }

  /**
   * COMPLETED: value only when reference, tracking id, amount and currency match (the lifecycle
   * checks; a mismatch goes to review). On a payment we had already closed (failed/expired) the
   * lifecycle parks it in review as PAID_AFTER_CLOSE: money moved, a person refunds or accepts it.
   */
  private async applyCompleted(p: Payment, s: StatusResult, via: Via): Promise<IpnOutcome> {
    return applyToOutcome(
      await this.lifecycle.applyOutcome(p.id, this.report(s, 'completed', via, 'Completed'), via.actor),
    );
  }

  /**
   * FAILED is not final on Pesapal's page (the customer may try again there), so the order is
   * cancelled at Pesapal first: the attempt the POS sees as failed can then never be paid later.
   * If Pesapal refuses (it was paid meanwhile), the fresh status is recorded instead.
   */
  private async applyFailed(p: Payment, s: StatusResult, via: Via): Promise<IpnOutcome> {
    const fresh = (await this.repo.findById(p.id)) ?? p;
    const open = isInFlight(fresh.status) || (fresh.status === 'review' && fresh.statusReason === OUTCOME_UNKNOWN);
    const trackingId = s.providerRef ?? fresh.providerTransactionId;
    if (open && trackingId) {
      let cancelled = false;
      let message: string | undefined;
      try {
        const c = await (await this.clientFor(fresh)).cancelOrder(trackingId);
        cancelled = c.cancelled;
        message = c.message;
      } catch (err) {
        message = safeMessage(err);
      }
      await this.repo.insertEvent({
        paymentId: p.id,
        type: 'provider_cancel',
        actor: via.actor,
        data: { orderTrackingId: trackingId, cancelled, message: message ?? null, reason: 'FAILED_AT_PROVIDER' },
      });
      if (!cancelled) {
        try {
          const again = await (
            await this.clientFor(fresh)
          ).fetchStatus({
            reference: fresh.providerReference as string,
            providerRef: trackingId,
          });
          if (again.status === 'completed') return this.applyCompleted(fresh, again, via);
        } catch (err) {
          this.logger.warn(
            { paymentId: p.id, msg: safeMessage(err) },
            'could not re-check a failed Pesapal payment after its cancellation was refused',
          );
        }
      }
    }
    return applyToOutcome(
      await this.lifecycle.applyOutcome(p.id, this.report(s, 'failed', via, 'Payment failed at Pesapal'), via.actor),
    );
  }

  /** REVERSED: money collected and returned (approved refund, chargeback). */
  private async recordReversal(p: Payment, s: StatusResult, via: Via): Promise<IpnOutcome> {
    const fresh = (await this.repo.findById(p.id)) ?? p;
    if (isInFlight(fresh.status)) {
      const failed = await this.lifecycle.failOpen(
        p.id,
        REVERSED_AT_PROVIDER,
        s.description ?? 'Pesapal reports this payment reversed',
        via.actor,
      );
      return failed ? 'failed_reversed' : 'duplicate';
    }
    // The money went back: settle the refund of ours it answers, or record the reversal as a refund
    // Pesapal made on its own — before the payment is marked, so a failure here is retried by Pesapal.
    const refund = await this.settleRefundOnReversal(fresh, s, via);
    const recorded = await this.repo.transaction(async (tx) => {
      const locked = await this.repo.lock(tx, p.id);
      if (!locked || locked.status !== 'completed' || locked.statusReason === REVERSED_AT_PROVIDER) return false;
      const desc = `Reversed at Pesapal after completion: ${s.description ?? 'refund or chargeback'}`.slice(0, 500);
      // Status stays completed (terminal; the order was paid and the goods left): a person handles it.
      await this.repo.update(
        locked.id,
        { statusReason: REVERSED_AT_PROVIDER, resultCode: statusCodeOf(s.raw), resultDesc: desc },
        tx,
      );
      await this.repo.insertEvent(
        {
          paymentId: p.id,
          type: 'reversed_at_provider',
          fromStatus: 'completed',
          toStatus: 'completed',
          actor: via.actor,
          data: {
            orderTrackingId: s.providerRef,
            reference: s.reference,
            amountMinor: s.amountMinor?.toString(),
            currency: s.currency,
            description: s.description ?? null,
          },
        },
        tx,
      );
      return true;
    });
    if (recorded && refund === 'ours')
      this.logger.log(
        { paymentId: p.id, orderId: p.orderId },
        'Pesapal reversed a payment: our refund of it succeeded',
      );
    else if (recorded || refund === 'reported')
      this.logger.warn(
        { paymentId: p.id, orderId: p.orderId },
        'Pesapal reversed a payment nobody here asked to refund (chargeback or a refund made at Pesapal); recorded as a refund',
      );
    return recorded || refund !== 'none' ? 'reversal_recorded' : 'duplicate';
  }

  /**
   * Pesapal's REVERSED on a payment that held money: its one refund of ours that is not final (or
   * in review) succeeded — Pesapal allows one refund per payment, and approving it is what
   * reverses the payment. No refund of ours and none succeeded: a chargeback or a refund made in
   * Pesapal's dashboard, recorded once (keyed by the order tracking id) as a provider-reported
   * refund of the whole payment. Returns what it did.
   */
  private async settleRefundOnReversal(p: Payment, s: StatusResult, via: Via): Promise<'ours' | 'reported' | 'none'> {
    if (!holdsMoney(p)) return 'none';
    const refunds = await this.refunds.listForPayment(p.id);
    const open = refunds.filter(
      (r) => r.source !== 'provider' && ['requested', 'pending', 'unknown', 'review'].includes(r.status),
    );
    const code = statusCodeOf(s.raw) ?? undefined;
    if (open.length > 0) {
      let changed = false;
      for (const r of open) {
        const applied = await this.refunds.applyReport(
          r.id,
          {
            status: 'succeeded',
            ...(code ? { providerCode: code } : {}),
            // Pesapal's "reversed" is about the whole payment: it settles a refund of all of it; a
            // partial one goes to review (an approved partial refund, or a full chargeback: a person checks).
            amountMinor: p.amountMinor,
            message:
              r.amountMinor === p.amountMinor
                ? 'Pesapal reports the payment reversed: the refund was approved'
                : 'Pesapal reports the whole payment reversed while this refund was of part of it: check in Pesapal whether the partial refund was approved or the whole payment charged back, then settle this refund',
          },
          via.actor,
        );
        changed ||= applied.changed;
      }
      return changed ? 'ours' : 'none';
    }
    if (refunds.some((r) => r.status === 'succeeded')) return 'none';
    const trackingId = s.providerRef ?? p.providerTransactionId ?? p.id;
    await this.refunds.recordProviderReported(
      p,
      {
        amountMinor: p.amountMinor,
        providerRefundId: `reversed:${trackingId}`,
        message:
          `Pesapal reversed this payment without a refund requested here (${s.description ?? 'refund or chargeback'})`.slice(
            0,
            500,
          ),
        reason: REVERSED_AT_PROVIDER,
      },
      via.actor,
    );
    return 'reported';
  }

  /** "Not paid yet" for a payment without a tracking id (init outcome unknown): link it now that Pesapal confirmed it is ours. */
  private async linkTrackingId(p: Payment, trackingId: string | undefined): Promise<boolean> {
    if (p.providerTransactionId || !trackingId) return false;
    return this.repo.transaction(async (tx) => {
      const locked = await this.repo.lock(tx, p.id);
      if (!locked || locked.providerTransactionId) return false;
      const status = locked.status === 'initiated' || locked.status === 'unresolved' ? 'pending' : locked.status;
      await this.repo.update(locked.id, { providerTransactionId: trackingId, status }, tx);
      await this.repo.insertEvent(
        {
          paymentId: p.id,
          type: 'provider_linked',
          fromStatus: locked.status,
          toStatus: status,
          actor: 'pesapal:status',
          data: { orderTrackingId: trackingId },
        },
        tx,
      );
      return true;
    });
  }
}

function ageSeconds(p: Payment): number {
  return (Date.now() - p.createdAt.getTime()) / 1000;
}

/** Still waiting for Pesapal's outcome: in flight, or parked in review because it is unknown. */
function isOpen(p: Payment): boolean {
  return isInFlight(p.status) || (p.status === 'review' && p.statusReason === OUTCOME_UNKNOWN);
}

/**
 * Whether Pesapal may still report something that changes this payment: an open one; a
 * completed one (a refund or chargeback: REVERSED); a failed one (a page whose cancellation
 * Pesapal refused can still take the money: PAID_AFTER_CLOSE). Not: expired (cancelled at
 * Pesapal first), already reversed, in review for a person (other than OUTCOME_UNKNOWN, or one
 * resolved by a refund, whose approval shows as REVERSED).
 */
function mayStillChange(p: Payment): boolean {
  if (isOpen(p)) return true;
  // In review and resolved by a refund: Pesapal's approval of it shows as REVERSED.
  if (p.status === 'review' && p.resolution === 'refunded') return true;
  return (p.status === 'completed' || p.status === 'failed') && p.statusReason !== REVERSED_AT_PROVIDER;
}

/** Notification outcomes after which the payment was different: its inbox row is marked so (and kept by the retention job). */
const CHANGED_PAYMENT = new Set<IpnOutcome>(['applied', 'review', 'linked', 'reversal_recorded', 'failed_reversed']);

function applyToOutcome(r: ApplyResult): IpnOutcome {
  return r === 'unknown_payment' ? 'error' : r;
}

function providerInfo(s: StatusResult): ReconcileResult['provider'] {
  return { kind: s.status, resultCode: statusCodeOf(s.raw) ?? undefined, resultDesc: s.description };
}
