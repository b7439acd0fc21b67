/**
 * Scans a test run's log folder (see sink.ts) for leaked secrets, tokens, JWTs and unmasked phone
 * numbers, and fails (exit 1) on any finding or (exit 2) when the folder holds too little to prove
 * anything — a scan of nothing cannot fail, so an empty or tiny folder is itself a failure.
 *
 *   node -r @swc-node/register test/log-scan/scan.ts [run-folder] [--partial]
 *
 * Default folder: the newest apps/api/.test-logs/run-*. `--partial` (a filtered jest run) skips the
 * checks that every log source of a full run is present. `pnpm test` runs this after jest (run-tests.ts).
 *
 * Findings print as `file:line:column  kind  label` and an excerpt in which every match is replaced
 * by «kind redacted, N chars» (phones by their masked form): the report never repeats a secret.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import {
  SANDBOX_PASSKEY,
  SANDBOX_SHORTCODE,
  SIMULATOR_CONSUMER_KEY,
  SIMULATOR_CONSUMER_SECRET,
} from '../../src/config/app-config';
import {
  AllowRule,
  callbackTokenFor,
  Finding,
  KnownSecret,
  LeakScanner,
  MIN_SECRET_LENGTH,
  stkPasswordPrefix,
  uuidsIn,
} from './scanner';

/** The scopes of M-Pesa's result callback URLs (CallbackScope in src/payments/providers/mpesa/callback-token.ts). */
const SCOPED_CALLBACKS = [
  'refund-result',
  'refund-timeout',
  'refund-status',
  'payment-status',
  // a merchant account's C2B URLs (the id is merchant_accounts.id)
  'c2b-confirmation',
  'c2b-validation',
] as const;
import { type RecordedSecret, type SecretKind, TEST_SCAN_LOG_LEVEL } from './sink';

const TEST_SCAN_LOG_LEVEL_NOTE = `test apps log at ${TEST_SCAN_LOG_LEVEL} (sink.ts) unless TEST_LOG_LEVEL says otherwise, and each writes one debug and one trace canary line`;

export const LOGS_ROOT = resolve(__dirname, '../../.test-logs');

/**
 * Secrets every run uses, as a backstop to what the apps record at start (sink.recordSecrets).
 * The test constants are duplicated from test/helpers/test-app.ts (importing it would load the whole
 * app); scanner.spec.ts fails if they drift apart.
 */
/** A secret to look for, decoded from the run's secrets files (or built in). */
export interface Secret {
  kind: SecretKind;
  value: string;
  pair?: string;
  name?: string;
}

export const STATIC_SECRETS: Secret[] = [
  { kind: 'jwt-secret', value: 'test-jwt-secret-0123456789abcdefghijklmnop' },
  { kind: 'callback-secret', value: 'test-callback-secret-0123456789abcdefghij' },
  { kind: 'consumer-key', value: SIMULATOR_CONSUMER_KEY },
  { kind: 'consumer-secret', value: SIMULATOR_CONSUMER_SECRET, pair: SIMULATOR_CONSUMER_KEY },
  { kind: 'passkey', value: SANDBOX_PASSKEY, pair: SANDBOX_SHORTCODE },
];

/** Deliberate console output that looks like a leak. Keep this list short and specific. */
export const ALLOW_RULES: AllowRule[] = [
  {
    kind: 'jwt',
    file: /\.child-\d+\.log$/,
    line: /^\s*export TOKEN=ey[A-Za-z0-9_.-]+\s*$/,
    reason: 'the `pnpm dev` banner prints a development token on the console (not in production), by design',
  },
  {
    kind: 'phone',
    file: /\.child-\d+\.log$/,
    line: /^ {4}2547000000\d\d {2}\S/,
    reason: "the `pnpm dev` banner lists the simulator's magic test numbers (2547000000xx), by design",
  },
  {
    kind: 'phone',
    file: /\.child-\d+\.log$/,
    line: /^ {2}curl -s -X POST \S+\/payments\/stk-push .*-d '\{"phoneNumber":"0712345678",/,
    reason: "the `pnpm dev` banner's example curl uses the documentation number 0712345678, by design",
  },
  {
    kind: 'phone',
    file: /attacks-across-providers\.e2e\.ts\.\d+\.sim\.log$/,
    line: /Invalid PhoneNumber 254712345678/,
    reason:
      "the attack test makes the Daraja simulator refuse a push naming the payer's number (Safaricom's side logs what it sends; the API's side must mask it)",
  },
];

