import { ValidationFailedError } from '../../../common/errors';
import type { ProviderErrorKind } from '../provider-errors';
import {
  captureLogs,
  CONSUMER_KEY,
  darajaError,
  deadBaseUrl,
  FakeDaraja,
  FakeReply,
  makeAccount,
  makeService,
  mpesaError,
  OAUTH_PATH,
  PUSH_PATH,
  SANDBOX_PASSKEY,
  validPush,
  withFakeDaraja,
} from './fake-daraja.testing';
import { nairobiTimestamp } from './nairobi-time';
import { stkPassword } from './password';

const PUSH_FIELDS = [
  'BusinessShortCode',
  'Password',
  'Timestamp',
  'TransactionType',
  'Amount',
  'PartyA',
  'PartyB',
  'PhoneNumber',
  'CallBackURL',
  'AccountReference',
  'TransactionDesc',
];

describe('DarajaService.initiateStkPush', () => {
  let fake: FakeDaraja;
  let logs: ReturnType<typeof captureLogs>;

  withFakeDaraja((f, l) => {
    fake = f;
    logs = l;
  });

  it('PayBill: sends exactly the Daraja fields with the right values and types', async () => {
    const svc = makeService(fake.baseUrl);
    const before = nairobiTimestamp();
    const result = await svc.initiateStkPush(validPush());
    const after = nairobiTimestamp();

    expect(fake.count(PUSH_PATH)).toBe(1);
    const [req] = fake.of(PUSH_PATH);
    expect(req.method).toBe('POST');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers.authorization).toBe('Bearer tok-1');

    const body = req.json;
    expect(Object.keys(body).sort()).toEqual([...PUSH_FIELDS].sort());
    const ts: string = body.Timestamp;
    expect(ts).toMatch(/^\d{14}$/);
    expect(ts >= before && ts <= after).toBe(true);
    expect(body).toEqual({
      BusinessShortCode: '174379',
      Password: stkPassword('174379', SANDBOX_PASSKEY, ts),
      Timestamp: ts,
      TransactionType: 'CustomerPayBillOnline',
      Amount: 10,
      PartyA: '254708374149',
      PartyB: '174379',
      PhoneNumber: '254708374149',
      CallBackURL: 'https://pay.example.com/payments/callback/pay_1/tok',
      AccountReference: 'INV10023',
      TransactionDesc: 'Order 10023',
    });
    expect(typeof body.Amount).toBe('number');

    expect(result).toEqual({
      merchantRequestId: '2654-4b64-97ff-b827b542881d3130',
      checkoutRequestId: 'ws_CO_1007202409152617172396192',
      responseCode: '0',
      responseDescription: 'Success. Request accepted for processing',
      customerMessage: 'Success. Request accepted for processing',
      timestamp: ts,
    });
  });

  it('uses one timestamp for Timestamp and Password', async () => {
    const svc = makeService(fake.baseUrl);
    for (let i = 0; i < 3; i++) await svc.initiateStkPush(validPush());
    for (const req of fake.of(PUSH_PATH)) {
      const decoded = Buffer.from(req.json.Password, 'base64').toString('utf8');
      expect(decoded).toBe(`174379${SANDBOX_PASSKEY}${req.json.Timestamp}`);
    }
  });

  it('computes the timestamp once even across a second boundary', async () => {
    const svc = makeService(fake.baseUrl);
    await svc.getAccessToken(); // keep the OAuth exchange out of the clock trick below
    // Every argument-less `new Date()` returns a clock one second later than the previous one,
    // so computing "now" twice (Iankumu's bug) would give Password and Timestamp different values.
    const RealDate = Date;
    let tick = 0;
    class SteppingDate extends RealDate {
      constructor(...args: unknown[]) {
        if (args.length) super(...(args as [number]));
        else super(RealDate.UTC(2025, 11, 31, 20, 59, 59, 999) + 1000 * tick++);
      }
    }
    global.Date = SteppingDate as DateConstructor;
    let result;
    try {
      result = await svc.initiateStkPush(validPush());
    } finally {
      global.Date = RealDate;
    }
    expect(tick).toBeGreaterThanOrEqual(1);
    const body = fake.of(PUSH_PATH)[0].json;
    expect(body.Timestamp).toBe('20251231235959');
    expect(body.Password).toBe(stkPassword('174379', SANDBOX_PASSKEY, '20251231235959'));
    expect(result.timestamp).toBe('20251231235959');
  });

  it('Till: CustomerBuyGoodsOnline, BusinessShortCode = store number, PartyB = till', async () => {
    const svc = makeService(fake.baseUrl, {}, { shortcode: '7654321', transactionType: 'till', tillNumber: '5566778' });
    await svc.initiateStkPush(validPush());
    const body = fake.of(PUSH_PATH)[0].json;
    expect(body).toMatchObject({
      BusinessShortCode: '7654321',
      TransactionType: 'CustomerBuyGoodsOnline',
      PartyA: '254708374149',
      PartyB: '5566778',
      PhoneNumber: '254708374149',
    });
    expect(body.Password).toBe(stkPassword('7654321', SANDBOX_PASSKEY, body.Timestamp));
  });

  it('uses the account passed per call (its baseUrl, credentials and shortcode)', async () => {
    const other = new FakeDaraja();
    await other.start();
    try {
      const svc = makeService(fake.baseUrl);
      await svc.initiateStkPush(
        validPush(),
        makeAccount(other.baseUrl, { id: 'shop-2', shortcode: '600111', passkey: 'pk2' }),
      );
      expect(fake.requests).toHaveLength(0);
      expect(other.count(OAUTH_PATH)).toBe(1);
      expect(other.of(PUSH_PATH)[0].json.BusinessShortCode).toBe('600111');
      expect(other.of(PUSH_PATH)[0].json.Password).toBe(
        stkPassword('600111', 'pk2', other.of(PUSH_PATH)[0].json.Timestamp),
      );
    } finally {
      await other.close();
    }
  });

  it('accepts the limits exactly', async () => {
    const svc = makeService(fake.baseUrl);
    await svc.initiateStkPush(
      validPush({ amount: 1, accountReference: 'A'.repeat(12), transactionDesc: 'D'.repeat(13) }),
    );
    await svc.initiateStkPush(validPush({ amount: 250000, phoneNumber: '254112345678' }));
    expect(fake.count(PUSH_PATH)).toBe(2);
  });

  it.each<[string, Record<string, unknown>]>([
    ['decimal amount', { amount: 10.5 }],
    ['zero amount', { amount: 0 }],
    ['negative amount', { amount: -5 }],
    ['amount above 250000', { amount: 250001 }],
    ['string amount', { amount: '10' }],
    ['NaN amount', { amount: NaN }],
    ['AccountReference of 13 chars', { accountReference: 'A'.repeat(13) }],
    ['empty AccountReference', { accountReference: '' }],
    ['TransactionDesc of 14 chars', { transactionDesc: 'D'.repeat(14) }],
    ['empty TransactionDesc', { transactionDesc: '' }],
    ['unnormalised phone', { phoneNumber: '0712345678' }],
    ['numeric phone', { phoneNumber: 254712345678 }],
    ['callback URL with a space', { callbackUrl: 'https://pay.example.com/x y' }],
    ['callback URL not http', { callbackUrl: 'ftp://pay.example.com/x' }],
  ])('refuses %s with VALIDATION_FAILED and sends nothing', async (_label, patch) => {
    const err = await makeService(fake.baseUrl)
      .initiateStkPush(validPush(patch) as never)
      .catch((e) => e);
    expect(err).toBeInstanceOf(ValidationFailedError);
    expect(err.code).toBe('VALIDATION_FAILED');
    expect(err.statusCode).toBe(400);
    expect(fake.requests).toHaveLength(0);
  });

  it('refuses a till account without tillNumber (misconfiguration, nothing sent)', async () => {
    const svc = makeService(fake.baseUrl, {}, { transactionType: 'till' });
    const err = await svc.initiateStkPush(validPush()).catch((e) => e);
    expect(err.code).toBe('DARAJA_MISCONFIGURED');
    expect(err.statusCode).toBe(500);
    expect(fake.requests).toHaveLength(0);
  });

  type Row = [string, FakeReply, ProviderErrorKind, 'not_processed' | 'unknown', string | undefined];
  it.each<Row>([
    [
      '400.002.02 Invalid PhoneNumber',
      darajaError(400, '400.002.02', 'Bad Request - Invalid PhoneNumber'),
      'rejected',
      'not_processed',
      '400.002.02',
    ],
    [
      '400.002.02 Invalid Amount',
      darajaError(400, '400.002.02', 'Bad Request - Invalid Amount'),
      'rejected',
      'not_processed',
      '400.002.02',
    ],
    [
      '404.001.01 Resource not found',
      darajaError(404, '404.001.01', 'Resource not found'),
      'rejected',
      'not_processed',
      '404.001.01',
    ],
    [
      '405.001 Method Not Allowed',
      darajaError(405, '405.001', 'Method Not Allowed'),
      'rejected',
      'not_processed',
      '405.001',
    ],
    [
      '500.001.1001 Wrong credentials',
      darajaError(500, '500.001.1001', 'Wrong credentials'),
      'rejected',
      'not_processed',
      '500.001.1001',
    ],
    [
      '500.001.1001 Merchant does not exist',
      darajaError(500, '500.001.1001', 'Merchant does not exist'),
      'rejected',
      'not_processed',
      '500.001.1001',
    ],
    [
      '500.001.1001 Unable to lock subscriber',
      darajaError(
        500,
        '500.001.1001',
        'Unable to lock subscriber, a transaction is already in process for the current subscriber',
      ),
      'customer_busy',
      'not_processed',
      '500.001.1001',
    ],
    [
      '500.003.02 Spike Arrest',
      darajaError(500, '500.003.02', 'Error Occurred: Spike Arrest Violation'),
      'rate_limited',
      'not_processed',
      '500.003.02',
    ],
    [
      '500.003.02 System is busy',
      darajaError(500, '500.003.02', 'System is busy. Please try again in few minutes.'),
      'rate_limited',
      'not_processed',
      '500.003.02',
    ],
    [
      '500.003.03 Quota Violation',
      darajaError(500, '500.003.03', 'Quota Violation'),
      'rate_limited',
      'not_processed',
      '500.003.03',
    ],
    ['HTTP 429 without body', { status: 429 }, 'rate_limited', 'not_processed', undefined],
    [
      '500.003.1001 Internal Server Error',
      darajaError(500, '500.003.1001', 'Internal Server Error'),
      'unavailable',
      'unknown',
      '500.003.1001',
    ],
    [
      'HTTP 503 HTML',
      { status: 503, body: '<html><body>Service Unavailable</body></html>' },
      'unavailable',
      'unknown',
      undefined,
    ],
    ['HTTP 502 empty', { status: 502 }, 'unavailable', 'unknown', undefined],
    [
      '200 with ResponseCode "1"',
      { status: 200, body: { ResponseCode: '1', ResponseDescription: 'Rejected' } },
      'rejected',
      'not_processed',
      '1',
    ],
    ['200 with a non-JSON body', { status: 200, body: 'OK' }, 'unavailable', 'unknown', undefined],
    [
      '200 "0" without CheckoutRequestID',
      { status: 200, body: { ResponseCode: '0' } },
      'unavailable',
      'unknown',
      undefined,
    ],
  ])('maps %s without retrying', async (_label, reply, kind, outcome, errorCode) => {
    fake.push = () => reply;
    const err = await makeService(fake.baseUrl)
      .initiateStkPush(validPush())
      .catch((e) => e);
    expect(err).toEqual(mpesaError(kind));
    expect(err.outcome).toBe(outcome);
    expect(err.providerCode).toBe(errorCode);
    expect(err.providerHttpStatus).toBe(reply.status);
    expect(fake.count(PUSH_PATH)).toBe(1);
    expect(fake.count(OAUTH_PATH)).toBe(1);
  });

  it('keeps the Daraja errorMessage and requestId on the error', async () => {
    fake.push = () => darajaError(400, '400.002.02', 'Bad Request - Invalid CallBackURL');
    const err = await makeService(fake.baseUrl)
      .initiateStkPush(validPush())
      .catch((e) => e);
    expect(err.providerMessage).toBe('Bad Request - Invalid CallBackURL');
    expect(err.providerRequestId).toBe('1c5b-4ba8-815c-ac45c57a3db01495926');
    expect(err.code).toBe('PROVIDER_REJECTED');
    // ...and in the details our client gets.
    expect(err.details).toEqual({
      provider: 'mpesa',
      providerErrorCode: '400.002.02',
      providerErrorMessage: 'Bad Request - Invalid CallBackURL',
      providerRequestId: '1c5b-4ba8-815c-ac45c57a3db01495926',
    });
  });

  it('a push Daraja answers 200 but does not accept keeps its ResponseCode, description and MerchantRequestID', async () => {
    fake.push = () => ({
      status: 200,
      body: { MerchantRequestID: '29115-34620561-1', ResponseCode: '1', ResponseDescription: 'Rejected' },
    });
    const err = await makeService(fake.baseUrl)
      .initiateStkPush(validPush())
      .catch((e) => e);
    expect(err).toEqual(mpesaError('rejected'));
    expect(err.details).toEqual({
      provider: 'mpesa',
      providerErrorCode: '1',
      providerErrorMessage: 'Rejected',
      providerRequestId: '29115-34620561-1',
    });
  });

  it("removes the account's credentials and the token sent from Daraja's texts (error, details, logs)", async () => {
    fake.push = (req) =>
      darajaError(
        400,
        '400.002.02',
        `Bad Request - Invalid Password for ${req.json.Password} with ${req.headers.authorization} key ${CONSUMER_KEY} passkey ${SANDBOX_PASSKEY}`,
      );
    const err = await makeService(fake.baseUrl)
      .initiateStkPush(validPush())
      .catch((e) => e);
    expect(err).toEqual(mpesaError('rejected'));
    expect(err.providerMessage).toBe('Bad Request - Invalid Password for *** with Bearer *** key *** passkey ***');
    const seen = [err.message, JSON.stringify(err.details), ...logs.lines].join('\n');
    for (const secret of [fake.of(PUSH_PATH)[0].json.Password, 'tok-1', CONSUMER_KEY, SANDBOX_PASSKEY])
      expect(seen).not.toContain(secret);
  });

  it('never reuses a connection (no keep-alive): "refused" must stay distinguishable from "reset after sending"', async () => {
    const svc = makeService(fake.baseUrl);
    await svc.initiateStkPush(validPush());
    await svc.initiateStkPush(validPush());
    expect(fake.requests.length).toBe(3);
    for (const r of fake.requests) expect(r.headers.connection).toBe('close');
    expect(new Set(fake.requests.map((r) => r.remotePort)).size).toBe(3);
  });

  it('matches errorMessage case-insensitively', async () => {
    fake.push = () =>
      darajaError(500, '500.001.1001', 'UNABLE TO LOCK SUBSCRIBER, a transaction is already in process');
    const err = await makeService(fake.baseUrl)
      .initiateStkPush(validPush())
      .catch((e) => e);
    expect(err).toEqual(mpesaError('customer_busy'));
    expect(err.statusCode).toBe(409);
    expect(err.headers).toEqual({ 'Retry-After': '60' });
  });

  it('timeout (server never answers) -> ProviderError timeout with outcome unknown', async () => {
    fake.push = () => 'hang';
    const started = Date.now();
    const err = await makeService(fake.baseUrl, { timeoutMs: 150 })
      .initiateStkPush(validPush())
      .catch((e) => e);
    expect(err).toEqual(mpesaError('timeout'));
    expect(err.outcome).toBe('unknown');
    expect(err.code).toBe('PROVIDER_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(1500);
    expect(fake.count(PUSH_PATH)).toBe(1);
  });

  it('connection dropped after sending (ECONNRESET) -> outcome unknown', async () => {
    fake.push = () => 'destroy';
    const err = await makeService(fake.baseUrl)
      .initiateStkPush(validPush())
      .catch((e) => e);
    expect(err).toEqual(mpesaError('unavailable'));
    expect(err.outcome).toBe('unknown');
    expect(fake.count(PUSH_PATH)).toBe(1);
  });

  it('connection refused on the push -> ProviderError unreachable with outcome not_processed', async () => {
    const svc = makeService(fake.baseUrl);
    await svc.getAccessToken(); // token cached while the server is up
    await fake.close();
    const err = await svc.initiateStkPush(validPush()).catch((e) => e);
    expect(err).toEqual(mpesaError('unreachable'));
    expect(err.outcome).toBe('not_processed');
    // One "unreachable" status for every provider: 503, try again later (it was 502 PROVIDER_UNAVAILABLE for M-Pesa).
    expect([err.code, err.statusCode, err.headers]).toEqual(['PROVIDER_UNREACHABLE', 503, { 'Retry-After': '10' }]);
  });

  it('Daraja down entirely (OAuth refused) -> ProviderError unreachable, nothing pushed', async () => {
    const err = await makeService(await deadBaseUrl())
      .initiateStkPush(validPush())
      .catch((e) => e);
    expect(err).toEqual(mpesaError('unreachable'));
    expect(err.outcome).toBe('not_processed');
  });

  it('an OAuth timeout before the push is reported as not_processed (the push was never sent)', async () => {
    fake.oauth = () => 'hang';
    const err = await makeService(fake.baseUrl, { timeoutMs: 100 })
      .initiateStkPush(validPush())
      .catch((e) => e);
    expect(err).toEqual(mpesaError('unreachable'));
    expect(err.outcome).toBe('not_processed');
    expect([err.code, err.statusCode]).toEqual(['PROVIDER_UNREACHABLE', 503]);
    expect(err.message).toMatch(/STK push was not sent/);
    expect(fake.count(PUSH_PATH)).toBe(0);
  });

  it('OAuth credential failure during a push surfaces as ProviderError auth', async () => {
    fake.oauth = () => ({ status: 400 });
    await expect(makeService(fake.baseUrl).initiateStkPush(validPush())).rejects.toEqual(mpesaError('auth'));
    expect(fake.count(PUSH_PATH)).toBe(0);
  });
});
