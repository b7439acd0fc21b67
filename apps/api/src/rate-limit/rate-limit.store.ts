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

/** One counter of consumeShopThenPhone: its full key (the limiter's `<prefix>:<key>`), its window and its limit. */
export interface CounterTake {
  key: string;
  windowMs: number;
  points: number;
}

/** A counter after its point was added: the points in its window and when the window ends (epoch ms). */
export interface CounterState {
  points: number;
  expire: number;
}

/**
 * The upsert of RateLimiterPostgres's consume (the same row layout and window rule: a counter
 * whose window ended starts again at 1 with a new window), for the shop's counter and then the
 * phone's, in ONE statement: one round trip and one commit per push instead of two. The phone's
 * point is added only when the shop's counter is still within its limit, as when the two were
 * taken one after the other. `phone` is undefined when the shop's limit refused the point (the
 * caller gives that point back, as the library's refused consume would need).
 */
export async function consumeShopThenPhone(
  pool: Pool,
  shop: CounterTake,
  phone: CounterTake,
): Promise<{ shop: CounterState; phone?: CounterState }> {
  const now = Date.now();
  const t = RATE_LIMIT_TABLE;
  const upsert = (expire: string) => `on conflict (key) do update set
      points = case when c.expire <= $5::bigint then 1 else c.points + 1 end,
      expire = case when c.expire <= $5::bigint then ${expire} else c.expire end
    returning points, expire`;
  const res = await pool.query<{ name: string; points: number; expire: string }>({
    name: 'smartduka-rl-shop-then-phone',
    text: `with shop as (
      insert into ${t} as c values ($1::varchar, 1, $2::bigint) ${upsert('$2::bigint')}
    ), phone as (
      insert into ${t} as c select $3::varchar, 1, $4::bigint from shop where shop.points <= $6::int ${upsert('$4::bigint')}
    )
    select 'shop' as name, points, expire from shop
    union all
    select 'phone' as name, points, expire from phone`,
    values: [shop.key, now + shop.windowMs, phone.key, now + phone.windowMs, now, shop.points],
  });
  const state = (name: string): CounterState | undefined => {
    const r = res.rows.find((row) => row.name === name);
    return r ? { points: Number(r.points), expire: Number(r.expire) } : undefined;
  };
  const shopState = state('shop');
  if (!shopState) throw new Error('rate-limit store: the shop counter was not returned');
  return { shop: shopState, phone: state('phone') };
}
