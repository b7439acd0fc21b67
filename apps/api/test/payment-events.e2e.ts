import { sql } from 'drizzle-orm';
import { openSse, type SseEvent, type SseStream } from './helpers/sse';
import {
  ExtraTestApp,
  fullCheckoutRequestId,
  startExtraTestApp,
  startTestApp,
  TestApp,
  waitFor,
} from './helpers/test-app';

const payments = (events: SseEvent[]) =>
  events.filter((e) => e.event === 'payment').map((e) => ({ id: Number(e.id), ...JSON.parse(e.data) }));
const statuses = (events: SseEvent[]) => payments(events).map((p) => p.status);

/**
 * Live status (GET /payments/:id/events, GET /payments/events) against the real app, two
 * instances on one Postgres and the Daraja simulator, where the customer answers when the test says.
 */
describe('live payment status (server-sent events)', () => {
  let a: TestApp;
  let b: ExtraTestApp;
  let auth: string;
  const open: SseStream[] = [];
  const sse = async (base: string, path: string, headers: Record<string, string> = {}) => {
    const s = await openSse(`${base}${path}`, headers);
    open.push(s);
    return s;
  };

  beforeAll(async () => {
    // The customer never answers by themselves: each test resolves its prompt.
    a = await startTestApp({ sim: { callbackDelayMs: 3_600_000 }, env: { RECONCILER_ENABLED: 'false' } });
    b = await startExtraTestApp(a, { RECONCILER_ENABLED: 'false', EVENT_STREAM_HEARTBEAT_MS: '200' });
    auth = `Bearer ${a.token()}`;
  });
  afterEach(() => open.splice(0).forEach((s) => s.close()));
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  let n = 0;
  async function push(token = auth): Promise<{ paymentId: string; checkoutRequestId: string; orderId: string }> {
    const orderId = `SSE-${++n}-${Date.now()}`;
    const order = await a.http().post('/orders').set('Authorization', token).send({ id: orderId, total: 100 });
    expect(order.status).toBe(201);
    const res = await a
      .http()
      .post('/payments/stk-push')
      .set('Authorization', token)
      .send({ phoneNumber: `0712${String(100000 + n).slice(-6)}`, amount: 100, orderId });
    expect(res.status).toBe(201);
    // The full id (the answer's is masked) drives the simulator.
    return { paymentId: res.body.paymentId, checkoutRequestId: fullCheckoutRequestId(a.sim, res.body), orderId };
  }

  it('the callback lands on instance A, the stream on instance B gets it, then the stream ends', async () => {
    const p = await push();
    const s = await sse(b.baseUrl, `/payments/${p.paymentId}/events`, { Authorization: auth });
    expect(s.status).toBe(200);
    expect(s.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(s.headers['cache-control']).toMatch(/no-cache/);
    await s.waitFor((e) => statuses(e).includes('pending'));
    await a.sim.resolve(p.checkoutRequestId, 0);
    await s.waitForEnd();
    expect(statuses(s.events)).toEqual(['pending', 'completed']);
    const done = payments(s.events)[1];
    expect(done).toMatchObject({ paymentId: p.paymentId, orderId: p.orderId, status: 'completed', amount: 100 });
    expect(done.mpesaReceiptNumber).toMatch(/^[A-Z0-9]{10}$/);
    expect(done.phone).toMatch(/^2547\*{6}\d\d$/);
    expect(s.events[s.events.length - 1]).toMatchObject({
      event: 'end',
      data: JSON.stringify({ status: 'completed' }),
    });
    // Ids go up; the payment read agrees with the last event.
    const ids = payments(s.events).map((e) => e.id);
    expect(ids[1]).toBeGreaterThan(ids[0]);
    const read = await b.http().get(`/payments/${p.paymentId}`).set('Authorization', auth);
    expect(read.body.status).toBe('completed');
  });

  it('a dropped stream resumes with Last-Event-ID without losing an event (cancelled while it was gone)', async () => {
    const p = await push();
    const first = await sse(b.baseUrl, `/payments/${p.paymentId}/events`, { Authorization: auth });
    const [pending] = payments(await first.waitFor((e) => statuses(e).includes('pending')));
    first.close();
    await a.sim.resolve(p.checkoutRequestId, 1032);
    await waitFor(async () => {
      const r = await a.http().get(`/payments/${p.paymentId}`).set('Authorization', auth);
      return r.body.status === 'cancelled';
    });
    const again = await sse(b.baseUrl, `/payments/${p.paymentId}/events`, {
      Authorization: auth,
      'Last-Event-ID': String(pending.id),
    });
    await again.waitForEnd();
    expect(statuses(again.events)).toEqual(['cancelled']);
    expect(payments(again.events)[0].id).toBeGreaterThan(pending.id);
    expect(payments(again.events)[0].statusReason).toBeTruthy();
    // ?lastEventId= does the same (a client that cannot set the header).
    const viaQuery = await sse(b.baseUrl, `/payments/${p.paymentId}/events?lastEventId=${pending.id}`, {
      Authorization: auth,
    });
    await viaQuery.waitForEnd();
    expect(statuses(viaQuery.events)).toEqual(['cancelled']);
    // A fresh stream of a final payment: its state, then the end, at once.
    const fresh = await sse(a.baseUrl, `/payments/${p.paymentId}/events`, { Authorization: auth });
    await fresh.waitForEnd();
    expect(statuses(fresh.events)).toEqual(['cancelled']);
  });

  it("the shop stream carries every change of the shop's payments and none of another shop's", async () => {
    const shop = await sse(b.baseUrl, '/payments/events', { Authorization: auth });
    const [ready] = await shop.waitFor((e) => e.some((x) => x.event === 'ready'));
    expect(Number(JSON.parse(ready.data).lastEventId)).toBe(Number(ready.id));
    const other = `Bearer ${a.token('shop-2')}`;
    const theirs = await push(other);
    const ours = await push();
    await a.sim.resolve(theirs.checkoutRequestId, 0);
    await a.sim.resolve(ours.checkoutRequestId, 0);
    await shop.waitFor((e) => payments(e).some((p) => p.paymentId === ours.paymentId && p.status === 'completed'));
    const seen = payments(shop.events);
    expect(seen.every((p) => p.paymentId !== theirs.paymentId)).toBe(true);
    expect(seen.filter((p) => p.paymentId === ours.paymentId).map((p) => p.status)).toEqual([
      'initiated',
      'pending',
      'completed',
    ]);
    // Theirs did complete (so it was announced, and filtered out).
    const r = await a.http().get(`/payments/${theirs.paymentId}`).set('Authorization', other);
    expect(r.body.status).toBe('completed');

    // Dropped and resumed after the last id it saw: the shop's changes since, nothing twice-as-new missed.
    const lastSeen = Math.max(...seen.map((p) => p.id));
    shop.close();
    const later = await push();
    await a.sim.resolve(later.checkoutRequestId, 1037);
    await waitFor(async () => {
      const x = await a.http().get(`/payments/${later.paymentId}`).set('Authorization', auth);
      return x.body.status !== 'pending' ? x : undefined;
    });
    const resumed = await sse(b.baseUrl, '/payments/events', {
      Authorization: auth,
      'Last-Event-ID': String(lastSeen),
    });
    await resumed.waitFor((e) => payments(e).some((p) => p.paymentId === later.paymentId && p.status !== 'pending'));
    const replayed = payments(resumed.events).filter((p) => p.paymentId === later.paymentId);
    expect(replayed.map((p) => p.status)).toEqual(['initiated', 'pending', 'expired']);
    // What is sent again from before lastSeen (the replay window: an event with a smaller id may commit
    // later) is only each payment's latest state as of lastSeen, never an older one.
    const again = payments(resumed.events).filter((p) => p.id <= lastSeen);
    expect(again.every((p) => p.id !== lastSeen)).toBe(true);
    for (const p of again) {
      const res = (await a.db.execute(
        sql`select max(id)::int as id from payment_status_events where payment_id = ${p.paymentId} and id <= ${lastSeen}`,
      )) as unknown as { rows: { id: number }[] };
      expect(p.id).toBe((res.rows ?? (res as unknown as { id: number }[]))[0].id);
    }
    expect(new Set(again.map((p) => p.paymentId)).size).toBe(again.length);
  });

  it('tickets let an EventSource (no headers) open a stream; a ticket is scoped and signed', async () => {
    const p = await push();
    const t = await a
      .http()
      .post('/payments/events/ticket')
      .set('Authorization', auth)
      .send({ paymentId: p.paymentId });
    expect(t.status).toBe(201);
    expect(t.body.ticket).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(Date.parse(t.body.expiresAt) - Date.now()).toBeLessThanOrEqual(61_000);
    const s = await sse(b.baseUrl, `/payments/${p.paymentId}/events?ticket=${t.body.ticket}`);
    expect(s.status).toBe(200);
    await s.waitFor((e) => statuses(e).includes('pending'));

    // That ticket opens nothing else: not the shop stream, not another payment.
    const q = await push();
    const wrongPayment = await sse(b.baseUrl, `/payments/${q.paymentId}/events?ticket=${t.body.ticket}`);
    expect(wrongPayment.status).toBe(403);
    const wrongStream = await sse(b.baseUrl, `/payments/events?ticket=${t.body.ticket}`);
    expect(wrongStream.status).toBe(403);
    // Nor is it a Bearer token.
    const asBearer = await b.http().get(`/payments/${p.paymentId}`).set('Authorization', `Bearer ${t.body.ticket}`);
    expect(asBearer.status).toBe(401);
    // A changed payload breaks the signature.
    const [payload, mac] = t.body.ticket.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const forged = `${Buffer.from(JSON.stringify({ ...claims, s: 'shop-2', p: null })).toString('base64url')}.${mac}`;
    const f = await sse(b.baseUrl, `/payments/events?ticket=${forged}`);
    expect(f.status).toBe(401);
    expect(JSON.parse(f.body)).toMatchObject({ code: 'UNAUTHORIZED', message: 'Invalid stream ticket' });

    // A shop ticket opens the shop stream; another shop's payment is not found with it.
    const shopTicket = await a.http().post('/payments/events/ticket').set('Authorization', auth).send({});
    expect(shopTicket.status).toBe(201);
    const ok = await sse(b.baseUrl, `/payments/events?ticket=${shopTicket.body.ticket}`);
    expect(ok.status).toBe(200);
    const theirs = await push(`Bearer ${a.token('shop-2')}`);
    const cross = await sse(b.baseUrl, `/payments/${theirs.paymentId}/events?ticket=${shopTicket.body.ticket}`);
    expect(cross.status).toBe(404);
    // A ticket for another shop's payment is not issued.
    const notIssued = await a
      .http()
      .post('/payments/events/ticket')
      .set('Authorization', auth)
      .send({ paymentId: theirs.paymentId });
    expect(notIssued.status).toBe(404);
  });

  it('bad input: 4xx JSON with a message, no stream', async () => {
    const p = await push();
    const cases: [string, Record<string, string>, number, string][] = [
      [`/payments/${p.paymentId}/events`, {}, 401, 'UNAUTHORIZED'],
      [`/payments/${p.paymentId}/events`, { Authorization: auth, 'Last-Event-ID': 'abc' }, 400, 'VALIDATION_FAILED'],
      [`/payments/${p.paymentId}/events?lastEventId=-1`, { Authorization: auth }, 400, 'VALIDATION_FAILED'],
      [`/payments/not-a-uuid/events`, { Authorization: auth }, 400, 'VALIDATION_FAILED'],
      [`/payments/${p.paymentId}/events`, { Authorization: `Bearer ${a.token('shop-2')}` }, 404, 'NOT_FOUND'],
      [`/payments/${p.paymentId}/events?ticket=nope`, {}, 401, 'UNAUTHORIZED'],
      [`/payments/events?ticket=a&ticket=b`, {}, 401, 'UNAUTHORIZED'],
      [`/payments/events?since=1`, { Authorization: auth }, 400, 'VALIDATION_FAILED'],
      [`/payments/events`, { Authorization: `Bearer ${a.token('shop-1', 'operator')}` }, 403, 'FORBIDDEN'],
    ];
    for (const [path, headers, status, code] of cases) {
      const s = await sse(b.baseUrl, path, headers);
      expect({ path, status: s.status }).toEqual({ path, status });
      expect(s.headers['content-type']).toMatch(/application\/json/);
      const body = JSON.parse(s.body);
      expect(body.code).toBe(code);
      expect(typeof body.message).toBe('string');
    }
  });

  it('every path that changes a payment announces it: the trigger writes one event per visible change', async () => {
    const p = await push();
    await a.db.execute(sql`update payments set query_count = query_count + 1 where id = ${p.paymentId}`);
    const rows = (await a.db.execute(
      sql`select status from payment_status_events where payment_id = ${p.paymentId} order by id`,
    )) as unknown as { rows: { status: string }[] };
    // initiated (insert) → pending; the query count changed nothing visible.
    expect((rows.rows ?? (rows as unknown as { status: string }[])).map((r) => r.status)).toEqual([
      'initiated',
      'pending',
    ]);
  });

  it('a payment that goes to review ends its stream (a manager must look; the shop stream still sees later changes)', async () => {
    const p = await push();
    const s = await sse(b.baseUrl, `/payments/${p.paymentId}/events`, { Authorization: auth });
    await s.waitFor((e) => statuses(e).includes('pending'));
    await a.db.execute(
      sql`update payments set status = 'review', status_reason = 'AMOUNT_MISMATCH' where id = ${p.paymentId}`,
    );
    await s.waitForEnd();
    expect(statuses(s.events)).toEqual(['pending', 'review']);
    expect(s.events[s.events.length - 1]).toMatchObject({ event: 'end', data: JSON.stringify({ status: 'review' }) });
    // Opened again later: its state, and the end at once.
    const again = await sse(b.baseUrl, `/payments/${p.paymentId}/events`, { Authorization: auth });
    await again.waitForEnd();
    expect(statuses(again.events)).toEqual(['review']);
  });

  it('heartbeats keep an idle stream alive', async () => {
    const s = await sse(b.baseUrl, '/payments/events', { Authorization: auth });
    await s.waitFor(() => s.comments.filter((c) => c === 'ping').length >= 2, 5000);
  });

  it('the database drops the listening connections: open streams catch up once they are back', async () => {
    const p = await push();
    const s = await sse(b.baseUrl, `/payments/${p.paymentId}/events`, { Authorization: auth });
    await s.waitFor((e) => statuses(e).includes('pending'));
    const killed = (await a.db.execute(
      sql`select pg_terminate_backend(pid) as ok from pg_stat_activity
          where application_name = 'smartduka-listen-payment_status' and datname = current_database()`,
    )) as unknown as { rows: unknown[] };
    expect((killed.rows ?? (killed as unknown as unknown[])).length).toBeGreaterThanOrEqual(2);
    // Completed while no instance listens: the NOTIFY reaches nobody.
    await a.sim.resolve(p.checkoutRequestId, 0);
    await s.waitForEnd(15_000);
    expect(statuses(s.events)).toEqual(['pending', 'completed']);
  });

  it('limits: one stream too many for a shop answers 429 and writes nothing; shutdown ends open streams', async () => {
    const c = await startExtraTestApp(a, { RECONCILER_ENABLED: 'false', EVENT_STREAM_MAX_PER_SHOP: '2' });
    try {
      const tok = `Bearer ${a.token('shop-limits')}`;
      const s1 = await sse(c.baseUrl, '/payments/events', { Authorization: tok });
      const s2 = await sse(c.baseUrl, '/payments/events', { Authorization: tok });
      expect([s1.status, s2.status]).toEqual([200, 200]);
      const s3 = await sse(c.baseUrl, '/payments/events', { Authorization: tok });
      expect(s3.status).toBe(429);
      expect(JSON.parse(s3.body)).toMatchObject({ code: 'TOO_MANY_STREAMS' });
      expect(s3.headers['retry-after']).toBe('5');
      // Another shop is not held back by this one.
      const other = await sse(c.baseUrl, '/payments/events', { Authorization: `Bearer ${a.token('shop-9')}` });
      expect(other.status).toBe(200);
      // A closed stream frees its place.
      s1.close();
      await waitFor(async () => {
        const s4 = await sse(c.baseUrl, '/payments/events', { Authorization: tok });
        if (s4.status === 200) return true;
        return undefined;
      });
      await c.close();
      await s2.waitForEnd();
      await other.waitForEnd();
    } finally {
      await c.close().catch(() => undefined);
    }
  });
});
