import { startPesapalSimulator, type PesapalSimulator } from '../src';
import {
  about,
  call,
  eventually,
  jsonInit,
  orderBody,
  pesapal,
  pesapalAck,
  PESAPAL_SECRET,
  pesapalToken,
  startReceiver,
  submitForm,
  type Receiver,
} from './helpers';

const CALLBACK = 'https://pos.example.co.ke/payments/pesapal/return?till=T2';

describe('Pesapal payment page → callback redirect + IPN', () => {
  let sim: PesapalSimulator;
  let receiver: Receiver;
  let token: string;
  let postIpn: string;
  let getIpn: string;

  beforeAll(async () => {
    receiver = await startReceiver();
    sim = await startPesapalSimulator();
  });
  afterAll(async () => {
    await sim.close();
    await receiver.close();
  });
  beforeEach(async () => {
    sim.reset({ full: true });
    receiver.answer((r) => pesapalAck(r));
    token = await pesapalToken(sim.url);
    postIpn = (
      await pesapal(sim.url, token, '/api/URLSetup/RegisterIPN', {
        url: `${receiver.url}/ipn/post`,
        ipn_notification_type: 'POST',
      })
    ).json.ipn_id;
    getIpn = (
      await pesapal(sim.url, token, '/api/URLSetup/RegisterIPN', {
        url: `${receiver.url}/ipn/get?branch=NBI01`,
        ipn_notification_type: 'GET',
      })
    ).json.ipn_id;
  });

  async function submit(
    id: string,
    ipnId: string,
    overrides: Record<string, unknown> = {},
  ): Promise<{ order_tracking_id: string; redirect_url: string }> {
    const res = await pesapal(
      sim.url,
      token,
      '/api/Transactions/SubmitOrderRequest',
      orderBody(id, ipnId, CALLBACK, overrides),
    );
    if (res.json.status !== '200') throw new Error(res.text);
    return res.json;
  }

  it('renders the page with merchant, amount, currency, stable ids and target=_top (or _parent)', async () => {
    const order = await submit('PAGE-1', postIpn, { amount: 1234.5 });
    const page = await call(order.redirect_url);
    expect(page.status).toBe(200);
    expect(page.text).toContain('<span id="currency">KES</span> <span id="amount">1,234.50</span>');
    expect(page.text).toContain('id="merchant">SmartDuka Test Shop<');
    expect(page.text).toContain('<p id="description">Duka POS receipt NBI01-000123</p>');
    expect(page.text).toContain('target="_top"');
    for (const id of ['pay', 'pending', 'decline', 'cancel', 'payment-method'])
      expect(page.text).toContain(`id="${id}"`);
    expect(page.text).not.toMatch(/<script/i);
    const parent = await submit('PAGE-2', postIpn, { redirect_mode: 'PARENT_WINDOW' });
    expect((await call(parent.redirect_url)).text).toContain('target="_parent"');
    expect((await call(`${sim.url}/pesapaliframe/PesapalIframe3/Index?OrderTrackingId=nope`)).status).toBe(404);
  });

  it('pay → 303 to callback_url + OrderTrackingId, OrderMerchantReference, OrderNotificationType=CALLBACKURL; POST IPN without status', async () => {
    const order = await submit('PAY-1', postIpn);
    const res = await submitForm(order.redirect_url, { outcome: 'completed', payment_method: 'Visa' });
    expect(res.status).toBe(303);
    const location = new URL(res.headers.get('location') ?? '');
    expect(`${location.origin}${location.pathname}`).toBe('https://pos.example.co.ke/payments/pesapal/return');
    expect(Object.fromEntries(location.searchParams)).toEqual({
      till: 'T2',
      OrderTrackingId: order.order_tracking_id,
      OrderMerchantReference: 'PAY-1',
      OrderNotificationType: 'CALLBACKURL',
    });

    const [ipn] = await receiver.waitFor(1, about(order.order_tracking_id));
    expect(ipn?.method).toBe('POST');
    expect(ipn?.path).toBe('/ipn/post');
    expect(ipn?.headers['content-type']).toBe('application/json');
    expect(ipn?.json).toEqual({
      OrderTrackingId: order.order_tracking_id,
      OrderMerchantReference: 'PAY-1',
      OrderNotificationType: 'IPNCHANGE',
    });
    for (const h of Object.keys(ipn?.headers ?? {})) expect(h).not.toMatch(/signature|hash|authorization/i); // not signed

    const [delivery] = await sim.waitForIpns(order.order_tracking_id);
    expect(delivery).toMatchObject({ acknowledged: true, problems: [], status: 200, event: 'IPNCHANGE' });
    const st = await pesapal(
      sim.url,
      token,
      `/api/Transactions/GetTransactionStatus?orderTrackingId=${order.order_tracking_id}`,
    );
    expect(st.json).toMatchObject({ status_code: 1, payment_method: 'Visa', merchant_reference: 'PAY-1' });
    expect((await call(order.redirect_url)).text).toContain('id="paid"');
    expect((await submitForm(order.redirect_url, { outcome: 'completed' })).status).toBe(409);
  });

  it('GET-registered IPN URLs receive the three identifiers in the query string (existing query kept)', async () => {
    const order = await submit('GET-1', getIpn);
    await submitForm(order.redirect_url, { outcome: 'completed', payment_method: 'Mpesa' });
    const [ipn] = await receiver.waitFor(1, about(order.order_tracking_id));
    expect(ipn?.method).toBe('GET');
    expect(ipn?.path).toBe('/ipn/get');
    expect(Object.fromEntries(ipn?.query ?? [])).toEqual({
      branch: 'NBI01',
      OrderTrackingId: order.order_tracking_id,
      OrderMerchantReference: 'GET-1',
      OrderNotificationType: 'IPNCHANGE',
    });
    expect(ipn?.raw).toBe('');
    expect((await sim.waitForIpns(order.order_tracking_id))[0]).toMatchObject({
      method: 'GET',
      body: null,
      acknowledged: true,
    });
  });

  it('decline → FAILED + IPN + callback; the customer can try again and pay (another IPN)', async () => {
    const order = await submit('DEC-1', postIpn);
    const res = await submitForm(order.redirect_url, { outcome: 'failed', payment_method: 'MasterCard' });
    expect(new URL(res.headers.get('location') ?? '').searchParams.get('OrderNotificationType')).toBe('CALLBACKURL');
    await receiver.waitFor(1, about(order.order_tracking_id));
    expect(sim.getOrder('DEC-1')).toMatchObject({ state: 'failed', statusCode: 2 });
    const page = await call(order.redirect_url);
    expect(page.text).toContain('id="error"');
    await submitForm(order.redirect_url, { outcome: 'completed', payment_method: 'MasterCard' });
    await receiver.waitFor(2, about(order.order_tracking_id));
    expect(sim.getOrder('DEC-1')).toMatchObject({ state: 'completed', statusCode: 1, paymentAccount: '553188**2950' });
  });

  it('pending (mobile money) → callback while still INVALID, no IPN; complete() later sends the IPN', async () => {
    const order = await submit('PEND-1', postIpn);
    const res = await submitForm(order.redirect_url, { outcome: 'pending', payment_method: 'Mpesa' });
    expect(res.status).toBe(303);
    expect(sim.stats().ipnsSent).toBe(0);
    const st = await pesapal(
      sim.url,
      token,
      `/api/Transactions/GetTransactionStatus?orderTrackingId=${order.order_tracking_id}`,
    );
    expect(st.json).toMatchObject({ status_code: 0, status: '500', payment_method: 'Mpesa' });
    expect(st.json.payment_account).toBe('0712****78');
    expect((await call(order.redirect_url)).text).toContain('id="awaiting"');

    await sim.complete('PEND-1', 'completed');
    await receiver.waitFor(1, about(order.order_tracking_id));
    expect(sim.getOrder('PEND-1')).toMatchObject({ statusCode: 1, paymentMethod: 'Mpesa' });
  });

  it('cancel → cancellation_url (or callback_url) with the identifiers; no status change, no IPN', async () => {
    const withUrl = await submit('CXL-1', postIpn, {
      cancellation_url: 'https://pos.example.co.ke/payments/pesapal/cancelled',
    });
    const res = await submitForm(withUrl.redirect_url, { outcome: 'cancelled' });
    const location = new URL(res.headers.get('location') ?? '');
    expect(`${location.origin}${location.pathname}`).toBe('https://pos.example.co.ke/payments/pesapal/cancelled');
    expect(location.searchParams.get('OrderTrackingId')).toBe(withUrl.order_tracking_id);
    const without = await submit('CXL-2', postIpn);
    const res2 = await submitForm(without.redirect_url, { outcome: 'cancelled' });
    expect(res2.headers.get('location')).toContain('/payments/pesapal/return');
    expect(sim.stats().ipnsSent).toBe(0);
    expect(sim.getOrder('CXL-1')).toMatchObject({ state: 'pending', statusCode: 0 });
  });

  it('rejects a bad form with 400 and changes nothing', async () => {
    const order = await submit('FORM-1', postIpn);
    expect((await submitForm(order.redirect_url, { outcome: 'refund-me' })).status).toBe(400);
    expect((await submitForm(order.redirect_url, { outcome: 'completed', payment_method: 'Bitcoin' })).status).toBe(
      400,
    );
    expect(sim.getOrder('FORM-1')?.state).toBe('pending');
  });

  it('judges the IPN acknowledgement: string "200" and missing echoes are warnings; status 500 is retried', async () => {
    sim.configure({ ipnRetry: { attempts: 2, intervalMs: 600_000 } });
    let n = 0;
    receiver.answer((r) => {
      n += 1;
      if (n === 1) return pesapalAck(r, 500);
      if (n === 2) return { status: 200, body: JSON.stringify({ status: '200' }) };
      return pesapalAck(r);
    });
    const order = await submit('ACK-1', postIpn);
    await sim.complete(order.order_tracking_id, 'completed');
    const [first] = await sim.waitForIpns(order.order_tracking_id);
    expect(first).toMatchObject({ attempt: 1, status: 200, acknowledged: false });
    expect(first?.problems[0]).toMatch(/status 500/);
    expect(sim.stats().ipnsScheduled).toBe(1);

    expect(sim.flushIpns()).toBe(1);
    const second = (await sim.waitForIpns(order.order_tracking_id, 2))[1];
    expect(second?.acknowledged).toBe(true);
    expect(second?.problems).toEqual(
      expect.arrayContaining([expect.stringMatching(/string "200"/), expect.stringMatching(/missing orderTrackingId/)]),
    );
    expect(sim.stats().ipnsScheduled).toBe(0);
  });

  it('an HTML or non-200 acknowledgement is not accepted', async () => {
    receiver.answer(() => ({ status: 200, body: '<html>ok</html>', headers: { 'Content-Type': 'text/html' } }));
    const a = await submit('ACK-2', postIpn);
    await sim.complete(a.order_tracking_id, 'completed');
    expect((await sim.waitForIpns(a.order_tracking_id))[0]?.problems).toEqual(['acknowledgement is not a JSON object']);
    receiver.answer(() => ({ status: 404, body: '' }));
    const b = await submit('ACK-3', postIpn);
    await sim.complete(b.order_tracking_id, 'completed');
    expect((await sim.waitForIpns(b.order_tracking_id))[0]).toMatchObject({ status: 404, acknowledged: false });
  });

  it('tamper: a payment lands with another amount/currency and GetTransactionStatus reports what was paid', async () => {
    const order = await submit('TAMP-1', postIpn, { amount: 2450 });
    sim.tamper('TAMP-1', { amount: 245 });
    await submitForm(order.redirect_url, { outcome: 'completed' });
    const st = await pesapal(
      sim.url,
      token,
      `/api/Transactions/GetTransactionStatus?orderTrackingId=${order.order_tracking_id}`,
    );
    expect(st.json).toMatchObject({ status_code: 1, amount: 245, currency: 'KES' });
    await receiver.waitFor(1, about(order.order_tracking_id));
    const other = await submit('TAMP-2', postIpn);
    await sim.complete('TAMP-2', { outcome: 'completed', currency: 'UGX' });
    const st2 = await pesapal(
      sim.url,
      token,
      `/api/Transactions/GetTransactionStatus?orderTrackingId=${other.order_tracking_id}`,
    );
    expect(st2.json).toMatchObject({ amount: 2450, currency: 'UGX' });
    await receiver.waitFor(1, about(other.order_tracking_id));
  });

  it('reverse() and an approved refund each send another IPN after COMPLETED', async () => {
    const order = await submit('REV-1', postIpn);
    await sim.complete(order.order_tracking_id, 'completed');
    await sim.reverse('REV-1');
    const ipns = await receiver.waitFor(2, about(order.order_tracking_id));
    expect(ipns.map((r) => r.json.OrderNotificationType)).toEqual(['IPNCHANGE', 'IPNCHANGE']);

    const refunded = await submit('REV-2', postIpn);
    await sim.complete(refunded.order_tracking_id, 'completed');
    const code = sim.getOrder('REV-2')!.confirmationCode;
    const req = await pesapal(sim.url, token, '/api/Transactions/RefundRequest', {
      confirmation_code: code,
      amount: 2450,
      username: 'cashier',
      remarks: 'returned',
    });
    expect(req.json.status).toBe('200');
    await receiver.waitFor(1, about(refunded.order_tracking_id));
    await sim.decideRefund('REV-2', 'approve');
    await receiver.waitFor(2, about(refunded.order_tracking_id));
    expect(sim.getOrder('REV-2')).toMatchObject({ state: 'reversed', statusCode: 3 });
  });
});

