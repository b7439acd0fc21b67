import { openSse, type SseEvent, type SseStream } from './helpers/sse';
import { fullCheckoutRequestId, startExtraTestApp, startTestApp, TestApp, waitFor } from './helpers/test-app';

const statuses = (events: SseEvent[]) =>
  events.filter((e) => e.event === 'payment').map((e) => JSON.parse(e.data).status as string);

/**
 * Attacks on the live status streams (a reviewer's): against the real app, Postgres and the
 * Daraja simulator, where the customer answers when the test says.
 */
describe('live payment status: attacks', () => {
  let a: TestApp;
  const open: SseStream[] = [];
  const sse = async (base: string, path: string, headers: Record<string, string> = {}) => {
    const s = await openSse(`${base}${path}`, headers);
    open.push(s);
    return s;
  };

  beforeAll(async () => {
    a = await startTestApp({ sim: { callbackDelayMs: 3_600_000 }, env: { RECONCILER_ENABLED: 'false' } });
  });
  afterEach(() => open.splice(0).forEach((s) => s.close()));
  afterAll(async () => {
    await a?.close();
  });

  let n = 0;
  async function push(shopId = 'shop-1'): Promise<{ paymentId: string; checkoutRequestId: string }> {
    const token = `Bearer ${a.token(shopId)}`;
    const orderId = `ATK-${++n}-${Date.now()}`;
    const order = await a.http().post('/orders').set('Authorization', token).send({ id: orderId, total: 100 });
    expect(order.status).toBe(201);
    const res = await a
      .http()
      .post('/payments/stk-push')
      .set('Authorization', token)
      .send({ phoneNumber: `0713${String(200000 + n).slice(-6)}`, amount: 100, orderId });
    expect(res.status).toBe(201);
    return { paymentId: res.body.paymentId, checkoutRequestId: fullCheckoutRequestId(a.sim, res.body) };
  }

  it('the per-shop stream limit holds when many streams open at once', async () => {
    const c = await startExtraTestApp(a, { RECONCILER_ENABLED: 'false', EVENT_STREAM_MAX_PER_SHOP: '3' });
    try {
      const p = await push();
      const auth = { Authorization: `Bearer ${a.token()}` };
      const streams = await Promise.all(
        Array.from({ length: 20 }, () => sse(c.baseUrl, `/payments/${p.paymentId}/events`, auth)),
      );
      const codes = streams.map((s) => s.status);
      expect(codes.filter((s) => s === 200)).toHaveLength(3);
      expect(codes.filter((s) => s === 429)).toHaveLength(17);
    } finally {
      open.splice(0).forEach((s) => s.close());
      await c.close();
    }
  });

  it('a stream opened with the payment id in capitals gets its live changes and ends', async () => {
    const p = await push();
    const s = await sse(a.baseUrl, `/payments/${p.paymentId.toUpperCase()}/events`, {
      Authorization: `Bearer ${a.token()}`,
    });
    expect(s.status).toBe(200);
    await s.waitFor((e) => statuses(e).includes('pending'));
    await a.sim.resolve(p.checkoutRequestId, 0);
    await s.waitForEnd(5000);
    expect(statuses(s.events)).toEqual(['pending', 'completed']);
  });

  it("a ticket for a payment opens that payment's stream whatever the case of its id", async () => {
    const p = await push();
    const t = await a
      .http()
      .post('/payments/events/ticket')
      .set('Authorization', `Bearer ${a.token()}`)
      .send({ paymentId: p.paymentId.toUpperCase() });
    expect(t.status).toBe(201);
    const s = await sse(a.baseUrl, `/payments/${p.paymentId}/events?ticket=${t.body.ticket}`);
    expect(s.status).toBe(200);
    await s.waitFor((e) => statuses(e).includes('pending'));
  });

  it('slots are freed when clients vanish abruptly, and a shop at its limit does not block another shop', async () => {
    const c = await startExtraTestApp(a, { RECONCILER_ENABLED: 'false', EVENT_STREAM_MAX_PER_SHOP: '2' });
    try {
      const mine = { Authorization: `Bearer ${a.token('shop-1')}` };
      const theirs = { Authorization: `Bearer ${a.token('shop-2')}` };
      for (let round = 0; round < 30; round++) {
        const s1 = await openSse(`${c.baseUrl}/payments/events`, mine);
        const s2 = await openSse(`${c.baseUrl}/payments/events`, mine);
        expect([s1.status, s2.status]).toEqual([200, 200]);
        s1.close();
        s2.close();
        // The server notices the clients went away (a 429 until it has).
        await waitFor(async () => {
          const probe = await openSse(`${c.baseUrl}/payments/events`, mine);
          probe.close();
          return probe.status === 200;
        });
      }
      await waitFor(async () => {
        const s = await openSse(`${c.baseUrl}/payments/events`, mine);
        s.close();
        return s.status === 200;
      });
      const full = [await sse(c.baseUrl, '/payments/events', mine), await sse(c.baseUrl, '/payments/events', mine)];
      expect(full.map((s) => s.status)).toEqual([200, 200]);
      expect((await sse(c.baseUrl, '/payments/events', mine)).status).toBe(429);
      expect((await sse(c.baseUrl, '/payments/events', theirs)).status).toBe(200);
    } finally {
      open.splice(0).forEach((s) => s.close());
      await c.close();
    }
  });

  // Whatever spelling the query parser takes as `ticket` must be redacted in the request log: the
  // leak scan of `pnpm test` (test/log-scan) fails the run when a ticket reaches any log line.
  it('a stream ticket never reaches the logs, however its parameter name is spelled', async () => {
    const t = await a.http().post('/payments/events/ticket').set('Authorization', `Bearer ${a.token()}`).send({});
    expect(t.status).toBe(201);
    const ticket: string = t.body.ticket;
    // Percent-encoded parameter names are decoded by the query parser: each of these opens the stream.
    for (const name of ['ticket', '%74icket', '%74%69%63%6B%65%74', 'tick%65t']) {
      const s = await sse(a.baseUrl, `/payments/events?${name}=${ticket}`);
      expect(s.status).toBe(200);
      s.close();
    }
    const [payload] = ticket.split('.');
    const refused = await sse(a.baseUrl, `/payments/events?%74icket=${payload}.${'A'.repeat(43)}`);
    expect(refused.status).toBe(401);
  });

  it('each event is the payment exactly as GET /payments/:id answers it (the snapshot round-trips every column)', async () => {
    const p = await push();
    const auth = { Authorization: `Bearer ${a.token()}` };
    const s = await sse(a.baseUrl, `/payments/${p.paymentId}/events`, auth);
    const [first] = await s.waitFor((e) => statuses(e).includes('pending'));
    expect(JSON.parse(first.data)).toEqual((await a.http().get(`/payments/${p.paymentId}`).set(auth)).body);
    await a.sim.resolve(p.checkoutRequestId, 0);
    await s.waitForEnd();
    const last = s.events.filter((e) => e.event === 'payment').pop() as SseEvent;
    expect(JSON.parse(last.data)).toEqual((await a.http().get(`/payments/${p.paymentId}`).set(auth)).body);
    // Resumed after its final event: the final state again, then the end.
    const again = await sse(a.baseUrl, `/payments/${p.paymentId}/events`, {
      ...auth,
      'Last-Event-ID': String(last.id),
    });
    await again.waitForEnd();
    expect(statuses(again.events)).toEqual(['completed']);
    expect(again.events.map((e) => e.event)).toEqual(['payment', 'end']);
  });

  it('a receipt learned after the payment completed (status query first, callback later) reaches the streams', async () => {
    const p = await push();
    const auth = { Authorization: `Bearer ${a.token()}` };
    const shop = await sse(a.baseUrl, '/payments/events', auth);
    await shop.waitFor((e) => e.some((x) => x.event === 'ready'));
    await a.sim.resolve(p.checkoutRequestId, 0, { callbackDelayMs: 1500 });
    // The read asks Daraja (STK query): completed, but a query carries no receipt.
    const queried = await a.http().get(`/payments/${p.paymentId}`).set(auth);
    expect(queried.body.status).toBe('completed');
    expect(queried.body.mpesaReceiptNumber ?? null).toBeNull();
    // The callback brings the receipt, attached to the completed payment.
    const withReceipt = await waitFor(async () => {
      const r = await a.http().get(`/payments/${p.paymentId}`).set(auth);
      return r.body.mpesaReceiptNumber ? r.body : null;
    }, 8000);
    // A stream opened now starts with the payment as it is (with its receipt) ...
    const fresh = await sse(a.baseUrl, `/payments/${p.paymentId}/events`, auth);
    await fresh.waitForEnd();
    expect(JSON.parse(fresh.events[0].data)).toEqual(withReceipt);
    // ... and the shop stream was told.
    await shop.waitFor((e) => e.some((x) => x.event === 'payment' && JSON.parse(x.data).mpesaReceiptNumber), 3000);
  });
});
