import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import request from 'supertest';
import { SANDBOX_PASSKEY } from '../src/config/app-config';
import { mintToken } from '../src/auth/token';
import { API_START_BUDGET_MS, API_STOP_BUDGET_MS } from './helpers/api-process';
import { scaled, step, testTimeout, waitUntil } from './helpers/deadlines';
import { freePort } from './helpers/test-app';

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
  return new Promise((r) =>
    child.exitCode !== null || child.signalCode !== null ? r(child.exitCode) : child.once('exit', (code) => r(code)),
  );
}

/**
 * SIGINT (what Ctrl-C sends) and wait; a shutdown that hangs is SIGKILLed and fails the test (a
 * hang is a bug), and so does an exit by the signal or with a code other than 0 (pnpm prints an
 * error block for those, which looks like a crash).
 */
async function stop(child: ChildProcess, output: () => string): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGINT');
  let timer: NodeJS.Timeout | undefined;
  const limit = scaled(API_STOP_BUDGET_MS);
  const stopped = await Promise.race([
    exited(child).then(() => true),
    new Promise<false>((r) => (timer = setTimeout(() => r(false), limit))),
  ]);
  clearTimeout(timer);
  if (stopped) {
    if (child.exitCode !== 0)
      throw new Error(
        `pnpm dev ended by Ctrl-C with code ${child.exitCode} (signal ${child.signalCode}), not 0. Output:\n${output().split('\n').slice(-40).join('\n')}`,
      );
    return;
  }
  child.kill('SIGKILL');
  await exited(child);
  throw new Error(
    `pnpm dev did not exit within ${limit} ms of SIGINT. Output:\n${output().split('\n').slice(-40).join('\n')}`,
  );
}

/** Step budgets, ms on a quiet 2-core machine (scaled for a busy one): see helpers/deadlines.ts. */
const BUDGET = { paid: 20_000, requests: 15_000 };

