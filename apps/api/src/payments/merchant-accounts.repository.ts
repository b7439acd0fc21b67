import { Inject, Injectable } from '@nestjs/common';
import { and, asc, desc, eq, gt, isNull, lt, ne, sql } from 'drizzle-orm';
import { DB } from '../database/database.module';
import type { Db, DbOrTx, Tx } from '../database/database';
import { auditEvents, merchantAccounts, MerchantAccountRow, NewMerchantAccountRow, payments } from '../database/schema';

/** Channel of the change feed: the payload is `<shopId>|<provider>` of the shop whose account changed. */
export const MERCHANT_ACCOUNTS_CHANNEL = 'merchant_accounts_changed';

export interface AuditEventInput {
  shopId: string;
  actor: string;
  action: string;
  target: string;
  data?: Record<string, unknown>;
}

/** The fields of an account its capability URLs need (MerchantAccountsRepository.findRouteFields). */
export interface AccountRouteFields {
  id: string;
  shopId: string;
  provider: string;
  settings: unknown;
}

/** The only code that touches merchant_accounts and audit_events. */
@Injectable()
export class MerchantAccountsRepository {
  constructor(@Inject(DB) private readonly db: Db) {}

  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.db.transaction(fn);
  }

  async findActive(shopId: string, provider: string, tx: DbOrTx = this.db): Promise<MerchantAccountRow | null> {
    const rows = await tx
      .select()
      .from(merchantAccounts)
      .where(
        and(
          eq(merchantAccounts.shopId, shopId),
          eq(merchantAccounts.provider, provider),
          isNull(merchantAccounts.retiredAt),
        ),
      )
      .limit(1);
    return rows[0] ?? null;
  }

  async findById(id: string, tx: DbOrTx = this.db): Promise<MerchantAccountRow | null> {
    const rows = await tx.select().from(merchantAccounts).where(eq(merchantAccounts.id, id)).limit(1);
    return rows[0] ?? null;
  }

  /**
   * What a capability URL of the account needs to know of it (C2B notifications): never the
   * sealed secrets, fingerprints or verification. These columns never change for a row (a change
   * of account retires the row and inserts a new one).
   */
  async findRouteFields(id: string, tx: DbOrTx = this.db): Promise<AccountRouteFields | null> {
    const rows = await tx
      .select({
        id: merchantAccounts.id,
        shopId: merchantAccounts.shopId,
        provider: merchantAccounts.provider,
        settings: merchantAccounts.settings,
      })
      .from(merchantAccounts)
      .where(eq(merchantAccounts.id, id))
      .limit(1);
    return rows[0] ?? null;
  }

  /**
   * Whether the shop has another account row with this provider than `id` (an older one, retired
   * when credentials were rotated, or a newer one): its C2B rows may then sit under either.
   */
  async hasOtherRows(shopId: string, provider: string, id: string): Promise<boolean> {
    const rows = await this.db
      .select({ id: merchantAccounts.id })
      .from(merchantAccounts)
      .where(
        and(eq(merchantAccounts.shopId, shopId), eq(merchantAccounts.provider, provider), ne(merchantAccounts.id, id)),
      )
      .limit(1);
    return rows.length > 0;
  }

  /** Whether the shop ever had an account with the provider (active or retired). */
  async hadAccount(shopId: string, provider: string): Promise<boolean> {
    const rows = await this.db
      .select({ id: merchantAccounts.id })
      .from(merchantAccounts)
      .where(and(eq(merchantAccounts.shopId, shopId), eq(merchantAccounts.provider, provider)))
      .limit(1);
    return rows.length > 0;
  }

  /** Every active account of a shop (one per provider). */
  async listActive(shopId: string): Promise<MerchantAccountRow[]> {
    return this.db
      .select()
      .from(merchantAccounts)
      .where(and(eq(merchantAccounts.shopId, shopId), isNull(merchantAccounts.retiredAt)))
      .orderBy(asc(merchantAccounts.provider));
  }

  /** Serialises changes to one shop's account for one provider (two writers never both insert). */
  async lockShopProvider(shopId: string, provider: string, tx: Tx): Promise<void> {
    await tx.execute(sql`select pg_advisory_xact_lock(727003, hashtext(${`${shopId}|${provider}`}))`);
  }

  /** Retires the shop's active row (if any) and inserts the new one, in the caller's transaction. */
  async replaceActive(row: NewMerchantAccountRow, tx: Tx): Promise<MerchantAccountRow | null> {
    const previous = await this.retireActive(row.shopId, row.provider, tx);
    await tx.insert(merchantAccounts).values(row);
    return previous;
  }

  async retireActive(shopId: string, provider: string, tx: Tx): Promise<MerchantAccountRow | null> {
    const rows = await tx
      .update(merchantAccounts)
      .set({ retiredAt: sql`now()` })
      .where(
        and(
          eq(merchantAccounts.shopId, shopId),
          eq(merchantAccounts.provider, provider),
          isNull(merchantAccounts.retiredAt),
        ),
      )
      .returning();
    return rows[0] ?? null;
  }

  /** Active accounts that borrow `shopId`'s credentials (a chain's branches). */
  async countLinkedTo(shopId: string, provider: string, tx: DbOrTx = this.db): Promise<number> {
    const rows = await tx
      .select({ n: sql<number>`count(*)::int` })
      .from(merchantAccounts)
      .where(
        and(
          eq(merchantAccounts.credentialsShopId, shopId),
          eq(merchantAccounts.provider, provider),
          isNull(merchantAccounts.retiredAt),
        ),
      );
    return rows[0]?.n ?? 0;
  }

  async recordVerification(
    id: string,
    verification: Record<string, unknown>,
    tx: DbOrTx = this.db,
  ): Promise<{ verifiedAt: Date } | null> {
    const rows = await tx
      .update(merchantAccounts)
      .set({ verification, verifiedAt: sql`now()` })
      .where(eq(merchantAccounts.id, id))
      .returning({ verifiedAt: merchantAccounts.verifiedAt });
    return rows[0]?.verifiedAt ? { verifiedAt: rows[0].verifiedAt } : null;
  }

  /** Tells every instance (at commit) that this shop's account changed. */
  async notifyChanged(shopId: string, provider: string, tx: Tx): Promise<void> {
    await tx.execute(sql`select pg_notify(${MERCHANT_ACCOUNTS_CHANNEL}, ${`${shopId}|${provider}`})`);
  }

  /** Sealed rows not sealed with `keyId`, in id order after `afterId` (re-encryption pages through them). */
  async pageSealedNotUnder(keyId: string, afterId: string | null, limit: number): Promise<MerchantAccountRow[]> {
    const conditions = [sql`${merchantAccounts.secrets} is not null`, ne(merchantAccounts.keyId, keyId)];
    if (afterId) conditions.push(gt(merchantAccounts.id, afterId));
    return this.db
      .select()
      .from(merchantAccounts)
      .where(and(...conditions))
      .orderBy(asc(merchantAccounts.id))
      .limit(limit);
  }

  /** Re-seals one row, only if it still holds the ciphertext the caller read (compare-and-set). */
  async reseal(
    id: string,
    from: string,
    to: { secrets: string; keyId: string; fingerprints: Record<string, string> },
    tx: Tx,
  ): Promise<boolean> {
    const rows = await tx
      .update(merchantAccounts)
      .set(to)
      .where(and(eq(merchantAccounts.id, id), eq(merchantAccounts.secrets, from)))
      .returning({ id: merchantAccounts.id });
    return rows.length === 1;
  }

  /** The newest rows sealed with `keyId`. */
  async newestSealedWith(keyId: string, limit: number): Promise<MerchantAccountRow[]> {
    return this.db
      .select()
      .from(merchantAccounts)
      .where(eq(merchantAccounts.keyId, keyId))
      .orderBy(desc(merchantAccounts.createdAt))
      .limit(limit);
  }

  /** How many sealed rows each key id holds. */
  async countByKey(): Promise<Record<string, number>> {
    const rows = await this.db
      .select({ keyId: merchantAccounts.keyId, n: sql<number>`count(*)::int` })
      .from(merchantAccounts)
      .where(sql`${merchantAccounts.secrets} is not null`)
      .groupBy(merchantAccounts.keyId);
    return Object.fromEntries(rows.map((r) => [r.keyId as string, r.n]));
  }

  /** Open payments made with this account row (they keep using it until they settle). */
  async countOpenPayments(accountId: string): Promise<number> {
    const rows = await this.db
      .select({ n: sql<number>`count(*)::int` })
      .from(payments)
      .where(
        and(eq(payments.merchantAccountId, accountId), sql`${payments.status} in ('initiated','pending','unresolved')`),
      );
    return rows[0]?.n ?? 0;
  }

  async insertAudit(e: AuditEventInput, tx: DbOrTx = this.db): Promise<void> {
    await tx.insert(auditEvents).values({ ...e, data: e.data ?? null });
  }

  /** Newest first; `before` (an event id) pages back. */
  async listAudit(shopId: string, limit: number, before?: bigint): Promise<(typeof auditEvents.$inferSelect)[]> {
    const conds = [eq(auditEvents.shopId, shopId)];
    if (before !== undefined) conds.push(lt(auditEvents.id, before));
    return this.db
      .select()
      .from(auditEvents)
      .where(and(...conds))
      .orderBy(desc(auditEvents.id))
      .limit(limit);
  }
}
