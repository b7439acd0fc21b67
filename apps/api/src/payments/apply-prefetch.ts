import type { Payment } from '../database/schema';
import type { OrderBalance } from '../orders/orders.port';

/** The key of an order in the maps below. */
export const orderKey = (shopId: string, orderId: string): string => `${shopId}\u0000${orderId}`;

/**
 * What a batch of reports needs read under lock, read for the whole batch in a few statements
 * (PaymentLifecycle.prefetchFor) instead of a few per report: the payments (locked), the payments
 * already holding the reported receipts, and the balances of the orders being completed (locked).
 *
 * Every entry describes the database as it was before the batch's first report was applied, so it
 * serves only until a report that may have changed it is applied: a payment and its order's
 * balance are handed out once, and after each report (`spent`) the payment, its order and the
 * report's receipt are forgotten. A second report about any of them in the same batch reads the
 * database again (under the locks this transaction already holds), as it would without the batch.
 */
export class ApplyPrefetch {
  constructor(
    private readonly payments: Map<string, Payment>,
    /** by the receipt as the lookups are asked for it (normalised by the provider's rules) */
    private readonly receipts: Map<string, Payment | null>,
    private readonly balances: Map<string, OrderBalance | null>,
  ) {}

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
