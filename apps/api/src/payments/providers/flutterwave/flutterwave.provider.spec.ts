import { createHmac } from 'node:crypto';
import { ValidationFailedError } from '../../../common/errors';
import { captureLogs, deadBaseUrl, FakeProviderServer, FakeReply, rejectionOf } from '../fake-provider-server.testing';
import type { InitiateRequest } from '../payment-provider';
import { ProviderError } from '../provider-errors';
import { constantTimeEquals, FlutterwaveProvider, mapFlutterwaveStatus } from './flutterwave.provider';
import type { FlutterwaveConfig } from './flutterwave.types';

// The real module object (not an import-interop copy), so a spy sees the provider's calls.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- see above: an import would give an interop copy the spy cannot see
const nodeCrypto = require('node:crypto') as typeof import('node:crypto');

const SECRET_KEY = 'FLWSECK_TEST-sk0SECRET0abc123def456-X';
const SECRET_HASH = 'whsec-SECRET-hash-0123456789abcdef';
const TX_REF = 'POS-NBI01-7f3c2a10-5b1e-4c71-9a0e-2b7d6f1c9e44';
const LINK = 'https://checkout.flutterwave.com/v3/hosted/pay/flwlnk-01abc23def';

const PAYMENTS = '/v3/payments';
const VERIFY_9051234 = '/v3/transactions/9051234/verify';
const VERIFY_BY_REF = '/v3/transactions/verify_by_reference';
const REFUND_9051234 = '/v3/transactions/9051234/refund';

function makeProvider(baseUrl: string, patch: Partial<FlutterwaveConfig> = {}): FlutterwaveProvider {
  return new FlutterwaveProvider({
    baseUrl,
    secretKey: SECRET_KEY,
    secretHash: SECRET_HASH,
    timeoutMs: 2000,
    ...patch,
  });
}

function initiateRequest(patch: Partial<InitiateRequest> = {}): InitiateRequest {
  return {
    paymentId: 'pay_01',
    reference: TX_REF,
    amountMinor: 245000n,
    currency: 'KES',
    description: 'Receipt NBI01-000123',
    customer: { email: 'walkin+0712345678@pos.example.co.ke', phoneNumber: '254712345678', name: 'Walk-in customer' },
    redirectUrl: 'https://pos.example.co.ke/payments/flutterwave/return',
    ...patch,
  };
}

const linkReply = (): FakeReply => ({
  status: 200,
  body: { status: 'success', message: 'Hosted Link', data: { link: LINK } },
});

/** The reference's illustrative successful M-Pesa verify answer. */
function verifyBody(patch: Record<string, unknown> = {}) {
  return {
    status: 'success',
    message: 'Transaction fetched successfully',
    data: {
      id: 9051234,
      tx_ref: TX_REF,
      flw_ref: 'SFC2X9K1QZ',
      device_fingerprint: 'N/A',
      amount: 2450,
      currency: 'KES',
      charged_amount: 2450,
      app_fee: 68.6,
      merchant_fee: 0,
      processor_response: 'The service request is processed successfully.',
      auth_model: 'LIPA_MPESA',
      narration: 'FLW-PBF MPESA Transaction',
      status: 'successful',
      payment_type: 'mpesa',
      created_at: '2026-10-02T09:14:22.000Z',
      account_id: 123456,
      amount_settled: 2381.4,
      meta: { order_id: 'NBI01-000123', till_id: 'NBI01-T2' },
      customer: {
        id: 77001,
        name: 'Walk-in customer',
        phone_number: '254712345678',
        email: 'walkin+0712345678@pos.example.co.ke',
      },
      ...patch,
    },
  };
}

