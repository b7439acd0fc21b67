import 'reflect-metadata';
import type { Logger } from '@nestjs/common';
import { join } from 'node:path';
import type { DarajaSimulator } from '@smartduka/daraja-simulator';
import { AppConfig, ConfigValidationError, loadConfig, loadDotEnv } from './config/app-config';
import { DatabaseHandle, openDatabase, pgliteDirFor } from './database/database';
import { PgliteDirInUseError } from './database/pglite-lock';

// Only the configuration and the database are loaded before the database starts opening (see
// main()); the Nest application (./bootstrap and everything it imports) is loaded while PGlite
// reads its files and compiles its WebAssembly.

type DarajaSimulatorPackage = typeof import('@smartduka/daraja-simulator');
type CardSimulatorsPackage = typeof import('@smartduka/card-simulators');

/**
 * A development-only package (the simulators, loaded only when a provider is in simulator mode;
 * the POS screen, only in development): a production install does not need them. Run from the
 * build (dist/main.js, no TypeScript at runtime), it is the package's own build; from source
 * (pnpm dev, swc), its source.
 */
async function devPackage<T>(
  name: '@smartduka/daraja-simulator' | '@smartduka/card-simulators' | '@smartduka/pos',
): Promise<T> {
  const compiled = __filename.endsWith('.js');
  const specifier = compiled ? `${name}/dist/index.js` : name;
  try {
    return (await import(specifier)) as T;
  } catch (err) {
    if (compiled && (err as { code?: string }).code === 'MODULE_NOT_FOUND')
      throw new Error(
        `${name} is not built: run pnpm build (it is needed for simulator mode and the development POS screen)`,
        { cause: err },
      );
    throw err;
  }
}

async function startSimulator(config: AppConfig): Promise<DarajaSimulator> {
  const { startDarajaSimulator } = await devPackage<DarajaSimulatorPackage>('@smartduka/daraja-simulator');
  const opts = {
    host: '127.0.0.1',
    consumerKey: config.mpesa.consumerKey,
    consumerSecret: config.mpesa.consumerSecret,
    accounts: [
      {
        shortcode: config.mpesa.shortcode,
        passkey: config.mpesa.passkey,
        // The sandbox's till under 174379 (as `pnpm sim`'s SIM_TILL), so a shop's own till account can be tried out.
        tillNumbers: [...new Set([config.mpesa.tillNumber, '174380'].filter((t): t is string => !!t))],
      },
    ],
    callbackDelayMs: 3000,
  };
  try {
    return await startDarajaSimulator({ ...opts, port: config.simulatorPort });
  } catch (err) {
    if ((err as { code?: string }).code !== 'EADDRINUSE') throw err;
    return startDarajaSimulator({ ...opts, port: 0 });
  }
}

/** Starts on the preferred port, or any free one when it is taken (a second `pnpm dev`). */
async function onPreferredPort<T>(start: (port: number) => Promise<T>, port: number): Promise<T> {
  try {
    return await start(port);
  } catch (err) {
    if ((err as { code?: string }).code !== 'EADDRINUSE') throw err;
    return start(0);
  }
}

/**
 * The checkout screen (apps/pos) next to the API, in development only: on POS_PORT (5173) or a
 * free port. Its origin must be allowed by CORS before the app is created; the default
 * CORS_ORIGINS has only the 5173 origins, so another port's origins are added here.
 */
