/**
 * Cold start to healthy on the embedded database: the wall time from starting
 * `node -r @swc-node/register src/main.ts` (what `pnpm dev` runs, without pnpm's own start-up)
 * to the first 200 from GET /health, with no DATABASE_URL (PGlite in DATA_DIR, embedded
 * simulator). Two cases per run:
 *   first start  an empty DATA_DIR: PGlite creates its cluster, all migrations run
 *   restart      the same DATA_DIR again: the database exists, migrations are no-ops
 * plus, for comparison, the same on a fresh Postgres database (DATABASE_URL), and a breakdown of
 * where the time goes (bench/lib/boot-phases.ts mirrors main.ts step by step). The resident
 * memory right after start is reported too; under load it is bench/memory.bench.ts's subject.
 *
 *   pnpm bench:cold-start
 *   BENCH_SMOKE=1 pnpm bench:cold-start     one run of each
 *   BENCH_COLD_RUNS=5                      runs per case (median reported)
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import {
  check,
  envInt,
  freshPostgres,
  log,
  machineInfo,
  median,
  run,
  SMOKE,
  sleep,
  table,
  verdictTable,
  writeResult,
  type TargetVerdict,
} from './lib/common';
import { API_DIR, SWC_REGISTER } from './lib/deps';
import { freePort, LOG_DIR, procCpuMs, procRss, removeLog, startChild, tail } from './lib/procs';

const RUNS = SMOKE ? 1 : envInt('BENCH_COLD_RUNS', 5, 1);
const TARGET_MS = 2000;
/** Issue 13: a restart from the build on an existing embedded database in under a second. */
const RESTART_TARGET_MS = 1000;

interface Start {
  ms: number;
  /** CPU time (user + system) the process had used when it was healthy: less sensitive to a busy machine than wall time */
  cpuMs?: number;
  databaseKind: string;
  rssMb?: number;
}

/** How the API is started: from source as `pnpm dev` does (swc), or from the build as `pnpm start` does. */
type Mode = 'source' | 'build';
const BUILT_MAIN = join(API_DIR, 'dist/main.js');

