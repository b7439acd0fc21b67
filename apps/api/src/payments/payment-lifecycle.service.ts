import { Inject, Injectable, Logger } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { createHmac, randomUUID } from 'node:crypto';
import type { AuthUser } from '../auth/auth.types';
import { AppError, ConflictError, NotFoundError } from '../common/errors';
import { maskCheckoutRequestId, maskCheckoutRequestIdsInJson } from '../common/mask';
import type { HttpResult } from '../common/idempotent-http';
import { toMajor } from '../common/money';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { pgErrorCode, Tx, UNIQUE_VIOLATION } from '../database/database';
import { getTableColumns } from 'drizzle-orm';
import { NewPayment, Payment, PaymentEvent, payments } from '../database/schema';
import { OrderBalance, ORDERS_PORT, OrdersPort } from '../orders/orders.port';
import {
  amountMatches,
  CLOSED_WITHOUT_MONEY,
  integrityProblem,
  isClosed,
  isSettleable,
  knownIds,
  reportSummary,
  resultOf,
} from './outcome-checks';
import type { Outcome, OutcomeReport, OutcomeRules, PaymentLookups } from './outcome-rules';
import {
  canTransition,
  holdsMoney,
  isInFlight,
  isTerminal,
  OUTCOME_UNKNOWN,
  PaymentStatus,
  SECOND_CHARGE,
} from './payment-status';
import type { PaymentResponseDto } from './payments.dto';
import { IdempotencyRecord, PaymentsRepository } from './payments.repository';
import { ApplyPrefetch, DeferredChange, orderKey } from './apply-prefetch';

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

export type { Outcome, OutcomeReport } from './outcome-rules';

const PROVIDER_LABELS: Record<string, string> = { mpesa: 'M-Pesa', flutterwave: 'Flutterwave', pesapal: 'Pesapal' };

const REASONS: Record<Outcome, string> = {
  completed: 'PAID',
  failed: 'FAILED_AT_PROVIDER',
  cancelled: 'CANCELLED_BY_CUSTOMER',
  expired: 'NO_RESPONSE_FROM_CUSTOMER',
};

export type ApplyResult = 'applied' | 'duplicate' | 'unknown_payment' | 'review' | 'ignored';

/**
 * What the caller of applyOutcomeIn already established in the same transaction, so the core need
 * not establish it again (the rules applied are the same; only the statements are fewer).
 */
export interface KnownInTx {
  /**
   * The payment is new, made by this transaction and not written yet: the core writes it ONCE, in
   * the state the report leaves it in (completed, or review), with `createdEvent` and the events
   * the report adds, in one statement each. No other transaction can see it, so no row lock.
   */
  newPayment?: { row: NewPayment & { id: string }; createdEvent: Omit<PaymentEvent, 'paymentId'> };
  /**
   * The order's balance as OrdersPort.getBalance(shopId, orderId, tx) weighed it in this
   * transaction: its row is locked since, so nothing else completes against the order until this
   * commits, and the core's outstanding check weighs this balance instead of locking and reading
   * the order again.
   */
  orderBalance?: OrderBalance;
  /** Receipts (normalised) this transaction looked up already and found no payment holding. */
  freeReceipts?: readonly string[];
  /**
   * What a batch of reports applied in this transaction read ahead (CallbackApplier,
   * PaymentLifecycle.prefetchFor): served once, then read again; plain outcomes are deferred to it.
   */
  batch?: ApplyPrefetch;
}

/** A new payment's writes, held until it is written once in its final state (KnownInTx.newPayment). */
interface Unwritten {
  row: NewPayment;
  events: PaymentEvent[];
  written: boolean;
}

