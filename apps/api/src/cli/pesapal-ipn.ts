import { ConfigValidationError, loadConfig, loadDotEnv } from '../config/app-config';
import { openDatabase, pgliteDirFor } from '../database/database';
import {
  createPesapalProvider,
  ipnOptionsFor,
  PesapalIpnService,
} from '../payments/providers/pesapal/pesapal-ipn.service';
import { ProviderSettingsRepository } from '../payments/providers/pesapal/provider-settings.repository';
import { AppError } from '../common/errors';

/**
 * Registers this deployment's Pesapal IPN URL (${PUBLIC_BASE_URL}/payments/pesapal/callback) once
 * and stores its ipn_id in provider_settings, where every API instance reads it. Idempotent:
 * reuses the stored id, or a registration Pesapal already lists for the URL; then confirms with
 * GetIpnList that Pesapal still knows the id (registering again if not) — which also proves the
 * consumer key/secret work.
 *   pnpm --filter @smartduka/api pesapal:register-ipn
 * The API does the same lazily at boot; this command lets a deploy step do it and fail loudly
 * (exit 1). Never prints credentials or tokens.
 */
async function main(): Promise<void> {
  loadDotEnv();
  const config = loadConfig(process.env);
  if (!config.pesapal.enabled) fail('Pesapal is switched off: set PESAPAL_ENABLED=true (and its credentials) first');
  if (!config.pesapal.baseUrl) {
    fail(
      'PESAPAL_ENV=simulator has no fixed Pesapal to register with from here: the embedded simulator lives inside `pnpm dev` (which registers at boot). Set PESAPAL_ENV=sandbox|production, or PESAPAL_BASE_URL to a running simulator',
    );
  }
  const provider = createPesapalProvider(config)!;
  const db = await openDatabase({
    databaseUrl: config.databaseUrl,
    poolSize: config.databasePoolSize,
    pgliteDir: config.databaseUrl ? undefined : pgliteDirFor(config.dataDir),
  });
  try {
    await db.migrate();
    const ipn = new PesapalIpnService(provider, new ProviderSettingsRepository(db.db), ipnOptionsFor(config));
    const ensured = await ipn.ensure();
    const lines = [
      `Pesapal IPN for ${config.pesapal.env} (${config.pesapal.baseUrl})`,
      `  url:    ${ensured.ipn.url}`,
      `  type:   ${ensured.ipn.type}`,
      `  ipn_id: ${ensured.ipn.ipnId}`,
      `  source: ${ensured.source === 'pesapal' ? 'registered or found at Pesapal just now, stored' : 'already stored'} (key ${ipn.key})`,
    ];
    const v = await ipn.verifyWithPesapal();
    lines.push(
      v.listed
        ? '  check:  Pesapal lists this ipn_id (credentials work)'
        : `  check:  Pesapal did not list the stored id; registered again: ${v.ipn.ipnId}`,
    );
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await db.close();
  }
}

function fail(message: string): never {
  process.stderr.write(message + '\n');
  process.exit(1);
}

main().catch((err) => {
  process.stderr.write(
    (err instanceof ConfigValidationError || err instanceof AppError ? err.message : String(err)) + '\n',
  );
  process.exit(1);
});
