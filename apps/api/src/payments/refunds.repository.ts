import { Inject, Injectable } from '@nestjs/common';
import { and, asc, desc, eq, inArray, isNull, lte, or, sql } from 'drizzle-orm';
import { DB } from '../database/database.module';
import type { Db, DbOrTx, Tx } from '../database/database';
import { NewRefund, Refund, refunds } from '../database/schema';
import { OPEN_REFUND_STATUSES } from './refunds.types';

/** The only code that touches the refunds table. */
@Injectable()
export class RefundsRepository {
  constructor(@Inject(DB) private readonly db: Db) {}

  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.db.transaction(fn);
  }

  async insert(row: NewRefund, tx: DbOrTx = this.db): Promise<Refund> {
    const rows = await tx.insert(refunds).values(row).returning();
    return rows[0]!;
  }

  /** SELECT … FOR UPDATE: serialises every state change of one refund, across instances. */
  async lock(tx: Tx, id: string): Promise<Refund | null> {
    const rows = await tx.select().from(refunds).where(eq(refunds.id, id)).for('update');
    return rows[0] ?? null;
  }

  async findById(id: string, tx: DbOrTx = this.db): Promise<Refund | null> {
    const rows = await tx.select().from(refunds).where(eq(refunds.id, id));
    return rows[0] ?? null;
  }

  async findForShop(shopId: string, id: string): Promise<Refund | null> {
    const rows = await this.db
      .select()
      .from(refunds)
      .where(and(eq(refunds.shopId, shopId), eq(refunds.id, id)));
    return rows[0] ?? null;
  }

  async findByProviderRefundId(
    provider: string,
    providerRefundId: string,
    tx: DbOrTx = this.db,
  ): Promise<Refund | null> {
    const rows = await tx
      .select()
      .from(refunds)
      .where(and(eq(refunds.provider, provider), eq(refunds.providerRefundId, providerRefundId)));
    return rows[0] ?? null;
  }

  /** A payment's refunds, oldest first. */
  listForPayment(paymentId: string, tx: DbOrTx = this.db): Promise<Refund[]> {
    return tx
      .select()
      .from(refunds)
      .where(eq(refunds.paymentId, paymentId))
      .orderBy(asc(refunds.createdAt), asc(refunds.id));
  }

  async update(id: string, patch: Partial<NewRefund>, tx: DbOrTx = this.db): Promise<void> {
    await tx
      .update(refunds)
      .set({ ...patch, updatedAt: sql`now()` })
      .where(eq(refunds.id, id));
  }

  /**
   * Claims open refunds that are due (next_check_at passed) and held by nobody, for `token`: FOR
   * UPDATE SKIP LOCKED so instances never take the same one, and a claim with a lease, so a crashed
   * instance's claims pass to the others when it ends. A batch is looked at one refund after another:
   * renew each claim (renewClaim) just before its look, and release it (releaseClaim) after.
   */
  async claimDue(limit: number, leaseSeconds: number, token: string): Promise<Refund[]> {
    const due = this.db
      .select({ id: refunds.id })
      .from(refunds)
      .where(
        and(
          inArray(refunds.status, [...OPEN_REFUND_STATUSES]),
          lte(refunds.nextCheckAt, sql`now()`),
          or(isNull(refunds.claimedUntil), lte(refunds.claimedUntil, sql`now()`)),
        ),
      )
      .orderBy(asc(refunds.nextCheckAt))
      .limit(limit)
      .for('update', { skipLocked: true });
    return this.db
      .update(refunds)
      .set({
        nextCheckAt: sql`now() + make_interval(secs => ${leaseSeconds})`,
        claimedUntil: sql`now() + make_interval(secs => ${leaseSeconds})`,
        claimedBy: token,
      })
      .where(inArray(refunds.id, due))
      .returning();
  }

  /** Claims one refund in `statuses` whatever its schedule (reconcile-now, settle), unless someone holds it; null then. */
  async claimOne(id: string, statuses: readonly string[], leaseSeconds: number, token: string): Promise<Refund | null> {
    const rows = await this.db
      .update(refunds)
      .set({ claimedUntil: sql`now() + make_interval(secs => ${leaseSeconds})`, claimedBy: token })
      .where(
        and(
          eq(refunds.id, id),
          inArray(refunds.status, [...statuses]),
          or(isNull(refunds.claimedUntil), lte(refunds.claimedUntil, sql`now()`), eq(refunds.claimedBy, token)),
        ),
      )
      .returning();
    return rows[0] ?? null;
  }

  /** A fresh lease for a claim `token` still holds (its lease not over); null when it lost it. Returns the row as it is now. */
  async renewClaim(id: string, leaseSeconds: number, token: string): Promise<Refund | null> {
    const rows = await this.db
      .update(refunds)
      .set({ claimedUntil: sql`now() + make_interval(secs => ${leaseSeconds})` })
      .where(and(eq(refunds.id, id), eq(refunds.claimedBy, token), sql`${refunds.claimedUntil} > now()`))
      .returning();
    return rows[0] ?? null;
  }

  /** Ends `token`'s claim (a claim someone else took over after its lease is left alone). */
  async releaseClaim(id: string, token: string): Promise<void> {
    await this.db
      .update(refunds)
      .set({ claimedUntil: null, claimedBy: null })
      .where(and(eq(refunds.id, id), eq(refunds.claimedBy, token)));
  }

  /** Next time the reconciler may look at this refund (also ends the current claim). */
  async schedule(id: string, afterSeconds: number, countAttempt: boolean, tx: DbOrTx = this.db): Promise<void> {
    await tx
      .update(refunds)
      .set({
        nextCheckAt: sql`now() + make_interval(secs => ${afterSeconds})`,
        ...(countAttempt ? { reconcileAttempts: sql`${refunds.reconcileAttempts} + 1` } : {}),
      })
      .where(eq(refunds.id, id));
  }

  /** A shop's refunds, newest first, optionally only those in `statuses`. */
  listForShop(shopId: string, limit: number, statuses?: readonly string[]): Promise<Refund[]> {
    return this.db
      .select()
      .from(refunds)
      .where(and(eq(refunds.shopId, shopId), statuses?.length ? inArray(refunds.status, [...statuses]) : undefined))
      .orderBy(desc(refunds.createdAt), desc(refunds.id))
      .limit(limit);
  }
}
