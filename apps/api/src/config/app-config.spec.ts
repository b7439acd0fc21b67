import {
  callbackUrlProblems,
  ConfigValidationError,
  FORBIDDEN_CALLBACK_WORDS,
  loadConfig,
  SANDBOX_PASSKEY,
} from './app-config';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigValidationError) return err.problems;
    throw err;
  }
  return [];
}

describe('CORS_ORIGINS', () => {
  it('defaults to the POS dev app in development and to nothing elsewhere', () => {
    expect(loadConfig({}).corsOrigins).toEqual(['http://localhost:5173', 'http://127.0.0.1:5173']);
    expect(loadConfig({ NODE_ENV: 'test' }).corsOrigins).toEqual([]);
  });
  it('takes exact origins, trims them and drops a trailing slash and repeats', () => {
    expect(
      loadConfig({ CORS_ORIGINS: ' https://pos.example.co.ke/ ,http://localhost:5173,https://pos.example.co.ke' })
        .corsOrigins,
    ).toEqual(['https://pos.example.co.ke', 'http://localhost:5173']);
  });
  it.each([
    '*',
    'pos.example.co.ke',
    'https://pos.example.co.ke/till',
    'ftp://pos.example.co.ke',
    'https://u:p@pos.example.co.ke',
  ])('refuses %s at boot', (entry) => {
    expect(() => loadConfig({ CORS_ORIGINS: entry })).toThrow(/CORS_ORIGINS entries must be origins/);
  });
});

describe('POS_ENABLED / POS_PORT (the checkout screen pnpm dev serves)', () => {
  it('is on at 5173 in development and off in test and production by default', () => {
    expect(loadConfig({}).pos).toEqual({ enabled: true, port: 5173 });
    expect(loadConfig({ NODE_ENV: 'test' }).pos.enabled).toBe(false);
    expect(loadConfig({ POS_ENABLED: 'false', POS_PORT: '5999' }).pos).toEqual({ enabled: false, port: 5999 });
  });
  it('refuses it in production, where the page would hand out a token, and a bad port', () => {
    expect(problemsOf({ NODE_ENV: 'production', POS_ENABLED: 'true' })).toEqual(
      expect.arrayContaining([expect.stringMatching(/POS_ENABLED=true is not allowed when NODE_ENV=production/)]),
    );
    expect(problemsOf({ NODE_ENV: 'production' }).some((p) => p.includes('POS_'))).toBe(false);
    expect(problemsOf({ POS_PORT: '70000' }).some((p) => p.includes('POS_PORT'))).toBe(true);
  });
});

