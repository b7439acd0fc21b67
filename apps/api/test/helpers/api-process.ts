import { ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import request from 'supertest';
import { scaled, StepTimeoutError, timeScale } from './deadlines';
import { freePort, TEST_CALLBACK_SECRET, TEST_JWT_SECRET } from './test-app';

const API_DIR = resolve(__dirname, '../..');

/**
 * Budgets (ms on a quiet 2-core machine, scaled by deadlines.timeScale()): a start is compiling
 * src/ with swc, migrating and booting Nest (2-4 s quiet); a graceful stop finishes in-flight work.
 */
export const API_START_BUDGET_MS = 30_000;
export const API_STOP_BUDGET_MS = 15_000;

/** The last lines of a child's output, for an error message. */
function tail(out: string, lines = 40): string {
  return out.split('\n').slice(-lines).join('\n');
}

/** The API as a separate OS process (src/main.ts), as it runs in production: for multi-process and crash tests. */
export interface ApiProcess {
  port: number;
  baseUrl: string;
  child: ChildProcess;
  http: () => ReturnType<typeof request>;
  output(): string;
  /** resolves when the process has exited */
  exited: Promise<number | null>;
  /** SIGTERM and wait (graceful shutdown); a shutdown that hangs is SIGKILLed and reported as an error */
  stop(): Promise<void>;
  /** SIGKILL: no shutdown hooks, no flushing, in-flight requests cut */
  kill(): Promise<void>;
}

export interface ApiProcessOptions {
  databaseUrl: string;
  simUrl: string;
  env?: Record<string, string>;
  /** reuse a port (a restarted instance behind the same address) */
  port?: number;
  /** readiness budget in ms before load scaling (default API_START_BUDGET_MS) */
  startBudgetMs?: number;
}

export async function startApiProcess(options: ApiProcessOptions): Promise<ApiProcess> {
  const port = options.port ?? (await freePort());
  let out = '';
  const child = spawn(process.execPath, ['-r', '@swc-node/register', 'src/main.ts'], {
    cwd: API_DIR,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      PORT: String(port),
      DATABASE_URL: options.databaseUrl,
      MPESA_ENV: 'simulator',
      MPESA_BASE_URL: options.simUrl,
      MPESA_CONSUMER_KEY: 'smartduka-sim-key',
      MPESA_CONSUMER_SECRET: 'smartduka-sim-secret',
      JWT_SECRET: TEST_JWT_SECRET,
      CALLBACK_SIGNING_SECRET: TEST_CALLBACK_SECRET,
      MPESA_CALLBACK_URL: `http://127.0.0.1:${port}/payments/callback`,
      MPESA_HTTP_TIMEOUT_MS: '1500',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const baseUrl = `http://127.0.0.1:${port}`;
  const proc: ApiProcess = {
    port,
    baseUrl,
    child,
    http: () => request(baseUrl),
    output: () => out,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const limit = scaled(API_STOP_BUDGET_MS);
      let timer: NodeJS.Timeout | undefined;
      const stopped = await Promise.race([
        exited.then(() => true),
        new Promise<false>((r) => (timer = setTimeout(() => r(false), limit))),
      ]);
      clearTimeout(timer);
      if (stopped) return;
      child.kill('SIGKILL');
      await exited;
      throw new StepTimeoutError(
        `API process on port ${port} did not exit within ${limit} ms of SIGTERM (graceful shutdown hung; SIGKILLed). Output tail:\n${tail(out)}`,
      );
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
  // Ready when /health answers 200; fails at once if the process exits, and after the (scaled)
  // budget with what it last saw and the process's output, never by a fixed sleep.
  let dead = false;
  void exited.then(() => (dead = true));
  const budget = options.startBudgetMs ?? API_START_BUDGET_MS;
  const limit = scaled(budget);
  const started = Date.now();
  let last: string;
  for (;;) {
    if (dead)
      throw new Error(
        `API process exited during start (code ${child.exitCode}, signal ${child.signalCode}):\n${tail(out)}`,
      );
    try {
      const res = await request(baseUrl).get('/health').timeout(2000);
      if (res.status === 200) return proc;
      last = `/health answered ${res.status}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() - started > limit) {
      await proc.kill();
      throw new StepTimeoutError(
        `API process on port ${port} not ready within ${limit} ms (budget ${budget} ms x load scale ${timeScale()}); last: ${last}; killed. Output tail:\n${tail(out)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
