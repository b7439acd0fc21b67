import { ValidationFailedError } from '../../../common/errors';
import {
  captureLogs,
  deadBaseUrl,
  FakeProviderServer,
  FakeReply,
  RecordedRequest,
  rejectionOf,
} from '../fake-provider-server.testing';
import type { InitiateRequest } from '../payment-provider';
import { ProviderError } from '../provider-errors';
import { USER_AGENT } from '../provider-http';
import { mapPesapalStatus, PESAPAL_PATHS as P, PesapalProvider, pesapalIpnAck } from './pesapal.provider';
import type { PesapalConfig } from './pesapal.types';

const CONSUMER_KEY = 'qkio1BGGYAXTu2JOfm7XSXNruoZsrqEW';
const CONSUMER_SECRET = 'osGQ364R49cXKeOYSpaOnT++rHs=SECRET';
const IPN_ID = '1da86d1c-1e8c-4183-bdfd-dd759463e4ce';
const TRACKING = '96a5e1d9-f711-4423-82ce-dd758f972713';
const REF = 'NBI01-000123-A1';
const IPN_URL = 'https://pos.example.co.ke/webhooks/pesapal/ipn';
const REDIRECT = `https://cybqa.pesapal.com/pesapaliframe/PesapalIframe3/Index?OrderTrackingId=${TRACKING}`;

function makeProvider(baseUrl: string, patch: Partial<PesapalConfig> = {}): PesapalProvider {
  return new PesapalProvider({
    baseUrl,
    consumerKey: CONSUMER_KEY,
    consumerSecret: CONSUMER_SECRET,
    timeoutMs: 2000,
    ...patch,
  });
}

function initiateRequest(patch: Partial<InitiateRequest> = {}): InitiateRequest {
  return {
    paymentId: 'pay_01',
    reference: REF,
    amountMinor: 245000n,
    currency: 'KES',
    description: 'Duka POS receipt NBI01-000123',
    customer: { phoneNumber: '0712345678', firstName: 'Walk-in', lastName: 'Customer' },
    redirectUrl: 'https://pos.example.co.ke/payments/pesapal/return',
    notificationId: IPN_ID,
    ...patch,
  };
}

let issued = 0;
/** RequestToken answer as recorded in the sandbox (expiry one hour after issue unless told). */
function tokenReply(expiresInMs = 3_600_000, expiryDate?: string): FakeReply {
  issued += 1;
  return {
    status: 200,
    body: {
      token: `eyJhbGciOiJIUzI1NiJ9.eyJ0b2siOiIke2lzc3VlZH0ifQ.tok${issued}`,
      expiryDate: expiryDate ?? new Date(Date.now() + expiresInMs).toISOString().replace('Z', '0000Z'),
      error: null,
      status: '200',
      message: 'Request processed successfully',
    },
  };
}
const tokenOf = (req: RecordedRequest) => String(req.headers.authorization).replace(/^Bearer /, '');

const orderReply = (patch: Record<string, unknown> = {}): FakeReply => ({
  status: 200,
  body: {
    order_tracking_id: TRACKING,
    merchant_reference: REF,
    redirect_url: REDIRECT,
    error: null,
    status: '200',
    ...patch,
  },
});

function completedStatus(patch: Record<string, unknown> = {}) {
  return {
    payment_method: 'Visa',
    amount: 2450.0,
    created_date: '2026-10-02T12:14:22.75',
    confirmation_code: '6513008693186320103009',
    order_tracking_id: TRACKING,
    payment_status_description: 'Completed',
    description: null,
    message: 'Request processed successfully',
    payment_account: '476173**0010',
    call_back_url: `https://pos.example.co.ke/payments/pesapal/return?OrderTrackingId=${TRACKING}&OrderMerchantReference=${REF}`,
    status_code: 1,
    merchant_reference: REF,
    payment_status_code: '',
    currency: 'KES',
    error: { error_type: null, code: null, message: null, call_back_url: null },
    status: '200',
    ...patch,
  };
}

/** The recorded "not yet paid" answer: HTTP 200, status "500", error payment_details_not_found. */
function pendingStatus(patch: Record<string, unknown> = {}) {
  return {
    payment_method: '',
    amount: 10.0,
    created_date: '2024-03-18T18:25:46.75',
    confirmation_code: '',
    order_tracking_id: TRACKING,
    payment_status_description: 'INVALID',
    description: null,
    message: 'Request processed successfully',
    payment_account: '',
    call_back_url: 'http://localhost/?OrderTrackingId=x',
    status_code: 0,
    merchant_reference: REF,
    payment_status_code: '',
    currency: 'KES',
    error: {
      error_type: 'api_error',
      code: 'payment_details_not_found',
      message: 'Pending Payment',
      call_back_url: 'http://localhost/',
    },
    status: '500',
    ...patch,
  };
}