describe('loadConfig', () => {
  it('boots the simulator with no environment at all', () => {
    const c = loadConfig({});
    expect(c.mpesa).toMatchObject({
      env: 'simulator',
      shortcode: '174379',
      passkey: SANDBOX_PASSKEY,
      transactionType: 'paybill',
      baseUrl: null,
      callbackUrl: 'http://127.0.0.1:3000/payments/callback',
    });
    expect(c.jwt.generated).toBe(true);
    expect(c.jwt.secret.length).toBeGreaterThanOrEqual(32);
    expect(c.mpesa.callbackSigningSecret.length).toBeGreaterThanOrEqual(32);
    expect(c.databaseUrl).toBeUndefined();
  });

  it('lists every problem at once for production', () => {
    const problems = problemsOf({ NODE_ENV: 'production' });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^MPESA_ENV is required/),
        expect.stringMatching(/^JWT_SECRET is required/),
        expect.stringMatching(/^MPESA_CONSUMER_KEY is required/),
        expect.stringMatching(/^MPESA_CONSUMER_SECRET is required/),
        expect.stringMatching(/^MPESA_SHORTCODE is required/),
        expect.stringMatching(/^MPESA_PASSKEY is required/),
        expect.stringMatching(/^MPESA_CALLBACK_URL is required/),
        expect.stringMatching(/^CALLBACK_SIGNING_SECRET is required/),
        expect.stringMatching(/^CREDENTIALS_KEYS is required in production/),
      ]),
    );
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/Invalid configuration \(\d+ problems\)/);
  });

  const sandbox = {
    MPESA_ENV: 'sandbox',
    MPESA_CONSUMER_KEY: 'k',
    MPESA_CONSUMER_SECRET: 's',
    MPESA_SHORTCODE: '174379',
    MPESA_PASSKEY: SANDBOX_PASSKEY,
    MPESA_CALLBACK_URL: 'https://pay.example.com/payments/callback',
    CALLBACK_SIGNING_SECRET: 'x'.repeat(32),
    JWT_SECRET: 'y'.repeat(32),
  };

  it('accepts a complete sandbox configuration and uses the sandbox base URL', () => {
    const c = loadConfig(sandbox);
    expect(c.mpesa.baseUrl).toBe('https://sandbox.safaricom.co.ke');
    expect(loadConfig({ ...sandbox, MPESA_BASE_URL: 'http://127.0.0.1:4010/' }).mpesa.baseUrl).toBe(
      'http://127.0.0.1:4010',
    );
  });

  it.each([
    [{ MPESA_CALLBACK_URL: 'https://pay.example.com/mpesa/callback' }, /must not contain "mpesa"/],
    [{ MPESA_CALLBACK_URL: 'https://pay.example.com/payments/callback?x=1' }, /query string/],
    [{ MPESA_CALLBACK_URL: 'https://Pay.Example.com/payments/callback' }, /lowercase/],
    [{ MPESA_CALLBACK_URL: 'not a url' }, /http\(s\) URL/],
    [{ MPESA_PASSKEY: 'bfb279f9aa9bdbcf158e97dd1a503b6e' }, /truncated sandbox passkey/],
    [{ MPESA_TRANSACTION_TYPE: 'till' }, /MPESA_TILL_NUMBER is required/],
    [{ MPESA_TRANSACTION_TYPE: 'card' }, /paybill \| till/],
    [{ MPESA_SHORTCODE: '12' }, /5 to 7 digits/],
    [{ CALLBACK_SIGNING_SECRET: 'short' }, /at least 32/],
    [{ JWT_SECRET: 'short' }, /JWT_SECRET must be at least 32/],
    [{ PORT: 'abc' }, /PORT must be a whole number/],
    [{ MPESA_CALLBACK_IP_ALLOWLIST: '196.201.214.200,nonsense' }, /"nonsense" is not an IP/],
    [{ DATABASE_URL: 'mysql://x' }, /DATABASE_URL must start with postgres/],
    [{ TRUST_PROXY: 'everyone' }, /TRUST_PROXY/],
    [{ MPESA_QR_MERCHANT_NAME: 'Duka <script>' }, /MPESA_QR_MERCHANT_NAME must be 1 to 40/],
    [{ MPESA_QR_MERCHANT_NAME: 'D'.repeat(41) }, /MPESA_QR_MERCHANT_NAME must be 1 to 40/],
    [{ MPESA_QR_SIZE: '50' }, /MPESA_QR_SIZE/],
  ])('rejects %p', (override, message) => {
    expect(problemsOf({ ...sandbox, ...override }).join('\n')).toMatch(message);
  });

  it('Dynamic QR: SmartDuka at 300 px unless set', () => {
    expect(loadConfig({}).mpesa).toMatchObject({ qrMerchantName: 'SmartDuka', qrSize: 300 });
    expect(loadConfig({ MPESA_QR_MERCHANT_NAME: "Mama's Duka & Co.", MPESA_QR_SIZE: '500' }).mpesa).toMatchObject({
      qrMerchantName: "Mama's Duka & Co.",
      qrSize: 500,
    });
  });

  it('forbids in callback URLs exactly the words daraja.md §2.4 lists (the one list DarajaService also uses)', () => {
    expect([...FORBIDDEN_CALLBACK_WORDS].sort()).toEqual([
      'cmd',
      'exe',
      'exec',
      'm-pesa',
      'mpesa',
      'query',
      'safaricom',
      'sql',
    ]);
  });

  it.each([
    ['https://pay.example.com/hooks/M-PESA/cb', '"m-pesa"'],
    ['https://pay.example.com/hooks/Safaricom/cb', '"safaricom"'],
    ['https://pay.example.com/hooks/exec/cb', '"exe", "exec"'],
    ['https://pay.example.com/hooks/cmd/cb', '"cmd"'],
    ['https://pay.example.com/hooks/SQL/cb', '"sql"'],
  ])('rejects the forbidden words in any case: %s', (url, words) => {
    expect(callbackUrlProblems(url, 'sandbox').join('\n')).toContain(
      `must not contain ${words}: Daraja rejects such URLs`,
    );
  });

  it('refuses the simulator in production and requires https callbacks there', () => {
    expect(
      problemsOf({ NODE_ENV: 'production', MPESA_ENV: 'simulator', JWT_SECRET: 'y'.repeat(32) }).join('\n'),
    ).toMatch(/not allowed when NODE_ENV=production/);
    expect(
      problemsOf({
        ...sandbox,
        NODE_ENV: 'production',
        MPESA_ENV: 'production',
        MPESA_CALLBACK_URL: 'http://pay.example.com/payments/callback',
      }).join('\n'),
    ).toMatch(/https in production/);
  });
});

