import { Inject, Injectable } from '@nestjs/common';
import { and, asc, desc, eq, inArray, isNull, lt, lte, or, sql } from 'drizzle-orm';
import { DB } from '../database/database.module';
import type { Db, DbOrTx, Tx } from '../database/database';
import { callbackInbox, idempotencyKeys, NewPayment, Payment, PaymentEvent, paymentEvents, payments } from '../database/schema';
import { normaliseMpesaReceipt } from './daraja/receipt';
import { IN_FLIGHT_STATUSES, OUTCOME_UNKNOWN, PaymentStatus } from './payment-status';

export interface IdempotencyRecord {
  requestHash: string;
  paymentId: string | null;
  responseStatus: number | null;
  responseBody: unknown;
  createdAt: Date;
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

  /**
   * The payment that keeps the order from taking another one (the partial unique index
   * payments_one_in_flight_per_order_uq): one in flight, or one in review because its outcome is
   * unknown and no manager released the order.
   */
  async findBlockingForOrder(shopId: string, orderId: string): Promise<Payment | null> {
    const rows = await this.db
      .select()
      .from(payments)
      .where(
        and(
          eq(payments.shopId, shopId),
          eq(payments.orderId, orderId),
          or(inArray(payments.status, [...IN_FLIGHT_STATUSES]), and(eq(payments.status, 'review'), eq(payments.statusReason, OUTCOME_UNKNOWN), isNull(payments.releasedAt))),
        ),
      );
    return rows[0] ?? null;
  }

  async findByReceipt(receipt: string, tx: DbOrTx = this.db): Promise<Payment | null> {
    const rows = await tx.select().from(payments).where(eq(payments.mpesaReceiptNumber, normaliseMpesaReceipt(receipt)));
    return rows[0] ?? null;
  }

  async findByProviderTransaction(provider: string, providerTransactionId: string, tx: DbOrTx = this.db): Promise<Payment | null> {
    const rows = await tx.select().from(payments).where(and(eq(payments.provider, provider), eq(payments.providerTransactionId, providerTransactionId)));
    return rows[0] ?? null;
  }

