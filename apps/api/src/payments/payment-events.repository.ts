import { Inject, Injectable } from '@nestjs/common';
import { and, asc, desc, eq, getTableColumns, gt, inArray, sql } from 'drizzle-orm';
import { DB } from '../database/database.module';
import { resultRows, type Db } from '../database/database';
import { Payment, paymentStatusEvents, payments } from '../database/schema';

/** A payment status event as the streams deliver it: its id and the payment as it was at that change. */
export interface StatusEvent {
  id: number;
  shopId: string;
  paymentId: string;
  payment: Payment;
}

/**
 * The least the shop-wide replay looks back before the last event a client saw (see
 * replayForShop; the service widens it to cover the statement timeout). An event id is taken at
 * insert and becomes visible at commit: an event with a smaller id can commit after a larger
 * one, but only within the rest of its transaction.
 */
export const MIN_REPLAY_WINDOW_SECONDS = 10;

/** Events per replay page (a stream that missed more reads on with afterForShop). */
export const REPLAY_LIMIT = 1000;

const PAYMENT_COLUMNS = Object.entries(getTableColumns(payments));

/**
 * The payments row from its to_jsonb snapshot (snake_case keys, timestamps as ISO text, bigint as
 * a JSON number), through each column's own driver mapping.
 */
export function paymentFromSnapshot(snapshot: Record<string, unknown>): Payment {
  const out: Record<string, unknown> = {};
  for (const [key, column] of PAYMENT_COLUMNS) {
    const raw = snapshot[column.name];
    out[key] = raw === null || raw === undefined ? null : column.mapFromDriverValue(raw);
  }
  return out as unknown as Payment;
}

type EventRow = typeof paymentStatusEvents.$inferSelect;

function toEvent(row: EventRow): StatusEvent {
  return {
    id: Number(row.id),
    shopId: row.shopId,
    paymentId: row.paymentId,
    payment: paymentFromSnapshot(row.snapshot as Record<string, unknown>),
  };
}

/** The only SQL over payment_status_events (rows are written by the trigger of migration 0010). */
@Injectable()
export class PaymentEventsRepository {
  constructor(@Inject(DB) private readonly db: Db) {}

  /** Events by id (the ids a NOTIFY batch announced), in id order. */
  async byIds(ids: number[]): Promise<StatusEvent[]> {
    if (!ids.length) return [];
    const rows = await this.db
      .select()
      .from(paymentStatusEvents)
      .where(inArray(paymentStatusEvents.id, ids))
      .orderBy(asc(paymentStatusEvents.id));
    return rows.map(toEvent);
  }

  /** The payment's newest event (its current visible state), if any is still kept. */
  async latestForPayment(paymentId: string): Promise<StatusEvent | undefined> {
    const [row] = await this.db
      .select()
      .from(paymentStatusEvents)
      .where(eq(paymentStatusEvents.paymentId, paymentId))
      .orderBy(desc(paymentStatusEvents.id))
      .limit(1);
    return row ? toEvent(row) : undefined;
  }

  /** The shop's newest event id (0 when none is kept): where a fresh shop stream starts. */
  async newestIdForShop(shopId: string): Promise<number> {
    const [row] = await this.db
      .select({ id: paymentStatusEvents.id })
      .from(paymentStatusEvents)
      .where(eq(paymentStatusEvents.shopId, shopId))
      .orderBy(desc(paymentStatusEvents.id))
      .limit(1);
    return row ? Number(row.id) : 0;
  }

  /**
   * One payment's events after `afterId`. Exact: a payment's changes are serialised by its row
   * lock, so its event ids commit in order.
   */
  async replayForPayment(shopId: string, paymentId: string, afterId: number): Promise<StatusEvent[]> {
    const rows = await this.db
      .select()
      .from(paymentStatusEvents)
      .where(
        and(
          eq(paymentStatusEvents.paymentId, paymentId),
          eq(paymentStatusEvents.shopId, shopId),
          gt(paymentStatusEvents.id, afterId),
        ),
      )
      .orderBy(asc(paymentStatusEvents.id))
      .limit(REPLAY_LIMIT);
    return rows.map(toEvent);
  }

  /**
   * A shop's events a client that last saw `lastId` may have missed: every event after it, and
   * before those, the latest event per payment among the ones inserted up to `windowSeconds`
   * before it with a smaller id (one of those may have committed after `lastId` was delivered).
   * An older event of a payment whose later event (≤ lastId) the client saw is not sent again:
   * it committed before that one, so it was delivered before it. What is sent again is a
   * payment's latest known state, harmless to apply twice; a client de-duplicates by id.
   */
  async replayForShop(shopId: string, lastId: number, windowSeconds: number): Promise<StatusEvent[]> {
    const res = await this.db.execute(sql`
      with last as (
        select created_at from payment_status_events where id = ${lastId} and shop_id = ${shopId}
      )
      select e.* from payment_status_events e
      where e.shop_id = ${shopId} and e.id > ${lastId}
      union all
      select e.* from payment_status_events e, last
      where e.shop_id = ${shopId} and e.id < ${lastId}
        and e.created_at >= last.created_at - make_interval(secs => ${windowSeconds})
        and not exists (
          select 1 from payment_status_events f
          where f.payment_id = e.payment_id and f.id > e.id and f.id <= ${lastId}
        )
      order by id
      limit ${REPLAY_LIMIT}
    `);
    const rows = resultRows(res);
    return rows.map((r) =>
      toEvent({
        id: Number(r.id),
        shopId: r.shop_id as string,
        paymentId: r.payment_id as string,
        status: r.status as string,
        snapshot: (typeof r.snapshot === 'string' ? JSON.parse(r.snapshot) : r.snapshot) as Record<string, unknown>,
        createdAt: new Date(r.created_at as string),
      }),
    );
  }

  /** A shop's events after `afterId` (the pages after the first of a long replay). */
  async afterForShop(shopId: string, afterId: number): Promise<StatusEvent[]> {
    const rows = await this.db
      .select()
      .from(paymentStatusEvents)
      .where(and(eq(paymentStatusEvents.shopId, shopId), gt(paymentStatusEvents.id, afterId)))
      .orderBy(asc(paymentStatusEvents.id))
      .limit(REPLAY_LIMIT);
    return rows.map(toEvent);
  }

  /** Retention: one batch of events older than `hours`. */
  async deleteOlderThan(hours: number, batch: number): Promise<number> {
    const res = await this.db.execute(sql`
      delete from payment_status_events
      where id in (
        select id from payment_status_events
        where created_at < now() - make_interval(hours => ${hours})
        order by id limit ${batch}
      )
    `);
    return (
      (res as { rowCount?: number; affectedRows?: number }).rowCount ??
      (res as { affectedRows?: number }).affectedRows ??
      0
    );
  }
}
