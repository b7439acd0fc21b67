import { startDarajaSimulator, type DarajaSimulator } from '../src';
import {
  expectEnvelope,
  nairobiTimestamp,
  password,
  PASSKEY,
  pushBody,
  queryBody,
  request,
  SHORTCODE,
  stkPush,
  stkQuery,
  token,
} from './helpers';

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

  it("does not reveal another shortcode's push", async () => {
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
    // No Timestamp window by default (issue 8.12): an hour-old Timestamp whose Password matches is answered...
    expect(
      (
        await stkQuery(
          sim.url,
          accessToken,
          queryBody(id, { Timestamp: stale, Password: password(SHORTCODE, PASSKEY, stale) }),
        )
      ).status,
    ).toBe(500);
    expect(sim.queries().map((q) => [q.timestamp, q.answer])).toEqual([[stale, 'pending']]);
    // ...and refused once a window is set.
    sim.setBehaviour({ timestampToleranceSeconds: 300 });
    expectEnvelope(
      await stkQuery(
        sim.url,
        accessToken,
        queryBody(id, { Timestamp: stale, Password: password(SHORTCODE, PASSKEY, stale) }),
      ),
      400,
      '400.002.02',
      'Bad Request - Invalid Timestamp',
    );
    expectEnvelope(
      await stkQuery(sim.url, accessToken, queryBody(id, { Timestamp: '2024-07-12' })),
      400,
      '400.002.02',
      'Bad Request - Invalid Timestamp',
    );
    expectEnvelope(
      await stkQuery(sim.url, accessToken, queryBody(id, { BusinessShortCode: '999999' })),
      500,
      '500.001.1001',
      'Merchant does not exist',
    );
    expectEnvelope(
      await stkQuery(sim.url, accessToken, queryBody(id, { CheckoutRequestID: undefined })),
      400,
      '400.002.02',
      'Bad Request - Invalid CheckoutRequestID',
    );
    const get = await request(`${sim.url}/mpesa/stkpushquery/v1/query`, {
      headers: { Authorization: `Bearer ${accessToken}` },
    });
    expectEnvelope(get, 405, '405.001', 'Method Not Allowed');
  });

  describe('issue 8.13: the pending answer comes in two forms', () => {
    const FORM_4999 = { ResultCode: '4999', ResultDesc: 'The transaction is still under processing' };

    it('result4999 (option): HTTP 200 ResultCode "4999" exactly as the 2026 sandbox recorded it, then the final answer', async () => {
      const s2026 = await startDarajaSimulator({ callbackDelayMs: 150, pendingQueryForm: 'result4999' });
      try {
        const t = await token(s2026.url);
        const res = await stkPush(s2026.url, t, pushBody(callbackUrl, { PhoneNumber: 254700000007 }));
        const id = (res.json as { CheckoutRequestID: string }).CheckoutRequestID;
        const pending = await stkQuery(s2026.url, t, queryBody(id));
        expect(pending.status).toBe(200);
        expect(pending.json).toEqual(FORM_4999);
        await s2026.resolve(id, 0);
        const done = await stkQuery(s2026.url, t, queryBody(id));
        expect(done.json).toMatchObject({ ResponseCode: '0', CheckoutRequestID: id, ResultCode: '0' });
        expect(s2026.queries().map((q) => [q.answer, q.pendingForm, q.resultCode])).toEqual([
          ['pending', 'result4999', undefined],
          ['final', undefined, 0],
        ]);
      } finally {
        await s2026.close();
      }
    });

    it('http500 is the default; setBehaviour (and POST /__sim/behaviour) switches a running simulator, reset() restores it', async () => {
      const id = await push(254700000007);
      expect(sim.behaviour().pendingQueryForm).toBe('http500');
      expectEnvelope(
        await stkQuery(sim.url, accessToken, queryBody(id)),
        500,
        '500.001.1001',
        'The transaction is being processed',
      );
      sim.setBehaviour({ pendingQueryForm: 'result4999' });
      expect((await stkQuery(sim.url, accessToken, queryBody(id))).json).toEqual(FORM_4999);
      const back = await request(`${sim.url}/__sim/behaviour`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ pendingQueryForm: 'http500' }),
      });
      expect(back.json).toEqual({ behaviour: { timestampToleranceSeconds: null, pendingQueryForm: 'http500' } });
      expect((await stkQuery(sim.url, accessToken, queryBody(id))).status).toBe(500);
      sim.setBehaviour({ pendingQueryForm: 'result4999' });
      sim.reset();
      expect(sim.behaviour()).toEqual({ timestampToleranceSeconds: null, pendingQueryForm: 'http500' });
      expect(() => sim.setBehaviour({ pendingQueryForm: 'http200' as never })).toThrow(/pendingQueryForm/);
    });

    it('the never_answers_4999 scenario (254700000011) answers 4999 whatever the behaviour, until resolved', async () => {
      const id = await push(254700000011);
      expect(sim.getPush(id)).toMatchObject({ scenario: 'never_answers_4999', pendingQueryForm: 'result4999' });
      const pending = await stkQuery(sim.url, accessToken, queryBody(id));
      expect(pending.status).toBe(200);
      expect(pending.json).toEqual(FORM_4999);
      await sim.resolve(id, 1032);
      expect((await stkQuery(sim.url, accessToken, queryBody(id))).json).toMatchObject({ ResultCode: '1032' });
    });

    it('an unknown CheckoutRequestID is "does not Exist" in either form', async () => {
      sim.setBehaviour({ pendingQueryForm: 'result4999' });
      expectEnvelope(
        await stkQuery(sim.url, accessToken, queryBody('ws_CO_01012024000000123708374149')),
        500,
        '500.001.1001',
        'The transaction does not Exist',
      );
      expect(sim.queries().map((q) => q.answer)).toEqual(['not_found']);
    });
  });
});
