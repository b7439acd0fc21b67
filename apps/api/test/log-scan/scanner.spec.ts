/**
 * The log scanner catches every kind of leak it claims to, ignores the look-alikes a payments log is
 * full of, never repeats a secret in its report, and refuses to pass a run that logged too little.
 */
import { issueTicket, ticketKey } from '../../src/payments/payment-event-tickets';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { sign } from 'jsonwebtoken';
import { SANDBOX_PASSKEY, SIMULATOR_CONSUMER_KEY, SIMULATOR_CONSUMER_SECRET } from '../../src/config/app-config';
import { TEST_CALLBACK_SECRET, TEST_JWT_SECRET } from '../helpers/test-app';
import {
  ALLOW_RULES,
  exitCodeOf,
  formatReport,
  FULL_RUN_MINIMUMS,
  knownSecrets,
  scanRun,
  STATIC_SECRETS,
} from './scan';
import { callbackTokenFor, LeakKind, LeakScanner, stkPasswordPrefix } from './scanner';
import { LOG_LEVEL_CANARY, RecordedSecret } from './sink';

const PAYMENT_ID = '3f2c9a4e-8b1d-4c6e-9f0a-7d5e2b1c4a98';
const ACCESS_TOKEN = 'c9SQxWWhmdVRlyh0zh8gZDTkubVF';
const CALLBACK_TOKEN = callbackTokenFor(TEST_CALLBACK_SECRET, PAYMENT_ID);
const JWT = sign({ shopId: 'shop-1', role: 'cashier' }, TEST_JWT_SECRET, { algorithm: 'HS256', subject: 'cashier-1' });

function scanner(): LeakScanner {
  return new LeakScanner({
    secrets: knownSecrets([
      ...STATIC_SECRETS,
      { kind: 'access-token', value: ACCESS_TOKEN },
      { kind: 'jwt-secret', value: 'a+b/c=d & "quoted" secret' },
    ]),
    callbackTokens: [CALLBACK_TOKEN],
    allow: ALLOW_RULES,
  });
}

const kindsIn = (line: string): LeakKind[] =>
  scanner()
    .scanLine(line)
    .map((m) => m.kind);

