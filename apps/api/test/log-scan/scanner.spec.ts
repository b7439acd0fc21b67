/**
 * The log scanner catches every kind of leak it claims to, ignores the look-alikes a payments log is
 * full of, never repeats a secret in its report, and refuses to pass a run that logged too little.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { sign } from 'jsonwebtoken';
import { SANDBOX_PASSKEY, SIMULATOR_CONSUMER_KEY, SIMULATOR_CONSUMER_SECRET } from '../../src/config/app-config';
import { TEST_CALLBACK_SECRET, TEST_JWT_SECRET } from '../helpers/test-app';
import { ALLOW_RULES, exitCodeOf, formatReport, knownSecrets, scanRun, STATIC_SECRETS } from './scan';
import { callbackTokenFor, LeakKind, LeakScanner, stkPasswordPrefix } from './scanner';
import type { RecordedSecret } from './sink';

const PAYMENT_ID = '3f2c9a4e-8b1d-4c6e-9f0a-7d5e2b1c4a98';
const ACCESS_TOKEN = 'c9SQxWWhmdVRlyh0zh8gZDTkubVF';
const CALLBACK_TOKEN = callbackTokenFor(TEST_CALLBACK_SECRET, PAYMENT_ID);
const JWT = sign({ shopId: 'shop-1', role: 'cashier' }, TEST_JWT_SECRET, { algorithm: 'HS256', subject: 'cashier-1' });

function scanner(): LeakScanner {
  return new LeakScanner({
    secrets: knownSecrets([...STATIC_SECRETS, { kind: 'access-token', value: ACCESS_TOKEN }, { kind: 'jwt-secret', value: 'a+b/c=d & "quoted" secret' }]),
    callbackTokens: [CALLBACK_TOKEN],
    allow: ALLOW_RULES,
  });
}

const kindsIn = (line: string): LeakKind[] => scanner().scanLine(line).map((m) => m.kind);

describe('LeakScanner: catches', () => {
  it.each<[string, string, LeakKind]>([
    ['the JWT signing secret', `config {"jwt":"${TEST_JWT_SECRET}"}`, 'secret'],
    ['the callback signing secret', `signing with ${TEST_CALLBACK_SECRET}`, 'secret'],
    ['the consumer secret', `secret=${SIMULATOR_CONSUMER_SECRET}`, 'secret'],
    ['the consumer key', `key ${SIMULATOR_CONSUMER_KEY} used`, 'secret'],
    ['the passkey', `{"passkey":"${SANDBOX_PASSKEY}"}`, 'secret'],
    ['a secret URL-encoded', `GET /x?s=${encodeURIComponent('a+b/c=d & "quoted" secret')}`, 'secret'],
    ['a secret JSON-escaped', `{"msg":${JSON.stringify('a+b/c=d & "quoted" secret')}}`, 'secret'],
    ['base64(consumer key:secret)', `auth ${Buffer.from(`${SIMULATOR_CONSUMER_KEY}:${SIMULATOR_CONSUMER_SECRET}`).toString('base64')}`, 'basic-credentials'],
    ['any Basic credential', 'Authorization: Basic dXNlcjpwYXNzd29yZA==', 'basic-credentials'],
    ['the STK password', `{"Password":"${Buffer.from(`174379${SANDBOX_PASSKEY}20261126104500`).toString('base64')}"}`, 'stk-password'],
    ['an access token issued in the run', `token ${ACCESS_TOKEN} cached`, 'access-token'],
    ['any access_token value', '{"access_token":"SGWcJPtNtYNPGm6uSYR9yPYrAI3Bm","expires_in":"3599"}', 'access-token'],
    ['a Bearer credential', 'headers: {"authorization":"Bearer 0a1b2c3d4e5f6g7h"}', 'bearer-token'],
    ['a Bearer value that is not a JWT (still a credential of something)', 'Authorization: Bearer not.a.jwt', 'bearer-token'],
    ['a JWT', `user token ${JWT}`, 'jwt'],
    ['an unsigned (alg none) JWT', `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from('{"sub":"cashier-1","shopId":"shop-1"}').toString('base64url')}.`, 'jwt'],
    ['a callback URL with its token', `POST /payments/callback/${PAYMENT_ID}/${'f0'.repeat(32)}`, 'callback-token'],
    ['a callback token anywhere (HMAC of a payment id)', `verifying token=${CALLBACK_TOKEN} for payment`, 'callback-token'],
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
    ['a real pino request line', `{"level":30,"time":1795690860044,"pid":17177,"req":{"id":"${PAYMENT_ID}","method":"GET","url":"/payments/stk-status?checkoutRequestId=ws_CO_26112026140100417460857771","remoteAddress":"127.0.0.1"},"res":{"statusCode":200},"responseTime":36,"msg":"request completed"}`],
    ['a real Daraja service line', '{"context":"DarajaService","msg":"STK push accepted: checkoutRequestId=ws_CO_26112026140100417460857771 phone=2547******07 amount=50 type=paybill shortcode=174379"}'],
    ['a real simulator line', '2026-11-26T11:01:00.417Z push accepted ws_CO_26112026140100417460857771 phone=2547******07 amount=50 scenario=never_answers'],
  ])('%s', (_what, line) => {
    expect(scanner().scanLine(line)).toEqual([]);
  });
});

describe('LeakScanner: reports', () => {
  it('file:line:column and the kind, with every secret on the line redacted', () => {
    const s = scanner();
    const text = ['first line', `{"url":"/orders/0712345678","auth":"Bearer ${JWT}","secret":"${TEST_JWT_SECRET}"}`].join('\n');
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
    expect(scanner().scanText('dev.e2e.ts.1.app.log', banner).map((f) => f.kind)).toEqual(['jwt']);
    expect(scanner().scanText('dev.e2e.ts.1.child-1.log', `token=${JWT}`).map((f) => f.kind)).toEqual(['jwt']);
  });

  it('derives the STK password prefix from whole base64 groups of shortcode + passkey', () => {
    const prefix = stkPasswordPrefix('174379', SANDBOX_PASSKEY);
    for (const ts of ['20261126104500', '20270101000000']) expect(Buffer.from(`174379${SANDBOX_PASSKEY}${ts}`).toString('base64').startsWith(prefix)).toBe(true);
    expect(prefix.length).toBeGreaterThanOrEqual(90);
  });

  it('keeps its built-in secrets in step with the test helpers', () => {
    const values = STATIC_SECRETS.map((s) => s.value);
    expect(values).toEqual(expect.arrayContaining([TEST_JWT_SECRET, TEST_CALLBACK_SECRET, SIMULATOR_CONSUMER_SECRET, SANDBOX_PASSKEY]));
  });
});

// ---------------------------------------------------------------------------- whole runs

function writeRun(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'log-scan-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}
const secretLine = (kind: RecordedSecret['kind'], value: string, pair?: string) => JSON.stringify({ kind, hex: Buffer.from(value).toString('hex'), ...(pair ? { pairHex: Buffer.from(pair).toString('hex') } : {}) }) + '\n';
const requestLine = (i: number) => `{"level":30,"req":{"id":"${PAYMENT_ID}","method":"GET","url":"/orders/ORD-${i}"},"res":{"statusCode":200},"msg":"request completed"}\n`;

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
    for (const expected of ['app logs from 1 test files', 'logged HTTP requests', 'simulator logs', 'child-process logs', 'issued access tokens', 'JWT signing secret']) expect(problems).toContain(expected);
  });

  it('passes a full run that has every source and no leak', () => {
    const files: Record<string, string> = {};
    for (let f = 0; f < 5; f++) {
      files[`t${f}.e2e.ts.1.app.log`] = Array.from({ length: 100 }, (_, i) => requestLine(i)).join('');
      files[`t${f}.e2e.ts.1.sim.log`] = '2026-11-26T11:01:00.380Z GET /oauth/v1/generate -> 200 token issued\n';
      files[`t${f}.e2e.ts.1.secrets.jsonl`] = secretLine('jwt-secret', TEST_JWT_SECRET) + secretLine('callback-secret', TEST_CALLBACK_SECRET) + secretLine('consumer-secret', SIMULATOR_CONSUMER_SECRET, SIMULATOR_CONSUMER_KEY) + secretLine('passkey', SANDBOX_PASSKEY, '174379') + secretLine('access-token', `${ACCESS_TOKEN}${f}`);
    }
    files['dev.e2e.ts.1.child-1.log'] = `# spawned: node src/main.ts\n  export TOKEN=${JWT}\n`;
    const r = scanRun(run(files));
    expect(formatReport(r)).toContain('no leaks found');
    expect(r.tooSmall).toEqual([]);
    expect(r.findings).toEqual([]);
    expect(exitCodeOf(r)).toBe(0);
  });

  it('finds the secrets and tokens the apps recorded (stored hex-encoded), and callback tokens of logged payment ids', () => {
    const devSecret = 'generated-dev-secret-Zm9vYmFyYmF6';
    const dir = run({
      'x.e2e.ts.1.secrets.jsonl': secretLine('access-token', ACCESS_TOKEN) + secretLine('dev-secret', devSecret),
      'x.e2e.ts.1.app.log': [requestLine(1).trimEnd(), `{"msg":"cached ${ACCESS_TOKEN}"}`, `{"msg":"jwt secret ${devSecret}"}`, `{"msg":"payment ${PAYMENT_ID} token ${callbackTokenFor(devSecret, PAYMENT_ID)}"}`].join('\n'),
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
    for (const secret of [ACCESS_TOKEN, devSecret, callbackTokenFor(devSecret, PAYMENT_ID)]) expect(report).not.toContain(secret);
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
    const leak = writeRun({ 'a.e2e.ts.1.app.log': `${requestLine(1)}{"msg":"sent to 254712345678 with ${TEST_CALLBACK_SECRET}"}\n` });
    const empty = writeRun({});
    try {
      const script = resolve(__dirname, 'scan.ts');
      const cli = (dir: string) => spawnSync(process.execPath, ['-r', '@swc-node/register', script, dir, '--partial'], { cwd: resolve(__dirname, '../..'), encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
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
