import { AppError } from '../common/errors';
import { ConfigValidationError, loadConfig, loadDotEnv } from '../config/app-config';
import { openDatabase, pgliteDirFor } from '../database/database';
import { MerchantAccountsRepository } from '../payments/merchant-accounts.repository';
import { MerchantAccountsService } from '../payments/merchant-accounts.service';
import { C2bRegistrationService } from '../payments/providers/mpesa/c2b-registration.service';
import { C2bRepository } from '../payments/providers/mpesa/c2b.repository';
import { darajaOptionsFor } from '../payments/providers/mpesa/daraja-options';
import { DarajaTokenRepository } from '../payments/providers/mpesa/daraja-token.repository';
import { DarajaService } from '../payments/providers/mpesa/daraja.service';
import { MpesaAccountKind } from '../payments/providers/mpesa/mpesa.account';

const USAGE = `Registers a shop's till / paybill (C2B) confirmation and validation URLs with Daraja:
  pnpm c2b:register --shop <shopId> [--validation] [--response-type Completed|Cancelled] [--yes] [--force]
  --validation     also register the validation URL (Safaricom must enable external validation on the shortcode)
  --yes            confirm a production registration (it is one-time at Safaricom)
  --force          register again although URLs were registered before (production: delete them on the
                   M-Pesa portal, URL management, or through apisupport first)`;

interface Args {
  shop?: string;
  validation: boolean;
  responseType: 'Completed' | 'Cancelled';
  yes: boolean;
  force: boolean;
}

function parseArgs(argv: string[]): Args | string {
  const a: Args = { validation: false, responseType: 'Completed', yes: false, force: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--shop') a.shop = argv[++i];
    else if (arg === '--validation') a.validation = true;
    else if (arg === '--yes') a.yes = true;
    else if (arg === '--force') a.force = true;
    else if (arg === '--response-type') {
      const v = argv[++i];
      if (v !== 'Completed' && v !== 'Cancelled') return '--response-type must be Completed or Cancelled (exactly)';
      a.responseType = v;
    } else return `unknown argument ${arg}`;
  }
  if (!a.shop || !/^[A-Za-z0-9._:@-]{1,64}$/.test(a.shop)) return '--shop <shopId> is required';
  return a;
}

async function main(): Promise<number> {
  loadDotEnv();
  const args = parseArgs(process.argv.slice(2).filter((x) => x !== '--'));
  if (typeof args === 'string') {
    process.stderr.write(`${args}\n\n${USAGE}\n`);
    return 2;
  }
  const config = loadConfig(process.env, { persistDevSecrets: true });
  // With pnpm dev (embedded simulator and PGlite, both inside that one process) this command can
  // reach neither: the running API registers instead.
  const viaApi =
    `While pnpm dev runs, register through its API instead (at the address pnpm dev printed; a manager's token: pnpm run token --role manager --shop ${args.shop}):\n` +
    `  curl -X POST http://localhost:${config.port}/shops/${args.shop}/c2b-registration -H "Authorization: Bearer $MANAGER_TOKEN" -H 'Content-Type: application/json' -d '{}'\n`;
  if (!config.mpesa.baseUrl) {
    process.stderr.write(
      'MPESA_ENV=simulator has no Daraja to register with from here (the embedded simulator lives inside `pnpm dev`). ' +
        "This command is for a deployment (MPESA_ENV=sandbox|production, or MPESA_BASE_URL=<a `pnpm sim` simulator>, with the API's DATABASE_URL).\n" +
        viaApi,
    );
    return 2;
  }
  let db;
  try {
    db = await openDatabase({
      databaseUrl: config.databaseUrl,
      pgliteDir: config.databaseUrl ? undefined : pgliteDirFor(config.dataDir),
      poolSize: 2,
    });
  } catch (err) {
    if (config.databaseUrl) throw err;
    process.stderr.write(`c2b:register failed: ${err instanceof Error ? err.message : String(err)}\n${viaApi}`);
    return 1;
  }
  try {
    await db.migrate();
    const accountsRepo = new MerchantAccountsRepository(db.db);
    const daraja = new DarajaService(darajaOptionsFor(config, new DarajaTokenRepository(db.db)));
    const kind = new MpesaAccountKind(config, daraja);
    const accounts = new MerchantAccountsService(accountsRepo, config, db);
    accounts.registerKind(kind);
    const c2b = new C2bRepository(db.db);
    const service = new C2bRegistrationService(config, c2b, accountsRepo, accounts, kind, daraja);
    const row = await accountsRepo.findActive(args.shop!, 'mpesa');
    if (row?.environment === 'production' && !args.yes) {
      const before = await c2b.latestRegistration(row.id);
      process.stderr.write(
        `Shop ${args.shop}'s M-Pesa account is a production account (shortcode ${(row.settings as Record<string, string>).shortcode}). ` +
          `Production C2B registration is one-time at Safaricom: changing the URLs later needs them deleted on the M-Pesa portal or by apisupport.` +
          (before ? ` URLs were already registered on ${before.registeredAt.toISOString()}.` : '') +
          `\nRun again with --yes to register${before ? ' (and --force to replace them)' : ''}.\n`,
      );
      return 2;
    }
    const reg = await service.registerAs('cli:c2b-register', args.shop!, {
      validation: args.validation,
      responseType: args.responseType,
      force: args.force,
    });
    process.stdout.write(
      [
        `C2B URLs registered for shop ${args.shop} (${reg.environment}, shortcode ${reg.shortcode}, ${reg.apiVersion})`,
        `  confirmation: ${reg.confirmationUrl}`,
        `  validation:   ${reg.validationUrl ?? 'not registered'}`,
        `  ResponseType: ${reg.responseType}`,
        `  Daraja:       ${String(reg.response.responseCode)} ${String(reg.response.responseDescription ?? '')}`,
        ...(reg.replaced ? [`  replaced the registration of ${reg.replaced}`] : []),
      ].join('\n') + '\n',
    );
    return 0;
  } finally {
    await db.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigValidationError || err instanceof AppError) process.stderr.write(`${err.message}\n`);
    else process.stderr.write(`c2b:register failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