describe('FlutterwaveProvider', () => {
  let fake: FakeProviderServer;
  let logs: ReturnType<typeof captureLogs>;

  beforeEach(async () => {
    logs = captureLogs();
    fake = new FakeProviderServer();
    await fake.start();
  });

  afterEach(async () => {
    jest.restoreAllMocks();
    logs.restore();
    await fake.close();
  });

  it('declares its capabilities', () => {
    expect(makeProvider(fake.baseUrl).capabilities).toEqual({
      currencies: ['KES'],
      fractionalAmounts: false,
      refunds: 'partial',
      notification: 'webhook',
      hostedCheckout: true,
    });
    expect(
      makeProvider(fake.baseUrl, { currencies: ['KES', 'USD'], allowFractionalAmounts: true }).capabilities,
    ).toMatchObject({
      currencies: ['KES', 'USD'],
      fractionalAmounts: true,
    });
  });

  it('refuses incomplete configuration at construction', () => {
    expect(() => makeProvider('not-a-url')).toThrow('baseUrl');
    expect(() => makeProvider(fake.baseUrl, { secretKey: '' })).toThrow('secretKey');
    expect(() => makeProvider(fake.baseUrl, { timeoutMs: 0 })).toThrow('timeoutMs');
    expect(() => makeProvider(fake.baseUrl, { sessionDurationMinutes: 1441 })).toThrow('sessionDurationMinutes');
    expect(() => makeProvider(fake.baseUrl, { maxRetryAttempts: 0 })).toThrow('maxRetryAttempts');
  });

  // -------------------------------------------------------------------------------------
  describe('initiate (POST /v3/payments)', () => {
    it('sends the documented request with the currency always explicit, and returns the hosted link', async () => {
      fake.on('POST', PAYMENTS, linkReply);
      const result = await makeProvider(fake.baseUrl).initiate(initiateRequest());

      expect(result).toEqual({ redirectUrl: LINK, raw: linkReply().body });
      expect(result.providerRef).toBeUndefined();
      const [req] = fake.of('POST', PAYMENTS);
      expect(fake.requests).toHaveLength(1);
      expect(req.headers.authorization).toBe(`Bearer ${SECRET_KEY}`);
      expect(req.headers['content-type']).toBe('application/json');
      expect(req.headers.accept).toBe('application/json');
      expect(req.json).toEqual({
        tx_ref: TX_REF,
        amount: 2450,
        currency: 'KES',
        redirect_url: 'https://pos.example.co.ke/payments/flutterwave/return',
        customer: {
          email: 'walkin+0712345678@pos.example.co.ke',
          phonenumber: '254712345678',
          name: 'Walk-in customer',
        },
        customizations: { description: 'Receipt NBI01-000123' },
        meta: { payment_id: 'pay_01' },
      });
      expect(req.rawBody).toContain('"amount":2450,');
      expect(req.rawBody).toContain('"currency":"KES"');
    });

    it('accepts a base URL that already ends in /v3', async () => {
      fake.on('POST', PAYMENTS, linkReply);
      await makeProvider(`${fake.baseUrl}/v3/`).initiate(initiateRequest());
      expect(fake.count('POST', PAYMENTS)).toBe(1);
    });

    it('sends the configured payment options, session duration and title; joins first and last name', async () => {
      fake.on('POST', PAYMENTS, linkReply);
      const p = makeProvider(fake.baseUrl, {
        paymentOptions: 'card, mpesa',
        sessionDurationMinutes: 30,
        maxRetryAttempts: 1,
        checkoutTitle: 'Duka POS',
      });
      await p.initiate(initiateRequest({ customer: { email: 'a@b.co', firstName: 'Wanjiku', lastName: 'Kamau' } }));
      const [req] = fake.of('POST', PAYMENTS);
      expect(req.json.payment_options).toBe('card, mpesa');
      expect(req.json.session_duration).toBe(30);
      expect(req.json.max_retry_attempt).toBe(1);
      expect(req.json.customizations).toEqual({ title: 'Duka POS', description: 'Receipt NBI01-000123' });
      expect(req.json.customer).toEqual({ email: 'a@b.co', name: 'Wanjiku Kamau' });
    });

    it('sends cents exactly when fractional amounts are enabled (150050n → 1500.5)', async () => {
      fake.on('POST', PAYMENTS, linkReply);
      await makeProvider(fake.baseUrl, { allowFractionalAmounts: true }).initiate(
        initiateRequest({ amountMinor: 150050n }),
      );
      const [req] = fake.of('POST', PAYMENTS);
      expect(req.rawBody).toContain('"amount":1500.5,');
      expect(req.json.amount).toBe(1500.5);
    });

    it.each<[string, Partial<InitiateRequest>, string]>([
      ['cents by default', { amountMinor: 150050n }, 'Flutterwave only accepts whole KES amounts (no cents)'],
      ['zero amount', { amountMinor: 0n }, 'amount must be greater than zero'],
      ['a currency not enabled', { currency: 'USD' }, 'Flutterwave payments are not available in USD; use KES'],
      [
        'no currency',
        { currency: undefined as unknown as string },
        'Flutterwave payments are not available in that currency; use KES',
      ],
      [
        'no customer email',
        { customer: { phoneNumber: '254712345678' } },
        'Flutterwave needs a customer email address',
      ],
      ['a bad email', { customer: { email: 'not-an-email' } }, 'customer email is not a valid email address'],
      [
        'a bad phone number',
        { customer: { email: 'a@b.co', phoneNumber: '07-12' } },
        'customer phone number must be 9-15 digits',
      ],
      ['a reference with spaces', { reference: 'POS 1' }, 'reference may only contain'],
      ['a reference over 100 characters', { reference: 'R'.repeat(101) }, 'reference must be at most 100 characters'],
      ['no redirect URL', { redirectUrl: 'javascript:alert(1)' }, 'redirectUrl must be an http(s) URL'],
      ['no payment id', { paymentId: '' }, 'paymentId is required'],
    ])('rejects %s with a 400 before calling Flutterwave', async (_label, patch, message) => {
      const err = await rejectionOf(makeProvider(fake.baseUrl).initiate(initiateRequest(patch)));
      expect(err).toBeInstanceOf(ValidationFailedError);
      expect(err.statusCode).toBe(400);
      expect(err.message).toContain(message);
      expect(fake.requests).toHaveLength(0);
    });

    it('masks the phone number in validation error details', async () => {
      const err = await rejectionOf(
        makeProvider(fake.baseUrl).initiate(
          initiateRequest({ customer: { email: 'a@b.co', phoneNumber: '2547123456789999x' } }),
        ),
      );
      expect(JSON.stringify(err.details)).not.toContain('2547123456789999');
    });

    it.each<[string, FakeReply, { code: string; statusCode: number; outcome: string; message: string }]>([
      [
        'HTTP 400 error body (duplicate tx_ref)',
        { status: 400, body: { status: 'error', message: 'Transaction reference already exists', data: null } },
        {
          code: 'PROVIDER_REJECTED',
          statusCode: 502,
          outcome: 'not_processed',
          message: 'Flutterwave rejected the payment request: Transaction reference already exists',
        },
      ],
      [
        'HTTP 200 with status "error"',
        { status: 200, body: { status: 'error', message: 'Invalid currency', data: null } },
        {
          code: 'PROVIDER_REJECTED',
          statusCode: 502,
          outcome: 'not_processed',
          message: 'Flutterwave rejected the payment request: Invalid currency',
        },
      ],
      [
        'HTTP 401',
        { status: 401, body: { status: 'error', message: 'Invalid authorization key', data: null } },
        {
          code: 'PROVIDER_AUTH_FAILED',
          statusCode: 502,
          outcome: 'not_processed',
          message: 'Flutterwave refused our credentials for the payment request: Invalid authorization key',
        },
      ],
      [
        'HTTP 403',
        { status: 403, body: { status: 'error', message: 'Forbidden', data: null } },
        {
          code: 'PROVIDER_AUTH_FAILED',
          statusCode: 502,
          outcome: 'not_processed',
          message: 'Flutterwave refused our credentials',
        },
      ],
      [
        'HTTP 429',
        { status: 429, body: { status: 'error', message: 'Too many requests' }, headers: { 'retry-after': '7' } },
        {
          code: 'PROVIDER_RATE_LIMITED',
          statusCode: 503,
          outcome: 'not_processed',
          message: 'Flutterwave is limiting requests',
        },
      ],
      [
        'HTTP 503 after its own ~28 s timeout',
        { status: 503, body: { status: 'error', message: 'Service timed out', data: null } },
        {
          code: 'PROVIDER_UNAVAILABLE',
          statusCode: 502,
          outcome: 'unknown',
          message: 'Flutterwave failed while handling the payment request: Service timed out; outcome unknown',
        },
      ],
      [
        'HTTP 500 with an HTML page',
        { status: 500, body: '<html><body>Internal Server Error</body></html>' },
        {
          code: 'PROVIDER_UNAVAILABLE',
          statusCode: 502,
          outcome: 'unknown',
          message: 'Flutterwave failed while handling the payment request (HTTP 500); outcome unknown',
        },
      ],
      [
        'success without a link',
        { status: 200, body: { status: 'success', message: 'Hosted Link', data: {} } },
        { code: 'PROVIDER_BAD_RESPONSE', statusCode: 502, outcome: 'unknown', message: 'sent no checkout link' },
      ],
      [
        'an unreadable 200',
        { status: 200, body: 'OK' },
        {
          code: 'PROVIDER_BAD_RESPONSE',
          statusCode: 502,
          outcome: 'unknown',
          message: 'Unexpected answer from Flutterwave to the payment request (HTTP 200)',
        },
      ],
      [
        'a redirect',
        { status: 302, body: '', headers: { location: 'https://example.com/' } },
        {
          code: 'PROVIDER_BAD_RESPONSE',
          statusCode: 502,
          outcome: 'unknown',
          message: 'Unexpected answer from Flutterwave to the payment request (HTTP 302)',
        },
      ],
    ])('maps %s', async (_label, reply, expected) => {
      fake.on('POST', PAYMENTS, () => reply);
      const err = await rejectionOf(makeProvider(fake.baseUrl).initiate(initiateRequest()));
      expect(err).toBeInstanceOf(ProviderError);
      expect(err.provider).toBe('flutterwave');
      expect(err.code).toBe(expected.code);
      expect(err.statusCode).toBe(expected.statusCode);
      expect(err.outcome).toBe(expected.outcome);
      expect(err.message).toContain(expected.message);
      expect(err.providerHttpStatus).toBe(reply.status);
      expect(fake.count('POST', PAYMENTS)).toBe(1); // never retried
    });

    it('passes Retry-After on to our client', async () => {
      fake.on('POST', PAYMENTS, () => ({
        status: 429,
        body: { status: 'error', message: 'slow down' },
        headers: { 'retry-after': '7' },
      }));
      const err = await rejectionOf(makeProvider(fake.baseUrl).initiate(initiateRequest()));
      expect(err.headers).toEqual({ 'Retry-After': '7' });
    });

    it('times out with outcome unknown (504)', async () => {
      fake.on('POST', PAYMENTS, () => 'hang');
      const err = await rejectionOf(makeProvider(fake.baseUrl, { timeoutMs: 200 }).initiate(initiateRequest()));
      expect(err).toBeInstanceOf(ProviderError);
      expect(err.code).toBe('PROVIDER_TIMEOUT');
      expect(err.statusCode).toBe(504);
      expect(err.outcome).toBe('unknown');
      expect(err.message).toBe('No answer from Flutterwave within 200ms to the payment request; outcome unknown');
    });

    it('connection refused → not processed (503)', async () => {
      const err = await rejectionOf(makeProvider(await deadBaseUrl()).initiate(initiateRequest()));
      expect(err).toBeInstanceOf(ProviderError);
      expect(err.code).toBe('PROVIDER_UNREACHABLE');
      expect(err.statusCode).toBe(503);
      expect(err.outcome).toBe('not_processed');
      expect(err.message).toBe('Flutterwave could not be reached (ECONNREFUSED); the payment request was not sent');
    });

    it('connection dropped after the request was sent → outcome unknown', async () => {
      fake.on('POST', PAYMENTS, () => 'destroy');
      const err = await rejectionOf(makeProvider(fake.baseUrl).initiate(initiateRequest()));
      expect(err.code).toBe('PROVIDER_UNAVAILABLE');
      expect(err.outcome).toBe('unknown');
    });

    it('never puts the secret key or secret hash in errors or logs, even when Flutterwave echoes them', async () => {
      fake.on('POST', PAYMENTS, (req) => ({
        status: 401,
        body: {
          status: 'error',
          message: `Invalid authorization key ${req.headers.authorization} (hash ${SECRET_HASH})`,
          data: null,
        },
      }));
      const err = await rejectionOf(makeProvider(fake.baseUrl).initiate(initiateRequest()));
      const everything = [err.message, JSON.stringify(err.details), err.providerMessage, ...logs.lines].join('\n');
      expect(err.code).toBe('PROVIDER_AUTH_FAILED');
      expect(everything).toContain('Invalid authorization key Bearer ***');
      expect(everything).not.toContain(SECRET_KEY);
      expect(everything).not.toContain('sk0SECRET0abc123def456');
      expect(everything).not.toContain(SECRET_HASH);
      expect(logs.lines.join('\n')).not.toContain('254712345678');
    });
  });

  // -------------------------------------------------------------------------------------
  describe('fetchStatus (verify)', () => {
    it('verifies by transaction id and parses the documented answer exactly', async () => {
      fake.on('GET', VERIFY_9051234, () => ({ status: 200, body: verifyBody() }));
      const status = await makeProvider(fake.baseUrl).fetchStatus({ reference: TX_REF, providerRef: '9051234' });
      expect(status).toEqual({
        status: 'completed',
        providerRef: '9051234',
        reference: TX_REF,
        amountMinor: 245000n,
        currency: 'KES',
        receipt: 'SFC2X9K1QZ',
        paymentMethod: 'mpesa',
        description: 'The service request is processed successfully.',
        raw: verifyBody(),
      });
      const [req] = fake.of('GET', VERIFY_9051234);
      expect(req.headers.authorization).toBe(`Bearer ${SECRET_KEY}`);
      expect(req.rawBody).toBe('');
    });

    it('verifies by tx_ref (URL-encoded) when the transaction id is unknown', async () => {
      const ref = 'POS-A&B=1+2';
      fake.on('GET', VERIFY_BY_REF, () => ({ status: 200, body: verifyBody({ tx_ref: ref }) }));
      const status = await makeProvider(fake.baseUrl).fetchStatus({ reference: ref });
      expect(status.status).toBe('completed');
      expect(status.reference).toBe(ref);
      const [req] = fake.of('GET', VERIFY_BY_REF);
      expect(req.url).toBe('/v3/transactions/verify_by_reference?tx_ref=POS-A%26B%3D1%2B2');
      expect(req.query.get('tx_ref')).toBe(ref);
    });

    it.each<[unknown, string, bigint | undefined]>([
      [1500.5, 'KES', 150050n],
      [2450, 'KES', 245000n],
      ['2450.00', 'KES', 245000n],
      [2450.123, 'KES', undefined], // cannot be KES: never a usable amount
      [2450, 'NGN', undefined], // a currency we do not handle (e.g. the NGN default slipped through)
    ])('parses amount %p %s exactly → %p', async (amount, currency, minor) => {
      fake.on('GET', VERIFY_9051234, () => ({ status: 200, body: verifyBody({ amount, currency }) }));
      const status = await makeProvider(fake.baseUrl).fetchStatus({ reference: TX_REF, providerRef: '9051234' });
      expect(status.amountMinor).toBe(minor);
      expect(status.currency).toBe(currency);
    });

    it.each([
      ['successful', 'completed'],
      ['SUCCESSFUL', 'completed'],
      ['completed', 'completed'],
      ['failed', 'failed'],
      ['cancelled', 'cancelled'],
      ['pending', 'pending'],
      ['success-pending-validation', 'pending'],
      ['pending-momo', 'pending'],
      ['processing', 'pending'],
      ['reversed', 'unknown'],
      ['success', 'unknown'],
    ])('maps data.status %p → %p', async (flwStatus, ours) => {
      expect(mapFlutterwaveStatus(flwStatus)).toBe(ours);
      fake.on('GET', VERIFY_9051234, () => ({ status: 200, body: verifyBody({ status: flwStatus }) }));
      expect((await makeProvider(fake.baseUrl).fetchStatus({ reference: TX_REF, providerRef: '9051234' })).status).toBe(
        ours,
      );
    });

    it.each([200, 400, 404])(
      'reports "No transaction was found" (HTTP %d) as not_found, not as an error',
      async (httpStatus) => {
        const body = { status: 'error', message: 'No transaction was found for this id', data: null };
        fake.on('GET', VERIFY_BY_REF, () => ({ status: httpStatus, body }));
        await expect(makeProvider(fake.baseUrl).fetchStatus({ reference: TX_REF })).resolves.toEqual({
          status: 'not_found',
          reference: TX_REF,
          raw: body,
        });
      },
    );

    it('refuses a transaction that belongs to another tx_ref (e.g. a spoofed redirect transaction_id)', async () => {
      fake.on('GET', VERIFY_9051234, () => ({ status: 200, body: verifyBody({ tx_ref: 'POS-SOMEONE-ELSE' }) }));
      const err = await rejectionOf(
        makeProvider(fake.baseUrl).fetchStatus({ reference: TX_REF, providerRef: '9051234' }),
      );
      expect(err).toBeInstanceOf(ProviderError);
      expect(err.code).toBe('PROVIDER_REFERENCE_MISMATCH');
      expect(err.message).toBe(
        'Flutterwave reports a transaction that belongs to a different payment reference; it cannot confirm this payment',
      );
    });

    it('refuses an answer about another transaction id', async () => {
      fake.on('GET', VERIFY_9051234, () => ({ status: 200, body: verifyBody({ id: 111 }) }));
      const err = await rejectionOf(
        makeProvider(fake.baseUrl).fetchStatus({ reference: TX_REF, providerRef: '9051234' }),
      );
      expect(err.code).toBe('PROVIDER_REFERENCE_MISMATCH');
    });

    it('an answer without tx_ref is a bad response', async () => {
      fake.on('GET', VERIFY_9051234, () => ({ status: 200, body: verifyBody({ tx_ref: undefined }) }));
      const err = await rejectionOf(
        makeProvider(fake.baseUrl).fetchStatus({ reference: TX_REF, providerRef: '9051234' }),
      );
      expect(err.code).toBe('PROVIDER_BAD_RESPONSE');
    });

    it('a lookup "success" without a payment status is a bad response', async () => {
      fake.on('GET', VERIFY_9051234, () => ({
        status: 200,
        body: { status: 'success', message: 'ok', data: { id: 9051234, tx_ref: TX_REF } },
      }));
      const err = await rejectionOf(
        makeProvider(fake.baseUrl).fetchStatus({ reference: TX_REF, providerRef: '9051234' }),
      );
      expect(err.code).toBe('PROVIDER_BAD_RESPONSE');
    });

    it('a test key used against live (401/403) is an auth error', async () => {
      fake.on('GET', VERIFY_9051234, () => ({
        status: 403,
        body: { status: 'error', message: 'Invalid secret key passed', data: null },
      }));
      const err = await rejectionOf(
        makeProvider(fake.baseUrl).fetchStatus({ reference: TX_REF, providerRef: '9051234' }),
      );
      expect(err.code).toBe('PROVIDER_AUTH_FAILED');
    });

    it('rejects a non-numeric transaction id without calling Flutterwave', async () => {
      const err = await rejectionOf(
        makeProvider(fake.baseUrl).fetchStatus({ reference: TX_REF, providerRef: '../../payments' }),
      );
      expect(err).toBeInstanceOf(ValidationFailedError);
      expect(fake.requests).toHaveLength(0);
    });

    it('times out with a ProviderError', async () => {
      fake.on('GET', VERIFY_BY_REF, () => 'hang');
      const err = await rejectionOf(makeProvider(fake.baseUrl, { timeoutMs: 200 }).fetchStatus({ reference: TX_REF }));
      expect(err.code).toBe('PROVIDER_TIMEOUT');
    });
  });

  // -------------------------------------------------------------------------------------
  describe('parseNotification (webhooks)', () => {
    const envelope = {
      event: 'charge.completed',
      data: { id: 9051234, tx_ref: TX_REF, flw_ref: 'SFC2X9K1QZ', amount: 2450, currency: 'KES', status: 'successful' },
      meta_data: { order_id: 'NBI01-000123' },
      'event.type': 'MPESA_TRANSACTION',
    };
    const parse = (
      headers: Record<string, string | string[] | undefined>,
      body: unknown = envelope,
      rawBody?: string,
      p = makeProvider(fake.baseUrl),
    ) => p.parseNotification({ headers, query: {}, body, rawBody });

    it('verifies verif-hash against the configured secret hash', () => {
      expect(parse({ 'verif-hash': SECRET_HASH }).verified).toBe(true);
      expect(parse({ 'Verif-Hash': SECRET_HASH }).verified).toBe(true);
      expect(parse({ 'verif-hash': [SECRET_HASH] }).verified).toBe(true);
    });

    it.each<[string, Record<string, string | string[] | undefined>]>([
      ['a wrong hash of the same length', { 'verif-hash': SECRET_HASH.replace(/.$/, 'X') }],
      ['a wrong hash of another length', { 'verif-hash': 'short' }],
      ['a prefix of the hash', { 'verif-hash': SECRET_HASH.slice(0, -1) }],
      ['an empty header', { 'verif-hash': '' }],
      ['no header', {}],
      ['two values', { 'verif-hash': [SECRET_HASH, SECRET_HASH] }],
      ['the secret key instead of the hash', { 'verif-hash': SECRET_KEY }],
    ])('does not verify %s', (_label, headers) => {
      expect(parse(headers).verified).toBe(false);
    });

    it('never verifies when no secret hash is configured', () => {
      const p = makeProvider(fake.baseUrl, { secretHash: '' });
      expect(parse({ 'verif-hash': '' }, envelope, undefined, p).verified).toBe(false);
      expect(parse({ 'verif-hash': 'anything' }, envelope, undefined, p).verified).toBe(false);
    });

    it('compares in constant time: both sides hashed to 32 bytes, then timingSafeEqual', () => {
      const spy = jest.spyOn(nodeCrypto, 'timingSafeEqual');
      expect(parse({ 'verif-hash': 'x' }).verified).toBe(false);
      expect(spy).toHaveBeenCalledTimes(1);
      const [a, b] = spy.mock.calls[0] as [Buffer, Buffer];
      expect(a.length).toBe(32);
      expect(b.length).toBe(32);
      expect(constantTimeEquals('abc', 'abc')).toBe(true);
      expect(constantTimeEquals('abc', 'abcd')).toBe(false);
    });

    it('accepts flutterwave-signature as the base64 HMAC-SHA256 of the raw body (or the hash itself)', () => {
      const raw = JSON.stringify(envelope);
      const sig = createHmac('sha256', SECRET_HASH).update(raw, 'utf8').digest('base64');
      expect(parse({ 'flutterwave-signature': sig }, envelope, raw).verified).toBe(true);
      expect(parse({ 'flutterwave-signature': SECRET_HASH }, envelope, raw).verified).toBe(true);
      expect(parse({ 'flutterwave-signature': sig }, envelope, `${raw} `).verified).toBe(false);
      expect(parse({ 'flutterwave-signature': sig }, envelope, undefined).verified).toBe(false);
      const otherKey = createHmac('sha256', 'other').update(raw, 'utf8').digest('base64');
      expect(parse({ 'flutterwave-signature': otherKey }, envelope, raw).verified).toBe(false);
    });

    it('reads the enveloped v3 shape', () => {
      expect(parse({ 'verif-hash': SECRET_HASH })).toEqual({
        verified: true,
        reference: TX_REF,
        providerRef: '9051234',
        eventType: 'charge.completed',
        raw: envelope,
      });
    });

    it('reads the legacy flat camelCase shape', () => {
      const flat = {
        id: 9051234,
        txRef: TX_REF,
        flwRef: 'FLW-MOCK-1',
        orderRef: 'URF_1',
        amount: 2450,
        status: 'successful',
        currency: 'KES',
        'event.type': 'CARD_TRANSACTION',
      };
      expect(parse({ 'verif-hash': SECRET_HASH }, flat)).toEqual({
        verified: true,
        reference: TX_REF,
        providerRef: '9051234',
        eventType: 'CARD_TRANSACTION',
        raw: flat,
      });
    });

    it('reads the flat PascalCase refund shape (TransactionId is the original charge)', () => {
      const refund = {
        id: 75923,
        AmountRefunded: 1000,
        status: 'completed',
        FlwRef: 'FLW-1',
        comments: 'x',
        meta: '{"a":1}',
        TransactionId: 9051234,
      };
      expect(parse({ 'verif-hash': SECRET_HASH }, refund)).toEqual({
        verified: true,
        providerRef: '9051234',
        eventType: 'refund',
        raw: refund,
      });
    });

    it('reads the v4 shape: reference only, since chg_ ids cannot be verified through v3', () => {
      const v4 = {
        id: 'wbk_1',
        timestamp: 1735116884019,
        type: 'charge.completed',
        data: { id: 'chg_abc', reference: TX_REF, status: 'succeeded' },
      };
      expect(parse({}, v4)).toEqual({ verified: false, reference: TX_REF, eventType: 'charge.completed', raw: v4 });
    });

    it('falls back to the raw body when the body was not parsed', () => {
      const raw = JSON.stringify(envelope);
      expect(parse({ 'verif-hash': SECRET_HASH }, undefined, raw)).toMatchObject({
        verified: true,
        reference: TX_REF,
        providerRef: '9051234',
      });
      expect(parse({ 'verif-hash': SECRET_HASH }, raw)).toMatchObject({ reference: TX_REF, providerRef: '9051234' });
    });

    it('yields no identifiers for garbage', () => {
      expect(parse({ 'verif-hash': SECRET_HASH }, 'not json')).toEqual({ verified: true, raw: 'not json' });
      expect(parse({}, [1, 2])).toEqual({ verified: false, raw: [1, 2] });
      expect(parse({}, { data: { id: '1; DROP', tx_ref: 42 } })).toEqual({
        verified: false,
        reference: '42',
        raw: { data: { id: '1; DROP', tx_ref: 42 } },
      });
    });
  });

  // -------------------------------------------------------------------------------------
  describe('refund (POST /v3/transactions/:id/refund)', () => {
    const refundReq = {
      providerRef: '9051234',
      reference: TX_REF,
      amountMinor: 100000n,
      currency: 'KES',
      reason: 'Customer returned goods',
    };
    const refundData = (status: string) => ({
      status: 'success',
      message: 'Transaction refund initiated',
      data: {
        id: 75923,
        account_id: 1,
        tx_id: 9051234,
        flw_ref: 'SFC2X9K1QZ',
        amount_refunded: 1000,
        status,
        destination: 'payment_source',
      },
    });

    it('sends the amount exactly and the reason as comments; accepted with the refund id', async () => {
      fake.on('POST', REFUND_9051234, () => ({ status: 200, body: refundData('completed') }));
      const result = await makeProvider(fake.baseUrl).refund(refundReq);
      expect(result).toEqual({ status: 'accepted', providerRefundRef: '75923', raw: refundData('completed') });
      const [req] = fake.of('POST', REFUND_9051234);
      expect(req.json).toEqual({ amount: 1000, comments: 'Customer returned goods' });
      expect(req.headers.authorization).toBe(`Bearer ${SECRET_KEY}`);
    });

    it('treats pending-momo as accepted and a failed refund as rejected', async () => {
      fake.on('POST', REFUND_9051234, (_r, nth) => ({
        status: 200,
        body: refundData(nth === 1 ? 'pending-momo' : 'failed'),
      }));
      const p = makeProvider(fake.baseUrl);
      expect((await p.refund(refundReq)).status).toBe('accepted');
      expect(await p.refund(refundReq)).toMatchObject({ status: 'rejected', providerRefundRef: '75923' });
    });

    it.each([200, 400, 404])(
      "returns rejected with Flutterwave's message for an error body (HTTP %d)",
      async (httpStatus) => {
        const body = { status: 'error', message: 'Refund amount exceeds transaction amount', data: null };
        fake.on('POST', REFUND_9051234, () => ({ status: httpStatus, body }));
        await expect(makeProvider(fake.baseUrl).refund(refundReq)).resolves.toEqual({
          status: 'rejected',
          message: 'Refund amount exceeds transaction amount',
          raw: body,
        });
      },
    );

    it('throws on auth failures, 5xx and timeouts', async () => {
      fake.on('POST', REFUND_9051234, (_r, nth) =>
        nth === 1
          ? { status: 401, body: { status: 'error', message: 'Unauthorized' } }
          : nth === 2
            ? { status: 502, body: 'Bad gateway' }
            : 'hang',
      );
      const p = makeProvider(fake.baseUrl, { timeoutMs: 200 });
      expect((await rejectionOf(p.refund(refundReq))).code).toBe('PROVIDER_AUTH_FAILED');
      const unavailable = await rejectionOf(p.refund(refundReq));
      expect([unavailable.code, unavailable.outcome]).toEqual(['PROVIDER_UNAVAILABLE', 'unknown']);
      const timeout = await rejectionOf(p.refund(refundReq));
      expect([timeout.code, timeout.outcome]).toEqual(['PROVIDER_TIMEOUT', 'unknown']);
    });

    it('validates before sending', async () => {
      const p = makeProvider(fake.baseUrl);
      expect(await rejectionOf(p.refund({ ...refundReq, providerRef: 'abc' }))).toBeInstanceOf(ValidationFailedError);
      expect(await rejectionOf(p.refund({ ...refundReq, reason: ' ' }))).toBeInstanceOf(ValidationFailedError);
      expect(await rejectionOf(p.refund({ ...refundReq, amountMinor: 0n }))).toBeInstanceOf(ValidationFailedError);
      expect(await rejectionOf(p.refund({ ...refundReq, amountMinor: 100050n }))).toBeInstanceOf(ValidationFailedError);
      expect(fake.requests).toHaveLength(0);
    });
  });
});
