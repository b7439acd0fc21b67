import { Inject, Injectable } from '@nestjs/common';
import { and, eq, inArray, isNull, lt, or, sql } from 'drizzle-orm';
import { DB } from '../database/database.module';
import type { Db, DbOrTx, Tx } from '../database/database';
import { callbackInbox, idempotencyKeys, NewPayment, Payment, PaymentEvent, paymentEvents, payments } from '../database/schema';
import { IN_FLIGHT_STATUSES, PaymentStatus } from './payment-status';

export interface IdempotencyRecord {
  requestHash: string;
  paymentId: string | null;
  responseStatus: number | null;
  responseBody: unknown;
}

/** The only code that touches payments, payment_events, callback_inbox and idempotency_keys. */
@Injectable()
export class PaymentsRepository {
  constructor(@Inject(DB) private readonly db: Db) {}

  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.db.transaction(fn);
  }

  async insertPayment(row: NewPayment, tx: DbOrTx = this.db): Promise<void> {
    await tx.insert(payments).values(row);
  }

  async findForShop(shopId: string, id: string): Promise<Payment | null> {
    const rows = await this.db.select().from(payments).where(and(eq(payments.shopId, shopId), eq(payments.id, id)));
    return rows[0] ?? null;
  }

  async findById(id: string, tx: DbOrTx = this.db): Promise<Payment | null> {
    const rows = await tx.select().from(payments).where(eq(payments.id, id));
    return rows[0] ?? null;
  }

  async findByCheckoutRequestId(checkoutRequestId: string, shopId?: string): Promise<Payment | null> {
    const cond = shopId ? and(eq(payments.checkoutRequestId, checkoutRequestId), eq(payments.shopId, shopId)) : eq(payments.checkoutRequestId, checkoutRequestId);
    const rows = await this.db.select().from(payments).where(cond);
    return rows[0] ?? null;
  }

  async findInFlightForOrder(shopId: string, orderId: string): Promise<Payment | null> {
    const rows = await this.db
      .select()
      .from(payments)
      .where(and(eq(payments.shopId, shopId), eq(payments.orderId, orderId), inArray(payments.status, [...IN_FLIGHT_STATUSES])));
    return rows[0] ?? null;
  }

  async findByReceipt(receipt: string, tx: DbOrTx = this.db): Promise<Payment | null> {
    const rows = await tx.select().from(payments).where(eq(payments.mpesaReceiptNumber, receipt));
    return rows[0] ?? null;
  }

  /** SELECT ... FOR UPDATE: serialises every state change of one payment, across instances. */
  async lock(tx: Tx, id: string): Promise<Payment | null> {
    const rows = await tx.select().from(payments).where(eq(payments.id, id)).for('update');
    return rows[0] ?? null;
  }

  async update(id: string, patch: Partial<NewPayment>, tx: DbOrTx = this.db): Promise<void> {
    await tx.update(payments).set({ ...patch, updatedAt: sql`now()` }).where(eq(payments.id, id));
  }

  /**
   * Records Daraja's acceptance of the push. The callback may already have been processed
   * (it can overtake the push response), so ids are only filled in and the status only moves
   * from 'initiated'.
   */
  async recordPushAccepted(id: string, merchantRequestId: string, checkoutRequestId: string): Promise<Payment> {
    const rows = await this.db
      .update(payments)
      .set({
        merchantRequestId: sql`coalesce(${payments.merchantRequestId}, ${merchantRequestId})`,
        checkoutRequestId: sql`coalesce(${payments.checkoutRequestId}, ${checkoutRequestId})`,
        status: sql`case when ${payments.status} = 'initiated' then 'pending' else ${payments.status} end`,
        updatedAt: sql`now()`,
      })
      .where(eq(payments.id, id))
      .returning();
    return rows[0];
  }

  /** Moves the payment only if it is still in `from`; returns whether it moved. */
  async transitionIf(id: string, from: PaymentStatus, patch: Partial<NewPayment> & { status: PaymentStatus }, tx: DbOrTx = this.db): Promise<boolean> {
    const rows = await tx
      .update(payments)
      .set({ ...patch, updatedAt: sql`now()` })
      .where(and(eq(payments.id, id), eq(payments.status, from)))
      .returning({ id: payments.id });
    return rows.length === 1;
  }

  /**
   * Claims the right to ask Daraja about this payment now: only one caller (across all
   * instances) wins per `minIntervalSeconds`.
   */
  async claimStatusQuery(id: string, minIntervalSeconds: number): Promise<boolean> {
    const rows = await this.db
      .update(payments)
      .set({ lastQueriedAt: sql`now()`, queryCount: sql`${payments.queryCount} + 1` })
      .where(
        and(
          eq(payments.id, id),
          inArray(payments.status, [...IN_FLIGHT_STATUSES]),
          or(isNull(payments.lastQueriedAt), lt(payments.lastQueriedAt, sql`now() - make_interval(secs => ${minIntervalSeconds})`)),
        ),
      )
      .returning({ id: payments.id });
    return rows.length === 1;
  }

  async insertEvent(event: PaymentEvent, tx: DbOrTx = this.db): Promise<void> {
    await tx.insert(paymentEvents).values(event);
  }

  async listEvents(paymentId: string): Promise<(typeof paymentEvents.$inferSelect)[]> {
    return this.db.select().from(paymentEvents).where(eq(paymentEvents.paymentId, paymentId)).orderBy(paymentEvents.id);
  }

  // ---- callback inbox

  async insertCallback(row: typeof callbackInbox.$inferInsert): Promise<bigint> {
    const rows = await this.db.insert(callbackInbox).values(row).returning({ id: callbackInbox.id });
    return rows[0].id;
  }

  async markCallbackProcessed(id: bigint, outcome: string): Promise<void> {
    await this.db.update(callbackInbox).set({ processedAt: sql`now()`, outcome }).where(eq(callbackInbox.id, id));
  }

  // ---- idempotency keys

  async insertIdempotencyKey(shopId: string, key: string, requestHash: string, paymentId: string, tx: DbOrTx = this.db): Promise<void> {
    await tx.insert(idempotencyKeys).values({ shopId, key, requestHash, paymentId });
  }

  async findIdempotencyKey(shopId: string, key: string): Promise<IdempotencyRecord | null> {
    const rows = await this.db
      .select({ requestHash: idempotencyKeys.requestHash, paymentId: idempotencyKeys.paymentId, responseStatus: idempotencyKeys.responseStatus, responseBody: idempotencyKeys.responseBody })
      .from(idempotencyKeys)
      .where(and(eq(idempotencyKeys.shopId, shopId), eq(idempotencyKeys.key, key)));
    return rows[0] ?? null;
  }

  async storeIdempotentResponse(shopId: string, key: string, status: number, body: unknown): Promise<void> {
    await this.db
      .update(idempotencyKeys)
      .set({ responseStatus: status, responseBody: body })
      .where(and(eq(idempotencyKeys.shopId, shopId), eq(idempotencyKeys.key, key), isNull(idempotencyKeys.responseStatus)));
  }
}
