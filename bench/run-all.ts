/**
 * Runs every benchmark, one after the other, each in its own Node process (so one's memory or
 * lingering sockets cannot skew the next), then prints the targets of all of them in one table.
 *
 *   pnpm bench                 full runs (several minutes; results in bench/results/)
 *   pnpm bench:smoke           BENCH_SMOKE=1: a few hundred requests each, sanity checks only
 *   BENCH_ONLY=callbacks,stk-push pnpm bench
 *
 * Exit code: 1 when a benchmark fails (crash or failed sanity check). A missed target is reported,
 * not a failure, unless BENCH_STRICT=1.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { log, SMOKE, table, type TargetVerdict } from './lib/common';
import { API_DIR, SWC_REGISTER } from './lib/deps';

const ALL = [
  'statement',
  'cold-start',
  'callbacks',
  'c2b',
  'stk-push',
  'paid-payment',
  'accounts',
  'memory',
  'live-status',
  'daily-report',
];
const ONLY = process.env.BENCH_ONLY?.split(',')
  .map((s) => s.trim())
  .filter(Boolean);

function runOne(name: string): Promise<{ code: number; resultFile?: string; seconds: number }> {
  const started = Date.now();
  return new Promise((done) => {
    const child = spawn(process.execPath, ['-r', SWC_REGISTER, resolve(__dirname, `${name}.bench.ts`)], {
      cwd: API_DIR,
      env: { ...process.env, ...(SMOKE ? { BENCH_SMOKE: '1' } : {}) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      process.stdout.write(d);
    });
    child.on('exit', (code) => {
      const resultFile = /^-> (.+\.json)$/m.exec(out)?.[1];
      done({ code: code ?? 1, resultFile, seconds: Math.round((Date.now() - started) / 1000) });
    });
  });
}

async function main(): Promise<void> {
  const names = ONLY ?? ALL;
  for (const n of names)
    if (!ALL.includes(n)) throw new Error(`BENCH_ONLY: unknown benchmark ${n} (known: ${ALL.join(', ')})`);
  const summary: (string | number)[][] = [];
  const targets: (TargetVerdict & { bench: string })[] = [];
  let failed = 0;
  for (const name of names) {
    log(`\n=== ${name}${SMOKE ? ' (smoke)' : ''}`);
    const r = await runOne(name);
    if (r.code !== 0) failed++;
    summary.push([name, r.code === 0 ? 'ok' : `FAILED (exit ${r.code})`, r.seconds, r.resultFile ?? '-']);
    if (r.resultFile) {
      const json = JSON.parse(readFileSync(r.resultFile, 'utf8')) as { targets?: TargetVerdict[] };
      for (const t of json.targets ?? []) targets.push({ ...t, bench: name });
    }
  }
  process.stdout.write(`\n${table(['benchmark', 'run', 'seconds', 'results'], summary)}\n`);
  if (targets.length) {
    process.stdout.write(
      `\n${table(
        ['benchmark', 'target', 'wanted', 'measured', 'met'],
        targets.map((t) => [t.bench, t.name, t.target, t.value, t.met ? 'yes' : `NO${t.miss ? ` (${t.miss})` : ''}`]),
      )}\n`,
    );
  }
  const missed = targets.filter((t) => !t.met).length;
  if (failed) process.exitCode = 1;
  else if (missed && process.env.BENCH_STRICT === '1') process.exitCode = 1;
  if (missed) process.stdout.write(`\n${missed} target(s) missed: see bench/README.md for why.\n`);
}

main().catch((err: unknown) => {
  log(String(err instanceof Error ? err.stack : err));
  process.exit(1);
});
