import { createHash } from 'node:crypto';
import { startFlutterwaveSimulator, type FlutterwaveSimulator } from '../src';
import { call, createLink, flw, FLW_KEY, paymentBody, PHONE, uniqueRef } from './helpers';

describe('Flutterwave v3: auth, payment links, validation', () => {
  let sim: FlutterwaveSimulator;

  beforeAll(async () => {
    sim = await startFlutterwaveSimulator();
  });
  afterAll(async () => {
    await sim.close();
  });
  beforeEach(() => sim.reset());

  it('requires the Bearer secret key on every API call (401 error envelope, nothing created)', async () => {
    const none = await flw(sim.url, '/v3/payments', { key: null, body: paymentBody('A-1') });
    expect(none.status).toBe(401);
    expect(none.json).toEqual({ status: 'error', message: 'Authorization required', data: null });

    const wrong = await flw(sim.url, '/v3/payments', { key: 'FLWPUBK_TEST-public-key-X', body: paymentBody('A-1') });
    expect(wrong.status).toBe(401);
    expect(wrong.json).toEqual({ status: 'error', message: 'Invalid authorization key', data: null });

    const verify = await flw(sim.url, '/v3/transactions/123/verify', { key: 'nope' });
    expect(verify.status).toBe(401);
    expect(sim.checkouts()).toHaveLength(0);
  });

  it('POST /v3/payments answers "Hosted Link" with only data.link (no transaction id yet)', async () => {
    const txRef = uniqueRef();
    const res = await flw(sim.url, '/v3/payments', { body: paymentBody(txRef) });
    expect(res.status).toBe(200);
    expect(res.json.status).toBe('success');
    expect(res.json.message).toBe('Hosted Link');
    expect(Object.keys(res.json.data)).toEqual(['link']);
    expect(res.json.data.link).toMatch(new RegExp(`^${sim.url}/v3/hosted/pay/flwlnk-[a-z0-9]{14}$`));
    const checkout = sim.getCheckout(txRef);
    expect(checkout).toMatchObject({
      txRef,
      amountMinor: 245000n,
      currency: 'KES',
      currencyDefaulted: false,
      state: 'open',
      paymentOptions: ['card', 'mpesa'],
    });
    expect(checkout?.customer.phoneNumber).toBe(PHONE);
  });

  it('defaults the currency to NGN when it is omitted (the trap)', async () => {
    const txRef = uniqueRef();
    const { path } = await createLink(sim.url, txRef, { currency: undefined });
    expect(sim.getCheckout(txRef)).toMatchObject({
      currency: 'NGN',
      currencyDefaulted: true,
      paymentOptions: ['card'],
    });
    const page = await call(`${sim.url}${path}`);
    expect(page.text).toContain('<span id="currency">NGN</span>');
    expect(page.text).not.toContain('value="mpesa"'); // M-Pesa is only offered for KES
  });

  it('accepts decimal amounts (number or numeric string) and rejects more decimals than the currency has', async () => {
    await createLink(sim.url, 'DEC-1', { amount: 2450.5 });
    expect(sim.getCheckout('DEC-1')?.amountMinor).toBe(245050n);
    await createLink(sim.url, 'DEC-2', { amount: '100.25' });
    expect(sim.getCheckout('DEC-2')?.amountMinor).toBe(10025n);
    const tooPrecise = await flw(sim.url, '/v3/payments', { body: paymentBody('DEC-3', { amount: 10.005 }) });
    expect(tooPrecise.status).toBe(400);
    expect(tooPrecise.json).toEqual({
      status: 'error',
      message: 'amount must have at most 2 decimal places',
      data: null,
    });
    const ugx = await flw(sim.url, '/v3/payments', { body: paymentBody('DEC-4', { currency: 'UGX', amount: 1000.5 }) });
    expect(ugx.json.message).toBe('amount must be a whole number for this currency');
    expect(sim.getCheckout('DEC-3')).toBeUndefined();
  });

  it.each([
    [{ tx_ref: undefined }, 'tx_ref is required'],
    [{ tx_ref: 'x'.repeat(101) }, 'tx_ref must not be longer than 100 characters'],
    [{ amount: undefined }, 'amount is required'],
    [{ amount: -5 }, 'amount must be greater than zero'],
    [{ amount: 0 }, 'amount must be greater than zero'],
    [{ amount: 'ten' }, 'amount must be a plain decimal number'],
    [{ currency: 'XYZ' }, 'currency is not supported'],
    [{ redirect_url: 'not a url' }, 'redirect_url must be a valid url'],
    [{ customer: undefined }, 'customer is required'],
    [{ customer: { name: 'No Email' } }, 'customer.email is required'],
    [{ customer: { email: 'not-an-email' } }, 'customer.email must be a valid email'],
    [{ meta: 'x' }, 'meta must be an object'],
    [{ session_duration: 2000 }, 'session_duration must be a whole number between 1 and 1440'],
    [{ max_retry_attempt: 0 }, 'max_retry_attempt must be a whole number between 1 and 100'],
  ])('rejects %j with 400 "%s" and creates nothing', async (override, message) => {
    const txRef = uniqueRef('BAD');
    const res = await flw(sim.url, '/v3/payments', { body: { ...paymentBody(txRef), ...override } });
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ status: 'error', message, data: null });
    expect(sim.checkouts()).toHaveLength(0);
  });

  it('rejects a duplicate tx_ref', async () => {
    await createLink(sim.url, 'DUP-1');
    const again = await flw(sim.url, '/v3/payments', { body: paymentBody('DUP-1') });
    expect(again.status).toBe(400);
    expect(again.json.status).toBe('error');
    expect(again.json.message).toMatch(/Duplicate transaction reference/);
    expect(sim.checkouts()).toHaveLength(1);
  });

  it('treats a non-JSON body as empty (validation reports the missing fields) and malformed JSON as 400', async () => {
    const form = await call(`${sim.url}/v3/payments`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${FLW_KEY}`, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'tx_ref=abc&amount=10',
    });
    expect(form.status).toBe(400);
    expect(form.json.message).toBe('tx_ref is required');
    const broken = await call(`${sim.url}/v3/payments`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${FLW_KEY}`, 'Content-Type': 'application/json' },
      body: '{"tx_ref":',
    });
    expect(broken.status).toBe(400);
    expect(broken.json).toEqual({ status: 'error', message: 'Invalid JSON payload', data: null });
  });

  it('checks payload_hash = sha256(amount + currency + email + tx_ref + sha256(secret key))', async () => {
    const email = 'walkin+0712345678@pos.example.co.ke';
    const keyHash = createHash('sha256').update(FLW_KEY).digest('hex');
    const good = createHash('sha256').update(`2450KES${email}HASH-1${keyHash}`).digest('hex');
    const ok = await flw(sim.url, '/v3/payments', { body: paymentBody('HASH-1', { payload_hash: good }) });
    expect(ok.status).toBe(200);
    const bad = await flw(sim.url, '/v3/payments', { body: paymentBody('HASH-2', { payload_hash: good }) });
    expect(bad.status).toBe(400);
    expect(bad.json.message).toMatch(/payload_hash/);
  });

  it('answers unknown routes 404 and wrong methods 405 with the error envelope', async () => {
    const unknown = await flw(sim.url, '/v3/nothing-here');
    expect(unknown.status).toBe(404);
    expect(unknown.json.status).toBe('error');
    const method = await flw(sim.url, '/v3/payments');
    expect(method.status).toBe(405);
    expect(method.json.status).toBe('error');
  });
});

