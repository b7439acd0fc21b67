import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { AuthUser } from '../../../auth/auth.types';
import { AppError, ConflictError, NotFoundError } from '../../../common/errors';
import { toMajor } from '../../../common/money';
import { pgConstraint, pgErrorCode, UNIQUE_VIOLATION, type Tx } from '../../../database/database';
import type { C2bTransactionRow, NewC2bTransactionRow } from '../../../database/schema';
import { ORDERS_PORT, OrdersPort } from '../../../orders/orders.port';
import { ApplyResult, PaymentLifecycle } from '../../payment-lifecycle.service';
import { PaymentsRepository } from '../../payments.repository';
import { C2bRepository } from './c2b.repository';
import { parseNairobiTimestamp } from './nairobi-time';
import { normaliseMpesaReceipt } from './receipt';

/** Why a confirmation could not be made a payment of an order (it stays in the shop's feed). */
export type BookProblem = 'NO_ORDER' | 'ORDER_NOT_OPEN' | 'ORDER_CURRENCY' | 'ORDER_BUSY' | 'RECEIPT_HELD';

/** What matching concluded (the row's new status), and what to run once its transaction committed. */
export interface Matched {
  status: string;
  afterCommit?: () => void;
}

type Booked = { paymentId: string; result: ApplyResult; afterCommit?: () => void } | { problem: BookProblem };

/**
 * A confirmation could settle a push of unknown outcome if the push was made at most this long
 * before the payment's TransTime (the prompt lives a minute or two, daraja.md §2.5; the margin
 * absorbs Daraja's queueing), or up to AFTER seconds after it (the two clocks), as the statement
 * matcher does (reconciliation/statement-matching.service.ts).
 */
export const STK_SETTLE_BEFORE_SECONDS = 600;
export const STK_SETTLE_AFTER_SECONDS = 120;

export interface ClaimAnswer {
  c2bPaymentId: string;
  paymentId: string;
  orderId: string;
  /** the payment afterwards: completed, or review (e.g. EXCEEDS_OUTSTANDING: more than the order owed) */
  status: string;
  statusReason: string | null;
}

/**
 * What a stored C2B confirmation becomes (daraja-more.md §4): the twin of an STK payment that
 * holds its receipt (nothing booked), the truth of one push whose outcome was unknown (only when
 * exactly one fits its amount, phone hash and time), a payment of the open order its BillRefNumber
 * names, or an entry in the shop's feed of unclaimed payments a cashier claims. Every payment goes
 * through the payment core (PaymentLifecycle.applyOutcomeIn): never past the order's total.
 */
@Injectable()
export class C2bMatching {
  private readonly logger = new Logger(C2bMatching.name);

  constructor(
    private readonly c2b: C2bRepository,
    private readonly payments: PaymentsRepository,
    private readonly lifecycle: PaymentLifecycle,
    @Inject(ORDERS_PORT) private readonly orders: OrdersPort,
  ) {}

  /** Matches a stored confirmation once: under its row lock, only while it is still `received`. */
  async match(id: string): Promise<string> {
    const { status, afterCommit } = await this.c2b.transaction(async (tx): Promise<Matched> => {
      const row = await this.c2b.lock(tx, id);
      return row ? this.matchIn(tx, row) : { status: 'missing' };
    });
    afterCommit?.();
    return status;
  }

