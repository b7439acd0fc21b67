import net from 'node:net';
import { sql } from 'drizzle-orm';
import { callbackToken } from '../src/payments/providers/mpesa/callback-token';
import { successCallback } from './helpers/callbacks';
import { fullCheckoutRequestId, startTestApp, TEST_CALLBACK_SECRET, TestApp } from './helpers/test-app';

const SILENT_PHONE = '254700000007'; // the simulator never calls back for it

/** One request on its own socket, exactly these bytes; the answer's status, code and message. */
function raw(port: number, bytes: Buffer): Promise<{ status: number; code?: string; message?: string; body: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => (out += d.toString()));
    s.on('error', reject);
    s.on('close', () => {
      const status = Number(out.split(' ')[1]);
      let body = out.slice(out.indexOf('\r\n\r\n') + 4);
      if (/transfer-encoding: chunked/i.test(out))
        body = body.replace(/^[0-9a-f]+\r\n/, '').replace(/\r\n0\r\n\r\n$/, '');
      const parsed = JSON.parse(body) as { code?: string; message?: string };
      resolve({ status, code: parsed.code, message: parsed.message, body });
    });
    s.write(bytes);
  });
}

describe('review of the STK callback fast lane and the applier', () => {
  let t: TestApp;
  let cashier: string;
  let n = 0;

  beforeAll(async () => {
    t = await startTestApp({ env: { RECONCILER_ENABLED: 'false', RECONCILER_INBOX_RETRY_AFTER_SECONDS: '0' } });
    cashier = `Bearer ${t.token()}`;
  });
  afterAll(() => t.close());

  async function pending(app: TestApp, total = 100) {
    const orderId = `REV-${++n}`;
    const auth = `Bearer ${app.token()}`;
    expect((await app.http().post('/orders').set('Authorization', auth).send({ id: orderId, total })).status).toBe(201);
    const res = await app
      .http()
      .post('/payments/stk-push')
      .set('Authorization', auth)
      .send({ phoneNumber: SILENT_PHONE, amount: total, orderId });
    expect(res.status).toBe(201);
    const body = res.body as { paymentId: string; merchantRequestId: string; checkoutRequestId: string };
    return { ...body, orderId, full: fullCheckoutRequestId(app.sim, body) };
  }
  const pathOf = (paymentId: string) =>
    `/payments/callback/${paymentId}/${callbackToken(TEST_CALLBACK_SECRET, paymentId)}`;

  it('the lane answers what Express answers for the same bytes (top-level scalars, a byte order mark, an empty body)', async () => {
    void cashier;
    const p = await pending(t);
    const port = Number(new URL(t.baseUrl).port);
    const head = `POST ${pathOf(p.paymentId)} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n`;
    // The lane takes a Content-Length body; a chunked one is always Express's.
    const viaLane = (b: Buffer) =>
      raw(port, Buffer.concat([Buffer.from(`${head}Content-Length: ${b.length}\r\n\r\n`), b]));
    const viaExpress = (b: Buffer) =>
      raw(
        port,
        Buffer.concat([
          Buffer.from(`${head}Transfer-Encoding: chunked\r\n\r\n`),
          ...(b.length ? [Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')] : []),
          Buffer.from('0\r\n\r\n'),
        ]),
      );
    const bodies = [
      Buffer.from('null'),
      Buffer.from('5'),
      Buffer.from(' "x"'),
      Buffer.from(''),
      Buffer.from('{"a":1}'),
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":1}')]),
    ];
    for (const b of bodies) {
      const [lane, express] = [await viaLane(b), await viaExpress(b)];
      expect({ body: b.toString('hex'), status: lane.status, code: lane.code, message: lane.message }).toEqual({
        body: b.toString('hex'),
        status: express.status,
        code: express.code,
        message: express.message,
      });
    }
    // A real callback behind a byte order mark is accepted by both (it was by Express before the lane).
    const cb = Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf]),
      Buffer.from(JSON.stringify(successCallback(p.merchantRequestId, p.full, 100, 'REVBOM0001'))),
    ]);
    expect((await viaLane(cb)).status).toBe(200);
    await t.callbacksApplied();
    const row = (
      (await t.db.execute(
        sql`select status, mpesa_receipt_number from payments where id = ${p.paymentId}`,
      )) as unknown as {
        rows: { status: string; mpesa_receipt_number: string }[];
      }
    ).rows[0];
    expect(row).toEqual({ status: 'completed', mpesa_receipt_number: 'REVBOM0001' });
  });
});
