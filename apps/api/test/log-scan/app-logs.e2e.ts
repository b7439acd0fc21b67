/**
 * The whole chain behind the log scan, on a real app: with SMARTDUKA_TEST_LOG_DIR set, the app
 * and the simulator log to files there (sink.ts), client input that carries phone numbers and
 * credentials in URLs is masked or redacted before it is logged (src/common/logging.ts), and the
 * scanner finds nothing in what was written — while it does flag the same URLs unredacted.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, TestApp, waitFor } from '../helpers/test-app';
import { exitCodeOf, formatReport, scanRun } from './scan';
import { LOG_DIR_ENV } from './sink';

describe('app logs under the scan', () => {
  let dir: string;
  let previous: string | undefined;
  let t: TestApp;
  let appLog = '';
  const seen: { paymentId: string; token: string; jwt: string } = { paymentId: '', token: '', jwt: '' };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'app-logs-'));
    previous = process.env[LOG_DIR_ENV];
    process.env[LOG_DIR_ENV] = dir;
    t = await startTestApp();
    const auth = `Bearer ${t.token()}`;
    seen.jwt = t.token('shop-1', 'manager', 'manager-1');
    const api = t.http;

    expect((await api().post('/orders').set('Authorization', auth).send({ id: 'ORD-LOG-1', total: 10 })).status).toBe(201);
    // Client input that must not reach the logs as sent.
    expect((await api().get('/orders/0712345678').set('Authorization', auth)).status).toBe(404);
    expect((await api().get('/payments/stk-status?checkoutRequestId=ws_CO_1&phone=%2B254712345678').set('Authorization', auth)).status).toBe(400);
    expect((await api().get(`/orders/ORD-LOG-1?access_token=${seen.jwt}`).set('Authorization', auth)).status).toBe(200);
    const phoneAsId = await api().get('/orders/ORD-LOG-1').set('Authorization', auth).set('X-Request-Id', '0712345678');
    expect(phoneAsId.headers['x-request-id']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-/);
    // A paid push: Daraja client, simulator and callback all log.
    const push = await api().post('/payments/stk-push').set('Authorization', auth).send({ phoneNumber: '0712345678', amount: 10, orderId: 'ORD-LOG-1' });
    expect(push.status).toBe(201);
    await t.sim.waitForCallbacks(push.body.checkoutRequestId, 1, 5000);
    await waitFor(async () => (await api().get('/orders/ORD-LOG-1').set('Authorization', auth)).body.status === 'paid');
    seen.paymentId = push.body.paymentId;
    seen.token = t.sim.getPush(push.body.checkoutRequestId)!.callbackUrl.split('/').pop()!;
    // The same callback again, its token also in the query string.
    const again = await api().post(`/payments/callback/${seen.paymentId}/${seen.token}?token=${seen.token}`).send(t.sim.callbacks()[0].body as object);
    expect(again.body).toEqual({ ResultCode: 0, ResultDesc: 'Accepted' });

    await t.close();
    const appFile = readdirSync(dir).find((f) => f.endsWith('.app.log'));
    expect(appFile).toBeDefined();
    appLog = readFileSync(join(dir, appFile!), 'utf8');
  });

  afterAll(() => {
    if (previous === undefined) delete process.env[LOG_DIR_ENV];
    else process.env[LOG_DIR_ENV] = previous;
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes the app, simulator and secrets files for this test file', () => {
    const files = readdirSync(dir);
    for (const suffix of ['.app.log', '.sim.log', '.secrets.jsonl']) expect(files.filter((f) => f.endsWith(suffix))).toHaveLength(1);
    expect(readFileSync(join(dir, files.find((f) => f.endsWith('.sim.log'))!), 'utf8')).toContain('token issued');
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
    expect({ findings: result.findings, report: formatReport(result) }).toEqual({ findings: [], report: expect.stringContaining('no leaks found') });
    expect(exitCodeOf(result)).toBe(0);
    expect(result.summary.secrets).toEqual(expect.objectContaining({ 'jwt-secret': expect.any(Number), 'callback-secret': expect.any(Number), passkey: expect.any(Number) }));
  });

  it('would flag the same URLs logged as the client sent them', () => {
    const raw = mkdtempSync(join(tmpdir(), 'app-logs-raw-'));
    try {
      const urls = ['/orders/0712345678', '/payments/stk-status?checkoutRequestId=ws_CO_1&phone=%2B254712345678', `/orders/ORD-LOG-1?access_token=${seen.jwt}`, `/payments/callback/${seen.paymentId}/${seen.token}`];
      writeFileSync(join(raw, 'raw.e2e.ts.1.app.log'), urls.map((url) => JSON.stringify({ req: { url }, msg: 'request completed' })).join('\n'));
      writeFileSync(join(raw, 'raw.e2e.ts.1.secrets.jsonl'), readFileSync(join(dir, readdirSync(dir).find((f) => f.endsWith('.secrets.jsonl'))!)));
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
