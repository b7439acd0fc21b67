import { sql } from 'drizzle-orm';
import { REPO_ROOT } from '../src/config/app-config';
import { PaymentOperationsService } from '../src/payments/payment-operations.service';
import { ReconcilerService } from '../src/payments/reconciler.service';
import { RefundReconciler } from '../src/payments/refund-reconciler.service';
import { fullCheckoutRequestId, startExtraTestApp, startTestApp, TestApp, waitFor } from './helpers/test-app';

/** M-Pesa refunds through HTTP: the real app, Postgres and the Daraja simulator's Reversal / Transaction Status. */
describe('M-Pesa refunds (reversals), end to end', () => {
  let t: TestApp;
  let cashier: string;
  let manager: string;
  let n = 0;

  beforeAll(async () => {
    t = await startTestApp({
      sim: { callbackDelayMs: 100, resultDelayMs: 100 },
      // The reconciler is driven by hand; a reversal's wait is 0 so a status answer that shows nothing proves it.
      env: { RECONCILER_ENABLED: 'false', MPESA_REVERSAL_WAIT_SECONDS: '0' },
    });
    cashier = `Bearer ${t.token()}`;
    manager = `Bearer ${t.token('shop-1', 'manager', 'mgr-1')}`;
  });
  afterAll(() => t.close());

  async function rows<T>(q: ReturnType<typeof sql>): Promise<T[]> {
    const res = (await t.db.execute(q)) as unknown as { rows?: T[] };
    return res.rows ?? (res as unknown as T[]);
  }

  /** A completed M-Pesa payment of `amount` shillings (a real push the simulator pays). */
  async function paidPayment(amount = 150): Promise<{ paymentId: string; receipt: string; orderId: string }> {
    n += 1;
    const orderId = `RF-${n}`;
    expect(
      (await t.http().post('/orders').set('Authorization', cashier).send({ id: orderId, total: amount })).status,
    ).toBe(201);
    const push = await t
      .http()
      .post('/payments/stk-push')
      .set('Authorization', cashier)
      .send({ phoneNumber: '0712345678', amount, orderId });
    expect(push.status).toBe(201);
    const done = await waitFor(async () => {
      const r = await t.http().get(`/payments/${push.body.paymentId}`).set('Authorization', cashier);
      return r.body.status === 'completed' ? r.body : undefined;
    });
    return { paymentId: push.body.paymentId, receipt: done.mpesaReceiptNumber, orderId };
  }

  const askRefund = (paymentId: string, body: Record<string, unknown> = {}) =>
    t
      .http()
      .post(`/payments/${paymentId}/refunds`)
      .set('Authorization', manager)
      .send({ reason: 'Customer returned the item', ...body });

  const readRefund = async (id: string) => (await t.http().get(`/refunds/${id}`).set('Authorization', manager)).body;

  const settled = (id: string, timeoutMs = 5000) =>
    waitFor(async () => {
      const r = await readRefund(id);
      return ['succeeded', 'failed', 'review'].includes(r.status) ? r : undefined;
    }, timeoutMs);

  /** Makes every open refund due and runs one reconciler pass over refunds. */
  async function reconcile() {
    await t.db.execute(sql`update refunds set next_check_at = now() where status in ('requested','pending','unknown')`);
    return t.app.get(RefundReconciler).reconcileDue(50);
  }

  it('a full reversal: pending, then succeeded with the reversal receipt; the order shows it refunded', async () => {
    const p = await paidPayment(150);
    const res = await askRefund(p.paymentId);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ status: 'pending', amount: 150, currency: 'KES', provider: 'mpesa' });
    const [sent] = t.sim.reversals().filter((r) => r.request.TransactionID === p.receipt);
    expect(sent.request).toMatchObject({
      CommandID: 'TransactionReversal',
      Amount: '150',
      ReceiverParty: '174379',
      RecieverIdentifierType: '11',
      Initiator: 'testapi',
    });
    expect(sent.securityCredential).toBe('decrypted');
    expect(sent.request.ResultURL).toMatch(
      new RegExp(`/payments/callback/refunds/${res.body.refundId}/result/[0-9a-f]{64}$`),
    );

    const r = await settled(res.body.refundId);
    expect(r).toMatchObject({ status: 'succeeded', resultCode: '0', amount: 150 });
    expect(r.providerRefundId).toMatch(/^[A-Z0-9]{10}$/);
    expect(r.providerRefundId).not.toBe(p.receipt);
    const order = await t.http().get(`/orders/${p.orderId}`).set('Authorization', cashier);
    expect(order.body).toMatchObject({ paid: 0, refunded: 150, status: 'refunded' });
    const inbox = await rows<{ kind: string; verified: boolean; outcome: string; url_payment_id: string }>(
      sql`select kind, verified, outcome, url_payment_id from callback_inbox where url_payment_id = ${res.body.refundId}`,
    );
    expect(inbox).toEqual([
      { kind: 'reversal_result', verified: true, outcome: 'applied', url_payment_id: res.body.refundId },
    ]);
  });

  it('a partial reversal gives back only that part', async () => {
    const p = await paidPayment(300);
    const res = await askRefund(p.paymentId, { amount: 120 });
    expect(res.status).toBe(201);
    expect((await settled(res.body.refundId)).status).toBe('succeeded');
    expect(t.sim.reversals().find((r) => r.request.TransactionID === p.receipt)?.request.Amount).toBe('120');
    const order = await t.http().get(`/orders/${p.orderId}`).set('Authorization', cashier);
    expect(order.body).toMatchObject({ paid: 180, refunded: 120, status: 'partially_refunded' });
    // M-Pesa reverses a payment once: a second refund is refused before anything is sent
    const before = t.sim.reversals().length;
    const again = await askRefund(p.paymentId, { amount: 10 });
    expect(again.status).toBe(422);
    expect(again.body.code).toBe('MPESA_ONE_REVERSAL');
    expect(t.sim.reversals().length).toBe(before);
  });

  it.each([
    [2001, 'INITIATOR_INVALID', /update the initiator/i],
    ['R000001', 'ALREADY_REVERSED', /already reversed/],
    ['R000002', 'UNKNOWN_RECEIPT', /does not know this payment's receipt/],
    [21, 'MISSING_ROLE', /Org Reversals Initiator/],
    [8006, 'INITIATOR_LOCKED', /locked/],
    [1, 'INSUFFICIENT_BALANCE', /Top up/],
  ])(
    'result %s: failed %s with a message saying what to do; the order keeps the money',
    async (code, reason, message) => {
      const p = await paidPayment(100);
      t.sim.forceResult({ api: 'reversal', transactionId: p.receipt, resultCode: code });
      const res = await askRefund(p.paymentId);
      const r = await settled(res.body.refundId);
      expect(r).toMatchObject({ status: 'failed', statusReason: reason, resultCode: String(code) });
      expect(r.resultDesc).toMatch(message);
      const order = await t.http().get(`/orders/${p.orderId}`).set('Authorization', cashier);
      expect(order.body).toMatchObject({ paid: 100, refunded: 0 });
    },
  );

  it('a wrong initiator password (the real check, not forced): 2001, failed', async () => {
    const app2 = await startExtraTestApp(t, {
      MPESA_INITIATOR_NAME: 'testapi',
      MPESA_INITIATOR_PASSWORD: 'not-the-password',
      RECONCILER_ENABLED: 'false',
    });
    try {
      const p = await paidPayment(90);
      const res = await app2
        .http()
        .post(`/payments/${p.paymentId}/refunds`)
        .set('Authorization', manager)
        .send({ reason: 'Wrong item sold' });
      expect(res.status).toBe(201);
      const r = await settled(res.body.refundId);
      expect(r).toMatchObject({ status: 'failed', statusReason: 'INITIATOR_INVALID', resultCode: '2001' });
    } finally {
      await app2.close();
    }
  });

  it('a certificate of another environment: Daraja cannot read the credential (400.002.02), failed, nothing reversed', async () => {
    const app2 = await startExtraTestApp(t, {
      MPESA_CERT_FILE: `${REPO_ROOT}/apps/api/certs/mpesa-sandbox.cer`,
      RECONCILER_ENABLED: 'false',
    });
    try {
      const p = await paidPayment(80);
      const res = await app2
        .http()
        .post(`/payments/${p.paymentId}/refunds`)
        .set('Authorization', manager)
        .send({ reason: 'Wrong item sold' });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({
        status: 'failed',
        statusReason: 'INITIATOR_CREDENTIAL_INVALID',
        resultCode: '400.002.02',
      });
      expect(res.body.resultDesc).toMatch(/certificate is the one for this environment/);
      expect(t.sim.reversals().find((r) => r.request.TransactionID === p.receipt)?.securityCredential).toBe(
        'undecryptable',
      );
    } finally {
      await app2.close();
    }
  });

  it('a stored result whose processing never finished is replayed by the reconciler, once', async () => {
    const p = await paidPayment(70);
    t.sim.forceResult({ api: 'reversal', transactionId: p.receipt, delivery: 'none' });
    const res = await askRefund(p.paymentId);
    const [pd] = await rows<{ c: string; o: string }>(
      sql`select provider_data->>'conversationId' as c, provider_data->>'originatorConversationId' as o from refunds where id = ${res.body.refundId}`,
    );
    const body = JSON.stringify({
      Result: {
        ResultType: 0,
        ResultCode: 0,
        ResultDesc: 'ok',
        OriginatorConversationID: pd.o,
        ConversationID: pd.c,
        TransactionID: 'RVS7ABCDEF',
        ResultParameters: { ResultParameter: { Key: 'Amount', Value: 70 } },
      },
    });
    await t.db.execute(
      sql`insert into callback_inbox (provider, kind, url_payment_id, verified, raw_body, attempts) values ('mpesa', 'reversal_result', ${res.body.refundId}, true, ${body}, 1)`,
    );
    const ops = t.app.get(PaymentOperationsService);
    const stored = await rows<{ id: string }>(
      sql`select id::text as id from callback_inbox where url_payment_id = ${res.body.refundId} and processed_at is null`,
    );
    const row = {
      id: BigInt(stored[0].id),
      provider: 'mpesa',
      kind: 'reversal_result',
      verified: true,
      urlPaymentId: res.body.refundId,
      rawBody: body,
      attempts: 1,
    };
    expect(await ops.replayStoredNotification(row)).toBe('applied');
    expect(await ops.replayStoredNotification(row)).toBe('duplicate');
    expect(await readRefund(res.body.refundId)).toMatchObject({ status: 'succeeded', providerRefundId: 'RVS7ABCDEF' });
  });

  it('a result delivered twice at once is applied once', async () => {
    const p = await paidPayment(110);
    t.sim.forceResult({ api: 'reversal', transactionId: p.receipt, copies: 2, gapMs: 0 });
    const res = await askRefund(p.paymentId);
    const r = await settled(res.body.refundId);
    expect(r.status).toBe('succeeded');
    const inbox = await waitFor(async () => {
      const got = await rows<{ outcome: string }>(
        sql`select outcome from callback_inbox where url_payment_id = ${res.body.refundId} and kind = 'reversal_result' order by outcome`,
      );
      return got.length === 2 && got.every((g) => g.outcome) ? got : undefined;
    });
    expect(inbox.map((i) => i.outcome)).toEqual(['applied', 'duplicate']);
    const changes = await rows<{ n: number }>(
      sql`select count(*)::int as n from payment_events where type = 'refund_status_changed' and to_status = 'succeeded' and data->>'refundId' = ${res.body.refundId}`,
    );
    expect(changes[0].n).toBe(1);
  });

  it('a result on a forged URL is stored, acknowledged, never applied', async () => {
    const p = await paidPayment(120);
    t.sim.forceResult({ api: 'reversal', transactionId: p.receipt, delivery: 'none' });
    const res = await askRefund(p.paymentId);
    const forged = await t
      .http()
      .post(`/payments/callback/refunds/${res.body.refundId}/result/${'0'.repeat(64)}`)
      .send({
        Result: { ResultType: 0, ResultCode: 0, ResultDesc: 'ok', TransactionID: 'FAKE123456', ConversationID: 'x' },
      });
    expect(forged.status).toBe(200);
    expect(forged.body).toEqual({ ResultCode: 0, ResultDesc: 'Accepted' });
    expect((await readRefund(res.body.refundId)).status).toBe('pending');
    const stored = await rows<{ verified: boolean; outcome: string }>(
      sql`select verified, outcome from callback_inbox where url_payment_id = ${res.body.refundId}`,
    );
    expect(stored).toEqual([{ verified: false, outcome: 'rejected_unverified' }]);
    // bad JSON and a body that is not a Result: 400
    const bad = await t
      .http()
      .post(`/payments/callback/refunds/${res.body.refundId}/result/x`)
      .set('content-type', 'application/json')
      .send('{nope');
    expect(bad.status).toBe(400);
    expect(
      (await t.http().post(`/payments/callback/refunds/${res.body.refundId}/result/x`).send({ hello: 1 })).status,
    ).toBe(400);
  });

  it('a result that never comes: the reconciler asks Transaction Status by the reversal id, which settles it', async () => {
    const p = await paidPayment(130);
    t.sim.forceResult({ api: 'reversal', transactionId: p.receipt, delivery: 'none' });
    const res = await askRefund(p.paymentId);
    expect(res.body.status).toBe('pending');
    await new Promise((r) => setTimeout(r, 400)); // the simulator reverses it, and tells no one
    expect((await readRefund(res.body.refundId)).status).toBe('pending');
    const before = t.sim.reversals().length;
    await reconcile();
    const r = await settled(res.body.refundId);
    expect(r).toMatchObject({ status: 'succeeded' });
    expect(r.providerRefundId).toMatch(/^[A-Z0-9]{10}$/);
    const [q] = t.sim.statusQueries().filter((s) => s.request.ResultURL?.toString().includes(res.body.refundId));
    expect(q.request.OriginalConversationID).toBeDefined();
    expect(t.sim.reversals().length).toBe(before); // never sent twice
  });

  it('a queue timeout: unknown; Transaction Status shows no reversal; only then is it sent again, and succeeds', async () => {
    const p = await paidPayment(140);
    t.sim.forceResult({ api: 'reversal', transactionId: p.receipt, delivery: 'queue_timeout' });
    const res = await askRefund(p.paymentId);
    const unknown = await waitFor(async () => {
      const r = await readRefund(res.body.refundId);
      return r.status === 'unknown' ? r : undefined;
    });
    expect(unknown.statusReason).toBe('QUEUE_TIMEOUT');
    expect(t.sim.reversals().filter((r) => r.request.TransactionID === p.receipt)).toHaveLength(1);

    await reconcile(); // asks Transaction Status: no such reversal → proof
    await waitFor(async () => {
      const pd = await rows<{ proof: string | null }>(
        sql`select provider_data->>'resubmitProofFor' as proof from refunds where id = ${res.body.refundId}`,
      );
      return pd[0].proof === '1';
    });
    expect(t.sim.reversals().filter((r) => r.request.TransactionID === p.receipt)).toHaveLength(1);
    await reconcile(); // sends it again
    const r = await settled(res.body.refundId);
    expect(r.status).toBe('succeeded');
    expect(t.sim.reversals().filter((x) => x.request.TransactionID === p.receipt)).toHaveLength(2);
    const order = await t.http().get(`/orders/${p.orderId}`).set('Authorization', cashier);
    expect(order.body).toMatchObject({ paid: 0, refunded: 140 });
  });

  /** A refund whose reversal hit the queue timeout and whose Transaction Status proved it never happened: one resend allowed. */
  async function provedForResend(amount: number) {
    const p = await paidPayment(amount);
    t.sim.forceResult({ api: 'reversal', transactionId: p.receipt, delivery: 'queue_timeout' });
    const res = await askRefund(p.paymentId);
    await waitFor(async () => ((await readRefund(res.body.refundId)).status === 'unknown' ? true : undefined));
    await reconcile();
    await waitFor(async () => {
      const pd = await rows<{ proof: string | null }>(
        sql`select provider_data->>'resubmitProofFor' as proof from refunds where id = ${res.body.refundId}`,
      );
      return pd[0].proof === '1';
    });
    await t.db.execute(sql`update refunds set next_check_at = now() where id = ${res.body.refundId}`);
    return { ...p, refundId: res.body.refundId as string };
  }

  it('review: reconcile-now pressed four times while the reconciler runs sends the one allowed resend once, and its success settles the refund', async () => {
    const p = await provedForResend(135);
    const sentFor = () => t.sim.reversals().filter((r) => r.request.TransactionID === p.receipt).length;
    expect(sentFor()).toBe(1);
    const press = () => t.http().post(`/refunds/${p.refundId}/reconcile`).set('Authorization', manager);
    const answers = await Promise.all([
      press(),
      press(),
      press(),
      press(),
      t.app.get(RefundReconciler).reconcileDue(50),
    ]);
    const actions = answers.slice(0, 4).map((a) => (a as { body: { action: string } }).body.action);
    expect(actions.filter((a) => a !== 'in_progress').length).toBeLessThanOrEqual(1);
    const r = await settled(p.refundId);
    expect(r.status).toBe('succeeded');
    expect(sentFor()).toBe(2);
    // Later passes send nothing more.
    await reconcile();
    expect(sentFor()).toBe(2);
  });

  it('review: "already reversed" for a resend goes to review (nothing sent again), and a manager settles it by hand', async () => {
    const p = await provedForResend(145);
    t.sim.forceResult({ api: 'reversal', transactionId: p.receipt, resultCode: 'R000001' });
    await reconcile(); // the resend: M-Pesa says already reversed
    const r = await settled(p.refundId);
    expect(r).toMatchObject({ status: 'review', statusReason: 'ALREADY_REVERSED' });
    expect(r.resultDesc).toContain('settle this refund');
    const sent = t.sim.reversals().filter((x) => x.request.TransactionID === p.receipt).length;
    await reconcile();
    expect(t.sim.reversals().filter((x) => x.request.TransactionID === p.receipt).length).toBe(sent);
    const bad = await t
      .http()
      .post(`/refunds/${p.refundId}/settle`)
      .set('Authorization', manager)
      .send({ outcome: 'maybe', note: 'x' });
    expect(bad.status).toBe(400);
    const ok = await t
      .http()
      .post(`/refunds/${p.refundId}/settle`)
      .set('Authorization', manager)
      .send({ outcome: 'succeeded', note: 'M-Pesa portal shows the first reversal went through' });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ status: 'succeeded', statusReason: 'SETTLED_SUCCEEDED' });
    const order = await t.http().get(`/orders/${p.orderId}`).set('Authorization', cashier);
    expect(order.body).toMatchObject({ paid: 0, refunded: 145, status: 'refunded' });
  });

  it('review: a Result naming no reversal ids, on a refund that holds them, is not applied', async () => {
    const p = await paidPayment(155);
    t.sim.forceResult({ api: 'reversal', transactionId: p.receipt, delivery: 'none' });
    const res = await askRefund(p.paymentId);
    expect(res.body.status).toBe('pending');
    const path = new URL(
      t.sim.reversals().filter((x) => x.request.TransactionID === p.receipt)[0].request.ResultURL as string,
    ).pathname;
    const forged = await t
      .http()
      .post(path)
      .send({ Result: { ResultType: 0, ResultCode: 0, ResultDesc: 'ok', TransactionID: 'NOIDS00001' } });
    expect(forged.status).toBe(200);
    await new Promise((r) => setTimeout(r, 200));
    expect(await readRefund(res.body.refundId)).toMatchObject({ status: 'pending', providerRefundId: null });
  });

  it('a refund parked in review (the reconciler gave up) is settled by POST /refunds/:id/reconcile: Transaction Status, whose result arrives later', async () => {
    const p = await paidPayment(125);
    t.sim.forceResult({ api: 'reversal', transactionId: p.receipt, delivery: 'none' });
    const res = await askRefund(p.paymentId);
    expect(res.body.status).toBe('pending');
    await new Promise((r) => setTimeout(r, 400)); // reversed at the simulator, nobody told
    // The reconciler gave up on it long ago (as after REFUND_MAX_LOOKS looks).
    await t.db.execute(
      sql`update refunds set status = 'review', status_reason = 'GAVE_UP', next_check_at = null where id = ${res.body.refundId}`,
    );
    const before = t.sim.reversals().length;
    const now = await t.http().post(`/refunds/${res.body.refundId}/reconcile`).set('Authorization', manager);
    expect(now.status).toBe(200);
    expect(now.body).toMatchObject({ action: 'still_open', refund: { status: 'review' } });
    const r = await settled(res.body.refundId);
    await waitFor(async () => ((await readRefund(res.body.refundId)).status === 'succeeded' ? true : undefined));
    expect(r.refundId).toBe(res.body.refundId);
    expect(await readRefund(res.body.refundId)).toMatchObject({ status: 'succeeded' });
    expect(t.sim.reversals().length).toBe(before); // asked, never sent again
    const other = await t
      .http()
      .post(`/refunds/${res.body.refundId}/reconcile`)
      .set('Authorization', `Bearer ${t.token('shop-2', 'manager', 'm2')}`);
    expect(other.status).toBe(404);
  });

  it('a refund whose request died before sending (still requested): Transaction Status by receipt first, then it is sent once and succeeds', async () => {
    const p = await paidPayment(115);
    const id = '0b6a2c1e-3f4d-4e5a-8b7c-9d0e1f2a3b4c';
    // What a process that died between committing the refund and sending it leaves behind.
    await t.db
      .execute(sql`insert into refunds (id, payment_id, shop_id, order_id, provider, amount_minor, currency, status, reason, source, requested_by, next_check_at, created_at)
      select ${id}::uuid, id, shop_id, order_id, provider, amount_minor, currency, 'requested', 'Customer returned the item', 'request', 'user:mgr-1', now(), now() - interval '10 minutes'
      from payments where id = ${p.paymentId}`);
    const before = t.sim.reversals().filter((r) => r.request.TransactionID === p.receipt).length;
    expect(before).toBe(0);
    await reconcile(); // asks by the payment's receipt: completed, no reversal → proof
    await waitFor(async () => {
      const pd = await rows<{ proof: string | null }>(
        sql`select provider_data->>'resubmitProofFor' as proof from refunds where id = ${id}`,
      );
      return pd[0].proof === '0';
    });
    expect(t.sim.statusQueries().filter((q) => q.request.TransactionID === p.receipt).length).toBeGreaterThan(0);
    expect(t.sim.reversals().filter((r) => r.request.TransactionID === p.receipt)).toHaveLength(0);
    await reconcile(); // now sends it
    const r = await settled(id);
    expect(r.status).toBe('succeeded');
    expect(t.sim.reversals().filter((x) => x.request.TransactionID === p.receipt)).toHaveLength(1);
  });

  it('a cashier may not refund', async () => {
    const p = await paidPayment(60);
    const res = await t
      .http()
      .post(`/payments/${p.paymentId}/refunds`)
      .set('Authorization', cashier)
      .send({ reason: 'please' });
    expect(res.status).toBe(403);
  });

  describe('settling a payment whose outcome is unknown by its receipt (Transaction Status)', () => {
    /** A push the simulator paid whose callback never came, parked as outcome unknown; its receipt is known to the test. */
    async function unknownPayment(amount: number) {
      n += 1;
      const orderId = `RC-${n}`;
      await t.http().post('/orders').set('Authorization', cashier).send({ id: orderId, total: amount });
      const push = await t
        .http()
        .post('/payments/stk-push')
        .set('Authorization', cashier)
        .send({ phoneNumber: '254700000005', amount, orderId });
      expect(push.status).toBe(201);
      const receipt = await waitFor(async () => t.sim.getPush(fullCheckoutRequestId(t.sim, push.body))?.receipt);
      await t.db.execute(
        sql`update payments set status = 'review', status_reason = 'OUTCOME_UNKNOWN', next_check_at = null where id = ${push.body.paymentId}`,
      );
      return { paymentId: push.body.paymentId as string, receipt, orderId };
    }
    const status = async (id: string) =>
      (
        await rows<{ status: string; status_reason: string | null; mpesa_receipt_number: string | null }>(
          sql`select status, status_reason, mpesa_receipt_number from payments where id = ${id}`,
        )
      )[0];

    it('the receipt is checked with M-Pesa and the payment completes; the order is paid', async () => {
      const p = await unknownPayment(75);
      const res = await t
        .http()
        .post(`/payments/${p.paymentId}/mpesa-receipt`)
        .set('Authorization', manager)
        .send({ receipt: p.receipt.toLowerCase() });
      expect(res.status).toBe(202);
      expect(res.body).toMatchObject({ paymentId: p.paymentId, receipt: p.receipt, status: 'checking' });
      const q = t.sim.statusQueries().find((x) => x.request.TransactionID === p.receipt)!;
      expect(q.request.ResultURL).toMatch(
        new RegExp(`/payments/callback/payments/${p.paymentId}/status/[0-9a-f]{64}$`),
      );
      const done = await waitFor(async () => {
        const s = await status(p.paymentId);
        return s.status === 'completed' ? s : undefined;
      });
      expect(done.mpesa_receipt_number).toBe(p.receipt);
      const order = await t.http().get(`/orders/${p.orderId}`).set('Authorization', cashier);
      expect(order.body).toMatchObject({ paid: 75, status: 'paid' });
      const inbox = await rows<{ kind: string; outcome: string }>(
        sql`select kind, outcome from callback_inbox where url_payment_id = ${p.paymentId} and kind is not null`,
      );
      expect(inbox).toEqual([{ kind: 'payment_status_result', outcome: 'applied' }]);
    });

    it('a receipt M-Pesa does not know leaves the payment as it is, with the answer recorded', async () => {
      const p = await unknownPayment(65);
      const res = await t
        .http()
        .post(`/payments/${p.paymentId}/mpesa-receipt`)
        .set('Authorization', manager)
        .send({ receipt: 'ZZZ9ZZZ9ZZ' });
      expect(res.status).toBe(202);
      const ev = await waitFor(async () => {
        const got = await rows<{ data: { outcome: string } }>(
          sql`select data from payment_events where payment_id = ${p.paymentId} and type = 'mpesa_receipt_check_answered'`,
        );
        return got[0];
      });
      expect(ev.data.outcome).toBe('receipt_not_found');
      expect(await status(p.paymentId)).toMatchObject({ status: 'review', status_reason: 'OUTCOME_UNKNOWN' });
    });

    it('refuses a cashier, a bad receipt, a known outcome and a receipt another payment holds, before asking M-Pesa', async () => {
      const p = await unknownPayment(55);
      const paid = await paidPayment(45);
      const before = t.sim.statusQueries().length;
      const post = (id: string, body: unknown, auth = manager) =>
        t
          .http()
          .post(`/payments/${id}/mpesa-receipt`)
          .set('Authorization', auth)
          .send(body as object);
      expect((await post(p.paymentId, { receipt: p.receipt }, cashier)).status).toBe(403);
      expect((await post(p.paymentId, { receipt: 'short' })).status).toBe(400);
      expect((await post(p.paymentId, {})).status).toBe(400);
      const known = await post(paid.paymentId, { receipt: paid.receipt });
      expect(known.status).toBe(409);
      expect(known.body.code).toBe('OUTCOME_KNOWN');
      const inUse = await post(p.paymentId, { receipt: paid.receipt });
      expect(inUse.status).toBe(409);
      expect(inUse.body.code).toBe('RECEIPT_IN_USE');
      const other = `Bearer ${t.token('shop-2', 'manager', 'mgr-2')}`;
      expect((await post(p.paymentId, { receipt: p.receipt }, other)).status).toBe(404);
      expect(t.sim.statusQueries().length).toBe(before);
    });
  });
});

