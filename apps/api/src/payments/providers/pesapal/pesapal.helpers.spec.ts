import { createHash } from 'node:crypto';
import { ValidationFailedError } from '../../../common/errors';
import { FakeProviderServer } from '../fake-provider-server.testing';
import { PESAPAL_PATHS as P, PesapalProvider } from './pesapal.provider';
import { ProviderError } from '../provider-errors';
import {
  decodeEnvelope,
  encodeEnvelope,
  escapeHtml,
  IPN_OUTCOMES,
  ipnProcessed,
  ipnSettingsKey,
  isCancelledAtPesapal,
  isStaleIpnRejection,
  MERCHANT_REFERENCE_RE,
  merchantReference,
  normaliseCustomer,
  parseInitAmount,
  posReturnLocation,
  resultPage,
  statusCodeOf,
} from './pesapal.helpers';

const KES = { supportedCurrencies: ['KES'], wholeUnitsOnly: false };

function validationMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationFailedError);
    return (err as Error).message;
  }
  throw new Error('expected a ValidationFailedError');
}

describe('merchantReference', () => {
  it('is SD-<order>-<12 base32>, within Pesapal’s 50 characters and character set', () => {
    const ref = merchantReference('ORD-12345', () => Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 31]));
    expect(ref).toBe('SD-ORD-12345-ABCDEFGHJKM9');
    expect(MERCHANT_REFERENCE_RE.test(ref)).toBe(true);
  });

  it('drops characters Pesapal refuses and keeps the last 24 of a long order id', () => {
    const ref = merchantReference('shop.1.' + 'x'.repeat(60) + '.END');
    expect(ref).toMatch(/^SD-x{21}END-[A-Z0-9]{12}$/);
    expect(ref.length).toBeLessThanOrEqual(50);
    expect(merchantReference('...')).toMatch(/^SD-ORDER-[A-Z0-9]{12}$/);
  });

  it('is different for every attempt on the same order', () => {
    const refs = new Set(Array.from({ length: 2000 }, () => merchantReference('ORD-1')));
    expect(refs.size).toBe(2000);
  });
});

describe('parseInitAmount', () => {
  it.each([
    ['1500.50', 150050n, '1500.50'],
    [1500.5, 150050n, '1500.50'],
    [2450, 245000n, '2450.00'],
    ['0.01', 1n, '0.01'],
    ['100.10', 10010n, '100.10'],
    [0.29, 29n, '0.29'],
    ['99.990', 9999n, '99.99'],
  ])('%p → %p minor units', (value, minor, text) => {
    expect(parseInitAmount(value, 'KES', KES)).toEqual({ minor, text });
  });

  it('never goes through float arithmetic: 0.1 + 0.2 is refused, not rounded', () => {
    expect(validationMessage(() => parseInitAmount(0.1 + 0.2, 'KES', KES))).toBe(
      'amount has more than 2 decimal places; KES amounts have at most 2',
    );
  });

  it.each([
    ['99.999', 'amount has more than 2 decimal places; KES amounts have at most 2'],
    [99.999, 'amount has more than 2 decimal places; KES amounts have at most 2'],
    ['0', 'amount must be greater than zero'],
    ['0.00', 'amount must be greater than zero'],
    ['1e3', 'amount must be a positive amount in KES, e.g. 1500 or "1500.50"'],
    ['-5', 'amount must be a positive amount in KES, e.g. 1500 or "1500.50"'],
    [Number.NaN, 'amount must be a positive amount in KES, e.g. 1500 or "1500.50"'],
    [1e21, 'amount is too large'],
    ['1234567890123456', 'amount is too large'],
  ])('%p is refused: %s', (value, message) => {
    expect(validationMessage(() => parseInitAmount(value, 'KES', KES))).toBe(message);
  });

  it('refuses cents when only whole units are allowed (M-Pesa on the page cannot take them)', () => {
    expect(validationMessage(() => parseInitAmount('100.50', 'KES', { ...KES, wholeUnitsOnly: true }))).toBe(
      'Pesapal payments take whole KES amounts here (no cents)',
    );
    expect(parseInitAmount('100.00', 'KES', { ...KES, wholeUnitsOnly: true }).minor).toBe(10000n);
  });

  it('refuses a currency the account does not take, and decimals a currency does not have', () => {
    expect(validationMessage(() => parseInitAmount('10', 'USD', KES))).toBe(
      'Pesapal payments are not available in USD; use KES',
    );
    expect(
      validationMessage(() => parseInitAmount('10.5', 'UGX', { supportedCurrencies: ['UGX'], wholeUnitsOnly: false })),
    ).toBe('UGX amounts have no decimal places');
    expect(parseInitAmount('1500', 'UGX', { supportedCurrencies: ['UGX'], wholeUnitsOnly: false }).minor).toBe(1500n);
  });
});

