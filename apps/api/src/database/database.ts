import { PGlite } from '@electric-sql/pglite';
import { DrizzleQueryError, sql } from 'drizzle-orm';
import { drizzle as drizzlePg, NodePgDatabase } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import { drizzle as drizzlePglite, PgliteDatabase } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import type { PgDatabase, PgQueryResultHKT, PgTransaction } from 'drizzle-orm/pg-core';
import type { ExtractTablesWithRelations } from 'drizzle-orm';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { Client, Pool } from 'pg';
import { lockPgliteDir } from './pglite-lock';
import { discardPgliteTemplate, isEmptyPgliteDir, loadPgliteTemplate, seedPgliteDir } from './pglite-template';
import { MIGRATIONS_FOLDER } from '../config/paths';
import { schema } from './schema';

type Schema = typeof schema;
/** The drizzle database, whichever driver is behind it (node-postgres or PGlite): one SQL dialect. */
export type Db = PgDatabase<PgQueryResultHKT, Schema>;
export type Tx = PgTransaction<PgQueryResultHKT, Schema, ExtractTablesWithRelations<Schema>>;
/** Repositories accept either the database or an open transaction. */
export type DbOrTx = Db | Tx;

export { MIGRATIONS_FOLDER };
/** V8's default is 1,800,000 (roughly bytes of code executed per function before it is optimised). */
const PGLITE_WASM_TIERING_BUDGET = 18_000_000;
/** Arbitrary constant key for the migration advisory lock (instances booting together migrate once). */
const MIGRATION_LOCK_KEY = 727_001;

export interface DatabaseHandle {
  db: Db;
  kind: 'postgres' | 'pglite';
  /** The node-postgres pool behind `db` (kind 'postgres' only), for code that needs a pg client (the shared rate limiter). */
  pool?: Pool;
  /** Runs the versioned migrations (idempotent, serialised across instances). */
  migrate(): Promise<void>;
  ping(): Promise<void>;
  /** How many of this build's migrations the database has not applied (readiness: an instance ahead of its database is not ready). */
  pendingMigrations(): Promise<number>;
  /**
   * LISTEN on `channel` (a NOTIFY sent inside a transaction arrives when it commits). `live` is
   * told false when the listening connection is lost (notifications may be missed from then on:
   * a cache must stop trusting itself) and true once it listens again.
   */
  listen(channel: string, handlers: ChangeFeedHandlers): Promise<ChangeFeed>;
  close(): Promise<void>;
}

export interface ChangeFeedHandlers {
  onNotify(payload: string): void;
  onLive?(live: boolean): void;
}

export interface ChangeFeed {
  /** Whether the feed is listening now (false between a lost connection and its reconnection). */
  readonly live: boolean;
  close(): Promise<void>;
}

const CHANNEL_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
/** The listening connection answers a query this often, within the timeout, or it counts as lost. */
const HEARTBEAT_INTERVAL_MS = 3_000;
const HEARTBEAT_TIMEOUT_MS = 2_000;

/**
 * A dedicated node-postgres connection that LISTENs (a pooled one would be handed to queries).
 * On a lost connection it reports not-live and reconnects with backoff (0.5 s doubling to 10 s).
 */
