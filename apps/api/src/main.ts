import 'reflect-metadata';
import { join } from 'node:path';
import { startDarajaSimulator, DarajaSimulator, MAGIC_NUMBERS } from '@smartduka/daraja-simulator';
import { mintToken } from './auth/token';
import { createApp } from './bootstrap';
import { AppConfig, ConfigValidationError, loadConfig, loadDotEnv } from './config/app-config';
import { openDatabase, pgliteDirFor } from './database/database';

async function startSimulator(config: AppConfig): Promise<DarajaSimulator> {
  const opts = {
    host: '127.0.0.1',
    consumerKey: config.mpesa.consumerKey,
    consumerSecret: config.mpesa.consumerSecret,
    accounts: [{ shortcode: config.mpesa.shortcode, passkey: config.mpesa.passkey, tillNumbers: config.mpesa.tillNumber ? [config.mpesa.tillNumber] : [] }],
    callbackDelayMs: 3000,
  };
  try {
    return await startDarajaSimulator({ ...opts, port: config.simulatorPort });
  } catch (err) {
    if ((err as { code?: string }).code !== 'EADDRINUSE') throw err;
    return startDarajaSimulator({ ...opts, port: 0 });
  }
}

async function main(): Promise<void> {
  loadDotEnv();
  let config: AppConfig;
  try {
    config = loadConfig(process.env, { persistDevSecrets: true });
  } catch (err) {
    if (err instanceof ConfigValidationError) {
      process.stderr.write(`\n${err.message}\n\nSee .env.example for every variable.\n`);
      process.exit(1);
    }
    throw err;
  }

  let simulator: DarajaSimulator | undefined;
  if (config.mpesa.env === 'simulator' && !config.mpesa.baseUrl) {
    simulator = await startSimulator(config);
    config.mpesa.baseUrl = simulator.url;
  }

  const database = await openDatabase({ databaseUrl: config.databaseUrl, pgliteDir: config.databaseUrl ? undefined : pgliteDirFor(config.dataDir) });
  await database.migrate();

  const app = await createApp({ config, database, closeDatabaseOnShutdown: true, bufferLogs: true });
  if (simulator) {
    const sim = simulator;
    app.enableShutdownHooks();
    process.once('beforeExit', () => void sim.close());
  }
  await app.listen(config.port, '0.0.0.0');
  const url = `http://localhost:${config.port}`;

  if (config.nodeEnv !== 'production') {
    const token = mintToken(config.jwt.secret, { sub: 'dev-cashier', shopId: 'shop-1', role: 'cashier' });
    const magic = Object.entries(MAGIC_NUMBERS)
      .map(([phone, m]) => `    ${phone}  ${m.description}`)
      .join('\n');
    process.stdout.write(
      [
        '',
        `SmartDuka Payments API ready on ${url}  (M-Pesa: ${config.mpesa.env}${simulator ? ` — embedded Daraja simulator at ${simulator.url}` : ` at ${config.mpesa.baseUrl}`}; database: ${database.kind}${database.kind === 'pglite' ? ` in ${pgliteDirFor(config.dataDir)}` : ''})`,
        `API docs: ${url}/docs   OpenAPI JSON: ${url}/docs/openapi.json`,
        '',
        `Dev token (shop-1, cashier, 12 h${config.jwt.generated ? `; secret kept in ${join(config.dataDir, 'dev-secrets.json')}` : ''}):`,
        `  export TOKEN=${token}`,
        '',
        'Try it:',
        `  curl -s -X POST ${url}/orders -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"id":"ORD-1001","total":150}'`,
        `  curl -s -X POST ${url}/payments/stk-push -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -H 'Idempotency-Key: ord-1001-1' -d '{"phoneNumber":"0712345678","amount":150,"orderId":"ORD-1001"}'`,
        `  curl -s "${url}/payments/stk-status?checkoutRequestId=<CheckoutRequestID from the push>" -H "Authorization: Bearer $TOKEN"`,
        `  curl -s ${url}/orders/ORD-1001 -H "Authorization: Bearer $TOKEN"`,
        ...(simulator ? ['', 'Simulator phone numbers (any other valid number pays successfully after ~3 s):', magic] : []),
        '',
      ].join('\n') + '\n',
    );
  }

  const shutdown = async () => {
    await app.close();
    await simulator?.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
}

main().catch((err) => {
  process.stderr.write(`Failed to start: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
