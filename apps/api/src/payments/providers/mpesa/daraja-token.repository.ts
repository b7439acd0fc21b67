import { Inject, Injectable } from '@nestjs/common';
import { and, eq, sql } from 'drizzle-orm';
import { DB } from '../../../database/database.module';
import type { Db } from '../../../database/database';
import { providerTokens } from '../../../database/schema';
import { isUsableToken, RefreshOptions, StoredToken, TokenStore } from './token-store';

/**
 * Namespace (first key) of the two-int advisory locks taken per token key. Two-int advisory
 * locks never conflict with single-bigint ones (e.g. the migration lock), and the namespace
 * keeps hashtext(key) collisions with other features' two-int locks out.
 */
const TOKEN_LOCK_NAMESPACE = 727_002;

/**
 * PgTokenStore: the Daraja OAuth token shared by all API instances through `provider_tokens`.
 * A refresh holds a transaction-scoped advisory lock for the key while it calls OAuth, so N
 * instances refresh once per token lifetime. The OAuth call runs inside the transaction; it is
 * short and bounded by the HTTP timeout. The token is a short-lived (≈1 h) credential: it is
 * stored but never logged. The only code that touches provider_tokens.
 */
@Injectable()
export class DarajaTokenRepository implements TokenStore {
  constructor(@Inject(DB) private readonly db: Db) {}

  async get(key: string): Promise<StoredToken | null> {
    const rows = await this.db
      .select({ token: providerTokens.token, expiresAt: providerTokens.expiresAt })
      .from(providerTokens)
      .where(eq(providerTokens.key, key));
    return rows[0] ? toStored(rows[0]) : null;
  }

  async refreshUnderLock(
    key: string,
    fetchFresh: () => Promise<StoredToken>,
    opts: RefreshOptions = {},
  ): Promise<StoredToken> {
    return this.db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(${TOKEN_LOCK_NAMESPACE}::int, hashtext(${key}))`);
      const rows = await tx
        .select({ token: providerTokens.token, expiresAt: providerTokens.expiresAt })
        .from(providerTokens)
        .where(eq(providerTokens.key, key));
      const current = rows[0] ? toStored(rows[0]) : null;
      if (isUsableToken(current, opts.rejectToken)) return current;

      const fresh = await fetchFresh();
      const expiresAt = new Date(fresh.expiresAt);
      await tx
        .insert(providerTokens)
        .values({ key, token: fresh.token, expiresAt })
        .onConflictDoUpdate({
          target: providerTokens.key,
          set: { token: fresh.token, expiresAt, updatedAt: sql`now()` },
        });
      return { token: fresh.token, expiresAt: fresh.expiresAt };
    });
  }

  async invalidate(key: string, token: string): Promise<void> {
    await this.db.delete(providerTokens).where(and(eq(providerTokens.key, key), eq(providerTokens.token, token)));
  }
}

function toStored(row: { token: string; expiresAt: Date | string }): StoredToken {
  const expiresAt = row.expiresAt instanceof Date ? row.expiresAt.getTime() : new Date(row.expiresAt).getTime();
  return { token: row.token, expiresAt };
}

/** The Postgres TokenStore (same class; the name used in the design notes). */
export { DarajaTokenRepository as PgTokenStore };
