import { Inject, Injectable } from '@nestjs/common';
import { and, eq, isNull, sql } from 'drizzle-orm';
import { DB } from '../database/database.module';
import { resultRows, type Db, type DbOrTx } from '../database/database';
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

/** Order keys as one jsonb parameter (one parameter however many; drizzle spreads an array into one per element). */
const keysJson = (keys: { shopId: string; orderId: string }[]): string =>
  JSON.stringify(keys.map((k) => ({ shop_id: k.shopId, order_id: k.orderId })));

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

  /**
   * lock() for several orders in one statement. The rows are locked in (shop, id) order, so two
   * transactions locking overlapping sets wait for each other instead of deadlocking.
   */
  async lockMany(keys: { shopId: string; orderId: string }[], tx: DbOrTx): Promise<void> {
    if (keys.length === 0) return;
    await tx.execute(sql`
      update ${orders} set paid_at = ${orders}.paid_at
      from (
        select l.shop_id, l.id from ${orders} l
        where (l.shop_id, l.id) in (select k.shop_id, k.order_id from jsonb_to_recordset(${keysJson(keys)}::jsonb) as k(shop_id text, order_id text))
        order by l.shop_id, l.id
        for update
      ) locked
      where ${orders}.shop_id = locked.shop_id and ${orders}.id = locked.id`);
  }

  /** Total, currency and the sum of completed payments of several orders, in one statement (those that exist). */
  async balances(
    keys: { shopId: string; orderId: string }[],
    tx: DbOrTx,
  ): Promise<{ shopId: string; id: string; totalMinor: bigint; currency: string; paidMinor: bigint }[]> {
    if (keys.length === 0) return [];
    const rows = resultRows(
      await tx.execute(sql`
        select o.shop_id, o.id, o.total_minor::text as total_minor, o.currency,
          coalesce((select sum(p.amount_minor) from payments p
                    where p.shop_id = o.shop_id and p.order_id = o.id and p.status = 'completed'), 0)::text as paid_minor
        from ${orders} o
        where (o.shop_id, o.id) in (select k.shop_id, k.order_id from jsonb_to_recordset(${keysJson(keys)}::jsonb) as k(shop_id text, order_id text))`),
    );
    return rows.map((r) => ({
      shopId: r.shop_id as string,
      id: r.id as string,
      totalMinor: BigInt(r.total_minor as string),
      currency: r.currency as string,
      paidMinor: BigInt(r.paid_minor as string),
    }));
  }

  /**
   * markPaidIfCovered for several orders whose rows this transaction already holds (locked), in
   * one statement: the orders it marked paid.
   */
  async markManyPaidIfCovered(
    keys: { shopId: string; orderId: string }[],
    tx: DbOrTx,
  ): Promise<{ shopId: string; orderId: string }[]> {
    if (keys.length === 0) return [];
    const rows = resultRows(
      await tx.execute(sql`
        update ${orders} o set paid_at = now()
        from jsonb_to_recordset(${keysJson(keys)}::jsonb) as k(shop_id text, order_id text)
        where o.shop_id = k.shop_id and o.id = k.order_id and o.paid_at is null
          and o.total_minor <= (select coalesce(sum(p.amount_minor), 0) from payments p
                                where p.shop_id = o.shop_id and p.order_id = o.id and p.status = 'completed')
        returning o.shop_id, o.id`),
    );
    return rows.map((r) => ({ shopId: r.shop_id as string, orderId: r.id as string }));
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
