import { Inject, Injectable } from '@nestjs/common';
import { eq, sql } from 'drizzle-orm';
import { DB } from '../../../database/database.module';
import type { Db } from '../../../database/database';
import { providerSettings } from '../../../database/schema';

/**
 * Namespace (first key) of the two-int advisory locks taken per provider_settings key (the Daraja
 * token store uses 727_002, migrations the single-bigint 727_001).
 */
const SETTINGS_LOCK_NAMESPACE = 727_040;

/**
 * Small per-deployment provider state in `provider_settings` (key → jsonb), e.g. the Pesapal IPN
 * registration. Values are never secrets. Writes that need a provider call (register once, for all
 * instances) happen under a transaction-scoped advisory lock on the key. The only code that
 * touches provider_settings.
 */
@Injectable()
export class ProviderSettingsRepository {
  constructor(@Inject(DB) private readonly db: Db) {}

  async get<T>(key: string): Promise<T | null> {
    const rows = await this.db
      .select({ value: providerSettings.value })
      .from(providerSettings)
      .where(eq(providerSettings.key, key));
    return rows[0] ? (rows[0].value as T) : null;
  }

  /**
   * Returns the stored value when `keep(current)` accepts it; otherwise calls `produce(current)`
   * and stores its result. Runs under an advisory lock on `key`, so when several instances find
   * the value missing at once only one produces it (the others wait, then keep what it stored).
   * `produce` runs inside the transaction: keep it short (it is bounded by the provider's HTTP
   * timeout). A failing `produce` stores nothing.
   */
  async getOrProduce<T>(
    key: string,
    keep: (current: T | null) => boolean,
    produce: (current: T | null) => Promise<T>,
  ): Promise<{ value: T; produced: boolean }> {
    return this.db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(${SETTINGS_LOCK_NAMESPACE}::int, hashtext(${key}))`);
      const rows = await tx
        .select({ value: providerSettings.value })
        .from(providerSettings)
        .where(eq(providerSettings.key, key));
      const current = rows[0] ? (rows[0].value as T) : null;
      if (keep(current)) return { value: current as T, produced: false };
      const value = await produce(current);
      await tx
        .insert(providerSettings)
        .values({ key, value })
        .onConflictDoUpdate({ target: providerSettings.key, set: { value, updatedAt: sql`now()` } });
      return { value, produced: true };
    });
  }
}
