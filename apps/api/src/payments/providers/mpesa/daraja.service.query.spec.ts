import { ValidationFailedError } from '../../../common/errors';
import type { ProviderErrorKind } from '../provider-errors';
import { callbackToken } from './callback-token';
import { CallbackShapeError, InvalidPhoneNumberError } from './mpesa.errors';
import { Test } from '@nestjs/testing';
import { DARAJA_OPTIONS, DarajaService } from './daraja.service';
import {
  captureLogs,
  CONSUMER_KEY,
  CONSUMER_SECRET,
  darajaError,
  FakeDaraja,
  FakeReply,
  makeAccount,
  makeService,
  mpesaError,
  makeServiceOptions,
  OAUTH_PATH,
  PUSH_PATH,
  QUERY_PATH,
  SANDBOX_PASSKEY,
  SIGNING_SECRET,
  validPush,
  withFakeDaraja,
} from './fake-daraja.testing';
import { stkPassword } from './password';

const CHECKOUT_ID = 'ws_CO_13012021093521236557';

const finalReply = (resultCode: string | number, resultDesc: string) => ({
  status: 200,
  body: {
    ResponseCode: '0',
    ResponseDescription: 'The service request has been accepted successfully',
    MerchantRequestID: '22205-34066-1',
    CheckoutRequestID: CHECKOUT_ID,
    ResultCode: resultCode,
    ResultDesc: resultDesc,
  },
});