/** Starts main.ts, polls /health every 10 ms, stops it (SIGTERM) and waits for it to exit. */
async function startMain(dataDir: string, databaseUrl?: string, mode: Mode = 'source'): Promise<Start> {
  const port = await freePort();
  // The folder may have been cleaned up by the benchmark before this one (cleanupLogs after a successful run).
  mkdirSync(LOG_DIR, { recursive: true });
  const logFile = join(LOG_DIR, `cold-start-${process.pid}-${Date.now()}.log`);
  const fd = openSync(logFile, 'w');
  const started = performance.now();
  const child = spawn(process.execPath, mode === 'build' ? [BUILT_MAIN] : ['-r', SWC_REGISTER, 'src/main.ts'], {
    cwd: API_DIR,
    env: {
      ...process.env,
      // From the build: the API as it runs for real, without the development POS screen (its bundler).
      ...(mode === 'build' ? { POS_ENABLED: 'false' } : {}),
      NODE_ENV: 'development',
      LOG_LEVEL: 'info',
      PORT: String(port),
      SIMULATOR_PORT: '0',
      DATA_DIR: dataDir,
      INIT_CWD: dataDir,
      DATABASE_URL: databaseUrl ?? '',
    },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  let exited = false;
  const exit = new Promise<void>((r) => child.once('exit', () => ((exited = true), r())));
  try {
    for (;;) {
      if (exited) throw new Error(`main.ts exited before it was healthy; see ${logFile}:\n${tail(logFile)}`);
      if (performance.now() - started > 60_000) throw new Error(`main.ts not healthy after 60 s; see ${logFile}`);
      try {
        const res = await fetch(`http://127.0.0.1:${port}/health`);
        const body = (await res.json()) as { status?: string; databaseKind?: string };
        if (res.status === 200 && body.status === 'ok') {
          const ms = Math.round(performance.now() - started);
          return {
            ms,
            cpuMs: procCpuMs(child.pid!),
            databaseKind: String(body.databaseKind),
            rssMb: procRss(child.pid!)?.rssMb,
          };
        }
      } catch {
        // not listening yet
      }
      await sleep(10);
    }
  } finally {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exit;
    clearTimeout(timer);
    removeLog(logFile);
  }
}

type Marks = Record<string, number>;

async function phases(dataDir: string): Promise<Marks> {
  const child = await startChild('boot-phases', resolve(__dirname, 'lib/boot-phases.ts'), {
    env: {
      NODE_ENV: 'development',
      LOG_LEVEL: 'info',
      PORT: String(await freePort()),
      DATA_DIR: dataDir,
      DATABASE_URL: '',
      FLUTTERWAVE_ENABLED: 'false',
      PESAPAL_ENABLED: 'false',
    },
  });
  const marks = child.ready.marks as Marks;
  await child.stop();
  removeLog(child.logFile);
  return marks;
}

const STEPS: [string, string, string][] = [
  ['node + @swc-node/register start-up', '', 'scriptStart'],
  ['load + compile the code', 'scriptStart', 'modulesLoaded'],
  ['start the embedded simulator', 'modulesLoaded', 'simulatorStarted'],
  ['open PGlite', 'simulatorStarted', 'databaseOpen'],
  ['migrations', 'databaseOpen', 'migrated'],
  ['build the Nest app', 'migrated', 'appCreated'],
  ['listen', 'appCreated', 'listening'],
  ['first /health', 'listening', 'firstHealthy'],
];

async function main(): Promise<void> {
  log(`cold start: ${RUNS} run(s) per case`);
  check(existsSync(BUILT_MAIN), `${BUILT_MAIN} is missing: run pnpm build first (the targets are for the build)`);
  const builtFirst: Start[] = [];
  const builtRestart: Start[] = [];
  const first: Start[] = [];
  const restart: Start[] = [];
  const postgres: Start[] = [];
  let pgVersion: string | undefined;
  for (let i = 0; i < RUNS; i++) {
    const dir = mkdtempSync(join(os.tmpdir(), 'smartduka-cold-'));
    try {
      first.push(await startMain(dir));
      restart.push(await startMain(dir));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const built = mkdtempSync(join(os.tmpdir(), 'smartduka-cold-'));
    try {
      builtFirst.push(await startMain(built, undefined, 'build'));
      builtRestart.push(await startMain(built, undefined, 'build'));
    } finally {
      rmSync(built, { recursive: true, force: true });
    }
    const db = await freshPostgres('cold', 1, { migrate: false });
    pgVersion = db.serverVersion;
    const dir2 = mkdtempSync(join(os.tmpdir(), 'smartduka-cold-'));
    try {
      // the database exists and is empty, as on a first deploy; main.ts migrates it
      postgres.push(await startMain(dir2, db.url));
    } finally {
      rmSync(dir2, { recursive: true, force: true });
      await db.dispose().catch(() => undefined);
    }
    log(
      `  run ${i + 1}: from the build: first start ${builtFirst[i].ms} ms (CPU ${builtFirst[i].cpuMs} ms), restart ${builtRestart[i].ms} ms (CPU ${builtRestart[i].cpuMs} ms); from source: first start ${first[i].ms} ms (CPU ${first[i].cpuMs} ms), restart ${restart[i].ms} ms (CPU ${restart[i].cpuMs} ms) on PGlite; Postgres ${postgres[i].ms} ms (CPU ${postgres[i].cpuMs} ms); load average ${os.loadavg()[0].toFixed(1)}`,
    );
  }
  for (const s of [...first, ...restart, ...builtFirst, ...builtRestart])
    check(
      s.databaseKind === 'pglite',
      `expected the embedded database, /health says ${s.databaseKind} (a .env with DATABASE_URL?)`,
    );
  for (const s of postgres) check(s.databaseKind === 'postgres', `expected Postgres, /health says ${s.databaseKind}`);

  // where the time goes (one fresh and one warm start)
  const dir = mkdtempSync(join(os.tmpdir(), 'smartduka-cold-'));
  let fresh: Marks;
  let warm: Marks;
  try {
    fresh = await phases(dir);
    warm = await phases(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const step = (m: Marks, from: string, to: string): number => Math.round(m[to] - (from ? m[from] : 0));
  for (const m of [fresh, warm])
    check(
      m.firstHealthy > 0 && STEPS.every(([, f, t]) => step(m, f, t) >= 0),
      `implausible boot timings ${JSON.stringify(m)}`,
    );

  const cases = [
    { name: 'from the build: first start, empty DATA_DIR (PGlite)', runs: builtFirst, targetMs: TARGET_MS },
    { name: 'from the build: restart, existing DATA_DIR (PGlite)', runs: builtRestart, targetMs: RESTART_TARGET_MS },
    { name: 'pnpm dev (source, swc, POS screen): first start (PGlite)', runs: first },
    { name: 'pnpm dev (source, swc, POS screen): restart (PGlite)', runs: restart },
    { name: 'first start on Postgres (comparison)', runs: postgres },
  ].map((c) => ({
    ...c,
    medianMs: median(c.runs.map((r) => r.ms)),
    minMs: Math.min(...c.runs.map((r) => r.ms)),
    maxMs: Math.max(...c.runs.map((r) => r.ms)),
    rssMb: median(c.runs.map((r) => r.rssMb ?? NaN)),
    cpuMs: median(c.runs.map((r) => r.cpuMs ?? NaN)),
  }));
  for (const c of cases) check(c.medianMs > 0 && c.medianMs < 60_000, `implausible cold start ${c.medianMs} ms`);

  const verdicts: TargetVerdict[] = SMOKE
    ? []
    : cases
        .filter((c): c is typeof c & { targetMs: number } => 'targetMs' in c && typeof c.targetMs === 'number')
        .map((c) => ({
          name: `cold start to healthy, ${c.name}`,
          target: `< ${c.targetMs} ms`,
          value: `${c.medianMs} ms`,
          met: c.medianMs < c.targetMs,
          miss: c.medianMs >= c.targetMs ? `+${c.medianMs - c.targetMs} ms` : undefined,
        }));
  const result = {
    benchmark: 'cold-start',
    date: new Date().toISOString(),
    smoke: SMOKE,
    settings: {
      runs: RUNS,
      command:
        'node apps/api/dist/main.js (what pnpm start runs; POS_ENABLED=false) and node -r @swc-node/register src/main.ts (what pnpm dev runs)',
      logLevel: 'info',
      healthPollMs: 10,
    },
    cases,
    breakdownMs: {
      firstStart: Object.fromEntries(STEPS.map(([name, f, t]) => [name, step(fresh, f, t)])),
      restart: Object.fromEntries(STEPS.map(([name, f, t]) => [name, step(warm, f, t)])),
    },
    targets: verdicts,
    machine: machineInfo(pgVersion),
  };
  const file = writeResult('cold-start', result);
  process.stdout.write(
    `\n${table(
      ['case', 'median ms', 'min ms', 'max ms', 'CPU ms (median)', 'RSS after start MB'],
      cases.map((c) => [
        c.name,
        c.medianMs,
        c.minMs,
        c.maxMs,
        Number.isNaN(c.cpuMs) ? '-' : c.cpuMs,
        Number.isNaN(c.rssMb) ? '-' : c.rssMb,
      ]),
    )}\n`,
  );
  process.stdout.write(
    `\n${table(
      ['step (boot-phases.ts, ms)', 'first start', 'restart'],
      STEPS.map(([name, f, t]) => [name, step(fresh, f, t), step(warm, f, t)]),
    )}\n`,
  );
  if (verdicts.length) process.stdout.write(`\n${verdictTable(verdicts)}\n`);
  process.stdout.write(`\n-> ${file}\n`);
}

run(main);