  /**
   * match() in the caller's transaction, on a row it holds locked (or has just inserted): the
   * confirmation's first delivery is stored and matched in one commit. The caller runs afterCommit.
   */
  async matchIn(tx: Tx, row: C2bTransactionRow): Promise<Matched> {
    if (row.status !== 'received' || !row.transId || row.amountMinor === null) return { status: row.status };
    const held = await this.payments.findByReceipt(row.transId, tx);
    if (held && held.shopId !== row.shopId && held.merchantAccountId !== row.merchantAccountId) {
      // Another shop's payment, made with another account, holds this receipt: never linked to it
      // (its ids stay that shop's), nothing booked; a person looks. (A chain branch's payment made
      // with the head office's account, whose URLs this confirmation came on, is its twin below.)
      await this.c2b.update(row.id, { status: 'review', statusReason: 'RECEIPT_OF_ANOTHER_SHOP' }, tx);
      this.logger.warn(
        { c2bPaymentId: row.id },
        'C2B confirmation carries a receipt held by another shop; left for review',
      );
      return { status: 'review' };
    }
    if (held) {
      // The STK callback of the same money came first: one payment, nothing booked again.
      await this.c2b.update(row.id, { status: 'stk_twin', paymentId: held.id, orderId: held.orderId }, tx);
      return { status: 'stk_twin' };
    }
    const push = await this.settlePush(tx, row);
    if (push) return push;
    // (unclaimedUnlessHeld says the same of a row with neither a reference nor a phone hash.)
    let reason = 'NO_REFERENCE';
    if (row.billRefNumber) {
      // No payment held the receipt a moment ago in this transaction: book() and the core need not look again.
      const booked = await this.book(tx, row, row.billRefNumber, 'daraja:c2b', 'system', true);
      if ('paymentId' in booked) return { status: 'applied', afterCommit: booked.afterCommit };
      reason = booked.problem;
    }
    await this.c2b.update(row.id, { status: 'unclaimed', statusReason: reason }, tx);
    return { status: 'unclaimed' };
  }

  /**
   * What matchIn makes of a row when no payment holds its receipt, when that receipt check is all
   * it would do (no BillRefNumber to book, no phone hash to settle a push by): unclaimed,
   * NO_REFERENCE, as at the end of matchIn. Null: matchIn has more to do (or nothing: not
   * `received`). C2bIngestService stores such a confirmation in this state in one statement
   * (C2bRepository.storeDecided), and runs match() only if the receipt turned out held.
   */
  unclaimedUnlessHeld(row: NewC2bTransactionRow): { status: 'unclaimed'; statusReason: 'NO_REFERENCE' } | null {
    if (row.status !== 'received' || !row.transId || row.amountMinor === null || row.amountMinor === undefined)
      return null;
    if (row.billRefNumber || (row.phoneHash && row.transTime)) return null;
    return { status: 'unclaimed', statusReason: 'NO_REFERENCE' };
  }

  /**
   * A cashier claims an unclaimed payment for an order: exactly once (C2bRepository.claim's
   * conditional UPDATE), through the payment core. A refusal (no such order, paid, busy) rolls the
   * claim back: the payment stays in the feed.
   */
  async claim(user: AuthUser, id: string, orderId: string): Promise<ClaimAnswer> {
    let afterCommit: (() => void) | undefined;
    // A receipt another shop's payment took after this row reached the feed: to review first (on its
    // own commit, so it stays there whatever the claim does), then refused below like any review row.
    await this.c2b.parkReceiptsOfOtherShops(user.shopId, id);
    const answer = await this.claimIn(user, id, orderId, (a) => (afterCommit = a)).catch((err: unknown) => {
      // The receipt was taken by another payment committing meanwhile (an STK callback of the same
      // money for another order, or another shop's row of the same TransID claimed at the same
      // moment): the unique index refused ours, nothing was written. The same answer as when that
      // payment had come first, not a 500.
      if (pgErrorCode(err) === UNIQUE_VIOLATION && pgConstraint(err) === 'payments_mpesa_receipt_uq')
        throw new ConflictError(
          'C2B_ALREADY_APPLIED',
          "This M-Pesa payment's receipt was just recorded on another payment: it is not claimed twice",
          { c2bPaymentId: id },
        );
      throw err;
    });
    afterCommit?.();
    this.logger.log({ c2bPaymentId: id, paymentId: answer.paymentId, status: answer.status }, 'C2B payment claimed');
    return answer;
  }