describe('loadConfig: CALLBACK_INBOX_RETENTION_DAYS', () => {
  it('defaults to 30 days and takes 1 to 3650', () => {
    expect(loadConfig({}).reconciler.inboxRetentionDays).toBe(30);
    expect(loadConfig({ CALLBACK_INBOX_RETENTION_DAYS: '7' }).reconciler.inboxRetentionDays).toBe(7);
  });

  it.each(['0', '-1', '3651', '1.5', 'forever'])('refuses %j at boot', (v) => {
    expect(problemsOf({ CALLBACK_INBOX_RETENTION_DAYS: v })).toEqual([
      `CALLBACK_INBOX_RETENTION_DAYS must be a whole number between 1 and 3650 (got "${v}")`,
    ]);
  });
});

describe('loadConfig: stk-push rate limits', () => {
  it('defaults: 120 pushes a shop a minute, 1 prompt a phone per 30 s, store auto', () => {
    expect(loadConfig({}).rateLimit).toEqual({
      store: 'auto',
      shopPerMinute: 120,
      phonePerWindow: 1,
      phoneWindowSeconds: 30,
    });
    expect(
      loadConfig({
        NODE_ENV: 'production',
        MPESA_ENV: 'sandbox',
        MPESA_CONSUMER_KEY: 'k',
        MPESA_CONSUMER_SECRET: 's',
        MPESA_SHORTCODE: '174379',
        MPESA_PASSKEY: SANDBOX_PASSKEY,
        MPESA_CALLBACK_URL: 'https://pay.example.com/payments/callback',
        CALLBACK_SIGNING_SECRET: 'x'.repeat(32),
        JWT_SECRET: 'y'.repeat(32),
        DATABASE_URL: 'postgres://u@db/x',
        CREDENTIALS_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64')}`,
      }).rateLimit,
    ).toEqual({ store: 'auto', shopPerMinute: 120, phonePerWindow: 1, phoneWindowSeconds: 30 });
  });

  it('are off by default under NODE_ENV=test only, and can be set there', () => {
    expect(loadConfig({ NODE_ENV: 'test' }).rateLimit).toMatchObject({ shopPerMinute: 0, phonePerWindow: 0 });
    expect(
      loadConfig({
        NODE_ENV: 'test',
        RATE_LIMIT_SHOP_PER_MINUTE: '3',
        RATE_LIMIT_PHONE_PER_WINDOW: '2',
        RATE_LIMIT_PHONE_WINDOW_SECONDS: '60',
        RATE_LIMIT_STORE: 'memory',
      }).rateLimit,
    ).toEqual({ store: 'memory', shopPerMinute: 3, phonePerWindow: 2, phoneWindowSeconds: 60 });
  });

  it('0 turns a limit off', () => {
    expect(loadConfig({ RATE_LIMIT_SHOP_PER_MINUTE: '0', RATE_LIMIT_PHONE_PER_WINDOW: '0' }).rateLimit).toMatchObject({
      shopPerMinute: 0,
      phonePerWindow: 0,
    });
  });

  it('lists every bad value at once', () => {
    const problems = problemsOf({
      RATE_LIMIT_STORE: 'redis',
      RATE_LIMIT_SHOP_PER_MINUTE: '-1',
      RATE_LIMIT_PHONE_PER_WINDOW: 'one',
      RATE_LIMIT_PHONE_WINDOW_SECONDS: '0',
    });
    expect(problems).toEqual([
      'RATE_LIMIT_STORE must be one of auto | memory | postgres (got "redis")',
      'RATE_LIMIT_SHOP_PER_MINUTE must be a whole number between 0 and 100000 (got "-1")',
      'RATE_LIMIT_PHONE_PER_WINDOW must be a whole number between 0 and 1000 (got "one")',
      'RATE_LIMIT_PHONE_WINDOW_SECONDS must be a whole number between 1 and 3600 (got "0")',
    ]);
    expect(problemsOf({ RATE_LIMIT_PHONE_WINDOW_SECONDS: '3601' })).toEqual([
      'RATE_LIMIT_PHONE_WINDOW_SECONDS must be a whole number between 1 and 3600 (got "3601")',
    ]);
  });

  it('RATE_LIMIT_STORE=postgres needs DATABASE_URL (counters are shared through Postgres)', () => {
    expect(problemsOf({ RATE_LIMIT_STORE: 'postgres' })).toEqual([
      'RATE_LIMIT_STORE=postgres needs DATABASE_URL (the limits are shared through Postgres); with the embedded PGlite database use auto or memory',
    ]);
    expect(loadConfig({ RATE_LIMIT_STORE: 'postgres', DATABASE_URL: 'postgres://u@127.0.0.1/x' }).rateLimit.store).toBe(
      'postgres',
    );
  });
});

