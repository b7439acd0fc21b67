import { ConfigValidationError, loadConfig, loadDotEnv } from '../config/app-config';
import { openDatabase, pgliteDirFor } from '../database/database';
import { MerchantAccountsRepository } from '../payments/merchant-accounts.repository';
import { MerchantAccountsService } from '../payments/merchant-accounts.service';

/**
 * Re-seals every shop's provider secrets under the newest key of CREDENTIALS_KEYS (the first one),
 * so an older key can be dropped from the ring afterwards (README, "Every shop its own account"):
 *   1. add the new key SECOND on every instance (CREDENTIALS_KEYS="old:…,new:…") and restart them
 *      one by one: every instance can now open what the new key seals;
 *   2. move it first (CREDENTIALS_KEYS="new:…,old:…") and restart them one by one;
 *   3. pnpm credentials:reencrypt (on Postgres safe while the API serves, and to run again; on the
 *      embedded PGlite database stop the API first and add --api-stopped);
 *   4. when it reports nothing left under "old", drop it: CREDENTIALS_KEYS="new:…".
 * Rows are re-sealed one at a time, each only if nobody changed it meanwhile, with an audit event.
 */
async function main(): Promise<number> {
  loadDotEnv();
  const config = loadConfig(process.env, { persistDevSecrets: true });
  if (!config.databaseUrl && !process.argv.includes('--api-stopped')) {
    // PGlite takes one process: a second one on the same folder while the API runs corrupts it.
    process.stderr.write(
      'The embedded database (PGlite) can be opened by one process only: stop `pnpm dev` first, then run\n' +
        '  pnpm credentials:reencrypt --api-stopped\n',
    );
    return 2;
  }
  const db = await openDatabase({
    databaseUrl: config.databaseUrl,
    pgliteDir: config.databaseUrl ? undefined : pgliteDirFor(config.dataDir),
    poolSize: 2,
  });
  try {
    await db.migrate();
    const service = new MerchantAccountsService(new MerchantAccountsRepository(db.db), config, db);
    const newest = config.merchantAccounts.keys[0].id;
    const { resealed, unreadable, byKey } = await service.reencryptAll('cli:credentials-reencrypt');
    const left = Object.entries(byKey).filter(([k]) => k !== newest);
    process.stdout.write(`re-sealed ${resealed} account(s) under key "${newest}"\n`);
    for (const [k, n] of Object.entries(byKey)) process.stdout.write(`  key "${k}": ${n} account(s)\n`);
    if (unreadable.length)
      process.stderr.write(
        `${unreadable.length} account(s) do not open with any key of CREDENTIALS_KEYS and were left as they are: ${unreadable.join(', ')}\n`,
      );
    if (left.length) {
      process.stderr.write(`still sealed under an older key: ${left.map(([k, n]) => `${k} (${n})`).join(', ')}\n`);
      return 1;
    }
    process.stdout.write('no account is sealed under an older key: older keys can be dropped from CREDENTIALS_KEYS\n');
    return 0;
  } finally {
    await db.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigValidationError) process.stderr.write(`${err.message}\n`);
    else process.stderr.write(`credentials:reencrypt failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
