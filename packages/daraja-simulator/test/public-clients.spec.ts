/**
 * Published Daraja clients, unmodified, against the simulator: Safaricom's own `mpesa-node` (0.1.3) and
 * `mpesa-api` (3.0.2, newtonmunene99). Both hard-code https://sandbox.safaricom.co.ke and build Timestamp
 * from `new Date().toISOString()`, i.e. in UTC (3 h behind Nairobi). Safaricom ran mpesa-node's own sandbox
 * integration test that way, and no primary source shows Daraja refusing a UTC Timestamp whose Password
 * matches (daraja.md §2.2), so by default the simulator must accept them.
 *
 * Their HTTPS calls are redirected to the simulator at the node:https layer of this test process
 * (https-redirect.ts); the libraries' code and base URLs are untouched.
 */
import { createRequire } from 'node:module';
import { startDarajaSimulator, type DarajaSimulator } from '../src';
import { redirectHttps, type HttpsRedirect } from './https-redirect';
import { KEY, PASSKEY, SECRET, SHORTCODE, startReceiver, type Receiver } from './helpers';

const load = createRequire(__filename);
// Plain CommonJS packages without types: loaded as they are published.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const MpesaNode = load('mpesa-node') as any;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const { Mpesa: MpesaApi } = load('mpesa-api') as { Mpesa: any };

const SANDBOX_HOST = 'sandbox.safaricom.co.ke';
const MSISDN = 254708374149;
const NAIROBI_OFFSET_SECONDS = 3 * 60 * 60;

/** yyyyMMddHHmmss in UTC, the way both libraries build their Timestamp. */
function utcStamp(at: Date): string {
  return at
    .toISOString()
    .replace(/[^0-9]/g, '')
    .slice(0, 14);
}

