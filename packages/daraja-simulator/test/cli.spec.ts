/** The CLI's behaviour flags and env vars (issue 8.12 Timestamp window, issue 8.13 pending query form). */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { behaviourFromCli, SIMULATOR_CERTIFICATE_SHA256, SimulatorControlClient } from '../src';
import {
  basic,
  expectEnvelope,
  nairobiTimestamp,
  oauth,
  password,
  PASSKEY,
  pushBody,
  queryBody,
  SHORTCODE,
  stkPush,
  startReceiver,
  stkQuery,
  token,
} from './helpers';
import { credential, reversalBody, reverse, type ResultMessage } from './result-helpers';

const PACKAGE_DIR = resolve(__dirname, '..');

describe('behaviourFromCli', () => {
  it('reads the env vars, and the flags win over them', () => {
    expect(behaviourFromCli({}, [])).toEqual({});
    expect(
      behaviourFromCli({ SIM_TIMESTAMP_TOLERANCE_SECONDS: '300', SIM_PENDING_QUERY_FORM: 'result4999' }, []),
    ).toEqual({
      timestampToleranceSeconds: 300,
      pendingQueryForm: 'result4999',
    });
    expect(
      behaviourFromCli({ SIM_TIMESTAMP_TOLERANCE_SECONDS: '300' }, ['--timestamp-tolerance-seconds', 'off']),
    ).toEqual({ timestampToleranceSeconds: null });
    expect(behaviourFromCli({ SIM_TIMESTAMP_TOLERANCE_SECONDS: 'none' }, [])).toEqual({
      timestampToleranceSeconds: null,
    });
    expect(
      behaviourFromCli({ SIM_PENDING_QUERY_FORM: 'result4999' }, [
        '--pending-query-form=http500',
        '--timestamp-tolerance-seconds=60',
      ]),
    ).toEqual({
      pendingQueryForm: 'http500',
      timestampToleranceSeconds: 60,
    });
    expect(behaviourFromCli({ SIM_TIMESTAMP_TOLERANCE_SECONDS: '  ' }, [])).toEqual({});
    expect(behaviourFromCli({}, ['--', '--pending-query-form', 'result4999'])).toEqual({
      pendingQueryForm: 'result4999',
    });
  });

  it.each([
    [
      { SIM_TIMESTAMP_TOLERANCE_SECONDS: '-1' },
      [],
      /SIM_TIMESTAMP_TOLERANCE_SECONDS must be a whole number of seconds or "off"/,
    ],
    [{ SIM_TIMESTAMP_TOLERANCE_SECONDS: '5m' }, [], /SIM_TIMESTAMP_TOLERANCE_SECONDS/],
    [{ SIM_PENDING_QUERY_FORM: '4999' }, [], /SIM_PENDING_QUERY_FORM must be one of http500, result4999/],
    [{}, ['--pending-query-form'], /--pending-query-form needs a value/],
    [
      {},
      ['--timestamp-tolerance-seconds', '--pending-query-form', 'http500'],
      /--timestamp-tolerance-seconds needs a value/,
    ],
    [{}, ['--tolerance=5'], /unknown flag --tolerance/],
    [{}, ['300'], /unexpected argument "300"/],
    [{}, ['--timestamp-tolerance-seconds=999999999999'], /timestampToleranceSeconds must be null/],
  ] as const)('refuses %j %j', (env, argv, message) => {
    expect(() => behaviourFromCli(env, argv)).toThrow(message);
  });
});

