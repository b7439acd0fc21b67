import type { NestExpressApplication } from '@nestjs/platform-express';
import { DarajaSimulator, SimulatorOptions, startDarajaSimulator } from '@smartduka/daraja-simulator';
import { sql } from 'drizzle-orm';
import { createServer } from 'node:net';
import request from 'supertest';
import type { Role } from '../../src/auth/auth.types';
import { mintToken } from '../../src/auth/token';
import { createApp } from '../../src/bootstrap';
import { maskCheckoutRequestId } from '../../src/common/mask';
import { CallbackApplier } from '../../src/payments/callback-applier';
import { AppConfig, loadConfig, SANDBOX_PASSKEY } from '../../src/config/app-config';
import type { DatabaseHandle, Db } from '../../src/database/database';
import { Logger } from 'nestjs-pino';
import {
  appLogDestination,
  configSecrets,
  LOG_LEVEL_CANARY,
  recordSecrets,
  simulatorLog,
  TEST_SCAN_LOG_LEVEL,
  testLogDir,
} from '../log-scan/sink';
import { createTestDatabase, TestDatabase } from './test-db';

export const TEST_JWT_SECRET = 'test-jwt-secret-0123456789abcdefghijklmnop';
export const TEST_CALLBACK_SECRET = 'test-callback-secret-0123456789abcdefghij';

export interface TestApp {
  app: NestExpressApplication;
  config: AppConfig;
  sim: DarajaSimulator;
  db: Db;
  database: TestDatabase;
  baseUrl: string;
  http: () => ReturnType<typeof request>;
  token(shopId?: string, role?: Role, sub?: string): string;
  /** resolves once every callback this app acknowledged so far has been applied (they apply after the answer) */
  callbacksApplied(): Promise<void>;
  close(): Promise<void>;
}

export interface TestAppOptions {
  env?: Record<string, string>;
  sim?: SimulatorOptions;
  /** force the embedded PGlite database even when DATABASE_URL is set */
  pglite?: boolean;
  /** listen on this port (e.g. one a provider simulator was already told to call back on) */
  port?: number;
  /** the app's own database handle, opened on the test database's URL (e.g. through a proxy, with other pool settings); closed with the app */
  database?: (testDatabase: TestDatabase) => Promise<DatabaseHandle>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** The config startTestApp uses, for an app on `port` talking to the simulator at `simUrl`. */
export function testConfig(simUrl: string, port: number, env: Record<string, string> = {}): AppConfig {
  return loadConfig({
    NODE_ENV: 'test',
    // `pnpm test` scans the run's logs (test/log-scan): then apps log everything, to files.
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? (testLogDir() ? TEST_SCAN_LOG_LEVEL : 'silent'),
    PORT: String(port),
    MPESA_ENV: 'simulator',
    MPESA_BASE_URL: simUrl,
    MPESA_CONSUMER_KEY: 'smartduka-sim-key',
    MPESA_CONSUMER_SECRET: 'smartduka-sim-secret',
    JWT_SECRET: TEST_JWT_SECRET,
    CALLBACK_SIGNING_SECRET: TEST_CALLBACK_SECRET,
    MPESA_CALLBACK_URL: `http://127.0.0.1:${port}/payments/callback`,
    MPESA_STATUS_QUERY_AFTER_SECONDS: '0',
    MPESA_HTTP_TIMEOUT_MS: '1500',
    ...env,
  });
}

export interface ExtraTestApp {
  app: NestExpressApplication;
  config: AppConfig;
  baseUrl: string;
  http: () => ReturnType<typeof request>;
  callbacksApplied(): Promise<void>;
  /** closes only this app (the database and simulator belong to the TestApp) */
  close(): Promise<void>;
}

/**
 * A second API instance on the SAME database and simulator as `base` (own port, own process
 * state): for multi-instance tests. Close it before `base`.
 */
export async function startExtraTestApp(base: TestApp, env: Record<string, string> = {}): Promise<ExtraTestApp> {
  const port = await freePort();
  const config = testConfig(base.sim.url, port, env);
  const app = await createApp({ config, database: base.database.handle, ...scannedLogging(config) });
  writeLevelCanaries(app);
  await app.listen(port, '127.0.0.1');
  return {
    app,
    config,
    baseUrl: `http://127.0.0.1:${port}`,
    http: () => request(app.getHttpServer()),
    callbacksApplied: () => app.get(CallbackApplier, { strict: false }).drained(),
    close: () => app.close(),
  };
}

/**
 * When the run's logs are scanned: one line at debug and one at trace through the app's own logger
 * (the app logs nothing below info itself), so the scan can tell that those levels reach the files.
 */
function writeLevelCanaries(app: NestExpressApplication): void {
  if (!testLogDir()) return;
  const logger = app.get(Logger);
  logger.debug(LOG_LEVEL_CANARY.debug, 'LogScan');
  logger.verbose(LOG_LEVEL_CANARY.trace, 'LogScan');
}

/** When the run's logs are scanned: log to the run's files, and tell the scan this app's secrets. */
function scannedLogging(config: AppConfig): {
  logDestination?: ReturnType<typeof appLogDestination>;
  bufferLogs?: boolean;
} {
  const logDestination = appLogDestination();
  if (!logDestination) return {};
  recordSecrets(configSecrets(config));
  // bufferLogs: Nest's own start-up lines go to the same file instead of the console.
  return { logDestination, bufferLogs: true };
}

/** The real app on a real port (Daraja calls back over HTTP), a real database and the simulator. */
export async function startTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const sim = await startDarajaSimulator({
    callbackDelayMs: 150,
    accounts: [{ shortcode: '174379', passkey: SANDBOX_PASSKEY, tillNumbers: ['174380'] }],
    log: simulatorLog(),
    ...options.sim,
  });
  const database = await createTestDatabase({ pglite: options.pglite });
  const port = options.port ?? (await freePort());
  const config = testConfig(sim.url, port, options.env);
  const handle = options.database ? await options.database(database) : database.handle;
  const app = await createApp({ config, database: handle, ...scannedLogging(config) });
  writeLevelCanaries(app);
  await app.listen(port, '127.0.0.1');
  const baseUrl = `http://127.0.0.1:${port}`;
  return {
    app,
    config,
    sim,
    db: database.handle.db,
    database,
    baseUrl,
    http: () => request(app.getHttpServer()),
    token: (shopId = 'shop-1', role: Role = 'cashier', sub = 'cashier-1') =>
      mintToken(TEST_JWT_SECRET, { sub, shopId, role }),
    callbacksApplied: () => app.get(CallbackApplier, { strict: false }).drained(),
    async close() {
      await app.close();
      if (handle !== database.handle) await handle.close();
      await sim.close();
      await database.dispose();
    },
  };
}

