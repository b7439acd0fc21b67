/**
 * Shared plumbing of the benchmarks: smoke mode, a fresh database per run, machine details,
 * the result table and the results file.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { openDatabase, type DatabaseHandle } from '../../apps/api/src/database/database';
import { BENCH_DIR, REPO_DIR, sql } from './deps';
import { cleanupLogs, LOG_DIR } from './procs';

/** BENCH_SMOKE=1 or --smoke: a few hundred requests, checks the script end to end, no targets. */
export const SMOKE = process.env.BENCH_SMOKE === '1' || process.argv.includes('--smoke');
export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';
export const DATABASE_URL = process.env.DATABASE_URL || DEFAULT_DATABASE_URL;

export function envInt(name: string, def: number, min = 0): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return def;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < min)
    throw new Error(`${name} must be a whole number >= ${min} (got "${raw}")`);
  return Number(raw);
}

export const log = (line: string): void => {
  process.stderr.write(line + '\n');
};

/** Throws (failing the run, also in smoke mode) when a result is not sane. */
export function check(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(`SANITY CHECK FAILED: ${message}`);
}

// ----------------------------------------------------------------- databases

export interface BenchDatabase {
  url: string;
  name: string;
  handle: DatabaseHandle;
  serverVersion: string;
  dispose(): Promise<void>;
}

let counter = 0;

/** A new database on the DATABASE_URL server, migrated unless told otherwise; dispose() drops it. */
export async function freshPostgres(
  label: string,
  poolSize = 4,
  options: { migrate?: boolean } = {},
): Promise<BenchDatabase> {
  const name = `sd_bench_${label.replace(/[^a-z0-9]/gi, '').toLowerCase()}_${process.pid}_${Date.now().toString(36)}_${counter++}`;
  const admin = await openDatabase({ databaseUrl: DATABASE_URL, poolSize: 1 });
  try {
    await admin.db.execute(sql.raw(`create database ${name}`));
  } catch (err) {
    await admin.close();
    throw new Error(
      `could not create a database on ${redactUrl(DATABASE_URL)} (is Postgres running? set DATABASE_URL): ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  const url = new URL(DATABASE_URL);
  url.pathname = `/${name}`;
  const handle = await openDatabase({ databaseUrl: url.toString(), poolSize });
  if (options.migrate !== false) await handle.migrate();
  const serverVersion = await postgresVersion(handle);
  return {
    url: url.toString(),
    name,
    handle,
    serverVersion,
    async dispose() {
      await handle.close().catch(() => undefined);
      await admin.db.execute(sql.raw(`drop database if exists ${name} with (force)`));
      await admin.close();
    },
  };
}

export async function postgresVersion(handle: DatabaseHandle): Promise<string> {
  return rows<{ server_version: string }>(await handle.db.execute(sql`show server_version`))[0].server_version;
}

/** Rows of a drizzle execute() result, whichever driver (node-postgres: {rows}; PGlite: {rows}). */
export function rows<T>(res: unknown): T[] {
  return ((res as { rows?: T[] }).rows ?? (res as T[])) as T[];
}

/**
 * The database URL handed to a server under test. BENCH_PG_OPTIONS (diagnostics only, e.g.
 * "-c synchronous_commit=off" to see what commit latency costs) is passed as libpq `options`.
 */
export function serverDatabaseUrl(url: string): string {
  const extra = process.env.BENCH_PG_OPTIONS;
  if (!extra) return url;
  const u = new URL(url);
  u.searchParams.set('options', extra);
  return u.toString();
}

export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]+@/, '//$1:***@');
}

// ----------------------------------------------------------------- machine

export interface MachineInfo {
  platform: string;
  cpuModel: string | undefined;
  cpuCount: number;
  totalMemMb: number;
  node: string;
  postgres?: string;
  gitCommit?: string;
  /** files changed (uncommitted) in the working tree when the benchmark ran */
  gitUncommittedFiles?: number;
  loadAverageAtStart: number[];
}

/** Load average when the benchmark process started (the machine may be shared: see the README). */
const LOAD_AT_START = os.loadavg().map((l) => Math.round(l * 100) / 100);

export function machineInfo(postgres?: string): MachineInfo {
  const git = (args: string[]): string | undefined => {
    try {
      return execFileSync('git', ['--no-optional-locks', ...args], {
        cwd: REPO_DIR,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    } catch {
      return undefined;
    }
  };
  const status = git(['status', '--porcelain']);
  return {
    platform: `${os.platform()} ${os.release()}`,
    cpuModel: os.cpus()[0]?.model,
    cpuCount: os.cpus().length,
    totalMemMb: mb(os.totalmem()),
    node: process.version,
    postgres,
    gitCommit: git(['rev-parse', 'HEAD']),
    gitUncommittedFiles: status === undefined ? undefined : status.split('\n').filter(Boolean).length,
    loadAverageAtStart: LOAD_AT_START,
  };
}

export const mb = (bytes: number): number => Math.round((bytes / 1024 / 1024) * 10) / 10;

// ----------------------------------------------------------------- output

export interface TargetVerdict {
  name: string;
  target: string;
  value: string;
  met: boolean;
  /** how far off, e.g. "-12 %" or "+0.4 s" */
  miss?: string;
}

/** Prints rows as an aligned table (first row = header); figures right-aligned, text left. */
export function table(header: string[], body: (string | number)[][]): string {
  const all = [header, ...body.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => body.every((r) => /^([-+]?\d|-$)/.test(String(r[i] ?? '-'))));
  const line = (r: string[]): string =>
    r
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(all[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...all.slice(1).map(line)].join('\n');
}

export function verdictTable(verdicts: TargetVerdict[]): string {
  if (!verdicts.length) return '';
  return table(
    ['target', 'wanted', 'measured', 'met'],
    verdicts.map((v) => [v.name, v.target, v.value, v.met ? 'yes' : `NO${v.miss ? ` (${v.miss})` : ''}`]),
  );
}

export const RESULTS_DIR = SMOKE ? join(os.tmpdir(), 'smartduka-bench-smoke') : resolve(BENCH_DIR, 'results');

/**
 * Writes bench/results/<name>-<yyyy-mm-dd>[-<variant>].json (smoke runs: a temp folder, never the
 * committed results). A later run on the same day replaces the file.
 */
export function writeResult(name: string, result: Record<string, unknown>, variant?: string): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(
    RESULTS_DIR,
    `${name}-${new Date().toISOString().slice(0, 10)}${variant ? `-${variant}` : ''}${SMOKE ? '-smoke' : ''}.json`,
  );
  const loadAverageAtEnd = os.loadavg().map((l) => Math.round(l * 100) / 100);
  const machine =
    result.machine && typeof result.machine === 'object'
      ? { ...(result.machine as object), loadAverageAtEnd }
      : result.machine;
  writeFileSync(file, JSON.stringify({ ...result, machine }, null, 2) + '\n');
  return file;
}

export function pct(ratio: number): string {
  return `${Math.round(ratio * 100)} %`;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Runs main(), prints any error, sets the exit code; server logs are kept only when it fails. */
export function run(main: () => Promise<void>): void {
  main().then(
    () => {
      if (!process.exitCode) cleanupLogs();
      process.exit(process.exitCode ?? 0);
    },
    (err: unknown) => {
      log(String(err instanceof Error ? (err.stack ?? err.message) : err));
      log(`server logs kept in ${LOG_DIR}`);
      process.exit(1);
    },
  );
}