describe('loadConfig: CREDENTIALS_KEYS (merchant-account secrets at rest)', () => {
  const key = (b: number) => Buffer.alloc(32, b).toString('base64');
  it('takes a ring of id:base64 keys, the first one seals', () => {
    const c = loadConfig({ CREDENTIALS_KEYS: `new:${key(1)}, old:${key(2)}` });
    expect(c.merchantAccounts.keys.map((k) => k.id)).toEqual(['new', 'old']);
    expect(c.merchantAccounts.keys[0].key.equals(Buffer.alloc(32, 1))).toBe(true);
    expect(c.merchantAccounts.keysGenerated).toBe(false);
    expect(c.merchantAccounts.platformDefault).toBe(true);
  });
  it('generates a development key outside production, and never in production', () => {
    const dev = loadConfig({});
    expect(dev.merchantAccounts.keysGenerated).toBe(true);
    expect(dev.merchantAccounts.keys[0].key.length).toBe(32);
    expect(problemsOf({ NODE_ENV: 'production' }).join('\n')).toMatch(/CREDENTIALS_KEYS is required in production/);
  });
  it('names every bad entry without echoing key material', () => {
    const problems = problemsOf({
      CREDENTIALS_KEYS: `a:${Buffer.alloc(16).toString('base64')},:${key(3)},a:${key(4)},b c:x`,
    });
    const text = problems.join('\n');
    expect(text).toMatch(/key "a" must be 32 bytes in base64 \(got 16 bytes\)/);
    expect(text).toMatch(/entry 2 needs a key id/);
    expect(text).toMatch(/names key id "a" twice/);
    expect(text).toMatch(/entry 4 needs a key id/);
    expect(text).not.toContain(key(3));
  });
  it('MERCHANT_ACCOUNTS_PLATFORM_DEFAULT=false makes every shop bring its own account', () => {
    expect(loadConfig({ MERCHANT_ACCOUNTS_PLATFORM_DEFAULT: 'false' }).merchantAccounts.platformDefault).toBe(false);
  });
});

describe('MPESA_C2B_PULL_*', () => {
  it('defaults to a pass every 15 minutes over the last 90 minutes', () => {
    expect(loadConfig({}).mpesa.c2b.pull).toEqual({ enabled: true, intervalMs: 900_000, lookbackSeconds: 5400 });
    expect(
      loadConfig({
        MPESA_C2B_PULL_ENABLED: 'false',
        MPESA_C2B_PULL_INTERVAL_MS: '60000',
        MPESA_C2B_PULL_LOOKBACK_SECONDS: '172800',
      }).mpesa.c2b.pull,
    ).toEqual({ enabled: false, intervalMs: 60_000, lookbackSeconds: 172_800 });
  });
  it('refuses a lookback past Daraja’s 48 hours, a bad switch, and a window that leaves gaps between passes', () => {
    expect(problemsOf({ MPESA_C2B_PULL_LOOKBACK_SECONDS: '172801' }).join('\n')).toMatch(
      /MPESA_C2B_PULL_LOOKBACK_SECONDS/,
    );
    expect(problemsOf({ MPESA_C2B_PULL_ENABLED: 'maybe' }).join('\n')).toMatch(/MPESA_C2B_PULL_ENABLED/);
    expect(problemsOf({ MPESA_C2B_PULL_INTERVAL_MS: '7200000', MPESA_C2B_PULL_LOOKBACK_SECONDS: '3600' })).toContain(
      'MPESA_C2B_PULL_LOOKBACK_SECONDS must cover MPESA_C2B_PULL_INTERVAL_MS (passes would leave gaps)',
    );
    // Switched off, the pair is not checked.
    expect(
      problemsOf({
        MPESA_C2B_PULL_ENABLED: 'false',
        MPESA_C2B_PULL_INTERVAL_MS: '7200000',
        MPESA_C2B_PULL_LOOKBACK_SECONDS: '3600',
      }),
    ).toEqual([]);
  });
});
