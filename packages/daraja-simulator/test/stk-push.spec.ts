import { startDarajaSimulator, type DarajaSimulator } from '../src';
import {
  expectEnvelope,
  nairobiTimestamp,
  PASSKEY,
  password,
  postJson,
  pushBody,
  request,
  SHORTCODE,
  sleep,
  startReceiver,
  stkPush,
  TILL,
  token,
  uniquePath,
  type Receiver,
  ZERO_STATS,
} from './helpers';

const DELAY = 100;
const PUSH_PATH = '/mpesa/stkpush/v1/processrequest';

interface Accepted {
  MerchantRequestID: string;
  CheckoutRequestID: string;
  ResponseCode: string;
  ResponseDescription: string;
  CustomerMessage: string;
}

interface CallbackJson {
  Body: {
    stkCallback: {
      MerchantRequestID: string;
      CheckoutRequestID: string;
      ResultCode: unknown;
      ResultDesc: string;
      CallbackMetadata?: { Item: Array<{ Name: string; Value?: unknown }> };
    };
  };
}

describe('STK push', () => {
  let sim: DarajaSimulator;
  let receiver: Receiver;
  let accessToken: string;

  beforeAll(async () => {
    sim = await startDarajaSimulator({ callbackDelayMs: DELAY });
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await sim.close();
    await receiver.close();
  });
  beforeEach(async () => {
    sim.reset();
    receiver.received.length = 0;
    accessToken = await token(sim.url);
  });

  it('accepts a valid push and delivers the success callback with the exact Daraja shape and types', async () => {
    const path = uniquePath('happy');
    const startedAt = Date.now();
    const res = await stkPush(sim.url, accessToken, pushBody(`${receiver.url}${path}`, { Amount: 15 }));

    expect(res.status).toBe(200);
    const accepted = res.json as Accepted;
    expect(Object.keys(accepted)).toEqual([
      'MerchantRequestID',
      'CheckoutRequestID',
      'ResponseCode',
      'ResponseDescription',
      'CustomerMessage',
    ]);
    for (const v of Object.values(accepted)) expect(typeof v).toBe('string');
    expect(accepted.ResponseCode).toBe('0');
    expect(accepted.ResponseDescription).toBe('Success. Request accepted for processing');
    expect(accepted.CustomerMessage).toBe('Success. Request accepted for processing');
    expect(accepted.MerchantRequestID).toMatch(/^\d{5}-\d{8}-1$/);
    expect(accepted.CheckoutRequestID).toMatch(/^ws_CO_\d{26}$/);
    // issue 8.7: like real ids since ~2022, it ends with the payer's national number (PhoneNumber 254708374149)
    expect(accepted.CheckoutRequestID.endsWith('708374149')).toBe(true);
    // ddMMyyyyHHmm of Nairobi "now" is embedded right after ws_CO_
    const ts = nairobiTimestamp(new Date(startedAt));
    const ddMMyyyyHHmm = `${ts.slice(6, 8)}${ts.slice(4, 6)}${ts.slice(0, 4)}${ts.slice(8, 12)}`;
    const ts2 = nairobiTimestamp();
    const ddMMyyyyHHmm2 = `${ts2.slice(6, 8)}${ts2.slice(4, 6)}${ts2.slice(0, 4)}${ts2.slice(8, 12)}`;
    expect([ddMMyyyyHHmm, ddMMyyyyHHmm2]).toContain(accepted.CheckoutRequestID.slice(6, 18));

    const [cb] = await receiver.waitFor(1);
    expect(cb).toBeDefined();
    if (!cb) return;
    expect(cb.at - startedAt).toBeGreaterThanOrEqual(DELAY - 10);
    expect(cb.method).toBe('POST');
    expect(cb.url).toBe(path);
    expect(cb.headers['content-type']).toBe('application/json;charset=UTF-8');
    expect(cb.headers['authorization']).toBeUndefined();
    expect(Object.keys(cb.headers).filter((h) => /signature|hmac/i.test(h))).toEqual([]);

    const body = JSON.parse(cb.raw) as CallbackJson;
    const stk = body.Body.stkCallback;
    expect(Object.keys(body)).toEqual(['Body']);
    expect(Object.keys(body.Body)).toEqual(['stkCallback']);
    expect(Object.keys(stk)).toEqual([
      'MerchantRequestID',
      'CheckoutRequestID',
      'ResultCode',
      'ResultDesc',
      'CallbackMetadata',
    ]);
    expect(stk.MerchantRequestID).toBe(accepted.MerchantRequestID);
    expect(stk.CheckoutRequestID).toBe(accepted.CheckoutRequestID);
    expect(stk.ResultCode).toBe(0);
    expect(typeof stk.ResultCode).toBe('number');
    expect(stk.ResultDesc).toBe('The service request is processed successfully.');

    const items = stk.CallbackMetadata?.Item ?? [];
    expect(items.map((i) => i.Name)).toEqual([
      'Amount',
      'MpesaReceiptNumber',
      'Balance',
      'TransactionDate',
      'PhoneNumber',
    ]);
    const byName = new Map(items.map((i) => [i.Name, i]));
    expect(byName.get('Amount')).toEqual({ Name: 'Amount', Value: 15 });
    expect(byName.get('MpesaReceiptNumber')?.Value).toMatch(/^[A-Z0-9]{10}$/);
    expect(byName.get('Balance')).toEqual({ Name: 'Balance' });
    expect('Value' in (byName.get('Balance') ?? {})).toBe(false);
    expect(cb.raw).toContain('{"Name":"Balance"}');
    const date = byName.get('TransactionDate')?.Value;
    expect(typeof date).toBe('number');
    expect(String(date)).toMatch(/^\d{14}$/);
    expect([nairobiTimestamp(new Date(cb.at - 1000)), nairobiTimestamp(new Date(cb.at))].map(Number)).toContain(date);
    expect(byName.get('PhoneNumber')).toEqual({ Name: 'PhoneNumber', Value: 254708374149 });
    expect(cb.raw).toContain('"PhoneNumber","Value":254708374149');

    const push = sim.getPush(accepted.CheckoutRequestID);
    expect(push).toMatchObject({
      state: 'answered',
      resultCode: 0,
      scenario: 'success',
      amount: 15,
      phoneNumber: '254708374149',
      shortcode: SHORTCODE,
      receipt: byName.get('MpesaReceiptNumber')?.Value,
    });
    const deliveries = await sim.waitForCallbacks(accepted.CheckoutRequestID);
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]).toMatchObject({
      checkoutRequestId: accepted.CheckoutRequestID,
      url: `${receiver.url}${path}`,
      status: 200,
    });
    expect(deliveries[0]?.body).toEqual(body);
    expect(sim.stats()).toEqual({ ...ZERO_STATS, oauthRequests: 1, pushRequests: 1, callbacksSent: 1, promptsSent: 1 });
  });

  it('accepts numeric strings, the maximum amount, 2541 numbers and unknown extra fields', async () => {
    const res = await stkPush(
      sim.url,
      accessToken,
      pushBody(`${receiver.url}/hooks/daraja/stk/strings`, {
        BusinessShortCode: '174379',
        Amount: '250000',
        PartyA: '254112345678',
        PartyB: '174379',
        PhoneNumber: '254112345678',
        AccountReference: 'ABCDEFGHIJKL',
        TransactionDesc: 'ABCDEFGHIJKLM',
        Remarks: 'ignored',
      }),
    );
    expect(res.status).toBe(200);
    const push = sim.getPush((res.json as Accepted).CheckoutRequestID);
    expect(push).toMatchObject({
      amount: 250000,
      phoneNumber: '254112345678',
      partyB: '174379',
      accountReference: 'ABCDEFGHIJKL',
    });
  });

  it('answers BuyGoods to a configured till with success', async () => {
    const res = await stkPush(
      sim.url,
      accessToken,
      pushBody(`${receiver.url}/hooks/daraja/stk/till`, {
        TransactionType: 'CustomerBuyGoodsOnline',
        PartyB: Number(TILL),
      }),
    );
    expect(res.status).toBe(200);
    const [cb] = await receiver.waitFor(1);
    expect((JSON.parse(cb?.raw ?? '{}') as CallbackJson).Body.stkCallback.ResultCode).toBe(0);
  });

  it.each([
    ['BuyGoods with the store number as PartyB', { TransactionType: 'CustomerBuyGoodsOnline', PartyB: 174379 }],
    ['PayBill with the till as PartyB', { TransactionType: 'CustomerPayBillOnline', PartyB: 174380 }],
  ])('accepts a wrong TransactionType/PartyB combination (%s) and answers 2028', async (_label, overrides) => {
    const res = await stkPush(sim.url, accessToken, pushBody(`${receiver.url}/hooks/daraja/stk/combo`, overrides));
    expect(res.status).toBe(200);
    const [cb] = await receiver.waitFor(1);
    const stk = (JSON.parse(cb?.raw ?? '{}') as CallbackJson).Body.stkCallback;
    expect(stk.ResultCode).toBe(2028);
    expect(stk.ResultDesc).toBe('The request is not permitted according to product assignment');
    expect(stk).not.toHaveProperty('CallbackMetadata');
    expect(sim.getPush((res.json as Accepted).CheckoutRequestID)?.scenario).toBe('product_not_permitted');
  });

  describe('validation', () => {
    const cb = (): string => `${receiver.url}/hooks/daraja/stk/v`;
    const stale = nairobiTimestamp(new Date(Date.now() - 10 * 60 * 1000));
    const utcNow = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
    const withTs = (ts: string): Record<string, unknown> => ({
      Timestamp: ts,
      Password: password(SHORTCODE, PASSKEY, ts),
    });

    const cases: Array<[string, () => Record<string, unknown>, number, string, string]> = [
      [
        'wrong password',
        () => ({ Password: password(SHORTCODE, 'wrong-passkey', nairobiTimestamp()) }),
        500,
        '500.001.1001',
        'Wrong credentials',
      ],
      [
        'password from another timestamp',
        () => ({ Password: password(SHORTCODE, PASSKEY, stale) }),
        500,
        '500.001.1001',
        'Wrong credentials',
      ],
      ['missing password', () => ({ Password: undefined }), 500, '500.001.1001', 'Wrong credentials'],
      [
        'password from the UTC timestamp with the Nairobi one sent',
        () => ({ Password: password(SHORTCODE, PASSKEY, utcNow) }),
        500,
        '500.001.1001',
        'Wrong credentials',
      ],
      ['malformed timestamp', () => withTs('2024-07-12 09:15'), 400, '400.002.02', 'Bad Request - Invalid Timestamp'],
      [
        'impossible date as timestamp',
        () => withTs('20240230101010'),
        400,
        '400.002.02',
        'Bad Request - Invalid Timestamp',
      ],
      ['unknown shortcode', () => ({ BusinessShortCode: 600000 }), 500, '500.001.1001', 'Merchant does not exist'],
      [
        'missing shortcode',
        () => ({ BusinessShortCode: undefined }),
        400,
        '400.002.02',
        'Bad Request - Invalid BusinessShortCode',
      ],
      [
        'bad transaction type',
        () => ({ TransactionType: 'CustomerPayBill' }),
        400,
        '400.002.02',
        'Bad Request - Invalid TransactionType',
      ],
      ['decimal amount', () => ({ Amount: 1.5 }), 400, '400.002.02', 'Bad Request - Invalid Amount'],
      ['decimal amount string', () => ({ Amount: '1.00' }), 400, '400.002.02', 'Bad Request - Invalid Amount'],
      ['zero amount', () => ({ Amount: 0 }), 400, '400.002.02', 'Bad Request - Invalid Amount'],
      ['amount above 250000', () => ({ Amount: 250001 }), 400, '400.002.02', 'Bad Request - Invalid Amount'],
      ['bad PartyA', () => ({ PartyA: 712345678 }), 400, '400.002.02', 'Bad Request - Invalid PartyA'],
      ['bad PartyB', () => ({ PartyB: 'abc' }), 400, '400.002.02', 'Bad Request - Invalid PartyB'],
      [
        'phone starting 07',
        () => ({ PhoneNumber: '0712345678' }),
        400,
        '400.002.02',
        'Bad Request - Invalid PhoneNumber',
      ],
      [
        'phone with +',
        () => ({ PhoneNumber: '+254712345678' }),
        400,
        '400.002.02',
        'Bad Request - Invalid PhoneNumber',
      ],
      [
        'phone with 11 digits',
        () => ({ PhoneNumber: 25471234567 }),
        400,
        '400.002.02',
        'Bad Request - Invalid PhoneNumber',
      ],
      [
        'phone in 2549 range',
        () => ({ PhoneNumber: 254912345678 }),
        400,
        '400.002.02',
        'Bad Request - Invalid PhoneNumber',
      ],
      [
        'callback with mpesa',
        () => ({ CallBackURL: `${receiver.url}/mpesa/callback` }),
        400,
        '400.002.02',
        'Bad Request - Invalid CallBackURL',
      ],
      [
        'callback with M-PESA',
        () => ({ CallBackURL: `${receiver.url}/hooks/M-PESA` }),
        400,
        '400.002.02',
        'Bad Request - Invalid CallBackURL',
      ],
      [
        'callback with Safaricom',
        () => ({ CallBackURL: `${receiver.url}/Safaricom/cb` }),
        400,
        '400.002.02',
        'Bad Request - Invalid CallBackURL',
      ],
      [
        'callback with exec',
        () => ({ CallBackURL: `${receiver.url}/hooks/exec` }),
        400,
        '400.002.02',
        'Bad Request - Invalid CallBackURL',
      ],
      [
        'callback with cmd',
        () => ({ CallBackURL: `${receiver.url}/CMD` }),
        400,
        '400.002.02',
        'Bad Request - Invalid CallBackURL',
      ],
      [
        'callback with sql',
        () => ({ CallBackURL: `${receiver.url}/hooks/sql` }),
        400,
        '400.002.02',
        'Bad Request - Invalid CallBackURL',
      ],
      [
        'callback with query',
        () => ({ CallBackURL: `${receiver.url}/hooks?query=1` }),
        400,
        '400.002.02',
        'Bad Request - Invalid CallBackURL',
      ],
      [
        'callback with uppercase host',
        () => ({ CallBackURL: 'http://LOCALHOST:9/hooks' }),
        400,
        '400.002.02',
        'Bad Request - Invalid CallBackURL',
      ],
      [
        'callback with whitespace',
        () => ({ CallBackURL: ` ${cb()}` }),
        400,
        '400.002.02',
        'Bad Request - Invalid CallBackURL',
      ],
      [
        'callback not http(s)',
        () => ({ CallBackURL: 'ftp://example.com/hooks' }),
        400,
        '400.002.02',
        'Bad Request - Invalid CallBackURL',
      ],
      [
        'callback not a URL',
        () => ({ CallBackURL: 'hooks/daraja' }),
        400,
        '400.002.02',
        'Bad Request - Invalid CallBackURL',
      ],
      [
        'AccountReference of 13 chars',
        () => ({ AccountReference: 'ABCDEFGHIJKLM' }),
        400,
        '400.002.02',
        'Bad Request - Invalid AccountReference',
      ],
      [
        'missing AccountReference',
        () => ({ AccountReference: undefined }),
        400,
        '400.002.02',
        'Bad Request - Invalid AccountReference',
      ],
      [
        'TransactionDesc of 14 chars',
        () => ({ TransactionDesc: 'ABCDEFGHIJKLMN' }),
        400,
        '400.002.02',
        'Bad Request - Invalid TransactionDesc',
      ],
      [
        'empty TransactionDesc',
        () => ({ TransactionDesc: '' }),
        400,
        '400.002.02',
        'Bad Request - Invalid TransactionDesc',
      ],
    ];

    it.each(cases)('rejects %s', async (_label, overrides, status, code, message) => {
      const res = await stkPush(sim.url, accessToken, pushBody(cb(), overrides()));
      expectEnvelope(res, status, code, message);
      expect(sim.pushes()).toHaveLength(0);
    });

    // issue 8.12: no primary source gives Daraja a Timestamp window; public clients (mpesa-node, mpesa-api) send UTC.
    const utcStamp = (at: Date): string => at.toISOString().replace(/\D/g, '').slice(0, 14);
    const offsets: Array<[string, (now: number) => string, number]> = [
      ['UTC instead of Nairobi time', (now) => utcStamp(new Date(now)), -10800],
      ['10 min old', (now) => nairobiTimestamp(new Date(now - 600_000)), -600],
      ['10 min ahead', (now) => nairobiTimestamp(new Date(now + 600_000)), 600],
    ];

    it.each(offsets)(
      'issue 8.12: accepts a %s Timestamp whose Password matches (no window by default) and records it',
      async (_label, stamp, skew) => {
        const ts = stamp(Date.now());
        const res = await stkPush(sim.url, accessToken, pushBody(cb(), withTs(ts)));
        expect(res.status).toBe(200);
        const push = sim.getPush((res.json as Accepted).CheckoutRequestID);
        expect(push?.timestamp).toBe(ts);
        expect(Math.abs((push?.timestampSkewSeconds ?? 0) - skew)).toBeLessThanOrEqual(5);
      },
    );

    it.each(offsets)(
      'issue 8.12: with timestampToleranceSeconds 300 (setBehaviour) rejects a %s Timestamp',
      async (_label, stamp) => {
        sim.setBehaviour({ timestampToleranceSeconds: 300 });
        expectEnvelope(
          await stkPush(sim.url, accessToken, pushBody(cb(), withTs(stamp(Date.now())))),
          400,
          '400.002.02',
          'Bad Request - Invalid Timestamp',
        );
        expect((await stkPush(sim.url, accessToken, pushBody(cb()))).status).toBe(200);
        expect(sim.pushes()).toHaveLength(1);
      },
    );

    it('issue 8.12: the timestampToleranceSeconds option sets the window from the start, and reset() restores it', async () => {
      const strict = await startDarajaSimulator({ callbackDelayMs: DELAY, timestampToleranceSeconds: 300 });
      try {
        expect(strict.behaviour()).toEqual({ timestampToleranceSeconds: 300, pendingQueryForm: 'http500' });
        const t = await token(strict.url);
        expectEnvelope(
          await stkPush(strict.url, t, pushBody(cb(), withTs(utcStamp(new Date())))),
          400,
          '400.002.02',
          'Bad Request - Invalid Timestamp',
        );
        strict.setBehaviour({ timestampToleranceSeconds: null });
        expect((await stkPush(strict.url, t, pushBody(cb(), withTs(utcStamp(new Date()))))).status).toBe(200);
        strict.reset();
        expect(strict.behaviour().timestampToleranceSeconds).toBe(300);
      } finally {
        await strict.close();
      }
      await expect(startDarajaSimulator({ timestampToleranceSeconds: -1 })).rejects.toThrow(
        /timestampToleranceSeconds/,
      );
      expect(() => sim.setBehaviour({ timestampToleranceSeconds: 1.5 })).toThrow(/timestampToleranceSeconds/);
    });

    it('sends no callback for rejected pushes', async () => {
      await stkPush(sim.url, accessToken, pushBody(cb(), { Amount: 1.5 }));
      await sleep(DELAY + 100);
      expect(receiver.received).toHaveLength(0);
      expect(sim.callbacks()).toHaveLength(0);
      expect(sim.stats().pushRequests).toBe(1);
    });
  });

  describe('gateway checks', () => {
    const cb = (): string => `${receiver.url}/hooks/daraja/stk/g`;

    it('rejects a missing, unknown or Basic token with 404.001.03', async () => {
      const url = `${sim.url}${PUSH_PATH}`;
      expectEnvelope(await postJson(url, undefined, pushBody(cb())), 404, '404.001.03', 'Invalid Access Token');
      expectEnvelope(await postJson(url, 'notatoken', pushBody(cb())), 404, '404.001.03', 'Invalid Access Token');
      const basicAuth = await postJson(url, undefined, pushBody(cb()), { Authorization: `Basic ${accessToken}` });
      expectEnvelope(basicAuth, 404, '404.001.03', 'Invalid Access Token');
    });

    it('rejects GET with 405.001', async () => {
      const res = await request(`${sim.url}${PUSH_PATH}`, { headers: { Authorization: `Bearer ${accessToken}` } });
      expectEnvelope(res, 405, '405.001', 'Method Not Allowed');
    });

    it('answers a missing JSON content type with "Invalid BusinessShortCode" (FAQ quirk)', async () => {
      const body = JSON.stringify(pushBody(cb()));
      const none = await request(`${sim.url}${PUSH_PATH}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${accessToken}` },
        body,
      });
      expectEnvelope(none, 400, '400.002.02', 'Bad Request - Invalid BusinessShortCode');
      const text = await request(`${sim.url}${PUSH_PATH}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${accessToken}`, 'Content-Type': 'text/plain' },
        body,
      });
      expectEnvelope(text, 400, '400.002.02', 'Bad Request - Invalid BusinessShortCode');
      const withCharset = await request(`${sim.url}${PUSH_PATH}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${accessToken}`, 'Content-Type': 'application/json; charset=utf-8' },
        body,
      });
      expect(withCharset.status).toBe(200);
    });

    it('rejects malformed JSON with 400.002.05 and oversized bodies with 413', async () => {
      const headers = { Authorization: `Bearer ${accessToken}`, 'Content-Type': 'application/json' };
      const broken = await request(`${sim.url}${PUSH_PATH}`, {
        method: 'POST',
        headers,
        body: '{"BusinessShortCode":',
      });
      expectEnvelope(broken, 400, '400.002.05', 'Invalid Request Payload');
      const array = await request(`${sim.url}${PUSH_PATH}`, { method: 'POST', headers, body: '[]' });
      expectEnvelope(array, 400, '400.002.05', 'Invalid Request Payload');
      const huge = await request(`${sim.url}${PUSH_PATH}`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ ...pushBody(cb()), Padding: 'x'.repeat(70 * 1024) }),
      });
      expectEnvelope(huge, 413, '413.001.01', 'Request Entity Too Large');
    });

    it('answers unknown paths with 404.001.01', async () => {
      expectEnvelope(
        await postJson(`${sim.url}/mpesa/nothing/v1`, accessToken, {}),
        404,
        '404.001.01',
        'Resource not found',
      );
    });
  });
});
