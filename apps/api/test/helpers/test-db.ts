import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { DatabaseHandle, openDatabase } from '../../src/database/database';

/**
 * A fresh, migrated database for one test file: a new database on the Postgres server named by
 * DATABASE_URL (dropped afterwards), or an in-memory PGlite when DATABASE_URL is unset.
 */
export interface TestDatabase {
  handle: DatabaseHandle;
  url?: string;
  dispose(): Promise<void>;
}

/** `skipMigrations`: an empty Postgres database the test migrates itself (Postgres only: PGlite starts from the migrated template). */
export async function createTestDatabase(
  options: { pglite?: boolean; skipMigrations?: boolean } = {},
): Promise<TestDatabase> {
  const baseUrl = options.pglite ? undefined : process.env.DATABASE_URL;
  if (!baseUrl && options.skipMigrations) throw new Error('skipMigrations needs DATABASE_URL');
  if (!baseUrl) {
    const handle = await openDatabase({});
    await handle.migrate();
    return { handle, dispose: () => handle.close() };
  }
  const name = `sd_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  const handle = await openDatabase({ databaseUrl: url.toString(), poolSize: 10 });
  if (!options.skipMigrations) await handle.migrate();
  return {
    handle,
    url: url.toString(),
    async dispose() {
      await handle.close();
      const c = new Client({ connectionString: baseUrl });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

/** The database name in a test database URL (refuses anything that is not one of ours). */
function testDatabaseName(url: string): string {
  const name = new URL(url).pathname.slice(1);
  if (!/^sd_test_[0-9a-z_]+$/.test(name)) throw new Error(`not a test database: ${name}`);
  return name;
}

/** Runs `fn` on a connection to the server's default database (DATABASE_URL), not the test database. */
async function withAdmin<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ connectionString: process.env.DATABASE_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/**
 * pg_terminate_backend on every connection to the test database `url` names (that database only,
 * never the asking connection): what a failover, a proxy restart or an operator does to the API's
 * pooled connections. Returns how many were terminated.
 */
export function terminateBackends(url: string): Promise<number> {
  const name = testDatabaseName(url);
  return withAdmin(async (c) => {
    const res = await c.query<{ n: number }>(
      `select count(*) filter (where pg_terminate_backend(pid))::int as n from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()`,
      [name],
    );
    return res.rows[0].n;
  });
}

/** Connections to the test database in `state`, e.g. 'idle in transaction'. */
export function backendsInState(
  url: string,
  state: string,
  only: { queryLike?: string; forMs?: number } = {},
): Promise<number> {
  const name = testDatabaseName(url);
  return withAdmin(async (c) => {
    const res = await c.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity where datname = $1 and pid <> pg_backend_pid() and state = $2
         and ($3::text is null or query like $3) and now() - state_change >= make_interval(secs => $4::float8 / 1000)`,
      [name, state, only.queryLike ?? null, only.forMs ?? 0],
    );
    return res.rows[0].n;
  });
}

/** ALTER DATABASE <the test database> <clause>, e.g. `ALLOW_CONNECTIONS false`. */
export function alterTestDatabase(url: string, clause: string): Promise<void> {
  const name = testDatabaseName(url);
  return withAdmin(async (c) => {
    await c.query(`alter database ${name} ${clause}`);
  });
}