describe('issue 8.12/8.13: the CLI applies --timestamp-tolerance-seconds and SIM_PENDING_QUERY_FORM', () => {
  let child: ChildProcess | undefined;

  afterEach(async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((done) => {
      c.once('exit', () => done());
      c.kill('SIGTERM');
    });
  });

  /** Starts the CLI and resolves with its URL once it prints the ready line (or rejects with its output). */
  function startCli(args: string[], env: Record<string, string>): Promise<{ url: string; output: () => string }> {
    const proc = spawn(process.execPath, ['-r', '@swc-node/register', 'src/cli.ts', ...args], {
      cwd: PACKAGE_DIR,
      env: { ...process.env, SIM_PORT: '0', SIM_CALLBACK_DELAY_MS: '600000', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    let out = '';
    proc.stdout?.on('data', (d: Buffer) => (out += d.toString('utf8')));
    proc.stderr?.on('data', (d: Buffer) => (out += d.toString('utf8')));
    return new Promise((ok, fail) => {
      // Generous: the CLI compiles TypeScript on start, and the machine may be busy.
      const timer = setTimeout(() => fail(new Error(`CLI not ready after 60 s:\n${out}`)), 60_000);
      const check = (): void => {
        const m = /Daraja simulator ready at (http:\/\/\S+)/.exec(out);
        if (m?.[1]) {
          clearTimeout(timer);
          ok({ url: m[1], output: () => out });
        }
      };
      proc.stdout?.on('data', check);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        fail(new Error(`CLI exited with ${String(code)}:\n${out}`));
      });
    });
  }

  it('a window set by flag refuses a UTC Timestamp; the env var makes pending queries answer 4999', async () => {
    const { url, output } = await startCli(['--timestamp-tolerance-seconds', '300'], {
      SIM_PENDING_QUERY_FORM: 'result4999',
    });
    expect(output()).toContain(
      'Timestamp window (--timestamp-tolerance-seconds / SIM_TIMESTAMP_TOLERANCE_SECONDS): 300 s from Nairobi now',
    );
    expect(output()).toContain('Pending STK query form (--pending-query-form / SIM_PENDING_QUERY_FORM): result4999');
    const t = await token(url);
    const utc = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
    const cb = 'http://127.0.0.1:9/hooks/daraja/stk/cli';
    expectEnvelope(
      await stkPush(url, t, pushBody(cb, { Timestamp: utc, Password: password(SHORTCODE, PASSKEY, utc) })),
      400,
      '400.002.02',
      'Bad Request - Invalid Timestamp',
    );
    const ts = nairobiTimestamp();
    const pushed = await stkPush(url, t, pushBody(cb, { Timestamp: ts, Password: password(SHORTCODE, PASSKEY, ts) }));
    expect(pushed.status).toBe(200);
    const id = (pushed.json as { CheckoutRequestID: string }).CheckoutRequestID;
    const pending = await stkQuery(url, t, queryBody(id));
    expect(pending.status).toBe(200);
    expect(pending.json).toEqual({ ResultCode: '4999', ResultDesc: 'The transaction is still under processing' });
  }, 90_000);

  it('by default there is no Timestamp window', async () => {
    const { url, output } = await startCli([], {});
    expect(output()).toContain(
      'Timestamp window (--timestamp-tolerance-seconds / SIM_TIMESTAMP_TOLERANCE_SECONDS): none',
    );
    const t = await token(url);
    const utc = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
    const res = await stkPush(
      url,
      t,
      pushBody('http://127.0.0.1:9/hooks/daraja/stk/cli', {
        Timestamp: utc,
        Password: password(SHORTCODE, PASSKEY, utc),
      }),
    );
    expect(res.status).toBe(200);
  }, 90_000);

  it('SIM_APPS / SIM_ACCOUNTS add apps and accounts; the app is scoped to its shortcodes', async () => {
    const { url, output } = await startCli([], {
      SIM_APPS: JSON.stringify([
        { consumerKey: 'cli-shop-key', consumerSecret: 'cli-shop-secret', shortcodes: ['600700'] },
      ]),
      SIM_ACCOUNTS: JSON.stringify([{ shortcode: '600700', passkey: 'cli-shop-passkey', tillNumbers: ['600701'] }]),
    });
    expect(output()).toMatch(/cli-shop-key\s+shortcodes 600700/);
    expect(output()).toMatch(/600700\s+tills 600701/);
    expect(output()).not.toContain('cli-shop-secret');
    expect(output()).not.toContain('cli-shop-passkey');
    const res = await oauth(url, basic('cli-shop-key', 'cli-shop-secret'));
    expect(res.status).toBe(200);
    const t = (res.json as { access_token: string }).access_token;
    const ts = nairobiTimestamp();
    const cb = 'http://127.0.0.1:9/hooks/daraja/stk/cli';
    const own = { BusinessShortCode: '600700', PartyB: '600700', Timestamp: ts };
    const pushed = await stkPush(
      url,
      t,
      pushBody(cb, { ...own, Password: password('600700', 'cli-shop-passkey', ts) }),
    );
    expect(pushed.status).toBe(200);
    expectEnvelope(await stkPush(url, t, pushBody(cb)), 500, '500.001.1001', 'Merchant does not exist');
    // the SIM_CONSUMER_KEY app is still there
    await token(url);
  }, 90_000);

  it('SIM_ACCOUNTS initiators and SIM_RESULT_DELAY_MS drive Reversal; the initiator password is never printed', async () => {
    const receiver = await startReceiver();
    try {
      const { url, output } = await startCli([], {
        SIM_CALLBACK_DELAY_MS: '30',
        SIM_RESULT_DELAY_MS: '40',
        SIM_ACCOUNTS: JSON.stringify([
          { shortcode: '600750', passkey: 'cli-pk-750', initiatorName: 'cliop', initiatorPassword: 'Cli-Op-Pw-750' },
        ]),
      });
      expect(output()).toMatch(/result delay\s+40 ms/);
      expect(output()).toContain(SIMULATOR_CERTIFICATE_SHA256);
      const t = await token(url);
      const ts = nairobiTimestamp();
      const pushed = await stkPush(
        url,
        t,
        pushBody(`${receiver.url}/hooks/daraja/stk/cli`, {
          BusinessShortCode: '600750',
          PartyB: '600750',
          Timestamp: ts,
          Password: password('600750', 'cli-pk-750', ts),
        }),
      );
      expect(pushed.status).toBe(200);
      const [callback] = await receiver.waitFor(1, 5000);
      const receipt = (
        JSON.parse(callback?.raw ?? '{}') as {
          Body: { stkCallback: { CallbackMetadata: { Item: Array<{ Name: string; Value?: unknown }> } } };
        }
      ).Body.stkCallback.CallbackMetadata.Item.find((i) => i.Name === 'MpesaReceiptNumber')?.Value as string;
      const accepted = await reverse(
        url,
        t,
        reversalBody(receiver, receipt, {
          ReceiverParty: '600750',
          Initiator: 'cliop',
          SecurityCredential: credential('Cli-Op-Pw-750'),
        }),
      );
      expect(accepted.status).toBe(200);
      const [, result] = await receiver.waitFor(2, 5000);
      expect((JSON.parse(result?.raw ?? '{}') as ResultMessage).Result.ResultCode).toBe(0);
      const [record] = await new SimulatorControlClient(url).reversals();
      expect(record).toMatchObject({ state: 'completed', resultCode: 0, securityCredential: 'decrypted' });
      expect(output()).not.toContain('Cli-Op-Pw-750');
    } finally {
      await receiver.close();
    }
  }, 90_000);

  it('stops with a message on a SIM_APPS that is not a JSON array', async () => {
    await expect(startCli([], { SIM_APPS: '{"consumerKey":"k"' })).rejects.toThrow(/SIM_APPS must be a JSON array/);
  }, 90_000);

  it('stops with a message on a bad flag', async () => {
    await expect(startCli(['--pending-query-form', 'sometimes'], {})).rejects.toThrow(
      /--pending-query-form must be one of http500, result4999/,
    );
  }, 90_000);
});