/** Issue 11's "way out of review" by refund: a payment holding the customer's money, given back with a real reversal. */
describe('M-Pesa: a payment in review resolved by refund (a reversal)', () => {
  let t: TestApp;
  let cashier: string;
  let manager: string;

  beforeAll(async () => {
    t = await startTestApp({
      sim: { callbackDelayMs: 100, resultDelayMs: 100 },
      env: {
        RECONCILER_ENABLED: 'false',
        RECONCILER_PENDING_GRACE_SECONDS: '0',
        RECONCILER_BACKOFF_BASE_SECONDS: '0',
        RECONCILER_BACKOFF_MAX_SECONDS: '0',
        MPESA_STATUS_QUERY_AFTER_SECONDS: '3600',
        MPESA_REVERSAL_WAIT_SECONDS: '0',
      },
    });
    cashier = `Bearer ${t.token()}`;
    manager = `Bearer ${t.token('shop-1', 'manager', 'mgr-1')}`;
  });
  afterAll(() => t.close());

  const push = (orderId: string, amount: number, phoneNumber: string) =>
    t.http().post('/payments/stk-push').set('Authorization', cashier).send({ phoneNumber, amount, orderId });
  const payment = async (id: string) =>
    (
      (await t.db.execute(sql`select status, status_reason, resolution from payments where id = ${id}`)) as unknown as {
        rows: { status: string; status_reason: string | null; resolution: string | null }[];
      }
    ).rows[0];

  it('ORDER_ALREADY_PAID (a released push the customer paid after all): refunded by reversal of its own receipt', async () => {
    const orderId = 'RV-1';
    await t.http().post('/orders').set('Authorization', cashier).send({ id: orderId, total: 100 });
    const first = await push(orderId, 100, '254700000007'); // the customer does not answer (yet)
    expect(first.status).toBe(201);
    await t.db.execute(
      sql`update payments set created_at = now() - interval '2 hours', next_check_at = null where id = ${first.body.paymentId}`,
    );
    await t.app.get(ReconcilerService).tick();
    expect(await payment(first.body.paymentId)).toMatchObject({ status: 'review', status_reason: 'OUTCOME_UNKNOWN' });
    const rel = await t
      .http()
      .post(`/payments/${first.body.paymentId}/release`)
      .set('Authorization', manager)
      .send({ reason: 'customer shows no SMS' });
    expect(rel.status).toBe(200);
    const second = await push(orderId, 100, '0712345678');
    await waitFor(async () => (await payment(second.body.paymentId)).status === 'completed');
    await t.sim.resolve(fullCheckoutRequestId(t.sim, first.body), 0); // the first prompt is paid after all: a real receipt
    await waitFor(async () => (await payment(first.body.paymentId)).status_reason === 'ORDER_ALREADY_PAID');
    const receipt = t.sim.getPush(fullCheckoutRequestId(t.sim, first.body))!.receipt!;

    const res = await t
      .http()
      .post(`/payments/${first.body.paymentId}/resolve`)
      .set('Authorization', manager)
      .send({ action: 'refund', note: 'the order was paid twice' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ payment: { resolution: 'refunded' }, refund: { amount: 100, source: 'review' } });
    const refundId = res.body.refund.refundId as string;
    expect(t.sim.reversals().map((r) => r.request.TransactionID)).toEqual([receipt]);
    const r = await waitFor(async () => {
      const got = (await t.http().get(`/refunds/${refundId}`).set('Authorization', manager)).body;
      return got.status === 'succeeded' ? got : undefined;
    });
    expect(r.providerRefundId).toMatch(/^[A-Z0-9]{10}$/);
    expect(await payment(first.body.paymentId)).toMatchObject({ status: 'review', resolution: 'refunded' });
    // the order keeps the second payment; the refunded one never counted
    const order = await t.http().get(`/orders/${orderId}`).set('Authorization', cashier);
    expect(order.body).toMatchObject({ paid: 100, refunded: 0, status: 'paid' });
  });
});
