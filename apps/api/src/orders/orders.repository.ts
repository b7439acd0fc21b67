import { Inject, Injectable } from '@nestjs/common';
import { and, eq, isNull, sql } from 'drizzle-orm';
import { DB } from '../database/database.module';
import type { Db } from '../database/database';
import { orders } from '../database/schema';

export interface OrderRow {
  shopId: string;
  id: string;
  totalMinor: bigint;
  currency: string;
  paidAt: Date | null;
  createdAt: Date;
  paidMinor: bigint;
}

/** The only code that touches the orders table. */
@Injectable()
export class OrdersRepository {
  constructor(@Inject(DB) private readonly db: Db) {}

  /** Inserts; returns null if (shop, id) already exists. */
  async insert(shopId: string, id: string, totalMinor: bigint, currency: string): Promise<boolean> {
    const rows = await this.db.insert(orders).values({ shopId, id, totalMinor, currency }).onConflictDoNothing().returning({ id: orders.id });
    return rows.length === 1;
  }

  async find(shopId: string, id: string): Promise<OrderRow | null> {
    // Derived, never a stored counter: the sum of this order's completed payments.
    const paid = sql<string>`coalesce((select sum(p.amount_minor) from payments p where p.shop_id = "orders"."shop_id" and p.order_id = "orders"."id" and p.status = 'completed'), 0)`;
    const rows = await this.db
      .select({
        shopId: orders.shopId,
        id: orders.id,
        totalMinor: orders.totalMinor,
        currency: orders.currency,
        paidAt: orders.paidAt,
        createdAt: orders.createdAt,
        paidMinor: paid,
      })
      .from(orders)
      .where(and(eq(orders.shopId, shopId), eq(orders.id, id)));
    const r = rows[0];
    return r ? { ...r, paidMinor: BigInt(r.paidMinor) } : null;
  }

  /** Sets paid_at once, only if completed payments cover the total. True if this call set it. */
  async markPaidIfCovered(shopId: string, id: string): Promise<boolean> {
    const rows = await this.db
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
