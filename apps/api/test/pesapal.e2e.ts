import { EventEmitter2 } from '@nestjs/event-emitter';
import {
  PESAPAL_DEFAULT_CONSUMER_KEY,
  PESAPAL_DEFAULT_CONSUMER_SECRET,
  PesapalSimulator,
  startPesapalSimulator,
} from '@smartduka/card-simulators';
import { sql } from 'drizzle-orm';
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import request from 'supertest';
import { ipnSettingsKey } from '../src/payments/providers/pesapal/pesapal.helpers';
import type { PesapalIpnService } from '../src/payments/providers/pesapal/pesapal-ipn.service';
import { PESAPAL_IPN } from '../src/payments/providers/pesapal/pesapal.constants';
import { PAYMENT_COMPLETED_EVENT, PaymentCompletedEvent } from '../src/payments/payment-lifecycle.service';
import { ProviderServicesRegistry } from '../src/payments/provider-services.registry';
import { ReconcilerService } from '../src/payments/reconciler.service';
import {
  startExtraTestApp,
  startTestApp,
  tableCounts,
  TEST_CALLBACK_SECRET,
  TestApp,
  waitFor,
} from './helpers/test-app';
import { recordSecrets, simulatorLog } from './log-scan/sink';

/**
 * Pesapal API 3.0 end to end: the real app over HTTP, a real database and the Pesapal simulator
 * (tokens, IPN registration, SubmitOrderRequest, payment page outcomes, GetTransactionStatus,
 * CancelOrder, IPNs with faults). The reconciler runs only when a test calls tick().
 */

const IPN_CHANGE = 'IPNCHANGE';

function pesapalEnv(sim: PesapalSimulator, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PESAPAL_ENABLED: 'true',
    PESAPAL_ENV: 'simulator',
    PESAPAL_BASE_URL: sim.url,
    PESAPAL_CONSUMER_KEY: PESAPAL_DEFAULT_CONSUMER_KEY,
    PESAPAL_CONSUMER_SECRET: PESAPAL_DEFAULT_CONSUMER_SECRET,
    PESAPAL_HTTP_TIMEOUT_MS: '1500',
    RECONCILER_ENABLED: 'false',
    RECONCILER_PENDING_GRACE_SECONDS: '0',
    RECONCILER_INBOX_RETRY_AFTER_SECONDS: '0',
    ...extra,
  };
}

async function startSim(): Promise<PesapalSimulator> {
  recordSecrets([
    { kind: 'consumer-key', value: PESAPAL_DEFAULT_CONSUMER_KEY },
    { kind: 'consumer-secret', value: PESAPAL_DEFAULT_CONSUMER_SECRET, pair: PESAPAL_DEFAULT_CONSUMER_KEY },
  ]);
  // No IPN retries unless a test asks for them: every delivery is the one the test caused.
  return startPesapalSimulator({ ipnRetry: { attempts: 0, intervalMs: 100 }, log: simulatorLog() });
}

type Rows<T> = { rows: T[] };
const rowsOf = <T>(r: unknown): T[] => (r as Rows<T>).rows;

interface Ctx {
  t: TestApp;
  sim: PesapalSimulator;
  auth: string;
}

/** Shared helpers over one app + simulator. */
function helpers(ctx: () => Ctx, prefix: string) {
  let n = 0;
  const h = {
    async order(total: number): Promise<string> {
      const id = `${prefix}-${++n}`;
      const res = await ctx().t.http().post('/orders').set('Authorization', ctx().auth).send({ id, total });
      expect(res.status).toBe(201);
      return id;
    },
    init(
      orderId: string,
      amount: number | string,
      extra: Record<string, unknown> = {},
      headers: Record<string, string> = {},
      http = ctx().t.http,
    ) {
      return http()
        .post('/payments/pesapal/init')
        .set('Authorization', ctx().auth)
        .set(headers)
        .send({ orderId, amount, customer: { phoneNumber: '0712345678' }, ...extra });
    },
    async opened(total = 100, http = ctx().t.http) {
      const orderId = await h.order(total);
      const res = await h.init(orderId, total, {}, {}, http);
      expect(res.status).toBe(201);
      return { ...res.body, orderId } as {
        paymentId: string;
        orderTrackingId: string;
        redirectUrl: string;
        reference: string;
        orderId: string;
        status: string;
      };
    },
    status(q: Record<string, string>, auth = ctx().auth) {
      return ctx().t.http().get('/payments/pesapal/status').query(q).set('Authorization', auth);
    },
    async row(paymentId: string) {
      return rowsOf<{
        status: string;
        status_reason: string | null;
        result_code: string | null;
        provider_transaction_id: string | null;
        provider_receipt: string | null;
        payment_method: string | null;
        checkout_url: string | null;
      }>(
        await ctx().t.db.execute(
          sql`select status, status_reason, result_code, provider_transaction_id, provider_receipt, payment_method, checkout_url from payments where id = ${paymentId}`,
        ),
      )[0];
    },
    async orderView(orderId: string) {
      return (await ctx().t.http().get(`/orders/${orderId}`).set('Authorization', ctx().auth)).body as {
        status: string;
        paid: number;
        outstanding: number;
      };
    },
    async eventCounts(paymentId: string): Promise<Record<string, number>> {
      const rows = rowsOf<{ type: string; c: number }>(
        await ctx().t.db.execute(
          sql`select type, count(*)::int as c from payment_events where payment_id = ${paymentId} group by type`,
        ),
      );
      return Object.fromEntries(rows.map((r) => [r.type, r.c]));
    },
    async inbox(trackingId: string) {
      return rowsOf<{ verified: boolean; outcome: string | null; processed: boolean; provider: string }>(
        await ctx().t.db.execute(
          sql`select verified, outcome, processed_at is not null as processed, provider from callback_inbox where checkout_request_id = ${trackingId} order by id`,
        ),
      );
    },
    ipn(body: Record<string, unknown>) {
      return request(ctx().t.baseUrl).post('/payments/pesapal/callback').send(body);
    },
    ipnFor(p: { orderTrackingId: string; reference: string }) {
      return {
        OrderTrackingId: p.orderTrackingId,
        OrderMerchantReference: p.reference,
        OrderNotificationType: IPN_CHANGE,
      };
    },
    /** Until the payment may be looked up again: one GetTransactionStatus per payment per 2 s, whoever asks. */
    async lookupAllowed(paymentId: string) {
      await waitFor(
        async () =>
          rowsOf<{ ok: boolean }>(
            await ctx().t.db.execute(
              sql`select coalesce(last_queried_at < now() - interval '2.2 seconds', true) as ok from payments where id = ${paymentId}`,
            ),
          )[0].ok,
        10_000,
        100,
      );
    },
  };
  return h;
}

