import { EventEmitter2 } from '@nestjs/event-emitter';
import { FlutterwaveSimulator, startFlutterwaveSimulator } from '@smartduka/card-simulators';
import { eq, sql } from 'drizzle-orm';
import request from 'supertest';
import { payments } from '../src/database/schema';
import { PAYMENT_COMPLETED_EVENT, PaymentCompletedEvent } from '../src/payments/payment-lifecycle.service';
import {
  FLW_CHECKOUT_SESSION_MINUTES,
  FLW_CHECKOUT_WINDOW_SECONDS,
} from '../src/payments/providers/flutterwave/flutterwave.helpers';
import { ReconcilerService } from '../src/payments/reconciler.service';
import { Case, checkCase } from './bad-input/harness';
import { ExtraTestApp, startExtraTestApp, startTestApp, tableCounts, TestApp, waitFor } from './helpers/test-app';
import { simulatorLog } from './log-scan/sink';

const SECRET_KEY = 'FLWSECK_TEST-e2eflutterwave000000000-X';
const SECRET_HASH = 'e2e-flutterwave-secret-hash-0123456789';
const WEBHOOK = '/payments/flutterwave/webhook';
const REDIRECT = '/payments/flutterwave/redirect';
const POS_RETURN_URL = 'https://pos.example.test/done?till=1';

/** Env for an app talking to `simUrl` (reconciler driven by the test: no timer, no grace, no backoff). */
const flwEnv = (simUrl: string, extra: Record<string, string> = {}): Record<string, string> => ({
  FLUTTERWAVE_ENABLED: 'true',
  FLUTTERWAVE_BASE_URL: simUrl,
  FLUTTERWAVE_SECRET_KEY: SECRET_KEY,
  FLUTTERWAVE_SECRET_HASH: SECRET_HASH,
  FLUTTERWAVE_HTTP_TIMEOUT_MS: '1000',
  RECONCILER_ENABLED: 'false',
  RECONCILER_PENDING_GRACE_SECONDS: '0',
  RECONCILER_BACKOFF_BASE_SECONDS: '0',
  RECONCILER_BACKOFF_MAX_SECONDS: '0',
  RECONCILER_INBOX_RETRY_AFTER_SECONDS: '0',
  ...extra,
});

type Row = typeof payments.$inferSelect;