describe('DarajaService.queryStkStatus', () => {
  let fake: FakeDaraja;

  withFakeDaraja((f) => {
    fake = f;
  });

  it('sends exactly {BusinessShortCode, Password, Timestamp, CheckoutRequestID}', async () => {
    fake.query = () => finalReply('0', 'The service request is processed successfully.');
    await makeService(fake.baseUrl).queryStkStatus(CHECKOUT_ID);
    const [req] = fake.of(QUERY_PATH);
    expect(req.method).toBe('POST');
    expect(req.headers.authorization).toBe('Bearer tok-1');
    expect(req.headers['content-type']).toBe('application/json');
    expect(Object.keys(req.json).sort()).toEqual(['BusinessShortCode', 'CheckoutRequestID', 'Password', 'Timestamp']);
    expect(req.json).toEqual({
      BusinessShortCode: '174379',
      Password: stkPassword('174379', SANDBOX_PASSKEY, req.json.Timestamp),
      Timestamp: req.json.Timestamp,
      CheckoutRequestID: CHECKOUT_ID,
    });
    expect(req.json.Timestamp).toMatch(/^\d{14}$/);
  });

  it('HTTP 500 "The transaction is being processed" -> pending (not retried)', async () => {
    fake.query = () => ({
      status: 500,
      body: {
        requestId: 'ws_CO_20022018230142206',
        errorCode: '500.001.1001',
        errorMessage: 'The transaction is being processed',
      },
    });
    await expect(makeService(fake.baseUrl).queryStkStatus(CHECKOUT_ID)).resolves.toEqual({
      kind: 'pending',
      errorCode: '500.001.1001',
      errorMessage: 'The transaction is being processed',
    });
    expect(fake.count(QUERY_PATH)).toBe(1);
  });

  it.each(['The transaction does not Exist', 'The transaction does not exist', 'THE TRANSACTION DOES NOT EXIST'])(
    'HTTP 500 "%s" -> not_found',
    async (message) => {
      fake.query = () => darajaError(500, '500.001.1001', message);
      await expect(makeService(fake.baseUrl).queryStkStatus(CHECKOUT_ID)).resolves.toEqual({
        kind: 'not_found',
        errorCode: '500.001.1001',
        errorMessage: message,
      });
      expect(fake.count(QUERY_PATH)).toBe(1);
    },
  );

  it.each([
    ['0', 'The service request is processed successfully.', 'completed'],
    ['1032', 'Request cancelled by user', 'cancelled'],
    ['1037', 'DS timeout user cannot be reached', 'expired'],
    ['1019', 'Transaction has expired', 'expired'],
    ['1', 'The balance is insufficient for the transaction.', 'failed'],
    ['2001', 'The initiator information is invalid.', 'failed'],
  ])('HTTP 200 ResultCode "%s" -> final %s', async (code, desc, outcome) => {
    fake.query = () => finalReply(code, desc);
    await expect(makeService(fake.baseUrl).queryStkStatus(CHECKOUT_ID)).resolves.toEqual({
      kind: 'final',
      outcome,
      resultCode: code,
      resultDesc: desc,
      merchantRequestId: '22205-34066-1',
      checkoutRequestId: CHECKOUT_ID,
    });
  });

  it('accepts a numeric ResultCode and returns it as a string', async () => {
    fake.query = () => finalReply(0, 'ok');
    const res = await makeService(fake.baseUrl).queryStkStatus(CHECKOUT_ID);
    expect(res).toMatchObject({ kind: 'final', outcome: 'completed', resultCode: '0' });
  });

  it('a 200 that still says "under processing" is pending, never failed', async () => {
    fake.query = () => finalReply('4999', 'The transaction is still under processing');
    await expect(makeService(fake.baseUrl).queryStkStatus(CHECKOUT_ID)).resolves.toEqual({
      kind: 'pending',
      errorCode: '4999',
      errorMessage: 'The transaction is still under processing',
    });
  });

  it('spike arrest is retried with backoff and then succeeds', async () => {
    fake.query = (_r, nth) =>
      nth <= 2
        ? darajaError(500, '500.003.02', 'Error Occurred: Spike Arrest Violation')
        : finalReply('1032', 'Request cancelled by user');
    const res = await makeService(fake.baseUrl).queryStkStatus(CHECKOUT_ID);
    expect(res).toMatchObject({ kind: 'final', outcome: 'cancelled', resultCode: '1032' });
    expect(fake.count(QUERY_PATH)).toBe(3);
    expect(fake.count(OAUTH_PATH)).toBe(1);
  });

  it('waits between retries (exponential, jittered, capped)', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(1);
    const times: number[] = [];
    fake.query = (_r, nth) => {
      times.push(Date.now());
      return nth <= 3 ? darajaError(500, '500.003.03', 'Quota Violation') : finalReply('0', 'ok');
    };
    const svc = makeService(fake.baseUrl, { queryRetry: { retries: 3, baseDelayMs: 40, maxDelayMs: 100 } });
    await expect(svc.queryStkStatus(CHECKOUT_ID)).resolves.toMatchObject({ kind: 'final' });
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    // random()=1 → full ceiling: 40, 80, min(160,100)=100 ms
    expect(gaps[0]).toBeGreaterThanOrEqual(35);
    expect(gaps[1]).toBeGreaterThanOrEqual(75);
    expect(gaps[2]).toBeGreaterThanOrEqual(95);
    expect(gaps[2]).toBeLessThan(400);
  });

  it.each([
    ['500.003.02 spike arrest', darajaError(500, '500.003.02', 'Error Occurred: Spike Arrest Violation')],
    ['500.003.03 quota', darajaError(500, '500.003.03', 'Quota Violation')],
    ['HTTP 429', { status: 429 }],
  ])('%s: retries exhausted -> ProviderError rate_limited after retries+1 requests', async (_label, reply) => {
    fake.query = () => reply;
    const err = await makeService(fake.baseUrl)
      .queryStkStatus(CHECKOUT_ID)
      .catch((e) => e);
    expect(err).toEqual(mpesaError('rate_limited'));
    expect(err.outcome).toBe('not_processed');
    expect(fake.count(QUERY_PATH)).toBe(3);
  });

  it('retries: 0 means a single attempt', async () => {
    fake.query = () => darajaError(500, '500.003.02', 'Spike Arrest Violation');
    const svc = makeService(fake.baseUrl, { queryRetry: { retries: 0, baseDelayMs: 1, maxDelayMs: 1 } });
    await expect(svc.queryStkStatus(CHECKOUT_ID)).rejects.toEqual(mpesaError('rate_limited'));
    expect(fake.count(QUERY_PATH)).toBe(1);
  });

  it('token-invalid -> refresh and retry once, then success', async () => {
    fake.query = (req) =>
      req.headers.authorization === 'Bearer tok-1'
        ? darajaError(404, '404.001.03', 'Invalid Access Token')
        : finalReply('0', 'ok');
    await expect(makeService(fake.baseUrl).queryStkStatus(CHECKOUT_ID)).resolves.toMatchObject({
      kind: 'final',
      outcome: 'completed',
    });
    expect(fake.count(OAUTH_PATH)).toBe(2);
    expect(fake.count(QUERY_PATH)).toBe(2);
  });

  it('repeated token-invalid -> ProviderError auth after exactly one refresh', async () => {
    fake.query = () => darajaError(404, '404.001.03', 'Invalid Access Token');
    await expect(makeService(fake.baseUrl).queryStkStatus(CHECKOUT_ID)).rejects.toEqual(mpesaError('auth'));
    expect(fake.count(OAUTH_PATH)).toBe(2);
    expect(fake.count(QUERY_PATH)).toBe(2);
  });

  it.each<[string, FakeReply, ProviderErrorKind]>([
    ['Merchant does not exist', darajaError(500, '500.001.1001', 'Merchant does not exist'), 'rejected'],
    ['Wrong credentials', darajaError(500, '500.001.1001', 'Wrong credentials'), 'rejected'],
    ['400.002.02', darajaError(400, '400.002.02', 'Bad Request - Invalid CheckoutRequestID'), 'rejected'],
    ['500.003.1001', darajaError(500, '500.003.1001', 'Internal Server Error'), 'unavailable'],
    [
      '401.003.01 no apiproduct',
      darajaError(401, '401.003.01', 'Error Occurred - Invalid API call as no apiproduct match found'),
      'auth',
    ],
    ['200 garbage', { status: 200, body: '<html/>' }, 'unavailable'],
  ])('%s is an error, not a query result', async (_label, reply, kind) => {
    fake.query = () => reply;
    await expect(makeService(fake.baseUrl).queryStkStatus(CHECKOUT_ID)).rejects.toEqual(mpesaError(kind));
    expect(fake.count(QUERY_PATH)).toBe(1);
  });

  it('timeout -> ProviderError timeout', async () => {
    fake.query = () => 'hang';
    await expect(makeService(fake.baseUrl, { timeoutMs: 100 }).queryStkStatus(CHECKOUT_ID)).rejects.toEqual(
      mpesaError('timeout'),
    );
  });

  it.each([[''], ['   '], [undefined], [42], ['x'.repeat(201)]])(
    'refuses checkoutRequestId %p without calling Daraja',
    async (id) => {
      await expect(makeService(fake.baseUrl).queryStkStatus(id as never)).rejects.toBeInstanceOf(ValidationFailedError);
      expect(fake.requests).toHaveLength(0);
    },
  );
});