describe('Pesapal payments', () => {
  let t: TestApp;
  let sim: PesapalSimulator;
  let auth: string;
  const completions: PaymentCompletedEvent[] = [];
  const h = helpers(() => ({ t, sim, auth }), 'PP');
  const completionsOf = (paymentId: string) => completions.filter((e) => e.paymentId === paymentId);

  beforeAll(async () => {
    sim = await startSim();
    t = await startTestApp({ env: pesapalEnv(sim) });
    auth = `Bearer ${t.token()}`;
    t.app.get(EventEmitter2).on(PAYMENT_COMPLETED_EVENT, (e: PaymentCompletedEvent) => completions.push(e));
    await t.app.get<PesapalIpnService>(PESAPAL_IPN).ensure();
  });
  afterAll(async () => {
    await t.close();
    await sim.close();
  });
  afterEach(() => sim.setFaults({}));

  const ipnUrl = () => `${t.baseUrl}/payments/pesapal/callback`;

  it('init → payment page → pay → IPN → completed, order paid, IPN acknowledged as Pesapal expects', async () => {
    const orderId = await h.order(2450.5);
    const res = await h.init(orderId, '2450.50', {
      customer: { email: 'jane@example.com', firstName: 'Jane', lastName: 'Wanjiku' },
      description: 'Duka receipt 123',
    });
    expect(res.status).toBe(201);
    const { paymentId, orderTrackingId, redirectUrl, reference } = res.body;
    expect(res.body).toMatchObject({ status: 'pending', orderId, amount: 2450.5, currency: 'KES' });
    expect(redirectUrl).toBe(`${sim.url}/pesapaliframe/PesapalIframe3/Index?OrderTrackingId=${orderTrackingId}`);
    expect(reference).toMatch(new RegExp(`^SD-${orderId}-[A-Z0-9]{12}$`));

    // What Pesapal got: our reference, exact amount, our return URL and the one stored IPN id.
    const simOrder = sim.getOrder(orderTrackingId)!;
    const registration = sim.ipnRegistrations().filter((r) => r.url === ipnUrl());
    expect(registration).toHaveLength(1);
    expect(simOrder).toMatchObject({
      merchantReference: reference,
      amountMinor: 245050n,
      currency: 'KES',
      description: 'Duka receipt 123',
      callbackUrl: `${t.baseUrl}/payments/pesapal/return`,
      notificationId: registration[0].ipnId,
    });
    expect(simOrder.billingAddress).toMatchObject({
      email_address: 'jane@example.com',
      first_name: 'Jane',
      last_name: 'Wanjiku',
    });
    expect(await h.row(paymentId)).toMatchObject({
      status: 'pending',
      provider_transaction_id: orderTrackingId,
      checkout_url: redirectUrl,
    });

    // The payment page is reachable where we send the customer.
    expect((await request(redirectUrl).get('')).text).toContain('data-order-tracking-id');

    const done = await sim.complete(orderTrackingId, { outcome: 'completed', paymentMethod: 'Visa' });
    const [ipn] = await sim.waitForIpns(orderTrackingId);
    expect(ipn).toMatchObject({ method: 'POST', acknowledged: true, problems: [] });
    expect(JSON.parse(ipn.response!)).toEqual({
      orderNotificationType: IPN_CHANGE,
      orderTrackingId,
      orderMerchantReference: reference,
      status: 200,
    });

    const st = await h.status({ paymentId });
    expect(st.status).toBe(200);
    expect(st.body).toMatchObject({
      paymentId,
      status: 'completed',
      statusReason: 'PAID',
      provider: 'pesapal',
      reference,
      providerTransactionId: orderTrackingId,
      providerReceipt: done.order.confirmationCode,
      paymentMethod: 'Visa',
      amount: 2450.5,
    });
    expect(await h.orderView(orderId)).toMatchObject({ status: 'paid', outstanding: 0 });
    expect(completionsOf(paymentId)).toHaveLength(1);
    expect(await h.inbox(orderTrackingId)).toEqual([
      { verified: false, outcome: 'applied', processed: true, provider: 'pesapal' },
    ]);

    // The browser comes back (no POS_RETURN_URL here): a small result page.
    const back = await request(done.redirectUrl).get('');
    expect(back.status).toBe(200);
    expect(back.headers['content-type']).toMatch(/text\/html/);
    expect(back.text).toContain('Payment received');
    expect(back.text).toContain('data-status="completed"');
    // Same answer by tracking id; GET /payments/:id agrees.
    expect((await h.status({ orderTrackingId })).body.paymentId).toBe(paymentId);
    expect((await t.http().get(`/payments/${paymentId}`).set('Authorization', auth)).body.status).toBe('completed');
  });

  it('a declined payment fails, the order at Pesapal is cancelled (the page cannot take it later) and the order can be paid again', async () => {
    const p = await h.opened(300);
    await sim.complete(p.orderTrackingId, 'failed');
    const [ipn] = await sim.waitForIpns(p.orderTrackingId);
    expect(ipn.acknowledged).toBe(true);
    expect(await h.row(p.paymentId)).toMatchObject({
      status: 'failed',
      status_reason: 'FAILED_AT_PROVIDER',
      result_code: '2',
    });
    expect(sim.getOrder(p.orderTrackingId)!.state).toBe('cancelled');
    await expect(sim.complete(p.orderTrackingId, 'completed')).rejects.toThrow(/cancelled/);
    expect(await h.orderView(p.orderId)).toMatchObject({ status: 'unpaid', paid: 0 });
    expect(completionsOf(p.paymentId)).toHaveLength(0);
    const again = await h.init(p.orderId, 300);
    expect(again.status).toBe(201);
  });

  it('the browser return never marks paid by itself: it asks Pesapal, and shows what Pesapal says', async () => {
    const p = await h.opened(120);
    // Mobile money prompt sent, not approved yet: Pesapal redirects the browser before any money moves.
    const pending = await sim.complete(p.orderTrackingId, { outcome: 'pending', paymentMethod: 'Mpesa' });
    const statusCallsBefore = sim.stats().statusRequests;
    const back = await request(pending.redirectUrl).get('');
    expect(back.status).toBe(200);
    expect(back.text).toContain('Waiting for confirmation');
    expect(back.text).toContain('data-status="pending"');
    expect(sim.stats().statusRequests).toBe(statusCallsBefore + 1);
    // A forged return claiming success changes nothing either.
    const forged = await t.http().get('/payments/pesapal/return').query({
      OrderTrackingId: p.orderTrackingId,
      OrderMerchantReference: p.reference,
      OrderNotificationType: 'CALLBACKURL',
      status: 'COMPLETED',
      payment_status_description: 'Completed',
    });
    expect(forged.status).toBe(200);
    expect(forged.text).toContain('data-status="pending"');
    expect((await h.row(p.paymentId)).status).toBe('pending');
    expect(await h.orderView(p.orderId)).toMatchObject({ status: 'unpaid' });

    // The customer approves; the IPN is lost; the next return (after the per-payment interval) confirms it with Pesapal.
    sim.setFaults({ ipns: { drop: true } });
    await sim.complete(p.orderTrackingId, 'completed');
    await h.lookupAllowed(p.paymentId);
    const later = await request(pending.redirectUrl).get('');
    expect(later.text).toContain('data-status="completed"');
    expect(await h.orderView(p.orderId)).toMatchObject({ status: 'paid' });
  });

  it('with POS_RETURN_URL the browser is redirected to the POS with paymentId, orderId and status', async () => {
    const extra = await startExtraTestApp(
      t,
      pesapalEnv(sim, { PUBLIC_BASE_URL: t.baseUrl, POS_RETURN_URL: 'https://pos.example.test/after-pay?till=3' }),
    );
    try {
      const p = await h.opened(50);
      await sim.complete(p.orderTrackingId, 'completed');
      await sim.waitForIpns(p.orderTrackingId);
      const res = await extra.http().get('/payments/pesapal/return').query({
        OrderTrackingId: p.orderTrackingId,
        OrderMerchantReference: p.reference,
        OrderNotificationType: 'CALLBACKURL',
      });
      expect(res.status).toBe(302);
      const location = new URL(res.headers.location);
      expect(location.origin + location.pathname).toBe('https://pos.example.test/after-pay');
      expect(Object.fromEntries(location.searchParams)).toEqual({
        till: '3',
        paymentId: p.paymentId,
        orderId: p.orderId,
        status: 'completed',
      });
    } finally {
      await extra.close();
    }
  });

  it.each([
    ['amount', { amount: 1 }, 'AMOUNT_MISMATCH'],
    ['currency', { currency: 'USD' }, 'CURRENCY_MISMATCH'],
  ])('tampered %s: Pesapal reports a different payment → review, order NOT paid', async (_what, tamper, problem) => {
    const p = await h.opened(200);
    await sim.complete(p.orderTrackingId, { outcome: 'completed', ...tamper });
    const [ipn] = await sim.waitForIpns(p.orderTrackingId);
    expect(ipn.acknowledged).toBe(true);
    expect(await h.row(p.paymentId)).toMatchObject({ status: 'review', status_reason: problem });
    expect(await h.orderView(p.orderId)).toMatchObject({ status: 'unpaid', paid: 0 });
    expect(completionsOf(p.paymentId)).toHaveLength(0);
    expect((await h.eventCounts(p.paymentId)).integrity_failure).toBe(1);
  });

  describe('forged IPNs', () => {
    it('an IPN for an order Pesapal says is unpaid: confirmed, acknowledged, nothing changes', async () => {
      const p = await h.opened(80);
      const before = await tableCounts(t.db);
      const statusCalls = sim.stats().statusRequests;
      const res = await h.ipn(h.ipnFor(p));
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        orderNotificationType: IPN_CHANGE,
        orderTrackingId: p.orderTrackingId,
        orderMerchantReference: p.reference,
        status: 200,
      });
      expect(sim.stats().statusRequests).toBe(statusCalls + 1);
      const after = await tableCounts(t.db);
      expect(after).toEqual({ ...before, callback_inbox: before.callback_inbox + 1 });
      expect(await h.inbox(p.orderTrackingId)).toEqual([
        { verified: false, outcome: 'pending', processed: true, provider: 'pesapal' },
      ]);
    });

    it.each([
      [
        'an unknown merchant reference',
        (p: { orderTrackingId: string }) => ({
          OrderTrackingId: p.orderTrackingId,
          OrderMerchantReference: 'SD-NOPE-AAAAAAAAAAAA',
          OrderNotificationType: IPN_CHANGE,
        }),
        'unknown_payment',
      ],
      [
        "another order's tracking id with our reference",
        (p: { reference: string }) => ({
          OrderTrackingId: '00000000-1111-2222-3333-444444444444',
          OrderMerchantReference: p.reference,
          OrderNotificationType: IPN_CHANGE,
        }),
        'mismatch_ignored',
      ],
      ['no identifiers at all', () => ({ hello: 'world' }), 'invalid_shape'],
      [
        'identifiers that are not ids',
        () => ({
          OrderTrackingId: '../../etc/passwd',
          OrderMerchantReference: '<script>',
          OrderNotificationType: IPN_CHANGE,
        }),
        'invalid_shape',
      ],
    ])(
      '%s: error acknowledgement, Pesapal not asked, nothing but the stored notification changes',
      async (_name, build, outcome) => {
        const p = await h.opened(81);
        const body = build(p as never) as Record<string, string>;
        const before = await tableCounts(t.db);
        const statusCalls = sim.stats().statusRequests;
        const res = await h.ipn(body);
        expect(res.status).toBe(200);
        expect(res.body).toEqual({
          orderNotificationType: body.OrderNotificationType ?? IPN_CHANGE,
          orderTrackingId: body.OrderTrackingId ?? '',
          orderMerchantReference: body.OrderMerchantReference ?? '',
          status: 500,
        });
        expect(sim.stats().statusRequests).toBe(statusCalls);
        expect(await tableCounts(t.db)).toEqual({ ...before, callback_inbox: before.callback_inbox + 1 });
        const last = rowsOf<{ outcome: string; verified: boolean }>(
          await t.db.execute(sql`select outcome, verified from callback_inbox order by id desc limit 1`),
        )[0];
        expect(last).toEqual({ outcome, verified: false });
      },
    );
  });

  describe('review: notifications are throttled and coalesced per payment', () => {
    const ipnRows = async (trackingId: string) =>
      rowsOf<{ repeats: number; processed: boolean; outcome: string | null }>(
        await t.db.execute(
          sql`select repeats, processed_at is not null as processed, outcome from callback_inbox where checkout_request_id = ${trackingId} order by id`,
        ),
      );
    const deliveriesOf = (rows: { repeats: number }[]) => rows.reduce((sum, r) => sum + 1 + r.repeats, 0);
    const ackFor = (p: { orderTrackingId: string; reference: string }) => ({
      orderNotificationType: IPN_CHANGE,
      orderTrackingId: p.orderTrackingId,
      orderMerchantReference: p.reference,
      status: 200,
    });
    const ipnVia = (base: string, p: { orderTrackingId: string; reference: string }, get: boolean) =>
      get
        ? request(base).get('/payments/pesapal/callback').query(h.ipnFor(p))
        : request(base).post('/payments/pesapal/callback').send(h.ipnFor(p));

    it("review: 50 parallel IPNs (GET and POST, over two instances) for one open payment make at most one GetTransactionStatus call per interval and one inbox row per window; every one is acknowledged in Pesapal's form", async () => {
      const extra = await startExtraTestApp(t, pesapalEnv(sim));
      try {
        const p = await h.opened(130);
        const calls = sim.stats().statusRequests;
        const replies = await Promise.all(
          Array.from({ length: 50 }, (_, i) => ipnVia(i % 4 < 2 ? t.baseUrl : extra.baseUrl, p, i % 2 === 1)),
        );
        for (const r of replies) expect({ status: r.status, body: r.body }).toEqual({ status: 200, body: ackFor(p) });
        const made = sim.stats().statusRequests - calls;
        // One per interval (2 s) across instances; a slow machine may spread the burst over two.
        expect(made).toBeGreaterThanOrEqual(1);
        expect(made).toBeLessThanOrEqual(2);
        const rows = await ipnRows(p.orderTrackingId);
        expect(rows.length).toBeLessThanOrEqual(2);
        expect(deliveriesOf(rows)).toBe(50);
        expect((await h.row(p.paymentId)).status).toBe('pending');
      } finally {
        await extra.close();
      }
    });

    it('review: 30 parallel browser returns for one open payment share one GetTransactionStatus call', async () => {
      const p = await h.opened(131);
      const calls = sim.stats().statusRequests;
      const pages = await Promise.all(
        Array.from({ length: 30 }, () =>
          request(t.baseUrl)
            .get('/payments/pesapal/return')
            .query({ OrderTrackingId: p.orderTrackingId, OrderMerchantReference: p.reference }),
        ),
      );
      for (const r of pages)
        expect({ status: r.status, pending: r.text.includes('data-status="pending"') }).toEqual({
          status: 200,
          pending: true,
        });
      const made = sim.stats().statusRequests - calls;
      expect(made).toBeGreaterThanOrEqual(1);
      expect(made).toBeLessThanOrEqual(2);
    });

    it('review: IPNs for a payment Pesapal completed are acknowledged without asking Pesapal each time (one look after it closed, for a reversal, then none within the recheck interval); a reversed one is never asked again', async () => {
      const p = await h.opened(132);
      await sim.complete(p.orderTrackingId, 'completed');
      await sim.waitForIpns(p.orderTrackingId);
      expect((await h.row(p.paymentId)).status).toBe('completed');
      const calls = sim.stats().statusRequests;
      for (let round = 0; round < 2; round++) {
        const replies = await Promise.all(Array.from({ length: 30 }, (_, i) => ipnVia(t.baseUrl, p, i % 2 === 1)));
        for (const r of replies) expect({ status: r.status, body: r.body }).toEqual({ status: 200, body: ackFor(p) });
      }
      expect(sim.stats().statusRequests - calls).toBeLessThanOrEqual(1);
      expect(completionsOf(p.paymentId)).toHaveLength(1);

      const r = await h.opened(133);
      await sim.complete(r.orderTrackingId, 'completed');
      await sim.waitForIpns(r.orderTrackingId);
      await sim.reverse(r.orderTrackingId);
      await sim.waitForIpns(r.orderTrackingId, 2);
      expect(await h.row(r.paymentId)).toMatchObject({ status: 'completed', status_reason: 'REVERSED_AT_PROVIDER' });
      const before = sim.stats().statusRequests;
      const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => ipnVia(t.baseUrl, r, i % 2 === 1)));
      for (const x of replies) expect({ status: x.status, body: x.body }).toEqual({ status: 200, body: ackFor(r) });
      expect(sim.stats().statusRequests).toBe(before);
    });
  });

  it('a replayed IPN after completion changes nothing (one completion)', async () => {
    const p = await h.opened(90);
    await sim.complete(p.orderTrackingId, 'completed');
    await sim.waitForIpns(p.orderTrackingId);
    const before = await tableCounts(t.db);
    const statusCalls = sim.stats().statusRequests;
    for (let i = 0; i < 2; i++) {
      const res = await h.ipn(h.ipnFor(p));
      expect(res.body.status).toBe(200);
    }
    const after = await tableCounts(t.db);
    expect(after.payment_states).toBe(before.payment_states);
    expect(after.order_states).toBe(before.order_states);
    expect(completionsOf(p.paymentId)).toHaveLength(1);
    // The first one after it closed is looked up (it could be a reversal); the second is not (review: at most one per recheck interval).
    expect(sim.stats().statusRequests - statusCalls).toBe(1);
    expect((await h.eventCounts(p.paymentId)).duplicate_ignored).toBe(1);
  });

  it('10 concurrent duplicate IPNs → one completion, order paid once', async () => {
    const p = await h.opened(150);
    sim.setFaults({ ipns: { drop: true } });
    await sim.complete(p.orderTrackingId, 'completed');
    const statusCalls = sim.stats().statusRequests;
    const replies = await Promise.all(Array.from({ length: 10 }, () => h.ipn(h.ipnFor(p))));
    for (const r of replies)
      expect(r.body).toEqual({
        orderNotificationType: IPN_CHANGE,
        orderTrackingId: p.orderTrackingId,
        orderMerchantReference: p.reference,
        status: 200,
      });
    expect((await h.row(p.paymentId)).status).toBe('completed');
    expect(completionsOf(p.paymentId)).toHaveLength(1);
    expect(completions.filter((e) => e.orderId === p.orderId && e.orderPaid)).toHaveLength(1);
    const counts = await h.eventCounts(p.paymentId);
    expect(counts.status_changed).toBe(1);
    // review: they share one GetTransactionStatus call and one inbox row (the other nine counted on it).
    expect(sim.stats().statusRequests - statusCalls).toBe(1);
    expect(counts.duplicate_ignored).toBeUndefined();
    const rows = rowsOf<{ repeats: number }>(
      await t.db.execute(sql`select repeats from callback_inbox where checkout_request_id = ${p.orderTrackingId}`),
    );
    expect(rows.reduce((sum, r) => sum + 1 + r.repeats, 0)).toBe(10);
    expect(rows.length).toBeLessThanOrEqual(2);
  });

  it("the simulator's duplicate IPNs are all acknowledged and complete the payment once", async () => {
    const p = await h.opened(160);
    sim.setFaults({ ipns: { duplicates: 2 } });
    await sim.complete(p.orderTrackingId, 'completed');
    const deliveries = await sim.waitForIpns(p.orderTrackingId, 3);
    expect(deliveries.map((d) => d.acknowledged)).toEqual([true, true, true]);
    expect(completionsOf(p.paymentId)).toHaveLength(1);
    expect(await h.orderView(p.orderId)).toMatchObject({ status: 'paid' });
  });

  it('the IPN endpoint takes GET (query string) as well as POST', async () => {
    const p = await h.opened(170);
    sim.setFaults({ ipns: { drop: true } });
    await sim.complete(p.orderTrackingId, 'completed');
    const res = await request(t.baseUrl).get('/payments/pesapal/callback').query(h.ipnFor(p));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      orderNotificationType: IPN_CHANGE,
      orderTrackingId: p.orderTrackingId,
      orderMerchantReference: p.reference,
      status: 200,
    });
    expect((await h.row(p.paymentId)).status).toBe('completed');
  });

  it('an instance configured for GET IPNs registers its URL as GET and Pesapal delivers by GET', async () => {
    const extra = await startExtraTestApp(t, pesapalEnv(sim, { PESAPAL_IPN_NOTIFICATION_TYPE: 'GET' }));
    try {
      const p = await h.opened(175, extra.http);
      const reg = sim.ipnRegistrations().find((r) => r.url === `${extra.baseUrl}/payments/pesapal/callback`)!;
      expect(reg.type).toBe('GET');
      expect(sim.getOrder(p.orderTrackingId)!.notificationId).toBe(reg.ipnId);
      await sim.complete(p.orderTrackingId, 'completed');
      const [ipn] = await sim.waitForIpns(p.orderTrackingId);
      expect(ipn).toMatchObject({ method: 'GET', acknowledged: true, problems: [] });
      expect((await h.row(p.paymentId)).status).toBe('completed');
    } finally {
      await extra.close();
    }
  });

  it('a reversal after completion is recorded; the payment stays completed and the reversal shows as a refund of the order', async () => {
    const p = await h.opened(210);
    await sim.complete(p.orderTrackingId, 'completed');
    await sim.waitForIpns(p.orderTrackingId);
    await sim.reverse(p.orderTrackingId);
    const ipns = await sim.waitForIpns(p.orderTrackingId, 2);
    expect(ipns[1].acknowledged).toBe(true);
    expect(await h.row(p.paymentId)).toMatchObject({
      status: 'completed',
      status_reason: 'REVERSED_AT_PROVIDER',
      result_code: '3',
    });
    // Nobody here asked: a refund Pesapal made on its own (card-refunds.e2e.ts has the rest).
    expect(await h.orderView(p.orderId)).toMatchObject({ status: 'refunded', paid: 0, refunded: 210 });
    // Replayed reversal IPN: no second event, no second refund.
    await h.ipn(h.ipnFor(p));
    expect((await h.eventCounts(p.paymentId)).reversed_at_provider).toBe(1);
    expect((await h.eventCounts(p.paymentId)).refund_reported_by_provider).toBe(1);
  });

  it('a payment Pesapal completes after we failed it (cancellation refused) goes to review as PAID_AFTER_CLOSE; the order is not paid', async () => {
    const p = await h.opened(220);
    sim.setFaults({
      errors: { cancel: { count: 1, code: 'cancel_failed', message: 'Order cannot be cancelled right now' } },
    });
    await sim.complete(p.orderTrackingId, 'failed');
    await sim.waitForIpns(p.orderTrackingId);
    expect(await h.row(p.paymentId)).toMatchObject({ status: 'failed' });
    expect((await h.eventCounts(p.paymentId)).provider_cancel).toBe(1);
    // The page still takes a second try, and it succeeds: money moved on a payment we closed.
    const done = await sim.complete(p.orderTrackingId, 'completed');
    const ipns = await sim.waitForIpns(p.orderTrackingId, 2);
    expect(ipns[1].acknowledged).toBe(true);
    expect(await h.row(p.paymentId)).toMatchObject({
      status: 'review',
      status_reason: 'PAID_AFTER_CLOSE',
      provider_receipt: done.order.confirmationCode,
    });
    expect((await h.eventCounts(p.paymentId)).integrity_failure).toBe(1);
    expect(await h.orderView(p.orderId)).toMatchObject({ status: 'unpaid' });
    expect(completionsOf(p.paymentId)).toHaveLength(0);
  });

  describe('provider trouble', () => {
    it('Pesapal down (HTML 503): clear 502, payment unresolved (not retried), the order keeps one payment in flight', async () => {
      const orderId = await h.order(60);
      sim.setFaults({ down: true });
      const res = await h.init(orderId, 60);
      expect(res.status).toBe(502);
      expect(res.body).toMatchObject({
        code: 'PROVIDER_UNAVAILABLE',
        details: { provider: 'pesapal', status: 'unresolved' },
      });
      expect(res.body.message).toMatch(/do not start another payment/);
      const paymentId = res.body.details.paymentId;
      expect(await h.row(paymentId)).toMatchObject({
        status: 'unresolved',
        status_reason: 'PROVIDER_UNAVAILABLE',
        provider_transaction_id: null,
      });
      sim.setFaults({});
      const again = await h.init(orderId, 60);
      expect(again.status).toBe(409);
      expect(again.body.code).toBe('PAYMENT_IN_PROGRESS');
      const st = await h.status({ paymentId });
      expect(st.body).toMatchObject({ status: 'unresolved' });
      expect(await h.orderView(orderId)).toMatchObject({ status: 'unpaid' });
    });

    it("Pesapal's firewall blocks the request (HTML 403): 503 with Retry-After, payment failed, order free for a new try", async () => {
      const orderId = await h.order(61);
      sim.setFaults({ cloudflareBlocks: 1 });
      const res = await h.init(orderId, 61);
      expect(res.status).toBe(503);
      expect(res.headers['retry-after']).toBeDefined();
      expect(res.body).toMatchObject({ code: 'PROVIDER_UNREACHABLE', details: { status: 'failed' } });
      expect((await h.row(res.body.details.paymentId)).status).toBe('failed');
      expect((await h.init(orderId, 61)).status).toBe(201);
    });

    it('timeout: 504, payment unresolved; the IPN that names both ids later links and completes it', async () => {
      const orderId = await h.order(62);
      sim.setFaults({ latencyMs: { submit: 2500 } });
      const res = await h.init(orderId, 62);
      expect(res.status).toBe(504);
      expect(res.body).toMatchObject({ code: 'PROVIDER_TIMEOUT', details: { status: 'unresolved' } });
      const paymentId = res.body.details.paymentId;
      const ref = rowsOf<{ provider_reference: string }>(
        await t.db.execute(sql`select provider_reference from payments where id = ${paymentId}`),
      )[0].provider_reference;
      sim.setFaults({});
      // Pesapal did create the order (the answer was lost); the customer pays it anyway.
      const simOrder = sim.getOrder(ref)!;
      await sim.complete(ref, 'completed');
      const [ipn] = await sim.waitForIpns(simOrder.orderTrackingId);
      expect(ipn.acknowledged).toBe(true);
      expect(await h.row(paymentId)).toMatchObject({
        status: 'completed',
        provider_transaction_id: simOrder.orderTrackingId,
      });
      expect(await h.orderView(orderId)).toMatchObject({ status: 'paid' });
    });

    it('HTTP 200 with an error object from Pesapal becomes a clear 502 with its message; payment failed', async () => {
      const orderId = await h.order(63);
      sim.setFaults({
        errors: {
          submit: {
            count: 1,
            code: 'invalid_api_request_parameters',
            message: 'Currency KES is not enabled for this merchant account',
          },
        },
      });
      const res = await h.init(orderId, 63);
      expect(res.status).toBe(502);
      expect(res.body).toMatchObject({
        code: 'PROVIDER_REJECTED',
        details: { provider: 'pesapal', providerErrorCode: 'invalid_api_request_parameters', status: 'failed' },
      });
      expect(res.body.message).toContain('Currency KES is not enabled for this merchant account');
      expect(await h.row(res.body.details.paymentId)).toMatchObject({
        status: 'failed',
        status_reason: 'PROVIDER_REJECTED',
        result_code: 'invalid_api_request_parameters',
      });
      expect((await h.init(orderId, 63)).status).toBe(201);
    });

    it('wrong consumer secret: 502 PROVIDER_AUTH_FAILED before anything is written', async () => {
      const extra = await startExtraTestApp(t, pesapalEnv(sim, { PESAPAL_CONSUMER_SECRET: 'not-the-secret-at-all' }));
      try {
        const orderId = await h.order(64);
        const before = await tableCounts(t.db);
        const res = await h.init(orderId, 64, {}, {}, extra.http);
        expect(res.status).toBe(502);
        expect(res.body.code).toBe('PROVIDER_AUTH_FAILED');
        expect(res.body.message).toMatch(/consumer key\/secret/);
        expect(res.body.message).not.toContain('not-the-secret-at-all');
        expect(await tableCounts(t.db)).toEqual(before);
      } finally {
        await extra.close();
      }
    });

    it('an IPN whose status check fails gets the error acknowledgement; Pesapal retries and it settles; the stored copy is finished by the reconciler', async () => {
      const p = await h.opened(65);
      // Pesapal retries after more than the per-payment lookup interval (2 s; the failed call used it).
      sim.configure({ ipnRetry: { attempts: 1, intervalMs: 2500 } });
      try {
        sim.setFaults({ errors: { status: { count: 1, code: 'internal_error', message: 'Something went wrong' } } });
        await sim.complete(p.orderTrackingId, 'completed');
        const ipns = await sim.waitForIpns(p.orderTrackingId, 2);
        expect(ipns.map((d) => d.acknowledged)).toEqual([false, true]);
        expect(JSON.parse(ipns[0].response!).status).toBe(500);
      } finally {
        sim.configure({ ipnRetry: { attempts: 0, intervalMs: 100 } });
      }
      expect((await h.row(p.paymentId)).status).toBe('completed');
      // One row when the retry lands in the first one's 10 s window (counted on it, which it then
      // finishes), else two: the first stays unprocessed until the reconciler finishes it.
      const outcomes = (await h.inbox(p.orderTrackingId)).map((r) => r.outcome);
      expect(outcomes).toEqual(outcomes.length === 1 ? ['applied'] : [null, 'applied']);
      await t.app.get(ReconcilerService).tick();
      expect((await h.inbox(p.orderTrackingId)).map((r) => r.outcome)).toEqual(
        outcomes.length === 1 ? ['applied'] : ['duplicate', 'applied'],
      );
      expect(completionsOf(p.paymentId)).toHaveLength(1);
    });
  });

  it('IPN dropped → the reconciler settles the payment with GetTransactionStatus', async () => {
    const p = await h.opened(70);
    sim.setFaults({ ipns: { drop: true } });
    await sim.complete(p.orderTrackingId, 'completed');
    expect((await h.row(p.paymentId)).status).toBe('pending');
    const report = await t.app.get(ReconcilerService).tick();
    expect(report.actions.settled).toBeGreaterThanOrEqual(1);
    expect(await h.row(p.paymentId)).toMatchObject({ status: 'completed', status_reason: 'PAID' });
    expect(await h.orderView(p.orderId)).toMatchObject({ status: 'paid' });
    expect(completionsOf(p.paymentId)).toHaveLength(1);
  });

  it('IPN dropped → a status read (GET /payments/:id) settles it too', async () => {
    const p = await h.opened(71);
    sim.setFaults({ ipns: { drop: true } });
    await sim.complete(p.orderTrackingId, 'failed');
    const res = await t.http().get(`/payments/${p.paymentId}`).set('Authorization', auth);
    expect(res.body).toMatchObject({ status: 'failed', provider: 'pesapal' });
  });

  it('Idempotency-Key: same request replays the first answer (one Pesapal order); a different body is a 409', async () => {
    const orderId = await h.order(75);
    const key = `pp-idem-${orderId}`;
    const submits = sim.stats().submitRequests;
    const first = await h.init(orderId, 75, {}, { 'Idempotency-Key': key });
    const second = await h.init(orderId, 75, {}, { 'Idempotency-Key': key });
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(second.body).toEqual(first.body);
    expect(sim.stats().submitRequests).toBe(submits + 1);
    const other = await h.init(orderId, 70, {}, { 'Idempotency-Key': key });
    expect(other.status).toBe(409);
    expect(other.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
  });

  it('issue 8.16: the stored phone hash is the keyed hash M-Pesa uses for the same customer, not a plain SHA-256', async () => {
    const p = await h.opened(100); // customer.phoneNumber 0712345678
    const orderId = await h.order(10);
    const push = await t
      .http()
      .post('/payments/stk-push')
      .set('Authorization', auth)
      .send({ phoneNumber: '+254 712 345 678', amount: 10, orderId });
    expect(push.status).toBe(201);
    const hashOf = async (id: string) =>
      rowsOf<{ phone_hash: string | null; phone_masked: string | null }>(
        await t.db.execute(sql`select phone_hash, phone_masked from payments where id = ${id}`),
      )[0];
    const pesapalRow = await hashOf(p.paymentId);
    const mpesaRow = await hashOf(push.body.paymentId);
    for (const guessable of ['0712345678', '254712345678', '+254712345678', '712345678'])
      expect(pesapalRow.phone_hash).not.toBe(createHash('sha256').update(guessable).digest('hex'));
    expect(pesapalRow).toEqual({ phone_hash: mpesaRow.phone_hash, phone_masked: '07******78' });
    // Keyed with a secret derived from the server's callback signing secret (the derivation M-Pesa rows already use).
    const key = createHmac('sha256', TEST_CALLBACK_SECRET).update('smartduka/payments/phone-hash/v1').digest();
    expect(pesapalRow.phone_hash).toBe(createHmac('sha256', key).update('254712345678').digest('hex'));
  });

  it('the audit event keeps the customer masked: the email as its first letter and domain, null when none was given', async () => {
    const eventData = async (paymentId: string) =>
      rowsOf<{ data: Record<string, unknown> }>(
        await t.db.execute(
          sql`select data from payment_events where payment_id = ${paymentId} and data ? 'customerEmail'`,
        ),
      );
    const withEmail = await h.init(await h.order(10), 10, {
      customer: { email: 'jane.doe@example.com', phoneNumber: '0712345678' },
    });
    expect(withEmail.status).toBe(201);
    const [created] = await eventData(withEmail.body.paymentId);
    expect(created.data).toMatchObject({ customerEmail: 'j***@example.com', customerPhone: '07******78' });
    expect(JSON.stringify(await eventData(withEmail.body.paymentId))).not.toContain('jane.doe');
    const phoneOnly = await h.opened(10);
    expect((await eventData(phoneOnly.paymentId))[0].data).toMatchObject({
      customerEmail: null,
      customerPhone: '07******78',
    });
  });

  it('issue 8.16: migration 0005 clears the plain SHA-256 phone hashes stored before (the masked phone stays; M-Pesa rows keep theirs)', async () => {
    const p = await h.opened(100);
    const orderId = await h.order(10);
    const push = await t
      .http()
      .post('/payments/stk-push')
      .set('Authorization', auth)
      .send({ phoneNumber: '0712345678', amount: 10, orderId });
    expect(push.status).toBe(201);
    const plain = createHash('sha256').update('0712345678').digest('hex');
    // What the code before this fix stored for a Pesapal customer.
    await t.db.execute(sql`update payments set phone_hash = ${plain} where id = ${p.paymentId}`);
    const before = rowsOf<{ id: string; phone_hash: string | null; phone_masked: string | null }>(
      await t.db.execute(
        sql`select id, phone_hash, phone_masked from payments where id in (${p.paymentId}, ${push.body.paymentId})`,
      ),
    );
    const migration = readFileSync(resolve(__dirname, '../drizzle/0005_keyed_phone_hash_everywhere.sql'), 'utf8');
    for (const statement of migration
      .split('--> statement-breakpoint')
      .map((x) => x.trim())
      .filter(Boolean))
      await t.db.execute(sql.raw(statement));
    const after = rowsOf<{ id: string; phone_hash: string | null; phone_masked: string | null }>(
      await t.db.execute(
        sql`select id, phone_hash, phone_masked from payments where id in (${p.paymentId}, ${push.body.paymentId})`,
      ),
    );
    const byId = (rows: typeof after) => Object.fromEntries(rows.map((r) => [r.id, r]));
    expect(byId(after)[p.paymentId]).toEqual({ id: p.paymentId, phone_hash: null, phone_masked: '07******78' });
    expect(byId(after)[push.body.paymentId]).toEqual(byId(before)[push.body.paymentId]);
    expect(byId(before)[push.body.paymentId].phone_hash).toMatch(/^[0-9a-f]{64}$/);
    const journal = JSON.parse(readFileSync(resolve(__dirname, '../drizzle/meta/_journal.json'), 'utf8')) as {
      entries: { tag: string }[];
    };
    expect(journal.entries.map((e) => e.tag)).toContain('0005_keyed_phone_hash_everywhere');
  });

  it("another shop's payment and order are not found", async () => {
    const p = await h.opened(76);
    const other = `Bearer ${t.token('shop-2', 'cashier', 'cashier-9')}`;
    expect((await h.status({ paymentId: p.paymentId }, other)).status).toBe(404);
    expect((await h.status({ orderTrackingId: p.orderTrackingId }, other)).status).toBe(404);
    const res = await t
      .http()
      .post('/payments/pesapal/init')
      .set('Authorization', other)
      .send({ orderId: p.orderId, amount: 76, customer: { email: 'a@b.co' } });
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('NOT_FOUND');
  });

  it('IPN registration happens once and is reused by other instances and after restarts', async () => {
    const regs = () => sim.ipnRegistrations().filter((r) => r.url === ipnUrl());
    expect(regs()).toHaveLength(1);
    const ipnCalls = sim.stats().ipnRequests;
    for (let i = 0; i < 2; i++) {
      // Same PUBLIC_BASE_URL (as every instance of one deployment has); a fresh process each time.
      const instance = await startExtraTestApp(t, pesapalEnv(sim, { PUBLIC_BASE_URL: t.baseUrl }));
      try {
        const ensured = await instance.app.get<PesapalIpnService>(PESAPAL_IPN).ensure();
        expect(ensured).toMatchObject({
          source: expect.stringMatching(/database|memory/),
          ipn: { ipnId: regs()[0].ipnId },
        });
        const p = await h.opened(77, instance.http);
        expect(sim.getOrder(p.orderTrackingId)!.notificationId).toBe(regs()[0].ipnId);
      } finally {
        await instance.close();
      }
    }
    expect(regs()).toHaveLength(1);
    expect(sim.stats().ipnRequests).toBe(ipnCalls);

    // Two instances of a new deployment URL booting together register it once. Pesapal's IPN
    // endpoints are slowed so both boots look the URL up at the same time.
    const url = 'http://127.0.0.1:9/fresh-deployment';
    sim.setFaults({ latencyMs: { ipn: 400 } });
    const [a, b] = await Promise.all([
      startExtraTestApp(t, pesapalEnv(sim, { PUBLIC_BASE_URL: url })),
      startExtraTestApp(t, pesapalEnv(sim, { PUBLIC_BASE_URL: url })),
    ]);
    try {
      const [ea, eb] = await Promise.all([
        a.app.get<PesapalIpnService>(PESAPAL_IPN).ensure(),
        b.app.get<PesapalIpnService>(PESAPAL_IPN).ensure(),
      ]);
      sim.setFaults({});
      expect(ea.ipn.ipnId).toBe(eb.ipn.ipnId);
      expect(sim.ipnRegistrations().filter((r) => r.url === `${url}/payments/pesapal/callback`)).toHaveLength(1);
      const stored = rowsOf<{ value: { ipnId: string; url: string; type: string } }>(
        await t.db.execute(
          sql`select value from provider_settings where key = ${ipnSettingsKey('simulator', `${url}/payments/pesapal/callback`)}`,
        ),
      );
      expect(stored).toHaveLength(1);
      expect(stored[0].value).toMatchObject({
        ipnId: ea.ipn.ipnId,
        url: `${url}/payments/pesapal/callback`,
        type: 'POST',
      });
    } finally {
      await a.close();
      await b.close();
    }
  });

  describe('bad requests → 4xx with a readable message, nothing changed', () => {
    let other: string;
    let pending: { paymentId: string; orderTrackingId: string; reference: string; orderId: string };
    let paidOrder: string;
    beforeAll(async () => {
      other = `Bearer ${t.token('shop-2', 'cashier', 'cashier-9')}`;
      pending = await h.opened(100);
      await t.http().post('/orders').set('Authorization', auth).send({ id: 'PP-BAD', total: 100 });
      const paid = await h.opened(40);
      sim.setFaults({ ipns: { drop: true } });
      await sim.complete(paid.orderTrackingId, 'completed');
      await h.status({ paymentId: paid.paymentId });
      paidOrder = paid.orderId;
      sim.setFaults({});
    });

    const body = (patch: Record<string, unknown> = {}) => ({
      orderId: 'PP-BAD',
      amount: 100,
      customer: { phoneNumber: '0712345678' },
      ...patch,
    });
    const post = (b: unknown, a?: string, headers: Record<string, string> = {}) => {
      const r = t.http().post('/payments/pesapal/init').set(headers);
      return (a === undefined ? r : r.set('Authorization', a)).send(b as object);
    };

    type Case = [string, () => Promise<request.Response>, number, string | undefined, string];
    const cases: Case[] = [
      ['init: empty object', () => post({}, auth), 400, 'VALIDATION_FAILED', 'orderId must be'],
      [
        'init: missing amount',
        () => post(body({ amount: undefined }), auth),
        400,
        'VALIDATION_FAILED',
        'amount must be a positive number',
      ],
      [
        'init: amount 0',
        () => post(body({ amount: 0 }), auth),
        400,
        'VALIDATION_FAILED',
        'amount must be a positive number',
      ],
      [
        'init: negative amount',
        () => post(body({ amount: -5 }), auth),
        400,
        'VALIDATION_FAILED',
        'amount must be a positive number',
      ],
      [
        'init: amount "abc"',
        () => post(body({ amount: 'abc' }), auth),
        400,
        'VALIDATION_FAILED',
        'amount must be a positive number',
      ],
      [
        'init: amount "1,000"',
        () => post(body({ amount: '1,000' }), auth),
        400,
        'VALIDATION_FAILED',
        'amount must be a positive number',
      ],
      [
        'init: amount as an object',
        () => post(body({ amount: { value: 100 } }), auth),
        400,
        'VALIDATION_FAILED',
        'amount must be a positive number',
      ],
      [
        'init: 3 decimals (number)',
        () => post(body({ amount: 99.999 }), auth),
        400,
        'VALIDATION_FAILED',
        'more than 2 decimal places',
      ],
      [
        'init: 3 decimals (string)',
        () => post(body({ amount: '99.999' }), auth),
        400,
        'VALIDATION_FAILED',
        'more than 2 decimal places',
      ],
      [
        'init: amount above the outstanding',
        () => post(body({ amount: 100.01 }), auth),
        400,
        'AMOUNT_EXCEEDS_OUTSTANDING',
        'still owed',
      ],
      ['init: amount 1e21', () => post(body({ amount: 1e21 }), auth), 400, 'VALIDATION_FAILED', 'too large'],
      [
        'init: lower-case currency',
        () => post(body({ currency: 'kes' }), auth),
        400,
        'VALIDATION_FAILED',
        'currency must be a 3-letter ISO code',
      ],
      [
        'init: currency USD',
        () => post(body({ currency: 'USD' }), auth),
        400,
        'VALIDATION_FAILED',
        'not available in USD',
      ],
      [
        'init: no customer',
        () => post(body({ customer: undefined }), auth),
        400,
        'VALIDATION_FAILED',
        'customer is required',
      ],
      [
        'init: customer as a string',
        () => post(body({ customer: 'jane@example.com' }), auth),
        400,
        'VALIDATION_FAILED',
        'customer must be an object',
      ],
      [
        'init: customer without email or phone',
        () => post(body({ customer: { firstName: 'Jane' } }), auth),
        400,
        'VALIDATION_FAILED',
        'email address or a phone number',
      ],
      [
        'init: bad email',
        () => post(body({ customer: { email: 'jane-at-example' } }), auth),
        400,
        'VALIDATION_FAILED',
        'customer.email must be an email address',
      ],
      [
        'init: bad phone',
        () => post(body({ customer: { phoneNumber: '07-CALL-ME' } }), auth),
        400,
        'VALIDATION_FAILED',
        'customer.phoneNumber must be 9-15 digits',
      ],
      [
        'init: phone too long after cleaning',
        () => post(body({ customer: { phoneNumber: '0712 345 678 901 234 5' } }), auth),
        400,
        'VALIDATION_FAILED',
        'phoneNumber must be 9-15 digits',
      ],
      [
        'init: unknown customer field',
        () => post(body({ customer: { phoneNumber: '0712345678', idNumber: '12345678' } }), auth),
        400,
        'VALIDATION_FAILED',
        'customer.property idNumber should not exist',
      ],
      [
        'init: extra field',
        () => post(body({ tip: 5 }), auth),
        400,
        'VALIDATION_FAILED',
        'property tip should not exist',
      ],
      [
        'init: description of 101 characters',
        () => post(body({ description: 'd'.repeat(101) }), auth),
        400,
        'VALIDATION_FAILED',
        'description must be 1-100 characters',
      ],
      [
        'init: description with markup',
        () => post(body({ description: '<b>hi</b>' }), auth),
        400,
        'VALIDATION_FAILED',
        'description must be plain text',
      ],
      [
        'init: orderId with spaces',
        () => post(body({ orderId: 'PP BAD' }), auth),
        400,
        'VALIDATION_FAILED',
        'orderId must be 1-64 characters',
      ],
      ['init: unknown order', () => post(body({ orderId: 'PP-NOPE' }), auth), 404, 'NOT_FOUND', 'Order not found'],
      [
        "init: another shop's order",
        () => post(body({ orderId: 'PP-BAD' }), other),
        404,
        'NOT_FOUND',
        'Order not found',
      ],
      [
        'init: paid order',
        () => post(body({ orderId: paidOrder, amount: 1 }), auth),
        409,
        'ORDER_ALREADY_PAID',
        'already fully paid',
      ],
      [
        'init: order with a payment in flight',
        () => post(body({ orderId: pending.orderId }), auth),
        409,
        'PAYMENT_IN_PROGRESS',
        'already has a payment',
      ],
      [
        'init: bad Idempotency-Key',
        () => post(body(), auth, { 'Idempotency-Key': 'has space' }),
        400,
        'VALIDATION_FAILED',
        'Idempotency-Key must be',
      ],
      ['init: no JWT', () => post(body()), 401, 'UNAUTHORIZED', 'Authorization'],
      [
        'init: form-encoded body',
        () =>
          t
            .http()
            .post('/payments/pesapal/init')
            .set('Authorization', auth)
            .type('form')
            .send({ orderId: 'PP-BAD', amount: '100' }),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
        'application/json',
      ],
      [
        'init: malformed JSON',
        () =>
          t
            .http()
            .post('/payments/pesapal/init')
            .set('Authorization', auth)
            .set('Content-Type', 'application/json')
            .send('{"orderId": '),
        400,
        'INVALID_JSON',
        'JSON',
      ],
      [
        'status: neither id',
        () => h.status({}),
        400,
        'VALIDATION_FAILED',
        'exactly one of paymentId or orderTrackingId',
      ],
      [
        'status: both ids',
        () => h.status({ paymentId: pending.paymentId, orderTrackingId: pending.orderTrackingId }),
        400,
        'VALIDATION_FAILED',
        'exactly one of paymentId or orderTrackingId',
      ],
      [
        'status: paymentId not a UUID',
        () => h.status({ paymentId: 'abc' }),
        400,
        'VALIDATION_FAILED',
        'paymentId must be a payment id',
      ],
      [
        'status: tracking id with a slash',
        () => h.status({ orderTrackingId: 'a/b' }),
        400,
        'VALIDATION_FAILED',
        'orderTrackingId must be',
      ],
      [
        'status: unknown payment',
        () => h.status({ paymentId: '00000000-0000-4000-8000-000000000000' }),
        404,
        'NOT_FOUND',
        'Payment not found',
      ],
      [
        'status: unknown tracking id',
        () => h.status({ orderTrackingId: '00000000-1111-2222-3333-444444444444' }),
        404,
        'NOT_FOUND',
        'Payment not found',
      ],
      [
        'status: unknown query field',
        () => h.status({ paymentId: pending.paymentId, shopId: 'shop-2' }),
        400,
        'VALIDATION_FAILED',
        'property shopId should not exist',
      ],
      [
        'status: no JWT',
        () => t.http().get('/payments/pesapal/status').query({ paymentId: pending.paymentId }),
        401,
        'UNAUTHORIZED',
        'Authorization',
      ],
      [
        'return: no parameters',
        () => t.http().get('/payments/pesapal/return'),
        400,
        undefined,
        'Payment link not valid',
      ],
      [
        'return: reference with markup',
        () => t.http().get('/payments/pesapal/return').query({ OrderMerchantReference: '<script>alert(1)</script>' }),
        400,
        undefined,
        'Payment link not valid',
      ],
      [
        'return: unknown reference',
        () =>
          t
            .http()
            .get('/payments/pesapal/return')
            .query({ OrderTrackingId: pending.orderTrackingId, OrderMerchantReference: 'SD-NOPE-AAAAAAAAAAAA' }),
        404,
        undefined,
        'Payment not found',
      ],
      [
        'callback: malformed JSON',
        () =>
          t
            .http()
            .post('/payments/pesapal/callback')
            .set('Content-Type', 'application/json')
            .send('{"OrderTrackingId": '),
        400,
        'INVALID_JSON',
        'JSON',
      ],
      [
        'callback: text/plain body',
        () => t.http().post('/payments/pesapal/callback').set('Content-Type', 'text/plain').send('OrderTrackingId=x'),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
        'application/json',
      ],
      [
        'callback: body larger than 64 KB',
        () =>
          t
            .http()
            .post('/payments/pesapal/callback')
            .set('Content-Type', 'application/json')
            .send(JSON.stringify({ OrderTrackingId: 'x', pad: 'x'.repeat(70_000) })),
        413,
        'PAYLOAD_TOO_LARGE',
        'too large',
      ],
    ];

    it.each(cases)('%s', async (_name, req, status, code, message) => {
      const before = await tableCounts(t.db);
      const res = await req();
      expect(res.status).toBe(status);
      if (code) {
        expect(res.body.code).toBe(code);
        expect(res.body.message).toContain(message);
        expect(res.body.requestId).toBeDefined();
      } else {
        expect(res.headers['content-type']).toMatch(/text\/html/);
        expect(res.text).toContain(message);
        expect(res.text).not.toContain('<script>alert');
      }
      expect(await tableCounts(t.db)).toEqual(before);
    });
  });

  it('switched off: every route answers 503 PROVIDER_DISABLED and nothing is registered', async () => {
    const off = await startExtraTestApp(t, pesapalEnv(sim, { PESAPAL_ENABLED: 'false' }));
    try {
      expect(off.app.get(ProviderServicesRegistry).get('pesapal')).toBeUndefined();
      const orderId = await h.order(30);
      const before = await tableCounts(t.db);
      const replies = await Promise.all([
        off
          .http()
          .post('/payments/pesapal/init')
          .set('Authorization', auth)
          .send({ orderId, amount: 30, customer: { email: 'a@b.co' } }),
        off
          .http()
          .get('/payments/pesapal/status')
          .query({ paymentId: '00000000-0000-4000-8000-000000000000' })
          .set('Authorization', auth),
        off.http().post('/payments/pesapal/callback').send({ OrderTrackingId: 'x', OrderMerchantReference: 'y' }),
        off.http().get('/payments/pesapal/callback').query({ OrderTrackingId: 'x', OrderMerchantReference: 'y' }),
        off.http().get('/payments/pesapal/return').query({ OrderTrackingId: 'x', OrderMerchantReference: 'y' }),
        off.http().post('/payments/pesapal/init').send({}),
      ]);
      for (const r of replies) {
        expect(r.status).toBe(503);
        expect(r.body).toMatchObject({ code: 'PROVIDER_DISABLED' });
        expect(r.body.message).toContain('PESAPAL_ENABLED');
      }
      expect(await tableCounts(t.db)).toEqual(before);
    } finally {
      await off.close();
    }
  });

  // Last: clears the simulator (a restarted Pesapal simulator forgets its IPN registrations).
  it('an IPN id Pesapal no longer knows is replaced on the next init, which still succeeds', async () => {
    const staleId = sim.ipnRegistrations().find((r) => r.url === ipnUrl())!.ipnId;
    sim.reset({ full: true });
    expect(sim.ipnRegistrations()).toHaveLength(0);
    const p = await h.opened(80);
    const fresh = sim.ipnRegistrations().filter((r) => r.url === ipnUrl());
    expect(fresh).toHaveLength(1);
    expect(fresh[0].ipnId).not.toBe(staleId);
    expect(sim.getOrder(p.orderTrackingId)!.notificationId).toBe(fresh[0].ipnId);
    const stored = rowsOf<{ value: { ipnId: string } }>(
      await t.db.execute(sql`select value from provider_settings where key = ${ipnSettingsKey('simulator', ipnUrl())}`),
    );
    expect(stored[0].value.ipnId).toBe(fresh[0].ipnId);
    await sim.complete(p.orderTrackingId, 'completed');
    expect((await sim.waitForIpns(p.orderTrackingId))[0].acknowledged).toBe(true);
  });
});

