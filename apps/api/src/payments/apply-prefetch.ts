import type { NewPayment, Payment, PaymentEvent } from '../database/schema';
import type { OrderBalance } from '../orders/orders.port';

/** The key of an order in the maps below. */
export const orderKey = (shopId: string, orderId: string): string => `${shopId}\u0000${orderId}`;

/** A payment's change and its event, and the order to settle after it, written with the batch's others. */
export interface DeferredChange {
  paymentId: string;
  patch: Partial<NewPayment>;
  event: Omit<PaymentEvent, 'paymentId'>;
  /** a completion: the order to mark paid if its completed payments now cover it */
  settle?: { shopId: string; orderId: string };
}

/** Writes deferred changes (all payments, then all events, then the orders to settle): the orders it marked paid. */
export type ChangeWriter = (changes: DeferredChange[]) => Promise<{ shopId: string; orderId: string }[]>;

/**
 * What a batch of reports needs read under lock, read for the whole batch in a few statements
 * (PaymentLifecycle.prefetchFor) instead of a few per report: the payments (locked), the payments
 * already holding the reported receipts, and the balances of the orders being completed (locked).
 *
 * Every entry describes the database as it was before the batch's first report was applied, so it
 * serves only until a report that may have changed it is applied: a payment and its order's
 * balance are handed out once, and after each report (`spent`) the payment, its order and the
 * report's receipt are forgotten. A second report about any of them in the same batch reads the
 * database again (under the locks this transaction already holds), as it would without the batch,
 * after the changes deferred so far are written (`flush`).
 *
 * The plain outcome of an open payment (its status change, its event, its order settled) is
 * deferred (`defer`) and written with the batch's others: every payment in one statement, every
 * event in one, every order in one. Anything else (a review, a late receipt, a second charge) is
 * written at once, and no write depends on a deferred one without reading first.
 */
export class ApplyPrefetch {
  private pending: DeferredChange[] = [];
  private readonly paid = new Set<string>();

  constructor(
    private readonly payments: Map<string, Payment>,
    /** by the receipt as the lookups are asked for it (normalised by the provider's rules) */
    private readonly receipts: Map<string, Payment | null>,
    private readonly balances: Map<string, OrderBalance | null>,
    /** writes deferred changes; without it nothing is deferred */
    private readonly writer?: ChangeWriter,
  ) {}

  /**
   * Defers a change to the end of the batch (or to the next read of what the batch changed), so the
   * batch's changes are written in a few statements; false when this batch writes at once.
   */
  defer(change: DeferredChange): boolean {
    if (!this.writer) return false;
    this.pending.push(change);
    return true;
  }

  /**
   * Writes what was deferred. Called before anything is read from the database again (a second
   * report about a payment, an order or a receipt the batch touched) and at the end of the batch.
   */
  async flush(): Promise<void> {
    if (!this.writer || this.pending.length === 0) return;
    const changes = this.pending;
    this.pending = [];
    for (const o of await this.writer(changes)) this.paid.add(orderKey(o.shopId, o.orderId));
  }

  /** After flush: whether writing the batch marked this order paid (the completion's afterCommit asks). */
  orderPaid(shopId: string, orderId: string): boolean {
    return this.paid.has(orderKey(shopId, orderId));
  }

  /** The payment, locked, if it was read for the batch and nothing in the batch has changed it since. */
  takePayment(id: string): Payment | undefined {
    const p = this.payments.get(id);
    this.payments.delete(id);
    return p;
  }

  /** The payment holding `receipt` (null: none), or undefined when it must be read from the database. */
  receipt(receipt: string): Payment | null | undefined {
    return this.receipts.get(receipt);
  }

  /** The order's balance with its row locked (null: no such order), or undefined when it must be read. */
  takeBalance(shopId: string, orderId: string): OrderBalance | null | undefined {
    const key = orderKey(shopId, orderId);
    const b = this.balances.get(key);
    this.balances.delete(key);
    return b;
  }

  /** A report about this payment was applied: what it may have changed is read from the database from now on. */
  spent(paymentId: string, order: { shopId: string; orderId: string } | undefined, receipt: string | undefined): void {
    this.payments.delete(paymentId);
    if (order) this.balances.delete(orderKey(order.shopId, order.orderId));
    if (receipt !== undefined) this.receipts.delete(receipt);
  }
}
