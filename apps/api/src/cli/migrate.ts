import { ConfigValidationError, loadConfig, loadDotEnv } from '../config/app-config';
import { openDatabase, pgliteDirFor } from '../database/database';

/** Applies pending migrations to DATABASE_URL (or the embedded PGlite data folder). */
async function main(): Promise<void> {
  loadDotEnv();
  const config = loadConfig(process.env);
  const db = await openDatabase({
    databaseUrl: config.databaseUrl,
    poolSize: config.databasePoolSize,
    pgliteDir: config.databaseUrl ? undefined : pgliteDirFor(config.dataDir),
  });
  await db.migrate();
  await db.close();
  process.stdout.write(`migrations applied (${db.kind})\n`);
}

main().catch((err) => {
  process.stderr.write((err instanceof ConfigValidationError ? err.message : String(err)) + '\n');
  process.exit(1);
});
