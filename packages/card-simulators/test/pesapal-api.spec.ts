import { startPesapalSimulator, type PesapalSimulator } from '../src';
import {
  call,
  jsonInit,
  manualClock,
  orderBody,
  pesapal,
  PESAPAL_KEY,
  PESAPAL_SECRET,
  pesapalToken,
  uniqueRef,
} from './helpers';

const CALLBACK = 'https://pos.example.co.ke/payments/pesapal/return';
// Port 9 refuses connections: IPNs of these tests fail fast and never leave the machine.
const IPN_URL = 'http://127.0.0.1:9/webhooks/pesapal/ipn';

describe('Pesapal API 3.0: token', () => {
  const clock = manualClock();
  let sim: PesapalSimulator;

  beforeAll(async () => {
    sim = await startPesapalSimulator({ now: clock.now });
  });
  afterAll(async () => {
    await sim.close();
  });
  beforeEach(() => sim.reset({ full: true }));

  it('RequestToken returns a JWT, a .NET UTC expiryDate 5 minutes ahead and status "200" (string)', async () => {
    const res = await call(
      `${sim.url}/api/Auth/RequestToken`,
      jsonInit('POST', { consumer_key: PESAPAL_KEY, consumer_secret: PESAPAL_SECRET }),
    );
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ error: null, status: '200', message: 'Request processed successfully' });
    expect(res.json.token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(res.json.expiryDate).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$/);
    expect(Date.parse(res.json.expiryDate) - clock.now().getTime()).toBe(300_000);
    const claims = JSON.parse(Buffer.from(res.json.token.split('.')[1], 'base64url').toString('utf8'));
    expect(claims.exp - claims.iat).toBe(300);
  });

  it('wrong credentials: HTTP 200 with an error object, code set and message EMPTY', async () => {
    const res = await call(
      `${sim.url}/api/Auth/RequestToken`,
      jsonInit('POST', { consumer_key: PESAPAL_KEY, consumer_secret: 'wrong' }),
    );
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      error: { error_type: 'api_error', code: 'invalid_consumer_key_or_secret_provided', message: '' },
      status: '500',
    });
  });

  it('a Basic Authorization header on RequestToken makes it fail (the audit trap); the option can turn that off', async () => {
    const init = jsonInit(
      'POST',
      { consumer_key: PESAPAL_KEY, consumer_secret: PESAPAL_SECRET },
      { Authorization: `Basic ${Buffer.from(`${PESAPAL_KEY}:${PESAPAL_SECRET}`).toString('base64')}` },
    );
    const res = await call(`${sim.url}/api/Auth/RequestToken`, init);
    expect(res.json.error.code).toBe('invalid_consumer_key_or_secret_provided');
    sim.configure({ rejectAuthorizationHeaderOnToken: false });
    expect((await call(`${sim.url}/api/Auth/RequestToken`, init)).json.status).toBe('200');
  });

  it('tokens expire after tokenTtlSeconds: the next call gets 401 invalid_api_credentials_provided', async () => {
    const token = await pesapalToken(sim.url);
    expect((await pesapal(sim.url, token, '/api/URLSetup/GetIpnList')).status).toBe(200);
    clock.advance(299_000);
    expect((await pesapal(sim.url, token, '/api/URLSetup/GetIpnList')).status).toBe(200);
    clock.advance(1_000);
    const expired = await pesapal(sim.url, token, '/api/URLSetup/GetIpnList');
    expect(expired.status).toBe(401);
    expect(expired.json).toEqual({
      error: {
        error_type: 'authentication_error',
        code: 'invalid_api_credentials_provided',
        message: 'Invalid Access Token',
      },
    });
    expect((await pesapal(sim.url, null, '/api/URLSetup/GetIpnList')).status).toBe(401);
    expect((await pesapal(sim.url, 'not-a-token', '/api/URLSetup/GetIpnList')).status).toBe(401);
  });

  it('invalidateTokens() (or the one-shot fault) kills every issued token', async () => {
    const token = await pesapalToken(sim.url);
    sim.setFaults({ invalidateTokens: true });
    expect((await pesapal(sim.url, token, '/api/URLSetup/GetIpnList')).status).toBe(401);
    expect(sim.faults()).toEqual({});
    const fresh = await pesapalToken(sim.url);
    sim.invalidateTokens();
    expect((await pesapal(sim.url, fresh, '/api/URLSetup/GetIpnList')).status).toBe(401);
  });
});