describe('LeakScanner: catches', () => {
  it.each<[string, string, LeakKind]>([
    ['the JWT signing secret', `config {"jwt":"${TEST_JWT_SECRET}"}`, 'secret'],
    ['the callback signing secret', `signing with ${TEST_CALLBACK_SECRET}`, 'secret'],
    ['the consumer secret', `secret=${SIMULATOR_CONSUMER_SECRET}`, 'secret'],
    ['the consumer key', `key ${SIMULATOR_CONSUMER_KEY} used`, 'secret'],
    ['the passkey', `{"passkey":"${SANDBOX_PASSKEY}"}`, 'secret'],
    ['a secret URL-encoded', `GET /x?s=${encodeURIComponent('a+b/c=d & "quoted" secret')}`, 'secret'],
    ['a secret JSON-escaped', `{"msg":${JSON.stringify('a+b/c=d & "quoted" secret')}}`, 'secret'],
    [
      'base64(consumer key:secret)',
      `auth ${Buffer.from(`${SIMULATOR_CONSUMER_KEY}:${SIMULATOR_CONSUMER_SECRET}`).toString('base64')}`,
      'basic-credentials',
    ],
    ['any Basic credential', 'Authorization: Basic dXNlcjpwYXNzd29yZA==', 'basic-credentials'],
    [
      'the STK password',
      `{"Password":"${Buffer.from(`174379${SANDBOX_PASSKEY}20261126104500`).toString('base64')}"}`,
      'stk-password',
    ],
    ['an access token issued in the run', `token ${ACCESS_TOKEN} cached`, 'access-token'],
    ['any access_token value', '{"access_token":"SGWcJPtNtYNPGm6uSYR9yPYrAI3Bm","expires_in":"3599"}', 'access-token'],
    ['a Bearer credential', 'headers: {"authorization":"Bearer 0a1b2c3d4e5f6g7h"}', 'bearer-token'],
    [
      'a Bearer value that is not a JWT (still a credential of something)',
      'Authorization: Bearer not.a.jwt',
      'bearer-token',
    ],
    ['a JWT', `user token ${JWT}`, 'jwt'],
    [
      'an unsigned (alg none) JWT',
      `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from('{"sub":"cashier-1","shopId":"shop-1"}').toString('base64url')}.`,
      'jwt',
    ],
    ['a callback URL with its token', `POST /payments/callback/${PAYMENT_ID}/${'f0'.repeat(32)}`, 'callback-token'],
    [
      'a callback token anywhere (HMAC of a payment id)',
      `verifying token=${CALLBACK_TOKEN} for payment`,
      'callback-token',
    ],
    ['a callback token in upper case', `t ${CALLBACK_TOKEN.toUpperCase()}`, 'callback-token'],
    ['a 2547 number', 'push to 254712345678 ok', 'phone'],
    ['a 2541 number', '{"PhoneNumber":254112345678}', 'phone'],
    ['a +254 number', 'phone=+254712345678', 'phone'],
    ['an 07 number', '"/orders/0712345678"', 'phone'],
    ['an 01 number', 'msisdn 0112345678.', 'phone'],
    ['a spaced number', 'call 0712 345 678 now', 'phone'],
    ['a dashed +254 number', 'call +254-712-345-678', 'phone'],
    ['a URL-encoded +254 number', '/x?phone=%2B254712345678', 'phone'],
    ['a number after a URL-encoded space', '/x?phone=%200712345678', 'phone'],
    ['a password in a URL', 'connecting to postgres://app:s3cr3tpw@db:5432/pay', 'url-credentials'],
    ['a password field', '{"password":"hunter22"}', 'secret-field'],
    ['a consumerSecret field', '{"consumerSecret":"not-the-configured-one"}', 'secret-field'],
    ['a passkey=value pair', 'using passkey=deadbeefcafe', 'secret-field'],
  ])('%s', (_what, line, kind) => {
    expect(kindsIn(line)).toContain(kind);
  });

  // issue 8.7: a bare national number (7xxxxxxxx / 1xxxxxxxx) is a phone number too, and so is the
  // tail of a CheckoutRequestID since about 2022 (ws_CO_<ddMMyyyyHHmmss><ms><9-digit national number>).
  it.each<[string, string, string]>([
    ['issue 8.7: a bare national 7xxxxxxxx number', 'PartyA 712345678 sent', '71*****78'],
    ['issue 8.7: a bare national 1xxxxxxxx number in JSON', '{"msisdn":"112345678"}', '11*****78'],
    ['issue 8.7: a national number in a query string', '/payments/x?phone=712345678&y=1', '71*****78'],
    ['issue 8.7: a national number after a URL-encoded space', '/x?phone=%20712345678', '71*****78'],
    ['issue 8.7: a national number typed into an order id', '"/orders/ORD-712345678"', '71*****78'],
    [
      'issue 8.7: the tail of a 2022 CheckoutRequestID (recorded, 254706803305)',
      'checkoutRequestId=ws_CO_13102022154520280706803305',
      '70*****05',
    ],
    [
      'issue 8.7: the tail of a 2024 CheckoutRequestID in JSON',
      '{"CheckoutRequestID":"ws_CO_04072024151523730722724071"}',
      '72*****71',
    ],
    [
      'issue 8.7: the tail of a 2026 CheckoutRequestID (one millisecond digit)',
      'push accepted ws_CO_170820261428262708374149 ok',
      '70*****49',
    ],
    ['issue 8.7: the tail of a CheckoutRequestID for a 01 number', 'ws_CO_01122026101112123112345678', '11*****78'],
    // review: letters, `_` and `.` next to a phone number are boundaries
    ['review: a 2547 number before _', '{"req":{"id":"254712345678_1"}}', '2547******78'],
    ['review: an 07 number before a letter', '{"req":{"id":"0712345678x"}}', '07******78'],
    ['review: an 07 number after _', '"url":"/orders/ord_0712345678"', '07******78'],
    ['review: a 2547 number after a letter and .', '"url":"/orders/ORD.254712345678"', '2547******78'],
    ['review: a national number after letters', '"url":"/orders/INV712345678"', '71*****78'],
    ['review: a national number after _', '"url":"/orders/x_112345678_2"', '11*****78'],
    ['review: a national number after a letter and .', '"url":"/orders/ord.712345678"', '71*****78'],
    ['review: a national number after a JSON-escaped newline', '"msg":"line\\n712345678"', '71*****78'],
    ['review: a short word of hex letters is no hex blob', '"url":"/orders/a712345678f"', '71*****78'],
  ])('%s', (_what, line, safe) => {
    const matches = scanner().scanLine(line);
    expect(matches.map((m) => [m.kind, m.safe])).toEqual([['phone', safe]]);
    const excerpt = scanner().scanText('x.log', line)[0].excerpt;
    expect(excerpt).not.toContain(/([17]\d{8})(?!\d)/.exec(line)![1]);
    expect(excerpt).toContain(`«phone ${safe}»`);
  });

  it('finds a live status stream ticket (in a URL or a body)', () => {
    const { ticket } = issueTicket(ticketKey('k'.repeat(40)), { sub: 'c1', shopId: 'shop-1', role: 'cashier' }, null);
    expect(kindsIn(`GET /payments/events?ticket=${ticket} 200`)).toEqual(['jwt']);
    expect(kindsIn(`{"ticket":"${ticket}","expiresAt":"2026-12-03T08:00:00.000Z"}`)).toEqual(['jwt']);
    expect(kindsIn('GET /payments/events?ticket=[redacted] 200')).toEqual([]);
  });

  it('finds every leak on a line, each once', () => {
    const line = `{"phone":"254712345678","token":"${JWT}","also":"0712345678"}`;
    expect(kindsIn(line)).toEqual(['phone', 'jwt', 'phone']);
  });
});

