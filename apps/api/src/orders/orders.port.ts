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
  getBalance(shopId: string, orderId: string): Promise<OrderBalance | null>;
  /**
   * Called after a payment for the order has completed (and committed). Marks the order paid
   * exactly once, when completed payments cover its total. Returns true only for the call
   * that marked it.
   */
  settleIfPaid(shopId: string, orderId: string): Promise<boolean>;
}
