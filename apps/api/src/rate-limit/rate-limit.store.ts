import type { Pool } from 'pg';

/**
 * The shared limiter counters live in one Postgres table, in the layout RateLimiterPostgres reads
 * and writes (key, points, expire = epoch ms). It is not part of the drizzle schema: the limiter
 * library owns its SQL, and the table holds only short-lived counters (no business data, nothing
 * to migrate). drizzle's migrator only runs the files in drizzle/ and drizzle-kit generate diffs
 * schema.ts against its snapshots, so an extra table breaks neither; no migration may ever use
 * this name.
 */
export const RATE_LIMIT_TABLE = 'rate_limit_counters';

/** Serialises the CREATE TABLE of instances booting together (the bigint form; migrations use 727_001). */
const TABLE_LOCK_KEY = 727_101;

/**
 * Creates the counters table if missing. Two concurrent `CREATE TABLE IF NOT EXISTS` can both see
 * no table and the loser fails on pg_type's unique index; the transaction-scoped advisory lock
 * makes the second instance wait and then find the table. The limiter is then built with
 * tableCreated: true so it never issues DDL itself.
 */
export async function ensureRateLimitTable(pool: Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    await client.query('select pg_advisory_xact_lock($1)', [TABLE_LOCK_KEY]);
    await client.query(`create table if not exists ${RATE_LIMIT_TABLE} (
      key varchar(255) primary key,
      points integer not null default 0,
      expire bigint
    )`);
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** Deletes counters whose window ended before `beforeEpochMs` (an expired row is also reset in place by the next consume). */
export async function deleteExpiredCounters(pool: Pool, beforeEpochMs: number): Promise<number> {
  const res = await pool.query(`delete from ${RATE_LIMIT_TABLE} where expire < $1`, [beforeEpochMs]);
  return res.rowCount ?? 0;
}