describe('LeakScanner: ignores look-alikes', () => {
  it.each<[string, string]>([
    ['a UUID', `payment ${PAYMENT_ID}`],
    ['a UUID whose last group is 12 digits shaped like a phone', 'id 3f2c9a4e-8b1d-4c6e-9f0a-254712345678'],
    ['a yyyyMMddHHmmss timestamp', '{"TransactionDate":20261126104500}'],
    ['epoch milliseconds', '{"time":1795690859969}'],
    ['epoch seconds', '"iat":1795690859'],
    ['a receipt number', 'receipt NLJ7RT61SV'],
    ['a CheckoutRequestID with 07/12 in it', 'checkoutRequestId=ws_CO_07122026104500123456789012'],
    ['a MerchantRequestID', 'merchantRequestId=29115-34620561-1'],
    ['a gateway request id', 'requestId 1c5b-4ba8-815c-ac45c57a3db01495926'],
    ['masked phones', 'phone=2547******78 other 07******78 and +2547******78'],
    ['a 13-digit number starting 2547', 'n=2547123456789'],
    ['a decimal fraction', 'ratio 0.0712345678'],
    ['amounts and counts', 'amount=250000 amountMinor=25000000 rows=712345'],
    ['an IP address and port', 'from 196.201.214.200:443'],
    ['a sha256 digest that is no callback token', `phoneHash ${'9'.repeat(8)}${'ab'.repeat(28)}`],
    ['a redacted callback URL', `POST /payments/callback/${PAYMENT_ID}/[redacted]`],
    ['a redacted Bearer header', '"authorization":"Bearer [redacted]"'],
    ['a placeholder Bearer', 'curl -H "Authorization: Bearer $TOKEN"'],
    ['a redacted Basic header', 'Authorization: Basic [redacted]'],
    ['masked secret fields', '{"password":"***","passkey":"[redacted]","access_token":"[redacted]"}'],
    ['a URL without a password', 'postgres://postgres@127.0.0.1:5432/test'],
    ['a dotted version string', 'nestjs 11.2.10 eyJ is not a token'],
    [
      'a real pino request line',
      `{"level":30,"time":1795690860044,"pid":17177,"req":{"id":"${PAYMENT_ID}","method":"GET","url":"/payments/stk-status?checkoutRequestId=ws_CO_26112026140100417460857771","remoteAddress":"127.0.0.1"},"res":{"statusCode":200},"responseTime":36,"msg":"request completed"}`,
    ],
    [
      'a real Daraja service line',
      '{"context":"DarajaService","msg":"STK push accepted: checkoutRequestId=ws_CO_26112026140100417460857771 phone=2547******07 amount=50 type=paybill shortcode=174379"}',
    ],
    [
      'a real simulator line',
      '2026-11-26T11:01:00.417Z push accepted ws_CO_26112026140100417460857771 phone=2547******07 amount=50 scenario=never_answers',
    ],
    // issue 8.7: the boundaries of the national-number rule
    ['issue 8.7: a masked CheckoutRequestID', 'checkoutRequestId=ws_CO_13102022154520280*******05'],
    [
      'issue 8.7: CheckoutRequestIDs of 2017-2021, which carry no phone number',
      'ws_CO_27072017154747416 ws_CO_191220191020363925 ws_CO_16012021151556755039 ws_CO_080920202234262864',
    ],
    ['issue 8.7: a 2019 DMZ CheckoutRequestID', 'ws_CO_DMZ_164695293_11032019122104433'],
    ['issue 8.7: a simulator CheckoutRequestID whose tail is no mobile number', 'ws_CO_26112026140100417460857771'],
    [
      'issue 8.7: 9-digit amounts in minor units',
      '{"amountMinor":"125000000","totalMinor":150000000,"paidMinor":"100000000","outstanding":112345678}',
    ],
    [
      'issue 8.7: 9-digit amount, size and duration fields as text',
      'amount=712345678 bytes=104857600 durationMs=123456789 responseTime=112345678',
    ],
    [
      'issue 8.7: a Flutterwave transaction id field',
      '{"transactionId":188200108,"flutterwaveTransactionId":"712345678","refundId":112345678}',
    ],
    [
      'issue 8.7: a 9-digit part of a dashed MerchantRequestID',
      'merchantRequestId=12345-171234567-1 and 98358-712345678-2',
    ],
    ['issue 8.7: 9 digits inside a longer number', 'n=1712345678 and 27123456789 and epoch 1795690859969'],
    [
      '9 digits inside a hex blob (16+ hex digits: a trace id, sha256, a pnpm store hash, a gateway request id)',
      'trace 4bf92f3577b34da6a3ce9171234567ab sha e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 .pnpm/x@0.1_d94759c8e155c24588e6d6c687138335 1c5b-4ba8-815c-ac45c57a3db71234567',
    ],
    ['review: 9 digits in a UUID group next to hex letters', 'id 3f2c9a4e-8b1d-4c6e-9f0a-712345678abc'],
    [
      'review: a 2019 DMZ CheckoutRequestID whose sequence looks national',
      '{"CheckoutRequestID":"ws_CO_DMZ_164695293_11032019122104433"}',
    ],
    ['review: an ISO time with nanoseconds', '"at":"2026-11-26T11:01:00.171234567Z"'],
    ['review: a MerchantRequestID with a letter prefix', 'MR-98358-712345678-2'],
    [
      'review: a CheckoutRequestID masked in the URL',
      '"url":"/payments/stk-status?checkoutRequestId=ws_CO_02122026034130999*******78"',
    ],
    ['review: 10 digits after a letter (no phone form)', 'a1712345678 x2547123456789'],
    ['issue 8.7: a decimal with 9 digits before or after the point', 'lat 1.712345678 and 712345678.25'],
    ['issue 8.7: an ISO time and a Nairobi timestamp', '2026-11-26T11:01:00.417Z {"Timestamp":"20261126140100"}'],
  ])('%s', (_what, line) => {
    expect(scanner().scanLine(line)).toEqual([]);
  });
});

