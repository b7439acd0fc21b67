import { Inject, Injectable } from '@nestjs/common';
import { and, desc, eq, gte, inArray, lte, ne, or, SQL, sql } from 'drizzle-orm';
import { DB } from '../../../database/database.module';
import { resultRows, type Db, type DbOrTx, type Tx } from '../../../database/database';
import {
  C2bRegistrationRow,
  c2bRegistrations,
  C2bTransactionRow,
  c2bTransactions,
  merchantAccounts,
  NewC2bTransactionRow,
  Payment,
  payments,
} from '../../../database/schema';
import { normaliseMpesaReceipt } from './receipt';

/**
 * Namespace (first key) of the two-int advisory locks taken per shop and TransID (see
 * lockTransIdOfShop); distinct from the other features' namespaces (727_002 tokens, 727_040 settings).
 */
const C2B_TRANS_LOCK_NAMESPACE = 727_060;

export interface StoredC2b {
  row: C2bTransactionRow;
  /** false: a repeat delivery of a TransID already stored for this account (counted on its row) */
  first: boolean;
}

/** The only code that touches c2b_transactions and c2b_registrations. */
@Injectable()
export class C2bRepository {
  constructor(@Inject(DB) private readonly db: Db) {}

  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.db.transaction(fn);
  }

  /**
   * Stores a confirmation, or counts a repeat delivery of one already stored (same account and
   * TransID) on its row: one statement, so two deliveries at once still make one row.
   */
  async store(row: NewC2bTransactionRow, tx: DbOrTx = this.db): Promise<StoredC2b> {
    const rows = await tx
      .insert(c2bTransactions)
      .values(row)
      .onConflictDoUpdate({
        target: [c2bTransactions.merchantAccountId, c2bTransactions.transId],
        set: { deliveries: sql`${c2bTransactions.deliveries} + 1`, lastReceivedAt: sql`now()` },
      })
      .returning();
    const stored = rows[0];
    return { row: stored, first: stored.id === row.id };
  }

  /**
   * Serialises, until the transaction ends, everything that stores a TransID for this shop: the
   * unique index is per account row, so two deliveries of one TransID on two of the shop's account
   * rows at once (the old row's registered URLs and the Pull pass, or the new row's URLs, after a
   * rotation) would each find no row under the other (inOtherAccount) and both insert. Its own
   * statement: the next one's snapshot then sees what the holder committed.
   */
  async lockTransIdOfShop(tx: Tx, shopId: string, transId: string): Promise<void> {
    await tx.execute(
      sql`select pg_advisory_xact_lock(${C2B_TRANS_LOCK_NAMESPACE}::int, hashtext(${shopId} || ':' || ${transId}))`,
    );
  }

  /**
   * The shop's row of this TransID under another of its account rows. Account rows are immutable
   * (rotating a secret makes a new one), but the C2B URLs registered at Safaricom (one-time) still
   * name the row they were registered for: its confirmations keep arriving there while the Pull
   * pass works with the shop's current row. One TransID is one row for the shop, whichever it is.
   */
  async inOtherAccount(
    shopId: string,
    accountId: string,
    transId: string,
    tx: DbOrTx = this.db,
  ): Promise<C2bTransactionRow | null> {
    const rows = await tx
      .select()
      .from(c2bTransactions)
      .where(
        and(
          eq(c2bTransactions.shopId, shopId),
          eq(c2bTransactions.transId, transId),
          ne(c2bTransactions.merchantAccountId, accountId),
        ),
      )
      .orderBy(c2bTransactions.receivedAt)
      .limit(1);
    return rows[0] ?? null;
  }

  /** A repeat delivery counted on an existing row (the same as store()'s conflict branch). */
  async countDelivery(id: string, tx: DbOrTx = this.db): Promise<StoredC2b> {
    const rows = await tx
      .update(c2bTransactions)
      .set({ deliveries: sql`${c2bTransactions.deliveries} + 1`, lastReceivedAt: sql`now()` })
      .where(eq(c2bTransactions.id, id))
      .returning();
    return { row: rows[0], first: false };
  }

  /**
   * store() in ONE autocommit statement for a confirmation whose whole matching is its receipt
   * check (C2bMatching.unclaimedUnlessHeld): the row is written in the state matching would give
   * it when no payment holds its receipt (checked in the same statement), else `received` for
   * C2bMatching.match to decide. A repeat is counted on its row as store() does (the values given
   * here are not used then), so a repeat too is this one statement.
   */
  async storeDecided(
    row: NewC2bTransactionRow & { transId: string },
    ifReceiptFree: { status: string; statusReason: string },
  ): Promise<StoredC2b> {
    const free = sql`not exists (select 1 from ${payments} where ${payments.mpesaReceiptNumber} = ${normaliseMpesaReceipt(row.transId)})`;
    const rows = await this.db
      .insert(c2bTransactions)
      .values({
        ...row,
        status: sql`case when ${free} then ${ifReceiptFree.status} else ${row.status} end`,
        statusReason: sql`case when ${free} then ${ifReceiptFree.statusReason} else ${row.statusReason ?? null}::text end`,
      })
      .onConflictDoUpdate({
        target: [c2bTransactions.merchantAccountId, c2bTransactions.transId],
        set: { deliveries: sql`${c2bTransactions.deliveries} + 1`, lastReceivedAt: sql`now()` },
      })
      .returning();
    const stored = rows[0];
    return { row: stored, first: stored.id === row.id };
  }

  /** A pulled transaction: inserted when the account has no row of its TransID yet, else nothing at all (null). */
  async storeIfNew(row: NewC2bTransactionRow, tx: DbOrTx = this.db): Promise<StoredC2b | null> {
    const rows = await tx
      .insert(c2bTransactions)
      .values(row)
      .onConflictDoNothing({ target: [c2bTransactions.merchantAccountId, c2bTransactions.transId] })
      .returning();
    return rows[0] ? { row: rows[0], first: true } : null;
  }

  async lock(tx: Tx, id: string): Promise<C2bTransactionRow | null> {
    const rows = await tx.select().from(c2bTransactions).where(eq(c2bTransactions.id, id)).for('update');
    return rows[0] ?? null;
  }

  async findForShop(shopId: string, id: string, tx: DbOrTx = this.db): Promise<C2bTransactionRow | null> {
    const rows = await tx
      .select()
      .from(c2bTransactions)
      .where(and(eq(c2bTransactions.shopId, shopId), eq(c2bTransactions.id, id)));
    return rows[0] ?? null;
  }

  async update(id: string, patch: Partial<NewC2bTransactionRow>, tx: DbOrTx = this.db): Promise<void> {
    await tx
      .update(c2bTransactions)
      .set({ ...patch, updatedAt: sql`now()` })
      .where(eq(c2bTransactions.id, id));
  }

  /**
   * A cashier takes an unclaimed payment: the row moves out of `unclaimed` only if it is still
   * there, so of two cashiers pressing at once the second one's UPDATE (which waits for the first's
   * row lock, then re-reads the row) changes nothing and returns null.
   */
  async claim(tx: Tx, shopId: string, id: string, by: string, orderId: string): Promise<C2bTransactionRow | null> {
    const rows = await tx
      .update(c2bTransactions)
      .set({ status: 'received', claimedBy: by, claimedAt: sql`now()`, orderId, updatedAt: sql`now()` })
      .where(
        and(eq(c2bTransactions.id, id), eq(c2bTransactions.shopId, shopId), eq(c2bTransactions.status, 'unclaimed')),
      )
      .returning();
    return rows[0] ?? null;
  }

  /**
   * The shop's unclaimed payments, newest first; those whose receipt a payment of the same shop, or
   * one made with the same account (a chain branch's, with the head office's credentials), already
   * holds (the STK callback of the same money came after) are not offered. `receipt`: only
   * that TransID. Rows whose receipt another shop's payment took meanwhile are moved to review
   * first (parkReceiptsOfOtherShops), never offered nor silently hidden.
   */
  async feed(shopId: string, limit: number, receipt?: string): Promise<C2bTransactionRow[]> {
    await this.parkReceiptsOfOtherShops(shopId);
    return this.db
      .select()
      .from(c2bTransactions)
      .where(
        and(
          eq(c2bTransactions.shopId, shopId),
          eq(c2bTransactions.status, 'unclaimed'),
          receipt ? eq(c2bTransactions.transId, receipt) : undefined,
          sql`not exists (select 1 from ${payments} where ${payments.mpesaReceiptNumber} = ${c2bTransactions.transId}
            and (${payments.shopId} = ${c2bTransactions.shopId} or ${payments.merchantAccountId} = ${c2bTransactions.merchantAccountId}))`,
        ),
      )
      .orderBy(desc(c2bTransactions.receivedAt))
      .limit(limit);
  }

  /**
   * An unclaimed row of the shop (or only row `id`) whose receipt a payment of ANOTHER shop, made
   * with another account, holds
   * (it took the receipt after this row was matched) goes to review as RECEIPT_OF_ANOTHER_SHOP, as
   * C2bMatching.matchIn does when that payment came first: the same receipt in two shops is never
   * one shop's money to claim, and nothing of the other shop is shown. Idempotent; returns how many.
   */
  async parkReceiptsOfOtherShops(shopId: string, id?: string, tx: DbOrTx = this.db): Promise<number> {
    const rows = await tx
      .update(c2bTransactions)
      .set({ status: 'review', statusReason: 'RECEIPT_OF_ANOTHER_SHOP', updatedAt: sql`now()` })
      .where(
        and(
          eq(c2bTransactions.shopId, shopId),
          eq(c2bTransactions.status, 'unclaimed'),
          id ? eq(c2bTransactions.id, id) : undefined,
          sql`exists (select 1 from ${payments} where ${payments.mpesaReceiptNumber} = ${c2bTransactions.transId}
            and ${payments.shopId} <> ${c2bTransactions.shopId}
            and ${payments.merchantAccountId} is distinct from ${c2bTransactions.merchantAccountId})`,
        ),
      )
      .returning({ id: c2bTransactions.id });
    return rows.length;
  }

  /** The shop's confirmations a person must look at (invalid bodies, ambiguous pushes, receipts of another shop), newest first. */
  async needingReview(shopId: string, limit: number): Promise<C2bTransactionRow[]> {
    await this.parkReceiptsOfOtherShops(shopId);
    return this.db
      .select()
      .from(c2bTransactions)
      .where(and(eq(c2bTransactions.shopId, shopId), inArray(c2bTransactions.status, ['invalid', 'review'])))
      .orderBy(desc(c2bTransactions.receivedAt))
      .limit(limit);
  }

  /**
   * M-Pesa payments made with this account (the shop's own, or a chain branch's with the head
   * office's credentials: the confirmation came on that account's URLs), or with another of the
   * shop's account rows of the same environment and shortcode (credentials rotated since the URLs
   * were registered: the push was made with the new row, its confirmation comes on the old row's
   * URLs), whose outcome is open or unknown, of this amount and phone (keyed hash), created within
   * [from, to]: the pushes a confirmation could settle. At most 3 (one, or proof it is ambiguous).
   */
  async unsettledPushes(
    accountId: string,
    amountMinor: bigint,
    phoneHash: string,
    from: Date,
    to: Date,
    tx: DbOrTx = this.db,
  ): Promise<Payment[]> {
    return tx
      .select()
      .from(payments)
      .where(
        and(
          eq(payments.provider, 'mpesa'),
          or(
            eq(payments.merchantAccountId, accountId),
            sql`${payments.merchantAccountId} in (
              select sib.id from ${merchantAccounts} sib join ${merchantAccounts} cur on cur.id = ${accountId}
              where sib.shop_id = cur.shop_id and sib.provider = cur.provider
                and sib.environment = cur.environment
                and sib.settings->>'shortcode' = cur.settings->>'shortcode')`,
          ),
          eq(payments.amountMinor, amountMinor),
          eq(payments.phoneHash, phoneHash),
          gte(payments.createdAt, from),
          lte(payments.createdAt, to),
          sql`${payments.mpesaReceiptNumber} is null`,
          // Only pushes whose outcome nobody can tell us: unresolved (the push's answer was lost), or
          // parked as OUTCOME_UNKNOWN. Not 'initiated' (still being sent) nor 'pending' (Daraja answers
          // for it: its callback or STK query settles it, as the statement matcher leaves such pushes).
          or(
            eq(payments.status, 'unresolved'),
            and(eq(payments.status, 'review'), eq(payments.statusReason, 'OUTCOME_UNKNOWN')),
          ),
        ),
      )
      .limit(3);
  }

  /**
   * Confirmations stored but not matched (the process died between storing and matching, or matching
   * failed) for at least `olderThanSeconds`, each taken for that long (updated_at is its lease): the
   * retry pass matches them, one instance per row at a time.
   */
  async takeUnmatched(limit: number, olderThanSeconds: number): Promise<string[]> {
    const rows = await this.db.execute(sql`
      update ${c2bTransactions} set updated_at = now()
      where id in (
        select id from ${c2bTransactions}
        where status = 'received' and updated_at < now() - make_interval(secs => ${olderThanSeconds})
        order by updated_at limit ${limit} for update skip locked)
      returning id`);
    const list = resultRows<{ id: string }>(rows);
    return list.map((r) => r.id);
  }

  /**
   * A row stored alone after its request's matching failed: nobody is matching it any more, so its
   * lease (updated_at, see takeUnmatched) is given up at once and the next retry pass takes it (a
   * till payment reaches the shop's feed in one reconciler interval, not after the lease).
   */
  async releaseForRetry(id: string, leaseSeconds: number, tx: DbOrTx = this.db): Promise<void> {
    await tx.execute(sql`
      update ${c2bTransactions} set updated_at = now() - make_interval(secs => ${leaseSeconds})
      where id = ${id} and status = 'received'`);
  }

  // --- registrations -------------------------------------------------------------------------

  /** The newest registration (by registeredAt) that `where` selects. */
  private async newestRegistration(where: SQL | undefined, tx: DbOrTx): Promise<C2bRegistrationRow | null> {
    const rows = await tx
      .select()
      .from(c2bRegistrations)
      .where(where)
      .orderBy(desc(c2bRegistrations.registeredAt))
      .limit(1);
    return rows[0] ?? null;
  }

  async latestRegistration(accountId: string, tx: DbOrTx = this.db): Promise<C2bRegistrationRow | null> {
    return this.newestRegistration(eq(c2bRegistrations.merchantAccountId, accountId), tx);
  }

  /** The newest registration of this shortcode and environment, by any shop's M-Pesa account (Safaricom keeps one per shortcode). */
  async latestForShortcode(
    shortcode: string,
    environment: string,
    tx: DbOrTx = this.db,
  ): Promise<C2bRegistrationRow | null> {
    return this.newestRegistration(
      and(eq(c2bRegistrations.shortcode, shortcode), eq(c2bRegistrations.environment, environment)),
      tx,
    );
  }

  /** The shop's newest registration of this shortcode and environment, by any of its account rows (one made before its credentials were rotated, too). */
  async latestOfShop(
    shopId: string,
    shortcode: string,
    environment: string,
    tx: DbOrTx = this.db,
  ): Promise<C2bRegistrationRow | null> {
    return this.newestRegistration(
      and(
        eq(c2bRegistrations.shopId, shopId),
        eq(c2bRegistrations.shortcode, shortcode),
        eq(c2bRegistrations.environment, environment),
      ),
      tx,
    );
  }

  /**
   * The registration of this shortcode and environment whose URLs Safaricom holds, as far as we
   * know, seen from `shopId`: the newest one that is this shop's (whatever its outcome) or another
   * shop's whose answer was recorded. Another shop's attempt whose answer never came (`sent`,
   * `unknown`) is passed over: most likely Daraja refused its credentials for a shortcode that is
   * not theirs, and such an attempt must not switch this shop's QR off.
   */
  async inForceFor(
    shortcode: string,
    environment: string,
    shopId: string,
    tx: DbOrTx = this.db,
  ): Promise<C2bRegistrationRow | null> {
    return this.newestRegistration(
      and(
        eq(c2bRegistrations.shortcode, shortcode),
        eq(c2bRegistrations.environment, environment),
        or(
          eq(c2bRegistrations.shopId, shopId),
          sql`coalesce(${c2bRegistrations.response}->>'outcome', '') not in ('sent', 'unknown')`,
        ),
      ),
      tx,
    );
  }

  /** Every registration of the environment, newest first (the embedded simulator's restore: dev only, a few rows). */
  async registrationsOf(environment: string, tx: DbOrTx = this.db): Promise<C2bRegistrationRow[]> {
    return tx
      .select()
      .from(c2bRegistrations)
      .where(eq(c2bRegistrations.environment, environment))
      .orderBy(desc(c2bRegistrations.registeredAt));
  }

  async insertRegistration(row: typeof c2bRegistrations.$inferInsert, tx: DbOrTx = this.db): Promise<void> {
    await tx.insert(c2bRegistrations).values(row);
  }

  async setRegistrationResponse(id: string, response: Record<string, unknown>, tx: DbOrTx = this.db): Promise<void> {
    await tx.update(c2bRegistrations).set({ response }).where(eq(c2bRegistrations.id, id));
  }

  async deleteRegistration(id: string, tx: DbOrTx = this.db): Promise<void> {
    await tx.delete(c2bRegistrations).where(eq(c2bRegistrations.id, id));
  }
}