describe('DarajaService callbacks and helpers', () => {
  const svc = (base = 'https://pay.example.com/payments/callback/') =>
    makeService('http://127.0.0.1:9', { callbackBaseUrl: base });
  const body = {
    Body: {
      stkCallback: {
        MerchantRequestID: 'f1e2-4b95-a71d-b30d3cdbb7a7942864',
        CheckoutRequestID: 'ws_CO_21072024125243250722943992',
        ResultCode: 1032,
        ResultDesc: 'Request cancelled by user',
      },
    },
  };
  let logs: ReturnType<typeof captureLogs>;
  beforeEach(() => (logs = captureLogs()));
  afterEach(() => logs.restore());

  it('callbackUrlFor builds base/paymentId/token (trailing slash stripped)', () => {
    const token = callbackToken(SIGNING_SECRET, 'pay_01J9ZK');
    expect(token).toHaveLength(64);
    expect(svc().callbackUrlFor('pay_01J9ZK')).toBe(`https://pay.example.com/payments/callback/pay_01J9ZK/${token}`);
    expect(svc('https://pay.example.com/payments/callback').callbackUrlFor('pay_01J9ZK')).toBe(
      `https://pay.example.com/payments/callback/pay_01J9ZK/${token}`,
    );
  });

  it('callbackUrlFor refuses an empty payment id', () => {
    expect(() => svc().callbackUrlFor('')).toThrow(ValidationFailedError);
  });

  it('validateCallback: verified only with the right token for the right payment', () => {
    const s = svc();
    const token = callbackToken(SIGNING_SECRET, 'pay_1');
    const good = s.validateCallback({ paymentId: 'pay_1', token, body });
    expect(good.verified).toBe(true);
    expect(good.callback).toEqual({
      merchantRequestId: 'f1e2-4b95-a71d-b30d3cdbb7a7942864',
      checkoutRequestId: 'ws_CO_21072024125243250722943992',
      resultCode: '1032',
      resultDesc: 'Request cancelled by user',
      outcome: 'cancelled',
    });
    expect(s.validateCallback({ paymentId: 'pay_2', token, body }).verified).toBe(false);
    expect(s.validateCallback({ paymentId: 'pay_1', token: token.slice(1), body }).verified).toBe(false);
    expect(s.validateCallback({ paymentId: 'pay_1', body }).verified).toBe(false);
    expect(s.validateCallback({ token, body }).verified).toBe(false);
    expect(
      s.validateCallback({ paymentId: 'pay_1', token: callbackToken('other-secret', 'pay_1'), body }).verified,
    ).toBe(false);
  });

  it('validateCallback throws CallbackShapeError on a bad body even with a valid token', () => {
    const token = callbackToken(SIGNING_SECRET, 'pay_1');
    expect(() => svc().validateCallback({ paymentId: 'pay_1', token, body: { Body: {} } })).toThrow(CallbackShapeError);
  });

  it('formatPhoneNumber delegates to phone.ts', () => {
    expect(svc().formatPhoneNumber('+254 712 345 678')).toBe('254712345678');
    expect(() => svc().formatPhoneNumber('0812345678')).toThrow(InvalidPhoneNumberError);
  });

  it.each<[string, Record<string, unknown>]>([
    ['no secret', { callbackSigningSecret: '' }],
    ['bad timeout', { timeoutMs: 0 }],
    ['bad callback base', { callbackBaseUrl: 'pay.example.com/cb' }],
    ['no account', { defaultAccount: undefined }],
  ])('constructor refuses %s', (_label, patch) => {
    expect(() => makeService('http://127.0.0.1:9', patch as never)).toThrow(Error);
  });

  it('warns about callback URLs Safaricom rejects', () => {
    makeService('http://127.0.0.1:9', { callbackBaseUrl: 'https://shop.example.com/mpesa/callback' });
    expect(logs.lines.join('\n')).toMatch(/callbackBaseUrl contains words Safaricom rejects in callback URLs: mpesa/);
  });

  it('warns with the same forbidden words as the config check (exec included)', () => {
    makeService('http://127.0.0.1:9', { callbackBaseUrl: 'https://shop.example.com/exec/callback' });
    expect(logs.lines.join('\n')).toMatch(
      /callbackBaseUrl contains words Safaricom rejects in callback URLs: exe, exec$/m,
    );
  });

  it('is injectable through DARAJA_OPTIONS in a Nest module', async () => {
    const options = { ...makeServiceOptions(), callbackBaseUrl: 'https://pay.example.com/hooks/daraja/stk' };
    const moduleRef = await Test.createTestingModule({
      providers: [DarajaService, { provide: DARAJA_OPTIONS, useValue: options }],
    }).compile();
    const service = moduleRef.get(DarajaService);
    expect(service.callbackUrlFor('p1')).toBe(
      `https://pay.example.com/hooks/daraja/stk/p1/${callbackToken(SIGNING_SECRET, 'p1')}`,
    );
    await moduleRef.close();
  });
});