describe('PesapalProvider', () => {
  let fake: FakeProviderServer;
  let logs: ReturnType<typeof captureLogs>;

  beforeEach(async () => {
    logs = captureLogs();
    issued = 0;
    fake = new FakeProviderServer();
    fake.on('POST', P.token, () => tokenReply());
    fake.on('GET', P.status, () => ({ status: 200, body: completedStatus() }));
    fake.on('POST', P.submitOrder, () => orderReply());
    await fake.start();
  });

  afterEach(async () => {
    jest.restoreAllMocks();
    logs.restore();
    await fake.close();
  });

  const status = (p: PesapalProvider) => p.fetchStatus({ reference: REF, providerRef: TRACKING });

  it('declares its capabilities', () => {
    expect(makeProvider(fake.baseUrl).capabilities).toEqual({
      currencies: ['KES'],
      fractionalAmounts: false,
      refunds: 'partial',
      notification: 'ipn',
      hostedCheckout: true,
    });
  });

  it('refuses incomplete configuration at construction', () => {
    expect(() => makeProvider('ftp://x')).toThrow('baseUrl');
    expect(() => makeProvider(fake.baseUrl, { consumerKey: '' })).toThrow('consumerKey');
    expect(() => makeProvider(fake.baseUrl, { consumerSecret: '' })).toThrow('consumerSecret');
    expect(() => makeProvider(fake.baseUrl, { timeoutMs: -1 })).toThrow('timeoutMs');
    expect(() => makeProvider(fake.baseUrl, { ipnNotificationType: 'PUT' as 'GET' })).toThrow('ipnNotificationType');
  });

  // -------------------------------------------------------------------------------------
  describe('token (POST /api/Auth/RequestToken)', () => {
    it('asks with the JSON body only (no Basic header) and sends the token as Bearer', async () => {
      await status(makeProvider(fake.baseUrl));
      const [tok] = fake.of('POST', P.token);
      expect(tok.json).toEqual({ consumer_key: CONSUMER_KEY, consumer_secret: CONSUMER_SECRET });
      expect(tok.headers.authorization).toBeUndefined();
      expect(tok.headers['content-type']).toBe('application/json');
      expect(tok.headers.accept).toBe('application/json');
      expect(tok.headers['user-agent']).toBe(USER_AGENT);
      const [st] = fake.of('GET', P.status);
      expect(st.headers.authorization).toMatch(/^Bearer eyJ.+tok1$/);
    });

    it('reuses the cached token', async () => {
      const p = makeProvider(fake.baseUrl);
      await status(p);
      await status(p);
      await p.fetchStatus({ reference: REF, providerRef: TRACKING });
      expect(fake.count('POST', P.token)).toBe(1);
      expect(new Set(fake.of('GET', P.status).map(tokenOf)).size).toBe(1);
    });

    it('single-flight: N concurrent callers cause one token request', async () => {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      fake.on('POST', P.token, async () => {
        await gate;
        return tokenReply();
      });
      const p = makeProvider(fake.baseUrl);
      // All six start before the token request is answered.
      const calls = Array.from({ length: 6 }, () => status(p));
      release();
      const results = await Promise.all(calls);
      expect(results.every((r) => r.status === 'completed')).toBe(true);
      expect(fake.count('POST', P.token)).toBe(1);
      expect(fake.count('GET', P.status)).toBe(6);
      expect(new Set(fake.of('GET', P.status).map(tokenOf)).size).toBe(1);
    });

    it('keeps a 1-hour token for at most 4 minutes', async () => {
      const t0 = 1_790_000_000_000;
      const now = jest.spyOn(Date, 'now').mockReturnValue(t0);
      const p = makeProvider(fake.baseUrl);
      const first = await p.getAccessToken();
      now.mockReturnValue(t0 + 239_999);
      expect(await p.getAccessToken()).toBe(first);
      now.mockReturnValue(t0 + 240_000);
      const second = await p.getAccessToken();
      expect(second).not.toBe(first);
      expect(fake.count('POST', P.token)).toBe(2);
    });

    it('stops using a token 60 s before its expiryDate', async () => {
      const t0 = 1_790_000_000_000;
      const now = jest.spyOn(Date, 'now').mockReturnValue(t0);
      fake.on('POST', P.token, () => tokenReply(90_000));
      const p = makeProvider(fake.baseUrl);
      const first = await p.getAccessToken();
      now.mockReturnValue(t0 + 29_999);
      expect(await p.getAccessToken()).toBe(first);
      now.mockReturnValue(t0 + 30_000);
      expect(await p.getAccessToken()).not.toBe(first);
    });

    it('reads a zone-less expiryDate as UTC', async () => {
      const t0 = Date.parse('2026-10-02T09:00:00Z');
      const now = jest.spyOn(Date, 'now').mockReturnValue(t0);
      fake.on('POST', P.token, () => tokenReply(0, '2026-10-02T09:02:00.5177702'));
      const p = makeProvider(fake.baseUrl);
      const first = await p.getAccessToken();
      // expiry − issue = 120.517 s (not 120.517 s − 3 h as a local-time reading would give); minus the 60 s margin.
      now.mockReturnValue(t0 + 60_516);
      expect(await p.getAccessToken()).toBe(first);
      now.mockReturnValue(t0 + 60_517);
      expect(await p.getAccessToken()).not.toBe(first);
    });

    it('does not cache a token that is already expired by our clock, nor one without a readable expiry beyond 4 min', async () => {
      const t0 = 1_790_000_000_000;
      const now = jest.spyOn(Date, 'now').mockReturnValue(t0);
      fake.on('POST', P.token, (_r, nth) => (nth <= 2 ? tokenReply(-5_000) : tokenReply(0, 'soon')));
      const p = makeProvider(fake.baseUrl);
      const a = await p.getAccessToken();
      const b = await p.getAccessToken();
      expect(a).not.toBe(b);
      const c = await p.getAccessToken(); // unreadable expiry → 4 minutes
      now.mockReturnValue(t0 + 239_999);
      expect(await p.getAccessToken()).toBe(c);
      expect(fake.count('POST', P.token)).toBe(3);
    });

    it('does not cache a failure', async () => {
      fake.on('POST', P.token, (_r, nth) => (nth === 1 ? { status: 500, body: '<html>oops</html>' } : tokenReply()));
      const p = makeProvider(fake.baseUrl);
      const err = await rejectionOf(status(p));
      expect(err.code).toBe('PROVIDER_UNAVAILABLE');
      expect((await status(p)).status).toBe('completed');
      expect(fake.count('POST', P.token)).toBe(2);
    });

    it('HTTP 200 with an error object → auth error, and the secret is never echoed', async () => {
      fake.on('POST', P.token, (req) => ({
        status: 200,
        body: {
          token: null,
          expiryDate: null,
          error: {
            error_type: 'api_error',
            code: 'invalid_consumer_key_or_secret_provided',
            message: `Invalid consumer_secret ${req.json.consumer_secret}`,
            call_back_url: null,
          },
          status: '500',
          message: null,
        },
      }));
      const err = await rejectionOf(status(makeProvider(fake.baseUrl)));
      expect(err).toBeInstanceOf(ProviderError);
      expect(err.code).toBe('PROVIDER_AUTH_FAILED');
      expect(err.outcome).toBe('not_processed');
      expect(err.providerCode).toBe('invalid_consumer_key_or_secret_provided');
      expect(err.message).toBe(
        'Pesapal refused the consumer key/secret: Invalid consumer_secret *** (check the credentials and that they belong to this environment)',
      );
      const everything = [err.message, JSON.stringify(err.details), ...logs.lines].join('\n');
      expect(everything).not.toContain(CONSUMER_SECRET);
      expect(fake.count('GET', P.status)).toBe(0);
    });

    it('HTTP 200 with status "500" and no error object → auth error', async () => {
      fake.on('POST', P.token, () => ({
        status: 200,
        body: { token: null, error: null, status: '500', message: 'Bad credentials' },
      }));
      const err = await rejectionOf(status(makeProvider(fake.baseUrl)));
      expect(err.code).toBe('PROVIDER_AUTH_FAILED');
      expect(err.message).toContain('Bad credentials');
    });

    it('HTTP 400 from RequestToken → auth error', async () => {
      fake.on('POST', P.token, () => ({ status: 400, body: '' }));
      expect((await rejectionOf(status(makeProvider(fake.baseUrl)))).code).toBe('PROVIDER_AUTH_FAILED');
    });

    it('a token rejected by Pesapal (401) is dropped and the call repeated once with a fresh one', async () => {
      fake.on('GET', P.status, (_r, nth) =>
        nth === 1 ? { status: 401, body: '' } : { status: 200, body: completedStatus() },
      );
      const p = makeProvider(fake.baseUrl);
      expect((await status(p)).status).toBe('completed');
      const calls = fake.of('GET', P.status);
      expect(calls).toHaveLength(2);
      expect(tokenOf(calls[0])).toMatch(/tok1$/);
      expect(tokenOf(calls[1])).toMatch(/tok2$/);
    });

    it('a token rejected twice → auth error, no third attempt', async () => {
      fake.on('GET', P.status, () => ({ status: 401, body: '' }));
      const err = await rejectionOf(status(makeProvider(fake.baseUrl)));
      expect(err.code).toBe('PROVIDER_AUTH_FAILED');
      expect(err.message).toBe('Pesapal rejected a freshly issued access token for the status check');
      expect(fake.count('GET', P.status)).toBe(2);
      expect(fake.count('POST', P.token)).toBe(2);
    });
  });

  // -------------------------------------------------------------------------------------
  describe('ensureIpn (GetIpnList / RegisterIPN)', () => {
    const listed = (items: unknown[]): FakeReply => ({ status: 200, body: items });
    const registered = (type: 'GET' | 'POST' = 'POST'): FakeReply => ({
      status: 200,
      body: {
        id: 4278,
        url: IPN_URL,
        created_date: '2024-03-18T15:25:46.2652354Z',
        ipn_id: 'new-ipn-0001',
        notification_type: type === 'GET' ? 0 : 1,
        ipn_notification_type_description: type,
        ipn_status: 1,
        ipn_status_decription: 'Active',
        error: null,
        status: '200',
      },
    });

    it('reuses an existing registration for the same URL', async () => {
      fake.on('GET', P.ipnList, () =>
        listed([
          {
            url: 'https://other.example.com/ipn',
            created_date: '2024-01-01T00:00:00Z',
            ipn_id: 'other',
            error: null,
            status: '200',
          },
          { url: IPN_URL, created_date: '2024-03-18T15:25:46Z', ipn_id: IPN_ID, error: null, status: '200' },
        ]),
      );
      const ipn = await makeProvider(fake.baseUrl).ensureIpn(IPN_URL, 'POST');
      expect(ipn).toEqual({ ipnId: IPN_ID, url: IPN_URL, created: false });
      expect(fake.count('POST', P.registerIpn)).toBe(0);
      expect(fake.of('GET', P.ipnList)[0].headers.authorization).toMatch(/^Bearer /);
    });

    it('prefers a registration with the same notification type', async () => {
      fake.on('GET', P.ipnList, () =>
        listed([
          {
            url: IPN_URL,
            ipn_id: 'get-one',
            notification_type: 0,
            ipn_notification_type_description: 'GET',
            error: null,
            status: '200',
          },
          {
            url: IPN_URL,
            ipn_id: 'post-one',
            notification_type: 1,
            ipn_notification_type_description: 'POST',
            error: null,
            status: '200',
          },
        ]),
      );
      expect(await makeProvider(fake.baseUrl).ensureIpn(IPN_URL, 'POST')).toEqual({
        ipnId: 'post-one',
        url: IPN_URL,
        notificationType: 'POST',
        created: false,
      });
      expect(await makeProvider(fake.baseUrl).ensureIpn(IPN_URL, 'GET')).toEqual({
        ipnId: 'get-one',
        url: IPN_URL,
        notificationType: 'GET',
        created: false,
      });
    });

    it('registers the URL when it is not listed (empty list), then caches the id', async () => {
      fake.on('GET', P.ipnList, () => listed([]));
      fake.on('POST', P.registerIpn, () => registered('POST'));
      const p = makeProvider(fake.baseUrl);
      expect(await p.ensureIpn(IPN_URL)).toEqual({
        ipnId: 'new-ipn-0001',
        url: IPN_URL,
        notificationType: 'POST',
        created: true,
      });
      const [reg] = fake.of('POST', P.registerIpn);
      expect(reg.json).toEqual({ url: IPN_URL, ipn_notification_type: 'POST' });
      expect(reg.headers.authorization).toMatch(/^Bearer /);
      expect(await p.ensureIpn(IPN_URL)).toEqual({
        ipnId: 'new-ipn-0001',
        url: IPN_URL,
        notificationType: 'POST',
        created: false,
      });
      expect(fake.count('GET', P.ipnList)).toBe(1);
      expect(fake.count('POST', P.registerIpn)).toBe(1);
    });

    it('registers with the configured type (GET)', async () => {
      fake.on('GET', P.ipnList, () => listed([]));
      fake.on('POST', P.registerIpn, () => registered('GET'));
      await makeProvider(fake.baseUrl, { ipnNotificationType: 'GET' }).ensureIpn(IPN_URL);
      expect(fake.of('POST', P.registerIpn)[0].json.ipn_notification_type).toBe('GET');
    });

    it('concurrent callers share one lookup and one registration', async () => {
      fake.on('GET', P.ipnList, () => listed([]));
      fake.on('POST', P.registerIpn, () => registered());
      const p = makeProvider(fake.baseUrl);
      const ids = await Promise.all([p.ensureIpn(IPN_URL), p.ensureIpn(IPN_URL), p.ensureIpn(IPN_URL)]);
      expect(ids.map((i) => i.ipnId)).toEqual(['new-ipn-0001', 'new-ipn-0001', 'new-ipn-0001']);
      expect(fake.count('GET', P.ipnList)).toBe(1);
      expect(fake.count('POST', P.registerIpn)).toBe(1);
      expect(fake.count('POST', P.token)).toBe(1);
    });

    it('an error answer (HTTP 200 + error) from either call is a ProviderError and is not cached', async () => {
      fake.on('GET', P.ipnList, () => listed([]));
      fake.on('POST', P.registerIpn, (_r, nth) =>
        nth === 1
          ? {
              status: 200,
              body: {
                error: { error_type: 'invalid_request_error', code: 'invalid_ipn_url', message: 'Invalid URL' },
                status: '500',
              },
            }
          : registered(),
      );
      const p = makeProvider(fake.baseUrl);
      const err = await rejectionOf(p.ensureIpn(IPN_URL));
      expect(err).toBeInstanceOf(ProviderError);
      expect(err.code).toBe('PROVIDER_REJECTED');
      expect(err.providerCode).toBe('invalid_ipn_url');
      expect(err.message).toBe('Pesapal rejected the IPN registration: Invalid URL');
      expect((await p.ensureIpn(IPN_URL)).ipnId).toBe('new-ipn-0001');

      fake.on('GET', P.ipnList, () => ({
        status: 200,
        body: { error: { error_type: 'api_error', code: 'x', message: 'list failed' }, status: '500' },
      }));
      expect((await rejectionOf(makeProvider(fake.baseUrl).ensureIpn(IPN_URL))).code).toBe('PROVIDER_REJECTED');
    });

    it('refuses a non-URL', async () => {
      expect(await rejectionOf(makeProvider(fake.baseUrl).ensureIpn('localhost/ipn'))).toBeInstanceOf(
        ValidationFailedError,
      );
      expect(fake.requests).toHaveLength(0);
    });
  });

  // -------------------------------------------------------------------------------------
  describe('initiate (SubmitOrderRequest)', () => {
    it('sends the documented order and returns the tracking id and payment page', async () => {
      const result = await makeProvider(fake.baseUrl).initiate(initiateRequest());
      expect(result).toEqual({ providerRef: TRACKING, redirectUrl: REDIRECT, raw: orderReply().body });
      const [req] = fake.of('POST', P.submitOrder);
      expect(req.headers.authorization).toMatch(/^Bearer eyJ/);
      expect(req.headers['content-type']).toBe('application/json');
      expect(req.json).toEqual({
        id: REF,
        currency: 'KES',
        amount: 2450,
        description: 'Duka POS receipt NBI01-000123',
        callback_url: 'https://pos.example.co.ke/payments/pesapal/return',
        notification_id: IPN_ID,
        billing_address: {
          email_address: '',
          phone_number: '0712345678',
          country_code: 'KE',
          first_name: 'Walk-in',
          middle_name: '',
          last_name: 'Customer',
          line_1: '',
          line_2: '',
          city: '',
          state: '',
          postal_code: '',
          zip_code: '',
        },
      });
      expect(req.rawBody).toContain('"currency":"KES"');
    });

    it('sends cents exactly when enabled; refuses them by default', async () => {
      await makeProvider(fake.baseUrl, { allowFractionalAmounts: true }).initiate(
        initiateRequest({ amountMinor: 150050n }),
      );
      expect(fake.of('POST', P.submitOrder)[0].rawBody).toContain('"amount":1500.5,');
      const err = await rejectionOf(makeProvider(fake.baseUrl).initiate(initiateRequest({ amountMinor: 150050n })));
      expect(err).toBeInstanceOf(ValidationFailedError);
      expect(err.message).toBe('Pesapal only accepts whole KES amounts (no cents)');
    });

    it('cuts the description to 100 characters, defaults an empty one, splits a full name', async () => {
      const p = makeProvider(fake.baseUrl);
      await p.initiate(
        initiateRequest({ description: 'x'.repeat(150), customer: { email: 'a@b.co', name: 'Achieng Mary Otieno' } }),
      );
      await p.initiate(initiateRequest({ description: '  ' }));
      const [a, b] = fake.of('POST', P.submitOrder);
      expect(a.json.description).toBe('x'.repeat(100));
      expect(a.json.billing_address).toMatchObject({
        email_address: 'a@b.co',
        phone_number: '',
        first_name: 'Achieng',
        last_name: 'Mary Otieno',
      });
      expect(b.json.description).toBe(`Payment ${REF}`);
    });

    it('finds or registers the IPN from notificationUrl when no notificationId is given', async () => {
      fake.on('GET', P.ipnList, () => ({
        status: 200,
        body: [{ url: IPN_URL, ipn_id: 'listed-ipn', error: null, status: '200' }],
      }));
      await makeProvider(fake.baseUrl).initiate(
        initiateRequest({ notificationId: undefined, notificationUrl: IPN_URL }),
      );
      expect(fake.of('POST', P.submitOrder)[0].json.notification_id).toBe('listed-ipn');
    });

    it.each<[string, Partial<InitiateRequest>, string]>([
      ['no IPN at all', { notificationId: undefined }, 'Pesapal needs an IPN'],
      [
        'a reference with a dot',
        { reference: 'NBI01.000123' },
        'reference may only contain letters, digits, "-" and "_"',
      ],
      ['a reference over 50 characters', { reference: 'R'.repeat(51) }, 'reference must be at most 50 characters'],
      [
        'neither email nor phone',
        { customer: { name: 'X' } },
        'Pesapal needs the customer email address or phone number',
      ],
      ['a bad notification id', { notificationId: 'not a guid!' }, 'notificationId must be the IPN id'],
      ['a currency not enabled', { currency: 'UGX' }, 'Pesapal payments are not available in UGX; use KES'],
      ['a negative amount', { amountMinor: -100n }, 'amount must be greater than zero'],
    ])('rejects %s with a 400 before calling Pesapal', async (_label, patch, message) => {
      const err = await rejectionOf(makeProvider(fake.baseUrl).initiate(initiateRequest(patch)));
      expect(err).toBeInstanceOf(ValidationFailedError);
      expect(err.message).toContain(message);
      expect(fake.requests).toHaveLength(0);
    });

    it.each<[string, FakeReply, { code: string; outcome: string; message: string; providerCode?: string }]>([
      [
        'HTTP 200 + error invalid_api_request_parameters',
        {
          status: 200,
          body: {
            error: {
              error_type: 'invalid_request_error',
              code: 'invalid_api_request_parameters',
              message: 'Invalid IPN URL ID provided.Check format and try again',
            },
            status: '500',
          },
        },
        {
          code: 'PROVIDER_REJECTED',
          outcome: 'not_processed',
          providerCode: 'invalid_api_request_parameters',
          message: 'Pesapal rejected the payment request: Invalid IPN URL ID provided.Check format and try again',
        },
      ],
      [
        'HTTP 200 + error missing_mandatory_billing_address (documented `type` key)',
        {
          status: 200,
          body: {
            order_tracking_id: null,
            error: {
              type: 'invalid_request_error',
              code: 'missing_mandatory_billing_address',
              message: 'Billing address is required',
            },
            status: '500',
          },
        },
        {
          code: 'PROVIDER_REJECTED',
          outcome: 'not_processed',
          providerCode: 'missing_mandatory_billing_address',
          message: 'Billing address is required',
        },
      ],
      [
        'HTTP 200 + status "500" without an error object',
        { status: 200, body: { status: '500', message: 'Currency not enabled' } },
        {
          code: 'PROVIDER_REJECTED',
          outcome: 'not_processed',
          message: 'Pesapal rejected the payment request: Currency not enabled',
        },
      ],
      [
        'a Cloudflare HTML 403',
        { status: 403, body: '<!DOCTYPE html><title>Attention Required! | Cloudflare</title>' },
        {
          code: 'PROVIDER_UNREACHABLE',
          outcome: 'not_processed',
          message: "Pesapal's firewall blocked the payment request (HTTP 403)",
        },
      ],
      [
        'HTTP 429',
        { status: 429, body: '' },
        { code: 'PROVIDER_RATE_LIMITED', outcome: 'not_processed', message: 'Pesapal is limiting requests' },
      ],
      [
        'a Cloudflare HTML 502',
        { status: 502, body: '<html>Bad gateway</html>' },
        {
          code: 'PROVIDER_UNAVAILABLE',
          outcome: 'unknown',
          message: 'Pesapal failed while handling the payment request (HTTP 502); outcome unknown',
        },
      ],
      [
        'success naming another order',
        orderReply({ merchant_reference: 'OTHER-REF' }),
        { code: 'PROVIDER_BAD_RESPONSE', outcome: 'unknown', message: 'names another order' },
      ],
      [
        'success without a tracking id',
        orderReply({ order_tracking_id: '' }),
        { code: 'PROVIDER_BAD_RESPONSE', outcome: 'unknown', message: 'incomplete' },
      ],
      [
        'success without a payment page',
        orderReply({ redirect_url: null }),
        { code: 'PROVIDER_BAD_RESPONSE', outcome: 'unknown', message: 'incomplete' },
      ],
    ])('maps %s', async (_label, reply, expected) => {
      fake.on('POST', P.submitOrder, () => reply);
      const err = await rejectionOf(makeProvider(fake.baseUrl).initiate(initiateRequest()));
      expect(err).toBeInstanceOf(ProviderError);
      expect(err.provider).toBe('pesapal');
      expect(err.code).toBe(expected.code);
      expect(err.outcome).toBe(expected.outcome);
      expect(err.message).toContain(expected.message);
      if (expected.providerCode) expect(err.providerCode).toBe(expected.providerCode);
      expect(fake.count('POST', P.submitOrder)).toBe(1);
    });

    it('a submit timeout is outcome unknown (504) and is not retried', async () => {
      fake.on('POST', P.submitOrder, () => 'hang');
      const err = await rejectionOf(makeProvider(fake.baseUrl, { timeoutMs: 200 }).initiate(initiateRequest()));
      expect([err.code, err.statusCode, err.outcome]).toEqual(['PROVIDER_TIMEOUT', 504, 'unknown']);
      expect(fake.count('POST', P.submitOrder)).toBe(1);
    });

    it('a token timeout means the order was never sent: not_processed', async () => {
      fake.on('POST', P.token, () => 'hang');
      const err = await rejectionOf(makeProvider(fake.baseUrl, { timeoutMs: 200 }).initiate(initiateRequest()));
      expect(err).toBeInstanceOf(ProviderError);
      expect([err.code, err.statusCode, err.outcome]).toEqual(['PROVIDER_TIMEOUT', 504, 'not_processed']);
      expect(err.message).toBe(
        'No answer from Pesapal within 200ms to the token request; outcome unknown; the payment request was not sent',
      );
      expect(fake.count('POST', P.submitOrder)).toBe(0);
    });

    it('an IPN lookup failure means the order was never sent: not_processed', async () => {
      fake.on('GET', P.ipnList, () => ({ status: 500, body: 'boom' }));
      const err = await rejectionOf(
        makeProvider(fake.baseUrl).initiate(initiateRequest({ notificationId: undefined, notificationUrl: IPN_URL })),
      );
      expect([err.code, err.outcome]).toEqual(['PROVIDER_UNAVAILABLE', 'not_processed']);
      expect(fake.count('POST', P.submitOrder)).toBe(0);
    });

    it('connection refused → not_processed', async () => {
      const err = await rejectionOf(makeProvider(await deadBaseUrl()).initiate(initiateRequest()));
      expect([err.code, err.statusCode, err.outcome]).toEqual(['PROVIDER_UNREACHABLE', 503, 'not_processed']);
    });

    it('a rejected token is refreshed once and the order submitted again (Pesapal refused it before processing)', async () => {
      fake.on('POST', P.submitOrder, (_r, nth) => (nth === 1 ? { status: 401, body: '' } : orderReply()));
      expect((await makeProvider(fake.baseUrl).initiate(initiateRequest())).providerRef).toBe(TRACKING);
      expect(fake.count('POST', P.submitOrder)).toBe(2);
    });

    it('never logs or returns credentials, tokens or phone numbers', async () => {
      fake.on('POST', P.submitOrder, (req) => ({
        status: 200,
        body: {
          error: {
            error_type: 'api_error',
            code: 'bad',
            message: `token ${tokenOf(req)} key ${CONSUMER_KEY} rejected`,
          },
          status: '500',
        },
      }));
      const err = await rejectionOf(makeProvider(fake.baseUrl).initiate(initiateRequest()));
      const everything = [err.message, JSON.stringify(err.details), ...logs.lines].join('\n');
      expect(err.message).toBe('Pesapal rejected the payment request: token *** key *** rejected');
      expect(everything).not.toContain(CONSUMER_KEY);
      expect(everything).not.toContain(CONSUMER_SECRET);
      expect(everything).not.toMatch(/eyJ/);
      expect(everything).not.toContain('0712345678');
    });
  });

  // -------------------------------------------------------------------------------------
  describe('fetchStatus (GetTransactionStatus)', () => {
    it('GETs with orderTrackingId as a query parameter and parses a completed payment exactly', async () => {
      const result = await status(makeProvider(fake.baseUrl));
      expect(result).toEqual({
        status: 'completed',
        providerRef: TRACKING,
        reference: REF,
        amountMinor: 245000n,
        currency: 'KES',
        receipt: '6513008693186320103009',
        paymentMethod: 'Visa',
        description: 'Completed',
        raw: completedStatus(),
      });
      const [req] = fake.of('GET', P.status);
      expect(req.url).toBe(`${P.status}?orderTrackingId=${TRACKING}`);
      expect(req.rawBody).toBe('');
    });

    it('the recorded "not paid yet" answer (HTTP 200, status "500", payment_details_not_found) is pending', async () => {
      fake.on('GET', P.status, () => ({ status: 200, body: pendingStatus() }));
      expect(await status(makeProvider(fake.baseUrl))).toEqual({
        status: 'pending',
        providerRef: TRACKING,
        reference: REF,
        amountMinor: 1000n,
        currency: 'KES',
        description: 'INVALID',
        raw: pendingStatus(),
      });
    });

    it.each<[Record<string, unknown>, string]>([
      [{ status_code: 0, payment_status_description: 'INVALID' }, 'pending'],
      [{ status_code: 2, payment_status_description: 'FAILED', description: 'Insufficient funds' }, 'failed'],
      [{ status_code: 3, payment_status_description: 'REVERSED' }, 'reversed'],
      [{ status_code: '1', payment_status_description: 'COMPLETED' }, 'completed'],
      [{ status_code: undefined, payment_status_description: 'completed' }, 'completed'],
      [{ status_code: undefined, payment_status_description: 'Reversed' }, 'reversed'],
      [{ status_code: 7, payment_status_description: 'NEW' }, 'unknown'],
    ])('maps %p → %s', async (patch, expected) => {
      fake.on('GET', P.status, () => ({ status: 200, body: completedStatus(patch) }));
      expect((await status(makeProvider(fake.baseUrl))).status).toBe(expected);
    });

    it('keeps the decline text as the description', async () => {
      fake.on('GET', P.status, () => ({
        status: 200,
        body: completedStatus({
          status_code: 2,
          payment_status_description: 'FAILED',
          description: 'Insufficient funds',
        }),
      }));
      expect((await status(makeProvider(fake.baseUrl))).description).toBe('Insufficient funds');
    });

    it('parses amounts exactly (1500.5 → 150050n; 3 decimals → undefined)', async () => {
      fake.on('GET', P.status, (_r, nth) => ({
        status: 200,
        body: completedStatus({ amount: nth === 1 ? 1500.5 : 1500.555 }),
      }));
      const p = makeProvider(fake.baseUrl);
      expect((await status(p)).amountMinor).toBe(150050n);
      expect((await status(p)).amountMinor).toBeUndefined();
    });

    it('mapPesapalStatus returns undefined when there is nothing to map', () => {
      expect(mapPesapalStatus(undefined, undefined)).toBeUndefined();
      expect(mapPesapalStatus(null, '')).toBeUndefined();
    });

    it('other errors in an HTTP 200 are ProviderErrors', async () => {
      fake.on('GET', P.status, () => ({
        status: 200,
        body: {
          error: {
            error_type: 'invalid_request_error',
            code: 'invalid_order_tracking_id',
            message: 'Order tracking id not found',
            call_back_url: null,
          },
          status: '500',
        },
      }));
      const err = await rejectionOf(status(makeProvider(fake.baseUrl)));
      expect([err.code, err.providerCode]).toEqual(['PROVIDER_REJECTED', 'invalid_order_tracking_id']);
      expect(err.message).toBe('Pesapal rejected the status check: Order tracking id not found');
    });

    it('"Pending Payment" with a non-zero status_code contradicts itself: bad response', async () => {
      fake.on('GET', P.status, () => ({ status: 200, body: pendingStatus({ status_code: 1 }) }));
      expect((await rejectionOf(status(makeProvider(fake.baseUrl)))).code).toBe('PROVIDER_BAD_RESPONSE');
    });

    it('an answer without any status is a bad response', async () => {
      fake.on('GET', P.status, () => ({
        status: 200,
        body: completedStatus({ status_code: undefined, payment_status_description: undefined }),
      }));
      expect((await rejectionOf(status(makeProvider(fake.baseUrl)))).code).toBe('PROVIDER_BAD_RESPONSE');
    });

    it('refuses an answer about another merchant reference or tracking id', async () => {
      fake.on('GET', P.status, (_r, nth) => ({
        status: 200,
        body:
          nth === 1
            ? completedStatus({ merchant_reference: 'SOMEONE-ELSE' })
            : completedStatus({ order_tracking_id: 'ffffffff-f711-4423-82ce-dd758f972713' }),
      }));
      const p = makeProvider(fake.baseUrl);
      expect((await rejectionOf(status(p))).code).toBe('PROVIDER_REFERENCE_MISMATCH');
      expect((await rejectionOf(status(p))).code).toBe('PROVIDER_REFERENCE_MISMATCH');
    });

    it('needs the order tracking id: 409 without calling Pesapal', async () => {
      const err = await rejectionOf(makeProvider(fake.baseUrl).fetchStatus({ reference: REF }));
      expect(err).toBeInstanceOf(ProviderError);
      expect([err.code, err.statusCode]).toEqual(['PROVIDER_REFERENCE_REQUIRED', 409]);
      expect(fake.requests).toHaveLength(0);
      expect(
        await rejectionOf(makeProvider(fake.baseUrl).fetchStatus({ reference: REF, providerRef: '../x?y=1' })),
      ).toBeInstanceOf(ValidationFailedError);
    });

    it('a status timeout is a ProviderError with outcome unknown', async () => {
      fake.on('GET', P.status, () => 'hang');
      const err = await rejectionOf(status(makeProvider(fake.baseUrl, { timeoutMs: 200 })));
      expect([err.code, err.outcome]).toEqual(['PROVIDER_TIMEOUT', 'unknown']);
    });
  });

  // -------------------------------------------------------------------------------------
  describe('refund (RefundRequest)', () => {
    const refundReq = {
      providerRef: TRACKING,
      reference: REF,
      amountMinor: 100000n,
      currency: 'KES',
      reason: 'Damaged goods returned',
    };

    it('sends the confirmation code, the amount as a fixed-decimal string, username and remarks', async () => {
      fake.on('POST', P.refund, () => ({
        status: 200,
        body: { status: '200', message: 'Refund request successfully' },
      }));
      const result = await makeProvider(fake.baseUrl).refund({
        ...refundReq,
        receipt: '6513008693186320103009',
        initiatedBy: 'mary.w',
      });
      expect(result).toEqual({ status: 'accepted', raw: { status: '200', message: 'Refund request successfully' } });
      const [req] = fake.of('POST', P.refund);
      expect(req.json).toEqual({
        confirmation_code: '6513008693186320103009',
        amount: '1000.00',
        username: 'mary.w',
        remarks: 'Damaged goods returned',
      });
      expect(req.headers.authorization).toMatch(/^Bearer /);
      expect(fake.count('GET', P.status)).toBe(0);
    });

    it('reads the confirmation code from GetTransactionStatus when not given', async () => {
      fake.on('POST', P.refund, () => ({
        status: 200,
        body: { status: '200', message: 'Refund request successfully' },
      }));
      expect((await makeProvider(fake.baseUrl).refund(refundReq)).status).toBe('accepted');
      expect(fake.count('GET', P.status)).toBe(1);
      expect(fake.of('POST', P.refund)[0].json).toMatchObject({
        confirmation_code: '6513008693186320103009',
        username: 'smartduka-pos',
      });
    });

    it('does not ask Pesapal to refund a payment that is not completed', async () => {
      fake.on('GET', P.status, () => ({ status: 200, body: pendingStatus() }));
      const result = await makeProvider(fake.baseUrl).refund(refundReq);
      expect(result).toEqual({
        status: 'rejected',
        message: 'Pesapal only refunds completed payments; this payment is pending and has no confirmation code',
        raw: pendingStatus(),
      });
      expect(fake.count('POST', P.refund)).toBe(0);
    });

    it.each<[string, unknown, string]>([
      [
        'status "500"',
        { status: '500', message: 'Refund amount exceeds the paid amount' },
        'Refund amount exceeds the paid amount',
      ],
      [
        'the documented integer `error` key',
        { error: 500, message: 'Only one refund is allowed per payment' },
        'Only one refund is allowed per payment',
      ],
      [
        'an error object',
        {
          error: { error_type: 'api_error', code: 'refund_failed', message: 'Mobile money refunds must be full' },
          status: '500',
        },
        'Mobile money refunds must be full',
      ],
    ])('a refusal in %s → rejected with the message', async (_label, body, message) => {
      fake.on('POST', P.refund, () => ({ status: 200, body }));
      await expect(makeProvider(fake.baseUrl).refund({ ...refundReq, receipt: 'ABC123' })).resolves.toEqual({
        status: 'rejected',
        message,
        raw: body,
      });
    });

    it('accepts the documented integer `error: 200` form', async () => {
      fake.on('POST', P.refund, () => ({ status: 200, body: { error: 200, message: 'Refund request successfully' } }));
      expect((await makeProvider(fake.baseUrl).refund({ ...refundReq, receipt: 'ABC123' })).status).toBe('accepted');
    });

    it('a refund timeout is outcome unknown; a status-lookup timeout before it is not_processed', async () => {
      fake.on('POST', P.refund, () => 'hang');
      const p = makeProvider(fake.baseUrl, { timeoutMs: 200 });
      const err = await rejectionOf(p.refund({ ...refundReq, receipt: 'ABC123' }));
      expect([err.code, err.outcome]).toEqual(['PROVIDER_TIMEOUT', 'unknown']);
      fake.on('GET', P.status, () => 'hang');
      const before = await rejectionOf(p.refund(refundReq));
      expect([before.code, before.outcome]).toEqual(['PROVIDER_TIMEOUT', 'not_processed']);
      expect(fake.count('POST', P.refund)).toBe(1);
    });

    it('a 5xx is outcome unknown', async () => {
      fake.on('POST', P.refund, () => ({ status: 500, body: '' }));
      const err = await rejectionOf(makeProvider(fake.baseUrl).refund({ ...refundReq, receipt: 'ABC123' }));
      expect([err.code, err.outcome]).toEqual(['PROVIDER_UNAVAILABLE', 'unknown']);
    });
  });

  // -------------------------------------------------------------------------------------
  describe('cancelOrder', () => {
    it('posts the tracking id and reports whether Pesapal cancelled', async () => {
      fake.on('POST', P.cancel, (_r, nth) => ({
        status: 200,
        body:
          nth === 1
            ? { status: '200', message: 'Order successfully cancelled.' }
            : { status: '500', message: 'Order cannot be cancelled.' },
      }));
      const p = makeProvider(fake.baseUrl);
      expect(await p.cancelOrder(TRACKING)).toEqual({
        cancelled: true,
        message: 'Order successfully cancelled.',
        raw: { status: '200', message: 'Order successfully cancelled.' },
      });
      expect((await p.cancelOrder(TRACKING)).cancelled).toBe(false);
      expect(fake.of('POST', P.cancel)[0].json).toEqual({ order_tracking_id: TRACKING });
    });
  });

  // -------------------------------------------------------------------------------------
  describe('parseNotification (IPN / callback)', () => {
    const parse = (input: {
      query?: Record<string, unknown>;
      body?: unknown;
      rawBody?: string;
      headers?: Record<string, string>;
    }) =>
      makeProvider(fake.baseUrl).parseNotification({
        headers: input.headers ?? {},
        query: input.query ?? {},
        body: input.body,
        rawBody: input.rawBody,
      });
    const expected = { verified: false, reference: REF, providerRef: TRACKING, eventType: 'IPNCHANGE' };

    it('reads a GET IPN from the query string', () => {
      const query = { OrderTrackingId: TRACKING, OrderMerchantReference: REF, OrderNotificationType: 'IPNCHANGE' };
      expect(parse({ query })).toEqual({ ...expected, raw: { query, body: null } });
    });

    it('reads a POST IPN from the JSON body', () => {
      const body = { OrderTrackingId: TRACKING, OrderMerchantReference: REF, OrderNotificationType: 'IPNCHANGE' };
      expect(parse({ body })).toEqual({ ...expected, raw: { query: {}, body } });
    });

    it('reads an unparsed JSON or form-encoded raw body', () => {
      expect(
        parse({
          rawBody: JSON.stringify({
            OrderTrackingId: TRACKING,
            OrderMerchantReference: REF,
            OrderNotificationType: 'IPNCHANGE',
          }),
        }),
      ).toMatchObject(expected);
      expect(
        parse({ rawBody: `OrderTrackingId=${TRACKING}&OrderMerchantReference=${REF}&OrderNotificationType=IPNCHANGE` }),
      ).toMatchObject(expected);
    });

    it('tolerates camelCase, snake_case and repeated query values', () => {
      expect(
        parse({ body: { orderTrackingId: TRACKING, orderMerchantReference: REF, orderNotificationType: 'IPNCHANGE' } }),
      ).toMatchObject(expected);
      expect(
        parse({
          body: { order_tracking_id: TRACKING, order_merchant_reference: REF, order_notification_type: 'IPNCHANGE' },
        }),
      ).toMatchObject(expected);
      expect(
        parse({
          query: { OrderTrackingId: [TRACKING, 'x'], OrderMerchantReference: REF, OrderNotificationType: 'IPNCHANGE' },
        }),
      ).toMatchObject(expected);
    });

    it('reads the callback redirect (CALLBACKURL) and RECURRING notifications', () => {
      expect(
        parse({
          query: { OrderTrackingId: TRACKING, OrderMerchantReference: REF, OrderNotificationType: 'CALLBACKURL' },
        }).eventType,
      ).toBe('CALLBACKURL');
      expect(
        parse({ body: { OrderTrackingId: TRACKING, OrderMerchantReference: REF, OrderNotificationType: 'RECURRING' } })
          .eventType,
      ).toBe('RECURRING');
    });

    it('is never verified, whatever the headers say', () => {
      expect(
        parse({
          body: { OrderTrackingId: TRACKING },
          headers: { 'x-pesapal-signature': 'abc', authorization: 'Bearer x' },
        }).verified,
      ).toBe(false);
    });

    it('yields no identifiers for an empty or garbage request', () => {
      expect(parse({})).toEqual({ verified: false, raw: { query: {}, body: null } });
      expect(parse({ body: 'garbage{' })).toEqual({ verified: false, raw: { query: {}, body: { 'garbage{': '' } } });
      expect(parse({ body: { OrderTrackingId: 42, OrderMerchantReference: ' ' } })).toEqual({
        verified: false,
        raw: { query: {}, body: { OrderTrackingId: 42, OrderMerchantReference: ' ' } },
      });
    });
  });

  describe('pesapalIpnAck', () => {
    const n = { providerRef: TRACKING, reference: REF, eventType: 'IPNCHANGE' };

    it('builds the exact success acknowledgement', () => {
      expect(JSON.stringify(pesapalIpnAck(n, true))).toBe(
        `{"orderNotificationType":"IPNCHANGE","orderTrackingId":"${TRACKING}","orderMerchantReference":"${REF}","status":200}`,
      );
    });

    it('builds the exact "not processed, retry" acknowledgement', () => {
      expect(JSON.stringify(pesapalIpnAck(n, false))).toBe(
        `{"orderNotificationType":"IPNCHANGE","orderTrackingId":"${TRACKING}","orderMerchantReference":"${REF}","status":500}`,
      );
    });

    it('echoes what was parsed from the notification', () => {
      const parsed = makeProvider(fake.baseUrl).parseNotification({
        headers: {},
        query: { OrderTrackingId: TRACKING, OrderMerchantReference: REF, OrderNotificationType: 'RECURRING' },
        body: undefined,
      });
      expect(pesapalIpnAck(parsed, true)).toEqual({
        orderNotificationType: 'RECURRING',
        orderTrackingId: TRACKING,
        orderMerchantReference: REF,
        status: 200,
      });
      expect(pesapalIpnAck({}, false)).toEqual({
        orderNotificationType: 'IPNCHANGE',
        orderTrackingId: '',
        orderMerchantReference: '',
        status: 500,
      });
    });
  });
});