const LABELS: Record<SecretKind, string> = {
  'jwt-secret': 'JWT signing secret',
  'consumer-key': 'M-Pesa consumer key',
  'consumer-secret': 'M-Pesa consumer secret',
  passkey: 'M-Pesa passkey',
  'callback-secret': 'callback signing secret',
  'config-secret': 'configured credential',
  'access-token': 'Daraja access token issued in this run',
  'dev-secret': 'generated development secret (dev-secrets.json)',
};

/** The verbatim strings to look for: each secret (raw, URL- and JSON-escaped) plus derived credentials. */
export function knownSecrets(recorded: Secret[]): KnownSecret[] {
  const out: KnownSecret[] = [];
  for (const r of recorded) {
    const kind: KnownSecret['kind'] = r.kind === 'access-token' ? 'access-token' : 'secret';
    const label = r.name ? `${LABELS[r.kind]} (${r.name})` : LABELS[r.kind];
    for (const form of new Set([r.value, encodeURIComponent(r.value), JSON.stringify(r.value).slice(1, -1)]))
      out.push({ kind, label, value: form });
    if (r.kind === 'consumer-secret' && r.pair)
      out.push({
        kind: 'basic-credentials',
        label: 'base64(consumer key:secret)',
        value: Buffer.from(`${r.pair}:${r.value}`, 'utf8').toString('base64'),
      });
    if (r.kind === 'passkey' && r.pair)
      out.push({
        kind: 'stk-password',
        label: 'STK Password (base64 of shortcode+passkey+timestamp)',
        value: stkPasswordPrefix(r.pair, r.value),
      });
  }
  return out;
}

export interface LogFile {
  path: string;
  name: string;
  source: string;
  text: string;
}

export interface RunSummary {
  files: number;
  bytes: number;
  lines: number;
  bySource: Record<string, { files: number; lines: number }>;
  /** pino request-completion lines in app logs */
  appRequestLines: number;
  /**
   * Application lines (everything but request-completion lines) in app logs, per pino level. 4xx
   * request lines are logged at warn, so only these show whether info, debug and trace reached the files.
   */
  appLevelLines: Record<LevelName, number>;
  /** simulator lines saying an OAuth token was issued */
  simTokenLines: number;
  secrets: Record<string, number>;
  callbackTokens: number;
}

export interface ScanResult {
  dir: string;
  summary: RunSummary;
  findings: Finding[];
  allowed: Map<string, number>;
  /** why the folder cannot count as a scanned run */
  tooSmall: string[];
}

/**
 * Minimums for a full `pnpm test` run (far below what it writes; they catch "logging broke"). A full
 * run at the scan's level wrote about 2 500 info-level application lines; debug and trace come from
 * the canary each test app writes (LOG_LEVEL_CANARY), at least one per app file.
 */
export const FULL_RUN_MINIMUMS = {
  appFiles: 5,
  appLines: 500,
  appRequestLines: 200,
  appInfoLines: 300,
  appDebugLines: 5,
  appTraceLines: 5,
  simFiles: 3,
  simTokenLines: 3,
  childFiles: 1,
  accessTokens: 1,
};

type LevelName = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
const PINO_LEVELS: Record<number, LevelName> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};

/** Counts the application lines of a pino log per level (request-completion lines and non-JSON lines are left out). */
function countAppLevels(text: string, into: Record<LevelName, number>): void {
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    let entry: { level?: unknown; msg?: unknown; req?: unknown; res?: unknown };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      continue;
    }
    const level = typeof entry.level === 'number' ? PINO_LEVELS[entry.level] : undefined;
    if (!level) continue;
    if (entry.res !== undefined && (entry.msg === 'request completed' || entry.msg === 'request errored')) continue;
    into[level]++;
  }
}

function sourceOf(name: string): string {
  const m = /\.(app|sim|nest|child-\d+|secrets)\.(log|jsonl)$/.exec(name);
  return m ? m[1].replace(/-\d+$/, '') : 'other';
}