/** README command 1, as a user runs it: no .env, embedded simulator, embedded PGlite. */
describe('pnpm dev (the real entry point)', () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'smartduka-dev-'));
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it(
    'boots with no configuration, prints a working dev token, and takes a payment end to end',
    async () => {
      const port = await freePort();
      const simPort = await freePort();
      const posPort = await freePort();
      const { child, output } = run({
        PORT: String(port),
        SIMULATOR_PORT: String(simPort),
        POS_PORT: String(posPort),
        DATA_DIR: dataDir,
        // LOG_LEVEL unset: what a new user sees (info, pretty).
      });
      const running = () =>
        child.exitCode !== null || child.signalCode !== null
          ? `pnpm dev exited (code ${child.exitCode}, signal ${child.signalCode}):\n${output()}`
          : undefined;
      try {
        // Ready when it printed the dev token (after migrating and listening); fails at once if it exits.
        await waitUntil(
          'pnpm dev to print its dev token',
          API_START_BUDGET_MS,
          async () => output().includes('export TOKEN='),
          { failIf: running },
        );
        const token = /export TOKEN=(\S+)/.exec(output())![1];
        // The dev token is the last thing on screen, not scrolled away by the curl examples or by
        // boot work that logs after listening (Pesapal's IPN registration with its simulator).
        await waitUntil(
          'the Pesapal IPN registration to be logged',
          API_START_BUDGET_MS,
          async () => output().includes('Pesapal IPN ready'),
          { failIf: running },
        );
        const lines = output()
          .split('\n')
          .filter((l) => l.trim() !== '');
        expect(lines[lines.length - 1].trim()).toBe(`export TOKEN=${token}`);
        expect(output()).toContain(`http://localhost:${port}/docs`);
        expect(output()).toContain('254700000001');
        // Where a new user finds the customer-started payments (C2B, QR, Pull) of the simulator.
        expect(output()).toContain(`http://127.0.0.1:${simPort}/__sim/c2b/payments`);
        expect(output()).toContain('MPESA_SETUP.md section 7');
        const api = request(`http://127.0.0.1:${port}`);
        const auth = `Bearer ${token}`;
        await step('health, an order and a push', BUDGET.requests, async () => {
          expect((await api.get('/health')).body).toMatchObject({
            status: 'ok',
            database: 'up',
            databaseKind: 'pglite',
          });
          expect((await api.post('/orders').set('Authorization', auth).send({ id: 'DEV-1', total: 10 })).status).toBe(
            201,
          );
          const push = await api
            .post('/payments/stk-push')
            .set('Authorization', auth)
            .send({ phoneNumber: '0712345678', amount: 10, orderId: 'DEV-1' });
          expect(push.status).toBe(201);
        });
        // The embedded simulator's customer answers after ~3 s; its callback marks the order paid.
        let last: unknown;
        await waitUntil(
          "the order to be paid by the embedded simulator's callback",
          BUDGET.paid,
          async () => {
            last = (await api.get('/orders/DEV-1').set('Authorization', auth)).body;
            return (last as { status?: string }).status === 'paid';
          },
          { intervalMs: 200, failIf: running, progress: () => `order: ${JSON.stringify(last)}` },
        );
        // The checkout screen next to the API: its page, its bundle, and a config.js with the API and a working token.
        expect(output()).toContain(`POS checkout screen: http://localhost:${posPort}`);
        const posSite = request(`http://127.0.0.1:${posPort}`);
        await step('the POS checkout screen', BUDGET.requests, async () => {
          const page = await posSite.get('/');
          expect(page.status).toBe(200);
          expect(page.text).toContain('<script src="/config.js"></script>');
          const bundle = await posSite.get('/app.js');
          expect({ status: bundle.status, type: bundle.headers['content-type'] }).toMatchObject({
            status: 200,
            type: expect.stringContaining('javascript'),
          });
          const config = await posSite.get('/config.js');
          const m = /^window\.SMARTDUKA_POS = (\{.*\});\n$/.exec(config.text);
          expect(m).not.toBeNull();
          const posConfig = JSON.parse(m![1]) as { apiBaseUrl: string; token: string };
          expect(posConfig.apiBaseUrl).toBe(`http://localhost:${port}`);
          // The page's token works against the API, and the API lets the page's origin call it (CORS).
          const seen = await api
            .get('/orders/DEV-1')
            .set('Authorization', `Bearer ${posConfig.token}`)
            .set('Origin', `http://localhost:${posPort}`);
          expect(seen.status).toBe(200);
          expect(seen.headers['access-control-allow-origin']).toBe(`http://localhost:${posPort}`);
        });
        const docs = await step('the OpenAPI document', BUDGET.requests, () =>
          api.get('/docs/openapi.json').then((r) => r),
        );
        expect(Object.keys(docs.body.paths)).toEqual(
          expect.arrayContaining([
            '/payments/stk-push',
            '/payments/stk-status',
            '/payments/callback',
            '/orders',
            '/health',
          ]),
        );
        // Secrets and full phone numbers never reach the log.
        expect(output()).not.toMatch(
          /254712345678|bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919|smartduka-sim-secret/,
        );
      } finally {
        await stop(child, output);
      }
    },
    testTimeout(
      API_START_BUDGET_MS,
      BUDGET.requests,
      BUDGET.paid,
      BUDGET.requests,
      BUDGET.requests,
      API_STOP_BUDGET_MS,
    ),
  );

  it(
    'C2B and Pull registrations survive a restart of pnpm dev: the embedded simulator gets them back (Daraja keeps them)',
    async () => {
      const ownDir = mkdtempSync(join(tmpdir(), 'smartduka-dev-c2b-'));
      const port = await freePort();
      const simPort = await freePort();
      const boot = async () => {
        const r = run({
          PORT: String(port),
          SIMULATOR_PORT: String(simPort),
          POS_ENABLED: 'false',
          DATA_DIR: ownDir,
          LOG_LEVEL: 'warn',
        });
        await waitUntil('pnpm dev to print its dev token', API_START_BUDGET_MS, async () =>
          r.output().includes('export TOKEN='),
        );
        return r;
      };
      const api = request(`http://127.0.0.1:${port}`);
      const sim = request(`http://127.0.0.1:${simPort}`);
      let dev = await boot();
      try {
        const { jwtSecret } = JSON.parse(readFileSync(join(ownDir, 'dev-secrets.json'), 'utf8')) as {
          jwtSecret: string;
        };
        const mgr = `Bearer ${mintToken(jwtSecret, { sub: 'mgr-1', shopId: 'shop-1', role: 'manager' })}`;
        const cashier = `Bearer ${mintToken(jwtSecret, { sub: 'cashier-1', shopId: 'shop-1', role: 'cashier' })}`;
        await step('an own till account, its C2B URLs and its Pull registration', BUDGET.requests, async () => {
          const put = await api.put('/shops/shop-1/merchant-accounts/mpesa').set('Authorization', mgr).send({
            environment: 'simulator',
            type: 'till',
            shortcode: '174379',
            tillNumber: '174380',
            consumerKey: 'smartduka-sim-key',
            consumerSecret: 'smartduka-sim-secret',
            passkey: SANDBOX_PASSKEY,
          });
          expect(put.status).toBe(200);
          expect((await api.post('/shops/shop-1/c2b-registration').set('Authorization', mgr).send({})).status).toBe(
            200,
          );
          const pull = await api
            .post('/shops/shop-1/merchant-accounts/mpesa/pull-registration')
            .set('Authorization', mgr)
            .send({ nominatedNumber: '0722000000' });
          expect(pull.status).toBe(201);
        });
        await stop(dev.child, dev.output);
        dev = await boot();
        await step('a till payment after the restart reaches the feed', BUDGET.requests, async () => {
          const paid = await sim.post('/__sim/c2b/payments').send({ shortcode: '174380', amount: 7 });
          expect(paid.status).toBe(201);
          expect(paid.body.outcome).toBe('confirmed');
          const feed = await api
            .get(`/payments/c2b/unclaimed?receipt=${paid.body.transId}`)
            .set('Authorization', cashier);
          expect(feed.body).toEqual([expect.objectContaining({ amount: 7 })]);
          const pulls = await sim.get('/__sim/pull-transactions');
          expect(pulls.body.registrations).toEqual([expect.objectContaining({ shortcode: '174380' })]);
        });
      } finally {
        await stop(dev.child, dev.output).catch(() => dev.child.kill('SIGKILL'));
        rmSync(ownDir, { recursive: true, force: true });
      }
    },
    testTimeout(API_START_BUDGET_MS, API_STOP_BUDGET_MS, API_START_BUDGET_MS, BUDGET.requests * 2, API_STOP_BUDGET_MS),
  );

  it(
    'a taken PORT is said in one line that names PORT, without a stack trace',
    async () => {
      const taken = createServer();
      await new Promise<void>((r) => taken.listen(0, '0.0.0.0', r));
      const port = (taken.address() as AddressInfo).port;
      const { child, output } = run({
        PORT: String(port),
        SIMULATOR_PORT: String(await freePort()),
        POS_PORT: String(await freePort()),
        DATA_DIR: dataDir,
        LOG_LEVEL: 'warn',
      });
      try {
        expect(
          await step(
            'pnpm dev to refuse the taken port and exit',
            API_START_BUDGET_MS,
            () => exited(child),
            () => `output so far:\n${output()}`,
          ),
        ).toBe(1);
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        taken.close();
      }
      expect(output()).toContain(`Port ${port} is already in use`);
      expect(output()).toMatch(/PORT=\d+ pnpm dev/);
      expect(output()).not.toMatch(/at \w+ \(/); // no stack trace
    },
    testTimeout(API_START_BUDGET_MS, API_STOP_BUDGET_MS),
  );

  it(
    'refuses to boot with a bad environment, listing every problem in one message',
    async () => {
      const { child, output } = run({ NODE_ENV: 'production', DATA_DIR: dataDir });
      try {
        expect(
          await step(
            'pnpm dev to refuse the configuration and exit',
            API_START_BUDGET_MS,
            () => exited(child),
            () => `output so far:\n${output()}`,
          ),
        ).toBe(1);
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
      expect(output()).toMatch(/Invalid configuration \(\d+ problems\)/);
      expect(output()).toMatch(/JWT_SECRET is required/);
      expect(output()).toMatch(/MPESA_CALLBACK_URL is required/);
      expect(output()).not.toMatch(/at \w+ \(/); // no stack trace
    },
    testTimeout(API_START_BUDGET_MS),
  );
});