/** Polls until fn returns a truthy value (or throws the last error after timeoutMs). */
export async function waitFor<T>(
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs = 5000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline)
      throw lastErr instanceof Error ? lastErr : new Error(`waitFor timed out after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Row counts of every table: "nothing changed" assertions compare two snapshots. callback_inbox
 * counts deliveries stored (a row, or an unverified repeat counted on its window's row).
 */
export async function tableCounts(db: Db): Promise<Record<string, number>> {
  const res = await db.execute(sql`select
    (select count(*) from orders)::int as orders,
    (select count(*) from payments)::int as payments,
    (select count(*) from payment_events)::int as payment_events,
    (select count(*) + coalesce(sum(repeats), 0) from callback_inbox)::int as callback_inbox,
    (select count(*) from idempotency_keys)::int as idempotency_keys,
    (select count(*) from merchant_accounts)::int as merchant_accounts,
    (select count(*) from audit_events)::int as audit_events,
    (select count(*) from refunds)::int as refunds,
    (select coalesce(string_agg(id::text || ':' || status || ':' || updated_at::text, ',' order by id), '') from payments) as payment_states,
    (select coalesce(string_agg(shop_id || ':' || id || ':' || coalesce(paid_at::text, '-'), ',' order by shop_id, id), '') from orders) as order_states`);
  const rows =
    (res as unknown as { rows?: Record<string, number>[] }).rows ?? (res as unknown as Record<string, number>[]);
  return rows[0];
}

/**
 * The full CheckoutRequestID behind a payment as the API answers it: the API masks the id's tail
 * (it ends with the payer's number), the simulator knows only the full one. Looked up among the
 * simulator's pushes by the masked form, and by the payment's callback URL when several pushes
 * share it. Throws unless exactly one push fits (a full id in the answer fits none).
 */
export function fullCheckoutRequestId(
  sim: Pick<DarajaSimulator, 'pushes'>,
  answered: { paymentId?: string; checkoutRequestId: string },
): string {
  const fits = sim.pushes().filter((p) => maskCheckoutRequestId(p.checkoutRequestId) === answered.checkoutRequestId);
  const own = answered.paymentId ? fits.filter((p) => p.callbackUrl.includes(`/${answered.paymentId}/`)) : [];
  const found = own.length === 1 ? own : fits;
  if (found.length !== 1)
    throw new Error(`${found.length} simulator pushes fit the answered id ${answered.checkoutRequestId}`);
  return found[0].checkoutRequestId;
}