describe('Pesapal API 3.0: IPN registration, orders, status, cancel, refund', () => {
  let sim: PesapalSimulator;
  let token: string;
  let ipnId: string;

  beforeAll(async () => {
    sim = await startPesapalSimulator();
  });
  afterAll(async () => {
    await sim.close();
  });
  beforeEach(async () => {
    sim.reset({ full: true });
    token = await pesapalToken(sim.url);
    const reg = await pesapal(sim.url, token, '/api/URLSetup/RegisterIPN', {
      url: IPN_URL,
      ipn_notification_type: 'POST',
    });
    ipnId = reg.json.ipn_id;
  });

  async function submit(
    id: string,
    overrides: Record<string, unknown> = {},
  ): Promise<{ order_tracking_id: string; merchant_reference: string; redirect_url: string }> {
    const res = await pesapal(
      sim.url,
      token,
      '/api/Transactions/SubmitOrderRequest',
      orderBody(id, ipnId, CALLBACK, overrides),
    );
    if (res.json.status !== '200') throw new Error(res.text);
    return res.json;
  }

  function status(trackingId: string): ReturnType<typeof pesapal> {
    return pesapal(sim.url, token, `/api/Transactions/GetTransactionStatus?orderTrackingId=${trackingId}`);
  }

  it('RegisterIPN answers the recorded sandbox shape; GetIpnList is an array of documented fields', async () => {
    const reg = await pesapal(sim.url, token, '/api/URLSetup/RegisterIPN', {
      url: 'https://pos.example.co.ke/ipn-get',
      ipn_notification_type: 'GET',
    });
    expect(reg.status).toBe(200);
    expect(reg.json).toMatchObject({
      url: 'https://pos.example.co.ke/ipn-get',
      notification_type: 0,
      ipn_notification_type_description: 'GET',
      ipn_status: 1,
      ipn_status_decription: 'Active',
      error: null,
      status: '200',
    });
    expect(reg.json.ipn_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(typeof reg.json.id).toBe('number');
    expect(reg.json.created_date).toMatch(/Z$/);

    const list = await pesapal(sim.url, token, '/api/URLSetup/GetIpnList');
    expect(Array.isArray(list.json)).toBe(true);
    expect(list.json).toHaveLength(2);
    expect(Object.keys(list.json[1]).sort()).toEqual(['created_date', 'error', 'ipn_id', 'status', 'url']);
    expect(list.json[1]).toMatchObject({
      url: 'https://pos.example.co.ke/ipn-get',
      ipn_id: reg.json.ipn_id,
      status: '200',
    });
  });

  it.each([
    [{ url: '' }, 'url is required'],
    [{ url: 'localhost/ipn' }, 'Invalid IPN URL provided. Use an absolute http(s) URL'],
    [{ ipn_notification_type: 'PUT' }, 'ipn_notification_type must be GET or POST'],
    [{ ipn_notification_type: undefined }, 'ipn_notification_type is required (GET or POST)'],
  ])('RegisterIPN %j → HTTP 200 with error object "%s"', async (override, message) => {
    const res = await pesapal(sim.url, token, '/api/URLSetup/RegisterIPN', {
      url: IPN_URL,
      ipn_notification_type: 'POST',
      ...override,
    });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      error: { error_type: 'invalid_request_error', code: 'invalid_api_request_parameters', message },
      status: '500',
    });
    expect(sim.ipnRegistrations()).toHaveLength(1);
  });

  it('SubmitOrderRequest returns order_tracking_id + merchant_reference + redirect_url', async () => {
    const res = await pesapal(
      sim.url,
      token,
      '/api/Transactions/SubmitOrderRequest',
      orderBody('NBI01-000123-A1', ipnId, CALLBACK),
    );
    expect(res.status).toBe(200);
    expect(Object.keys(res.json).sort()).toEqual([
      'error',
      'merchant_reference',
      'order_tracking_id',
      'redirect_url',
      'status',
    ]);
    expect(res.json).toMatchObject({ merchant_reference: 'NBI01-000123-A1', error: null, status: '200' });
    expect(res.json.redirect_url).toBe(
      `${sim.url}/pesapaliframe/PesapalIframe3/Index?OrderTrackingId=${res.json.order_tracking_id}`,
    );
    expect(sim.getOrder('NBI01-000123-A1')).toMatchObject({
      amountMinor: 245000n,
      currency: 'KES',
      state: 'pending',
      statusCode: 0,
      branch: 'Nairobi CBD',
    });
  });

  it.each([
    [{ billing_address: undefined }, 'missing_mandatory_billing_address'],
    [
      { billing_address: { email_address: '', phone_number: '', country_code: 'KE' } },
      'missing_mandatory_billing_address',
    ],
    [{ notification_id: '00000000-0000-0000-0000-000000000000' }, 'invalid_api_request_parameters'],
    [{ id: 'x'.repeat(51) }, 'invalid_api_request_parameters'],
    [{ id: 'has spaces' }, 'invalid_api_request_parameters'],
    [{ description: 'd'.repeat(101) }, 'invalid_api_request_parameters'],
    [{ amount: 10.005 }, 'invalid_api_request_parameters'],
    [{ amount: '100.00' }, 'invalid_api_request_parameters'],
    [{ amount: 0 }, 'invalid_api_request_parameters'],
    [{ currency: 'USD' }, 'invalid_api_request_parameters'],
    [{ callback_url: 'nope' }, 'invalid_api_request_parameters'],
    [{ redirect_mode: 'NEW_TAB' }, 'invalid_api_request_parameters'],
  ])('SubmitOrderRequest %j → HTTP 200, status "500", code %s, nothing created', async (override, code) => {
    const res = await pesapal(
      sim.url,
      token,
      '/api/Transactions/SubmitOrderRequest',
      orderBody(uniqueRef('ORD'), ipnId, CALLBACK, override),
    );
    expect(res.status).toBe(200);
    expect(res.json.status).toBe('500');
    expect(res.json.error.code).toBe(code);
    expect(res.json.error.message.length).toBeGreaterThan(0);
    expect(sim.orders()).toHaveLength(0);
  });

  it('an unknown notification_id gives the observed message; a reused merchant id is refused', async () => {
    const bad = await pesapal(
      sim.url,
      token,
      '/api/Transactions/SubmitOrderRequest',
      orderBody('REF-1', 'not-registered', CALLBACK),
    );
    expect(bad.json.error.message).toBe('Invalid IPN URL ID provided.Check format and try again');
    await submit('REF-1');
    const dup = await pesapal(
      sim.url,
      token,
      '/api/Transactions/SubmitOrderRequest',
      orderBody('REF-1', ipnId, CALLBACK),
    );
    expect(dup.json.status).toBe('500');
    expect(dup.json.error.message).toMatch(/already been used/);
    expect(sim.orders()).toHaveLength(1);
  });

  it('GetTransactionStatus while unpaid: HTTP 200, status "500", status_code 0 INVALID, "Pending Payment"', async () => {
    const order = await submit('ST-0');
    const res = await status(order.order_tracking_id);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({
      payment_method: '',
      amount: 2450,
      confirmation_code: '',
      order_tracking_id: order.order_tracking_id,
      payment_status_description: 'INVALID',
      description: null,
      payment_account: '',
      status_code: 0,
      merchant_reference: 'ST-0',
      payment_status_code: '',
      currency: 'KES',
      status: '500',
    });
    expect(res.json.error).toEqual({
      error_type: 'api_error',
      code: 'payment_details_not_found',
      message: 'Pending Payment',
      call_back_url: res.json.call_back_url,
    });
    expect(res.json.call_back_url).toBe(
      `${CALLBACK}?OrderTrackingId=${order.order_tracking_id}&OrderMerchantReference=ST-0`,
    );
    expect(res.json.created_date).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?$/); // EAT wall clock, no zone
  });

  it('GetTransactionStatus after payment: status_code 1 Completed, confirmation code, null error fields, status "200"', async () => {
    const order = await submit('ST-1', { amount: 2450.5 });
    await sim.complete(order.order_tracking_id, { outcome: 'completed', paymentMethod: 'Visa' });
    const res = await status(order.order_tracking_id);
    expect(res.json).toMatchObject({
      payment_method: 'Visa',
      amount: 2450.5,
      payment_status_description: 'Completed',
      status_code: 1,
      payment_account: '476173**0010',
      currency: 'KES',
      error: { error_type: null, code: null, message: null, call_back_url: null },
      status: '200',
    });
    expect(res.json.confirmation_code).toMatch(/^\d{22}$/);
    // created_date is the payment time on the East Africa wall clock (UTC+3), without a zone designator
    const paidAt = sim.getOrder('ST-1')!.paidAt!;
    const parts = Object.fromEntries(
      new Intl.DateTimeFormat('en-GB', {
        timeZone: 'Africa/Nairobi',
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
        hourCycle: 'h23',
      })
        .formatToParts(paidAt)
        .map((p) => [p.type, p.value]),
    );
    expect(res.json.created_date.slice(0, 19)).toBe(
      `${parts['year']}-${parts['month']}-${parts['day']}T${parts['hour']}:${parts['minute']}:${parts['second']}`,
    );
  });

  it('status_code 2 FAILED with a description, 3 REVERSED after reverse(); "upper" style upper-cases descriptions', async () => {
    const a = await submit('ST-2');
    await sim.complete(a.order_tracking_id, { outcome: 'failed', paymentMethod: 'Mpesa' });
    expect((await status(a.order_tracking_id)).json).toMatchObject({
      status_code: 2,
      payment_status_description: 'Failed',
      description: 'Insufficient funds',
      status: '200',
    });
    const b = await submit('ST-3');
    await sim.complete(b.order_tracking_id, 'completed');
    await sim.reverse(b.order_tracking_id);
    expect((await status(b.order_tracking_id)).json).toMatchObject({
      status_code: 3,
      payment_status_description: 'Reversed',
    });
    sim.configure({ statusDescriptionStyle: 'upper' });
    expect((await status(b.order_tracking_id)).json.payment_status_description).toBe('REVERSED');
    await expect(sim.reverse(a.order_tracking_id)).rejects.toMatchObject({ kind: 'conflict' });
  });

  it('GetTransactionStatus: unknown / missing orderTrackingId → error body; lookups by merchant reference do not exist', async () => {
    const unknown = await status('96a5e1d9-f711-4423-82ce-dd758f972713');
    expect(unknown.status).toBe(200);
    expect(unknown.json).toMatchObject({ status: '500', error: { code: 'payment_details_not_found' } });
    const order = await submit('BYREF-1');
    expect((await status('BYREF-1')).json.status).toBe('500');
    expect((await status(order.order_tracking_id)).json.merchant_reference).toBe('BYREF-1');
    const missing = await pesapal(sim.url, token, '/api/Transactions/GetTransactionStatus');
    expect(missing.json.error.code).toBe('invalid_api_request_parameters');
  });

  it('CancelOrder: pending orders only, once; the page and complete() refuse it afterwards', async () => {
    const order = await submit('CAN-1');
    const res = await pesapal(sim.url, token, '/api/Transactions/CancelOrder', {
      order_tracking_id: order.order_tracking_id,
    });
    expect(res.json).toEqual({ status: '200', message: 'Order successfully cancelled.' });
    const again = await pesapal(sim.url, token, '/api/Transactions/CancelOrder', {
      order_tracking_id: order.order_tracking_id,
    });
    expect(again.json.status).toBe('500');
    expect((await status(order.order_tracking_id)).json).toMatchObject({
      status_code: 0,
      status: '500',
      error: { message: 'Order Cancelled' },
    });
    await expect(sim.complete(order.order_tracking_id, 'completed')).rejects.toMatchObject({ kind: 'conflict' });
    expect((await call(order.redirect_url)).status).toBe(410);

    const paid = await submit('CAN-2');
    await sim.complete('CAN-2', 'completed');
    const refused = await pesapal(sim.url, token, '/api/Transactions/CancelOrder', {
      order_tracking_id: paid.order_tracking_id,
    });
    expect(refused.json.status).toBe('500');
    expect(sim.getOrder('CAN-2')?.state).toBe('completed');
  });

  it('RefundRequest: completed only, ≤ paid, mobile money in full only, one per payment; approval → REVERSED', async () => {
    const card = await submit('RF-1', { amount: 1000 });
    await sim.complete(card.order_tracking_id, { outcome: 'completed', paymentMethod: 'Visa' });
    const code = sim.getOrder('RF-1')!.confirmationCode;
    const refund = (body: Record<string, unknown>): ReturnType<typeof pesapal> =>
      pesapal(sim.url, token, '/api/Transactions/RefundRequest', {
        confirmation_code: code,
        amount: '100.00',
        username: 'cashier-7',
        remarks: 'wrong item',
        ...body,
      });

    expect((await refund({ amount: '1000.01' })).json).toMatchObject({ status: '500' });
    expect((await refund({ username: '' })).json).toEqual({ status: '500', message: 'username is required' });
    expect((await refund({ confirmation_code: 'NOPE' })).json.status).toBe('500');
    expect((await refund({})).json).toEqual({ status: '200', message: 'Refund request successfully' });
    expect((await refund({})).json.message).toMatch(/only one refund/);
    expect(sim.getOrder('RF-1')?.refund).toMatchObject({
      amountMinor: 10000n,
      state: 'pending',
      username: 'cashier-7',
    });
    expect((await status(card.order_tracking_id)).json.status_code).toBe(1); // 200 means "received", not "refunded"
    await sim.decideRefund('RF-1', 'approve');
    expect((await status(card.order_tracking_id)).json.status_code).toBe(3);

    const momo = await submit('RF-2', { amount: 500 });
    await sim.complete(momo.order_tracking_id, { outcome: 'completed', paymentMethod: 'Mpesa' });
    const momoCode = sim.getOrder('RF-2')!.confirmationCode;
    expect(momoCode).toMatch(/^[A-Z]{2}[A-Z0-9]{8}$/);
    const partial = await pesapal(sim.url, token, '/api/Transactions/RefundRequest', {
      confirmation_code: momoCode,
      amount: 100,
      username: 'u',
      remarks: 'r',
    });
    expect(partial.json).toEqual({ status: '500', message: 'Mobile money payments can only be refunded in full' });
    const full = await pesapal(sim.url, token, '/api/Transactions/RefundRequest', {
      confirmation_code: momoCode,
      amount: 500,
      username: 'u',
      remarks: 'r',
    });
    expect(full.json.status).toBe('200');
    await sim.decideRefund('RF-2', 'reject');
    expect(sim.getOrder('RF-2')).toMatchObject({ state: 'completed', refund: { state: 'rejected' } });

    const pending = await submit('RF-3');
    expect(pending.order_tracking_id).toBeTruthy();
    const onPending = await pesapal(sim.url, token, '/api/Transactions/RefundRequest', {
      confirmation_code: '',
      amount: 1,
      username: 'u',
      remarks: 'r',
    });
    expect(onPending.json).toEqual({ status: '500', message: 'confirmation_code is required' });
  });

  it('paths: /pesapalv3 prefix and any casing (ASP.NET); wrong verb 405 and unknown resource 404 in ASP.NET shape', async () => {
    const prefixed = await call(
      `${sim.url}/pesapalv3/api/auth/requesttoken`,
      jsonInit('POST', { consumer_key: PESAPAL_KEY, consumer_secret: PESAPAL_SECRET }),
    );
    expect(prefixed.json.status).toBe('200');
    const live = await pesapal(sim.url, token, '/v3/api/URLSetup/GetIpnList');
    expect(live.status).toBe(200);
    const verb = await call(
      `${sim.url}/api/Transactions/GetTransactionStatus?orderTrackingId=x`,
      jsonInit('POST', {}, { Authorization: `Bearer ${token}` }),
    );
    expect(verb.status).toBe(405);
    expect(verb.json.Message).toMatch(/does not support http method 'POST'/);
    const none = await pesapal(sim.url, token, '/api/Transactions/GetAllTheMoney');
    expect(none.status).toBe(404);
    expect(none.json.Message).toMatch(/No HTTP resource was found/);
  });

  it('non-JSON bodies are refused in the body, not with an HTTP error', async () => {
    const res = await call(`${sim.url}/api/Transactions/SubmitOrderRequest`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'id=1&amount=10',
    });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ status: '500', error: { code: 'invalid_api_request_parameters' } });
  });
});
