/**
 * The whole chain behind the log scan, on a real app: with SMARTDUKA_TEST_LOG_DIR set, the app
 * and the simulator log to files there (sink.ts), client input that carries phone numbers and
 * credentials in URLs is masked or redacted before it is logged (src/common/logging.ts), and the
 * scanner finds nothing in what was written — while it does flag the same URLs unredacted.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import request from 'supertest';
import { successCallback } from '../helpers/callbacks';
import { fullCheckoutRequestId, startTestApp, TestApp, waitFor } from '../helpers/test-app';
import { exitCodeOf, formatReport, scanRun } from './scan';
import { LOG_DIR_ENV } from './sink';

// One log folder for the whole file: apps started one after the other in a test file log into the
// same files (as under `pnpm test`), since Nest's logger outside a request stays the first app's.
let dir: string;
let previous: string | undefined;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'app-logs-'));
  previous = process.env[LOG_DIR_ENV];
  process.env[LOG_DIR_ENV] = dir;
});
afterAll(() => {
  if (previous === undefined) delete process.env[LOG_DIR_ENV];
  else process.env[LOG_DIR_ENV] = previous;
  rmSync(dir, { recursive: true, force: true });
});

describe('app logs under the scan', () => {
  let t: TestApp;
  let appLog = '';
  const seen: { paymentId: string; token: string; jwt: string } = { paymentId: '', token: '', jwt: '' };

  beforeAll(async () => {
    t = await startTestApp();
    const auth = `Bearer ${t.token()}`;
    seen.jwt = t.token('shop-1', 'manager', 'manager-1');
    const api = t.http;

    expect((await api().post('/orders').set('Authorization', auth).send({ id: 'ORD-LOG-1', total: 10 })).status).toBe(
      201,
    );
    // Client input that must not reach the logs as sent.
    expect((await api().get('/orders/0712345678').set('Authorization', auth)).status).toBe(404);
    expect(
      (
        await api()
          .get('/payments/stk-status?checkoutRequestId=ws_CO_1&phone=%2B254712345678')
          .set('Authorization', auth)
      ).status,
    ).toBe(400);
    expect((await api().get(`/orders/ORD-LOG-1?access_token=${seen.jwt}`).set('Authorization', auth)).status).toBe(200);
    const phoneAsId = await api().get('/orders/ORD-LOG-1').set('Authorization', auth).set('X-Request-Id', '0712345678');
    expect(phoneAsId.headers['x-request-id']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-/);
    // A paid push: Daraja client, simulator and callback all log.
    const push = await api()
      .post('/payments/stk-push')
      .set('Authorization', auth)
      .send({ phoneNumber: '0712345678', amount: 10, orderId: 'ORD-LOG-1' });
    expect(push.status).toBe(201);
    await t.sim.waitForCallbacks(fullCheckoutRequestId(t.sim, push.body), 1, 5000);
    await waitFor(async () => (await api().get('/orders/ORD-LOG-1').set('Authorization', auth)).body.status === 'paid');
    seen.paymentId = push.body.paymentId;
    seen.token = t.sim.getPush(fullCheckoutRequestId(t.sim, push.body))!.callbackUrl.split('/').pop()!;
    // The same callback again, its token also in the query string.
    const again = await api()
      .post(`/payments/callback/${seen.paymentId}/${seen.token}?token=${seen.token}`)
      .send(t.sim.callbacks()[0].body as object);
    expect(again.body).toEqual({ ResultCode: 0, ResultDesc: 'Accepted' });

    await t.close();
    const appFile = readdirSync(dir).find((f) => f.endsWith('.app.log'));
    expect(appFile).toBeDefined();
    appLog = readFileSync(join(dir, appFile!), 'utf8');
  });

  it('writes the app, simulator and secrets files for this test file', () => {
    const files = readdirSync(dir);
    for (const suffix of ['.app.log', '.sim.log', '.secrets.jsonl'])
      expect(files.filter((f) => f.endsWith(suffix))).toHaveLength(1);
    expect(
      readFileSync(
        join(
          dir,
          files.find((f) => f.endsWith('.sim.log'))!,
        ),
        'utf8',
      ),
    ).toContain('token issued');
  });

  it('logs every request at the scan level, with client input masked or redacted', () => {
    for (const fragment of [
      '"url":"/orders/07******78"',
      'phone=+2547******78',
      '/orders/ORD-LOG-1?access_token=[redacted]',
      `/payments/callback/${seen.paymentId}/[redacted]?token=[redacted]`,
      'STK push accepted',
      'phone=2547******78',
    ]) {
      expect(appLog).toContain(fragment);
    }
    expect((appLog.match(/"msg":"request completed"/g) ?? []).length).toBeGreaterThanOrEqual(8);
  });

  it('leaves nothing for the scanner to find', () => {
    const result = scanRun(dir, { partial: true });
    expect({ findings: result.findings, report: formatReport(result) }).toEqual({
      findings: [],
      report: expect.stringContaining('no leaks found'),
    });
    expect(exitCodeOf(result)).toBe(0);
    expect(result.summary.secrets).toEqual(
      expect.objectContaining({
        'jwt-secret': expect.any(Number),
        'callback-secret': expect.any(Number),
        passkey: expect.any(Number),
      }),
    );
  });

  it('would flag the same URLs logged as the client sent them', () => {
    const raw = mkdtempSync(join(tmpdir(), 'app-logs-raw-'));
    try {
      const urls = [
        '/orders/0712345678',
        '/payments/stk-status?checkoutRequestId=ws_CO_1&phone=%2B254712345678',
        `/orders/ORD-LOG-1?access_token=${seen.jwt}`,
        `/payments/callback/${seen.paymentId}/${seen.token}`,
      ];
      writeFileSync(
        join(raw, 'raw.e2e.ts.1.app.log'),
        urls.map((url) => JSON.stringify({ req: { url }, msg: 'request completed' })).join('\n'),
      );
      writeFileSync(
        join(raw, 'raw.e2e.ts.1.secrets.jsonl'),
        readFileSync(
          join(
            dir,
            readdirSync(dir).find((f) => f.endsWith('.secrets.jsonl'))!,
          ),
        ),
      );
      const result = scanRun(raw, { partial: true });
      expect(result.findings.map((f) => [f.line, f.kind])).toEqual([
        [1, 'phone'],
        [2, 'phone'],
        [3, 'access-token'],
        [4, 'callback-token'],
      ]);
    } finally {
      rmSync(raw, { recursive: true, force: true });
    }
  });
});

describe('issue 8.7: phone numbers in CheckoutRequestIDs and in failed database writes never reach the logs', () => {
  let t: TestApp;
  let appLog = '';
  let simLog = '';
  const ids: { paid: string; open: string } = { paid: '', open: '' };
  let failedWrite: { status: number; body: Record<string, unknown> } = { status: 0, body: {} };

  beforeAll(async () => {
    t = await startTestApp();
    const auth = `Bearer ${t.token()}`;
    const api = t.http;

    // Paid: push, callback, then a status read by CheckoutRequestID (the request log's URL).
    expect((await api().post('/orders').set('Authorization', auth).send({ id: 'ORD-87-1', total: 10 })).status).toBe(
      201,
    );
    const paid = await api()
      .post('/payments/stk-push')
      .set('Authorization', auth)
      .send({ phoneNumber: '0712345678', amount: 10, orderId: 'ORD-87-1' });
    expect(paid.status).toBe(201);
    // The full ids (the answers' are masked): the log lines and the status URLs below must mask them.
    ids.paid = fullCheckoutRequestId(t.sim, paid.body);
    await t.sim.waitForCallbacks(ids.paid, 1, 5000);
    await waitFor(async () => (await api().get('/orders/ORD-87-1').set('Authorization', auth)).body.status === 'paid');
    expect(
      (await api().get('/payments/stk-status').query({ checkoutRequestId: ids.paid }).set('Authorization', auth))
        .status,
    ).toBe(200);

    // Open (the customer never answers): the status read makes an STK query, which the Daraja client logs.
    expect((await api().post('/orders').set('Authorization', auth).send({ id: 'ORD-87-2', total: 10 })).status).toBe(
      201,
    );
    const open = await api()
      .post('/payments/stk-push')
      .set('Authorization', auth)
      .send({ phoneNumber: '0700000007', amount: 10, orderId: 'ORD-87-2' });
    expect(open.status).toBe(201);
    ids.open = fullCheckoutRequestId(t.sim, open.body);
    expect(
      (await api().get(`/payments/stk-status?checkoutRequestId=${ids.open}`).set('Authorization', auth)).body.status,
    ).toBe('pending');

    // A database write that fails with the callback body in its parameters (and, from Postgres, in
    // the error's detail): every instance refuses new callback_inbox rows for a moment.
    await t.db.execute(sql`alter table callback_inbox add constraint issue87_refuse_rows check (false) not valid`);
    try {
      const push = t.sim.getPush(ids.open)!;
      const res = await request(t.baseUrl)
        .post(new URL(push.callbackUrl).pathname)
        .send(successCallback(push.merchantRequestId, push.checkoutRequestId, 10, 'RCPT87FAIL1', 254722000111));
      failedWrite = { status: res.status, body: res.body };
    } finally {
      await t.db.execute(sql`alter table callback_inbox drop constraint issue87_refuse_rows`);
    }

    await t.close();
    const read = (suffix: string) =>
      readFileSync(
        join(
          dir,
          readdirSync(dir).find((f) => f.endsWith(suffix))!,
        ),
        'utf8',
      );
    appLog = read('.app.log');
    simLog = read('.sim.log');
  });

  it('issue 8.7: the simulator issues realistic CheckoutRequestIDs: ws_CO_ + ddMMyyyyHHmmssSSS (Nairobi) + the national number', () => {
    const nairobiDay = new Date(Date.now() + 3 * 3600_000).toISOString().slice(0, 10).split('-').reverse().join('');
    expect(ids.paid).toMatch(/^ws_CO_\d{17}712345678$/);
    expect(ids.open).toMatch(/^ws_CO_\d{17}700000007$/);
    expect([ids.paid.slice(6, 14), ids.open.slice(6, 14)]).toEqual([nairobiDay, nairobiDay]);
  });

  it('issue 8.7: CheckoutRequestIDs are logged with the national number masked (Daraja client, request log, simulator)', () => {
    for (const log of [appLog, simLog]) {
      for (const national of ['712345678', '700000007', '722000111']) expect(log).not.toContain(national);
      expect(log).not.toContain(ids.paid);
      expect(log).not.toContain(ids.open);
    }
    const masked = (id: string) => `${id.slice(0, -9)}*******${id.slice(-2)}`;
    expect(appLog).toContain(`STK push accepted: checkoutRequestId=${masked(ids.paid)}`);
    expect(appLog).toContain(`checkoutRequestId=${masked(ids.open)}`); // the STK query's line
    expect(appLog).toContain(`"url":"/payments/stk-status?checkoutRequestId=${masked(ids.paid)}"`);
    expect(simLog).toContain(`push accepted ${masked(ids.paid)}`);
  });

  it('issue 8.7: a failed database write is logged without its parameters, stack parameters or Postgres detail', () => {
    expect(failedWrite.status).toBe(500);
    expect(failedWrite.body).toMatchObject({ statusCode: 500, code: 'INTERNAL_ERROR' });
    const errors = appLog.split('\n').filter((l) => l.includes('"err":'));
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(errors.join('\n')).toContain('callback_inbox');
    for (const line of errors) {
      expect(line).not.toContain('254722000111');
      expect(line).not.toContain('PhoneNumber');
      expect(line).not.toContain('RCPT87FAIL1');
      expect(line).not.toMatch(/params:/);
    }
  });

  it('issue 8.7: the scan (which now also looks for national numbers and CheckoutRequestID tails) finds nothing', () => {
    const result = scanRun(dir, { partial: true });
    expect({ findings: result.findings, report: formatReport(result) }).toEqual({
      findings: [],
      report: expect.stringContaining('no leaks found'),
    });
  });
});

describe('review: a phone number next to a letter, _ or . reaches the logs neither as the request id nor in a URL', () => {
  let t: TestApp;
  let appLog = '';
  /** Client X-Request-Ids that hold a phone number: each must be replaced by a generated id. */
  const phoneIds = [
    '254712345678_1',
    '0712345678x',
    'pos.0712345678',
    'A712345678',
    'ws_CO_02122026034130999712345678',
    '0712-345-678',
    'sale_112345678',
  ];
  /** Sane client ids: kept as sent. */
  const saneIds = [
    'pos-42.req_7',
    '3f2c9a4e-8b1d-4c6e-9f0a-7d5e2b1c4a98',
    '29115-34620561-1',
    '4bf92f3577b34da6a3ce929d0e0e4736',
  ];
  /** Order URLs holding a phone number, and the form each must be logged in. */
  const phoneUrls: [string, string][] = [
    ['/orders/ord_0712345678', '/orders/ord_07******78'],
    ['/orders/ORD.254712345678', '/orders/ORD.2547******78'],
    ['/orders/INV712345678', '/orders/INV71*****78'],
    ['/orders/ord.712345678', '/orders/ord.71*****78'],
    ['/orders/x_112345678_2', '/orders/x_11*****78_2'],
    ['/orders/0712345678x', '/orders/07******78x'],
    ['/orders/254712345678_1', '/orders/2547******78_1'],
    ['/orders/A0712345678', '/orders/A07******78'],
  ];
  /** URLs whose digits are no phone number: logged as sent (a CheckoutRequestID's tail is masked as always). */
  const saneUrls: [string, string][] = [
    ['/payments/3f2c9a4e-8b1d-4c6e-9f0a-712345678abc', '/payments/3f2c9a4e-8b1d-4c6e-9f0a-712345678abc'], // a UUID
    ['/orders/4bf92f3577b34da6a3ce9171234567ab', '/orders/4bf92f3577b34da6a3ce9171234567ab'], // 32 hex (a trace id)
    [
      '/orders/sha_e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      '/orders/sha_e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    ], // sha256
    ['/orders/12345-171234567-1', '/orders/12345-171234567-1'], // a MerchantRequestID with a 9-digit part
    ['/orders/MR-29115-34620561-1', '/orders/MR-29115-34620561-1'],
    ['/orders/T2026-01-02T10.11.12.171234567Z', '/orders/T2026-01-02T10.11.12.171234567Z'], // nanoseconds
    ['/orders/amt-712345678.25', '/orders/amt-712345678.25'], // a decimal amount
    ['/orders/ts_20261126104500', '/orders/ts_20261126104500'],
    [
      '/payments/stk-status?checkoutRequestId=ws_CO_DMZ_164695293_11032019122104433',
      '/payments/stk-status?checkoutRequestId=ws_CO_DMZ_164695293_11032019*******33',
    ],
    [
      '/payments/stk-status?checkoutRequestId=ws_CO_02122026034130999*******78',
      '/payments/stk-status?checkoutRequestId=ws_CO_02122026034130999*******78',
    ],
  ];
  const answered = new Map<string, string>();
  const urlIds = new Map<string, string>();

  beforeAll(async () => {
    t = await startTestApp();
    const auth = `Bearer ${t.token()}`;
    for (const id of [...phoneIds, ...saneIds]) {
      const res = await t.http().get('/orders/ORD-REVIEW-ID').set('Authorization', auth).set('X-Request-Id', id);
      expect(res.status).toBe(404);
      expect(res.body.requestId).toBe(res.headers['x-request-id']);
      answered.set(id, res.headers['x-request-id']);
    }
    let n = 0;
    for (const [url] of [...phoneUrls, ...saneUrls]) {
      const id = `review-url-${++n}`;
      const res = await t.http().get(url).set('Authorization', auth).set('X-Request-Id', id);
      expect(res.status).toBeGreaterThanOrEqual(400);
      urlIds.set(url, id);
    }
    await t.close();
    appLog = readFileSync(
      join(
        dir,
        readdirSync(dir).find((f) => f.endsWith('.app.log'))!,
      ),
      'utf8',
    );
  });

  const requestLines = (id: string) =>
    appLog
      .split('\n')
      .filter((l) => l.includes('"msg":"request completed"') && l.includes(`"id":${JSON.stringify(id)}`));

  it('review: an X-Request-Id holding a phone number is replaced by a generated one, which the response names and every log line carries', () => {
    for (const id of phoneIds) {
      const used = answered.get(id)!;
      expect({ id, used }).toEqual({
        id,
        used: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
      });
      expect(requestLines(used)).toHaveLength(1);
      expect(appLog).not.toContain(id);
      expect(requestLines(used)[0]).not.toMatch(/712345678|112345678|0712-345-678/);
    }
  });

  it('review: a sane X-Request-Id is kept, answered and logged as sent', () => {
    for (const id of saneIds) {
      expect({ id, used: answered.get(id) }).toEqual({ id, used: id });
      expect(requestLines(id)).toHaveLength(1);
    }
  });

  it('review: an order URL with a phone number after a letter, _ or . is logged masked', () => {
    for (const [url, logged] of phoneUrls) {
      const lines = requestLines(urlIds.get(url)!);
      expect({ url, lines: lines.length }).toEqual({ url, lines: 1 });
      expect({ url, logged: JSON.parse(lines[0]).req.url }).toEqual({ url, logged });
    }
  });

  it('review: UUIDs, hex, MerchantRequestIDs, timestamps, decimals and masked CheckoutRequestIDs in a URL are logged as they are', () => {
    for (const [url, logged] of saneUrls) {
      const lines = requestLines(urlIds.get(url)!);
      expect({ url, lines: lines.length }).toEqual({ url, lines: 1 });
      expect({ url, logged: JSON.parse(lines[0]).req.url }).toEqual({ url, logged });
    }
  });

  it('review: the scan finds nothing in these logs, and flags every one of those ids and URLs logged as sent', () => {
    const result = scanRun(dir, { partial: true });
    expect({ findings: result.findings, report: formatReport(result) }).toEqual({
      findings: [],
      report: expect.stringContaining('no leaks found'),
    });
    const raw = mkdtempSync(join(tmpdir(), 'app-logs-review-'));
    try {
      const lines = [
        ...phoneIds.map((id) => ({ req: { id, url: '/orders/x' } })),
        ...phoneUrls.map(([url]) => ({ req: { id: 'x', url } })),
      ];
      writeFileSync(
        join(raw, 'raw.e2e.ts.1.app.log'),
        lines.map((l) => JSON.stringify({ ...l, msg: 'request completed' })).join('\n'),
      );
      writeFileSync(
        join(raw, 'raw.e2e.ts.1.secrets.jsonl'),
        readFileSync(
          join(
            dir,
            readdirSync(dir).find((f) => f.endsWith('.secrets.jsonl'))!,
          ),
        ),
      );
      const flagged = scanRun(raw, { partial: true }).findings;
      expect(lines.map((_, i) => flagged.filter((f) => f.line === i + 1).map((f) => f.kind))).toEqual(
        lines.map(() => ['phone']),
      );
    } finally {
      rmSync(raw, { recursive: true, force: true });
    }
  });
});