describe('LeakScanner: reports', () => {
  it('file:line:column and the kind, with every secret on the line redacted', () => {
    const s = scanner();
    const text = [
      'first line',
      `{"url":"/orders/0712345678","auth":"Bearer ${JWT}","secret":"${TEST_JWT_SECRET}"}`,
    ].join('\n');
    const findings = s.scanText('app.log', text);
    expect(findings.map((f) => [f.file, f.line, f.kind])).toEqual([
      ['app.log', 2, 'phone'],
      ['app.log', 2, 'jwt'],
      ['app.log', 2, 'secret'],
    ]);
    expect(findings[0].column).toBe(text.split('\n')[1].indexOf('0712345678') + 1);
    for (const f of findings) {
      expect(f.excerpt).not.toContain('0712345678');
      expect(f.excerpt).not.toContain(JWT.slice(0, 20));
      expect(f.excerpt).not.toContain(TEST_JWT_SECRET);
    }
    expect(findings[0].excerpt).toContain('«phone 07******78»');
    expect(findings[1].excerpt).toContain(`«jwt redacted, ${JWT.length} chars»`);
    expect(s.scanText('u.log', '/x?phone=%2B254712345678')[0].excerpt).toBe('/x?phone=«phone +2547******78»');
  });

  it('allows the dev banner token only in a child-process log', () => {
    const banner = `  export TOKEN=${JWT}`;
    expect(scanner().scanText('dev.e2e.ts.1.child-1.log', banner)).toEqual([]);
    expect(
      scanner()
        .scanText('dev.e2e.ts.1.app.log', banner)
        .map((f) => f.kind),
    ).toEqual(['jwt']);
    expect(
      scanner()
        .scanText('dev.e2e.ts.1.child-1.log', `token=${JWT}`)
        .map((f) => f.kind),
    ).toEqual(['jwt']);
  });

  it('derives the STK password prefix from whole base64 groups of shortcode + passkey', () => {
    const prefix = stkPasswordPrefix('174379', SANDBOX_PASSKEY);
    for (const ts of ['20261126104500', '20270101000000'])
      expect(Buffer.from(`174379${SANDBOX_PASSKEY}${ts}`).toString('base64').startsWith(prefix)).toBe(true);
    expect(prefix.length).toBeGreaterThanOrEqual(90);
  });

  it('keeps its built-in secrets in step with the test helpers', () => {
    const values = STATIC_SECRETS.map((s) => s.value);
    expect(values).toEqual(
      expect.arrayContaining([TEST_JWT_SECRET, TEST_CALLBACK_SECRET, SIMULATOR_CONSUMER_SECRET, SANDBOX_PASSKEY]),
    );
  });
});

