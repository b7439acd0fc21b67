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
export async function createTestDatabase(options: { pglite?: boolean; skipMigrations?: boolean } = {}): Promise<TestDatabase> {
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
