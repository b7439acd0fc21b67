import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import request from 'supertest';
import { API_START_BUDGET_MS, API_STOP_BUDGET_MS } from './helpers/api-process';
import { scaled, testTimeout, waitUntil } from './helpers/deadlines';
import { freePort } from './helpers/test-app';

const API_DIR = resolve(__dirname, '..');
const BUILT = join(API_DIR, 'dist/main.js');
// .ci/run builds first (pnpm build); a developer who has not built skips this file.
const built = existsSync(BUILT);
if (!built && process.env.CI) throw new Error(`CI must have built the API (${BUILT}): .ci/run runs pnpm build`);

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((r) =>
    child.exitCode !== null || child.signalCode !== null ? r(child.exitCode) : child.once('exit', (code) => r(code)),
  );
}

/** Exit code, or 'hung' when the process is still running after the stop budget. */
async function exitWithin(child: ChildProcess): Promise<number | null | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([
    exited(child),
    new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), scaled(API_STOP_BUDGET_MS)))),
  ]);
  clearTimeout(timer);
  return code;
}

/**
 * Starts the API (a command of `what`), with the environment a user would give it, and waits for
 * its dev token; fails at once if it exits first.
 */
async function launch(
  what: string,
  command: string,
  args: string[],
  options: { cwd: string; dataDir: string; detached?: boolean },
): Promise<{ child: ChildProcess; port: number; output: () => string }> {
  const port = await freePort();
  let out = '';
  const child = spawn(command, args, {
    cwd: options.cwd,
    detached: options.detached ?? false,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      PORT: String(port),
      SIMULATOR_PORT: String(await freePort()),
      DATA_DIR: options.dataDir,
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const running = () =>
    child.exitCode !== null || child.signalCode !== null
      ? `${what} exited (code ${child.exitCode}):\n${out}`
      : undefined;
  try {
    await waitUntil(`${what} to print its dev token`, API_START_BUDGET_MS, async () => out.includes('export TOKEN='), {
      failIf: running,
    });
  } catch (err) {
    // Nothing left running after a failed start (the whole group when it has its own).
    try {
      if (options.detached) process.kill(-child.pid!, 'SIGKILL');
      else child.kill('SIGKILL');
    } catch {
      // already gone
    }
    throw err;
  }
  return { child, port, output: () => out };
}

/** `pnpm start`: the compiled API, with a guard that fails the process if any TypeScript is loaded. */
(built ? describe : describe.skip)('the built API (pnpm build, pnpm start)', () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'smartduka-built-'));
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it(
    'starts from dist/ with no TypeScript at runtime (simulators from their build), serves, and exits 0 on SIGTERM',
    async () => {
      const { child, port, output } = await launch(
        'the built API',
        process.execPath,
        ['--require', join(__dirname, 'fixtures/no-typescript.js'), BUILT],
        { cwd: API_DIR, dataDir },
      );
      try {
        const api = request(`http://127.0.0.1:${port}`);
        expect((await api.get('/health/ready')).body).toMatchObject({ status: 'ready', pendingMigrations: 0 });
        const auth = `Bearer ${/export TOKEN=(\S+)/.exec(output())![1]}`;
        expect((await api.post('/orders').set('Authorization', auth).send({ id: 'BUILT-1', total: 10 })).status).toBe(
          201,
        );
        const push = await api
          .post('/payments/stk-push')
          .set('Authorization', auth)
          .send({ phoneNumber: '0712345678', amount: 10, orderId: 'BUILT-1' });
        expect(push.status).toBe(201);
        expect(output()).not.toContain('no-typescript.js');
      } finally {
        child.kill('SIGTERM');
        const code = await exitWithin(child);
        if (code === 'hung') child.kill('SIGKILL');
        expect({ code, tail: code === 0 ? '' : output().slice(-2000) }).toEqual({ code: 0, tail: '' });
      }
    },
    testTimeout(API_START_BUDGET_MS + API_STOP_BUDGET_MS + 20_000),
  );

  it(
    '`pnpm start` from the repo root: a SIGTERM to pnpm alone (what a container or process manager sends its main process) reaches the API, which exits 0 and leaves nothing behind',
    async () => {
      // Its own process group, so the finally can clean up whatever a failure leaves running.
      const { child, port, output } = await launch('pnpm start', 'pnpm', ['start'], {
        cwd: resolve(API_DIR, '../..'),
        dataDir,
        detached: true,
      });
      try {
        const api = request(`http://127.0.0.1:${port}`);
        expect((await api.get('/health/live')).status).toBe(200);
        process.kill(child.pid!, 'SIGTERM');
        const code = await exitWithin(child);
        expect({ code, tail: code === 0 ? '' : output().slice(-2000) }).toEqual({ code: 0, tail: '' });
        expect(output()).not.toMatch(/ELIFECYCLE|ERR_PNPM/);
        // The API went with it: nothing still listens (an orphaned API would keep serving, undrained).
        await expect(api.get('/health/live')).rejects.toThrow(/ECONNREFUSED/);
      } finally {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // the group is gone: nothing was left behind
        }
      }
    },
    testTimeout(API_START_BUDGET_MS + API_STOP_BUDGET_MS + 20_000),
  );
});
