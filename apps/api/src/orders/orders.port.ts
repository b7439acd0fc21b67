import type { Tx } from '../database/database';

/**
 * What payments need from orders. The built-in OrdersService implements it; a host POS can
 * bind ORDERS_PORT to its own orders service instead.
 */
export const ORDERS_PORT = Symbol('ORDERS_PORT');

export interface OrderBalance {
  orderId: string;
  currency: string;
  totalMinor: bigint;
  /** Sum of completed payments. */
  paidMinor: bigint;
  outstandingMinor: bigint;
}

export interface OrdersPort {
  /**
   * True for the built-in OrdersService only: its orders are the `orders` table of the payments'
   * own database, so the payment core may check and lock an order in the same SQL statement that
   * writes a payment (PaymentsRepository.openPaymentChecked: one commit instead of a transaction).
   * A host POS's own port leaves it unset; the core then asks getBalance inside a transaction.
   */
  readonly ordersTableIsLocal?: boolean;
  /**
   * The order's balance. With `tx` (inside the transaction completing a payment) the order row is
   * locked first, so two completions of one order are counted one after the other.
   */
  getBalance(shopId: string, orderId: string, tx?: Tx): Promise<OrderBalance | null>;
  /**
   * getBalance(…, tx) for several orders at once (a batch of callbacks): every row locked first,
   * in one order, then the balances read, in two statements. Optional: without it each order is
   * weighed on its own.
   */
  getBalancesLocked?(
    orders: { shopId: string; orderId: string }[],
    tx: Tx,
  ): Promise<(OrderBalance & { shopId: string })[]>;
  /**
   * Called INSIDE the transaction that completes a payment for the order, so the order is marked
   * paid atomically with the payment (a crash can never leave one without the other). Marks it
   * exactly once, when completed payments cover its total; true only for the call that marked it.
   * `orderLocked`: the caller already holds the order's row lock in `tx` (it weighed the balance
   * with getBalance(…, tx)), so it need not be taken again.
   */
  settleIfPaid(shopId: string, orderId: string, tx: Tx, orderLocked?: boolean): Promise<boolean>;
  /**
   * settleIfPaid(…, tx, true) for several orders whose rows `tx` holds, in one statement (a batch
   * of callbacks): the orders it marked paid. Optional, like getBalancesLocked.
   */
  settleManyIfPaid?(
    orders: { shopId: string; orderId: string }[],
    tx: Tx,
  ): Promise<{ shopId: string; orderId: string }[]>;
  /** After that transaction committed, for an order settleIfPaid marked (in-process notification). */
  notifyPaid(shopId: string, orderId: string): void;
}
