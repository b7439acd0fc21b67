import { Inject, Injectable } from '@nestjs/common';
import { and, asc, desc, eq, getTableColumns, gte, inArray, isNull, lt, lte, or, SQL, sql } from 'drizzle-orm';
import { DB } from '../database/database.module';
import { resultRows, type Db, type DbOrTx, type Tx } from '../database/database';
import {
  callbackInbox,
  idempotencyKeys,
  orders,
  NewPayment,
  Payment,
  PaymentEvent,
  paymentEvents,
  payments,
} from '../database/schema';
import { normaliseMpesaReceipt } from './providers/mpesa/receipt';
import { notifications } from '../metrics/metrics';

/**
 * smartduka_notifications_total: every provider notification, counted where its outcome is
 * recorded (stored already processed, finished later, or coalesced into an earlier row).
 */
function countNotification(provider: string, kind: string | null | undefined, outcome: string): void {
  notifications.inc({ provider, kind: kind ?? 'payment', outcome });
}
import { IN_FLIGHT_STATUSES, OUTCOME_UNKNOWN, PaymentStatus } from './payment-status';

export interface IdempotencyRecord {
  requestHash: string;
  paymentId: string | null;
  /** the refund a refund request with this key created */
  refundId: string | null;
  responseStatus: number | null;
  responseBody: unknown;
  createdAt: Date;
}

/** What openPaymentChecked found: the order's balance as it checked it, and whether the payment was written. */
export interface CheckedOpen {
  /** null: no such order in the shop */
  balance: { totalMinor: bigint; paidMinor: bigint; currency: string } | null;
  opened: boolean;
}

/** The answer recordPushAnswer stores for an Idempotency-Key: its `body.status` is set to the payment's status in the same statement. */
export interface PushAnswerKey {
  shopId: string;
  key: string;
  status: number;
  body: Record<string, unknown>;
}

const PAYMENT_COLUMNS = getTableColumns(payments);

/** How often openPaymentChecked runs again when the order changed under its snapshot (each retry follows a commit on the order). */
const OPEN_STALE_RETRIES = 5;

function keyLookupQuery(db: Db) {
  return db
    .select({
      requestHash: idempotencyKeys.requestHash,
      paymentId: idempotencyKeys.paymentId,
      refundId: idempotencyKeys.refundId,
      responseStatus: idempotencyKeys.responseStatus,
      responseBody: idempotencyKeys.responseBody,
      createdAt: idempotencyKeys.createdAt,
    })
    .from(idempotencyKeys)
    .where(and(eq(idempotencyKeys.shopId, sql.placeholder('shopId')), eq(idempotencyKeys.key, sql.placeholder('key'))))
    .prepare('smartduka_idempotency_key_lookup');
}

/** The only code that touches payments, payment_events, callback_inbox and idempotency_keys. */
@Injectable()
export class PaymentsRepository {
  /**
   * Every payment-creating request with a key reads it first (the STK push on every push): built
   * once and prepared (named), so neither the SQL nor the server's plan is made again per request.
   */
  private readonly keyLookup: ReturnType<typeof keyLookupQuery>;