export function readRun(dir: string): { logs: LogFile[]; recorded: Secret[] } {
  const logs: LogFile[] = [];
  const recorded: Secret[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) {
        const text = readFileSync(path, 'utf8');
        if (entry.name.endsWith('.secrets.jsonl')) {
          for (const line of text.split('\n')) {
            if (!line.trim()) continue;
            const r = JSON.parse(line) as RecordedSecret;
            recorded.push({
              kind: r.kind,
              value: Buffer.from(r.hex, 'hex').toString('utf8'),
              ...(r.pairHex ? { pair: Buffer.from(r.pairHex, 'hex').toString('utf8') } : {}),
              ...(r.name ? { name: r.name } : {}),
            });
          }
        } else {
          logs.push({ path, name: relative(dir, path), source: sourceOf(entry.name), text });
        }
      }
    }
  };
  walk(dir);
  return { logs, recorded };
}

export function scanRun(
  dir: string,
  options: { partial?: boolean; minimums?: Partial<typeof FULL_RUN_MINIMUMS> } = {},
): ScanResult {
  const { logs, recorded } = readRun(dir);
  const all = [...STATIC_SECRETS, ...recorded];
  const secrets = knownSecrets(all);

  // Callback capability tokens: HMAC(callback secret, id) for every payment id the logs mention.
  const callbackSecrets = [
    ...new Set(all.filter((s) => s.kind === 'callback-secret' || s.kind === 'dev-secret').map((s) => s.value)),
  ];
  const ids = new Set<string>();
  for (const f of logs) for (const u of uuidsIn(f.text)) ids.add(u.toLowerCase());
  const callbackTokens = new Set<string>();
  for (const secret of callbackSecrets)
    for (const id of ids) {
      callbackTokens.add(callbackTokenFor(secret, id));
      // The scoped result URLs' tokens too (refund result / timeout / status, payment status: mpesa/callback-token.ts).
      for (const scope of SCOPED_CALLBACKS) callbackTokens.add(callbackTokenFor(secret, `smartduka:${scope}:${id}`));
    }

  const scanner = new LeakScanner({ secrets, callbackTokens, allow: ALLOW_RULES });
  const findings: Finding[] = [];
  const summary: RunSummary = {
    files: logs.length,
    bytes: 0,
    lines: 0,
    bySource: {},
    appRequestLines: 0,
    appLevelLines: { trace: 0, debug: 0, info: 0, warn: 0, error: 0, fatal: 0 },
    simTokenLines: 0,
    secrets: {},
    callbackTokens: callbackTokens.size,
  };
  const distinct = new Set<string>();
  for (const r of all) {
    const key = `${r.kind}\u0000${r.value}`;
    if (r.value.length < MIN_SECRET_LENGTH || distinct.has(key)) continue;
    distinct.add(key);
    summary.secrets[r.kind] = (summary.secrets[r.kind] ?? 0) + 1;
  }

  for (const f of logs) {
    const lineCount = f.text.length ? f.text.split('\n').filter((l) => l.length > 0).length : 0;
    summary.bytes += Buffer.byteLength(f.text);
    summary.lines += lineCount;
    const s = (summary.bySource[f.source] ??= { files: 0, lines: 0 });
    s.files++;
    s.lines += lineCount;
    if (f.source === 'app') {
      summary.appRequestLines += (f.text.match(/"msg":"request (completed|errored)"/g) ?? []).length;
      countAppLevels(f.text, summary.appLevelLines);
    }
    if (f.source === 'sim') summary.simTokenLines += (f.text.match(/-> 200 token issued/g) ?? []).length;
    findings.push(...scanner.scanText(f.name, f.text));
  }

  const tooSmall: string[] = [];
  if (summary.files === 0 || summary.lines === 0) tooSmall.push('the folder holds no log lines at all');
  if (!options.partial) {
    const min = { ...FULL_RUN_MINIMUMS, ...options.minimums };
    const src = (k: string) => summary.bySource[k] ?? { files: 0, lines: 0 };
    if (src('app').files < min.appFiles)
      tooSmall.push(`app logs from ${src('app').files} test files (expected at least ${min.appFiles})`);
    if (src('app').lines < min.appLines)
      tooSmall.push(`${src('app').lines} app log lines (expected at least ${min.appLines})`);
    if (summary.appRequestLines < min.appRequestLines)
      tooSmall.push(
        `${summary.appRequestLines} logged HTTP requests (expected at least ${min.appRequestLines}: is the log level above info?)`,
      );
    // Per level: 4xx request lines (warn) and warnings keep the totals up when the level is raised.
    for (const [level, floor] of [
      ['info', min.appInfoLines],
      ['debug', min.appDebugLines],
      ['trace', min.appTraceLines],
    ] as const) {
      const n = summary.appLevelLines[level];
      if (n < floor)
        tooSmall.push(
          `${n} ${level}-level application log lines (expected at least ${floor}: is the log level above ${level}? ${TEST_SCAN_LOG_LEVEL_NOTE})`,
        );
    }
    if (src('sim').files < min.simFiles)
      tooSmall.push(`simulator logs from ${src('sim').files} test files (expected at least ${min.simFiles})`);
    if (summary.simTokenLines < min.simTokenLines)
      tooSmall.push(
        `${summary.simTokenLines} OAuth tokens issued according to the simulator logs (expected at least ${min.simTokenLines})`,
      );
    if (src('child').files < min.childFiles)
      tooSmall.push(
        `${src('child').files} child-process logs (expected at least ${min.childFiles}: the dev-server e2e's output)`,
      );
    if ((summary.secrets['access-token'] ?? 0) < min.accessTokens)
      tooSmall.push(
        `${summary.secrets['access-token'] ?? 0} issued access tokens learned (expected at least ${min.accessTokens}): the token scan would be blind`,
      );
    for (const kind of ['jwt-secret', 'callback-secret', 'consumer-secret', 'passkey'] as const) {
      if (!recorded.some((r) => r.kind === kind))
        tooSmall.push(`no app recorded its ${LABELS[kind]}: were the apps started by test/helpers/test-app.ts?`);
    }
  }
  return { dir, summary, findings, allowed: scanner.allowed, tooSmall };
}

