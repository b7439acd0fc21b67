import { createServer, Server, Socket } from 'node:net';
import request from 'supertest';
import { startApiProcess } from './helpers/api-process';
import { StepTimeoutError, step, testTimeout, timeScale, waitUntil } from './helpers/deadlines';

/**
 * The deadlines the multi-process tests run under (helpers/deadlines.ts): a stuck step fails by
 * its name and says what it was waiting for, within its budget, instead of running into jest's
 * anonymous timeout; an API process that never gets ready is reported with its output and killed.
 */
describe('test deadlines', () => {
  const saved = process.env.TEST_TIME_SCALE;
  let sockets: Socket[] = [];
  let silent: Server;
  let silentPort: number;

  beforeAll(async () => {
    process.env.TEST_TIME_SCALE = '1';
    // Accepts connections and never answers: a hung HTTP server, a hung database.
    silent = createServer((s) => void sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    silentPort = (silent.address() as { port: number }).port;
  });
  afterAll(async () => {
    if (saved === undefined) delete process.env.TEST_TIME_SCALE;
    else process.env.TEST_TIME_SCALE = saved;
    for (const s of sockets) s.destroy();
    sockets = [];
    await new Promise((r) => silent.close(r));
  });

  it('issue 8.6: a request that never gets an answer fails its step by name, with what it was waiting for', async () => {
    let answered = 0;
    const err = await step(
      'two requests to a stuck server',
      800,
      () =>
        Promise.all(
          [0, 1].map(() =>
            request(`http://127.0.0.1:${silentPort}`)
              .get('/')
              .then((r) => {
                answered++;
                return r;
              }),
          ),
        ),
      () => `${answered}/2 answered`,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StepTimeoutError);
    expect((err as Error).message).toBe(
      'step "two requests to a stuck server" did not finish within 800 ms (budget 800 ms x load scale 1); still waiting for: 0/2 answered',
    );
  });

  it('issue 8.6: a failing step names itself; a condition wait reports its progress and the last error', async () => {
    await expect(
      step('create orders', 1000, async () => {
        throw new Error('expected 201, got 500');
      }),
    ).rejects.toThrow('step "create orders" failed after');
    await expect(
      waitUntil(
        'the payment to be completed',
        300,
        async () => {
          throw new Error('still pending');
        },
        { progress: () => '1 payment still open' },
      ),
    ).rejects.toThrow(
      /waited 300 ms for the payment to be completed .*; 1 payment still open; last error: still pending/,
    );
    await expect(
      waitUntil('a process to be ready', 10_000, async () => false, { failIf: () => 'it exited (code 1)' }),
    ).rejects.toThrow('gave up waiting for a process to be ready: it exited (code 1)');
  });

  it('issue 8.6: budgets scale with TEST_TIME_SCALE and the jest backstop always outlasts the scaled steps', () => {
    process.env.TEST_TIME_SCALE = '3';
    try {
      expect(timeScale()).toBe(3);
      expect(testTimeout(20_000, 25_000)).toBeGreaterThan(3 * 45_000);
    } finally {
      process.env.TEST_TIME_SCALE = '1';
    }
  });

  it(
    'issue 8.6: an API process that never gets ready (its database never answers) is reported with its output and killed, within its budget',
    async () => {
      const err = await startApiProcess({
        databaseUrl: `postgres://postgres@127.0.0.1:${silentPort}/never`,
        simUrl: 'http://127.0.0.1:9',
        startBudgetMs: 4000,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StepTimeoutError);
      expect((err as Error).message).toMatch(
        /^API process on port \d+ not ready within 4000 ms \(budget 4000 ms x load scale 1\); last: .*ECONNREFUSED.*; killed\. Output tail:/s,
      );
    },
    testTimeout(4000),
  );
});
