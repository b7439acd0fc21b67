import { ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import request from 'supertest';
import { freePort, TEST_CALLBACK_SECRET, TEST_JWT_SECRET, waitFor } from './test-app';

const API_DIR = resolve(__dirname, '../..');

/** The API as a separate OS process (src/main.ts), as it runs in production: for multi-process and crash tests. */
export interface ApiProcess {
  port: number;
  baseUrl: string;
  child: ChildProcess;
  http: () => ReturnType<typeof request>;
  output(): string;
  /** resolves when the process has exited */
  exited: Promise<number | null>;
  /** SIGTERM and wait (graceful shutdown) */
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
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
  let dead = false;
  void exited.then(() => (dead = true));
  try {
    await waitFor(async () => {
      if (dead) throw new Error(`API process exited during start:\n${out}`);
      const res = await request(baseUrl).get('/health').timeout(1000);
      return res.status === 200;
    }, 40000, 100);
  } catch (err) {
    await proc.kill();
    throw err;
  }
  return proc;
}
