import { startFlutterwaveSimulator, type FlutterwaveSimulator } from '../src';
import {
  about,
  call,
  createLink,
  flw,
  FLW_HASH,
  manualClock,
  startReceiver,
  submitForm,
  type Receiver,
} from './helpers';

const REDIRECT = 'https://pos.example.co.ke/payments/flutterwave/return';

describe('Flutterwave hosted checkout → redirect + webhook', () => {
  let sim: FlutterwaveSimulator;
  let receiver: Receiver;
  const clock = manualClock(new Date());

  beforeAll(async () => {
    receiver = await startReceiver();
    sim = await startFlutterwaveSimulator({ webhookUrl: `${receiver.url}/webhooks/flutterwave`, now: clock.now });
  });
  afterAll(async () => {
    await sim.close();
    await receiver.close();
  });
  beforeEach(() => {
    sim.reset({ full: true });
    sim.configure({ webhookUrl: `${receiver.url}/webhooks/flutterwave` });
    receiver.received.length = 0;
    receiver.answer(() => ({ status: 200, body: 'ok' }));
  });

  it('renders a plain HTML page with merchant, amount, currency and stable ids', async () => {
    const { link } = await createLink(sim.url, 'PAGE-1', { amount: 2450.5 });
    const page = await call(link);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.text).toContain('<h1 id="merchant">Duka POS</h1>');
    expect(page.text).toContain('<span id="currency">KES</span> <span id="amount">2,450.50</span>');
    expect(page.text).toContain('data-tx-ref="PAGE-1"');
    for (const id of ['pay', 'pending', 'decline', 'cancel', 'payment-method'])
      expect(page.text).toContain(`id="${id}"`);
    expect(page.text).not.toMatch(/<script/i);
    expect((await call(`${sim.url}/v3/hosted/pay/flwlnk-doesnotexist00`)).status).toBe(404);
  });

  it('pay → 303 to redirect_url?status=successful&tx_ref&transaction_id, webhook with verif-hash, verify agrees', async () => {
    const { link } = await createLink(sim.url, 'PAY-1');
    const res = await submitForm(link, { outcome: 'successful', payment_type: 'card' });
    expect(res.status).toBe(303);
    const location = new URL(res.headers.get('location') ?? '');
    expect(`${location.origin}${location.pathname}`).toBe(REDIRECT);
    expect(location.searchParams.get('status')).toBe('successful');
    expect(location.searchParams.get('tx_ref')).toBe('PAY-1');
    const transactionId = Number(location.searchParams.get('transaction_id'));
    expect(Number.isInteger(transactionId)).toBe(true);

    const [hook] = await receiver.waitFor(1, about('PAY-1'));
    expect(hook?.method).toBe('POST');
    expect(hook?.path).toBe('/webhooks/flutterwave');
    expect(hook?.headers['verif-hash']).toBe(FLW_HASH);
    expect(hook?.headers['content-type']).toBe('application/json');
    expect(hook?.json.event).toBe('charge.completed');
    expect(hook?.json['event.type']).toBe('CARD_TRANSACTION');
    expect(hook?.json.meta_data).toEqual({ order_id: 'NBI01-000123', till_id: 'NBI01-T2' });
    expect(hook?.json.data).toMatchObject({
      id: transactionId,
      tx_ref: 'PAY-1',
      status: 'successful',
      amount: 2450,
      currency: 'KES',
      payment_type: 'card',
    });

    const deliveries = await sim.waitForWebhooks('PAY-1');
    expect(deliveries[0]).toMatchObject({
      status: 200,
      acknowledged: true,
      attempt: 1,
      duplicate: false,
      event: 'charge.completed',
    });
    expect(JSON.stringify(deliveries)).not.toContain(FLW_HASH); // the secret hash is never recorded

    const verify = await flw(sim.url, `/v3/transactions/${transactionId}/verify`);
    expect(verify.json.data).toMatchObject({
      id: transactionId,
      tx_ref: 'PAY-1',
      status: 'successful',
      amount: 2450,
      currency: 'KES',
    });

    const paidPage = await call(link);
    expect(paidPage.text).toContain('id="paid"');
    const again = await submitForm(link, { outcome: 'successful' });
    expect(again.status).toBe(409);
    expect(sim.transactions()).toHaveLength(1);
  });

  it('decline → status=failed redirect, failed webhook; the link stays usable for another attempt', async () => {
    const { link } = await createLink(sim.url, 'DEC-1');
    const res = await submitForm(link, { outcome: 'failed', payment_type: 'mpesa' });
    const location = new URL(res.headers.get('location') ?? '');
    expect(location.searchParams.get('status')).toBe('failed');
    const failedId = Number(location.searchParams.get('transaction_id'));
    const [hook] = await receiver.waitFor(1, about('DEC-1'));
    expect(hook?.json.data).toMatchObject({ id: failedId, status: 'failed', payment_type: 'mpesa' });
    expect(hook?.json['event.type']).toBe('MPESA_TRANSACTION');

    expect((await call(link)).text).toContain('id="pay"');
    const retry = await submitForm(link, { outcome: 'successful', payment_type: 'card' });
    const okId = Number(new URL(retry.headers.get('location') ?? '').searchParams.get('transaction_id'));
    expect(okId).not.toBe(failedId);
    await receiver.waitFor(2, about('DEC-1'));
    const byRef = await flw(sim.url, '/v3/transactions/verify_by_reference?tx_ref=DEC-1');
    expect(byRef.json.data).toMatchObject({ id: okId, status: 'successful' });
  });

  it('cancel → status=cancelled&tx_ref without transaction_id, no attempt, no webhook', async () => {
    const { link } = await createLink(sim.url, 'CAN-1');
    const res = await submitForm(link, { outcome: 'cancelled' });
    expect(res.status).toBe(303);
    const location = new URL(res.headers.get('location') ?? '');
    expect([...location.searchParams.keys()].sort()).toEqual(['status', 'tx_ref']);
    expect(location.searchParams.get('status')).toBe('cancelled');
    expect(sim.transactions()).toHaveLength(0);
    expect(sim.webhooks()).toHaveLength(0);
    expect((await flw(sim.url, '/v3/transactions/verify_by_reference?tx_ref=CAN-1')).json.status).toBe('error');
    // Cancelled is not failed forever: the customer can still pay within the session.
    expect((await submitForm(link, { outcome: 'successful' })).status).toBe(303);
  });

  it('pending → waiting page, no webhook; complete() later settles the same attempt and sends the webhook', async () => {
    const { link } = await createLink(sim.url, 'PEND-1');
    const res = await submitForm(link, { outcome: 'pending', payment_type: 'mpesa' });
    expect(res.status).toBe(200);
    expect(res.text).toContain('id="waiting"');
    const pending = sim.getCheckout('PEND-1')!;
    const pendingId = pending.transactionIds[0]!;
    expect((await flw(sim.url, `/v3/transactions/${pendingId}/verify`)).json.data.status).toBe('pending');
    expect(sim.webhooks()).toHaveLength(0);

    const done = await sim.complete('PEND-1', 'successful');
    expect(done.transaction?.id).toBe(pendingId);
    expect(done.redirectUrl).toContain(`transaction_id=${pendingId}`);
    const [hook] = await receiver.waitFor(1, about('PEND-1'));
    expect(hook?.json.data).toMatchObject({ id: pendingId, status: 'successful', payment_type: 'mpesa' });
  });

  it('rejects a bad form (unknown outcome / payment type not offered) with 400 and changes nothing', async () => {
    const { link } = await createLink(sim.url, 'FORM-1', { payment_options: 'card' });
    expect((await submitForm(link, { outcome: 'steal' })).status).toBe(400);
    expect((await submitForm(link, { outcome: 'successful', payment_type: 'mpesa' })).status).toBe(400);
    expect(sim.transactions()).toHaveLength(0);
  });

  it('max_retry_attempt closes the link after that many failures', async () => {
    const { link } = await createLink(sim.url, 'RETRY-1', { max_retry_attempt: 2 });
    await submitForm(link, { outcome: 'failed' });
    await submitForm(link, { outcome: 'failed' });
    const page = await call(link);
    expect(page.status).toBe(410);
    expect(page.text).toContain('id="closed"');
    expect((await submitForm(link, { outcome: 'successful' })).status).toBe(409);
    await expect(sim.complete('RETRY-1', 'successful')).rejects.toMatchObject({ kind: 'conflict' });
  });

  it('session_duration expires the link (clock-driven)', async () => {
    const { link } = await createLink(sim.url, 'EXP-1', { session_duration: 30 });
    clock.advance(31 * 60_000);
    const page = await call(link);
    expect(page.status).toBe(410);
    expect(page.text).toContain('id="expired"');
    await expect(sim.complete('EXP-1', 'successful')).rejects.toThrow(/expired/);
  });

  it('without redirect_url the page shows the result instead of redirecting', async () => {
    const { link } = await createLink(sim.url, 'NORED-1', { redirect_url: undefined });
    const res = await submitForm(link, { outcome: 'successful' });
    expect(res.status).toBe(200);
    expect(res.text).toContain('id="result"');
    await receiver.waitFor(1, about('NORED-1'));
  });

  it('quirks: status=completed redirects, legacy flat webhooks, no meta, no failed-transaction webhooks', async () => {
    sim.configure({ successRedirectStatus: 'completed', webhookShape: 'legacy' });
    const { link } = await createLink(sim.url, 'Q-1');
    const res = await submitForm(link, { outcome: 'successful', payment_type: 'card' });
    expect(new URL(res.headers.get('location') ?? '').searchParams.get('status')).toBe('completed');
    const [legacy] = await receiver.waitFor(1, about('Q-1'));
    expect(legacy?.json).not.toHaveProperty('event');
    expect(legacy?.json).not.toHaveProperty('data');
    expect(legacy?.json).toMatchObject({
      txRef: 'Q-1',
      status: 'successful',
      currency: 'KES',
      amount: 2450,
      'event.type': 'CARD_TRANSACTION',
    });
    expect(legacy?.json.customer).toHaveProperty('fullName', 'Walk-in customer');
    expect(legacy?.headers['verif-hash']).toBe(FLW_HASH);

    sim.configure({ webhookShape: 'v3', webhookMeta: false, failedWebhooks: false });
    const second = await createLink(sim.url, 'Q-2');
    const sentBefore = sim.stats().webhooksSent;
    await submitForm(second.link, { outcome: 'failed' });
    expect(sim.stats().webhooksSent).toBe(sentBefore); // no webhook for the failure
    await submitForm(second.link, { outcome: 'successful' });
    expect(sim.stats().webhooksSent).toBe(sentBefore + 1);
    const received = await receiver.waitFor(1, about('Q-2'));
    await sim.waitForWebhooks('Q-2');
    expect(received).toHaveLength(1); // the failure produced no webhook
    expect(received[0]?.json.data).toMatchObject({ tx_ref: 'Q-2', status: 'successful' });
    expect(received[0]?.json).not.toHaveProperty('meta_data');
  });

  it('a changed secret hash is sent verbatim; no webhook URL → no webhook at all', async () => {
    sim.configure({ secretHash: 'rotated-hash-2' });
    const { link } = await createLink(sim.url, 'HASH-1');
    await submitForm(link, { outcome: 'successful' });
    const [hook] = await receiver.waitFor(1, about('HASH-1'));
    expect(hook?.headers['verif-hash']).toBe('rotated-hash-2');

    sim.configure({ webhookUrl: null });
    const second = await createLink(sim.url, 'HASH-2');
    await submitForm(second.link, { outcome: 'successful' });
    const resend = await flw(sim.url, `/v3/transactions/${sim.getCheckout('HASH-2')?.transactionIds[0]}/resend-hook`, {
      body: {},
    });
    expect(resend.status).toBe(400);
    expect(sim.webhooks().filter((w) => w.ref === 'HASH-2')).toHaveLength(0);
  });

  it('tamper: the next page payment lands with another amount/currency; verify shows what was charged', async () => {
    const { link } = await createLink(sim.url, 'TAMP-1', { amount: 2450 });
    sim.tamper('TAMP-1', { amount: 24.5 });
    const res = await submitForm(link, { outcome: 'successful' });
    const id = Number(new URL(res.headers.get('location') ?? '').searchParams.get('transaction_id'));
    const verify = await flw(sim.url, `/v3/transactions/${id}/verify`);
    expect(verify.json.data).toMatchObject({
      tx_ref: 'TAMP-1',
      status: 'successful',
      amount: 24.5,
      charged_amount: 24.5,
      currency: 'KES',
    });
    const [tampered] = await receiver.waitFor(1, about('TAMP-1'));
    expect(tampered?.json.data).toMatchObject({ amount: 24.5, currency: 'KES' });

    await createLink(sim.url, 'TAMP-2', { amount: 2450 });
    const done = await sim.complete('TAMP-2', { outcome: 'successful', currency: 'NGN' });
    const verify2 = await flw(sim.url, `/v3/transactions/${done.transaction?.id}/verify`);
    expect(verify2.json.data).toMatchObject({ amount: 2450, currency: 'NGN' });
    expect(() => sim.tamper('TAMP-1', { currency: 'ABC' })).toThrow();
    await receiver.waitFor(1, about('TAMP-2'));
  });

  it('resend-hook sends the same charge.completed again', async () => {
    const { link } = await createLink(sim.url, 'RS-1');
    const res = await submitForm(link, { outcome: 'successful' });
    const id = new URL(res.headers.get('location') ?? '').searchParams.get('transaction_id');
    await receiver.waitFor(1, about('RS-1'));
    const resend = await flw(sim.url, `/v3/transactions/${id}/resend-hook`, { body: {} });
    expect(resend.json).toEqual({ status: 'success', message: 'hook sent successfully', data: 'hook sent' });
    const both = await receiver.waitFor(2, about('RS-1'));
    expect(both[1]?.raw).toBe(both[0]?.raw);
  });

  it('refund webhooks (when enabled) use the flat PascalCase shape with meta as a JSON string', async () => {
    sim.configure({ refundWebhooks: true });
    await createLink(sim.url, 'RFW-1');
    const tx = (await sim.complete('RFW-1', 'successful')).transaction!;
    await receiver.waitFor(1, about('RFW-1'));
    await flw(sim.url, `/v3/transactions/${tx.id}/refund`, { body: { amount: 100, comments: 'wrong item' } });
    const [refundHook] = await receiver.waitFor(1, (r) => r.json?.TransactionId === tx.id);
    expect(refundHook?.json).toMatchObject({
      AmountRefunded: 100,
      status: 'completed',
      TransactionId: tx.id,
      comments: 'wrong item',
      destination: 'payment_source',
    });
    expect(typeof refundHook?.json.meta).toBe('string');
    expect(refundHook?.headers['verif-hash']).toBe(FLW_HASH);
  });
});