// ---------------------------------------------------------------------------- whole runs

function writeRun(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'log-scan-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}
const secretLine = (kind: RecordedSecret['kind'], value: string, pair?: string) =>
  JSON.stringify({
    kind,
    hex: Buffer.from(value).toString('hex'),
    ...(pair ? { pairHex: Buffer.from(pair).toString('hex') } : {}),
  }) + '\n';
const requestLine = (i: number) =>
  `{"level":30,"req":{"id":"${PAYMENT_ID}","method":"GET","url":"/orders/ORD-${i}"},"res":{"statusCode":200},"msg":"request completed"}\n`;
const warnRequestLine = (i: number) =>
  `{"level":40,"req":{"id":"${PAYMENT_ID}","method":"GET","url":"/orders/ORD-${i}"},"res":{"statusCode":404},"msg":"request completed"}\n`;
const appLine = (level: number, msg: string) =>
  `${JSON.stringify({ level, time: 1795690860044, pid: 17177, context: 'PaymentsService', msg })}\n`;

describe('scanRun', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const run = (files: Record<string, string>) => {
    const d = writeRun(files);
    dirs.push(d);
    return d;
  };

  it('fails an empty folder: a scan of nothing cannot pass', () => {
    const r = scanRun(run({}), { partial: true });
    expect(r.tooSmall).toEqual(['the folder holds no log lines at all']);
    expect(exitCodeOf(r)).toBe(2);
  });

  it('fails a full run missing log sources, naming each', () => {
    const r = scanRun(run({ 'a.e2e.ts.1.app.log': requestLine(1) }));
    expect(exitCodeOf(r)).toBe(2);
    const problems = r.tooSmall.join('\n');
    for (const expected of [
      'app logs from 1 test files',
      'logged HTTP requests',
      'simulator logs',
      'child-process logs',
      'issued access tokens',
      'JWT signing secret',
    ])
      expect(problems).toContain(expected);
  });

  /** A full run of 5 test files; `appLines(f)` is what test file f's app logged. */
  const fullRun = (appLines: (f: number) => string) => {
    const files: Record<string, string> = {};
    for (let f = 0; f < 5; f++) {
      files[`t${f}.e2e.ts.1.app.log`] = appLines(f);
      files[`t${f}.e2e.ts.1.sim.log`] = '2026-11-26T11:01:00.380Z GET /oauth/v1/generate -> 200 token issued\n';
      files[`t${f}.e2e.ts.1.secrets.jsonl`] =
        secretLine('jwt-secret', TEST_JWT_SECRET) +
        secretLine('callback-secret', TEST_CALLBACK_SECRET) +
        secretLine('consumer-secret', SIMULATOR_CONSUMER_SECRET, SIMULATOR_CONSUMER_KEY) +
        secretLine('passkey', SANDBOX_PASSKEY, '174379') +
        secretLine('access-token', `${ACCESS_TOKEN}${f}`);
    }
    files['dev.e2e.ts.1.child-1.log'] = `# spawned: node src/main.ts\n  export TOKEN=${JWT}\n`;
    return scanRun(run(files));
  };
  const times = (n: number, line: (i: number) => string) => Array.from({ length: n }, (_, i) => line(i)).join('');

  it('passes a full run that has every source and no leak', () => {
    const r = fullRun(
      () =>
        times(100, requestLine) +
        times(100, (i) => appLine(30, `payment ${i} completed`)) +
        appLine(20, LOG_LEVEL_CANARY.debug) +
        appLine(10, LOG_LEVEL_CANARY.trace),
    );
    expect(formatReport(r)).toContain('no leaks found');
    expect(r.tooSmall).toEqual([]);
    expect(r.findings).toEqual([]);
    expect(exitCodeOf(r)).toBe(0);
    expect(r.summary.appLevelLines).toEqual({ trace: 5, debug: 5, info: 500, warn: 0, error: 0, fatal: 0 });
  });

  it('issue 8.17: fails a full run logged at warn, although its 4xx request lines keep the line counts up', () => {
    // What a scan level of `warn` leaves: request lines of 4xx answers, warnings, errors; no info/debug/trace.
    const r = fullRun(
      () =>
        times(200, warnRequestLine) +
        times(20, (i) => appLine(40, `payment ${i} moved to review`)) +
        appLine(50, 'unhandled error'),
    );
    expect(r.summary.appRequestLines).toBeGreaterThanOrEqual(FULL_RUN_MINIMUMS.appRequestLines);
    expect(r.summary.bySource.app.lines).toBeGreaterThanOrEqual(FULL_RUN_MINIMUMS.appLines);
    expect(exitCodeOf(r)).toBe(2);
    const problems = r.tooSmall.join('\n');
    expect(problems).toContain('0 info-level application log lines');
    expect(problems).toContain('0 debug-level application log lines');
    expect(problems).toContain('0 trace-level application log lines');
    expect(problems).toContain('is the log level above');
  });

  it('issue 8.17: fails a full run logged at info: nothing below info reached the files', () => {
    const r = fullRun(() => times(100, requestLine) + times(100, (i) => appLine(30, `payment ${i} completed`)));
    expect(exitCodeOf(r)).toBe(2);
    expect(r.tooSmall).toEqual([
      expect.stringContaining('0 debug-level application log lines'),
      expect.stringContaining('0 trace-level application log lines'),
    ]);
  });

  it('issue 8.17: info request lines are not application lines (a run of request lines alone fails)', () => {
    const r = fullRun(
      () => times(200, requestLine) + appLine(20, LOG_LEVEL_CANARY.debug) + appLine(10, LOG_LEVEL_CANARY.trace),
    );
    expect(r.tooSmall).toEqual([expect.stringContaining('0 info-level application log lines')]);
  });

  it('finds the secrets and tokens the apps recorded (stored hex-encoded), and callback tokens of logged payment ids', () => {
    const devSecret = 'generated-dev-secret-Zm9vYmFyYmF6';
    const dir = run({
      'x.e2e.ts.1.secrets.jsonl': secretLine('access-token', ACCESS_TOKEN) + secretLine('dev-secret', devSecret),
      'x.e2e.ts.1.app.log': [
        requestLine(1).trimEnd(),
        `{"msg":"cached ${ACCESS_TOKEN}"}`,
        `{"msg":"jwt secret ${devSecret}"}`,
        `{"msg":"payment ${PAYMENT_ID} token ${callbackTokenFor(devSecret, PAYMENT_ID)}"}`,
      ].join('\n'),
    });
    const r = scanRun(dir, { partial: true });
    expect(r.findings.map((f) => [f.line, f.kind])).toEqual([
      [2, 'access-token'],
      [3, 'secret'],
      [4, 'callback-token'],
    ]);
    expect(exitCodeOf(r)).toBe(1);
    const report = formatReport(r);
    expect(report).toContain('x.e2e.ts.1.app.log:2:');
    for (const secret of [ACCESS_TOKEN, devSecret, callbackTokenFor(devSecret, PAYMENT_ID)])
      expect(report).not.toContain(secret);
  });

  it("finds the scoped result-callback tokens of logged ids (a refund's result URL, a payment's status URL)", () => {
    const devSecret = 'generated-dev-secret-Zm9vYmFyYmF6';
    const scoped = (scope: string) => callbackTokenFor(devSecret, `smartduka:${scope}:${PAYMENT_ID}`);
    const dir = run({
      'y.e2e.ts.1.secrets.jsonl': secretLine('dev-secret', devSecret),
      'y.e2e.ts.1.app.log': [
        `{"msg":"POST /payments/callback/refunds/${PAYMENT_ID}/result/${scoped('refund-result')}"}`,
        `{"msg":"POST /payments/callback/payments/${PAYMENT_ID}/status/${scoped('payment-status')}"}`,
        `{"msg":"POST /payments/callback/refunds/${PAYMENT_ID}/timeout/[redacted]"}`,
      ].join('\n'),
    });
    const r = scanRun(dir, { partial: true });
    expect(r.findings.map((f) => [f.line, f.kind])).toEqual([
      [1, 'callback-token'],
      [2, 'callback-token'],
    ]);
  });

  it('scans nested folders and every file but the secrets lists', () => {
    const dir = run({ 'a.e2e.ts.1.secrets.jsonl': secretLine('access-token', ACCESS_TOKEN) });
    mkdirSync(join(dir, 'nested'));
    writeFileSync(join(dir, 'nested', 'other.txt'), 'phone 254712345678\n');
    const r = scanRun(dir, { partial: true });
    expect(r.findings.map((f) => [f.file, f.kind])).toEqual([[join('nested', 'other.txt'), 'phone']]);
  });
});

