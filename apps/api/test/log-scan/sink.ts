/**
 * Where a test run's logs go, for the leak scan (scan.ts).
 *
 * `pnpm test` (run-tests.ts) sets SMARTDUKA_TEST_LOG_DIR to a fresh folder under apps/api/.test-logs/.
 * While it is set, every test app logs at TEST_SCAN_LOG_LEVEL into files there, one set per test
 * file and worker process:
 *
 *   <test-file>.<pid>.app.log        the API's JSON logs (pino: requests, services, Nest)
 *   <test-file>.<pid>.sim.log        the Daraja simulator's log callback
 *   <test-file>.<pid>.nest.log       Nest Logger output of code running outside an app (unit specs)
 *   <test-file>.<pid>.child-<n>.log  stdout+stderr of child processes (the dev-server e2e runs main.ts)
 *   <test-file>.<pid>.secrets.jsonl  what the scan must look for: the secrets each app was configured
 *                                    with and every OAuth access token issued during the run (hex-encoded,
 *                                    so the folder itself holds no secret in the clear)
 *
 * When it is not set (a plain `npx jest ...`), nothing is written and apps stay silent (TEST_LOG_LEVEL).
 * Writes are synchronous appends: a line is on disk when the call returns (nothing lost when a test
 * file ends), and there is no stream to close, so a late log line after app.close() cannot throw.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { relative, resolve } from 'node:path';

export const LOG_DIR_ENV = 'SMARTDUKA_TEST_LOG_DIR';
/** The most verbose pino level: the app logs nothing below info today, but whatever it adds is seen. */
export const TEST_SCAN_LOG_LEVEL = 'trace';
export const API_DIR = resolve(__dirname, '../..');

/**
 * Lines every test app writes at start through its own logger at debug and at trace (test-app.ts).
 * The app logs nothing below info itself, so without them a scan level raised to info could not be
 * told from trace; scan.ts requires them, per level, in a full run.
 */
export const LOG_LEVEL_CANARY = {
  debug: 'log scan: debug-level lines reach this file',
  trace: 'log scan: trace-level lines reach this file',
} as const;

export type LogSource = 'app' | 'sim' | 'nest' | `child-${number}` | 'secrets';

/** The run's log folder, or undefined when this run does not scan its logs. */
export function testLogDir(): string | undefined {
  const dir = process.env[LOG_DIR_ENV];
  return dir ? resolve(dir) : undefined;
}

function currentTestFile(): string {
  let path: string | undefined;
  try {
    path = (globalThis as { expect?: { getState(): { testPath?: string } } }).expect?.getState().testPath;
  } catch {
    path = undefined;
  }
  return path ? relative(API_DIR, path) : 'outside-jest';
}

/** The file `source` of the current test file writes to (undefined when not scanning). */
export function logFile(source: LogSource): string | undefined {
  const dir = testLogDir();
  if (!dir) return undefined;
  mkdirSync(dir, { recursive: true });
  const name = currentTestFile().replace(/[\\/]/g, '__');
  return resolve(dir, `${name}.${process.pid}.${source}.log`.replace(/\.secrets\.log$/, '.secrets.jsonl'));
}

/** A pino destination appending to `file` synchronously. */
export function fileDestination(file: string): { write(line: string): void } {
  return { write: (line: string) => appendFileSync(file, line) };
}

/** The pino destination for apps of the current test file, or undefined when not scanning. */
export function appLogDestination(): { write(line: string): void } | undefined {
  const file = logFile('app');
  return file ? fileDestination(file) : undefined;
}

/** A simulator `log` option writing timestamped lines, or undefined when not scanning. */
export function simulatorLog(): ((line: string) => void) | undefined {
  const file = logFile('sim');
  if (!file) return undefined;
  return (line: string) => appendFileSync(file, `${new Date().toISOString()} ${line}\n`);
}

export type SecretKind =
  | 'jwt-secret'
  | 'consumer-key'
  | 'consumer-secret'
  | 'passkey'
  | 'callback-secret'
  | 'config-secret'
  | 'access-token'
  | 'dev-secret';

export interface SecretToRecord {
  kind: SecretKind;
  value: string | undefined;
  /** for consumer-secret: the consumer key it pairs with (Basic credentials); for passkey: the shortcode */
  pair?: string;
  /** for config-secret: where in the configuration it is (e.g. flutterwave.secretKey) */
  name?: string;
}

export interface RecordedSecret {
  kind: SecretKind;
  /** hex of the UTF-8 value */
  hex: string;
  /** hex of `pair` */
  pairHex?: string;
  name?: string;
}

/** Tells the scan to look for these values (no-op when not scanning). Empty values are ignored. */
export function recordSecrets(secrets: SecretToRecord[]): void {
  const file = logFile('secrets');
  if (!file) return;
  const hex = (v: string) => Buffer.from(v, 'utf8').toString('hex');
  const lines = secrets
    .filter((s): s is SecretToRecord & { value: string } => typeof s.value === 'string' && s.value.length > 0)
    .map(
      (s) =>
        JSON.stringify({
          kind: s.kind,
          hex: hex(s.value),
          ...(s.pair ? { pairHex: hex(s.pair) } : {}),
          ...(s.name ? { name: s.name } : {}),
        } satisfies RecordedSecret) + '\n',
    );
  if (lines.length) appendFileSync(file, lines.join(''));
}

/** Configuration keys holding credentials (public keys excluded: they are meant to be shown). */
const SECRET_KEY_NAME = /secret|passkey|password|token|hash|(^|[a-z])key$/i;

/**
 * The secrets of an app configuration, for recordSecrets: the M-Pesa ones by role (so the scan can
 * also look for what is derived from them: Basic credentials, the STK password), and every other
 * credential-like value anywhere in the configuration (card/wallet providers included).
 */
export function configSecrets(config: {
  jwt: { secret: string };
  merchantAccounts?: { keys: Array<{ key: Buffer }> };
  mpesa: {
    consumerKey: string;
    consumerSecret: string;
    shortcode: string;
    passkey: string;
    callbackSigningSecret: string;
  };
}): SecretToRecord[] {
  const out: SecretToRecord[] = [
    { kind: 'jwt-secret', value: config.jwt.secret },
    { kind: 'consumer-key', value: config.mpesa.consumerKey },
    { kind: 'consumer-secret', value: config.mpesa.consumerSecret, pair: config.mpesa.consumerKey },
    { kind: 'passkey', value: config.mpesa.passkey, pair: config.mpesa.shortcode },
    { kind: 'callback-secret', value: config.mpesa.callbackSigningSecret },
    // The keys that seal shops' credentials, as written in CREDENTIALS_KEYS.
    ...(config.merchantAccounts?.keys ?? []).map((k): SecretToRecord => ({
      kind: 'config-secret',
      value: k.key.toString('base64'),
      name: 'CREDENTIALS_KEYS',
    })),
  ];
  const walk = (value: unknown, path: string[]) => {
    if (typeof value === 'string') {
      const key = path[path.length - 1] ?? '';
      if (SECRET_KEY_NAME.test(key) && !/public/i.test(key))
        out.push({ kind: 'config-secret', value, name: path.join('.') });
    } else if (value && typeof value === 'object' && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) walk(v, [...path, k]);
    }
  };
  walk(config, []);
  return out;
}