  private claimIn(
    user: AuthUser,
    id: string,
    orderId: string,
    setAfterCommit: (fn: (() => void) | undefined) => void,
  ): Promise<ClaimAnswer> {
    return this.c2b.transaction(async (tx): Promise<ClaimAnswer> => {
      const row = await this.c2b.claim(tx, user.shopId, id, `user:${user.sub}`, orderId);
      if (!row) {
        const now = await this.c2b.findForShop(user.shopId, id, tx);
        if (!now) throw new NotFoundError('C2B payment', { c2bPaymentId: id });
        if (now.status === 'review' || now.status === 'invalid')
          throw new ConflictError(
            'C2B_NEEDS_REVIEW',
            `This M-Pesa payment (receipt ${now.transId ?? '?'}) needs a manager's check before it can be used for an order: ask a manager (it is in the review list)`,
            { c2bPaymentId: id, status: now.status },
          );
        throw new ConflictError(
          'C2B_ALREADY_CLAIMED',
          now.status === 'applied' || now.status === 'stk_twin'
            ? `This M-Pesa payment (receipt ${now.transId}) was already taken for order ${now.orderId ?? '?'}; it cannot be claimed again`
            : `This M-Pesa payment (receipt ${now.transId ?? '?'}) is not waiting to be claimed (${now.status})`,
          { c2bPaymentId: id, status: now.status, orderId: now.orderId },
        );
      }
      const booked = await this.book(tx, row, orderId, `user:${user.sub}`, user.sub);
      if ('problem' in booked) throw this.claimRefusal(booked.problem, row, orderId);
      setAfterCommit(booked.afterCommit);
      const p = await this.payments.findById(booked.paymentId, tx);
      return {
        c2bPaymentId: row.id,
        paymentId: booked.paymentId,
        orderId,
        status: p?.status ?? 'unknown',
        statusReason: p?.statusReason ?? null,
      };
    });
  }

  private claimRefusal(problem: BookProblem, row: C2bTransactionRow, orderId: string): AppError {
    switch (problem) {
      case 'NO_ORDER':
        return new NotFoundError('Order', { orderId });
      case 'ORDER_NOT_OPEN':
        return new ConflictError(
          'ORDER_ALREADY_PAID',
          `Order ${orderId} is already fully paid: claim this payment for another order`,
          { orderId },
        );
      case 'ORDER_CURRENCY':
        return new AppError(
          'CURRENCY_NOT_SUPPORTED',
          `M-Pesa takes KES only; order ${orderId} is in another currency`,
          400,
        );
      case 'ORDER_BUSY':
        return new ConflictError(
          'PAYMENT_IN_PROGRESS',
          `Order ${orderId} has a payment waiting for the customer (or of unknown outcome): wait for it to finish before claiming this one`,
          { orderId },
        );
      case 'RECEIPT_HELD':
        return new ConflictError(
          'C2B_ALREADY_APPLIED',
          `Receipt ${row.transId} is already recorded on a payment: it is not claimed twice`,
          {
            receipt: row.transId,
          },
        );
    }
  }

