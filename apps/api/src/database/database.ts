import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { drizzle as drizzlePg, NodePgDatabase } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import { drizzle as drizzlePglite, PgliteDatabase } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import type { PgDatabase, PgQueryResultHKT, PgTransaction } from 'drizzle-orm/pg-core';
import type { ExtractTablesWithRelations } from 'drizzle-orm';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Pool } from 'pg';
import { isEmptyPgliteDir, loadPgliteTemplate } from './pglite-template';
import { schema } from './schema';

type Schema = typeof schema;
/** The drizzle database, whichever driver is behind it (node-postgres or PGlite): one SQL dialect. */
export type Db = PgDatabase<PgQueryResultHKT, Schema>;
export type Tx = PgTransaction<PgQueryResultHKT, Schema, ExtractTablesWithRelations<Schema>>;
/** Repositories accept either the database or an open transaction. */
export type DbOrTx = Db | Tx;

export const MIGRATIONS_FOLDER = resolve(__dirname, '../../drizzle');
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
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  databaseUrl?: string;
  /** PGlite data folder; undefined = in-memory. */
  pgliteDir?: string;
  poolSize?: number;
}

export async function openDatabase(options: OpenDatabaseOptions): Promise<DatabaseHandle> {
  if (options.databaseUrl) {
    const pool = new Pool({ connectionString: options.databaseUrl, max: options.poolSize ?? 10 });
    // An idle client error must not crash the process; the next query reports it.
    pool.on('error', () => undefined);
    const db = drizzlePg(pool, { schema }) as NodePgDatabase<Schema>;
    return {
      db: db as unknown as Db,
      kind: 'postgres',
      pool,
      async migrate() {
        const client = await pool.connect();
        try {
          await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
          try {
            await migratePg(drizzlePg(client, { schema }), { migrationsFolder: MIGRATIONS_FOLDER });
          } finally {
            await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
          }
        } finally {
          client.release();
        }
      },
      async ping() {
        await db.execute(sql`select 1`);
      },
      async close() {
        await pool.end();
      },
    };
  }
  let client: PGlite;
  if (options.pgliteDir) {
    // First start on an empty folder: load the pre-migrated template instead of running initdb.
    const template = isEmptyPgliteDir(options.pgliteDir) ? loadPgliteTemplate() : undefined;
    mkdirSync(options.pgliteDir, { recursive: true });
    client = new PGlite(options.pgliteDir, template ? { loadDataDir: template } : {});
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
    async close() {
      await client.close();
    },
  };
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
    const c = (e as { constraint?: unknown; constraint_name?: unknown }).constraint ?? (e as { constraint_name?: unknown }).constraint_name;
    if (typeof c === 'string') return c;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

export const UNIQUE_VIOLATION = '23505';