describe('normaliseCustomer', () => {
  it('keeps email, cleans the phone number, trims names', () => {
    expect(
      normaliseCustomer({
        email: ' jane@example.com ',
        phoneNumber: '0712 345-678',
        firstName: ' Jane ',
        lastName: '',
      }),
    ).toEqual({ email: 'jane@example.com', phoneNumber: '0712345678', firstName: 'Jane' });
  });

  it('needs an email address or a phone number', () => {
    expect(validationMessage(() => normaliseCustomer({ firstName: 'Jane' }))).toContain(
      'email address or a phone number',
    );
    expect(validationMessage(() => normaliseCustomer(undefined))).toContain('email address or a phone number');
    expect(normaliseCustomer({ phoneNumber: '+254712345678' })).toEqual({ phoneNumber: '+254712345678' });
  });

  it('refuses a phone number that is not 9-15 digits, without echoing it', () => {
    try {
      normaliseCustomer({ phoneNumber: '0712 345 678 901 234 5' });
      throw new Error('expected a ValidationFailedError');
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationFailedError);
      expect((err as ValidationFailedError).details).toEqual({
        field: 'customer.phoneNumber',
        received: '***',
        errors: [{ param: 'customer.phoneNumber', message: (err as ValidationFailedError).message }],
      });
      expect(JSON.stringify((err as ValidationFailedError).details)).not.toContain('0712');
    }
  });
});