describe('Pesapal faults', () => {
  let sim: PesapalSimulator;
  let receiver: Receiver;
  let token: string;
  let ipnId: string;

  beforeAll(async () => {
    receiver = await startReceiver();
    sim = await startPesapalSimulator();
  });
  afterAll(async () => {
    await sim.close();
    await receiver.close();
  });
  beforeEach(async () => {
    sim.reset({ full: true });
    receiver.answer((r) => pesapalAck(r));
    token = await pesapalToken(sim.url);
    ipnId = (
      await pesapal(sim.url, token, '/api/URLSetup/RegisterIPN', {
        url: `${receiver.url}/ipn`,
        ipn_notification_type: 'POST',
      })
    ).json.ipn_id;
  });

  async function submit(id: string): Promise<{ order_tracking_id: string; redirect_url: string }> {
    const res = await pesapal(
      sim.url,
      token,
      '/api/Transactions/SubmitOrderRequest',
      orderBody(id, ipnId, 'https://pos.example.co.ke/return'),
    );
    return res.json;
  }

  it('IPN duplicates, drop and delay+flush', async () => {
    sim.setFaults({ ipns: { duplicates: 1 } });
    const a = await submit('F-1');
    await sim.complete('F-1', 'completed');
    const copies = await receiver.waitFor(2, about(a.order_tracking_id));
    expect(copies[0]?.raw).toBe(copies[1]?.raw);
    expect((await sim.waitForIpns(a.order_tracking_id, 2)).map((d) => d.duplicate)).toEqual([false, true]);

    sim.setFaults({ ipns: { drop: 1 } });
    await submit('F-2');
    await sim.complete('F-2', 'completed');
    expect(sim.stats().ipnsDropped).toBe(1);

    sim.setFaults({ ipns: { delayMs: 600_000 } });
    const c = await submit('F-3');
    await sim.complete('F-3', 'completed');
    expect(sim.stats().ipnsScheduled).toBe(1);
    expect(sim.ipns().filter((d) => d.ref === c.order_tracking_id)).toHaveLength(0);
    sim.flushIpns();
    await receiver.waitFor(1, about(c.order_tracking_id));
  });

  it('cloudflareBlocks: the next N API calls get an HTML 403 instead of JSON', async () => {
    sim.setFaults({ cloudflareBlocks: 2 });
    for (let i = 0; i < 2; i += 1) {
      const res = await pesapal(sim.url, token, '/api/URLSetup/GetIpnList');
      expect(res.status).toBe(403);
      expect(res.headers.get('content-type')).toContain('text/html');
      expect(res.headers.get('server')).toBe('cloudflare');
      expect(res.json).toBeUndefined();
      expect(res.text).toContain('Attention Required! | Cloudflare');
    }
    expect((await pesapal(sim.url, token, '/api/URLSetup/GetIpnList')).status).toBe(200);
  });

  it('down: API and payment page answer 503 HTML; the control API still works', async () => {
    const order = await submit('DOWN-1');
    sim.setFaults({ down: true });
    const api = await call(
      `${sim.url}/api/Auth/RequestToken`,
      jsonInit('POST', { consumer_key: 'k', consumer_secret: PESAPAL_SECRET }),
    );
    expect(api.status).toBe(503);
    expect(api.headers.get('content-type')).toContain('text/html');
    expect((await call(order.redirect_url)).status).toBe(503);
    expect((await call(`${sim.url}/__sim/state`)).json.faults).toEqual({ down: true });
    sim.setFaults({});
    expect((await call(order.redirect_url)).status).toBe(200);
  });

  it('canned errors: HTTP 200 with the error in the body (status "500"); refund/cancel use {status, message}', async () => {
    sim.setFaults({
      errors: {
        status: { count: 1, code: 'payment_details_not_found', message: 'Something went wrong' },
        cancel: { count: 1, code: 'x', message: 'Try later' },
        submit: { count: 1, code: 'server_error', message: 'Gateway timeout', httpStatus: 504 },
      },
    });
    const order = await submit('CE-0'); // consumes the submit fault
    expect(order).toEqual({
      error: { error_type: 'api_error', code: 'server_error', message: 'Gateway timeout' },
      status: '500',
    });
    const ok = await submit('CE-1');
    const st = await pesapal(
      sim.url,
      token,
      `/api/Transactions/GetTransactionStatus?orderTrackingId=${ok.order_tracking_id}`,
    );
    expect(st.status).toBe(200);
    expect(st.json).toEqual({
      error: { error_type: 'api_error', code: 'payment_details_not_found', message: 'Something went wrong' },
      status: '500',
    });
    const cancel = await pesapal(sim.url, token, '/api/Transactions/CancelOrder', {
      order_tracking_id: ok.order_tracking_id,
    });
    expect(cancel.json).toEqual({ status: '500', message: 'Try later' });
    expect(sim.getOrder('CE-1')?.state).toBe('pending');
    expect(sim.getOrder('CE-0')).toBeUndefined();
  });

  it('applied canned error on submit: the order exists (and can be paid → IPN carries both ids) though the answer was an error', async () => {
    sim.setFaults({ errors: { submit: { count: 1, code: 'server_error', message: 'timeout', applied: true } } });
    const lost = await submit('LOST-1');
    expect(lost).toMatchObject({ status: '500' });
    const order = sim.getOrder('LOST-1')!;
    await sim.complete('LOST-1', 'completed');
    const [ipn] = await receiver.waitFor(1, about(order.orderTrackingId));
    expect(ipn?.json).toMatchObject({ OrderTrackingId: order.orderTrackingId, OrderMerchantReference: 'LOST-1' });
  });

  it('latency holds the answer after the order was created', async () => {
    sim.setFaults({ latencyMs: { submit: 600_000 } });
    const controller = new AbortController();
    const pending = fetch(`${sim.url}/api/Transactions/SubmitOrderRequest`, {
      ...jsonInit('POST', orderBody('SLOW-1', ipnId, 'https://pos.example.co.ke/return'), {
        Authorization: `Bearer ${token}`,
      }),
      signal: controller.signal,
    });
    await eventually(() => sim.getOrder('SLOW-1'));
    controller.abort();
    await expect(pending).rejects.toThrow();
    expect(sim.getOrder('SLOW-1')?.state).toBe('pending');
  });

  it('reset keeps IPN registrations and tokens; reset({full}) drops them', async () => {
    sim.reset();
    expect(sim.ipnRegistrations()).toHaveLength(1);
    expect((await pesapal(sim.url, token, '/api/URLSetup/GetIpnList')).status).toBe(200);
    sim.reset({ full: true });
    expect(sim.ipnRegistrations()).toHaveLength(0);
    expect((await pesapal(sim.url, token, '/api/URLSetup/GetIpnList')).status).toBe(401);
  });
});

