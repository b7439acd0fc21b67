/**
 * `pnpm test` for apps/api: jest with every test app logging (at the most verbose level) into a
 * fresh folder apps/api/.test-logs/run-<time>-<pid>/, then the leak scan over that folder.
 * Exit code: jest's when it failed, else the scan's (1 leaks, 2 too little logged to prove anything).
 *
 *   pnpm test                       full run: every log source must be present
 *   pnpm test -- test/foo.e2e.ts    jest arguments pass through; the scan is then --partial
 *
 * Run folders older than a day are deleted at start (never the ones of runs still going).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { exitCodeOf, formatReport, LOGS_ROOT, scanRun } from './scan';
import { API_DIR, LOG_DIR_ENV } from './sink';

const KEEP_MS = 24 * 3600 * 1000;

function pruneOldRuns(): void {
  let names: string[];
  try {
    names = readdirSync(LOGS_ROOT);
  } catch {
    return;
  }
  for (const name of names) {
    const path = join(LOGS_ROOT, name);
    try {
      if (name.startsWith('run-') && Date.now() - statSync(path).mtimeMs > KEEP_MS)
        rmSync(path, { recursive: true, force: true });
    } catch {
      // another run removed it first
    }
  }
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  pruneOldRuns();
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
  const dir = join(LOGS_ROOT, `run-${stamp}-${process.pid}`);
  mkdirSync(dir, { recursive: true });

  const nodeOptions = [process.env.NODE_OPTIONS, '--experimental-vm-modules', '--no-warnings=ExperimentalWarning']
    .filter(Boolean)
    .join(' ');
  const jest = spawn(process.execPath, [require.resolve('jest/bin/jest'), ...args], {
    cwd: API_DIR,
    stdio: 'inherit',
    env: { ...process.env, NODE_OPTIONS: nodeOptions, [LOG_DIR_ENV]: dir },
  });
  const jestCode = await new Promise<number>((resolve) =>
    jest.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))),
  );

  const result = scanRun(dir, { partial: args.length > 0 });
  const code = exitCodeOf(result);
  (code ? process.stderr : process.stdout).write(`\n${formatReport(result)}\n`);
  return jestCode || code;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`test run failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