describe('small helpers', () => {
  it('ipnSettingsKey = pesapal:ipn:<env>:<account | platform>:<sha256 of the URL>', () => {
    expect(ipnSettingsKey('sandbox', 'https://pos.example.co.ke/payments/pesapal/callback')).toBe(
      'pesapal:ipn:sandbox:platform:' +
        createHash('sha256').update('https://pos.example.co.ke/payments/pesapal/callback').digest('hex'),
    );
    expect(ipnSettingsKey('sandbox', 'https://a/x')).not.toBe(ipnSettingsKey('production', 'https://a/x'));
    // One registration per merchant account: a shop's is not the platform's, nor another shop's.
    const id = '0b6f7c1e-1111-4222-8333-944445555666';
    expect(ipnSettingsKey('sandbox', 'https://a/x', id)).toBe(
      `pesapal:ipn:sandbox:${id}:` + createHash('sha256').update('https://a/x').digest('hex'),
    );
    expect(ipnSettingsKey('sandbox', 'https://a/x', id)).not.toBe(ipnSettingsKey('sandbox', 'https://a/x'));
  });

  it('isStaleIpnRejection matches only Pesapal’s "Invalid IPN URL ID" refusal', () => {
    const refused = (msg: string) =>
      new ProviderError('pesapal', 'rejected', 'Pesapal rejected the payment request', {
        providerCode: 'invalid_api_request_parameters',
        providerMessage: msg,
      });
    expect(isStaleIpnRejection(refused('Invalid IPN URL ID provided.Check format and try again'))).toBe(true);
    expect(isStaleIpnRejection(refused('Currency KES is not enabled'))).toBe(false);
    expect(
      isStaleIpnRejection(
        new ProviderError('pesapal', 'unavailable', 'Invalid IPN URL ID', {
          providerMessage: 'Invalid IPN URL ID provided',
        }),
      ),
    ).toBe(false);
    expect(isStaleIpnRejection(new Error('Invalid IPN URL ID provided'))).toBe(false);
    expect(isStaleIpnRejection(undefined)).toBe(false);
  });

  it('acknowledges as processed only what was confirmed with Pesapal and recorded, answered by a lookup of the same payment, left stored for one, or final', () => {
    const processed = Object.keys(IPN_OUTCOMES)
      .filter((k) => ipnProcessed(k as keyof typeof IPN_OUTCOMES))
      .sort();
    expect(processed).toEqual([
      'answered',
      'applied',
      'deferred',
      'duplicate',
      'failed_reversed',
      'final',
      'ignored',
      'linked',
      'pending',
      'reversal_recorded',
      'review',
    ]);
    for (const o of [
      'invalid_shape',
      'unknown_payment',
      'mismatch_ignored',
      'unknown_status',
      'status_failed',
      'error',
    ] as const)
      expect(ipnProcessed(o)).toBe(false);
  });

  it('envelope round-trips GET and POST notifications verbatim and rejects anything else', () => {
    const post = encodeEnvelope('POST', {}, '{"OrderTrackingId":"a"}');
    expect(decodeEnvelope(post)).toEqual({ v: 1, method: 'POST', query: {}, body: '{"OrderTrackingId":"a"}' });
    expect(decodeEnvelope(encodeEnvelope('GET', { OrderTrackingId: 'a' }, ''))).toEqual({
      v: 1,
      method: 'GET',
      query: { OrderTrackingId: 'a' },
      body: '',
    });
    expect(decodeEnvelope('{"Body":{"stkCallback":{}}}')).toBeNull();
    expect(decodeEnvelope('not json')).toBeNull();
    expect(decodeEnvelope('{"v":1,"method":"GET","query":[1],"body":""}')).toEqual({
      v: 1,
      method: 'GET',
      query: {},
      body: '',
    });
  });

  it('statusCodeOf / isCancelledAtPesapal read the raw status answer', () => {
    expect(statusCodeOf({ status_code: 1 })).toBe('1');
    expect(statusCodeOf({ status_code: '3' })).toBe('3');
    expect(statusCodeOf({ status_code: 'x' })).toBeNull();
    expect(statusCodeOf(null)).toBeNull();
    expect(
      isCancelledAtPesapal({
        status_code: 0,
        error: { code: 'payment_details_not_found', message: 'Order Cancelled' },
      }),
    ).toBe(true);
    expect(
      isCancelledAtPesapal({
        status_code: 0,
        error: { code: 'payment_details_not_found', message: 'Pending Payment' },
      }),
    ).toBe(false);
    expect(isCancelledAtPesapal({ status_code: 2, description: 'cancelled by issuer' })).toBe(false);
  });

  it('posReturnLocation keeps the POS URL’s own query and sets ours', () => {
    const loc = new URL(
      posReturnLocation('https://pos.example/back?till=3&status=old', {
        paymentId: 'p1',
        orderId: 'O&1',
        status: 'completed',
      }),
    );
    expect(Object.fromEntries(loc.searchParams)).toEqual({
      till: '3',
      status: 'completed',
      paymentId: 'p1',
      orderId: 'O&1',
    });
  });

  it('resultPage escapes everything it shows', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
    const html = resultPage({
      paymentId: 'p"1',
      orderId: '<b>O</b>',
      status: 'completed',
      amountMinor: 245050n,
      currency: 'KES',
    });
    expect(html).toContain('Payment received');
    expect(html).toContain('KES 2450.50');
    expect(html).toContain('&lt;b&gt;O&lt;/b&gt;');
    expect(html).not.toContain('<b>O</b>');
    expect(resultPage(null, { title: '<x>', text: 'y' })).toContain('<h1>&lt;x&gt;</h1>');
  });
});

describe('PesapalProvider.forgetIpn (added for stale IPN ids)', () => {
  const fake = new FakeProviderServer();
  const URL_ = 'https://pos.example.co.ke/payments/pesapal/callback';
  beforeAll(() => fake.start());
  afterAll(() => fake.close());

  it('makes the next ensureIpn ask Pesapal again instead of handing out the cached id', async () => {
    fake.on('POST', P.token, () => ({
      status: 200,
      body: { token: 'tok', expiryDate: new Date(Date.now() + 3_600_000).toISOString(), error: null, status: '200' },
    }));
    let listed: unknown[] = [{ url: URL_, ipn_id: 'old-id', error: null, status: '200' }];
    fake.on('GET', P.ipnList, () => ({ status: 200, body: listed }));
    const p = new PesapalProvider({
      baseUrl: fake.baseUrl,
      consumerKey: 'key-0001',
      consumerSecret: 'secret-0001',
      timeoutMs: 2000,
    });
    expect((await p.ensureIpn(URL_)).ipnId).toBe('old-id');
    listed = [{ url: URL_, ipn_id: 'new-id', error: null, status: '200' }];
    expect((await p.ensureIpn(URL_)).ipnId).toBe('old-id');
    p.forgetIpn(URL_);
    expect((await p.ensureIpn(URL_)).ipnId).toBe('new-id');
    expect(fake.count('GET', P.ipnList)).toBe(2);
  });
});