describe('Flutterwave v3: verify, list, M-Pesa charge, refunds', () => {
  let sim: FlutterwaveSimulator;

  beforeAll(async () => {
    sim = await startFlutterwaveSimulator();
  });
  afterAll(async () => {
    await sim.close();
  });
  beforeEach(() => sim.reset());

  it('verify by id and by tx_ref return the documented data shape with decimal amounts', async () => {
    await createLink(sim.url, 'VER-1', { amount: 2450 });
    const done = await sim.complete('VER-1', { outcome: 'successful', paymentType: 'mpesa' });
    const id = done.transaction?.id as number;

    const byId = await flw(sim.url, `/v3/transactions/${id}/verify`);
    expect(byId.status).toBe(200);
    expect(byId.json.status).toBe('success');
    expect(byId.json.message).toBe('Transaction fetched successfully');
    const data = byId.json.data;
    expect(data).toMatchObject({
      id,
      tx_ref: 'VER-1',
      amount: 2450,
      currency: 'KES',
      charged_amount: 2450,
      app_fee: 68.6,
      merchant_fee: 0,
      amount_settled: 2381.4,
      status: 'successful',
      payment_type: 'mpesa',
      auth_model: 'LIPA_MPESA',
      account_id: 123456,
      meta: { order_id: 'NBI01-000123', till_id: 'NBI01-T2' },
      customer: { name: 'Walk-in customer', phone_number: PHONE, email: 'walkin+0712345678@pos.example.co.ke' },
    });
    expect(typeof data.id).toBe('number');
    expect(data.flw_ref).toMatch(/^[A-Z0-9]{10}$/);
    expect(data.created_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(data).not.toHaveProperty('card');

    const byRef = await flw(sim.url, '/v3/transactions/verify_by_reference?tx_ref=VER-1');
    expect(byRef.status).toBe(200);
    expect(byRef.json.data).toEqual(data);
  });

  it('card attempts carry card details and a FLW-MOCK flw_ref', async () => {
    await createLink(sim.url, 'VER-CARD', { amount: 99.99 });
    const done = await sim.complete('VER-CARD', 'successful');
    const res = await flw(sim.url, `/v3/transactions/${done.transaction?.id}/verify`);
    expect(res.json.data.payment_type).toBe('card');
    expect(res.json.data.amount).toBe(99.99);
    expect(res.json.data.flw_ref).toMatch(/^FLW-MOCK-[0-9a-f]{32}$/);
    expect(res.json.data.card).toMatchObject({ first_6digits: '553188', last_4digits: '2950', type: 'MASTERCARD' });
  });

  it('unknown id / tx_ref (and a tx_ref with no attempt yet) → "No transaction was found for this id" in the body', async () => {
    const notFound = { status: 'error', message: 'No transaction was found for this id', data: null };
    for (const path of [
      '/v3/transactions/999999999/verify',
      '/v3/transactions/POS-123/verify',
      '/v3/transactions/verify_by_reference?tx_ref=never-created',
    ]) {
      const res = await flw(sim.url, path);
      expect(res.status).toBe(400);
      expect(res.json).toEqual(notFound);
    }
    await createLink(sim.url, 'NO-ATTEMPT');
    expect((await flw(sim.url, '/v3/transactions/verify_by_reference?tx_ref=NO-ATTEMPT')).json).toEqual(notFound);
    const missing = await flw(sim.url, '/v3/transactions/verify_by_reference');
    expect(missing.status).toBe(400);
    expect(missing.json.message).toBe('tx_ref is required');
  });

  it('verify_by_reference prefers the successful attempt over later/earlier failures', async () => {
    await createLink(sim.url, 'MULTI');
    const failed = await sim.complete('MULTI', 'failed');
    const ok = await sim.complete('MULTI', 'successful');
    expect(ok.transaction?.id).not.toBe(failed.transaction?.id);
    const byRef = await flw(sim.url, '/v3/transactions/verify_by_reference?tx_ref=MULTI');
    expect(byRef.json.data).toMatchObject({ id: ok.transaction?.id, status: 'successful' });
    const first = await flw(sim.url, `/v3/transactions/${failed.transaction?.id}/verify`);
    expect(first.json.data).toMatchObject({ status: 'failed', processor_response: 'Declined' });
  });

  it('GET /v3/transactions lists newest first with string ids and page_info, filterable', async () => {
    await createLink(sim.url, 'LIST-1');
    await createLink(sim.url, 'LIST-2');
    await sim.complete('LIST-1', 'failed');
    await sim.complete('LIST-2', 'successful');
    const all = await flw(sim.url, '/v3/transactions');
    expect(all.json.message).toBe('Transactions fetched');
    expect(all.json.meta).toEqual({ page_info: { total: 2, current_page: 1, total_pages: 1 } });
    expect(all.json.data.map((t: { tx_ref: string }) => t.tx_ref)).toEqual(['LIST-2', 'LIST-1']);
    expect(typeof all.json.data[0].id).toBe('string');
    expect(all.json.data[0]).toMatchObject({
      customer_email: 'walkin+0712345678@pos.example.co.ke',
      account_id: '123456',
    });
    const ok = await flw(sim.url, '/v3/transactions?status=successful');
    expect(ok.json.data).toHaveLength(1);
    const bad = await flw(sim.url, '/v3/transactions?from=02-10-2026');
    expect(bad.status).toBe(400);
  });

  it('POST /v3/charges?type=mpesa initiates a pending LIPA_MPESA charge that complete() settles', async () => {
    const res = await flw(sim.url, '/v3/charges?type=mpesa', {
      body: {
        tx_ref: 'MP-1',
        amount: 2450,
        currency: 'KES',
        email: 'walkin@pos.example.co.ke',
        phone_number: PHONE,
        fullname: 'Walk-in customer',
      },
    });
    expect(res.status).toBe(200);
    expect(res.json.message).toBe('Charge initiated');
    expect(res.json.data).toMatchObject({
      tx_ref: 'MP-1',
      status: 'pending',
      auth_model: 'LIPA_MPESA',
      payment_type: 'mpesa',
      amount: 2450,
      currency: 'KES',
    });
    const id = res.json.data.id as number;
    expect((await flw(sim.url, `/v3/transactions/${id}/verify`)).json.data.status).toBe('pending');
    const done = await sim.complete('MP-1', 'successful');
    expect(done.transaction?.id).toBe(id);
    expect(done.redirectUrl).toBeNull();
    expect((await flw(sim.url, `/v3/transactions/${id}/verify`)).json.data.status).toBe('successful');
  });

  it.each([
    [{ currency: 'UGX' }, 'currency must be KES for M-Pesa charges'],
    [{ amount: 10.5 }, 'amount must be a whole number for M-Pesa'],
    [
      { phone_number: '0712345678' },
      'phone_number must be a Kenyan M-Pesa number in the format 2547XXXXXXXX or 2541XXXXXXXX',
    ],
    [{ email: undefined }, 'email is required'],
  ])('rejects M-Pesa charge %j', async (override, message) => {
    const res = await flw(sim.url, '/v3/charges?type=mpesa', {
      body: {
        tx_ref: uniqueRef('MP'),
        amount: 100,
        currency: 'KES',
        email: 'a@b.co',
        phone_number: PHONE,
        ...override,
      },
    });
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ status: 'error', message, data: null });
    expect(sim.transactions()).toHaveLength(0);
  });

  it('refunds: full by default, partial with amount, never more than left, only successful transactions', async () => {
    await createLink(sim.url, 'RF-1', { amount: 1000 });
    const tx = (await sim.complete('RF-1', 'successful')).transaction!;
    const partial = await flw(sim.url, `/v3/transactions/${tx.id}/refund`, {
      body: { amount: 300.5, comments: 'returned item' },
    });
    expect(partial.status).toBe(200);
    expect(partial.json.message).toBe('Transaction refund initiated');
    expect(partial.json.data).toMatchObject({
      tx_id: tx.id,
      amount_refunded: 300.5,
      status: 'completed',
      destination: 'payment_source',
      account_id: 123456,
    });
    expect(typeof partial.json.data.id).toBe('number');

    const tooMuch = await flw(sim.url, `/v3/transactions/${tx.id}/refund`, { body: { amount: 700 } });
    expect(tooMuch.status).toBe(400);
    expect(tooMuch.json.status).toBe('error');

    const rest = await flw(sim.url, `/v3/transactions/${tx.id}/refund`, { body: {} });
    expect(rest.json.data.amount_refunded).toBe(699.5);
    const none = await flw(sim.url, `/v3/transactions/${tx.id}/refund`, { body: {} });
    expect(none.json).toEqual({ status: 'error', message: 'Transaction has been fully refunded', data: null });

    await createLink(sim.url, 'RF-2');
    const failed = (await sim.complete('RF-2', 'failed')).transaction!;
    const onFailed = await flw(sim.url, `/v3/transactions/${failed.id}/refund`, { body: {} });
    expect(onFailed.status).toBe(400);
    expect(onFailed.json.message).toBe('Cannot refund a failed transaction');

    const list = await flw(sim.url, '/v3/refunds');
    expect(list.json.data).toHaveLength(2);
    const one = await flw(sim.url, `/v3/refunds/${partial.json.data.id}`);
    expect(one.json.data).toEqual(partial.json.data);
    expect((await flw(sim.url, '/v3/refunds/1')).status).toBe(400);
  });

  it('mobile-money refunds start as pending-momo until completeRefund()', async () => {
    await createLink(sim.url, 'RF-MOMO');
    const tx = (await sim.complete('RF-MOMO', { outcome: 'successful', paymentType: 'mpesa' })).transaction!;
    const res = await flw(sim.url, `/v3/transactions/${tx.id}/refund`, { body: {} });
    expect(res.json.data.status).toBe('pending-momo');
    const refund = await sim.completeRefund(res.json.data.id);
    expect(refund.status).toBe('completed');
    expect((await flw(sim.url, `/v3/refunds/${refund.id}`)).json.data.status).toBe('completed');
    await expect(sim.completeRefund(refund.id)).rejects.toMatchObject({ kind: 'conflict' });
  });
});