export function formatReport(result: ScanResult, maxFindings = 200): string {
  const { summary: s } = result;
  const out: string[] = [];
  const sources = Object.entries(s.bySource)
    .map(([k, v]) => `${k} ${v.files} files/${v.lines} lines`)
    .join(', ');
  out.push(
    `log scan of ${relative(process.cwd(), result.dir) || '.'}: ${s.files} files, ${s.lines} lines, ${(s.bytes / 1024).toFixed(0)} KB (${sources || 'nothing'})`,
  );
  out.push(
    `  looked for: ${Object.entries(s.secrets)
      .map(([k, n]) => `${n} ${k}`)
      .join(', ')}, ${s.callbackTokens} callback tokens, JWTs, Bearer/Basic credentials, unmasked phone numbers`,
  );
  for (const [reason, n] of result.allowed) out.push(`  allowed ${n}×: ${reason}`);
  if (result.findings.length) {
    const byKind = new Map<string, number>();
    for (const f of result.findings) byKind.set(f.kind, (byKind.get(f.kind) ?? 0) + 1);
    out.push(`LEAKS: ${result.findings.length} (${[...byKind].map(([k, n]) => `${n} ${k}`).join(', ')})`);
    for (const f of result.findings.slice(0, maxFindings))
      out.push(`  ${f.file}:${f.line}:${f.column}  ${f.kind}  ${f.label}\n      ${f.excerpt}`);
    if (result.findings.length > maxFindings) out.push(`  … and ${result.findings.length - maxFindings} more`);
  }
  if (result.tooSmall.length) {
    out.push('TOO LITTLE TO SCAN (a scan of nothing cannot fail):');
    for (const p of result.tooSmall) out.push(`  - ${p}`);
  }
  if (!result.findings.length && !result.tooSmall.length) out.push('no leaks found');
  return out.join('\n');
}

/** 0 clean, 1 leaks, 2 too little to scan. */
export function exitCodeOf(result: ScanResult): number {
  return result.findings.length ? 1 : result.tooSmall.length ? 2 : 0;
}

export function newestRun(root = LOGS_ROOT): string | undefined {
  if (!existsSync(root)) return undefined;
  const runs = readdirSync(root)
    .filter((n) => n.startsWith('run-'))
    .map((n) => join(root, n))
    .filter((p) => statSync(p).isDirectory())
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return runs[0];
}

function main(argv: string[]): number {
  const partial = argv.includes('--partial');
  const dirArg = argv.find((a) => !a.startsWith('--'));
  const dir = dirArg ? resolve(dirArg) : newestRun();
  if (!dir || !existsSync(dir)) {
    process.stderr.write(`log scan: no run folder ${dir ? `at ${dir}` : `under ${LOGS_ROOT}`} (run \`pnpm test\`)\n`);
    return 2;
  }
  const result = scanRun(dir, { partial });
  const report = formatReport(result);
  (exitCodeOf(result) ? process.stderr : process.stdout).write(report + '\n');
  return exitCodeOf(result);
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
