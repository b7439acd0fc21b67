/**
 * Daraja as it really behaves (issue 8, findings 11, 13 and 14), through the API over HTTP with the simulator:
 * - 8.11: what the POS sends as accountReference/transactionDesc is made to fit Daraja's limits, and the
 *   fitted values (what the customer's prompt shows) are what the API answers and stores;
 * - 8.13: both forms of "the customer has not answered yet" on STK query read as pending;
 * - 8.14: ResultCode 1036 (the prompt never reached the SIM) expires the payment, like 1037.
 */
import { sql } from 'drizzle-orm';
import request from 'supertest';
import { fullCheckoutRequestId, startTestApp, tableCounts, TestApp, waitFor } from './helpers/test-app';

describe('Daraja as it really behaves (issue 8.11, 8.13, 8.14)', () => {
  let t: TestApp;
  let auth: string;
  let n = 0;

  beforeAll(async () => {
    t = await startTestApp();
    auth = `Bearer ${t.token()}`;
  });
  afterAll(() => t.close());
  afterEach(() => t.sim.setBehaviour({ pendingQueryForm: 'http500' }));

  async function order(total: number): Promise<string> {
    const id = `ORD-DB-${++n}`;
    const res = await t.http().post('/orders').set('Authorization', auth).send({ id, total });
    expect(res.status).toBe(201);
    return id;
  }

  function push(body: Record<string, unknown>, headers: Record<string, string> = {}) {
    return t.http().post('/payments/stk-push').set('Authorization', auth).set(headers).send(body);
  }

  async function payment(paymentId: string) {
    const res = await t.http().get(`/payments/${paymentId}`).set('Authorization', auth);
    expect(res.status).toBe(200);
    return res.body;
  }

  async function storedFields(paymentId: string): Promise<{ account_reference: string; transaction_desc: string }> {
    const res = (await t.db.execute(
      sql`select account_reference, transaction_desc from payments where id = ${paymentId}`,
    )) as unknown as { rows?: unknown[] };
    return (res.rows ?? (res as unknown as unknown[]))[0] as { account_reference: string; transaction_desc: string };
  }

  // ------------------------------------------------------------------ 8.11

  describe('issue 8.11: accountReference / transactionDesc are fitted, not refused', () => {
    it('issue 8.11: the seed POS\'s accountReference "SmartDuka-Order-12345" and a 21-character transactionDesc are accepted; Daraja, the response, GET /payments/:id and the row all carry the fitted values', async () => {
      const orderId = await order(100);
      const res = await push({
        phoneNumber: '0712345678',
        amount: 100,
        orderId,
        accountReference: 'SmartDuka-Order-12345',
        transactionDesc: 'SmartDuka POS payment',
      });
      expect(res.status).toBe(201);
      // Letters and digits only, the last 12 (the distinguishing end, as for the default); TransactionDesc cut to 13.
      expect(res.body).toMatchObject({
        status: 'pending',
        accountReference: 'kaOrder12345',
        transactionDesc: 'SmartDuka POS',
      });

      const sent = t.sim.getPush(fullCheckoutRequestId(t.sim, res.body))!;
      expect(sent.accountReference).toBe('kaOrder12345');
      expect(sent.transactionDesc).toBe('SmartDuka POS');

      expect(await payment(res.body.paymentId)).toMatchObject({
        accountReference: 'kaOrder12345',
        transactionDesc: 'SmartDuka POS',
      });
      expect(await storedFields(res.body.paymentId)).toEqual({
        account_reference: 'kaOrder12345',
        transaction_desc: 'SmartDuka POS',
      });

      await t.sim.waitForCallbacks(fullCheckoutRequestId(t.sim, res.body), 1, 5000);
      await waitFor(async () => (await payment(res.body.paymentId)).status === 'completed', 8000);
      expect(await payment(res.body.paymentId)).toMatchObject({
        status: 'completed',
        accountReference: 'kaOrder12345',
        transactionDesc: 'SmartDuka POS',
      });
    });

    it('issue 8.11: without them the response shows the defaults that were sent', async () => {
      const orderId = await order(10);
      const res = await push({ phoneNumber: '0712345678', amount: 10, orderId });
      expect(res.status).toBe(201);
      const expectedRef = orderId.replace(/[^A-Za-z0-9]/g, '').slice(-12);
      expect(res.body).toMatchObject({ accountReference: expectedRef, transactionDesc: 'POS payment' });
      expect(t.sim.getPush(fullCheckoutRequestId(t.sim, res.body))).toMatchObject({
        accountReference: expectedRef,
        transactionDesc: 'POS payment',
      });
      expect(await payment(res.body.paymentId)).toMatchObject({
        accountReference: expectedRef,
        transactionDesc: 'POS payment',
      });
    });

    // Values the API used to refuse (the bad-input corpus had most of them), now sent in a form Daraja takes.
    it.each([
      ['accountReference', '13 characters', 'ABCDEFGHIJKLM', 'BCDEFGHIJKLM'],
      ['accountReference', 'a space', 'ORD 1', 'ORD1'],
      ['accountReference', 'a dash', 'ORD-1', 'ORD1'],
      ['accountReference', 'a hash and spaces', 'INV # 0042', 'INV0042'],
      ['accountReference', 'an emoji', 'ORD💳', 'ORD'],
      ['accountReference', 'an accented letter', 'ORDé', 'ORDe'],
      ['accountReference', 'fullwidth digits', '１２３', '123'],
      ['accountReference', 'a NUL character', 'ORD\u0000', 'ORD'],
      ['accountReference', 'SQL', "1'--", '1'],
      ['accountReference', '100 characters', `${'A'.repeat(88)}ORDER0000042`, 'ORDER0000042'],
      ['transactionDesc', '14 characters', 'Payment for 14', 'Payment for 1'],
      ['transactionDesc', 'an emoji', 'Pay 💳', 'Pay'],
      ['transactionDesc', 'an accented letter', 'Café', 'Cafe'],
      ['transactionDesc', 'a NUL character', 'Pay\u0000', 'Pay'],
      ['transactionDesc', 'a newline', 'Pay\nnow', 'Pay now'],
      ['transactionDesc', 'an RTL override', 'Pay\u202enow', 'Paynow'],
      ['transactionDesc', 'markup', 'Pay <b>now</b>', 'Pay bnowb'],
      ['transactionDesc', 'a hash', 'Order #12345', 'Order 12345'],
      ['transactionDesc', 'SQL', "x' OR 1=1", 'x OR 11'],
      ['transactionDesc', 'a path', '../etc', '..etc'],
      ['transactionDesc', 'runs of spaces', '  Duka   sale  ', 'Duka sale'],
    ])('issue 8.11: %s with %s (%j) is sent as %j', async (field, _label, given, sentAs) => {
      const orderId = await order(5);
      const res = await push({ phoneNumber: '0712345678', amount: 5, orderId, [field]: given });
      expect(res.status).toBe(201);
      expect(res.body[field]).toBe(sentAs);
      const sent = t.sim.getPush(fullCheckoutRequestId(t.sim, res.body))!;
      expect(field === 'accountReference' ? sent.accountReference : sent.transactionDesc).toBe(sentAs);
      expect((await payment(res.body.paymentId))[field]).toBe(sentAs);
    });

    it.each([
      ['accountReference', 'empty', '', 'accountReference must contain at least one letter or digit'],
      ['accountReference', 'only punctuation', '--#--', 'accountReference must contain at least one letter or digit'],
      ['accountReference', 'only an emoji', '💳', 'accountReference must contain at least one letter or digit'],
      ['accountReference', 'only spaces', '   ', 'accountReference must contain at least one letter or digit'],
      ['accountReference', '101 characters', 'A'.repeat(101), 'accountReference must be at most 100 characters'],
      ['transactionDesc', 'empty', '', 'transactionDesc must contain at least one letter, digit or . , _ -'],
      [
        'transactionDesc',
        'only spaces and a newline',
        ' \n ',
        'transactionDesc must contain at least one letter, digit or . , _ -',
      ],
      ['transactionDesc', 'only emoji', '💳💳', 'transactionDesc must contain at least one letter, digit or . , _ -'],
      ['transactionDesc', '101 characters', 'D'.repeat(101), 'transactionDesc must be at most 100 characters'],
    ])(
      'issue 8.11: %s that cannot be made to fit (%s) is a clear 400 and changes nothing',
      async (field, _label, given, message) => {
        const orderId = await order(5);
        // Rows this request could add (earlier tests' payments may still be settling, so not their states).
        const rows = async () => {
          const c = await tableCounts(t.db);
          return { orders: c.orders, payments: c.payments, idempotency_keys: c.idempotency_keys };
        };
        const before = await rows();
        const pushesBefore = t.sim.stats().pushRequests;
        const res = await push(
          { phoneNumber: '0712345678', amount: 5, orderId, [field]: given },
          { 'Idempotency-Key': `idem-bad-${orderId}` },
        );
        expect(res.status).toBe(400);
        expect(res.body).toMatchObject({ statusCode: 400, code: 'VALIDATION_FAILED' });
        expect(res.body.message).toContain(message);
        expect(await rows()).toEqual(before);
        expect(t.sim.stats().pushRequests).toBe(pushesBefore);
        expect((await t.http().get(`/orders/${orderId}`).set('Authorization', auth)).body).toMatchObject({
          status: 'unpaid',
          paid: 0,
        });
      },
    );

    it("issue 8.11: the Idempotency-Key request hash is over the client's raw body, not the fitted values", async () => {
      const orderId = await order(20);
      const body = {
        phoneNumber: '0712345678',
        amount: 20,
        orderId,
        accountReference: 'SmartDuka-Order-77',
        transactionDesc: 'SmartDuka POS payment',
      };
      const first = await push(body, { 'Idempotency-Key': `idem-fit-${orderId}` });
      expect(first.status).toBe(201);
      expect(first.body.accountReference).toBe('SmartDukaOrder77'.slice(-12));
      const replay = await push(body, { 'Idempotency-Key': `idem-fit-${orderId}` });
      expect(replay.status).toBe(201);
      expect(replay.body).toEqual(first.body);
      // Fits to the same values, but is not the same request: the key was used for something else.
      const other = await push(
        { ...body, accountReference: 'SmartDukaOrder77' },
        { 'Idempotency-Key': `idem-fit-${orderId}` },
      );
      expect(other.status).toBe(409);
      expect(other.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
      expect(t.sim.promptsFor({ accountReference: first.body.accountReference }).prompts).toBe(1);
    });
  });

  // ------------------------------------------------------------------ 8.13

  describe('issue 8.13: both pending STK query forms read as pending, then the payment completes', () => {
    async function pendingThenCompleted(
      phoneNumber: string,
      form: 'http500' | 'result4999',
      completeBy: 'callback' | 'query',
    ) {
      const orderId = await order(40);
      const res = await push({ phoneNumber, amount: 40, orderId });
      expect(res.status).toBe(201);
      const id = fullCheckoutRequestId(t.sim, res.body);

      // A status read asks Daraja (MPESA_STATUS_QUERY_AFTER_SECONDS=0 in tests): the customer has not answered.
      const read = await t
        .http()
        .get('/payments/stk-status')
        .query({ checkoutRequestId: id })
        .set('Authorization', auth);
      expect(read.status).toBe(200);
      expect(read.body).toMatchObject({ paymentId: res.body.paymentId, status: 'pending', resultCode: null });
      const asked = t.sim.queries().filter((q) => q.checkoutRequestId === id);
      expect(asked.length).toBeGreaterThanOrEqual(1);
      expect(asked.every((q) => q.answer === 'pending' && q.pendingForm === form)).toBe(true);
      expect((await payment(res.body.paymentId)).status).toBe('pending');

      await t.sim.resolve(id, 0, completeBy === 'query' ? { callbackCopies: 0 } : undefined);
      const done = await waitFor(
        async () => {
          const p = await payment(res.body.paymentId);
          return p.status === 'completed' ? p : undefined;
        },
        10_000,
        200,
      );
      expect(done).toMatchObject({ status: 'completed', resultCode: '0' });
      if (completeBy === 'query') expect(t.sim.callbacks().filter((c) => c.checkoutRequestId === id)).toHaveLength(0);
      const o = await t.http().get(`/orders/${orderId}`).set('Authorization', auth);
      expect(o.body).toMatchObject({ status: 'paid', paid: 40 });
    }

    it('issue 8.13: HTTP 500 500.001.1001 "The transaction is being processed" (the documented form)', async () => {
      await pendingThenCompleted('254700000007', 'http500', 'callback');
    });

    it('issue 8.13: HTTP 200 ResultCode "4999" "still under processing" (2026 sandbox; magic number 254700000011)', async () => {
      await pendingThenCompleted('254700000011', 'result4999', 'callback');
    });

    it('issue 8.13: the 4999 form chosen through the control API, completion learned by STK query (callback lost)', async () => {
      const set = await request(t.sim.url).post('/__sim/behaviour').send({ pendingQueryForm: 'result4999' });
      expect(set.status).toBe(200);
      await pendingThenCompleted('254700000007', 'result4999', 'query');
    });
  });

  // ------------------------------------------------------------------ 8.14

  describe('issue 8.14: ResultCode 1036 (SMSC ACK timeout: the prompt never reached the SIM) expires the payment', () => {
    it('issue 8.14: a callback with ResultCode 1036 → expired, the order stays unpaid and can be pushed again', async () => {
      const orderId = await order(30);
      const res = await push({ phoneNumber: '254700000012', amount: 30, orderId });
      expect(res.status).toBe(201);
      const [delivery] = await t.sim.waitForCallbacks(fullCheckoutRequestId(t.sim, res.body), 1, 5000);
      expect((delivery!.body as { Body: { stkCallback: { ResultCode: number } } }).Body.stkCallback.ResultCode).toBe(
        1036,
      );
      expect(delivery!.status).toBe(200);
      const p = await payment(res.body.paymentId);
      expect(p).toMatchObject({
        status: 'expired',
        statusReason: 'NO_RESPONSE_FROM_CUSTOMER',
        resultCode: '1036',
        resultDesc: '[STK_CB - ]SMSC ACK timeout.',
      });
      const o = await t.http().get(`/orders/${orderId}`).set('Authorization', auth);
      expect(o.body).toMatchObject({ status: 'unpaid', paid: 0 });
      expect((await push({ phoneNumber: '0712345678', amount: 30, orderId })).status).toBe(201);
    });

    it('issue 8.14: an STK query answering ResultCode "1036" → expired', async () => {
      const orderId = await order(30);
      const res = await push({ phoneNumber: '254700000007', amount: 30, orderId });
      await t.sim.resolve(fullCheckoutRequestId(t.sim, res.body), 1036, { callbackCopies: 0 });
      const p = await waitFor(
        async () => {
          const r = await payment(res.body.paymentId);
          return r.status !== 'pending' ? r : undefined;
        },
        10_000,
        200,
      );
      expect(p).toMatchObject({ status: 'expired', resultCode: '1036' });
    });
  });
});