  /** By our own reference (tx_ref / merchant reference); optionally only in one shop. */
  async findByProviderReference(provider: string, reference: string, shopId?: string): Promise<Payment | null> {
    const rows = await this.db
      .select()
      .from(payments)
      .where(and(eq(payments.provider, provider), eq(payments.providerReference, reference), shopId ? eq(payments.shopId, shopId) : undefined));
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
  async recordPushAccepted(id: string, merchantRequestId: string, checkoutRequestId: string, tx: DbOrTx = this.db): Promise<Payment> {
    const rows = await tx
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
          // open payments, and payments in review (an operator's look; only OUTCOME_UNKNOWN ones can still be settled)
          inArray(payments.status, [...IN_FLIGHT_STATUSES, 'review']),
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

  // ---- reconciler

  /**
   * Claims up to `limit` open payments that are due for a check, for this caller only: rows are
   * picked with FOR UPDATE SKIP LOCKED and their next_check_at pushed out by `leaseSeconds` in the
   * same statement, so another instance neither waits for them nor picks them until the lease
   * ends (if this instance dies, the lease running out hands them to someone else).
   * A payment never checked is due `graceSeconds` after it was created.
   */
  async claimDuePayments(limit: number, leaseSeconds: number, graceSeconds: number): Promise<Payment[]> {
    const dueAt = sql`coalesce(${payments.nextCheckAt}, ${payments.createdAt} + make_interval(secs => ${graceSeconds}))`;
    const due = this.db
      .select({ id: payments.id })
      .from(payments)
      .where(and(inArray(payments.status, [...IN_FLIGHT_STATUSES]), lte(dueAt, sql`now()`)))
      .orderBy(asc(dueAt))
      .limit(limit)
      .for('update', { skipLocked: true });
    return this.db
      .update(payments)
      .set({ nextCheckAt: sql`now() + make_interval(secs => ${leaseSeconds})` })
      .where(inArray(payments.id, due))
      .returning();
  }

  /** Next time the reconciler may look at this payment (also ends the current claim). */
  async scheduleCheck(id: string, afterSeconds: number, countAttempt: boolean): Promise<void> {
    await this.db
      .update(payments)
      .set({
        nextCheckAt: sql`now() + make_interval(secs => ${afterSeconds})`,
        ...(countAttempt ? { reconcileAttempts: sql`${payments.reconcileAttempts} + 1` } : {}),
      })
      .where(eq(payments.id, id));
  }

  /** Payments a person must look at, newest first, for one shop. */
  async listForReview(shopId: string, limit: number, before?: { createdAt: Date; id: string }): Promise<Payment[]> {
    // Millisecond precision on both sides: the cursor carries a JS Date.
    const createdMs = sql`date_trunc('milliseconds', ${payments.createdAt})`;
    const cursor = before
      ? sql`(${createdMs} < ${before.createdAt.toISOString()}::timestamptz or (${createdMs} = ${before.createdAt.toISOString()}::timestamptz and ${payments.id} < ${before.id}::uuid))`
      : undefined;
    return this.db
      .select()
      .from(payments)
      .where(and(eq(payments.shopId, shopId), eq(payments.status, 'review'), cursor))
      .orderBy(desc(createdMs), desc(payments.id))
      .limit(limit);
  }

  // ---- callback inbox

  /**
   * Claims stored callbacks whose processing never finished (the process died, the database
   * failed mid-way): same SKIP LOCKED + lease pattern as claimDuePayments.
   */
  async claimUnprocessedCallbacks(limit: number, leaseSeconds: number, retryAfterSeconds: number): Promise<(typeof callbackInbox.$inferSelect)[]> {
    const dueAt = sql`coalesce(${callbackInbox.nextAttemptAt}, ${callbackInbox.receivedAt} + make_interval(secs => ${retryAfterSeconds}))`;
    const due = this.db
      .select({ id: callbackInbox.id })
      .from(callbackInbox)
      .where(and(isNull(callbackInbox.processedAt), lte(dueAt, sql`now()`)))
      .orderBy(asc(callbackInbox.id))
      .limit(limit)
      .for('update', { skipLocked: true });
    return this.db
      .update(callbackInbox)
      .set({ attempts: sql`${callbackInbox.attempts} + 1`, nextAttemptAt: sql`now() + make_interval(secs => ${leaseSeconds})` })
      .where(inArray(callbackInbox.id, due))
      .returning();
  }

  async insertCallback(row: typeof callbackInbox.$inferInsert, tx: DbOrTx = this.db): Promise<bigint> {
    const rows = await tx.insert(callbackInbox).values(row).returning({ id: callbackInbox.id });
    return rows[0].id;
  }

  /**
   * Stores an unverified callback, or counts it on the row already stored for the same
   * provider + CheckoutRequestID in the current `windowSeconds` window (database clock, so every
   * instance agrees): a flood from an unauthenticated sender adds one row per payment per window,
   * not one per request. `first` is false when it was only counted (its confirmation is the row's).
   */
  async insertOrCountUnverifiedCallback(row: typeof callbackInbox.$inferInsert & { checkoutRequestId: string }, windowSeconds: number): Promise<{ id: bigint; first: boolean }> {
    const coalesceKey = sql`${row.provider} || '|' || ${row.checkoutRequestId}::text || '|' || floor(extract(epoch from now()) / ${windowSeconds}::int)::bigint::text`;
    const rows = await this.db
      .insert(callbackInbox)
      .values({ ...row, verified: false, coalesceKey })
      .onConflictDoUpdate({ target: callbackInbox.coalesceKey, set: { repeats: sql`${callbackInbox.repeats} + 1`, lastReceivedAt: sql`now()` } })
      .returning({ id: callbackInbox.id, repeats: callbackInbox.repeats });
    return { id: rows[0].id, first: rows[0].repeats === 0 };
  }

  /** Leaves a stored callback unprocessed, for the reconciler to try again in `afterSeconds`. */
  async deferCallback(id: bigint, afterSeconds: number): Promise<void> {
    await this.db.update(callbackInbox).set({ nextAttemptAt: sql`now() + make_interval(secs => ${afterSeconds})` }).where(eq(callbackInbox.id, id));
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
      .select({ requestHash: idempotencyKeys.requestHash, paymentId: idempotencyKeys.paymentId, responseStatus: idempotencyKeys.responseStatus, responseBody: idempotencyKeys.responseBody, createdAt: idempotencyKeys.createdAt })
      .from(idempotencyKeys)
      .where(and(eq(idempotencyKeys.shopId, shopId), eq(idempotencyKeys.key, key)));
    return rows[0] ?? null;
  }

  async storeIdempotentResponse(shopId: string, key: string, status: number, body: unknown, tx: DbOrTx = this.db): Promise<void> {
    await tx
      .update(idempotencyKeys)
      .set({ responseStatus: status, responseBody: body })
      .where(and(eq(idempotencyKeys.shopId, shopId), eq(idempotencyKeys.key, key), isNull(idempotencyKeys.responseStatus)));
  }
}