/** One report being applied to one locked payment: what each step of applyOutcomeIn works on. */
interface Applying {
  tx: Tx;
  /** what the batch read ahead (KnownInTx.batch) */
  pre?: ApplyPrefetch;
  /** the payment, locked (or new in this transaction and not written yet: `unwritten`) */
  p: Payment;
  unwritten?: Unwritten;
  /** the order's balance, weighed under its lock in this transaction (KnownInTx.orderBalance) */
  orderBalance?: OrderBalance;
  /** the report, its receipt normalised by the provider's rules */
  r: OutcomeReport;
  rules: OutcomeRules;
  actor: string;
  /** what the audit events record of the report */
  summary: Record<string, unknown>;
  find: PaymentLookups;
}

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
  private readonly outcomeRulesByProvider = new Map<string, OutcomeRules>();

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
  async checkOrder(
    shopId: string,
    orderId: string,
    amountMinor: bigint,
    currency: string,
    providerLabel: string,
    amountText: string,
    known?: OrderBalance,
  ): Promise<void> {
    const balance = known ?? (await this.requireOrder(shopId, orderId));
    if (balance.currency !== currency) {
      throw new AppError(
        'CURRENCY_NOT_SUPPORTED',
        providerLabel === 'M-Pesa'
          ? `M-Pesa takes KES only; order ${orderId} is in ${balance.currency}`
          : `Order ${orderId} is in ${balance.currency}; pay it in ${balance.currency}, not ${currency}`,
        400,
      );
    }
    if (balance.outstandingMinor <= 0n)
      throw new ConflictError('ORDER_ALREADY_PAID', `Order ${orderId} is already fully paid`, { orderId });
    if (amountMinor > balance.outstandingMinor) {
      throw new AppError(
        'AMOUNT_EXCEEDS_OUTSTANDING',
        `Amount ${amountText} is more than the ${toMajor(balance.outstandingMinor, currency)} ${currency} still owed on order ${orderId}`,
        400,
        {
          outstanding: toMajor(balance.outstandingMinor, currency),
        },
      );
    }
  }

  /**
   * Writes the payment as 'initiated' (before any provider call), its 'created' event and the
   * Idempotency-Key, atomically with a last check of the order under its row lock: what completed
   * against it since the caller's check (another payment, a payment in review accepted against
   * it) counts before this payment is written, so the customer is never prompted for an order
   * that is paid by now. A refused check throws checkOrder's error (404, CURRENCY_NOT_SUPPORTED,
   * ORDER_ALREADY_PAID, AMOUNT_EXCEEDS_OUTSTANDING) and writes nothing. A lost race returns the
   * replay of the winner's answer or a PAYMENT_IN_PROGRESS conflict naming the open payment.
   *
   * With the built-in orders (OrdersPort.ordersTableIsLocal) all of it is ONE statement
   * (PaymentsRepository.openPaymentChecked, one commit); with a host's own orders port, a
   * transaction: the order's balance from the port under its lock, then the three inserts.
   */
  async openPayment(paymentId: string, input: OpenPaymentInput): Promise<HttpResult | null> {
    const { user, orderId, amountMinor, currency, provider, idempotencyKey, requestHash } = input;
    const row: NewPayment & { shopId: string; orderId: string; amountMinor: bigint; currency: string } = {
      ...input.fields,
      id: paymentId,
      shopId: user.shopId,
      orderId,
      amountMinor,
      currency,
      provider,
      status: 'initiated',
      idempotencyKey: idempotencyKey ?? null,
      createdBy: user.sub,
    };
    const event = {
      actor: `user:${user.sub}`,
      data: { amountMinor: amountMinor.toString(), currency, orderId, provider, ...input.eventData },
    };
    const check = (balance: OrderBalance) =>
      this.checkOrder(
        user.shopId,
        orderId,
        amountMinor,
        currency,
        input.providerLabel,
        String(toMajor(amountMinor, currency)),
        balance,
      );
    try {
      if (this.orders.ordersTableIsLocal) {
        const done = await this.repo.openPaymentChecked(
          row,
          event,
          idempotencyKey ? { key: idempotencyKey, requestHash } : undefined,
        );
        if (!done.balance) throw new NotFoundError('Order', { orderId });
        if (!done.opened) {
          const { totalMinor, paidMinor, currency: orderCurrency } = done.balance;
          const outstanding = totalMinor - paidMinor;
          await check({
            orderId,
            currency: orderCurrency,
            totalMinor,
            paidMinor,
            outstandingMinor: outstanding > 0n ? outstanding : 0n,
          });
          // The statement's rules are checkOrder's: a refusal it did not explain is a bug, not a payment.
          throw new Error(`openPaymentChecked wrote nothing for order ${orderId}, yet the order passes checkOrder`);
        }
        return null;
      }
      await this.repo.transaction(async (tx) => {
        const balance = await this.orders.getBalance(user.shopId, orderId, tx);
        if (!balance) throw new NotFoundError('Order', { orderId });
        await check(balance);
        await this.repo.insertPayment(row, tx);
        await this.repo.insertEvent({ paymentId, type: 'created', toStatus: 'initiated', ...event }, tx);
        if (idempotencyKey)
          await this.repo.insertIdempotencyKey(user.shopId, idempotencyKey, requestHash, paymentId, tx);
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
      throw new ConflictError(
        'PAYMENT_IN_PROGRESS',
        `Order ${orderId} already has a payment waiting for the customer; wait for it to finish or check its status`,
        {
          payment: existing ? this.toResponse(existing) : undefined,
        },
      );
    }
  }

  /** 409 for a new payment on an order whose earlier payment may have taken the money (its outcome is unknown). */
  private outcomeUnknownConflict(p: Payment): ConflictError {
    const label = PROVIDER_LABELS[p.provider] ?? p.provider;
    const shown = this.outcomeRulesByProvider.get(p.provider)?.presentation;
    // A payment the provider cannot be asked about (M-Pesa without a CheckoutRequestID): reconcile
    // cannot learn anything, only the statement (or a manager's release) settles it.
    const manager = shown?.onlyStatementSettles(p)
      ? `ask a manager to release it or upload the ${label} statement`
      : 'ask a manager to reconcile or release it';
    return new ConflictError(
      'PAYMENT_OUTCOME_UNKNOWN',
      `Order ${p.orderId} has an earlier ${label} payment of ${toMajor(p.amountMinor, p.currency)} ${p.currency} whose outcome is unknown: it may be paid. ` +
        `Do not charge again: check the customer's ${shown?.customerProof ?? 'payment confirmation'}, or ${manager}.`,
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
        throw new ConflictError(
          'PAYMENT_NOT_RELEASABLE',
          'This payment is still waiting for the customer or the provider: wait for it to finish, or reconcile it (POST /payments/:id/reconcile); only a payment whose outcome is unknown can be released',
          details,
        );
      }
      if (p.status !== 'review' || p.statusReason !== OUTCOME_UNKNOWN) {
        throw new ConflictError(
          'PAYMENT_NOT_RELEASABLE',
          `This payment's outcome is known (${p.status}${p.statusReason ? `, ${p.statusReason}` : ''}): it does not block its order, so there is nothing to release`,
          details,
        );
      }
      if (p.releasedAt) {
        throw new ConflictError(
          'PAYMENT_NOT_RELEASABLE',
          `This payment's order was already released on ${p.releasedAt.toISOString()}`,
          { ...details, releasedAt: p.releasedAt.toISOString() },
        );
      }
      const releasedAt = new Date();
      await this.repo.update(p.id, { releasedAt }, tx);
      await this.repo.insertEvent(
        {
          paymentId,
          type: 'order_released',
          fromStatus: p.status,
          actor: `user:${user.sub}`,
          data: { reason, role: user.role, orderId: p.orderId },
        },
        tx,
      );
      this.logger.warn(
        { paymentId, orderId: p.orderId, actor: `user:${user.sub}` },
        'order released from a payment whose outcome is unknown',
      );
      return (await this.repo.findById(p.id, tx)) ?? { ...p, releasedAt };
    });
  }

  /** `known`: the key's record as this request already read it (the rate limiter's lookup), instead of reading it again. */
  async replayIdempotent(
    shopId: string,
    key: string,
    requestHash: string,
    known?: { record: IdempotencyRecord | null },
  ): Promise<HttpResult | null> {
    const rec = known ? known.record : await this.repo.findIdempotencyKey(shopId, key);
    if (!rec) return null;
    if (rec.requestHash !== requestHash) {
      throw new ConflictError(
        'IDEMPOTENCY_KEY_REUSED',
        'This Idempotency-Key was already used with a different request body; use a new key for a new payment',
      );
    }
    if (rec.responseStatus === null) {
      // The first request is still running, or it died (crash, lost connection to the database)
      // between calling the provider and storing its answer. Once no request can still be running
      // with it, the payment itself is the answer (it says what really happened): a key never
      // stays stuck.
      const ageSeconds = (Date.now() - rec.createdAt.getTime()) / 1000;
      const p =
        rec.paymentId && ageSeconds > this.requestLifetimeSeconds() ? await this.repo.findById(rec.paymentId) : null;
      if (p) {
        return { status: 200, body: this.toResponse(p), replayed: true };
      }
      throw new ConflictError(
        'IDEMPOTENCY_REQUEST_IN_PROGRESS',
        'A request with this Idempotency-Key is still being processed; retry in a few seconds',
        { paymentId: rec.paymentId },
      );
    }
    // Masked again: an answer stored before ids were answered masked holds the payer's number.
    return { status: rec.responseStatus, body: maskCheckoutRequestIdsInJson(rec.responseBody), replayed: true };
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
  async moveUnknownToReview(
    paymentId: string,
    data: Record<string, unknown>,
    onlyWithoutProviderId: boolean,
  ): Promise<boolean> {
    return this.repo.transaction(async (tx) => {
      const p = await this.repo.lock(tx, paymentId);
      if (!p || isTerminal(p.status) || p.status === 'review' || (onlyWithoutProviderId && p.checkoutRequestId))
        return false;
      await this.repo.update(p.id, { status: 'review', statusReason: OUTCOME_UNKNOWN }, tx);
      await this.repo.insertEvent(
        {
          paymentId,
          type: 'status_changed',
          fromStatus: p.status,
          toStatus: 'review',
          actor: 'system',
          data: { reason: OUTCOME_UNKNOWN, ...data },
        },
        tx,
      );
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
  async closeOpen(
    paymentId: string,
    status: 'failed' | 'expired',
    reason: string,
    message: string,
    actor: string,
    data: Record<string, unknown> = {},
  ): Promise<boolean> {
    return this.repo.transaction(async (tx) => {
      const p = await this.repo.lock(tx, paymentId);
      if (!p || isTerminal(p.status) || p.status === 'review') return false;
      await this.repo.update(paymentId, { status, statusReason: reason, resultDesc: message.slice(0, 500) }, tx);
      await this.repo.insertEvent(
        {
          paymentId,
          type: 'status_changed',
          fromStatus: p.status,
          toStatus: status,
          actor,
          data: { reason, message, ...data },
        },
        tx,
      );
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

  /** A provider's outcome rules (see OutcomeRules), registered once by its module at init. */
  registerOutcomeRules(provider: string, rules: OutcomeRules): void {
    if (this.outcomeRulesByProvider.has(provider)) throw new Error(`outcome rules for ${provider} registered twice`);
    this.outcomeRulesByProvider.set(provider, rules);
  }

  private outcomeRules(provider: string): OutcomeRules {
    const rules = this.outcomeRulesByProvider.get(provider);
    if (!rules) throw new Error(`no outcome rules registered for provider ${provider}`);
    return rules;
  }

  /**
   * applyOutcome inside the caller's transaction (e.g. together with storing the callback that
   * reported it: one commit instead of three). The caller runs `afterCommit` once it committed.
   *
   * The steps: a closed payment only takes a late receipt, records a second charge or money paid
   * after it was closed, else the report is a duplicate (applyToClosed); an open one goes to review
   * when the report does not fit it or repeats another payment's (reviewMismatch), else it moves
   * to the reported outcome (transition).
   */
  async applyOutcomeIn(
    tx: Tx,
    paymentId: string,
    report: OutcomeReport,
    actor: string,
    known: KnownInTx = {},
  ): Promise<{ result: ApplyResult; afterCommit?: () => void }> {
    const fresh = known.newPayment;
    if (fresh && fresh.row.id !== paymentId) throw new Error('applyOutcomeIn: newPayment is another payment');
    const unwritten: Unwritten | undefined = fresh
      ? { row: fresh.row, events: [{ ...fresh.createdEvent, paymentId }], written: false }
      : undefined;
    const pre = fresh ? undefined : known.batch;
    const p = fresh
      ? unwrittenPayment(fresh.row)
      : (pre?.takePayment(paymentId) ?? (await this.readAfter(pre, () => this.repo.lock(tx, paymentId))));
    if (!p) return { result: 'unknown_payment' };
    const rules = this.outcomeRules(p.provider);
    // Receipts are compared (and stored) as the provider's receipts are, whoever reported them.
    const r = report.receipt === undefined ? report : { ...report, receipt: rules.normaliseReceipt(report.receipt) };
    const free = new Set(known.freeReceipts ?? []);
    const find: PaymentLookups = {
      // A receipt this transaction found free stays free: any payment taking it since would have
      // to commit first, and payments_mpesa_receipt_uq refuses this one's write then (rollback).
      byReceipt: async (receipt) => {
        if (free.has(receipt)) return null;
        const held = pre?.receipt(receipt);
        return held !== undefined ? held : this.readAfter(pre, () => this.repo.findByReceipt(receipt, tx));
      },
      byProviderTransaction: (provider, id) =>
        this.readAfter(pre, () => this.repo.findByProviderTransaction(provider, id, tx)),
    };
    const a: Applying = {
      tx,
      pre,
      p,
      unwritten,
      orderBalance: known.orderBalance,
      r,
      rules,
      actor,
      summary: reportSummary(r),
      find,
    };
    try {
      if (isClosed(p)) {
        // Only an open payment's steps hold their writes: a closed one is written first.
        await this.writeUnwritten(a);
        return { result: await this.applyToClosed(a) };
      }
      const problem = integrityProblem(p, r) ?? (await this.duplicateProblem(a));
      const done = problem ? { result: await this.reviewMismatch(a, problem) } : await this.transition(a);
      // Whatever the outcome (review, ignored), a new payment is written, with what it became.
      await this.writeUnwritten(a);
      return done;
    } finally {
      pre?.spent(p.id, { shopId: p.shopId, orderId: p.orderId }, r.receipt);
    }
  }

  /** A read from the database during a batch: what the batch deferred is written first, so the read sees it. */
  private async readAfter<T>(pre: ApplyPrefetch | undefined, read: () => Promise<T>): Promise<T> {
    await pre?.flush();
    return read();
  }

  /**
   * Reads ahead, for a batch of reports applied in one transaction (CallbackApplier), what
   * applyOutcomeIn reads for each: every payment locked in one statement (id order: the order the
   * batch applies them in), the payments holding the reported receipts in one, and the orders of
   * the payments being completed locked and weighed in two (OrdersPort.getBalancesLocked, when the
   * port has it). The same rules then run on what was read (ApplyPrefetch serves each entry until
   * a report may have changed it), and the batch's plain outcomes are written together at its end
   * (ApplyPrefetch.flush): a batch of 16 completions costs about as many statements as one.
   */
  async prefetchFor(tx: Tx, items: { paymentId: string; report: OutcomeReport }[]): Promise<ApplyPrefetch> {
    const locked = await this.repo.lockMany(tx, [...new Set(items.map((i) => i.paymentId))].sort());
    const byId = new Map(locked.map((p) => [p.id, p]));
    const receipts = new Set<string>();
    const toWeigh = new Map<string, { shopId: string; orderId: string }>();
    for (const { paymentId, report } of items) {
      const p = byId.get(paymentId);
      const rules = p && this.outcomeRulesByProvider.get(p.provider);
      if (!p || !rules) continue;
      if (report.receipt !== undefined) receipts.add(rules.normaliseReceipt(report.receipt));
      if (report.outcome === 'completed' && !isClosed(p))
        toWeigh.set(orderKey(p.shopId, p.orderId), { shopId: p.shopId, orderId: p.orderId });
    }
    const holding = receipts.size > 0 ? await this.repo.findByReceipts([...receipts], tx) : new Map<string, null>();
    const balances = new Map<string, OrderBalance | null>();
    if (toWeigh.size > 0 && this.orders.getBalancesLocked) {
      const keys = [...toWeigh.values()];
      for (const k of keys) balances.set(orderKey(k.shopId, k.orderId), null);
      for (const b of await this.orders.getBalancesLocked(keys, tx)) balances.set(orderKey(b.shopId, b.orderId), b);
    }
    // The batch's plain outcomes are written together at its end, when the orders port can settle
    // several orders in one statement (the built-in one can; a host's may not).
    const settleMany = this.orders.settleManyIfPaid?.bind(this.orders);
    const writer = settleMany
      ? async (changes: DeferredChange[]) => {
          await this.repo.updateManyWithEvents(
            changes.map((c) => ({ id: c.paymentId, patch: c.patch, event: c.event })),
            tx,
          );
          const settle = new Map<string, { shopId: string; orderId: string }>();
          for (const c of changes) if (c.settle) settle.set(orderKey(c.settle.shopId, c.settle.orderId), c.settle);
          return settle.size > 0 ? settleMany([...settle.values()], tx) : [];
        }
      : undefined;
    return new ApplyPrefetch(byId, holding, balances, writer);
  }

  /** The payment's update: held for a new payment not written yet, else written now. */
  private async updatePayment(a: Applying, patch: Partial<NewPayment>): Promise<void> {
    if (a.unwritten && !a.unwritten.written) a.unwritten.row = { ...a.unwritten.row, ...patch };
    else await this.repo.update(a.p.id, patch, a.tx);
  }

  /** The payment's update and its event: held for a new payment not written yet, else one statement now. */
  private async changePayment(
    a: Applying,
    patch: Partial<NewPayment>,
    event: Omit<PaymentEvent, 'paymentId'>,
  ): Promise<void> {
    if (a.unwritten && !a.unwritten.written) {
      a.unwritten.row = { ...a.unwritten.row, ...patch };
      a.unwritten.events.push({ ...event, paymentId: a.p.id });
    } else await this.repo.updateWithEvent(a.p.id, patch, event, a.tx);
  }

  /** An event of the payment: held for a new payment not written yet, else written now. */
  private async paymentEvent(a: Applying, event: PaymentEvent): Promise<void> {
    if (a.unwritten && !a.unwritten.written) a.unwritten.events.push(event);
    else await this.repo.insertEvent(event, a.tx);
  }

  /** A new payment, written once in its state so far with all its events (two statements). */
  private async writeUnwritten(a: Applying): Promise<void> {
    const u = a.unwritten;
    if (!u || u.written) return;
    u.written = true;
    await this.repo.insertPayment(u.row, a.tx);
    await this.repo.insertEvents(u.events, a.tx);
  }

  /** A report about a payment that already has its outcome (terminal, or in review for a reason other than OUTCOME_UNKNOWN). */
  private async applyToClosed(a: Applying): Promise<ApplyResult> {
    if (await this.attachLateReceipt(a)) return 'applied';
    if (await this.recordSecondCharge(a)) return 'review';
    if (await this.reviewPaidAfterClose(a)) return 'review';
    await this.repo.insertEvent(
      {
        paymentId: a.p.id,
        type: 'duplicate_ignored',
        fromStatus: a.p.status,
        actor: a.actor,
        data: { ...a.summary, reportedOutcome: a.r.outcome },
      },
      a.tx,
    );
    return 'duplicate';
  }

  /**
   * Late enrichment: a payment that took the money but learned it without its receipt (an STK
   * query), completed or in review for a refund, gets its receipt from a report the provider's
   * rules allow (M-Pesa: the success callback, or the statement row only it fits). Only the
   * receipt: never its amount or status, and only when the report's amount matches.
   */
  private async attachLateReceipt({ tx, p, r, rules, actor, summary, find }: Applying): Promise<boolean> {
    const late = rules.lateReceipts;
    if (
      !late ||
      !holdsMoney(p) ||
      r.outcome !== 'completed' ||
      !r.receipt ||
      late.held(p) ||
      !late.attachFrom.includes(r.source)
    )
      return false;
    if (!amountMatches(p, r) || integrityProblem(p, r) || (await late.inUse(r.receipt, find))) return false;
    await this.repo.update(p.id, late.columns(p, { ...r, receipt: r.receipt }), tx);
    await this.repo.insertEvent(
      { paymentId: p.id, type: 'receipt_recorded', fromStatus: p.status, actor, data: summary },
      tx,
    );
    return true;
  }

  /**
   * A verified success for this payment's push with ANOTHER receipt than the one it holds (e.g.
   * the statement settled it with the customer's C2B payment, then the STK prompt was paid too):
   * the money was collected twice. Neither the payment nor its order changes; the second charge
   * becomes a review row of its own (SECOND_CHARGE, never counted toward the order) for a refund:
   * a new payment row of the same shop, order and provider holding the second receipt and amount,
   * and an integrity_failure event on each row naming the other. No CheckoutRequestID (it is the
   * first row's), so it is outside the one-in-flight index; the receipt's unique index makes a
   * repeat a duplicate.
   */
  private async recordSecondCharge({ tx, p, r, rules, actor, summary, find }: Applying): Promise<boolean> {
    const late = rules.lateReceipts;
    const held = late?.held(p);
    if (
      !late ||
      !holdsMoney(p) ||
      !held ||
      r.outcome !== 'completed' ||
      !late.secondChargeFrom.includes(r.source) ||
      !r.amountRequired ||
      !r.receipt ||
      r.receipt === held
    )
      return false;
    if (!amountMatches(p, r) || integrityProblem(p, r) || (await late.inUse(r.receipt, find))) return false;
    const id = randomUUID();
    const amountMinor = r.amountMinor ?? p.amountMinor;
    const note = `the customer was charged twice: receipt ${r.receipt} came for the push of payment ${p.id}, which already holds receipt ${held}; refund one`;
    await this.repo.insertPayment(
      {
        id,
        shopId: p.shopId,
        orderId: p.orderId,
        amountMinor,
        currency: p.currency,
        provider: p.provider,
        status: 'review',
        statusReason: SECOND_CHARGE,
        resultCode: r.resultCode,
        resultDesc:
          `Second charge: receipt ${r.receipt} for the push of payment ${p.id} (which holds ${held}); refund one`.slice(
            0,
            500,
          ),
        createdBy: 'system',
        phoneMasked: p.phoneMasked,
        phoneHash: p.phoneHash,
        accountReference: p.accountReference,
        transactionDesc: p.transactionDesc,
        ...rules.receiptColumns(r),
      },
      tx,
    );
    await this.repo.insertEvent(
      {
        paymentId: id,
        type: 'integrity_failure',
        toStatus: 'review',
        actor,
        data: {
          ...summary,
          problem: SECOND_CHARGE,
          note,
          firstPaymentId: p.id,
          firstReceipt: held,
          orderId: p.orderId,
        },
      },
      tx,
    );
    await this.repo.insertEvent(
      {
        paymentId: p.id,
        type: 'integrity_failure',
        fromStatus: p.status,
        actor,
        data: { ...summary, problem: SECOND_CHARGE, note, secondChargePaymentId: id, keptReceipt: held },
      },
      tx,
    );
    this.logger.error(
      { paymentId: p.id, secondChargePaymentId: id, problem: SECOND_CHARGE },
      'provider reports a second charge for a payment that already holds a receipt; recorded in review for a refund',
    );
    return true;
  }

  /**
   * Money moved on a payment we had closed (failed after "not found", an expired checkout, a
   * contradicting report): the truth must not be dropped. A person decides (refund or accept);
   * the order is not paid automatically.
   */
  private async reviewPaidAfterClose(a: Applying): Promise<boolean> {
    const { tx, p, r, rules, actor, summary } = a;
    if (
      r.outcome !== 'completed' ||
      !CLOSED_WITHOUT_MONEY.includes(p.status) ||
      integrityProblem(p, r) ||
      (await this.duplicateProblem(a))
    )
      return false;
    await this.repo.update(
      p.id,
      {
        status: 'review',
        statusReason: 'PAID_AFTER_CLOSE',
        ...resultOf(r),
        checkoutRequestId: p.checkoutRequestId ?? r.checkoutRequestId ?? null,
        providerTransactionId: p.providerTransactionId ?? r.providerTransactionId ?? null,
        ...rules.receiptColumns(r),
      },
      tx,
    );
    await this.repo.insertEvent(
      {
        paymentId: p.id,
        type: 'integrity_failure',
        fromStatus: p.status,
        toStatus: 'review',
        actor,
        data: { ...summary, problem: 'PAID_AFTER_CLOSE', closedReason: p.statusReason },
      },
      tx,
    );
    this.logger.error(
      { paymentId: p.id, problem: 'PAID_AFTER_CLOSE', closedStatus: p.status },
      'provider reports money collected on a closed payment; moved to review',
    );
    return true;
  }

  /** A success reporting what another payment holds (its receipt, its transaction id), by the provider's rules. */
  private async duplicateProblem({ p, r, rules, find }: Applying): Promise<string | undefined> {
    if (r.outcome !== 'completed') return undefined;
    return rules.duplicateProblem(p, r, find);
  }

  /** An open payment whose report does not fit it (integrityProblem) or repeats another payment's: review, nothing else changes. */
  private async reviewMismatch(a: Applying, problem: string): Promise<ApplyResult> {
    const { p, r, actor, summary } = a;
    await this.changePayment(
      a,
      { status: 'review', statusReason: problem, ...resultOf(r) },
      {
        type: 'integrity_failure',
        fromStatus: p.status,
        toStatus: 'review',
        actor,
        data: {
          ...summary,
          problem,
          expectedAmountMinor: p.amountMinor.toString(),
          expectedCurrency: p.currency,
          expectedCheckoutRequestId: p.checkoutRequestId,
          expectedReference: p.providerReference,
        },
      },
    );
    this.logger.warn({ paymentId: p.id, problem }, 'payment moved to review');
    return 'review';
  }

  /** An open payment (or one whose outcome was unknown) moves to the reported outcome; a success settles its order in the same transaction. */
  private async transition(a: Applying): Promise<{ result: ApplyResult; afterCommit?: () => void }> {
    const { tx, p, r, rules, actor, summary } = a;
    const to: PaymentStatus = r.outcome;
    if (!canTransition(p.status, to) && !isSettleable(p)) return { result: 'ignored' };
    const completing = to === 'completed';
    if (completing && (await this.reviewPastOutstanding(a))) return { result: 'review' };
    const receipt = completing ? rules.receiptColumns(r) : {};
    const patch: Partial<NewPayment> = {
      status: to,
      statusReason: REASONS[r.outcome],
      ...resultOf(r),
      ...knownIds(p, r),
      ...(completing ? { ...receipt, completedAt: new Date() } : {}),
    };
    const event = { type: 'status_changed', fromStatus: p.status, toStatus: to, actor, data: summary };
    const completed: Payment = { ...p, status: to, mpesaReceiptNumber: receipt.mpesaReceiptNumber ?? null };
    // In a batch: written with the batch's other outcomes (ApplyPrefetch.defer), the order settled there too.
    const pre = a.pre;
    const settle = completing ? { shopId: p.shopId, orderId: p.orderId } : undefined;
    if (!a.unwritten && pre?.defer({ paymentId: p.id, patch, event, settle }))
      return {
        result: 'applied',
        afterCommit: completing ? () => this.afterCompletion(completed, pre.orderPaid(p.shopId, p.orderId)) : undefined,
      };
    await this.changePayment(a, patch, event);
    // The order's settlement below counts the payment's row: a new one is written by now.
    await this.writeUnwritten(a);
    if (!completing) return { result: 'applied' };
    // Same transaction: the payment and its order's paid flag commit together or not at all.
    // reviewPastOutstanding weighed the balance with getBalance(…, tx), which locked the order row
    // (or the caller did, KnownInTx.orderBalance).
    const orderPaid = await this.orders.settleIfPaid(p.shopId, p.orderId, tx, true);
    return { result: 'applied', afterCommit: () => this.afterCompletion(completed, orderPaid) };
  }

  /**
   * Money moved for more than the order still owes (a payment parked as OUTCOME_UNKNOWN freed the
   * order, then another went through): record the truth, never count it past the total: a person
   * refunds it. getBalance with `tx` locks the order row first, so two completions of one order
   * are weighed one after the other, each seeing the other's commit.
   */
  private async reviewPastOutstanding(a: Applying): Promise<boolean> {
    const { tx, p, r, rules, actor, summary } = a;
    const known = a.orderBalance?.orderId === p.orderId ? a.orderBalance : undefined;
    const read = known ?? a.pre?.takeBalance(p.shopId, p.orderId);
    const balance =
      read !== undefined ? read : await this.readAfter(a.pre, () => this.orders.getBalance(p.shopId, p.orderId, tx));
    if (!balance || p.amountMinor <= balance.outstandingMinor) return false;
    const problem = balance.outstandingMinor <= 0n ? 'ORDER_ALREADY_PAID' : 'EXCEEDS_OUTSTANDING';
    const note =
      problem === 'ORDER_ALREADY_PAID'
        ? 'the customer paid an order that was already paid: refund due'
        : 'the customer paid more than the order still owed: refund the difference or all of it';
    await this.changePayment(
      a,
      { status: 'review', statusReason: problem, ...resultOf(r), ...knownIds(p, r), ...rules.receiptColumns(r) },
      {
        type: 'integrity_failure',
        fromStatus: p.status,
        toStatus: 'review',
        actor,
        data: {
          ...summary,
          problem,
          note,
          outstandingMinor: balance.outstandingMinor.toString(),
          paidMinor: balance.paidMinor.toString(),
          totalMinor: balance.totalMinor.toString(),
        },
      },
    );
    this.logger.warn(
      { paymentId: p.id, problem },
      'payment succeeded for more than its order still owed; moved to review for a refund',
    );
    return true;
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
      // Masked: it ends with the payer's number (GET /payments/stk-status accepts it as it is).
      checkoutRequestId: p.checkoutRequestId === null ? null : maskCheckoutRequestId(p.checkoutRequestId),
      phone: p.phoneMasked,
      ...(this.outcomeRulesByProvider.get(p.provider)?.presentation?.responseFields(p) ?? {
        reference: p.providerReference,
        providerTransactionId: p.providerTransactionId,
        providerReceipt: p.providerReceipt,
        paymentMethod: p.paymentMethod,
        checkoutUrl: p.checkoutUrl,
      }),
      createdAt: p.createdAt.toISOString(),
      updatedAt: p.updatedAt.toISOString(),
      completedAt: p.completedAt ? p.completedAt.toISOString() : null,
      releasedAt: p.releasedAt ? p.releasedAt.toISOString() : null,
      resolution: p.resolution,
      resolvedAt: p.resolvedAt ? p.resolvedAt.toISOString() : null,
    };
  }
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
    Array.isArray(v)
      ? v.map(canonical)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
          )
        : v;
  const key = createHmac('sha256', serverSecret).update(REQUEST_HASH_CONTEXT).digest();
  return createHmac('sha256', key)
    .update(route + '\n' + JSON.stringify(canonical({ ...body })))
    .digest('hex');
}

const PAYMENT_FIELDS = Object.entries(getTableColumns(payments));

/**
 * A payment row as the database would return it once `row` is inserted (its columns' plain
 * defaults, timestamps now), for the rules to read before it is written (KnownInTx.newPayment).
 */
function unwrittenPayment(row: NewPayment): Payment {
  const now = new Date();
  const out: Record<string, unknown> = {};
  for (const [key, col] of PAYMENT_FIELDS) {
    const given = (row as Record<string, unknown>)[key];
    out[key] =
      given !== undefined
        ? given
        : col.dataType === 'date' && col.hasDefault
          ? now
          : col.hasDefault && (typeof col.default !== 'object' || col.default === null)
            ? col.default
            : null;
  }
  return out as Payment;
}