async function startPos(
  config: AppConfig,
  apiBaseUrl: () => string,
  token: () => string,
): Promise<{ url: string; close(): Promise<void> } | { error: string } | undefined> {
  if (config.nodeEnv !== 'development' || !config.pos.enabled) return undefined;
  try {
    // Loaded only here: production never loads the bundler.
    const { startPosServer } = await devPackage<typeof import('@smartduka/pos')>('@smartduka/pos');
    const pos = await onPreferredPort(
      (port) => startPosServer({ port, host: '127.0.0.1', apiBaseUrl, token }),
      config.pos.port,
    );
    for (const origin of [`http://localhost:${pos.port}`, `http://127.0.0.1:${pos.port}`])
      if (!config.corsOrigins.includes(origin)) config.corsOrigins.push(origin);
    return { url: `http://localhost:${pos.port}`, close: () => pos.close() };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

/** Embedded Flutterwave / Pesapal simulators for providers enabled in simulator mode without a base URL. */
async function startCardSimulators(
  config: AppConfig,
): Promise<{ name: string; url: string; close(): Promise<void> }[]> {
  const started: { name: string; url: string; close(): Promise<void> }[] = [];
  const f = config.flutterwave;
  const p = config.pesapal;
  const wanted = (x: { enabled: boolean; env: string; baseUrl: string | null }) =>
    x.enabled && x.env === 'simulator' && !x.baseUrl;
  if (!wanted(f) && !wanted(p)) return started;
  const { startFlutterwaveSimulator, startPesapalSimulator } =
    await devPackage<CardSimulatorsPackage>('@smartduka/card-simulators');
  if (f.enabled && f.env === 'simulator' && !f.baseUrl) {
    const sim = await onPreferredPort(
      (port) =>
        startFlutterwaveSimulator({
          host: '127.0.0.1',
          port,
          secretKey: f.secretKey,
          secretHash: f.secretHash,
          webhookUrl: `${config.publicBaseUrl}/payments/flutterwave/webhook`,
        }),
      4020,
    );
    f.baseUrl = sim.url;
    started.push({ name: 'Flutterwave', url: sim.url, close: () => sim.close() });
  }
  if (p.enabled && p.env === 'simulator' && !p.baseUrl) {
    const sim = await onPreferredPort(
      (port) =>
        startPesapalSimulator({
          host: '127.0.0.1',
          port,
          consumerKey: p.consumerKey,
          consumerSecret: p.consumerSecret,
        }),
      4030,
    );
    p.baseUrl = sim.url;
    started.push({ name: 'Pesapal', url: sim.url, close: () => sim.close() });
  }
  return started;
}

/**
 * The rest of the app's code (the Nest application: ./bootstrap and all it imports), loaded once
 * the database has started opening. The bundle's loader calls it at build time too, to put this
 * code in the code cache.
 */
export async function loadApp() {
  const [
    { createApp },
    { mintToken },
    { Logger: NestLogger },
    { PesapalService },
    { C2bRegistrationService },
    { MpesaPullService },
  ] = await Promise.all([
    import('./bootstrap'),
    import('./auth/token'),
    import('@nestjs/common'),
    import('./payments/providers/pesapal/pesapal.service'),
    import('./payments/providers/mpesa/c2b-registration.service'),
    import('./payments/providers/mpesa/mpesa-pull.service'),
  ]);
  return { createApp, mintToken, NestLogger, PesapalService, C2bRegistrationService, MpesaPullService };
}

export async function main(): Promise<void> {
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

  // Started first, awaited after the app's code is loaded: opening PGlite (reading and compiling
  // its WebAssembly, copying the template on a first start) overlaps loading the Nest modules.
  // Nest's logger once its code is loaded (a connection is lost only after the pool has connected).
  const dbLog: { logger?: Logger } = {};
  const opening: Promise<DatabaseHandle> = openDatabase({
    databaseUrl: config.databaseUrl,
    poolSize: config.databasePoolSize,
    connectTimeoutMs: config.databaseConnectTimeoutMs,
    statementTimeoutMs: config.databaseStatementTimeoutMs,
    pgliteDir: config.databaseUrl ? undefined : pgliteDirFor(config.dataDir),
    onConnectionLost: (info) =>
      dbLog.logger?.warn({ code: info.code, msg: info.message }, 'database connection lost; the pool opens a new one'),
  });
  // Its failure is reported where it is awaited, not as an unhandled rejection meanwhile.
  opening.catch(() => undefined);

  let simulator: DarajaSimulator | undefined;
  if (config.mpesa.env === 'simulator' && !config.mpesa.baseUrl) {
    simulator = await startSimulator(config);
    config.mpesa.baseUrl = simulator.url;
  }

  const cardSimulators = await startCardSimulators(config);

  const { createApp, mintToken, NestLogger, PesapalService, C2bRegistrationService, MpesaPullService } =
    await loadApp();
  let apiUrl = `http://localhost:${config.port}`;
  // The dev token (shop-1, cashier): the banner prints one, the POS page gets a fresh one on each load.
  const devToken = () => mintToken(config.jwt.secret, { sub: 'dev-cashier', shopId: 'shop-1', role: 'cashier' });
  const pos = await startPos(config, () => apiUrl, devToken);
  const posServer = pos && 'url' in pos ? pos : undefined;

  dbLog.logger = new NestLogger('Database');
  const database = await opening;
  await database.migrate();

  const app = await createApp({
    config,
    database,
    closeDatabaseOnShutdown: true,
    bufferLogs: true,
    nestSignalHandlers: false,
  });
  if (simulator) {
    // The embedded simulator starts empty each time, but Daraja keeps C2B and Pull registrations
    // (and this database says they were made; Pull is never sent twice): put them back, so till and
    // paybill payments and Pull passes keep working across restarts of pnpm dev.
    for (const r of await app.get(C2bRegistrationService).simulatorRegistrations()) simulator.restoreC2bRegistration(r);
    for (const r of await app.get(MpesaPullService).simulatorRegistrations())
      simulator.pullTransactions.restoreRegistration(r.shortcode, r.callbackUrl);
  }
  // Ctrl-C or SIGTERM, from the moment the app exists: close it (every shutdown hook: streams ended,
  // readiness draining, reconciler stopped, database closed), then the simulators, then exit 0.
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    try {
      await app.close();
      await simulator?.close();
      await posServer?.close();
      await Promise.all(cardSimulators.map((c) => c.close()));
      process.exit(0);
    } catch (err) {
      process.stderr.write(`Shutdown failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    }
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
  try {
    await app.listen(config.port, '0.0.0.0');
  } catch (err) {
    if ((err as { code?: string }).code !== 'EADDRINUSE') throw err;
    // The API's own port is not replaced like the POS and simulator ports: clients are pointed at it.
    const hint =
      config.nodeEnv === 'production'
        ? 'set PORT to a free port'
        : `stop the other server (another pnpm dev?) or choose another port, e.g. PORT=${config.port + 1} pnpm dev`;
    process.stderr.write(`\nPort ${config.port} is already in use: ${hint}.\n`);
    process.exit(1);
  }
  const url = `http://localhost:${(app.getHttpServer().address() as { port: number }).port}`;
  apiUrl = url;

  if (config.nodeEnv !== 'production') {
    // Boot work that logs after listening (Pesapal's IPN registration) comes first, bounded, so the
    // banner, and the dev token at its end, is the last thing on screen.
    await Promise.race([app.get(PesapalService).bootSettled(), new Promise((r) => setTimeout(r, 5000).unref())]);
    const token = devToken();
    const magic = Object.entries(
      simulator ? (await devPackage<DarajaSimulatorPackage>('@smartduka/daraja-simulator')).MAGIC_NUMBERS : {},
    )
      .map(([phone, m]) => `    ${phone}  ${m.description}`)
      .join('\n');
    process.stdout.write(
      [
        '',
        `SmartDuka Payments API ready on ${url}  (M-Pesa: ${config.mpesa.env}${simulator ? ` — embedded Daraja simulator at ${simulator.url}` : ` at ${config.mpesa.baseUrl}`}; database: ${database.kind}${database.kind === 'pglite' ? ` in ${pgliteDirFor(config.dataDir)}` : ''})`,
        `API docs: ${url}/docs   OpenAPI JSON: ${url}/docs/openapi.json`,
        ...(posServer
          ? [`POS checkout screen: ${posServer.url}  (signed in as the dev cashier of shop-1)`]
          : pos
            ? [`POS checkout screen not started: ${'error' in pos ? pos.error : ''}`]
            : []),
        '',
        'Try it:',
        `  curl -s -X POST ${url}/orders -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"id":"ORD-1001","total":150}'`,
        `  curl -s -X POST ${url}/payments/stk-push -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -H 'Idempotency-Key: ord-1001-1' -d '{"phoneNumber":"0712345678","amount":150,"orderId":"ORD-1001"}'`,
        `  curl -s "${url}/payments/stk-status?checkoutRequestId=<CheckoutRequestID from the push>" -H "Authorization: Bearer $TOKEN"`,
        `  curl -s ${url}/orders/ORD-1001 -H "Authorization: Bearer $TOKEN"`,
        ...(simulator
          ? [
              '',
              'Simulator phone numbers (any other valid number pays successfully after ~3 s):',
              magic,
              '',
              `Customers paying the till or paybill from their phone (C2B), M-Pesa QR and Pull Transactions: the shop's own account and its C2B URLs first, then the simulated phone pays with POST ${simulator.url}/__sim/c2b/payments (step by step: MPESA_SETUP.md section 7)`,
            ]
          : []),
        ...(config.flutterwave.enabled
          ? [
              '',
              `Card / mobile money with Flutterwave${cardSimulators.some((c) => c.name === 'Flutterwave') ? ` (simulator at ${config.flutterwave.baseUrl})` : ''}: open the returned "link" in a browser and pick an outcome`,
              `  curl -s -X POST ${url}/orders -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"id":"ORD-1002","total":2450.50}'`,
              `  curl -s -X POST ${url}/payments/flutterwave/init -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"orderId":"ORD-1002","amount":2450.50,"customer":{"email":"customer@example.com"}}'`,
            ]
          : []),
        ...(config.pesapal.enabled
          ? [
              '',
              `Pesapal${cardSimulators.some((c) => c.name === 'Pesapal') ? ` (simulator at ${config.pesapal.baseUrl})` : ''}: open the returned "redirectUrl" in a browser and pick an outcome`,
              `  curl -s -X POST ${url}/orders -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"id":"ORD-1003","total":500}'`,
              `  curl -s -X POST ${url}/payments/pesapal/init -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"orderId":"ORD-1003","amount":500,"customer":{"email":"customer@example.com"}}'`,
            ]
          : []),
        '',
        // Last, so it is on screen after start: the curl examples above use $TOKEN.
        `Dev token (shop-1, cashier, 12 h${config.jwt.generated ? `; secret kept in ${join(config.dataDir, 'dev-secrets.json')}` : ''}):`,
        `  export TOKEN=${token}`,
        '',
      ].join('\n') + '\n',
    );
  }
}

/** Runs main(), and ends the process with the error if the start fails. */
export function start(): void {
  main().catch((err) => {
    // A folder another process holds is an operator's situation, not a bug: its message alone.
    if (err instanceof PgliteDirInUseError) {
      process.stderr.write(`\nFailed to start: ${err.message}\n`);
      process.exit(1);
    }
    process.stderr.write(`Failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}

// Run directly (pnpm dev: node -r @swc-node/register src/main.ts; or tsc's dist/main.js alone);
// the bundle's loader (build/main-loader.cjs, dist/main.js after `pnpm build`) calls start() itself.
if (require.main === module) start();
