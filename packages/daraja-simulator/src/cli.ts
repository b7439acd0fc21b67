/**
 * Standalone Daraja simulator: `pnpm sim` (root) or `pnpm start` (this package). Configured through SIM_* env vars,
 * plus two flags (which win over their env vars): --timestamp-tolerance-seconds <seconds|off>, --pending-query-form <http500|result4999>.
 */
import { behaviourFromCli } from './behaviour';
import {
  DEFAULT_CLI_PORT,
  DEFAULT_CONSUMER_KEY,
  DEFAULT_CONSUMER_SECRET,
  SANDBOX_PASSKEY,
  SANDBOX_SHORTCODE,
  SANDBOX_TILL,
} from './options';
import { faultsFromEnv } from './env-faults';
import { DEFAULT_INITIATOR_NAME, DEFAULT_INITIATOR_PASSWORD } from './registry';
import { SIMULATOR_CERTIFICATE_SHA256 } from './security-credential';
import {
  MAGIC_NUMBERS,
  startDarajaSimulator,
  type SimulatorAccount,
  type SimulatorApp,
  type SimulatorOptions,
} from './index';

function intFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return Number(raw.trim());
}

function strFromEnv(name: string, fallback: string): string {
  const raw = process.env[name];
  return raw === undefined || raw.trim() === '' ? fallback : raw.trim();
}

/** SIM_APPS / SIM_ACCOUNTS: a JSON array, validated later by the simulator's options. Never echoes the value. */
function jsonArrayFromEnv(name: string): unknown[] {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new Error(`${name} must be a JSON array`);
  }
  if (!Array.isArray(parsed)) throw new Error(`${name} must be a JSON array`);
  return parsed;
}

function optionsFromEnv(): Required<
  Pick<
    SimulatorOptions,
    'port' | 'host' | 'consumerKey' | 'consumerSecret' | 'accounts' | 'apps' | 'callbackDelayMs' | 'resultDelayMs'
  >
> {
  const shortcode = strFromEnv('SIM_SHORTCODE', SANDBOX_SHORTCODE);
  const passkey = strFromEnv('SIM_PASSKEY', SANDBOX_PASSKEY);
  const tills = strFromEnv('SIM_TILL', SANDBOX_TILL)
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  return {
    port: intFromEnv('SIM_PORT', DEFAULT_CLI_PORT),
    host: strFromEnv('SIM_HOST', '127.0.0.1'),
    consumerKey: strFromEnv('SIM_CONSUMER_KEY', DEFAULT_CONSUMER_KEY),
    consumerSecret: strFromEnv('SIM_CONSUMER_SECRET', DEFAULT_CONSUMER_SECRET),
    // SIM_ACCOUNTS: [{"shortcode","passkey","tillNumbers"?}], added after the SIM_SHORTCODE one.
    accounts: [{ shortcode, passkey, tillNumbers: tills }, ...(jsonArrayFromEnv('SIM_ACCOUNTS') as SimulatorAccount[])],
    // SIM_APPS: [{"consumerKey","consumerSecret","shortcodes"?}], besides the SIM_CONSUMER_KEY one.
    apps: jsonArrayFromEnv('SIM_APPS') as SimulatorApp[],
    callbackDelayMs: intFromEnv('SIM_CALLBACK_DELAY_MS', 2000),
    resultDelayMs: intFromEnv('SIM_RESULT_DELAY_MS', intFromEnv('SIM_CALLBACK_DELAY_MS', 2000)),
  };
}

function timestamped(line: string): void {
  process.stdout.write(`${new Date().toISOString()} ${line}\n`);
}