describe('scan.ts command line', () => {
  it('exits 1 on a leak, printing where and what but not the secret; exits 2 on an empty folder', () => {
    const leak = writeRun({
      'a.e2e.ts.1.app.log': `${requestLine(1)}{"msg":"sent to 254712345678 with ${TEST_CALLBACK_SECRET}"}\n`,
    });
    const empty = writeRun({});
    try {
      const script = resolve(__dirname, 'scan.ts');
      const cli = (dir: string) =>
        spawnSync(process.execPath, ['-r', '@swc-node/register', script, dir, '--partial'], {
          cwd: resolve(__dirname, '../..'),
          encoding: 'utf8',
          env: { PATH: process.env.PATH ?? '' },
        });
      const a = cli(leak);
      expect(a.status).toBe(1);
      expect(a.stderr).toMatch(/a\.e2e\.ts\.1\.app\.log:2:\d+ {2}phone/);
      expect(a.stderr).toMatch(/a\.e2e\.ts\.1\.app\.log:2:\d+ {2}secret {2}callback signing secret/);
      expect(a.stderr).not.toContain('254712345678');
      expect(a.stderr).not.toContain(TEST_CALLBACK_SECRET);
      const b = cli(empty);
      expect(b.status).toBe(2);
      expect(b.stderr).toContain('TOO LITTLE TO SCAN');
    } finally {
      rmSync(leak, { recursive: true, force: true });
      rmSync(empty, { recursive: true, force: true });
    }
  }, 30000);
});