describe('Flutterwave hosted checkout through HTTP (real app, Postgres, Flutterwave simulator)', () => {
  let sim: FlutterwaveSimulator;
  let t: TestApp;
  let auth: string;
  let n = 0;
  const completed: PaymentCompletedEvent[] = [];

  beforeAll(async () => {
    sim = await startFlutterwaveSimulator({ secretKey: SECRET_KEY, secretHash: SECRET_HASH, log: simulatorLog() });
    t = await startTestApp({ env: flwEnv(sim.url) });
    sim.configure({ webhookUrl: `${t.baseUrl}${WEBHOOK}` });
    auth = `Bearer ${t.token()}`;
    t.app.get(EventEmitter2).on(PAYMENT_COMPLETED_EVENT, (e: PaymentCompletedEvent) => completed.push(e));
  });
  afterEach(() => sim.setFaults({}));
  afterAll(async () => {
    await t?.close();
    await sim?.close();
  });

  // ------------------------------------------------------------------ helpers

  async function order(total: number, http = t.http): Promise<string> {
    const id = `FLW-${++n}`;
    const res = await http().post('/orders').set('Authorization', auth).send({ id, total });
    expect(res.status).toBe(201);
    return id;
  }

  function init(
    orderId: string,
    amount: number | string,
    extra: Record<string, unknown> = {},
    headers: Record<string, string> = {},
    http = t.http,
  ) {
    return http()
      .post('/payments/flutterwave/init')
      .set('Authorization', auth)
      .set(headers)
      .send({
        orderId,
        amount,
        customer: { email: 'wanjiku@example.com', phoneNumber: '0712345678', name: 'Wanjiku' },
        ...extra,
      });
  }

  /** A payment waiting for the customer: init answered 201 with a link. */
  async function open(total = 100, http = t.http) {
    const orderId = await order(total, http);
    const res = await init(orderId, total, {}, {}, http);
    expect(res.status).toBe(201);
    return { ...(res.body as { paymentId: string; txRef: string; link: string; status: string }), orderId };
  }

  async function row(paymentId: string): Promise<Row> {
    const rows = await t.db.select().from(payments).where(eq(payments.id, paymentId));
    return rows[0];
  }

  async function orderOf(orderId: string) {
    return (await t.http().get(`/orders/${orderId}`).set('Authorization', auth)).body;
  }

  async function inbox(txRef: string) {
    const res = await t.db.execute(
      sql`select id, verified, outcome, processed_at from callback_inbox where provider = 'flutterwave' and raw_body like ${`%${txRef}%`} order by id`,
    );
    return (
      res as unknown as { rows: { id: string; verified: boolean; outcome: string | null; processed_at: Date | null }[] }
    ).rows;
  }

  /** Waits until `count` webhooks of this tx_ref are stored and processed. */
  async function processed(txRef: string, count = 1) {
    return waitFor(async () => {
      const rows = await inbox(txRef);
      return rows.length >= count && rows.every((r) => r.processed_at !== null) ? rows : undefined;
    });
  }

  async function eventCounts(paymentId: string): Promise<Record<string, number>> {
    const res = await t.db.execute(
      sql`select type, count(*)::int as c from payment_events where payment_id = ${paymentId} group by type`,
    );
    return Object.fromEntries(
      (res as unknown as { rows: { type: string; c: number }[] }).rows.map((r) => [r.type, r.c]),
    );
  }

  /** Makes a payment look `seconds` old and due for the reconciler now. */
  async function backdate(paymentId: string, seconds: number) {
    await t.db.execute(
      sql`update payments set created_at = now() - make_interval(secs => ${seconds}), next_check_at = null, last_queried_at = null where id = ${paymentId}`,
    );
  }

  const tick = () => t.app.get(ReconcilerService).tick();
  const completionsOf = (paymentId: string) => completed.filter((e) => e.paymentId === paymentId);
  const webhook = (body: unknown, hash: string | undefined = SECRET_HASH) => {
    const r = request(t.baseUrl).post(WEBHOOK);
    return hash === undefined ? r.send(body as object) : r.set('verif-hash', hash).send(body as object);
  };
  const pathOf = (url: string) => {
    const u = new URL(url);
    return u.pathname + u.search;
  };

  // ------------------------------------------------------------------ the table of bad requests (first: a quiet database)

  describe('bad requests: a clear 4xx, nothing changed', () => {
    const fixtures = { open: { paymentId: '', txRef: '', orderId: '' }, paidOrder: '', badOrder: '' };

    beforeAll(async () => {
      fixtures.badOrder = await order(100);
      const p = await open(50);
      fixtures.open = { paymentId: p.paymentId, txRef: p.txRef, orderId: p.orderId };
      const paid = await open(10);
      fixtures.paidOrder = paid.orderId;
      await sim.complete(paid.txRef, 'successful');
      await processed(paid.txRef);
      expect((await row(paid.paymentId)).status).toBe('completed');
    });

    const valid = (patch: Record<string, unknown> = {}) => ({
      orderId: fixtures.badOrder,
      amount: 100,
      customer: { email: 'a@b.co' },
      ...patch,
    });
    const initCase = (
      name: string,
      body: () => unknown,
      status: number,
      messageIncludes: string | string[],
      code?: string,
    ): Case => ({
      name: `init: ${name}`,
      req: (http, a) =>
        http()
          .post('/payments/flutterwave/init')
          .set('Authorization', a)
          .send(body() as object),
      status,
      code,
      messageIncludes,
    });
    const verifyCase = (
      name: string,
      body: () => unknown,
      status: number,
      messageIncludes: string | string[],
      code?: string,
    ): Case => ({
      name: `verify: ${name}`,
      req: (http, a) =>
        http()
          .post('/payments/flutterwave/verify')
          .set('Authorization', a)
          .send(body() as object),
      status,
      code,
      messageIncludes,
    });

    const cases: Case[] = [
      initCase('empty body', () => ({}), 400, ['orderId', 'amount is required', 'customer is required']),
      initCase('orderId with spaces', () => valid({ orderId: 'ORD 1' }), 400, 'orderId must be 1-64 characters'),
      initCase('amount as text', () => valid({ amount: 'abc' }), 400, 'amount must be a plain decimal'),
      initCase('amount as boolean', () => valid({ amount: true }), 400, 'amount must be a number or a decimal string'),
      initCase('negative amount', () => valid({ amount: -1 }), 400, 'amount must be greater than zero'),
      initCase('zero amount', () => valid({ amount: 0 }), 400, 'amount must be greater than zero'),
      initCase('three decimals', () => valid({ amount: 10.001 }), 400, 'more than 2 decimal places'),
      initCase('exponent string', () => valid({ amount: '1e2' }), 400, 'plain decimal'),
      initCase(
        'more than the order owes',
        () => valid({ amount: 100.01 }),
        400,
        'is more than the 100 KES still owed',
        'AMOUNT_EXCEEDS_OUTSTANDING',
      ),
      initCase(
        'another currency than the order',
        () => valid({ currency: 'USD' }),
        400,
        'pay it in KES, not USD',
        'CURRENCY_NOT_SUPPORTED',
      ),
      initCase('lower-case currency', () => valid({ currency: 'kes' }), 400, 'currency must be a 3-letter ISO code'),
      initCase('customer as text', () => valid({ customer: 'a@b.co' }), 400, 'customer must be an object'),
      initCase('no email', () => valid({ customer: { name: 'x' } }), 400, 'customer.email must be an email address'),
      initCase(
        'bad email',
        () => valid({ customer: { email: 'not-an-email' } }),
        400,
        'customer.email must be an email address',
      ),
      initCase(
        'bad phone',
        () => valid({ customer: { email: 'a@b.co', phoneNumber: '07-12' } }),
        400,
        'customer.phoneNumber must be 9-15 digits',
      ),
      initCase(
        'phone with letters',
        () => valid({ customer: { email: 'a@b.co', phoneNumber: '0712abc678' } }),
        400,
        'customer.phoneNumber',
      ),
      initCase(
        'name too long',
        () => valid({ customer: { email: 'a@b.co', name: 'x'.repeat(101) } }),
        400,
        'customer.name must be 1-100 characters',
      ),
      initCase(
        'markup in the name',
        () => valid({ customer: { email: 'a@b.co', name: '<script>' } }),
        400,
        'customer.name must not contain',
      ),
      initCase('unknown field', () => valid({ tip: 5 }), 400, 'property tip should not exist'),
      initCase(
        'unknown customer field',
        () => valid({ customer: { email: 'a@b.co', card: '4111' } }),
        400,
        'card should not exist',
      ),
      initCase(
        'redirectUrl that is not a URL',
        () => valid({ redirectUrl: 'javascript:alert(1)' }),
        400,
        'redirectUrl must be an http(s) URL',
      ),
      initCase(
        'redirectUrl without POS_RETURN_URL (no open redirect)',
        () => valid({ redirectUrl: 'https://evil.example.com/phish' }),
        400,
        'redirectUrl is not accepted on this server',
      ),
      initCase('unknown order', () => valid({ orderId: 'NOPE-1' }), 404, 'Order not found', 'NOT_FOUND'),
      initCase(
        'paid order',
        () => valid({ orderId: fixtures.paidOrder, amount: 1 }),
        409,
        'already fully paid',
        'ORDER_ALREADY_PAID',
      ),
      initCase(
        'order with a payment in flight',
        () => ({ orderId: fixtures.open.orderId, amount: 1, customer: { email: 'a@b.co' } }),
        409,
        'already has a payment waiting',
        'PAYMENT_IN_PROGRESS',
      ),
      {
        name: 'init: bad Idempotency-Key',
        req: (http, a) =>
          http()
            .post('/payments/flutterwave/init')
            .set('Authorization', a)
            .set('Idempotency-Key', 'has space')
            .send(valid()),
        status: 400,
        messageIncludes: 'Idempotency-Key must be 1-255 visible ASCII characters',
      },
      { name: 'init: no token', req: (http) => http().post('/payments/flutterwave/init').send(valid()), status: 401 },
      {
        name: 'init: text body',
        req: (http, a) =>
          http()
            .post('/payments/flutterwave/init')
            .set('Authorization', a)
            .set('Content-Type', 'text/plain')
            .send('orderId=1'),
        status: 415,
        messageIncludes: 'Content-Type: application/json',
      },
      {
        name: 'init: broken JSON',
        req: (http, a) =>
          http()
            .post('/payments/flutterwave/init')
            .set('Authorization', a)
            .set('Content-Type', 'application/json')
            .send('{"orderId":'),
        status: 400,
        code: 'INVALID_JSON',
      },

      verifyCase('nothing to verify', () => ({}), 400, 'Send exactly one of paymentId, txRef or transactionId'),
      verifyCase(
        'two identifiers',
        () => ({ paymentId: fixtures.open.paymentId, txRef: fixtures.open.txRef }),
        400,
        'got paymentId and txRef',
      ),
      verifyCase('paymentId not a UUID', () => ({ paymentId: '42' }), 400, 'paymentId must be a payment id (UUID)'),
      verifyCase('txRef with a space', () => ({ txRef: 'SD 1' }), 400, 'txRef must be the txRef returned by init'),
      verifyCase(
        'transactionId with letters',
        () => ({ transactionId: '12a' }),
        400,
        'transactionId must be the numeric Flutterwave transaction id',
      ),
      verifyCase('negative transactionId', () => ({ transactionId: -5 }), 400, 'transactionId must be the numeric'),
      verifyCase(
        'unknown field',
        () => ({ txRef: fixtures.open.txRef, force: true }),
        400,
        'property force should not exist',
      ),
      verifyCase(
        'unknown paymentId',
        () => ({ paymentId: '3f2c9a4e-8b1d-4c6e-9f0a-7d5e2b1c4a98' }),
        404,
        'Flutterwave payment not found',
        'NOT_FOUND',
      ),
      verifyCase(
        'unknown txRef',
        () => ({ txRef: 'SD-3f2c9a4e-8b1d-4c6e-9f0a-7d5e2b1c4a98' }),
        404,
        'Flutterwave payment not found',
      ),
      verifyCase(
        'transactionId not recorded yet',
        () => ({ transactionId: '99999999' }),
        404,
        'verify by paymentId or txRef',
      ),
      {
        name: 'verify: no token',
        req: (http) => http().post('/payments/flutterwave/verify').send({ txRef: fixtures.open.txRef }),
        status: 401,
      },

      {
        name: 'webhook: no verif-hash',
        req: (http) =>
          http()
            .post(WEBHOOK)
            .send({
              event: 'charge.completed',
              data: { id: 1, tx_ref: fixtures.open.txRef, status: 'successful', amount: 50, currency: 'KES' },
            }),
        status: 401,
        code: 'INVALID_WEBHOOK_SIGNATURE',
        messageIncludes: 'verif-hash',
        callback: true,
      },
      {
        name: 'webhook: wrong verif-hash',
        req: (http) =>
          http()
            .post(WEBHOOK)
            .set('verif-hash', `${SECRET_HASH}x`)
            .send({
              event: 'charge.completed',
              data: { id: 1, tx_ref: fixtures.open.txRef, status: 'successful', amount: 50, currency: 'KES' },
            }),
        status: 401,
        code: 'INVALID_WEBHOOK_SIGNATURE',
        messageIncludes: 'does not match',
        callback: true,
      },
      {
        name: 'webhook: the secret key instead of the hash',
        req: (http) =>
          http()
            .post(WEBHOOK)
            .set('verif-hash', SECRET_KEY)
            .send({ event: 'charge.completed', data: { id: 1, tx_ref: fixtures.open.txRef, status: 'successful' } }),
        status: 401,
        callback: true,
      },
      {
        name: 'webhook: text body',
        req: (http) =>
          http().post(WEBHOOK).set('verif-hash', SECRET_HASH).set('Content-Type', 'text/plain').send('hello'),
        status: 415,
      },
      {
        name: 'webhook: broken JSON',
        req: (http) =>
          http().post(WEBHOOK).set('verif-hash', SECRET_HASH).set('Content-Type', 'application/json').send('{"event":'),
        status: 400,
        code: 'INVALID_JSON',
      },
    ];

    test.each(cases)('$name → $status', (c) => checkCase(t, auth, c));

    it.each<[string, Record<string, unknown>, string[]]>([
      ['a name of the wrong type', { customer: { email: 'a@b.co', name: 42 } }, ['customer.name must be a string']],
      [
        'a name too long',
        { customer: { email: 'a@b.co', name: 'x'.repeat(101) } },
        ['customer.name must be 1-100 characters'],
      ],
      [
        'a bad email and phone',
        { customer: { email: 'nope', phoneNumber: '07-12' } },
        [
          'customer.email must be an email address (Flutterwave requires one)',
          'customer.phoneNumber must be 9-15 digits, optionally starting with + (spaces and dashes allowed)',
        ],
      ],
    ])(
      'review: init with %s names each customer field once (customer.name, never customer.customer.name)',
      async (_what, patch, problems) => {
        const res = await t.http().post('/payments/flutterwave/init').set('Authorization', auth).send(valid(patch));
        expect({
          status: res.status,
          code: res.body.code,
          problems: res.body.details?.problems,
          message: res.body.message,
        }).toEqual({ status: 400, code: 'VALIDATION_FAILED', problems, message: problems.join('; ') });
      },
    );

    it.each<[string, string, number, string]>([
      ['no tx_ref', `${REDIRECT}?status=successful`, 400, 'Payment reference missing'],
      [
        'an unknown tx_ref',
        `${REDIRECT}?status=successful&tx_ref=SD-3f2c9a4e-8b1d-4c6e-9f0a-7d5e2b1c4a98&transaction_id=1`,
        404,
        'Payment not found',
      ],
      [
        'a tx_ref that is not ours',
        `${REDIRECT}?status=successful&tx_ref=%3Cscript%3Ealert(1)%3C%2Fscript%3E`,
        404,
        'Payment not found',
      ],
      ['tx_ref twice', `${REDIRECT}?tx_ref=a&tx_ref=b`, 400, 'Payment reference missing'],
    ])('redirect with %s (%s) → %d page, nothing changed', async (_label, path, status, title) => {
      const before = await tableCounts(t.db);
      const res = await request(t.baseUrl).get(path);
      expect(res.status).toBe(status);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.text).toContain(title);
      expect(res.text).not.toContain('<script>');
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['referrer-policy']).toBe('no-referrer');
      expect(await tableCounts(t.db)).toEqual(before);
    });

    it('left the fixtures as they were', async () => {
      expect(await row(fixtures.open.paymentId)).toMatchObject({ status: 'pending', completedAt: null });
      expect(await orderOf(fixtures.badOrder)).toMatchObject({ status: 'unpaid', paid: 0 });
      expect(await orderOf(fixtures.paidOrder)).toMatchObject({ status: 'paid', paid: 10 });
      // the unauthenticated webhooks were stored (audit) as rejected, never processed into a payment change
      // (review: refused webhooks share one row per 10 s window, which keeps the first body, so
      // fewer rows than webhooks may name this payment)
      const rows = await inbox(fixtures.open.txRef);
      expect(rows.length).toBeLessThanOrEqual(3);
      for (const r of rows) expect([r.verified, r.outcome]).toEqual([false, 'rejected_unverified']);
    });
  });

  // ------------------------------------------------------------------ outcomes

  it("review: the browser back while the webhook's verification is still running waits for it and shows the payment received (was: pending)", async () => {
    const orderId = await order(120);
    const res = await init(orderId, '120');
    expect(res.status).toBe(201);
    const { paymentId, txRef } = res.body;
    sim.setFaults({ latencyMs: { verify: 600, transactions: 600 } }); // under FLUTTERWAVE_HTTP_TIMEOUT_MS (1000)
    const done = await sim.complete(txRef, 'successful');
    // The webhook is stored and its verification (slow now) is running when the customer's browser comes back.
    await waitFor(
      async () => {
        const r = await t.db.execute(
          sql`select count(*)::int as n from callback_inbox where provider = 'flutterwave' and verified and processed_at is null and raw_body like ${'%' + txRef + '%'}`,
        );
        return ((r as unknown as { rows: { n: number }[] }).rows[0].n ?? 0) > 0;
      },
      10_000,
      20,
    );
    const page = await request(t.baseUrl).get(pathOf(done.redirectUrl!));
    expect(page.status).toBe(200);
    expect(page.text).toContain('Payment received');
    expect((await t.http().get(`/payments/${paymentId}`).set('Authorization', auth)).body).toMatchObject({
      status: 'completed',
    });
  });

  it('success: init → customer pays → webhook → verified → completed, order paid once, redirect shows it', async () => {
    const orderId = await order(2450.5);
    const res = await init(orderId, '2450.50');
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      paymentId: expect.any(String),
      status: 'pending',
      link: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/v3\/hosted\/pay\/flwlnk-/),
      txRef: expect.stringMatching(/^SD-/),
      orderId,
      amount: 2450.5,
      currency: 'KES',
    });
    const { paymentId, txRef, link } = res.body;
    expect(txRef).toBe(`SD-${paymentId}`);

    // What Flutterwave received: our tx_ref, the exact amount, the currency always explicit, our redirect endpoint.
    const checkout = sim.getCheckout(txRef)!;
    expect(checkout).toMatchObject({
      amountMinor: 245050n,
      currency: 'KES',
      currencyDefaulted: false,
      redirectUrl: `${t.baseUrl}${REDIRECT}`,
      sessionDurationMinutes: FLW_CHECKOUT_SESSION_MINUTES,
      maxRetryAttempt: 1,
      link,
    });
    expect(checkout.customer).toMatchObject({
      email: 'wanjiku@example.com',
      phoneNumber: '254712345678',
      name: 'Wanjiku',
    });
    expect(await row(paymentId)).toMatchObject({
      provider: 'flutterwave',
      status: 'pending',
      providerReference: txRef,
      checkoutUrl: link,
      phoneMasked: '2547******78',
      amountMinor: 245050n,
    });

    const done = await sim.complete(txRef, 'successful');
    const [delivery] = await sim.waitForWebhooks(txRef, 1);
    expect(delivery).toMatchObject({ status: 200, acknowledged: true });
    const [stored] = await processed(txRef);
    expect(stored).toMatchObject({ verified: true, outcome: 'applied' });

    const p = (await t.http().get(`/payments/${paymentId}`).set('Authorization', auth)).body;
    expect(p).toMatchObject({
      paymentId,
      status: 'completed',
      statusReason: 'PAID',
      resultCode: 'successful',
      provider: 'flutterwave',
      amount: 2450.5,
      currency: 'KES',
      reference: txRef,
      providerTransactionId: String(done.transaction!.id),
      providerReceipt: done.transaction!.flwRef,
      paymentMethod: 'card',
      checkoutUrl: link,
      phone: '2547******78',
    });
    expect(await orderOf(orderId)).toMatchObject({ status: 'paid', paid: 2450.5, outstanding: 0 });
    expect(completionsOf(paymentId)).toEqual([
      expect.objectContaining({
        orderId,
        provider: 'flutterwave',
        amountMinor: 245050n,
        currency: 'KES',
        orderPaid: true,
      }),
    ]);

    // The browser comes back: verified again (nothing to do), result page, nothing changed.
    const before = await tableCounts(t.db);
    const page = await request(t.baseUrl).get(pathOf(done.redirectUrl!));
    expect(page.status).toBe(200);
    expect(page.text).toContain('Payment received');
    expect(page.text).toContain('KES 2,450.50');
    expect(page.text).not.toMatch(/wanjiku@|0712345678|254712345678|FLWSECK|secret/i);
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(await tableCounts(t.db)).toEqual(before);

    // A replayed (captured) webhook changes nothing.
    const replay = await webhook(delivery.body);
    expect(replay.status).toBe(200);
    const rows = await processed(txRef, 2);
    expect(rows[1]).toMatchObject({ verified: true, outcome: 'already_completed' });
    const { callback_inbox: inboxAfter, ...restAfter } = await tableCounts(t.db);
    const { callback_inbox: inboxBefore, ...restBefore } = before;
    expect(restAfter).toEqual(restBefore);
    expect(inboxAfter).toBe(inboxBefore + 1);
    expect(completionsOf(paymentId)).toHaveLength(1);
  });

  it('failure: a declined attempt fails the payment, the link closes, the order can be paid again', async () => {
    const p = await open(300);
    const done = await sim.complete(p.txRef, 'failed');
    expect(done.redirectUrl).toContain('status=failed');
    const [stored] = await processed(p.txRef);
    expect(stored.outcome).toBe('applied');
    expect(await row(p.paymentId)).toMatchObject({
      status: 'failed',
      statusReason: 'FAILED_AT_PROVIDER',
      resultCode: 'failed',
      providerTransactionId: String(done.transaction!.id),
      completedAt: null,
    });
    expect(await orderOf(p.orderId)).toMatchObject({ status: 'unpaid', paid: 0 });
    // max_retry_attempt=1: Flutterwave closed the link, so a payment we call failed cannot be paid later.
    expect(sim.getCheckout(p.txRef)!.state).toBe('closed');
    await expect(sim.complete(p.txRef, 'successful')).rejects.toThrow(/closed/);
    const page = await request(t.baseUrl).get(pathOf(done.redirectUrl!));
    expect(page.text).toContain('Payment failed');
    expect((await init(p.orderId, 300)).status).toBe(201);
  });

  it('cancel: the customer cancels on the hosted page; nothing is decided by the redirect, the link expires unpaid', async () => {
    const p = await open(120);
    const done = await sim.complete(p.txRef, 'cancelled');
    expect(done.redirectUrl).toContain('status=cancelled');
    const page = await request(t.baseUrl).get(pathOf(done.redirectUrl!));
    expect(page.status).toBe(200);
    expect(page.text).toContain('Payment not completed');
    // Flutterwave keeps the link payable until it expires: the payment stays open.
    expect(await row(p.paymentId)).toMatchObject({ status: 'pending' });

    // Inside the window the reconciler keeps waiting...
    await backdate(p.paymentId, FLW_CHECKOUT_WINDOW_SECONDS - 60);
    await tick();
    expect((await row(p.paymentId)).status).toBe('pending');
    // ...after it, a link Flutterwave never saw an attempt on is expired: nothing was charged.
    await backdate(p.paymentId, FLW_CHECKOUT_WINDOW_SECONDS + 1);
    const report = await tick();
    expect(report.actions.expired).toBeGreaterThanOrEqual(1);
    expect(await row(p.paymentId)).toMatchObject({ status: 'expired', statusReason: 'CHECKOUT_EXPIRED' });
    expect(await orderOf(p.orderId)).toMatchObject({ status: 'unpaid' });
    expect((await init(p.orderId, 120)).status).toBe(201);
  });

  it.each<[string, { amount?: number; currency?: string }, string]>([
    ['amount', { amount: 1 }, 'AMOUNT_MISMATCH'],
    ['currency', { currency: 'USD' }, 'CURRENCY_MISMATCH'],
  ])('%s tampering: Flutterwave reports another %s → review, order NOT paid', async (_label, tamper, reason) => {
    const p = await open(500);
    sim.tamper(p.txRef, tamper);
    await sim.complete(p.txRef, 'successful');
    const [stored] = await processed(p.txRef);
    expect(stored.outcome).toBe('review');
    expect(await row(p.paymentId)).toMatchObject({ status: 'review', statusReason: reason, completedAt: null });
    expect(await orderOf(p.orderId)).toMatchObject({ status: 'unpaid', paid: 0, paidAt: null });
    expect(completionsOf(p.paymentId)).toHaveLength(0);
    expect((await eventCounts(p.paymentId)).integrity_failure).toBe(1);
  });

  it('a webhook with the right hash but a forged body changes nothing: Flutterwave says the customer has not paid', async () => {
    const p = await open(80);
    const forged = {
      event: 'charge.completed',
      data: { id: 4242, tx_ref: p.txRef, flw_ref: 'FLW-FORGED', amount: 80, currency: 'KES', status: 'successful' },
      'event.type': 'CARD_TRANSACTION',
    };
    const res = await webhook(forged);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'received' });
    const [stored] = await processed(p.txRef);
    expect(stored).toMatchObject({ verified: true, outcome: 'verify_not_found' });
    expect(await row(p.paymentId)).toMatchObject({ status: 'pending', providerTransactionId: null });
    expect(completionsOf(p.paymentId)).toHaveLength(0);
  });

  it('duplicate notifications under concurrency: one completion, every copy stored and processed', async () => {
    const p = await open(90);
    sim.setFaults({ webhooks: { duplicates: 2 } });
    await sim.complete(p.txRef, 'successful');
    const deliveries = await sim.waitForWebhooks(p.txRef, 3);
    // And a burst of identical copies at once.
    const burst = await Promise.all(Array.from({ length: 8 }, () => webhook(deliveries[0].body)));
    for (const r of burst) expect(r.status).toBe(200);
    const rows = await processed(p.txRef, 11);
    expect(rows).toHaveLength(11);
    expect(rows.filter((r) => r.outcome === 'applied')).toHaveLength(1);
    for (const r of rows) expect(['applied', 'duplicate', 'already_completed']).toContain(r.outcome);
    expect(await row(p.paymentId)).toMatchObject({ status: 'completed' });
    expect(completionsOf(p.paymentId)).toHaveLength(1);
    expect((await eventCounts(p.paymentId)).status_changed).toBe(1);
    expect(await orderOf(p.orderId)).toMatchObject({ status: 'paid', paid: 90 });
  });

  it('review: 20 parallel verified webhooks for one open payment share one verification per interval', async () => {
    const p = await open(91);
    const calls = () => sim.stats().verifyRequests + sim.stats().transactionRequests;
    const before = calls();
    const body = {
      event: 'charge.completed',
      data: { tx_ref: p.txRef, amount: 91, currency: 'KES', status: 'successful' },
      'event.type': 'CARD_TRANSACTION',
    };
    const answers = await Promise.all(Array.from({ length: 20 }, () => webhook(body)));
    for (const r of answers) expect(r.status).toBe(200);
    // Every copy is stored; those that arrived after a verification had started are verified once
    // more after the interval (here, not waiting for the reconciler), all of them by one look.
    const rows = await processed(p.txRef, 20);
    expect(rows).toHaveLength(20);
    for (const r of rows) expect(['verify_not_found', 'answered']).toContain(r.outcome);
    // One look per interval (1 s) while the burst lasts (a slow machine may spread it over two), plus that one.
    expect(calls() - before).toBeGreaterThanOrEqual(1);
    expect(calls() - before).toBeLessThanOrEqual(3);
    expect(await row(p.paymentId)).toMatchObject({ status: 'pending' });
  });

  it('review: webhooks with a wrong verif-hash are one inbox row per window (the first body, counted), all refused', async () => {
    const count = async () =>
      (await t.db.execute(
        sql`select count(*)::int as rows, coalesce(sum(1 + repeats), 0)::int as deliveries from callback_inbox where outcome = 'rejected_unverified'`,
      )) as unknown as { rows: { rows: number; deliveries: number }[] };
    const before = (await count()).rows[0];
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        webhook(
          {
            event: 'charge.completed',
            data: { tx_ref: `FORGED-${i}`, amount: 1, currency: 'KES', status: 'successful', pad: 'x'.repeat(30_000) },
          },
          'wrong-hash-wrong-hash',
        ),
      ),
    );
    for (const r of answers)
      expect({ status: r.status, code: r.body.code }).toEqual({ status: 401, code: 'INVALID_WEBHOOK_SIGNATURE' });
    const after = (await count()).rows[0];
    expect(after.deliveries - before.deliveries).toBe(40);
    // At most one new row per window touched (none when an earlier refused webhook opened this window's row).
    expect(after.rows - before.rows).toBeLessThanOrEqual(2);
  });

  it('the legacy flat webhook shape settles the payment too', async () => {
    sim.configure({ webhookShape: 'legacy' });
    try {
      const p = await open(35);
      await sim.complete(p.txRef, { outcome: 'successful', paymentType: 'card' });
      const [stored] = await processed(p.txRef);
      expect(stored.outcome).toBe('applied');
      expect((await row(p.paymentId)).status).toBe('completed');
    } finally {
      sim.configure({ webhookShape: 'v3' });
    }
  });

  it('redirect with status=successful for an unpaid payment (even naming a real paid transaction) does not mark it paid', async () => {
    const paid = await open(15);
    const done = await sim.complete(paid.txRef, 'successful');
    await processed(paid.txRef);
    const p = await open(60);
    const spoof = `${REDIRECT}?status=successful&tx_ref=${p.txRef}&transaction_id=${done.transaction!.id}`;
    const page = await request(t.baseUrl).get(spoof);
    expect(page.status).toBe(200);
    expect(page.text).toContain('Waiting for confirmation');
    expect(await row(p.paymentId)).toMatchObject({ status: 'pending', providerTransactionId: null });
    expect(await orderOf(p.orderId)).toMatchObject({ status: 'unpaid' });
    expect(completionsOf(p.paymentId)).toHaveLength(0);
  });

  it('webhook dropped → the reconciler verifies and settles it', async () => {
    const p = await open(70);
    sim.setFaults({ webhooks: { drop: true } });
    await sim.complete(p.txRef, 'successful');
    expect(await inbox(p.txRef)).toHaveLength(0);
    const report = await tick();
    expect(report.actions.settled).toBeGreaterThanOrEqual(1);
    expect(await row(p.paymentId)).toMatchObject({ status: 'completed', statusReason: 'PAID' });
    expect(await orderOf(p.orderId)).toMatchObject({ status: 'paid' });
    expect(completionsOf(p.paymentId)).toHaveLength(1);
  });

  it('webhook dropped → GET /payments/:id verifies an open payment a few seconds old', async () => {
    const p = await open(71);
    sim.setFaults({ webhooks: { drop: true } });
    await sim.complete(p.txRef, 'successful');
    // Too fresh: the read answers from the database.
    expect((await t.http().get(`/payments/${p.paymentId}`).set('Authorization', auth)).body.status).toBe('pending');
    await backdate(p.paymentId, 10);
    const res = await t.http().get(`/payments/${p.paymentId}`).set('Authorization', auth);
    expect(res.body).toMatchObject({ status: 'completed', reference: p.txRef });
  });

  it('a customer still paying (pending at Flutterwave) when the window ends goes to review, and the late success settles it', async () => {
    const p = await open(40);
    await sim.complete(p.txRef, 'pending');
    await tick();
    expect((await row(p.paymentId)).status).toBe('pending');
    await backdate(p.paymentId, FLW_CHECKOUT_WINDOW_SECONDS + 1);
    const report = await tick();
    expect(report.actions.moved_to_review).toBeGreaterThanOrEqual(1);
    expect(await row(p.paymentId)).toMatchObject({ status: 'review', statusReason: 'OUTCOME_UNKNOWN' });
    await sim.complete(p.txRef, 'successful');
    const [stored] = await processed(p.txRef);
    expect(stored.outcome).toBe('applied');
    expect(await row(p.paymentId)).toMatchObject({ status: 'completed' });
    expect(await orderOf(p.orderId)).toMatchObject({ status: 'paid' });
  });

  it('issue 8.1: a late Flutterwave success that exceeds what the order still owes goes to review (EXCEEDS_OUTSTANDING), the order keeps what it really has', async () => {
    const p = await open(100);
    await sim.complete(p.txRef, 'pending');
    await backdate(p.paymentId, FLW_CHECKOUT_WINDOW_SECONDS + 1);
    await tick();
    expect(await row(p.paymentId)).toMatchObject({ status: 'review', statusReason: 'OUTCOME_UNKNOWN' });
    // The customer may have paid it: the order takes no new payment, by any provider (issue 8.2)...
    const blocked = await init(p.orderId, 60);
    expect(blocked.status).toBe(409);
    expect(blocked.body).toMatchObject({
      code: 'PAYMENT_OUTCOME_UNKNOWN',
      details: { payment: { paymentId: p.paymentId, provider: 'flutterwave' } },
    });
    expect(blocked.body.message).toMatch(/earlier Flutterwave payment/);
    const mpesa = await t
      .http()
      .post('/payments/stk-push')
      .set('Authorization', auth)
      .send({ phoneNumber: '0700000007', amount: 60, orderId: p.orderId });
    expect(mpesa.body.code).toBe('PAYMENT_OUTCOME_UNKNOWN');
    // ...until a manager releases it. Another payment of 60 goes through meanwhile.
    const manager = `Bearer ${t.token('shop-1', 'manager', 'manager-1')}`;
    expect(
      (
        await t
          .http()
          .post(`/payments/${p.paymentId}/release`)
          .set('Authorization', manager)
          .send({ reason: 'customer says the card page failed' })
      ).status,
    ).toBe(200);
    const second = await init(p.orderId, 60);
    expect(second.status).toBe(201);
    await sim.complete(second.body.txRef, 'successful');
    await processed(second.body.txRef);
    expect(await orderOf(p.orderId)).toMatchObject({ status: 'partially_paid', paid: 60, outstanding: 40 });
    // Then the first customer's payment of 100 succeeds after all.
    const done = await sim.complete(p.txRef, 'successful');
    await processed(p.txRef);
    expect(await row(p.paymentId)).toMatchObject({
      status: 'review',
      statusReason: 'EXCEEDS_OUTSTANDING',
      providerTransactionId: String(done.transaction!.id),
    });
    expect(await orderOf(p.orderId)).toMatchObject({ status: 'partially_paid', paid: 60, outstanding: 40 });
    expect(completionsOf(p.paymentId)).toHaveLength(0);
    const review = await t.http().get('/payments/review').query({ limit: 100 }).set('Authorization', manager);
    expect(review.body.items.map((i: { paymentId: string }) => i.paymentId)).toContain(p.paymentId);
  });

  it('verify endpoint: by txRef, paymentId and (once known) transactionId; records what Flutterwave says', async () => {
    const p = await open(55);
    sim.setFaults({ webhooks: { drop: true } });
    const verify = (body: object) =>
      t.http().post('/payments/flutterwave/verify').set('Authorization', auth).send(body);
    const early = await verify({ paymentId: p.paymentId });
    expect(early.status).toBe(200);
    expect(early.body).toMatchObject({ paymentId: p.paymentId, status: 'pending' });
    const done = await sim.complete(p.txRef, 'successful');
    // Within a second of the last look the answer comes from the database (one Flutterwave call per second per payment)...
    expect((await verify({ txRef: p.txRef })).body.status).toBe('pending');
    // ...a second later Flutterwave is asked again.
    await t.db.execute(
      sql`update payments set last_queried_at = now() - interval '2 seconds' where id = ${p.paymentId}`,
    );
    const res = await verify({ txRef: p.txRef });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      paymentId: p.paymentId,
      status: 'completed',
      providerTransactionId: String(done.transaction!.id),
    });
    const byId = await verify({ transactionId: done.transaction!.id });
    expect(byId.body).toMatchObject({ paymentId: p.paymentId, status: 'completed' });
    expect(completionsOf(p.paymentId)).toHaveLength(1);
    expect((await eventCounts(p.paymentId)).verify_requested).toBe(4);
  });

  it('verify endpoint refuses an M-Pesa payment by id with a clear 400', async () => {
    const orderId = await order(5);
    const push = await t
      .http()
      .post('/payments/stk-push')
      .set('Authorization', auth)
      .send({ phoneNumber: '0700000007', amount: 5, orderId });
    expect(push.status).toBe(201);
    const res = await t
      .http()
      .post('/payments/flutterwave/verify')
      .set('Authorization', auth)
      .send({ paymentId: push.body.paymentId });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({
      code: 'WRONG_PROVIDER',
      message: expect.stringContaining('not a Flutterwave one'),
    });
  });

  it('one payment in flight per order, and the amount may not exceed what is owed', async () => {
    const orderId = await order(100);
    const first = await init(orderId, 60);
    expect(first.status).toBe(201);
    const second = await init(orderId, 40);
    expect(second.status).toBe(409);
    expect(second.body).toMatchObject({
      code: 'PAYMENT_IN_PROGRESS',
      details: { payment: { paymentId: first.body.paymentId, status: 'pending', provider: 'flutterwave' } },
    });
    await sim.complete(first.body.txRef, 'successful');
    await processed(first.body.txRef);
    expect(await orderOf(orderId)).toMatchObject({ status: 'partially_paid', paid: 60, outstanding: 40 });
    const tooMuch = await init(orderId, 40.01);
    expect(tooMuch.status).toBe(400);
    expect(tooMuch.body.code).toBe('AMOUNT_EXCEEDS_OUTSTANDING');
    expect((await init(orderId, 40)).status).toBe(201);
  });

  it('Idempotency-Key: same body replays the first answer, a different body is a 409, concurrent retries create one link', async () => {
    const orderId = await order(30);
    const before = sim.stats().paymentRequests;
    const key = `flw-${orderId}`;
    const first = await init(orderId, 30, {}, { 'Idempotency-Key': key });
    expect(first.status).toBe(201);
    const replay = await init(orderId, 30, {}, { 'Idempotency-Key': key });
    expect(replay.status).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.body).toEqual(first.body);
    const conflict = await init(orderId, 29, {}, { 'Idempotency-Key': key });
    expect(conflict.status).toBe(409);
    expect(conflict.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(sim.stats().paymentRequests - before).toBe(1);

    const other = await order(25);
    const burst = await Promise.all(
      Array.from({ length: 5 }, () => init(other, 25, {}, { 'Idempotency-Key': `race-${other}` })),
    );
    for (const r of burst) expect([201, 409]).toContain(r.status);
    const ok = burst.filter((r) => r.status === 201);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    for (const r of ok) expect(r.body.paymentId).toBe(ok[0].body.paymentId);
    expect(sim.stats().paymentRequests - before).toBe(2);
  });

  it("another shop's payment and order are 404, never data", async () => {
    const p = await open(20);
    const other = `Bearer ${t.token('shop-2', 'manager', 'mgr-2')}`;
    const replies = [
      await t.http().post('/payments/flutterwave/verify').set('Authorization', other).send({ paymentId: p.paymentId }),
      await t.http().post('/payments/flutterwave/verify').set('Authorization', other).send({ txRef: p.txRef }),
      await t.http().get(`/payments/${p.paymentId}`).set('Authorization', other),
      await t
        .http()
        .post('/payments/flutterwave/init')
        .set('Authorization', other)
        .send({ orderId: p.orderId, amount: 20, customer: { email: 'a@b.co' } }),
    ];
    for (const r of replies) {
      expect(r.status).toBe(404);
      expect(r.body.code).toBe('NOT_FOUND');
      expect(JSON.stringify(r.body)).not.toMatch(/pending|flwlnk|checkoutUrl|"amount"/);
    }
    expect((await row(p.paymentId)).status).toBe('pending');
  });

  // ------------------------------------------------------------------ provider trouble

  it('Flutterwave down (503) at init → 502, payment unresolved; the reconciler fails it once Flutterwave says it never saw it', async () => {
    const orderId = await order(45);
    sim.setFaults({ down: true });
    const res = await init(orderId, 45);
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({
      code: 'PROVIDER_UNAVAILABLE',
      message: expect.stringContaining('check this payment'),
      details: { provider: 'flutterwave', status: 'unresolved' },
    });
    const paymentId = res.body.details.paymentId as string;
    expect(await row(paymentId)).toMatchObject({ status: 'unresolved', checkoutUrl: null });
    // The order is held while the outcome is unknown.
    expect((await init(orderId, 45)).status).toBe(409);
    // Verifying while Flutterwave is down: a clear error, nothing changed.
    const v = await t.http().post('/payments/flutterwave/verify').set('Authorization', auth).send({ paymentId });
    expect(v.status).toBe(502);
    expect(v.body.code).toBe('PROVIDER_UNAVAILABLE');
    expect((await row(paymentId)).status).toBe('unresolved');
    sim.setFaults({});

    // Too early for the reconciler to decide (the call might still be running somewhere).
    await tick();
    expect((await row(paymentId)).status).toBe('unresolved');
    await backdate(paymentId, 3600);
    const report = await tick();
    expect(report.actions.failed_not_found).toBeGreaterThanOrEqual(1);
    expect(await row(paymentId)).toMatchObject({ status: 'failed', statusReason: 'NOT_FOUND_AT_PROVIDER' });
    expect((await init(orderId, 45)).status).toBe(201);
  });

  it('Flutterwave too slow at init → 504, payment unresolved (the link was created but never reached anyone)', async () => {
    const orderId = await order(46);
    sim.setFaults({ latencyMs: { payments: 2500 } });
    const res = await init(orderId, 46);
    expect(res.status).toBe(504);
    expect(res.body).toMatchObject({ code: 'PROVIDER_TIMEOUT', details: { status: 'unresolved' } });
    expect(await row(res.body.details.paymentId)).toMatchObject({
      status: 'unresolved',
      statusReason: 'PROVIDER_TIMEOUT',
      checkoutUrl: null,
    });
  });

  it('Flutterwave refuses the request → 502 PROVIDER_REJECTED, payment failed (nothing happened), order free', async () => {
    const orderId = await order(47);
    sim.setFaults({ errors: { payments: { count: 1, status: 400, message: 'Merchant is not enabled for KES' } } });
    const res = await init(orderId, 47);
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({
      code: 'PROVIDER_REJECTED',
      message: expect.stringContaining('Merchant is not enabled for KES'),
      details: { status: 'failed' },
    });
    expect(await row(res.body.details.paymentId)).toMatchObject({
      status: 'failed',
      statusReason: 'PROVIDER_REJECTED',
      resultCode: 'HTTP_400',
    });
    expect((await init(orderId, 47)).status).toBe(201);
  });

  it('verify failing while a webhook is processed: the stored webhook stays unprocessed and the reconciler finishes it', async () => {
    const p = await open(48);
    sim.setFaults({ errors: { verify: { count: 1, status: 500, message: 'Internal error' } } });
    await sim.complete(p.txRef, 'successful');
    await sim.waitForWebhooks(p.txRef, 1);
    await waitFor(async () => sim.faults().errors?.verify === undefined);
    const [stored] = await waitFor(async () => {
      const rows = await inbox(p.txRef);
      return rows.length === 1 ? rows : undefined;
    });
    expect(stored).toMatchObject({ verified: true, processed_at: null });
    expect((await row(p.paymentId)).status).toBe('pending');
    // The failed verification used the payment's interval (1 s): the reconciler's replay comes after it.
    await waitFor(
      async () =>
        (
          (await t.db.execute(
            sql`select last_queried_at < now() - interval '1.2 seconds' as ok from payments where id = ${p.paymentId}`,
          )) as unknown as { rows: { ok: boolean }[] }
        ).rows[0].ok,
      10_000,
      100,
    );
    const report = await tick();
    expect(report.callbacksReplayed).toBeGreaterThanOrEqual(1);
    expect((await inbox(p.txRef))[0]).toMatchObject({ outcome: 'applied' });
    expect(await row(p.paymentId)).toMatchObject({ status: 'completed' });
  });

  // ------------------------------------------------------------------ other configurations (extra instances on the same database)

  describe('with POS_RETURN_URL, then with Flutterwave unreachable', () => {
    let sim2: FlutterwaveSimulator;
    let pos: ExtraTestApp;

    beforeAll(async () => {
      sim2 = await startFlutterwaveSimulator({ secretKey: SECRET_KEY, secretHash: SECRET_HASH, log: simulatorLog() });
      pos = await startExtraTestApp(t, flwEnv(sim2.url, { POS_RETURN_URL }));
    });
    afterAll(async () => {
      await pos?.close();
      await sim2?.close();
    });

    it('the browser is verified, then sent to the POS (init redirectUrl on the same origin, else POS_RETURN_URL)', async () => {
      const orderId = await order(33, pos.http);
      const evil = await init(orderId, 33, { redirectUrl: 'https://evil.example.com/pos' }, {}, pos.http);
      expect(evil.status).toBe(400);
      expect(evil.body.message).toBe('redirectUrl must be on https://pos.example.test (the origin of POS_RETURN_URL)');
      const res = await init(
        orderId,
        33,
        { redirectUrl: `https://pos.example.test/orders/${orderId}/paid` },
        {},
        pos.http,
      );
      expect(res.status).toBe(201);
      // Flutterwave always returns to this API, never straight to the client's URL.
      expect(sim2.getCheckout(res.body.txRef)!.redirectUrl).toBe(`${pos.baseUrl}${REDIRECT}`);
      const done = await sim2.complete(res.body.txRef, 'successful');
      const back = await request(pos.baseUrl).get(pathOf(done.redirectUrl!));
      expect(back.status).toBe(302);
      const location = new URL(back.headers.location);
      expect(location.origin + location.pathname).toBe(`https://pos.example.test/orders/${orderId}/paid`);
      expect(Object.fromEntries(location.searchParams)).toEqual({
        paymentId: res.body.paymentId,
        orderId,
        status: 'completed',
      });
      expect(await row(res.body.paymentId)).toMatchObject({ status: 'completed' });

      const plain = await open(34, pos.http);
      const cancelled = await sim2.complete(plain.txRef, 'cancelled');
      const back2 = await request(pos.baseUrl).get(pathOf(cancelled.redirectUrl!));
      expect(back2.status).toBe(302);
      const loc2 = new URL(back2.headers.location);
      expect(Object.fromEntries(loc2.searchParams)).toEqual({
        till: '1',
        paymentId: plain.paymentId,
        orderId: plain.orderId,
        status: 'pending',
      });
    });

    it('Flutterwave unreachable at init → 503 PROVIDER_UNREACHABLE with Retry-After, payment failed (nothing was sent)', async () => {
      await sim2.close();
      const orderId = await order(36, pos.http);
      const res = await init(orderId, 36, {}, {}, pos.http);
      expect(res.status).toBe(503);
      expect(res.headers['retry-after']).toBeDefined();
      expect(res.body).toMatchObject({
        code: 'PROVIDER_UNREACHABLE',
        details: { provider: 'flutterwave', status: 'failed' },
      });
      expect(await row(res.body.details.paymentId)).toMatchObject({
        status: 'failed',
        statusReason: 'PROVIDER_UNREACHABLE',
      });
    });
  });

  describe('Flutterwave switched off (FLUTTERWAVE_ENABLED=false)', () => {
    let off: ExtraTestApp;
    beforeAll(async () => {
      off = await startExtraTestApp(t, { RECONCILER_ENABLED: 'false' });
    });
    afterAll(() => off?.close());

    it('every route answers 503 PROVIDER_DISABLED and nothing changes', async () => {
      const orderId = await order(12, off.http);
      const before = await tableCounts(t.db);
      const replies = [
        await off
          .http()
          .post('/payments/flutterwave/init')
          .set('Authorization', auth)
          .send({ orderId, amount: 12, customer: { email: 'a@b.co' } }),
        await off
          .http()
          .post('/payments/flutterwave/verify')
          .set('Authorization', auth)
          .send({ txRef: 'SD-3f2c9a4e-8b1d-4c6e-9f0a-7d5e2b1c4a98' }),
        await off
          .http()
          .post(WEBHOOK)
          .set('verif-hash', SECRET_HASH)
          .send({ event: 'charge.completed', data: { id: 1, tx_ref: 'x' } }),
      ];
      for (const r of replies) {
        expect(r.status).toBe(503);
        expect(r.body).toMatchObject({
          code: 'PROVIDER_DISABLED',
          message: expect.stringContaining('FLUTTERWAVE_ENABLED'),
        });
      }
      const page = await request(off.baseUrl).get(`${REDIRECT}?tx_ref=SD-3f2c9a4e-8b1d-4c6e-9f0a-7d5e2b1c4a98`);
      expect(page.status).toBe(503);
      expect(page.text).toContain('switched off');
      expect(await tableCounts(t.db)).toEqual(before);
    });
  });
});
