/**
 * main.ts's start-up, step by step with timings (benchmark child; see cold-start.bench.ts):
 * loading the code (TypeScript compiled on the fly by @swc-node/register, as `pnpm dev` and
 * `pnpm start` do), the embedded simulator, opening the database, migrations, building the Nest
 * app, listening, the first /health answer. The timings are ms since the process started.
 *
 * Env: as main.ts (DATA_DIR, PORT, SIMULATOR_PORT, DATABASE_URL...). The card providers'
 * embedded simulators (Flutterwave, Pesapal; on in development) are left out: each is a small
 * node:http server like the Daraja one (a few ms), and the cold start figure itself comes from
 * main.ts, which starts them.
 */
import { marks } from './boot-mark';
import './reflect';
import { startDarajaSimulator } from '../../packages/daraja-simulator/src';
import { createApp } from '../../apps/api/src/bootstrap';
import { loadConfig } from '../../apps/api/src/config/app-config';
import { openDatabase, pgliteDirFor } from '../../apps/api/src/database/database';
import { memorySnapshot, serveParent } from './procs';
marks.modulesLoaded = performance.now();

async function main(): Promise<void> {
  const config = loadConfig(process.env, { persistDevSecrets: true });
  const sim = await startDarajaSimulator({
    host: '127.0.0.1',
    port: 0,
    consumerKey: config.mpesa.consumerKey,
    consumerSecret: config.mpesa.consumerSecret,
    accounts: [{ shortcode: config.mpesa.shortcode, passkey: config.mpesa.passkey }],
  });
  config.mpesa.baseUrl = sim.url;
  marks.simulatorStarted = performance.now();
  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    pgliteDir: config.databaseUrl ? undefined : pgliteDirFor(config.dataDir),
  });
  marks.databaseOpen = performance.now();
  await database.migrate();
  marks.migrated = performance.now();
  const app = await createApp({ config, database, closeDatabaseOnShutdown: true, bufferLogs: true });
  marks.appCreated = performance.now();
  await app.listen(config.port, '127.0.0.1');
  marks.listening = performance.now();
  const res = await fetch(`http://127.0.0.1:${config.port}/health`);
  await res.text();
  marks.firstHealthy = performance.now();
  serveParent(
    { port: config.port, marks, status: res.status, databaseKind: database.kind, memory: memorySnapshot() },
    {},
    async () => {
      await app.close();
      await sim.close();
    },
  );
}

main().catch((err) => {
  process.stderr.write(`boot-phases failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