describe('issue 8.12: public Daraja clients (UTC timestamps) against the simulator', () => {
  let sim: DarajaSimulator;
  let receiver: Receiver;
  let redirect: HttpsRedirect;

  beforeAll(async () => {
    sim = await startDarajaSimulator({ callbackDelayMs: 100 });
    receiver = await startReceiver();
    redirect = redirectHttps([SANDBOX_HOST], { host: '127.0.0.1', port: sim.port });
  });
  afterAll(async () => {
    redirect.restore();
    await receiver.close();
    await sim.close();
  });
  beforeEach(() => {
    sim.reset();
    redirect.calls.length = 0;
  });

  /** The push and the query the simulator recorded for `checkoutRequestId` carry UTC timestamps taken between `from` and `to`. */
  function expectRecordedInUtc(checkoutRequestId: string, from: Date, to: Date): void {
    const push = sim.getPush(checkoutRequestId);
    expect(push).toBeDefined();
    const queries = sim.queries().filter((q) => q.checkoutRequestId === checkoutRequestId);
    expect(queries).toHaveLength(1);
    for (const rec of [push!, queries[0]!]) {
      expect(rec.timestamp >= utcStamp(from) && rec.timestamp <= utcStamp(to)).toBe(true);
      // Read as Nairobi wall-clock time, a UTC stamp is three hours in the past.
      expect(Math.abs(rec.timestampSkewSeconds + NAIROBI_OFFSET_SECONDS)).toBeLessThanOrEqual(60);
    }
    expect(queries[0]!.answer).toBe('final');
  }

  it('mpesa-node (Safaricom): lipaNaMpesaOnline and lipaNaMpesaQuery succeed', async () => {
    const mpesa = new MpesaNode({
      consumerKey: KEY,
      consumerSecret: SECRET,
      environment: 'sandbox',
      lipaNaMpesaShortCode: SHORTCODE,
      lipaNaMpesaShortPass: PASSKEY,
    });
    const from = new Date();
    // TransactionDesc given explicitly: its default ("Lipa na mpesa online", 20 chars) is over the documented 13.
    const pushed = await mpesa.lipaNaMpesaOnline(
      MSISDN,
      1,
      `${receiver.url}/hooks/daraja/stk/node`,
      'NODE1',
      'Node client',
    );
    expect(pushed.status).toBe(200);
    expect(pushed.data).toMatchObject({
      ResponseCode: '0',
      ResponseDescription: 'Success. Request accepted for processing',
    });
    const id = pushed.data.CheckoutRequestID as string;
    await sim.waitForCallbacks(id);

    const queried = await mpesa.lipaNaMpesaQuery(id);
    const to = new Date();
    expect(queried.status).toBe(200);
    expect(queried.data).toMatchObject({ ResponseCode: '0', CheckoutRequestID: id, ResultCode: '0' });

    expectRecordedInUtc(id, from, to);
    expect(receiver.received.map((c) => c.url)).toContain('/hooks/daraja/stk/node');
    // Every call went to Safaricom's sandbox host as far as the library knows.
    expect(redirect.calls.map((c) => `${c.method} ${c.url.split('?')[0]}`)).toEqual([
      `GET https://${SANDBOX_HOST}/oauth/v1/generate`,
      `POST https://${SANDBOX_HOST}/mpesa/stkpush/v1/processrequest`,
      `GET https://${SANDBOX_HOST}/oauth/v1/generate`,
      `POST https://${SANDBOX_HOST}/mpesa/stkpushquery/v1/query`,
    ]);
  });

  it('mpesa-api (npm): lipaNaMpesaOnline and lipaNaMpesaQuery succeed', async () => {
    const mpesa = new MpesaApi(
      { clientKey: KEY, clientSecret: SECRET, securityCredential: 'not-used-by-stk' },
      'sandbox',
    );
    const from = new Date();
    const pushed = await mpesa.lipaNaMpesaOnline({
      BusinessShortCode: Number(SHORTCODE),
      passKey: PASSKEY,
      TransactionDesc: 'Api client',
      TransactionType: 'CustomerPayBillOnline',
      PartyA: MSISDN,
      PartyB: Number(SHORTCODE),
      Amount: 1,
      AccountReference: 'API1',
      CallBackURL: `${receiver.url}/hooks/daraja/stk/api`,
      PhoneNumber: MSISDN,
    });
    expect(pushed).toMatchObject({
      ResponseCode: '0',
      ResponseDescription: 'Success. Request accepted for processing',
    });
    const id = pushed.CheckoutRequestID as string;
    await sim.waitForCallbacks(id);

    const queried = await mpesa.lipaNaMpesaQuery({
      BusinessShortCode: Number(SHORTCODE),
      passKey: PASSKEY,
      CheckoutRequestID: id,
    });
    const to = new Date();
    expect(queried).toMatchObject({ ResponseCode: '0', CheckoutRequestID: id, ResultCode: '0' });

    expectRecordedInUtc(id, from, to);
    expect(receiver.received.map((c) => c.url)).toContain('/hooks/daraja/stk/api');
    expect(redirect.calls.map((c) => `${c.method} ${c.url.split('?')[0]}`)).toEqual([
      `GET https://${SANDBOX_HOST}/oauth/v1/generate`,
      `POST https://${SANDBOX_HOST}/mpesa/stkpush/v1/processrequest`,
      `GET https://${SANDBOX_HOST}/oauth/v1/generate`,
      `POST https://${SANDBOX_HOST}/mpesa/stkpushquery/v1/query`,
    ]);
  });

  it('still refuses a Password that does not match the Timestamp sent', async () => {
    const mpesa = new MpesaNode({
      consumerKey: KEY,
      consumerSecret: SECRET,
      environment: 'sandbox',
      lipaNaMpesaShortCode: SHORTCODE,
      lipaNaMpesaShortPass: 'not-the-passkey',
    });
    const err = await mpesa
      .lipaNaMpesaOnline(MSISDN, 1, `${receiver.url}/hooks/daraja/stk/bad`, 'BAD1', 'Bad passkey')
      .then(
        () => undefined,
        (e: { response?: { status: number; data: unknown } }) => e,
      );
    expect(err?.response?.status).toBe(500);
    expect(err?.response?.data).toMatchObject({ errorCode: '500.001.1001', errorMessage: 'Wrong credentials' });
    expect(sim.pushes()).toHaveLength(0);
  });
});