describe('Pesapal checkout window and unresolved payments (reconciler)', () => {
  let t: TestApp;
  let sim: PesapalSimulator;
  let auth: string;
  const h = helpers(() => ({ t, sim, auth }), 'PW');
  const tick = () => t.app.get(ReconcilerService).tick();
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  beforeAll(async () => {
    sim = await startSim();
    t = await startTestApp({
      env: pesapalEnv(sim, {
        // The checkout window: an order still unpaid 1 s after init is cancelled at Pesapal and expires.
        PESAPAL_CHECKOUT_WINDOW_SECONDS: '1',
        RECONCILER_BACKOFF_BASE_SECONDS: '0',
        RECONCILER_BACKOFF_MAX_SECONDS: '0',
        MPESA_UNRESOLVED_REVIEW_AFTER_SECONDS: '1',
      }),
    });
    auth = `Bearer ${t.token()}`;
  });
  afterAll(async () => {
    await t.close();
    await sim.close();
  });
  afterEach(() => sim.setFaults({}));

  it('customer cancels on the page: still pending; after the window the order is cancelled at Pesapal and the payment expires (CHECKOUT_EXPIRED)', async () => {
    const p = await h.opened(100);
    const cancel = await sim.complete(p.orderTrackingId, 'cancelled');
    const back = await request(cancel.redirectUrl).get('');
    expect(back.text).toContain('data-status="pending"');
    expect((await h.row(p.paymentId)).status).toBe('pending');
    // The window (1 s), and the per-payment interval (2 s) since the return's status check.
    await sleep(2100);
    const report = await tick();
    expect(report.actions.expired).toBeGreaterThanOrEqual(1);
    expect(await h.row(p.paymentId)).toMatchObject({ status: 'expired', status_reason: 'CHECKOUT_EXPIRED' });
    expect(sim.getOrder(p.orderTrackingId)!.state).toBe('cancelled');
    await expect(sim.complete(p.orderTrackingId, 'completed')).rejects.toThrow(/cancelled/);
    expect(await h.orderView(p.orderId)).toMatchObject({ status: 'unpaid' });
    expect((await h.init(p.orderId, 100)).status).toBe(201);
  });

  it('never expires while Pesapal refuses the cancellation; expires once it is cancelled', async () => {
    const p = await h.opened(101);
    await sleep(1100);
    // Every due payment's cancellation is refused during this pass (other tests' leftovers are due too).
    sim.setFaults({ errors: { cancel: { count: 100, code: 'cancel_failed', message: 'Try again later' } } });
    const first = await tick();
    sim.setFaults({});
    expect(first.actions.still_pending).toBeGreaterThanOrEqual(1);
    expect((await h.row(p.paymentId)).status).toBe('pending');
    expect(sim.getOrder(p.orderTrackingId)!.state).toBe('pending');
    await sleep(2100); // one status check per payment per 2 s across instances
    await tick();
    expect(await h.row(p.paymentId)).toMatchObject({ status: 'expired', status_reason: 'CHECKOUT_EXPIRED' });
  });

  it('paid just before the window ends: the reconciler completes it instead of expiring it', async () => {
    const p = await h.opened(102);
    sim.setFaults({ ipns: { drop: true } });
    await sleep(1100);
    await sim.complete(p.orderTrackingId, 'completed');
    await tick();
    expect(await h.row(p.paymentId)).toMatchObject({ status: 'completed' });
    expect(await h.orderView(p.orderId)).toMatchObject({ status: 'paid' });
  });

  it('init with an unknown outcome and no IPN goes to review after the window; a late IPN still settles it', async () => {
    const orderId = await h.order(103);
    sim.setFaults({ latencyMs: { submit: 2500 } });
    const res = await h.init(orderId, 103);
    expect(res.status).toBe(504);
    sim.setFaults({ ipns: { drop: true } });
    const paymentId = res.body.details.paymentId;
    await sleep(1100);
    await tick();
    expect(await h.row(paymentId)).toMatchObject({ status: 'review', status_reason: 'OUTCOME_UNKNOWN' });
    expect(await h.orderView(orderId)).toMatchObject({ status: 'unpaid' });
    // The customer had the page after all and paid: Pesapal's IPN names both ids.
    const ref = rowsOf<{ provider_reference: string }>(
      await t.db.execute(sql`select provider_reference from payments where id = ${paymentId}`),
    )[0].provider_reference;
    sim.setFaults({});
    const simOrder = sim.getOrder(ref)!;
    await sim.complete(ref, 'completed');
    expect((await sim.waitForIpns(simOrder.orderTrackingId))[0].acknowledged).toBe(true);
    expect(await h.row(paymentId)).toMatchObject({
      status: 'completed',
      provider_transaction_id: simOrder.orderTrackingId,
    });
    expect(await h.orderView(orderId)).toMatchObject({ status: 'paid' });
  });
});