async function pgChangeFeed(databaseUrl: string, channel: string, handlers: ChangeFeedHandlers): Promise<ChangeFeed> {
  let live = false;
  let closed = false;
  let client: Client | undefined;
  let retryMs = 500;
  let timer: NodeJS.Timeout | undefined;
  const setLive = (v: boolean) => {
    if (live === v) return;
    live = v;
    handlers.onLive?.(v);
  };
  const connect = async (): Promise<void> => {
    const c = new Client({
      connectionString: databaseUrl,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      connectionTimeoutMillis: 5_000,
      // Findable in pg_stat_activity (an operator, or a test, can tell the feeds from the pool).
      application_name: `smartduka-listen-${channel}`,
    });
    let lost = false;
    const onLost = () => {
      if (lost) return;
      lost = true;
      setLive(false);
      c.end().catch(() => undefined);
      if (!closed) schedule();
    };
    c.on('error', onLost);
    c.on('end', onLost);
    c.on('notification', (msg) => {
      if (msg.channel === channel) handlers.onNotify(msg.payload ?? '');
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${channel}`);
    } catch (err) {
      onLost();
      throw err;
    }
    if (closed) {
      await c.end().catch(() => undefined);
      return;
    }
    client = c;
    retryMs = 500;
    setLive(true);
    // A connection can die without a FIN (failover, NAT, a proxy losing its upstream): nothing
    // would arrive, and nothing would say so. A query every few seconds that must answer in time
    // tells; keepAlive alone would take the OS's two hours.
    const beat = setInterval(() => {
      if (lost || closed) return clearInterval(beat);
      let timeout: NodeJS.Timeout | undefined;
      Promise.race([
        c.query('select 1'),
        new Promise((_, reject) => {
          timeout = setTimeout(() => reject(new Error('heartbeat timed out')), HEARTBEAT_TIMEOUT_MS);
        }),
      ])
        .catch(onLost)
        .finally(() => clearTimeout(timeout));
    }, HEARTBEAT_INTERVAL_MS);
    beat.unref();
  };
  const schedule = () => {
    if (timer || closed) return;
    timer = setTimeout(() => {
      timer = undefined;
      connect().catch(() => undefined);
    }, retryMs);
    timer.unref();
    retryMs = Math.min(retryMs * 2, 10_000);
  };
  // The first connection is awaited (boot fails loudly on a bad URL); later ones retry forever.
  await connect();
  return {
    get live() {
      return live;
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      live = false;
      await client?.end().catch(() => undefined);
    },
  };
}

export interface OpenDatabaseOptions {
  databaseUrl?: string;
  /** PGlite data folder; undefined = in-memory. */
  pgliteDir?: string;
  poolSize?: number;
  /** Longest wait for a new connection (pg's connectionTimeoutMillis): a database that never answers fails the request (503), it does not hang it. */
  connectTimeoutMs?: number;
  /** Server-side statement_timeout of pooled connections (0 = none): a statement stuck behind a lock fails (503) instead of holding the request. Migrations run without it. */
  statementTimeoutMs?: number;
  /**
   * Told when the server ends a pooled connection (failover, pg_terminate_backend,
   * idle_in_transaction_session_timeout, a proxy restart), e.g. to log it. Only the SQLSTATE and
   * the server's message: never query text or parameters.
   */
  onConnectionLost?: (info: { code?: string; message: string }) => void;
}

export async function openDatabase(options: OpenDatabaseOptions): Promise<DatabaseHandle> {
  if (options.databaseUrl) {
    // keepAlive: a connection whose server vanished without a FIN (failover) is noticed, not kept forever.
    // keepAliveInitialDelayMillis: probes start after 10 s idle instead of the OS's 2 h.
    const pool = new Pool({
      connectionString: options.databaseUrl,
      max: options.poolSize ?? 10,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
      ...(options.statementTimeoutMs ? { statement_timeout: options.statementTimeoutMs } : {}),
    });
    const lost = (err: unknown) => {
      const e = err as { code?: unknown; message?: unknown };
      options.onConnectionLost?.({
        code: typeof e?.code === 'string' ? e.code : undefined,
        message: String(e?.message ?? err).slice(0, 200),
      });
    };
    // A connection the server ends emits 'error' on its pg Client. pg-pool listens only while the
    // client is idle in the pool; a checked-out client (a request's query, a transaction waiting
    // for OAuth under the token lock) has no listener, and an unhandled 'error' event ends the
    // process. So every client gets its own listener for life: the query or transaction using it
    // fails (the request answers 503 DATABASE_UNAVAILABLE), and the pool discards the client on
    // release (it is no longer queryable) and opens a new one for the next request.
    pool.on('connect', (client) => {
      let reported = false; // the server's FATAL message, then the socket's end: one loss
      client.on('error', (err) => {
        if (!reported) lost(err);
        reported = true;
      });
    });
    // An idle client's error (reported above too): pg-pool has removed it; the next query gets a new connection.
    pool.on('error', () => undefined);
    const db = drizzlePg(pool, { schema }) as NodePgDatabase<Schema>;
    return {
      db: db as unknown as Db,
      kind: 'postgres',
      pool,
      async migrate() {
        const client = await pool.connect();
        try {
          // Another instance may hold the lock for as long as its migrations take.
          await client.query('set statement_timeout = 0');
          await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
          try {
            await migratePg(drizzlePg(client, { schema }), { migrationsFolder: MIGRATIONS_FOLDER });
          } finally {
            await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
          }
        } finally {
          // Not back into the pool with statement_timeout 0: a fresh connection gets the pool's settings.
          client.release(true);
        }
      },
      async ping() {
        await db.execute(sql`select 1`);
      },
      pendingMigrations: () => countPendingMigrations(db),
      async listen(channel, handlers) {
        if (!CHANNEL_NAME.test(channel)) throw new Error(`bad channel name ${channel}`);
        return pgChangeFeed(options.databaseUrl as string, channel, handlers);
      },
      // Once, however many shutdown paths ask (Nest's shutdown hooks and main's signal handler both
      // do): a second pool.end() rejects ("Called end on pool more than once") and ended the process with 1.
      close: once(() => pool.end()),
    };
  }
  // V8 re-compiles a WebAssembly function with its optimising compiler (TurboFan, on background
  // threads) once it has run a budget's worth; opening PGlite runs much of postgres once, and the
  // default budget had those threads spend 0.4-0.7 s of CPU during the start, competing with the
  // start itself on a 2-core machine. Ten times the budget halves that; functions that stay hot
  // are still optimised (the same query speed after the start, measured: bench/README.md §4).
  // Only PGlite's WebAssembly is affected.
  setFlagsFromString(`--wasm-tiering-budget=${PGLITE_WASM_TIERING_BUDGET}`);
  let client: PGlite;
  let unlock = () => {};
  if (options.pgliteDir) {
    // One process per folder (pglite-lock.ts), claimed before it is seeded or opened.
    unlock = lockPgliteDir(options.pgliteDir);
    try {
      // First start on an empty folder: copy the pre-migrated template directory instead of running
      // initdb, or else load its tarball.
      const seeded = await seedPgliteDir(options.pgliteDir);
      const template = !seeded && isEmptyPgliteDir(options.pgliteDir) ? loadPgliteTemplate() : undefined;
      mkdirSync(options.pgliteDir, { recursive: true });
      client = new PGlite(options.pgliteDir, template ? { loadDataDir: template } : {});
      try {
        await client.waitReady;
      } catch (err) {
        if (!seeded) throw err;
        // The folder was copied from the template a moment ago and does not open: the template is
        // broken (files lost from node_modules/.cache, a partial copy of the install). Without
        // this, every start would fail on the copy it left. The copy and the template go (the
        // next install or build makes a new one) and this start makes its database the slow way.
        process.stderr.write(
          `The pre-migrated PGlite template did not open (${err instanceof Error ? err.message : String(err)}): removed; creating the database without it\n`,
        );
        discardPgliteTemplate();
        rmSync(options.pgliteDir, { recursive: true, force: true });
        mkdirSync(options.pgliteDir, { recursive: true });
        client = new PGlite(options.pgliteDir);
        await client.waitReady;
      }
    } catch (err) {
      unlock();
      throw err;
    }
  } else {
    // In memory (tests without DATABASE_URL): the template saves initdb here too.
    const template = loadPgliteTemplate();
    client = template ? new PGlite({ loadDataDir: template }) : new PGlite();
  }
  await client.waitReady;
  const db = drizzlePglite(client, { schema }) as PgliteDatabase<Schema>;
  return {
    db: db as unknown as Db,
    kind: 'pglite',
    async migrate() {
      await migratePglite(db, { migrationsFolder: MIGRATIONS_FOLDER });
    },
    async ping() {
      await db.execute(sql`select 1`);
    },
    pendingMigrations: () => countPendingMigrations(db as unknown as Db),
    async listen(channel, handlers) {
      if (!CHANNEL_NAME.test(channel)) throw new Error(`bad channel name ${channel}`);
      // One process owns a PGlite database: its NOTIFYs reach its own listeners, and it cannot lose them.
      const unlisten = await client.listen(channel, (payload) => handlers.onNotify(payload));
      let live = true;
      handlers.onLive?.(true);
      return {
        get live() {
          return live;
        },
        async close() {
          live = false;
          await unlisten().catch(() => undefined);
        },
      };
    },
    close: once(() => client.close().finally(unlock)),
  };
}

/** This build's migrations (their journal timestamps), read once. */
let migrationStamps: number[] | undefined;

/**
 * Migrations of this build newer than the newest the database recorded (drizzle applies exactly
 * those, by their journal timestamp, and records each in drizzle.__drizzle_migrations).
 */
async function countPendingMigrations(db: Db): Promise<number> {
  migrationStamps ??= readMigrationFiles({ migrationsFolder: MIGRATIONS_FOLDER }).map((m) => m.folderMillis);
  const res = await db
    .execute(
      sql`
    select coalesce(max(created_at), 0)::text as last from drizzle.__drizzle_migrations
  `,
    )
    .catch((err: unknown) => {
      if (pgErrorCode(err) === '42P01' || pgErrorCode(err) === '3F000') return undefined; // never migrated
      throw err;
    });
  if (!res) return migrationStamps.length;
  const rows = resultRows<{ last: string }>(res);
  const last = Number(rows[0]?.last ?? 0);
  return migrationStamps.filter((t) => t > last).length;
}

export function pgliteDirFor(dataDir: string): string {
  return join(dataDir, 'pglite');
}

/** SQLSTATE of a Postgres error, whether raw or wrapped by drizzle (err.cause.code). */
export function pgErrorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 3 && e && typeof e === 'object'; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

export function pgConstraint(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 3 && e && typeof e === 'object'; i++) {
    const c =
      (e as { constraint?: unknown; constraint_name?: unknown }).constraint ??
      (e as { constraint_name?: unknown }).constraint_name;
    if (typeof c === 'string') return c;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The rows of a db.execute result, whichever driver ran it (node-postgres: { rows }, PGlite: the rows). */
export function resultRows<T = Record<string, unknown>>(res: unknown): T[] {
  return ((res as { rows?: unknown[] }).rows ?? (res as unknown[])) as T[];
}

export const UNIQUE_VIOLATION = '23505';

/** Node socket errors: from the database driver they mean the server cannot be reached. */
const NET_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNABORTED',
]);
/** node-postgres / pg-pool messages for a connection that is gone or could not be had. */
const LOST_CONNECTION_MESSAGE =
  /Connection terminated|is not queryable|timeout exceeded when trying to connect|Connection terminated due to connection timeout|Cannot use a pool after calling end/i;

/**
 * Whether `err` (raw, or wrapped by drizzle in err.cause) says the database connection was lost or
 * could not be opened, rather than that the statement was wrong: FATAL/PANIC server errors (the
 * session is gone: 57P01 admin shutdown, 25P03 idle-in-transaction timeout, refused logins), SQLSTATE
 * class 08 (connection exception), 57P0x (shutdown, cannot connect now), 53300 (too many
 * connections), 57014 (statement_timeout: the database did not answer in time), the driver's "Connection terminated" / "not queryable" errors, and socket errors
 * raised under a database query. Such a request is answered 503 DATABASE_UNAVAILABLE.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  let e: unknown = err;
  let underQuery = false;
  for (let i = 0; i < 5 && e && typeof e === 'object'; i++) {
    if (e instanceof DrizzleQueryError) underQuery = true;
    const { code, severity, message } = e as { code?: unknown; severity?: unknown; message?: unknown };
    if (severity === 'FATAL' || severity === 'PANIC') return true;
    if (typeof code === 'string') {
      if (
        /^08[0-9A-Z]{3}$/.test(code) ||
        /^57P0[1-4]$/.test(code) ||
        code === '53300' ||
        code === '25P03' ||
        code === '57014'
      )
        return true;
      if (underQuery && NET_ERROR_CODES.has(code)) return true;
    }
    // (not drizzle's wrapper: its message carries the query's parameters, i.e. client input)
    if (!(e instanceof DrizzleQueryError) && typeof message === 'string' && LOST_CONNECTION_MESSAGE.test(message))
      return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * What is safe and useful to log about a lost database connection: the SQLSTATE and the driver's
 * or server's own message (innermost cause), never drizzle's wrapper (its message and stack carry
 * the query's parameters: callback bodies, phone numbers).
 */
export function describeDatabaseError(err: unknown): { code?: string; message: string } {
  let e: unknown = err;
  let message = 'database unavailable';
  for (let i = 0; i < 5 && e && typeof e === 'object'; i++) {
    const m = (e as { message?: unknown }).message;
    if (!(e instanceof DrizzleQueryError) && typeof m === 'string') message = m.split('\n')[0].slice(0, 200);
    e = (e as { cause?: unknown }).cause;
  }
  return { code: pgErrorCode(err), message };
}

/** `fn` runs on the first call; later calls get the same promise. */
function once(fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= fn());
}
