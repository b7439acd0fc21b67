import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import request from 'supertest';
import { freePort, waitFor } from './helpers/test-app';

const API_DIR = resolve(__dirname, '..');

function run(env: Record<string, string>): { child: ChildProcess; output: () => string } {
  let out = '';
  const child = spawn(process.execPath, ['-r', '@swc-node/register', 'src/main.ts'], {
    cwd: API_DIR,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return { child, output: () => out };
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', (code) => r(code))));
}

/** README command 1, as a user runs it: no .env, embedded simulator, embedded PGlite. */
describe('pnpm dev (the real entry point)', () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'smartduka-dev-'));
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('boots with no configuration, prints a working dev token, and takes a payment end to end', async () => {
    const port = await freePort();
    const simPort = await freePort();
    const { child, output } = run({ PORT: String(port), SIMULATOR_PORT: String(simPort), DATA_DIR: dataDir, LOG_LEVEL: 'warn' });
    try {
      await waitFor(async () => output().includes('export TOKEN='), 30000, 100);
      const token = /export TOKEN=(\S+)/.exec(output())![1];
      expect(output()).toContain(`http://localhost:${port}/docs`);
      expect(output()).toContain('254700000001');
      const api = request(`http://127.0.0.1:${port}`);
      expect((await api.get('/health')).body).toMatchObject({ status: 'ok', database: 'up', databaseKind: 'pglite' });
      const auth = `Bearer ${token}`;
      expect((await api.post('/orders').set('Authorization', auth).send({ id: 'DEV-1', total: 10 })).status).toBe(201);
      const push = await api.post('/payments/stk-push').set('Authorization', auth).send({ phoneNumber: '0712345678', amount: 10, orderId: 'DEV-1' });
      expect(push.status).toBe(201);
      await waitFor(async () => (await api.get('/orders/DEV-1').set('Authorization', auth)).body.status === 'paid', 15000, 200);
      const docs = await api.get('/docs/openapi.json');
      expect(Object.keys(docs.body.paths)).toEqual(expect.arrayContaining(['/payments/stk-push', '/payments/stk-status', '/payments/callback', '/orders', '/health']));
      // Secrets and full phone numbers never reach the log.
      expect(output()).not.toMatch(/254712345678|bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919|smartduka-sim-secret/);
    } finally {
      child.kill('SIGTERM');
      await exited(child);
    }
  }, 60000);

  it('refuses to boot with a bad environment, listing every problem in one message', async () => {
    const { child, output } = run({ NODE_ENV: 'production', DATA_DIR: dataDir });
    expect(await exited(child)).toBe(1);
    expect(output()).toMatch(/Invalid configuration \(\d+ problems\)/);
    expect(output()).toMatch(/JWT_SECRET is required/);
    expect(output()).toMatch(/MPESA_CALLBACK_URL is required/);
    expect(output()).not.toMatch(/at \w+ \(/); // no stack trace
  }, 30000);
});
