/** Starting the processes under test with production-like settings. */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { SANDBOX_PASSKEY } from '../../apps/api/src/config/app-config';
import type { SimulatorOptions } from '../../packages/daraja-simulator/src';
import { BENCH_DIR } from './deps';
import { freePort, startChild, type ChildHandle } from './procs';

export const BENCH_JWT_SECRET = 'bench-jwt-secret-0123456789abcdefghijklmnop';
/** The key the benchmark API seals shops' credentials with (CREDENTIALS_KEYS=bench:<this>). */
export const BENCH_CREDENTIALS_KEY = Buffer.alloc(32, 11);
export const BENCH_CALLBACK_SECRET = 'bench-callback-secret-0123456789abcdefghij';
export const SIM_KEY = 'smartduka-sim-key';
export const SIM_SECRET = 'smartduka-sim-secret';
export const SHORTCODE = '174379';
export { SANDBOX_PASSKEY };

/** BENCH_CPU_PROF=1: the API writes a V8 CPU profile (open in Chrome DevTools) when it stops. */
export const CPU_PROF_DIR = join(os.tmpdir(), 'smartduka-bench-profiles');

export interface ApiServerOptions {
  /** postgres URL, or undefined for PGlite */
  databaseUrl?: string;
  pgliteDir?: string;
  /** Daraja base URL (the simulator); a closed port when the benchmark never calls Daraja */
  darajaUrl?: string;
  poolSize?: number;
  env?: Record<string, string>;
  nodeArgs?: string[];
}

/**
 * The API in its own process, configured as production would be: NODE_ENV=production (PGlite:
 * development, production refuses it), LOG_LEVEL=info written to a log file (not the terminal),
 * M-Pesa in "sandbox" mode pointed at the simulator, the default pool size unless told otherwise.
 */
export async function startApi(name: string, o: ApiServerOptions): Promise<ChildHandle> {
  const port = await freePort();
  const nodeArgs = [...(o.nodeArgs ?? [])];
  if (process.env.BENCH_CPU_PROF === '1') {
    mkdirSync(CPU_PROF_DIR, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${CPU_PROF_DIR}`, `--cpu-prof-name=${name}-${Date.now()}.cpuprofile`);
  }
  return startChild(name, resolve(BENCH_DIR, 'lib/api-server.ts'), {
    nodeArgs,
    env: {
      NODE_ENV: o.databaseUrl ? 'production' : 'development',
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info',
      PORT: String(port),
      DATABASE_URL: o.databaseUrl ?? '',
      BENCH_PGLITE_DIR: o.pgliteDir ?? '',
      BENCH_DB_POOL_SIZE: o.poolSize ? String(o.poolSize) : process.env.BENCH_DB_POOL_SIZE,
      DATA_DIR: join(os.tmpdir(), `smartduka-bench-data-${process.pid}`),
      MPESA_ENV: 'sandbox',
      MPESA_BASE_URL: o.darajaUrl ?? 'http://127.0.0.1:9',
      MPESA_CONSUMER_KEY: SIM_KEY,
      MPESA_CONSUMER_SECRET: SIM_SECRET,
      MPESA_SHORTCODE: SHORTCODE,
      MPESA_PASSKEY: SANDBOX_PASSKEY,
      MPESA_CALLBACK_URL: `http://127.0.0.1:${port}/payments/callback`,
      CALLBACK_SIGNING_SECRET: BENCH_CALLBACK_SECRET,
      JWT_SECRET: BENCH_JWT_SECRET,
      CREDENTIALS_KEYS: `bench:${BENCH_CREDENTIALS_KEY.toString('base64')}`,
      // M-Pesa only: the card providers (on by default in development) stay off, as in production.
      FLUTTERWAVE_ENABLED: 'false',
      PESAPAL_ENABLED: 'false',
      // Seeded payments are pending on purpose; the reconciler still ticks but leaves them to their callbacks.
      RECONCILER_PENDING_GRACE_SECONDS: '3600',
      ...o.env,
    },
  });
}

export async function startSimulator(name: string, options: SimulatorOptions): Promise<ChildHandle & { url: string }> {
  // In a file: 2,000 shops' apps and accounts are more than an environment variable may hold (E2BIG).
  const optionsFile = join(os.tmpdir(), `smartduka-bench-sim-${process.pid}-${name}.json`);
  writeFileSync(
    optionsFile,
    JSON.stringify({
      accounts: [{ shortcode: SHORTCODE, passkey: SANDBOX_PASSKEY, tillNumbers: ['174380'] }],
      ...options,
    }),
  );
  const child = await startChild(name, resolve(BENCH_DIR, 'lib/sim-server.ts'), {
    env: { BENCH_SIM_OPTIONS_FILE: optionsFile },
  });
  return Object.assign(child, { url: String(child.ready.url) });
}
