import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startDarajaSimulator, type DarajaSimulator } from '../src';
import { postJson, request, SHORTCODE, token } from './helpers';

/** A receiver for C2B URLs that answers validation with `answer` and confirmations with Daraja's ack. */
async function c2bReceiver(answer: () => unknown) {
  const got: Array<{ url: string; body: Record<string, string> }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({
        url: req.url ?? '',
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, string>,
      });
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(req.url?.includes('/validation') ? answer() : { ResultCode: 0, ResultDesc: 'Success' }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, got, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('C2B: registerurl and a customer paying from their phone', () => {
  let sim: DarajaSimulator;
  let answer: unknown = { ResultCode: '0', ResultDesc: 'Accepted' };
  let rx: Awaited<ReturnType<typeof c2bReceiver>>;
  const register = async (body: Record<string, unknown>, version = 'v1') =>
    postJson(`${sim.url}/mpesa/c2b/${version}/registerurl`, await token(sim.url), body);
  const urls = () => ({
    ShortCode: SHORTCODE,
    ResponseType: 'Completed',
    ConfirmationURL: `${rx.url}/hooks/c2b/confirmation/abc`,
    ValidationURL: `${rx.url}/hooks/c2b/validation/abc`,
  });

  beforeAll(async () => {
    sim = await startDarajaSimulator();
    rx = await c2bReceiver(() => answer);
  });
  afterAll(async () => {
    await sim.close();
    await rx.close();
  });

  it('registers URLs (v1 and v2) and refuses what Daraja refuses', async () => {
    const ok = await register(urls());
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({ ResponseCode: '0', ResponseDescription: 'Success' });
    expect((ok.json as Record<string, string>)['OriginatorCoversationID']).toMatch(/^\d{4}-\d{8}-1$/);
    expect((await register(urls(), 'v2')).status).toBe(200);
    expect(sim.c2bRegistrations()[0]).toMatchObject({ shortcode: SHORTCODE, version: 'v2', count: 2 });

    const refused: Array<[Record<string, unknown>, string]> = [
      [{ ...urls(), ResponseType: 'Canceled' }, 'Bad Request - Invalid ResponseType'],
      [{ ...urls(), ResponseType: 'completed' }, 'Bad Request - Invalid ResponseType'],
      [{ ...urls(), ShortCode: '999999' }, 'Bad Request - Invalid ShortCode'],
      [{ ...urls(), ConfirmationURL: `${rx.url}/mpesa/confirm` }, 'Bad Request - Invalid ConfirmationURL'],
      [{ ...urls(), ValidationURL: 'not a url' }, 'Bad Request - Invalid ValidationURL'],
    ];
    for (const [body, message] of refused) {
      const res = await register(body);
      expect(res.status).toBe(400);
      expect((res.json as { errorMessage: string }).errorMessage).toBe(message);
    }
    const noToken = await postJson(`${sim.url}/mpesa/c2b/v1/registerurl`, 'nope', urls());
    expect(noToken.status).toBe(404);

    sim.setC2bSettings({ oneTimeRegistration: true });
    const again = await register(urls());
    sim.setC2bSettings({ oneTimeRegistration: false });
    expect(again.status).toBe(500);
    expect(again.json).toMatchObject({ errorCode: '500.003.1001', errorMessage: 'Urls are already registered' });
  });

  it('pays a paybill and a till with plain, masked and hashed MSISDNs; duplicates and drops on request', async () => {
    await register(urls());
    rx.got.length = 0;
    const hashed = await sim.c2bPay({
      shortcode: SHORTCODE,
      amount: 100,
      billRefNumber: 'INV-1',
      msisdn: '254712345678',
    });
    expect(hashed.outcome).toBe('confirmed');
    expect(rx.got[0].body).toMatchObject({
      TransactionType: 'Pay Bill',
      TransAmount: '100.00',
      BillRefNumber: 'INV-1',
      MSISDN: createHash('sha256').update('254712345678').digest('hex'),
    });
    for (const field of Object.values(rx.got[0].body)) expect(typeof field).toBe('string');
    const masked = await sim.c2bPay({
      shortcode: SHORTCODE,
      amount: 5,
      msisdn: '254712345678',
      msisdnForm: 'masked',
      copies: 3,
    });
    expect(masked.confirmations.map((c) => c.status)).toEqual([200, 200, 200]);
    expect(rx.got.slice(-3).map((g) => g.body['TransID'])).toEqual([masked.transId, masked.transId, masked.transId]);
    expect(rx.got.at(-1)!.body).toMatchObject({
      TransactionType: 'Buy Goods',
      BillRefNumber: '',
      MSISDN: '2547****678',
    });
    const n = rx.got.length;
    const dropped = await sim.c2bPay({ shortcode: SHORTCODE, amount: 5, msisdnForm: 'plain', copies: 0 });
    expect(dropped).toMatchObject({ outcome: 'confirmed', confirmations: [] });
    expect(rx.got.length).toBe(n);
    expect(sim.c2bPayments().map((p) => p.transId)).toContain(dropped.transId);
  });

  it('asks the validation URL first when validation is on, and a rejection moves no money', async () => {
    await register(urls());
    sim.setC2bValidation(SHORTCODE, true);
    rx.got.length = 0;
    answer = { ResultCode: 'C2B00012', ResultDesc: 'Rejected' };
    const rejected = await sim.c2bPay({ shortcode: SHORTCODE, amount: 10, billRefNumber: 'NOPE' });
    expect(rejected).toMatchObject({
      outcome: 'rejected',
      validation: { status: 200, resultCode: 'C2B00012' },
      confirmations: [],
    });
    expect(rx.got.map((g) => g.url)).toEqual(['/hooks/c2b/validation/abc']);
    expect(rx.got[0].body['OrgAccountBalance']).toBe('');
    answer = { ResultCode: '0', ResultDesc: 'Accepted' };
    const accepted = await sim.c2bPay({ shortcode: SHORTCODE, amount: 10, billRefNumber: 'OK' });
    expect(accepted.outcome).toBe('confirmed');
    expect(rx.got.slice(-2).map((g) => g.url)).toEqual(['/hooks/c2b/validation/abc', '/hooks/c2b/confirmation/abc']);
    sim.setC2bValidation(SHORTCODE, false);
  });

  it('control API: pay, validation switch and settings', async () => {
    const post = (path: string, body: unknown) =>
      request(`${sim.url}${path}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
    const paid = await post('/__sim/c2b/payments', { shortcode: SHORTCODE, amount: 7 });
    expect(paid.status).toBe(201);
    expect((paid.json as { outcome: string }).outcome).toBe('confirmed');
    expect((await post('/__sim/c2b/payments', { shortcode: SHORTCODE, amount: 7.5 })).status).toBe(400);
    expect((await post('/__sim/c2b/payments', { shortcode: SHORTCODE, amount: 7, copies: 11 })).status).toBe(400);
    expect((await post('/__sim/c2b/validation', { shortcode: SHORTCODE })).status).toBe(400);
    expect((await post('/__sim/c2b/settings', { stkConfirmations: 'sometimes' })).status).toBe(400);
    const settings = await post('/__sim/c2b/settings', { stkConfirmations: 'hashed', oneTimeRegistration: false });
    expect(settings.json).toEqual({ oneTimeRegistration: false, stkConfirmations: 'hashed' });
    await post('/__sim/c2b/settings', { stkConfirmations: null });
    const state = await request(`${sim.url}/__sim/c2b`);
    expect((state.json as { registrations: unknown[] }).registrations).toHaveLength(1);
  });
});