  constructor(@Inject(DB) private readonly db: Db) {
    this.keyLookup = keyLookupQuery(db);
  }

  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.db.transaction(fn);
  }

  async insertPayment(row: NewPayment, tx: DbOrTx = this.db): Promise<void> {
    await tx.insert(payments).values(row);
  }

  /**
   * Opens a payment in ONE autocommit statement: checks the order and writes the 'initiated'
   * payment, its 'created' event and the Idempotency-Key only if the order is in `currency`, still
   * owes something and owes at least the payment's amount (the rules of PaymentLifecycle.checkOrder,
   * which turns a refusal into its error from the balance returned here).
   *
   * Atomic like the transaction it replaces (lock the order, read its balance, insert): the
   * statement share-locks the order's payments, then locks the order row (the order every path
   * that completes a payment takes: payment, then order, so no deadlock), and sums the completed
   * ones from the locked rows. A payment completing concurrently holds its row lock until it
   * commits; the lock wait then yields the row as committed (READ COMMITTED re-reads a row it had
   * to wait for), so its amount counts, although the statement's snapshot is older. A plain
   * `sum(...)` subquery would read that snapshot and miss it. A payment the snapshot cannot see at
   * all (one another transaction wrote while holding the order, as a C2B claim does: the row is
   * new, so no row lock on it is waited for) is caught by the order row: every transaction that
   * holds an order takes it with a write (OrdersRepository.lock), so the locked row is then a
   * newer version than the snapshot's; the statement writes nothing and runs again with a fresh
   * snapshot (`fresh`). A second payment for the order in
   * flight is refused by the unique index payments_one_in_flight_per_order_uq (23505), and so is
   * a key already used (idempotency_keys' primary key): the caller sorts those out as before.
   */
  async openPaymentChecked(
    row: NewPayment & { shopId: string; orderId: string; amountMinor: bigint; currency: string },
    event: { actor: string; data: Record<string, unknown> },
    idem?: { key: string; requestHash: string },
  ): Promise<CheckedOpen> {
    const cols: SQL[] = [];
    const vals: SQL[] = [];
    for (const [k, v] of Object.entries(row)) {
      if (v === undefined) continue;
      const col = PAYMENT_COLUMNS[k as keyof typeof PAYMENT_COLUMNS];
      if (!col) throw new Error(`openPaymentChecked: unknown payments field ${k}`);
      cols.push(sql`${sql.identifier(col.name)}`);
      vals.push(sql`${sql.param(v, col)}::${sql.raw(col.getSQLType())}`);
    }
    const id = sql`${row.id}::uuid`;
    const keyInsert = idem
      ? sql`, k as (
          insert into idempotency_keys (shop_id, key, request_hash, payment_id)
          select ${row.shopId}, ${idem.key}, ${idem.requestHash}, ins.id from ins
        )`
      : sql``;
    const statement = sql`
      with prior as (
        select ${payments.status} as status, ${payments.amountMinor} as amount_minor from ${payments}
        where ${payments.shopId} = ${row.shopId} and ${payments.orderId} = ${row.orderId}
        for share
      ), seen as (
        select ${orders}.ctid as tid from ${orders}
        where ${orders.shopId} = ${row.shopId} and ${orders.id} = ${row.orderId}
      ), o as (
        select ${orders}.ctid as tid, ${orders.totalMinor} as total_minor, ${orders.currency} as currency from ${orders}
        where ${orders.shopId} = ${row.shopId} and ${orders.id} = ${row.orderId}
          and (select count(*) from prior) >= 0
        for update
      ), bal as (
        select o.total_minor, o.currency,
          coalesce((select sum(prior.amount_minor) from prior where prior.status = 'completed'), 0)::bigint as paid_minor,
          exists (select 1 from seen where seen.tid = o.tid) as fresh
        from o
      ), ins as (
        insert into payments (${sql.join(cols, sql`, `)})
        select ${sql.join(vals, sql`, `)} from bal
        where bal.fresh and bal.currency = ${row.currency}
          and bal.total_minor - bal.paid_minor > 0
          and bal.total_minor - bal.paid_minor >= ${row.amountMinor.toString()}::bigint
        returning id
      ), e as (
        insert into payment_events (payment_id, type, to_status, actor, data)
        select ins.id, 'created', 'initiated', ${event.actor}, ${JSON.stringify(event.data)}::jsonb from ins
      )${keyInsert}
      select bal.total_minor::text as total_minor, bal.paid_minor::text as paid_minor, bal.currency, bal.fresh,
        exists (select 1 from ins where ins.id = ${id}) as opened
      from bal
    `;
    let r: Record<string, unknown> | undefined;
    for (let attempt = 1; ; attempt++) {
      r = resultRows(await this.db.execute(statement))[0];
      if (!r || r.fresh === true) break;
      // The order row changed after this statement's snapshot (a transaction holding it committed
      // while the statement waited for its lock): payments it wrote are not in the snapshot. Again,
      // with a snapshot taken after that commit.
      if (attempt >= OPEN_STALE_RETRIES)
        throw new Error(`openPaymentChecked: order ${row.orderId} kept changing under ${attempt} attempts`);
    }
    if (!r) return { balance: null, opened: false };
    return {
      balance: {
        totalMinor: BigInt(r.total_minor as string),
        paidMinor: BigInt(r.paid_minor as string),
        currency: r.currency as string,
      },
      opened: r.opened === true,
    };
  }

  async findForShop(shopId: string, id: string): Promise<Payment | null> {
    const rows = await this.db
      .select()
      .from(payments)
      .where(and(eq(payments.shopId, shopId), eq(payments.id, id)));
    return rows[0] ?? null;
  }

  async findById(id: string, tx: DbOrTx = this.db): Promise<Payment | null> {
    const rows = await tx.select().from(payments).where(eq(payments.id, id));
    return rows[0] ?? null;
  }

  async findByCheckoutRequestId(checkoutRequestId: string, shopId?: string): Promise<Payment | null> {
    const cond = shopId
      ? and(eq(payments.checkoutRequestId, checkoutRequestId), eq(payments.shopId, shopId))
      : eq(payments.checkoutRequestId, checkoutRequestId);
    const rows = await this.db.select().from(payments).where(cond);
    return rows[0] ?? null;
  }

  /**
   * The shop's payments (at most 2: one, or proof it is ambiguous) whose CheckoutRequestID is
   * `prefix`, 7 digits, `lastTwo`: the id as answered, masked (maskCheckoutRequestId). The range
   * over `prefix` + 9 digits uses the unique index on checkout_request_id; the pattern then keeps
   * exactly the masked form's ids.
   */
  async findByMaskedCheckoutRequestId(prefix: string, lastTwo: string, shopId: string): Promise<Payment[]> {
    if (!/^[A-Za-z0-9_-]+$/.test(prefix) || !/^\d{2}$/.test(lastTwo))
      throw new Error('findByMaskedCheckoutRequestId: not a masked CheckoutRequestID');
    return this.db
      .select()
      .from(payments)
      .where(
        and(
          gte(payments.checkoutRequestId, `${prefix}000000000`),
          lte(payments.checkoutRequestId, `${prefix}999999999`),
          sql`${payments.checkoutRequestId} ~ ${`^${prefix}[0-9]{7}${lastTwo}$`}`,
          eq(payments.shopId, shopId),
        ),
      )
      .limit(2);
  }

  /**
   * The payment that keeps the order from taking another one (the partial unique index
   * payments_one_in_flight_per_order_uq): one in flight, or one in review because its outcome is
   * unknown and no manager released the order.
   */
  async findBlockingForOrder(shopId: string, orderId: string, tx: DbOrTx = this.db): Promise<Payment | null> {
    const rows = await tx
      .select()
      .from(payments)
      .where(
        and(
          eq(payments.shopId, shopId),
          eq(payments.orderId, orderId),
          or(
            inArray(payments.status, [...IN_FLIGHT_STATUSES]),
            and(eq(payments.status, 'review'), eq(payments.statusReason, OUTCOME_UNKNOWN), isNull(payments.releasedAt)),
          ),
        ),
      );
    return rows[0] ?? null;
  }

  async findByReceipt(receipt: string, tx: DbOrTx = this.db): Promise<Payment | null> {
    const rows = await tx
      .select()
      .from(payments)
      .where(eq(payments.mpesaReceiptNumber, normaliseMpesaReceipt(receipt)));
    return rows[0] ?? null;
  }

  async findByProviderTransaction(
    provider: string,
    providerTransactionId: string,
    tx: DbOrTx = this.db,
  ): Promise<Payment | null> {
    const rows = await tx
      .select()
      .from(payments)
      .where(and(eq(payments.provider, provider), eq(payments.providerTransactionId, providerTransactionId)));
    return rows[0] ?? null;
  }

  /** By our own reference (tx_ref / merchant reference); optionally only in one shop. */
  async findByProviderReference(provider: string, reference: string, shopId?: string): Promise<Payment | null> {
    const rows = await this.db
      .select()
      .from(payments)
      .where(
        and(
          eq(payments.provider, provider),
          eq(payments.providerReference, reference),
          shopId ? eq(payments.shopId, shopId) : undefined,
        ),
      );
    return rows[0] ?? null;
  }

  /** SELECT ... FOR UPDATE: serialises every state change of one payment, across instances. */
  async lock(tx: Tx, id: string): Promise<Payment | null> {
    const rows = await tx.select().from(payments).where(eq(payments.id, id)).for('update');
    return rows[0] ?? null;
  }

  /** Locks these payments in one statement, in id order (the order a batch applies them in); those that exist. */
  async lockMany(tx: Tx, ids: string[]): Promise<Payment[]> {
    if (ids.length === 0) return [];
    return tx.select().from(payments).where(inArray(payments.id, ids)).orderBy(payments.id).for('update');
  }

  /** findByReceipt for several receipts in one statement: each receipt asked for, with its payment or null. */
  async findByReceipts(receipts: string[], tx: DbOrTx = this.db): Promise<Map<string, Payment | null>> {
    const held = new Map<string, Payment | null>(receipts.map((r) => [r, null]));
    if (receipts.length === 0) return held;
    const rows = await tx
      .select()
      .from(payments)
      .where(inArray(payments.mpesaReceiptNumber, [...new Set(receipts.map(normaliseMpesaReceipt))]));
    const byNumber = new Map(rows.map((p) => [p.mpesaReceiptNumber, p]));
    for (const r of receipts) held.set(r, byNumber.get(normaliseMpesaReceipt(r)) ?? null);
    return held;
  }

  async update(id: string, patch: Partial<NewPayment>, tx: DbOrTx = this.db): Promise<void> {
    await tx
      .update(payments)
      .set({ ...patch, updatedAt: sql`now()` })
      .where(eq(payments.id, id));
  }

  /**
   * Records Daraja's acceptance of the push, its provider_response event and the
   * Idempotency-Key's answer in ONE autocommit statement (what was a transaction of three). The
   * callback may already have been processed (it can overtake the push response), so ids are
   * only filled in and the status only moves from 'initiated'. The event's to_status and the
   * answer's `body.status` are the payment's status after the update ('pending', or what a
   * callback that overtook the answer made it). Returns that status.
   */
  async recordPushAnswer(
    id: string,
    merchantRequestId: string,
    checkoutRequestId: string,
    event: { actor: string; data: Record<string, unknown> },
    answer?: PushAnswerKey,
  ): Promise<string> {
    const keyUpdate = answer
      ? sql`, k as (
          update idempotency_keys
          set response_status = ${answer.status},
            response_body = jsonb_set(${JSON.stringify(answer.body)}::jsonb, '{status}',
              to_jsonb(case when u.status = 'initiated' then 'pending' else u.status end))
          from u
          where idempotency_keys.shop_id = ${answer.shopId} and idempotency_keys.key = ${answer.key}
            and idempotency_keys.response_status is null
        )`
      : sql``;
    const res = await this.db.execute(sql`
      with u as (
        update payments set
          merchant_request_id = coalesce(merchant_request_id, ${merchantRequestId}),
          checkout_request_id = coalesce(checkout_request_id, ${checkoutRequestId}),
          status = case when status = 'initiated' then 'pending' else status end,
          updated_at = now()
        where id = ${id}::uuid
        returning status
      ), e as (
        insert into payment_events (payment_id, type, from_status, to_status, actor, data)
        select ${id}::uuid, 'provider_response', 'initiated', u.status, ${event.actor}, ${JSON.stringify(event.data)}::jsonb
        from u
      )${keyUpdate}
      select status from u
    `);
    const r = resultRows(res)[0];
    if (!r) throw new Error(`recordPushAnswer: payment ${id} not found`);
    return r.status as string;
  }

  /** Moves the payment only if it is still in `from`; returns whether it moved. */
  async transitionIf(
    id: string,
    from: PaymentStatus,
    patch: Partial<NewPayment> & { status: PaymentStatus },
    tx: DbOrTx = this.db,
  ): Promise<boolean> {
    const rows = await tx
      .update(payments)
      .set({ ...patch, updatedAt: sql`now()` })
      .where(and(eq(payments.id, id), eq(payments.status, from)))
      .returning({ id: payments.id });
    return rows.length === 1;
  }

  /**
   * Claims the right to ask Daraja about this payment now: only one caller (across all
   * instances) wins per `minIntervalSeconds`. Returns the claim's time (exact, as text), or null.
   */
  async claimStatusQuery(id: string, minIntervalSeconds: number): Promise<string | null> {
    const rows = await this.db
      .update(payments)
      .set({ lastQueriedAt: sql`now()`, queryCount: sql`${payments.queryCount} + 1` })
      .where(
        and(
          eq(payments.id, id),
          // open payments, and payments in review (an operator's look; only OUTCOME_UNKNOWN ones can still be settled)
          inArray(payments.status, [...IN_FLIGHT_STATUSES, 'review']),
          or(
            isNull(payments.lastQueriedAt),
            lt(payments.lastQueriedAt, sql`now() - make_interval(secs => ${minIntervalSeconds})`),
          ),
        ),
      )
      .returning({ claimedAt: sql<string>`${payments.lastQueriedAt}::text` });
    return rows[0]?.claimedAt ?? null;
  }

  /**
   * claimStatusQuery for a notification about a payment in any status. An open one (in flight, or
   * in review because its outcome is unknown) per `openIntervalSeconds`; a closed one, whose
   * provider may still report a change (a reversal, money after we closed it), once after it last
   * changed (the first notification after it closed), then per `closedIntervalSeconds`.
   */
  async claimLookup(id: string, openIntervalSeconds: number, closedIntervalSeconds: number): Promise<string | null> {
    const open = sql`(${payments.status} in (${sql.join(
      IN_FLIGHT_STATUSES.map((s) => sql`${s}`),
      sql`, `,
    )}) or (${payments.status} = 'review' and coalesce(${payments.statusReason}, '') = ${OUTCOME_UNKNOWN}))`;
    const rows = await this.db
      .update(payments)
      .set({ lastQueriedAt: sql`now()`, queryCount: sql`${payments.queryCount} + 1` })
      .where(
        and(
          eq(payments.id, id),
          sql`(${payments.lastQueriedAt} is null
            or (${open} and ${payments.lastQueriedAt} < now() - make_interval(secs => ${openIntervalSeconds}))
            or (not ${open} and (${payments.lastQueriedAt} < ${payments.updatedAt} or ${payments.lastQueriedAt} < now() - make_interval(secs => ${closedIntervalSeconds}))))`,
        ),
      )
      .returning({ claimedAt: sql<string>`${payments.lastQueriedAt}::text` });
    return rows[0]?.claimedAt ?? null;
  }

  /** A lookup claimed at `claimedAt` got the provider's answer (see SharedLookups). */
  async recordLookupAnswered(id: string, claimedAt: string): Promise<void> {
    await this.db
      .update(payments)
      .set({ lastAnsweredAt: sql`greatest(${payments.lastAnsweredAt}, ${claimedAt}::timestamptz)` })
      .where(eq(payments.id, id));
  }

  /**
   * update() and then insertEvent() for the payment, in ONE statement: the event is written for
   * the row the update changed (a data-modifying WITH), so the pair costs one round trip.
   */
  async updateWithEvent(
    id: string,
    patch: Partial<NewPayment>,
    event: Omit<PaymentEvent, 'paymentId'>,
    tx: DbOrTx,
  ): Promise<void> {
    const sets: SQL[] = [];
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) continue;
      const col = PAYMENT_COLUMNS[k as keyof typeof PAYMENT_COLUMNS];
      if (!col) throw new Error(`updateWithEvent: unknown payments field ${k}`);
      sets.push(sql`${sql.identifier(col.name)} = ${sql.param(v, col)}::${sql.raw(col.getSQLType())}`);
    }
    sets.push(sql`updated_at = now()`);
    await tx.execute(sql`
      with u as (
        update ${payments} set ${sql.join(sets, sql`, `)} where ${payments.id} = ${id}::uuid returning ${payments.id}
      )
      insert into payment_events (payment_id, type, from_status, to_status, actor, data)
      select u.id, ${event.type}, ${event.fromStatus ?? null}, ${event.toStatus ?? null}, ${event.actor},
        ${event.data === undefined || event.data === null ? null : JSON.stringify(event.data)}::jsonb
      from u`);
  }

  /**
   * updateWithEvent for several payments (a batch of callbacks): every update in ONE statement
   * (each row takes only the columns its own patch names), then every event in one, in order.
   */
  async updateManyWithEvents(
    items: { id: string; patch: Partial<NewPayment>; event: Omit<PaymentEvent, 'paymentId'> }[],
    tx: Tx,
  ): Promise<void> {
    if (items.length === 0) return;
    const named = new Set<string>();
    const rows = items.map(({ id, patch }) => {
      const set: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(patch)) {
        if (v === undefined) continue;
        const col = PAYMENT_COLUMNS[k as keyof typeof PAYMENT_COLUMNS];
        if (!col) throw new Error(`updateManyWithEvents: unknown payments field ${k}`);
        named.add(k);
        set[col.name] = v === null ? null : col.mapToDriverValue(v);
      }
      return { id, set };
    });
    const assignments = [...named].map((k) => {
      const col = PAYMENT_COLUMNS[k as keyof typeof PAYMENT_COLUMNS];
      const name = sql.raw(`'${col.name}'`);
      const value =
        col.getSQLType() === 'jsonb' ? sql`x.j -> ${name}` : sql`(x.j ->> ${name})::${sql.raw(col.getSQLType())}`;
      return sql`${sql.identifier(col.name)} = case when x.j ? ${name} then ${value} else ${payments}.${sql.identifier(col.name)} end`;
    });
    await tx.execute(sql`
      update ${payments} set ${sql.join([...assignments, sql`updated_at = now()`], sql`, `)}
      from (select (e ->> 'id')::uuid as id, e -> 'set' as j from jsonb_array_elements(${JSON.stringify(rows)}::jsonb) e) x
      where ${payments.id} = x.id`);
    const events = items.map(({ id, event }) => ({
      payment_id: id,
      type: event.type,
      from_status: event.fromStatus ?? null,
      to_status: event.toStatus ?? null,
      actor: event.actor,
      data: event.data ?? null,
    }));
    await tx.execute(sql`
      insert into payment_events (payment_id, type, from_status, to_status, actor, data)
      select (e ->> 'payment_id')::uuid, e ->> 'type', e ->> 'from_status', e ->> 'to_status', e ->> 'actor',
        case when jsonb_typeof(e -> 'data') = 'null' then null else e -> 'data' end
      from jsonb_array_elements(${JSON.stringify(events)}::jsonb) with ordinality as t(e, n)
      order by n`);
  }

  async insertEvent(event: PaymentEvent, tx: DbOrTx = this.db): Promise<void> {
    await tx.insert(paymentEvents).values(event);
  }

  /** Several events in one statement, in this order (their ids ascend as listed). */
  async insertEvents(events: PaymentEvent[], tx: DbOrTx = this.db): Promise<void> {
    if (events.length) await tx.insert(paymentEvents).values(events);
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

  /** Payments a person must look at (in review, not yet resolved), newest first, for one shop. */
  async listForReview(shopId: string, limit: number, before?: { createdAt: Date; id: string }): Promise<Payment[]> {
    // Millisecond precision on both sides: the cursor carries a JS Date.
    const createdMs = sql`date_trunc('milliseconds', ${payments.createdAt})`;
    const cursor = before
      ? sql`(${createdMs} < ${before.createdAt.toISOString()}::timestamptz or (${createdMs} = ${before.createdAt.toISOString()}::timestamptz and ${payments.id} < ${before.id}::uuid))`
      : undefined;
    return this.db
      .select()
      .from(payments)
      .where(and(eq(payments.shopId, shopId), eq(payments.status, 'review'), isNull(payments.resolution), cursor))
      .orderBy(desc(createdMs), desc(payments.id))
      .limit(limit);
  }

  /**
   * A shop's payments, newest first (keyset on created_at, id at millisecond precision like
   * listForReview), with the history filters; `before` is the last row of the previous page.
   */
  async listHistory(
    shopId: string,
    f: { orderId?: string; status?: string; provider?: string; from?: Date; to?: Date },
    limit: number,
    before?: { createdAt: Date; id: string },
  ): Promise<Payment[]> {
    const createdMs = sql`date_trunc('milliseconds', ${payments.createdAt})`;
    const cursor = before
      ? sql`(${createdMs} < ${before.createdAt.toISOString()}::timestamptz or (${createdMs} = ${before.createdAt.toISOString()}::timestamptz and ${payments.id} < ${before.id}::uuid))`
      : undefined;
    return this.db
      .select()
      .from(payments)
      .where(
        and(
          eq(payments.shopId, shopId),
          f.orderId !== undefined ? eq(payments.orderId, f.orderId) : undefined,
          f.status !== undefined ? eq(payments.status, f.status) : undefined,
          f.provider !== undefined ? eq(payments.provider, f.provider) : undefined,
          f.from ? sql`${payments.createdAt} >= ${f.from.toISOString()}::timestamptz` : undefined,
          f.to ? sql`${payments.createdAt} < ${f.to.toISOString()}::timestamptz` : undefined,
          cursor,
        ),
      )
      .orderBy(desc(createdMs), desc(payments.id))
      .limit(limit);
  }

  // ---- callback inbox

  /**
   * Claims stored callbacks whose processing never finished (the process died, the database
   * failed mid-way): same SKIP LOCKED + lease pattern as claimDuePayments.
   */
  async claimUnprocessedCallbacks(
    limit: number,
    leaseSeconds: number,
    retryAfterSeconds: number,
  ): Promise<(typeof callbackInbox.$inferSelect)[]> {
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
      .set({
        attempts: sql`${callbackInbox.attempts} + 1`,
        nextAttemptAt: sql`now() + make_interval(secs => ${leaseSeconds})`,
      })
      .where(inArray(callbackInbox.id, due))
      .returning();
  }

  async insertCallback(row: typeof callbackInbox.$inferInsert, tx: DbOrTx = this.db): Promise<bigint> {
    const rows = await tx.insert(callbackInbox).values(row).returning({ id: callbackInbox.id });
    if (row.outcome) countNotification(row.provider, row.kind, row.outcome);
    return rows[0].id;
  }

  /**
   * Stores a verified STK callback (its capability URL checked) in ONE autocommit statement, the
   * only write before it is acknowledged. A repeat of what the payment already holds is recognised
   * in the same statement and stored as processed with outcome `duplicate` (the row is its audit
   * record): a completed payment holding this receipt, or a closed payment (completed, failed,
   * cancelled, expired) told of a failure. Anything else is stored unprocessed for the applier
   * (and, should it never finish, the reconciler). The receipt is compared as stored (normalised).
   */
  async insertVerifiedCallback(
    row: {
      urlPaymentId: string;
      checkoutRequestId: string;
      sourceIp: string | null;
      rawBody: string;
    },
    report: { success: boolean; receipt?: string },
  ): Promise<{ id: bigint; duplicate: boolean }> {
    const receipt = report.receipt === undefined ? null : normaliseMpesaReceipt(report.receipt);
    const repeat = report.success
      ? sql`p.status = 'completed' and p.mpesa_receipt_number = ${receipt}::text`
      : sql`p.status in ('completed', 'failed', 'cancelled', 'expired')`;
    const result = await this.db.execute(sql`
      insert into callback_inbox (provider, attempts, url_payment_id, verified, checkout_request_id, source_ip, raw_body, processed_at, outcome)
      select 'mpesa', 1, ${row.urlPaymentId}, true, ${row.checkoutRequestId}, ${row.sourceIp}, ${row.rawBody},
             case when d.repeat then now() end, case when d.repeat then 'duplicate' end
      from (select exists (
        select 1 from payments p
        where p.id = ${row.urlPaymentId} and p.checkout_request_id = ${row.checkoutRequestId} and ${repeat}
      ) as repeat) d
      returning id, outcome`);
    const stored = resultRows(result)[0] as unknown as {
      id: string;
      outcome: string | null;
    };
    const duplicate = stored.outcome === 'duplicate';
    if (duplicate) countNotification('mpesa', null, 'duplicate');
    return { id: BigInt(stored.id), duplicate };
  }

  /**
   * Locks stored callbacks for applying them in `tx` and returns those still unprocessed (ids as
   * text). The applier and a reconciler replay of the same row take this lock first (before the
   * payment's), so one applies the row and the other finds it processed and leaves it: never a
   * second pass that would record the callback again as a duplicate.
   */
  async lockUnfinishedCallbacksIn(tx: Tx, ids: bigint[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const list = `{${ids.map(String).join(',')}}`;
    const result = await tx.execute(sql`
      select id::text as id, processed_at is null as open from callback_inbox
      where id = any(${list}::bigint[]) order by id for update`);
    const rows = resultRows<{ id: string; open: boolean }>(result);
    return new Set(rows.filter((r) => r.open).map((r) => r.id));
  }

  /**
   * Records the outcomes of stored callbacks inside the transaction that applied them, in one
   * statement. A row already recorded (the reconciler replayed it meanwhile: applying twice changed
   * nothing) keeps its outcome.
   */
  async finishCallbacksIn(tx: Tx, outcomes: { id: bigint; outcome: string }[]): Promise<void> {
    if (outcomes.length === 0) return;
    const rows = JSON.stringify(outcomes.map((o) => ({ id: o.id.toString(), outcome: o.outcome })));
    const result = await tx.execute(sql`
      update callback_inbox i set processed_at = now(), outcome = v.outcome
      from jsonb_to_recordset(${rows}::jsonb) as v(id bigint, outcome text)
      where i.id = v.id and i.processed_at is null
      returning i.provider, i.kind, v.outcome`);
    for (const r of resultRows(result) as unknown as {
      provider: string;
      kind: string | null;
      outcome: string;
    }[])
      countNotification(r.provider, r.kind, r.outcome);
  }

  /**
   * Stores an unverified delivery, or counts it on a row already stored in the current
   * `windowSeconds` window (database clock, so every instance agrees) for the same `group`: a
   * payment, or a kind of delivery that names no payment of ours (see callbackInbox.coalesceKey).
   * An unauthenticated flood adds a bounded number of rows per group per window, not one per request.
   *
   * With `distinctBodies` > 1 (a payment's callbacks) a delivery is counted only on a row with the
   * same body; a different body gets its own row, up to `distinctBodies` per group per window, and
   * the rest are counted on one more row. Without it every delivery of the window is counted on
   * the first one's row, which keeps the first body.
   *
   * `first`: this delivery created the row. `finished`: the row's processing had already ended.
   */
  async storeCoalescedCallback(
    row: Omit<typeof callbackInbox.$inferInsert, 'verified'> & { verified?: boolean },
    c: { group: string; windowSeconds: number; distinctBodies?: number },
  ): Promise<{ id: bigint; first: boolean; finished: boolean }> {
    const window = sql`floor(extract(epoch from now()) / ${c.windowSeconds}::int)::bigint::text`;
    const slots = Math.max(1, c.distinctBodies ?? 1);
    // Slot k takes a new body only while it is free; a taken slot counts only its own body.
    const attempts =
      slots === 1
        ? [{ slot: '0', sameBody: false }]
        : [
            ...Array.from({ length: slots }, (_, k) => ({ slot: String(k), sameBody: true })),
            { slot: 'more', sameBody: false },
          ];
    for (const a of attempts) {
      const rows = await this.db
        .insert(callbackInbox)
        .values({ ...row, verified: false, coalesceKey: sql`${c.group} || '|' || ${window} || '|' || ${a.slot}` })
        .onConflictDoUpdate({
          target: callbackInbox.coalesceKey,
          set: { repeats: sql`${callbackInbox.repeats} + 1`, lastReceivedAt: sql`now()` },
          ...(a.sameBody ? { setWhere: sql`${callbackInbox.rawBody} = excluded.raw_body` } : {}),
        })
        .returning({ id: callbackInbox.id, repeats: callbackInbox.repeats, processedAt: callbackInbox.processedAt });
      if (rows[0]) {
        const first = rows[0].repeats === 0;
        // Each delivery counts once: with its outcome when it has one now, else when it is finished (finishIfAnswered).
        if (row.outcome) countNotification(row.provider, row.kind, row.outcome);
        else if (!first) countNotification(row.provider, row.kind, 'coalesced');
        return { id: rows[0].id, first, finished: rows[0].processedAt !== null };
      }
    }
    throw new Error('storeCoalescedCallback: the last slot always takes the delivery');
  }

  /**
   * Finishes a stored unverified delivery of a payment whose state may still change: processed
   * with `outcome` when a lookup claimed after the row's last delivery got an answer
   * (payments.last_answered_at), else left for the reconciler in `deferSeconds`. Returns whether
   * it was finished.
   */
  async finishIfAnswered(id: bigint, paymentId: string, outcome: string, deferSeconds: number): Promise<boolean> {
    const answered = sql`(coalesce(${callbackInbox.lastReceivedAt}, ${callbackInbox.receivedAt}) <= coalesce((select ${payments.lastAnsweredAt} from ${payments} where ${payments.id} = ${paymentId}), '-infinity'::timestamptz))`;
    const rows = await this.db
      .update(callbackInbox)
      .set({
        processedAt: sql`case when ${answered} then now() else null end`,
        outcome: sql`case when ${answered} then ${outcome}::text else null end`,
        nextAttemptAt: sql`case when ${answered} then ${callbackInbox.nextAttemptAt} else now() + make_interval(secs => ${deferSeconds}) end`,
      })
      .where(eq(callbackInbox.id, id))
      .returning({
        processedAt: callbackInbox.processedAt,
        provider: callbackInbox.provider,
        kind: callbackInbox.kind,
      });
    const finished = rows[0]?.processedAt != null;
    if (finished) countNotification(rows[0].provider, rows[0].kind, outcome);
    return finished;
  }

  /** Leaves a stored callback unprocessed (reopening it if it was finished), for the reconciler to try again in `afterSeconds`. */
  /** Takes back the attempt a claim counted, for a claim that could not try the row (its provider is off on this instance); the lease stays. */
  async uncountCallbackAttempt(id: bigint): Promise<void> {
    await this.db
      .update(callbackInbox)
      .set({ attempts: sql`greatest(${callbackInbox.attempts} - 1, 0)` })
      .where(eq(callbackInbox.id, id));
  }

  async deferCallback(id: bigint, afterSeconds: number): Promise<void> {
    await this.db
      .update(callbackInbox)
      .set({ processedAt: null, outcome: null, nextAttemptAt: sql`now() + make_interval(secs => ${afterSeconds})` })
      .where(eq(callbackInbox.id, id));
  }

  /**
   * Retention: deletes up to `limit` unverified rows processed with one of `outcomes` (ones that
   * changed nothing) whose last delivery and processing are older than `olderThanDays`. Verified
   * rows are never touched. Rows another instance is deleting are skipped.
   */
  async deleteStaleUnverifiedCallbacks(
    olderThanDays: number,
    outcomes: readonly string[],
    limit: number,
  ): Promise<number> {
    const cutoff = sql`now() - make_interval(days => ${olderThanDays}::int)`;
    const stale = this.db
      .select({ id: callbackInbox.id })
      .from(callbackInbox)
      .where(
        and(
          eq(callbackInbox.verified, false),
          sql`${callbackInbox.processedAt} is not null`,
          lt(callbackInbox.processedAt, cutoff),
          lt(sql`coalesce(${callbackInbox.lastReceivedAt}, ${callbackInbox.receivedAt})`, cutoff),
          inArray(callbackInbox.outcome, [...outcomes]),
        ),
      )
      .orderBy(asc(callbackInbox.processedAt))
      .limit(limit)
      .for('update', { skipLocked: true });
    const rows = await this.db
      .delete(callbackInbox)
      .where(inArray(callbackInbox.id, stale))
      .returning({ id: callbackInbox.id });
    return rows.length;
  }

  async markCallbackProcessed(id: bigint, outcome: string): Promise<void> {
    const [row] = await this.db
      .update(callbackInbox)
      .set({ processedAt: sql`now()`, outcome })
      .where(eq(callbackInbox.id, id))
      .returning({ provider: callbackInbox.provider, kind: callbackInbox.kind });
    if (row) countNotification(row.provider, row.kind, outcome);
  }

  // ---- idempotency keys

  async insertIdempotencyKey(
    shopId: string,
    key: string,
    requestHash: string,
    paymentId: string,
    tx: DbOrTx = this.db,
    refundId?: string,
  ): Promise<void> {
    await tx.insert(idempotencyKeys).values({ shopId, key, requestHash, paymentId, refundId: refundId ?? null });
  }

  async findIdempotencyKey(shopId: string, key: string): Promise<IdempotencyRecord | null> {
    const rows = await this.keyLookup.execute({ shopId, key });
    return rows[0] ?? null;
  }

  async storeIdempotentResponse(
    shopId: string,
    key: string,
    status: number,
    body: unknown,
    tx: DbOrTx = this.db,
  ): Promise<void> {
    await tx
      .update(idempotencyKeys)
      .set({ responseStatus: status, responseBody: body })
      .where(
        and(eq(idempotencyKeys.shopId, shopId), eq(idempotencyKeys.key, key), isNull(idempotencyKeys.responseStatus)),
      );
  }
}