describe('Pesapal control API over HTTP and logging', () => {
  it('state, faults (strict), settings, complete, reverse, refund decisions, tokens', async () => {
    const sim = await startPesapalSimulator();
    try {
      const token = await pesapalToken(sim.url);
      const ipnId = (
        await pesapal(sim.url, token, '/api/URLSetup/RegisterIPN', {
          url: 'http://127.0.0.1:9/ipn',
          ipn_notification_type: 'GET',
        })
      ).json.ipn_id;
      const order = (
        await pesapal(
          sim.url,
          token,
          '/api/Transactions/SubmitOrderRequest',
          orderBody('CTL-1', ipnId, 'https://pos.example.co.ke/return'),
        )
      ).json;

      const state = await call(`${sim.url}/__sim/state`);
      expect(Object.keys(state.json).sort()).toEqual([
        'faults',
        'ipnRegistrations',
        'ipns',
        'orders',
        'settings',
        'stats',
      ]);
      expect(state.json.orders[0]).toMatchObject({ merchantReference: 'CTL-1', amountMinor: '245000' });

      expect((await call(`${sim.url}/__sim/faults`, jsonInit('POST', { cloudflare: 1 }))).status).toBe(400);
      expect(
        (await call(`${sim.url}/__sim/faults`, jsonInit('POST', { errors: { status: { count: 1, message: 'x' } } })))
          .status,
      ).toBe(400);
      const ok = await call(
        `${sim.url}/__sim/faults`,
        jsonInit('POST', { cloudflareBlocks: 1, ipns: { delayMs: 10 } }),
      );
      expect(ok.json.faults).toEqual({ cloudflareBlocks: 1, ipns: { delayMs: 10 } });
      await call(`${sim.url}/__sim/faults`, jsonInit('POST', {}));

      expect(
        (await call(`${sim.url}/__sim/settings`, jsonInit('POST', { statusDescriptionStyle: 'lower' }))).status,
      ).toBe(400);
      expect(
        (await call(`${sim.url}/__sim/settings`, jsonInit('POST', { ipnRetry: { attempts: 0, intervalMs: 0 } }))).json
          .settings.ipnRetry,
      ).toEqual({ attempts: 0, intervalMs: 0 });

      const done = await call(
        `${sim.url}/__sim/orders/CTL-1/complete`,
        jsonInit('POST', { outcome: 'completed', paymentMethod: 'Mpesa' }),
      );
      expect(done.status).toBe(200);
      expect(done.json.redirectUrl).toContain(`OrderTrackingId=${order.order_tracking_id}`);
      expect(done.json.order).toMatchObject({ state: 'completed', statusCode: 1 });
      expect(
        (await call(`${sim.url}/__sim/orders/CTL-1/complete`, jsonInit('POST', { outcome: 'completed' }))).status,
      ).toBe(409);
      expect(
        (await call(`${sim.url}/__sim/orders/NOPE/complete`, jsonInit('POST', { outcome: 'completed' }))).status,
      ).toBe(404);
      expect(
        (
          await call(
            `${sim.url}/__sim/orders/CTL-1/complete`,
            jsonInit('POST', { outcome: 'completed', paymentMethod: 'Cash' }),
          )
        ).status,
      ).toBe(400);
      expect(
        (await call(`${sim.url}/__sim/orders/CTL-1/refund`, jsonInit('POST', { decision: 'approve' }))).status,
      ).toBe(409);
      expect((await call(`${sim.url}/__sim/orders/CTL-1/refund`, jsonInit('POST', { decision: 'maybe' }))).status).toBe(
        400,
      );
      const rev = await call(`${sim.url}/__sim/orders/${order.order_tracking_id}/reverse`, jsonInit('POST', {}));
      expect(rev.json.order).toMatchObject({ state: 'reversed', statusCode: 3 });

      expect((await call(`${sim.url}/__sim/tokens/invalidate`, jsonInit('POST', {}))).json).toEqual({
        invalidated: true,
      });
      expect((await pesapal(sim.url, token, '/api/URLSetup/GetIpnList')).status).toBe(401);
      expect((await call(`${sim.url}/__sim/whatever`)).status).toBe(404);
    } finally {
      await sim.close();
    }
  });

  it('never logs the consumer secret, tokens, full phone numbers or IPN paths', async () => {
    const lines: string[] = [];
    const receiver = await startReceiver();
    receiver.answer((r) => pesapalAck(r));
    const sim = await startPesapalSimulator({ log: (l) => lines.push(l) });
    try {
      const token = await pesapalToken(sim.url);
      await call(
        `${sim.url}/api/Auth/RequestToken`,
        jsonInit('POST', { consumer_key: 'k', consumer_secret: 'a-wrong-secret' }),
      );
      const ipnId = (
        await pesapal(sim.url, token, '/api/URLSetup/RegisterIPN', {
          url: `${receiver.url}/ipn/capability-token-xyz`,
          ipn_notification_type: 'POST',
        })
      ).json.ipn_id;
      const order = (
        await pesapal(
          sim.url,
          token,
          '/api/Transactions/SubmitOrderRequest',
          orderBody('LOG-1', ipnId, 'https://pos.example.co.ke/return'),
        )
      ).json;
      await submitForm(order.redirect_url, { outcome: 'pending', payment_method: 'Mpesa' });
      await sim.complete('LOG-1', 'completed');
      await sim.waitForIpns(order.order_tracking_id);
      await pesapal(
        sim.url,
        token,
        `/api/Transactions/GetTransactionStatus?orderTrackingId=${order.order_tracking_id}`,
      );
      const all = lines.join('\n');
      expect(lines.length).toBeGreaterThan(5);
      for (const secret of [PESAPAL_SECRET, 'a-wrong-secret', token, '0712345678', 'capability-token-xyz'])
        expect(all).not.toContain(secret);
    } finally {
      await sim.close();
      await receiver.close();
    }
  });
});