async function main(): Promise<void> {
  const options = optionsFromEnv();
  const faults = faultsFromEnv(process.env);
  const behaviour = behaviourFromCli(process.env, process.argv.slice(2));
  const sim = await startDarajaSimulator({ ...options, ...behaviour, faults, log: timestamped });
  const active = sim.behaviour();
  const activeFaults = sim.faults();
  const account = options.accounts[0];
  const lines = [
    '',
    `  Daraja simulator ready at ${sim.url}`,
    '',
    `  OAuth           GET  ${sim.url}/oauth/v1/generate?grant_type=client_credentials`,
    `  STK push        POST ${sim.url}/mpesa/stkpush/v1/processrequest`,
    `  STK query       POST ${sim.url}/mpesa/stkpushquery/v1/query`,
    `  Reversal        POST ${sim.url}/mpesa/reversal/v1/request`,
    `  Tx status       POST ${sim.url}/mpesa/transactionstatus/v1/query`,
    `  Control API     GET  ${sim.url}/__sim/state  /__sim/stats  /__sim/injections  /__sim/prompts?accountReference=…`,
    `                  POST ${sim.url}/__sim/faults  /__sim/reset  /__sim/pushes/:id/resolve  /__sim/apps  /__sim/accounts`,
    `                  GET  ${sim.url}/__sim/apps  /__sim/accounts  /__sim/oauth-calls`,
    `                  GET  ${sim.url}/__sim/reversals  /__sim/status-queries  /__sim/results   POST /__sim/result-controls`,
    '',
    '  Simulator credentials (local fakes, not Safaricom secrets):',
    `    consumer key     ${options.consumerKey}`,
    `    consumer secret  ${options.consumerSecret}`,
    `    shortcode        ${account?.shortcode ?? ''}`,
    `    passkey          ${account?.passkey ?? ''}`,
    `    till numbers     ${(account?.tillNumbers ?? []).join(', ') || '(none)'}`,
    `    initiator        ${DEFAULT_INITIATOR_NAME} / ${DEFAULT_INITIATOR_PASSWORD} (unless SIM_ACCOUNTS names others)`,
    `    SecurityCredential: encrypt with the TEST certificate packages/daraja-simulator/certs/simulator-test-cert.pem`,
    `                     (SHA-256 ${SIMULATOR_CERTIFICATE_SHA256})`,
    `    callback delay   ${options.callbackDelayMs} ms`,
    `    result delay     ${options.resultDelayMs ?? options.callbackDelayMs} ms (Reversal / Transaction Status)`,
    ...(options.apps.length || options.accounts.length > 1
      ? [
          '',
          '  Apps (SIM_APPS; more with POST /__sim/apps):',
          ...sim.apps().map((a) => `    ${a.consumerKey.padEnd(24)} shortcodes ${a.shortcodes.join(', ') || 'any'}`),
          '  Accounts (SIM_ACCOUNTS; more with POST /__sim/accounts):',
          ...sim.accounts().map((a) => `    ${a.shortcode.padEnd(8)} tills ${a.tillNumbers.join(', ') || '(none)'}`),
        ]
      : []),
    '',
    `  Timestamp window (--timestamp-tolerance-seconds / SIM_TIMESTAMP_TOLERANCE_SECONDS): ${active.timestampToleranceSeconds === null ? 'none (any real date; the Password must match it)' : `${active.timestampToleranceSeconds} s from Nairobi now`}`,
    `  Pending STK query form (--pending-query-form / SIM_PENDING_QUERY_FORM): ${active.pendingQueryForm === 'http500' ? 'http500 (HTTP 500 500.001.1001 "being processed")' : 'result4999 (HTTP 200 ResultCode "4999", 2026 sandbox)'}`,
    '',
    `  Start-up faults (SIM_FAULTS / SIM_FAULT_*; restored by /__sim/reset): ${Object.keys(activeFaults).length ? JSON.stringify(activeFaults) : 'none'}`,
    '',
    '  Magic phone numbers (any other valid 2547/2541 number succeeds):',
    ...Object.entries(MAGIC_NUMBERS).map(([phone, m]) => `    ${phone}  ${m.scenario.padEnd(20)} ${m.description}`),
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    timestamped(`${signal} received, shutting down`);
    sim.close().then(
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
  process.stderr.write(`daraja-simulator failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