  /**
   * Makes a payment of the order from the confirmation, in the caller's transaction: a `pending`
   * payment completed at once by the core with the confirmation's receipt and amount (more than
   * the order still owes: the core puts it in review, EXCEEDS_OUTSTANDING). The core writes it
   * once, in that final state, with its `created` and outcome events (KnownInTx.newPayment), and
   * weighs the balance read here under the order's lock instead of locking and reading it again.
   * `receiptFree`: the caller found no payment holding the receipt in this transaction.
   */
  private async book(
    tx: Tx,
    row: C2bTransactionRow,
    orderRef: string,
    actor: string,
    createdBy: string,
    receiptFree = false,
  ): Promise<Booked> {
    const orderId = orderRef.trim();
    const balance = orderId ? await this.orders.getBalance(row.shopId, orderId, tx) : null;
    if (!balance) return { problem: 'NO_ORDER' };
    if (balance.currency !== row.currency) return { problem: 'ORDER_CURRENCY' };
    if (balance.outstandingMinor <= 0n) return { problem: 'ORDER_NOT_OPEN' };
    if (await this.payments.findBlockingForOrder(row.shopId, orderId, tx)) return { problem: 'ORDER_BUSY' };
    const receipt = normaliseMpesaReceipt(row.transId!);
    if (!receiptFree && (await this.payments.findByReceipt(receipt, tx))) return { problem: 'RECEIPT_HELD' };
    const paymentId = randomUUID();
    const amountMinor = row.amountMinor!;
    const applied = await this.lifecycle.applyOutcomeIn(tx, paymentId, this.report(row), actor, {
      newPayment: {
        row: {
          id: paymentId,
          shopId: row.shopId,
          orderId,
          amountMinor,
          currency: row.currency,
          provider: 'mpesa',
          status: 'pending',
          createdBy,
          merchantAccountId: row.merchantAccountId,
          phoneHash: row.phoneHash,
          phoneMasked: row.phoneMasked,
          accountReference: row.billRefNumber?.slice(0, 40) ?? null,
        },
        createdEvent: {
          type: 'created',
          toStatus: 'pending',
          actor,
          data: {
            amountMinor: amountMinor.toString(),
            currency: row.currency,
            orderId,
            provider: 'mpesa',
            c2bPaymentId: row.id,
            receipt: row.transId,
          },
        },
      },
      orderBalance: balance,
      freeReceipts: [receipt],
    });
    await this.c2b.update(row.id, { status: 'applied', paymentId, orderId }, tx);
    return { paymentId, result: applied.result, afterCommit: applied.afterCommit };
  }

  /**
   * An STK push whose answer and callback were lost is settled by this confirmation when exactly
   * one unresolved or OUTCOME_UNKNOWN push made with this account (a chain branch's too) fits its amount, its phone (our keyed hash of a plain
   * MSISDN: a masked or SHA-256 one proves nothing we can check) and its time. Two or more: nothing
   * is guessed, the confirmation goes to review naming them.
   */
  private async settlePush(
    tx: Tx,
    row: C2bTransactionRow,
  ): Promise<{ status: string; afterCommit?: () => void } | null> {
    if (!row.phoneHash || !row.transTime) return null;
    let at: Date;
    try {
      at = parseNairobiTimestamp(row.transTime);
    } catch {
      return null;
    }
    const fits = await this.c2b.unsettledPushes(
      row.merchantAccountId,
      row.amountMinor!,
      row.phoneHash,
      new Date(at.getTime() - STK_SETTLE_BEFORE_SECONDS * 1000),
      new Date(at.getTime() + STK_SETTLE_AFTER_SECONDS * 1000),
      tx,
    );
    if (fits.length === 0) return null;
    if (fits.length > 1) {
      await this.c2b.update(row.id, { status: 'review', statusReason: 'SEVERAL_PUSHES_FIT' }, tx);
      this.logger.warn(
        { c2bPaymentId: row.id, candidates: fits.map((p) => p.id) },
        'C2B confirmation fits several pushes; left for review',
      );
      return { status: 'review' };
    }
    const p = fits[0];
    const applied = await this.lifecycle.applyOutcomeIn(tx, p.id, this.report(row), 'daraja:c2b');
    await this.c2b.update(
      row.id,
      { status: 'applied', paymentId: p.id, orderId: p.orderId, statusReason: 'SETTLED_PUSH' },
      tx,
    );
    this.logger.log(
      { c2bPaymentId: row.id, paymentId: p.id, result: applied.result },
      'C2B confirmation settled a push of unknown outcome',
    );
    return { status: 'applied', afterCommit: applied.afterCommit };
  }

  private report(row: C2bTransactionRow) {
    return {
      outcome: 'completed' as const,
      resultCode: '0',
      resultDesc: `M-Pesa C2B confirmation ${row.transId} of ${toMajor(row.amountMinor!, row.currency)} ${row.currency}`,
      source: 'c2b' as const,
      amountRequired: true,
      amountMinor: row.amountMinor!,
      currency: row.currency,
      receipt: row.transId!,
      transactionDate: row.transTime ?? undefined,
    };
  }
}
