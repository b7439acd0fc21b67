import { callbackToken } from './callback-token';
import { ProviderError } from '../provider-errors';
import { CallbackShapeError } from './mpesa.errors';
import { captureLogs, FakeDaraja, makeService, PUSH_PATH, QUERY_PATH, SIGNING_SECRET } from './fake-daraja.testing';
import { MpesaProvider } from './mpesa.provider';

const CHECKOUT_ID = 'ws_CO_26112026101500123456';

describe('MpesaProvider (M-Pesa behind the provider contract)', () => {
  let fake: FakeDaraja;
  let logs: ReturnType<typeof captureLogs>;
  let provider: MpesaProvider;

  beforeEach(async () => {
    logs = captureLogs();
    fake = new FakeDaraja();
    await fake.start();
    provider = new MpesaProvider(makeService(fake.baseUrl));
  });
  afterEach(async () => {
    logs.restore();
    await fake.close();
  });

  it('declares what M-Pesa can do', () => {
    expect(provider.capabilities).toEqual({
      currencies: ['KES'],
      fractionalAmounts: false,
      refunds: 'none',
      notification: 'callback',
      hostedCheckout: false,
    });
  });

  it("initiate sends one STK push in whole shillings to the payment's capability URL and returns the CheckoutRequestID", async () => {
    fake.push = () => ({
      status: 200,
      body: {
        MerchantRequestID: 'm-1',
        CheckoutRequestID: CHECKOUT_ID,
        ResponseCode: '0',
        ResponseDescription: 'Success. Request accepted for processing',
        CustomerMessage: 'Success. Request accepted for processing',
      },
    });
    const r = await provider.initiate({
      paymentId: 'pay-1',
      reference: 'ORD1',
      amountMinor: 15000n,
      currency: 'KES',
      description: 'POS payment',
      customer: { phoneNumber: '0712345678' },
    });
    expect(r.providerRef).toBe(CHECKOUT_ID);
    // Daraja's answer in the contract's own fields (the service never reads `raw`).
    expect(r).toMatchObject({
      providerRequestId: 'm-1',
      providerCode: '0',
      description: 'Success. Request accepted for processing',
      customerMessage: 'Success. Request accepted for processing',
    });
    expect(r.redirectUrl).toBeUndefined();
    const [req] = fake.of(PUSH_PATH);
    expect(req.json).toMatchObject({
      Amount: 150,
      PhoneNumber: '254712345678',
      AccountReference: 'ORD1',
      TransactionDesc: 'POS payment',
    });
    expect(req.json.CallBackURL).toBe(
      `https://pay.example.com/payments/callback/pay-1/${callbackToken(SIGNING_SECRET, 'pay-1')}`,
    );
  });

  it.each([
    [15050n, 'KES', /whole shillings/],
    [0n, 'KES', /whole shillings/],
    [15000n, 'USD', /KES only/],
  ])('refuses %p %s before calling Daraja', async (amountMinor, currency, message) => {
    await expect(
      provider.initiate({
        paymentId: 'p',
        reference: 'R',
        amountMinor,
        currency,
        description: 'd',
        customer: { phoneNumber: '0712345678' },
      }),
    ).rejects.toThrow(message);
    expect(fake.of(PUSH_PATH)).toHaveLength(0);
  });

  it.each([
    [
      {
        status: 500,
        body: { requestId: CHECKOUT_ID, errorCode: '500.001.1001', errorMessage: 'The transaction is being processed' },
      },
      'pending',
      '500.001.1001',
    ],
    [
      {
        status: 500,
        body: { requestId: CHECKOUT_ID, errorCode: '500.001.1001', errorMessage: 'The transaction does not Exist' },
      },
      'not_found',
      '500.001.1001',
    ],
    [
      {
        status: 200,
        body: {
          ResponseCode: '0',
          ResponseDescription: 'ok',
          MerchantRequestID: 'm',
          CheckoutRequestID: CHECKOUT_ID,
          ResultCode: '0',
          ResultDesc: 'The service request is processed successfully.',
        },
      },
      'completed',
      '0',
    ],
    [
      {
        status: 200,
        body: {
          ResponseCode: '0',
          ResponseDescription: 'ok',
          MerchantRequestID: 'm',
          CheckoutRequestID: CHECKOUT_ID,
          ResultCode: '1032',
          ResultDesc: 'Request cancelled by user',
        },
      },
      'cancelled',
      '1032',
    ],
    [
      {
        status: 200,
        body: {
          ResponseCode: '0',
          ResponseDescription: 'ok',
          MerchantRequestID: 'm',
          CheckoutRequestID: CHECKOUT_ID,
          ResultCode: '1037',
          ResultDesc: 'DS timeout user cannot be reached',
        },
      },
      'expired',
      '1037',
    ],
    [
      {
        status: 200,
        body: {
          ResponseCode: '0',
          ResponseDescription: 'ok',
          MerchantRequestID: 'm',
          CheckoutRequestID: CHECKOUT_ID,
          ResultCode: '1',
          ResultDesc: 'The balance is insufficient for the transaction.',
        },
      },
      'failed',
      '1',
    ],
  ])("fetchStatus maps Daraja's answer %#", async (reply, status, code) => {
    fake.query = () => reply;
    const s = await provider.fetchStatus({ reference: 'ORD1', providerRef: CHECKOUT_ID });
    expect(s).toMatchObject({ status, providerCode: code, providerRef: CHECKOUT_ID });
    expect(s.providerRequestId).toBe(status === 'pending' || status === 'not_found' ? undefined : 'm');
    expect(s.amountMinor).toBeUndefined(); // an STK query carries no amount
    expect(fake.of(QUERY_PATH)[0].json.CheckoutRequestID).toBe(CHECKOUT_ID);
  });

  it('fetchStatus needs the CheckoutRequestID', async () => {
    await expect(provider.fetchStatus({ reference: 'ORD1' })).rejects.toThrow(/CheckoutRequestID/);
  });

  it('parseNotification verifies the capability token in the URL, never the body', () => {
    const body = {
      Body: {
        stkCallback: {
          MerchantRequestID: 'm',
          CheckoutRequestID: CHECKOUT_ID,
          ResultCode: 1032,
          ResultDesc: 'Request cancelled by user',
        },
      },
    };
    const good = provider.parseNotification({
      headers: {},
      query: {},
      params: { paymentId: 'pay-1', token: callbackToken(SIGNING_SECRET, 'pay-1') },
      body,
    });
    expect(good).toMatchObject({
      verified: true,
      providerRef: CHECKOUT_ID,
      providerRequestId: 'm',
      report: { status: 'cancelled', providerCode: '1032', description: 'Request cancelled by user' },
    });
    expect(good.report.paid).toBeUndefined();
    expect(
      provider.parseNotification({
        headers: {},
        query: {},
        params: { paymentId: 'pay-2', token: callbackToken(SIGNING_SECRET, 'pay-1') },
        body,
      }).verified,
    ).toBe(false);
    expect(() => provider.parseNotification({ headers: {}, query: {}, body: { Body: {} } })).toThrow(
      CallbackShapeError,
    );
  });

  it.each([
    [150, { amountMinor: 15000n, receipt: 'NLJ7RT61SV', transactionDate: '20191219102115' }],
    // Not whole shillings: no amount the lifecycle could match (the payment goes to review, never paid).
    [150.5, { amountMinor: undefined, receipt: 'NLJ7RT61SV', transactionDate: '20191219102115' }],
  ])("parseNotification reports a success's CallbackMetadata (Amount %p) in minor units", (amount, paid) => {
    const body = {
      Body: {
        stkCallback: {
          MerchantRequestID: 'm',
          CheckoutRequestID: CHECKOUT_ID,
          ResultCode: 0,
          ResultDesc: 'The service request is processed successfully.',
          CallbackMetadata: {
            Item: [
              { Name: 'Amount', Value: amount },
              { Name: 'MpesaReceiptNumber', Value: 'NLJ7RT61SV' },
              { Name: 'TransactionDate', Value: 20191219102115 },
              { Name: 'PhoneNumber', Value: 254708374149 },
            ],
          },
        },
      },
    };
    const n = provider.parseNotification({ headers: {}, query: {}, body });
    expect(n.report).toEqual({
      status: 'completed',
      providerCode: '0',
      description: 'The service request is processed successfully.',
      paid,
    });
    // Without CallbackMetadata a success carries nothing to check: no `paid` (the service confirms it by query).
    const bare = { Body: { stkCallback: { ...body.Body.stkCallback, CallbackMetadata: undefined } } };
    expect(provider.parseNotification({ headers: {}, query: {}, body: bare }).report.paid).toBeUndefined();
  });

  it("initiate and fetchStatus throw ProviderErrors (the contract), not Daraja's own classes", async () => {
    fake.push = () => ({
      status: 500,
      body: {
        requestId: 'r-1',
        errorCode: '500.001.1001',
        errorMessage: 'Unable to lock subscriber, a transaction is already in process for the current subscriber',
      },
    });
    const push = await provider
      .initiate({
        paymentId: 'p',
        reference: 'R',
        amountMinor: 100n,
        currency: 'KES',
        description: 'd',
        customer: { phoneNumber: '0712345678' },
      })
      .catch((e) => e);
    expect(push).toBeInstanceOf(ProviderError);
    expect(push).toMatchObject({
      code: 'CUSTOMER_BUSY',
      statusCode: 409,
      outcome: 'not_processed',
      providerCode: '500.001.1001',
      headers: { 'Retry-After': '60' },
    });
    fake.query = () => ({ status: 503, body: '<html>down</html>' });
    const query = await provider.fetchStatus({ reference: 'R', providerRef: CHECKOUT_ID }).catch((e) => e);
    expect(query).toBeInstanceOf(ProviderError);
    expect(query).toMatchObject({ code: 'PROVIDER_UNAVAILABLE', statusCode: 502 });
  });

  it('refunds are declared unsupported', async () => {
    await expect(provider.refund()).resolves.toMatchObject({ status: 'not_supported' });
  });
});
