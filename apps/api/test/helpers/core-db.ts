import { Logger } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { sql } from 'drizzle-orm';
import { testLogDir } from '../log-scan/sink';
import { AppConfig, loadConfig } from '../../src/config/app-config';
import type { Db } from '../../src/database/database';
import { OrdersRepository } from '../../src/orders/orders.repository';
import { OrdersService } from '../../src/orders/orders.service';
import { HOSTED_CHECKOUT_OUTCOME_RULES } from '../../src/payments/outcome-rules';
import { MPESA_OUTCOME_RULES } from '../../src/payments/providers/mpesa/mpesa.outcome-rules';
import { PaymentLifecycle } from '../../src/payments/payment-lifecycle.service';
import { PaymentsRepository } from '../../src/payments/payments.repository';
import { createTestDatabase, TestDatabase } from './test-db';

/**
 * The lifecycle tier's setup, shared by its test files (test/*.db.spec.ts): the payment core —
 * PaymentsRepository, PaymentLifecycle, OrdersService — on a real, migrated database of its own
 * (Postgres on DATABASE_URL, else PGlite; see createTestDatabase), without an app or a provider.
 */
export interface CoreDb {
  tdb: TestDatabase;
  db: Db;
  repo: PaymentsRepository;
  ordersService: OrdersService;
  lifecycle: PaymentLifecycle;
  config: AppConfig;
  /** What the core tells other modules after commit (PAYMENT_COMPLETED_EVENT, ORDER_PAID_EVENT). */
  events: EventEmitter2;
}

export async function openCoreDb(secrets: { callbackSigningSecret: string; jwtSecret: string }): Promise<CoreDb> {
  // Outside `pnpm test` (which sends them to a scanned file) the core's Nest logs would go to the console.
  if (!testLogDir()) Logger.overrideLogger(false);
  const tdb = await createTestDatabase();
  const db = tdb.handle.db;
  const config = loadConfig({
    NODE_ENV: 'test',
    CALLBACK_SIGNING_SECRET: secrets.callbackSigningSecret,
    JWT_SECRET: secrets.jwtSecret,
  });
  const events = new EventEmitter2();
  const repo = new PaymentsRepository(db);
  const ordersService = new OrdersService(new OrdersRepository(db), events);
  const lifecycle = new PaymentLifecycle(repo, ordersService, events, config);
  // What PaymentsModule, FlutterwaveModule and PesapalModule register at init.
  lifecycle.registerOutcomeRules('mpesa', MPESA_OUTCOME_RULES);
  lifecycle.registerOutcomeRules('flutterwave', HOSTED_CHECKOUT_OUTCOME_RULES);
  lifecycle.registerOutcomeRules('pesapal', HOSTED_CHECKOUT_OUTCOME_RULES);
  return { tdb, db, repo, ordersService, lifecycle, config, events };
}

/** Empties the core's tables (each test starts from none). */
export async function emptyCoreTables(db: Db): Promise<void> {
  // DELETE, not TRUNCATE: on a few rows it is ten times faster, and the lifecycle tier runs once per mutant in `pnpm mutation`.
  for (const table of [sql`payments`, sql`payment_events`, sql`orders`, sql`idempotency_keys`, sql`refunds`])
    await db.execute(sql`delete from ${table}`);
}

/** The rows of a db.execute result, whichever driver ran it (node-postgres: { rows }, PGlite: the rows). */
export function rowsOf<T>(result: unknown): T[] {
  return (result as { rows?: T[] }).rows ?? (result as T[]);
}
