/**
 * Standalone card simulators: `pnpm --filter @smartduka/card-simulators start`.
 * Starts Flutterwave (FLW_SIM_PORT, default 4020) and Pesapal (PESAPAL_SIM_PORT, default 4030).
 * Logs one line per request without secrets, tokens, bodies or full phone numbers.
 */
import { redactUrl } from './shared/http';
import { FLW_DEFAULT_CLI_PORT, FLW_DEFAULT_SECRET_HASH, FLW_DEFAULT_SECRET_KEY } from './flutterwave/options';
import {
  PESAPAL_DEFAULT_CLI_PORT,
  PESAPAL_DEFAULT_CONSUMER_KEY,
  PESAPAL_DEFAULT_CONSUMER_SECRET,
} from './pesapal/options';
import {
  startFlutterwaveSimulator,
  startPesapalSimulator,
  type FlutterwaveSimulator,
  type PesapalSimulator,
} from './index';

function intFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return Number(raw.trim());
}

function strFromEnv(name: string): string | undefined {
  const raw = process.env[name];
  return raw === undefined || raw.trim() === '' ? undefined : raw.trim();
}

function logger(prefix: string): (line: string) => void {
  return (line) => process.stdout.write(`${new Date().toISOString()} [${prefix}] ${line}\n`);
}

/** Prints a credential only when it is the public simulator default; env-provided values are never echoed. */
function shown(value: string | undefined, fallback: string): string {
  return value === undefined ? fallback : '(set from env, not shown)';
}

async function main(): Promise<void> {
  const host = strFromEnv('CARD_SIM_HOST') ?? '127.0.0.1';
  const only = strFromEnv('CARD_SIM_ONLY');
  if (only !== undefined && only !== 'flutterwave' && only !== 'pesapal')
    throw new Error('CARD_SIM_ONLY must be "flutterwave" or "pesapal"');
  const lines: string[] = [''];
  let flw: FlutterwaveSimulator | undefined;
  let pesapal: PesapalSimulator | undefined;

  if (only !== 'pesapal') {
    const secretKey = strFromEnv('FLW_SIM_SECRET_KEY');
    const secretHash = strFromEnv('FLW_SIM_SECRET_HASH');
    const webhookUrl = strFromEnv('FLW_SIM_WEBHOOK_URL');
    flw = await startFlutterwaveSimulator({
      port: intFromEnv('FLW_SIM_PORT', FLW_DEFAULT_CLI_PORT),
      host,
      publicUrl: strFromEnv('FLW_SIM_PUBLIC_URL'),
      secretKey,
      secretHash,
      webhookUrl,
      log: logger('flutterwave'),
    });
    lines.push(
      `  Flutterwave v3 simulator   ${flw.url}   (use as base URL instead of https://api.flutterwave.com)`,
      `    POST /v3/payments · POST /v3/charges?type=mpesa · GET /v3/transactions/:id/verify`,
      `    GET /v3/transactions/verify_by_reference?tx_ref= · GET /v3/transactions · POST /v3/transactions/:id/resend-hook`,
      `    POST /v3/transactions/:id/refund · GET /v3/refunds[/:id] · hosted page ${flw.publicUrl}/v3/hosted/pay/:link`,
      `    secret key (Bearer)  ${shown(secretKey, FLW_DEFAULT_SECRET_KEY)}`,
      `    secret hash          ${shown(secretHash, FLW_DEFAULT_SECRET_HASH)}   (sent as the verif-hash header)`,
      `    webhook URL          ${webhookUrl ? redactUrl(webhookUrl) : '(none: set FLW_SIM_WEBHOOK_URL or POST /__sim/settings)'}`,
      `    control API          ${flw.url}/__sim/state · /__sim/faults · /__sim/settings · /__sim/reset · /__sim/checkouts/:tx_ref/complete`,
      '',
    );
  }
  if (only !== 'flutterwave') {
    const consumerKey = strFromEnv('PESAPAL_SIM_CONSUMER_KEY');
    const consumerSecret = strFromEnv('PESAPAL_SIM_CONSUMER_SECRET');
    pesapal = await startPesapalSimulator({
      port: intFromEnv('PESAPAL_SIM_PORT', PESAPAL_DEFAULT_CLI_PORT),
      host,
      publicUrl: strFromEnv('PESAPAL_SIM_PUBLIC_URL'),
      consumerKey,
      consumerSecret,
      log: logger('pesapal'),
    });
    lines.push(
      `  Pesapal API 3.0 simulator  ${pesapal.url}   (base URL; /pesapalv3 prefix also accepted)`,
      `    POST /api/Auth/RequestToken · POST /api/URLSetup/RegisterIPN · GET /api/URLSetup/GetIpnList`,
      `    POST /api/Transactions/SubmitOrderRequest · GET /api/Transactions/GetTransactionStatus?orderTrackingId=`,
      `    POST /api/Transactions/RefundRequest · POST /api/Transactions/CancelOrder`,
      `    payment page         ${pesapal.publicUrl}/pesapaliframe/PesapalIframe3/Index?OrderTrackingId=…`,
      `    consumer key         ${shown(consumerKey, PESAPAL_DEFAULT_CONSUMER_KEY)}`,
      `    consumer secret      ${shown(consumerSecret, PESAPAL_DEFAULT_CONSUMER_SECRET)}`,
      `    control API          ${pesapal.url}/__sim/state · /__sim/faults · /__sim/settings · /__sim/reset · /__sim/orders/:ref/complete`,
      '',
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`${new Date().toISOString()} ${signal} received, shutting down\n`);
    Promise.all([flw?.close(), pesapal?.close()]).then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`error while closing: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`card-simulators failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
