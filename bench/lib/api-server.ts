/**
 * The API as a benchmark child process: what main.ts does (config from the environment, open the
 * database, migrate, createApp, listen), minus the embedded simulator and the dev banner, plus an
 * IPC channel so the benchmark can ask for memory figures and stop it cleanly.
 *
 * Env: the app's own variables (NODE_ENV, LOG_LEVEL, DATABASE_URL, MPESA_*, ...), plus
 *   BENCH_DB_POOL_SIZE  node-postgres pool size (unset = the app's default, as in production)
 *   BENCH_PGLITE_DIR    PGlite data folder when DATABASE_URL is unset ('' = in-memory)
 * Started with --expose-gc, 'gc' collects garbage before measuring (leak checks).
 */
import './reflect';
const loadStarted = performance.now();
import { createApp } from '../../apps/api/src/bootstrap';
import { loadConfig } from '../../apps/api/src/config/app-config';
import { openDatabase } from '../../apps/api/src/database/database';
import { PaymentEventsService } from '../../apps/api/src/payments/payment-events.service';
import { countSql } from '../../apps/api/test/helpers/sql-count';
import { memorySnapshot, serveParent } from './procs';

/**
 * BENCH_TRACE_QUERIES=1: count the SQL statements and durable commits the API sends (diagnostics;
 * IPC 'queries': statements by text, 'sqlCost': totals). Counted as the statement-count test does.
 */
const sqlCount = process.env.BENCH_TRACE_QUERIES === '1' ? countSql() : undefined;

async function main(): Promise<void> {
  const modulesMs = performance.now() - loadStarted;
  const config = loadConfig(process.env);
  const poolSize = process.env.BENCH_DB_POOL_SIZE ? Number(process.env.BENCH_DB_POOL_SIZE) : config.databasePoolSize;
  const t0 = performance.now();
  const database = await openDatabase(
    config.databaseUrl
      ? { databaseUrl: config.databaseUrl, poolSize }
      : { pgliteDir: process.env.BENCH_PGLITE_DIR || undefined },
  );
  await database.migrate();
  const dbMs = performance.now() - t0;
  const t1 = performance.now();
  const app = await createApp({ config, database, closeDatabaseOnShutdown: true, bufferLogs: true });
  await app.listen(config.port, '127.0.0.1');
  const appMs = performance.now() - t1;
  serveParent(
    {
      port: config.port,
      databaseKind: database.kind,
      poolSize: poolSize ?? 'default',
      bootMs: {
        modules: Math.round(modulesMs),
        database: Math.round(dbMs),
        app: Math.round(appMs),
        sinceProcessStart: Math.round(performance.now()),
      },
    },
    {
      mem: () => memorySnapshot(),
      /** live status streams open on this instance (live-status.bench.ts) */
      streams: () => app.get(PaymentEventsService).openStreams,
      queries: () => {
        const out = Object.fromEntries(sqlCount?.byText ?? []);
        sqlCount?.reset();
        return out;
      },
      sqlCost: () => {
        const out = {
          statements: sqlCount?.statements ?? 0,
          commits: sqlCount?.commits ?? 0,
          byText: Object.fromEntries(sqlCount?.byText ?? []),
        };
        sqlCount?.reset();
        return out;
      },
      gc: () => {
        (globalThis as { gc?: () => void }).gc?.();
        return memorySnapshot();
      },
    },
    async () => {
      await app.close();
    },
  );
}

main().catch((err) => {
  process.stderr.write(`api-server failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
