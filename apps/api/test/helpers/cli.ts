import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { TEST_CALLBACK_SECRET, TEST_JWT_SECRET } from './test-app';

const API_DIR = resolve(__dirname, '../..');

/**
 * Runs one of the API's commands (src/cli/<script>) as an operator would: its own Node process in
 * apps/api, the test secrets, no DATABASE_URL / DATA_DIR / NODE_OPTIONS from the test run unless
 * `env` gives them.
 */
export function runCli(
  script: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const base = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !['DATABASE_URL', 'DATA_DIR', 'NODE_OPTIONS'].includes(k)),
    ) as Record<string, string>;
    const child = spawn(process.execPath, ['-r', '@swc-node/register', `src/cli/${script}`, ...args], {
      cwd: API_DIR,
      env: {
        ...base,
        NODE_ENV: 'test',
        LOG_LEVEL: 'silent',
        JWT_SECRET: TEST_JWT_SECRET,
        CALLBACK_SIGNING_SECRET: TEST_CALLBACK_SECRET,
        INIT_CWD: API_DIR,
        ...env,
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', fail);
    child.once('exit', (code) => done({ code, stdout, stderr }));
  });
}