describe('DarajaService logging', () => {
  let fake: FakeDaraja;
  let logs: ReturnType<typeof captureLogs>;

  beforeEach(async () => {
    logs = captureLogs();
    fake = new FakeDaraja();
    fake.oauth = () => ({
      status: 200,
      body: { access_token: `SECRET_TOKEN_${fake.nextToken()}`, expires_in: '3599' },
    });
    await fake.start();
  });

  afterEach(async () => {
    logs.restore();
    await fake.close();
  });

  it('logs endpoint, status, duration and errorCode but never secrets or full phone numbers', async () => {
    fake.push = (req, nth) =>
      nth === 1
        ? darajaError(404, '404.001.03', 'Invalid Access Token')
        : nth === 2
          ? {
              status: 200,
              body: {
                MerchantRequestID: 'm',
                CheckoutRequestID: 'ws_CO_1',
                ResponseCode: '0',
                ResponseDescription: 'ok',
                CustomerMessage: 'ok',
              },
            }
          : darajaError(400, '400.002.02', 'Bad Request - Invalid PhoneNumber');
    fake.query = () => darajaError(500, '500.001.1001', 'The transaction is being processed');
    const svc = makeService(fake.baseUrl);
    await svc.initiateStkPush(validPush({ phoneNumber: '254712345678' }));
    await svc.initiateStkPush(validPush({ phoneNumber: '254712345678' })).catch(() => undefined);
    await svc.queryStkStatus('ws_CO_1');
    await svc.getAccessToken(makeAccount('http://127.0.0.1:1', { consumerKey: 'k2' })).catch(() => undefined);

    const text = logs.lines.join('\n');
    expect(text).toMatch(/POST \/mpesa\/stkpush\/v1\/processrequest -> HTTP 404 in \d+ms errorCode=404\.001\.03/);
    expect(text).toMatch(/POST \/mpesa\/stkpush\/v1\/processrequest -> HTTP 200 in \d+ms/);
    expect(text).toMatch(/errorCode=400\.002\.02/);
    expect(text).toMatch(/GET \/oauth\/v1\/generate -> HTTP 200 in \d+ms/);
    expect(text).toMatch(/POST \/mpesa\/stkpushquery\/v1\/query -> HTTP 500 in \d+ms errorCode=500\.001\.1001/);
    expect(text).toContain('2547******78');

    const pushed = fake.of(PUSH_PATH)[0].json;
    const forbidden = [
      CONSUMER_KEY,
      CONSUMER_SECRET,
      Buffer.from(`${CONSUMER_KEY}:${CONSUMER_SECRET}`).toString('base64'),
      SANDBOX_PASSKEY,
      pushed.Password,
      'SECRET_TOKEN',
      'Bearer',
      'Basic',
      '254712345678',
      '0712345678',
      '712345678',
      SIGNING_SECRET,
      validPush().callbackUrl,
    ];
    for (const s of forbidden) expect(text).not.toContain(s);
    expect(logs.lines.length).toBeGreaterThanOrEqual(6);
  });
});
