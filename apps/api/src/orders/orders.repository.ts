import { Inject, Injectable } from '@nestjs/common';
import { and, eq, isNull, sql } from 'drizzle-orm';
import { DB } from '../database/database.module';
import type { Db, DbOrTx } from '../database/database';
import { orders } from '../database/schema';

export interface OrderRow {
  shopId: string;
  id: string;
  totalMinor: bigint;
  currency: string;
  paidAt: Date | null;
  createdAt: Date;
  /** Sum of completed payments (gross: what the order took in). */
  paidMinor: bigint;
  /** Sum of succeeded refunds of those payments. */
  refundedMinor: bigint;
}

/** The only code that touches the orders table. */
@Injectable()
export class OrdersRepository {
  constructor(@Inject(DB) private readonly db: Db) {}

  /** Inserts; returns null if (shop, id) already exists. */
  async insert(shopId: string, id: string, totalMinor: bigint, currency: string): Promise<boolean> {
    const rows = await this.db
      .insert(orders)
      .values({ shopId, id, totalMinor, currency })
      .onConflictDoNothing()
      .returning({ id: orders.id });
    return rows.length === 1;
  }

  /**
   * Locks the order row (inside `tx`) with a write that changes nothing (a new row version):
   * PaymentsRepository.openPaymentChecked, one statement whose snapshot may predate this
   * transaction's commit, tells by the row's version that the order changed under it (payments
   * written here are invisible to that snapshot) and runs again. A SELECT … FOR UPDATE would
   * leave the row as it was, and the push would open on a balance that misses them.
   */
  async lock(shopId: string, id: string, tx: DbOrTx): Promise<void> {
    await tx
      .update(orders)
      .set({ paidAt: sql`${orders.paidAt}` })
      .where(and(eq(orders.shopId, shopId), eq(orders.id, id)));
  }

  async find(shopId: string, id: string, tx: DbOrTx = this.db): Promise<OrderRow | null> {
    // Derived, never a stored counter: the sum of this order's completed payments.
    const paid = sql<string>`coalesce((select sum(p.amount_minor) from payments p where p.shop_id = "orders"."shop_id" and p.order_id = "orders"."id" and p.status = 'completed'), 0)`;
    // Refunds of the order's completed payments that gave money back (refunds of a payment in
    // review never counted towards the order, so they do not come off it either).
    const refunded = sql<string>`coalesce((select sum(r.amount_minor) from refunds r join payments p on p.id = r.payment_id where r.shop_id = "orders"."shop_id" and r.order_id = "orders"."id" and r.status = 'succeeded' and p.status = 'completed' and p.order_id = "orders"."id"), 0)`;
    const rows = await tx
      .select({
        shopId: orders.shopId,
        id: orders.id,
        totalMinor: orders.totalMinor,
        currency: orders.currency,
        paidAt: orders.paidAt,
        createdAt: orders.createdAt,
        paidMinor: paid,
        refundedMinor: refunded,
      })
      .from(orders)
      .where(and(eq(orders.shopId, shopId), eq(orders.id, id)));
    const r = rows[0];
    return r ? { ...r, paidMinor: BigInt(r.paidMinor), refundedMinor: BigInt(r.refundedMinor) } : null;
  }

  /**
   * Sets paid_at once, only if completed payments cover the total. True if this call set it.
   * Inside a transaction the order row is locked first, so two payments of one order completing
   * at once are counted one after the other (the second statement sees the first's commit).
   * `locked`: this transaction already holds that lock (a later statement's snapshot then sees
   * every completion committed before it was taken), so it is not asked for again.
   */
  async markPaidIfCovered(shopId: string, id: string, tx: DbOrTx = this.db, locked = false): Promise<boolean> {
    if (!locked) await this.lock(shopId, id, tx);
    const rows = await tx
      .update(orders)
      .set({ paidAt: sql`now()` })
      .where(
        and(
          eq(orders.shopId, shopId),
          eq(orders.id, id),
          isNull(orders.paidAt),
          sql`"orders"."total_minor" <= (select coalesce(sum(p.amount_minor), 0) from payments p where p.shop_id = ${shopId} and p.order_id = ${id} and p.status = 'completed')`,
        ),
      )
      .returning({ id: orders.id });
    return rows.length === 1;
  }
}
