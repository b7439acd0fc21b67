import { startDarajaSimulator, type DarajaSimulator } from '../src';
import { expectEnvelope, nairobiTimestamp, password, PASSKEY, pushBody, queryBody, request, SHORTCODE, stkPush, stkQuery, token } from './helpers';

describe('STK query', () => {
  let sim: DarajaSimulator;
  let accessToken: string;
  const callbackUrl = 'http://127.0.0.1:9/hooks/daraja/stk/q';

  async function push(phone = 254708374149): Promise<string> {
    const res = await stkPush(sim.url, accessToken, pushBody(callbackUrl, { PhoneNumber: phone }));
    expect(res.status).toBe(200);
    return (res.json as { CheckoutRequestID: string }).CheckoutRequestID;
  }

  beforeAll(async () => {
    sim = await startDarajaSimulator({
      callbackDelayMs: 150,
      accounts: [
        { shortcode: SHORTCODE, passkey: PASSKEY, tillNumbers: ['174380'] },
        { shortcode: '600100', passkey: 'other-passkey' },
      ],
    });
  });
  afterAll(async () => {
    await sim.close();
  });
  beforeEach(async () => {
    sim.reset();
    accessToken = await token(sim.url);
  });

  it('says "being processed" (HTTP 500, requestId = CheckoutRequestID) until answered, then 200 with a STRING ResultCode', async () => {
    const id = await push(254700000001);
    const pending = await stkQuery(sim.url, accessToken, queryBody(id));
    expectEnvelope(pending, 500, '500.001.1001', 'The transaction is being processed');
    expect((pending.json as { requestId: string }).requestId).toBe(id);

    await sim.waitForCallbacks(id);
    const done = await stkQuery(sim.url, accessToken, queryBody(id));
    expect(done.status).toBe(200);
    const push0 = sim.getPush(id);
    expect(done.json).toEqual({
      ResponseCode: '0',
      ResponseDescription: 'The service request has been accepted successfully',
      MerchantRequestID: push0?.merchantRequestId,
      CheckoutRequestID: id,
      ResultCode: '1032',
      ResultDesc: 'Request cancelled by user',
    });
    expect(Object.keys(done.json as object)).toEqual([
      'ResponseCode',
      'ResponseDescription',
      'MerchantRequestID',
      'CheckoutRequestID',
      'ResultCode',
      'ResultDesc',
    ]);
    expect(sim.stats().queryRequests).toBe(2);
  });

  it('reports success as ResultCode "0" with no receipt fields', async () => {
    const id = await push();
    await sim.resolve(id, 0);
    const done = await stkQuery(sim.url, accessToken, queryBody(id));
    expect(done.json).toMatchObject({ ResultCode: '0', ResultDesc: 'The service request is processed successfully.' });
    expect(done.text).not.toContain('MpesaReceiptNumber');
  });

  it('answers an unknown CheckoutRequestID with HTTP 500 "does not Exist" (random requestId)', async () => {
    const res = await stkQuery(sim.url, accessToken, queryBody('ws_CO_01012024000000123456789'));
    expectEnvelope(res, 500, '500.001.1001', 'The transaction does not Exist');
    expect((res.json as { requestId: string }).requestId).not.toBe('ws_CO_01012024000000123456789');
  });

  it('does not reveal another shortcode\'s push', async () => {
    const id = await push();
    const ts = nairobiTimestamp();
    const res = await stkQuery(sim.url, accessToken, {
      BusinessShortCode: 600100,
      Password: password('600100', 'other-passkey', ts),
      Timestamp: ts,
      CheckoutRequestID: id,
    });
    expectEnvelope(res, 500, '500.001.1001', 'The transaction does not Exist');
  });

  it('validates token, password, timestamp, shortcode and CheckoutRequestID like the push', async () => {
    const id = await push();
    const stale = nairobiTimestamp(new Date(Date.now() - 3600_000));
    expectEnvelope(await stkQuery(sim.url, 'bogus', queryBody(id)), 404, '404.001.03', 'Invalid Access Token');
    expectEnvelope(
      await stkQuery(sim.url, accessToken, queryBody(id, { Password: password(SHORTCODE, 'x', nairobiTimestamp()) })),
      500,
      '500.001.1001',
      'Wrong credentials',
    );
    expectEnvelope(
      await stkQuery(sim.url, accessToken, queryBody(id, { Timestamp: stale, Password: password(SHORTCODE, PASSKEY, stale) })),
      400,
      '400.002.02',
      'Bad Request - Invalid Timestamp',
    );
    expectEnvelope(await stkQuery(sim.url, accessToken, queryBody(id, { BusinessShortCode: '999999' })), 500, '500.001.1001', 'Merchant does not exist');
    expectEnvelope(
      await stkQuery(sim.url, accessToken, queryBody(id, { CheckoutRequestID: undefined })),
      400,
      '400.002.02',
      'Bad Request - Invalid CheckoutRequestID',
    );
    const get = await request(`${sim.url}/mpesa/stkpushquery/v1/query`, { headers: { Authorization: `Bearer ${accessToken}` } });
    expectEnvelope(get, 405, '405.001', 'Method Not Allowed');
  });
});
