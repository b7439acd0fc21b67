/**
 * The bad-input corpus contract, shared by test/bad-requests.e2e.ts (hand-written cases) and
 * test/bad-input/generated.e2e.ts (generated cases): the real app over HTTP (supertest), a real
 * database (Postgres via DATABASE_URL, else PGlite) and the Daraja simulator.
 *
 * Every case must get a 4xx (never a 5xx) with the one public error shape
 * `{statusCode, code, message, details?, requestId}` and a message that tells the caller what to
 * fix, and must leave the database exactly as it was (row counts plus payment/order states from
 * tableCounts).
 *
 * Callbacks (Daraja signs nothing, so the API stores every callback body in callback_inbox before
 * looking at it, by design): callback_inbox may grow by at most one row; payments, orders,
 * payment_events and idempotency_keys must not change. Callbacks keep the controller's contract:
 * a body that is not an STK callback is a 400 INVALID_CALLBACK; a well-formed one that names no
 * payment of ours is acknowledged Daraja-style (200 {ResultCode:0,ResultDesc:'Accepted'}, so Daraja
 * stops retrying) and changes nothing (the inbox row ends `unknown_payment`).
 *
 * Fixtures (setupFixtures):
 *   ORD-BAD      total 100, unpaid, no payments         (amount / outstanding cases)
 *   ORD-PENDING  total 50, one payment left `pending`  (simulator "never answers" number)
 *   ORD-PAID     total 10, paid by a completed payment
 */
import { createHmac } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { Algorithm, sign } from 'jsonwebtoken';
import type { Test } from 'supertest';
import { fullCheckoutRequestId, tableCounts, TEST_JWT_SECRET, TestApp, waitFor } from '../helpers/test-app';

export type Http = TestApp['http'];

export interface Case {
  name: string;
  req: (http: Http, auth: string) => Test;
  status: number;
  code?: string;
  /** Every fragment must appear in the error message (case-insensitive). */
  messageIncludes?: string | string[];
  /** Callback endpoints store the body first: callback_inbox may grow by one row, nothing else may change. */
  callback?: boolean;
  /** A well-formed callback for no payment of ours: a Daraja ack (status 200), then nothing changes. */
  ack?: boolean;
}

/** Simulator magic number: push accepted, the customer never answers (payment stays pending). */
export const NEVER_ANSWERS_PHONE = '0700000007';
export const SUCCESS_PHONE = '0712345678';
export const SETUP_IDEMPOTENCY_KEY = 'bad-requests-setup-key-1';
export const UNKNOWN_UUID = '3f2c9a4e-8b1d-4c6e-9f0a-7d5e2b1c4a98';
export const CALLBACK_ACK = { ResultCode: 0, ResultDesc: 'Accepted' };

export interface PendingPayment {
  paymentId: string;
  checkoutRequestId: string;
  merchantRequestId: string;
  token: string;
}

/** Filled by setupFixtures; read lazily by the cases (they are built before the fixtures exist). */
export const pending: PendingPayment = { paymentId: '', checkoutRequestId: '', merchantRequestId: '', token: '' };

/** A valid push for ORD-BAD (total 100): each case breaks exactly one thing. Uses the "never answers"
 * number so that, if the API wrongly accepted a case, no callback would settle anything behind our back. */
export const push = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  phoneNumber: NEVER_ANSWERS_PHONE,
  amount: 100,
  orderId: 'ORD-BAD',
  ...overrides,
});
export const without = (field: string): Record<string, unknown> => {
  const b = push();
  delete b[field];
  return b;
};

// ---------------------------------------------------------------------------- tokens

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);
export const b64url = (o: object | string): string =>
  Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');
export const claims = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  sub: 'cashier-1',
  shopId: 'shop-1',
  role: 'cashier',
  iat: nowSeconds(),
  exp: nowSeconds() + 3600,
  ...overrides,
});
export const jwt = (
  payload: Record<string, unknown>,
  secret = TEST_JWT_SECRET,
  algorithm: Algorithm = 'HS256',
): string => sign(payload, secret, { algorithm });
export const bearer = (token: string): string => `Bearer ${token}`;
/** An HS256 token signed by hand: header and claims exactly as given (jsonwebtoken refuses to sign odd claims). */
export const hs256 = (header: object | string, payload: object, secret = TEST_JWT_SECRET): string => {
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
};
export const tokenFor = (shopId: string, role: string, sub = 'user-1'): string =>
  bearer(jwt(claims({ shopId, role, sub })));
export const otherShop = (): string => tokenFor('shop-2', 'cashier', 'cashier-2');
export const manager = (): string => tokenFor('shop-1', 'manager', 'manager-1');

// ---------------------------------------------------------------------------- callbacks

/** An STK callback for a CheckoutRequestID no payment has (a wrong field per case). */
export const stk = (fields: Record<string, unknown>): Record<string, unknown> => ({
  Body: {
    stkCallback: {
      MerchantRequestID: '29115-34620561-1',
      CheckoutRequestID: 'ws_CO_DOESNOTEXIST0001',
      ResultCode: 1032,
      ResultDesc: 'Request cancelled by user',
      ...fields,
    },
  },
});
export const callbackUrl = (): string => `/payments/callback/${pending.paymentId}/${pending.token}`;

export const BIG_PAD = 'x'.repeat(70 * 1024); // > the 64 KB body limit

// ---------------------------------------------------------------------------- fixtures

export async function setupFixtures(t: TestApp, auth: string): Promise<void> {
  const http = t.http;
  for (const [id, total] of [
    ['ORD-BAD', 100],
    ['ORD-PENDING', 50],
    ['ORD-PAID', 10],
  ] as const) {
    const r = await http().post('/orders').set('Authorization', auth).send({ id, total });
    expect(r.status).toBe(201);
  }

  // ORD-PENDING: a payment the simulated customer never answers (stays pending), pushed with an Idempotency-Key.
  const p = await http()
    .post('/payments/stk-push')
    .set('Authorization', auth)
    .set('Idempotency-Key', SETUP_IDEMPOTENCY_KEY)
    .send({ phoneNumber: NEVER_ANSWERS_PHONE, amount: 50, orderId: 'ORD-PENDING' });
  expect(p.status).toBe(201);
  expect(p.body.status).toBe('pending');
  pending.paymentId = p.body.paymentId;
  // The full id (the answer's is masked): callbacks carry it as Daraja does.
  pending.checkoutRequestId = fullCheckoutRequestId(t.sim, p.body);
  pending.merchantRequestId = p.body.merchantRequestId;
  const simPush = t.sim.getPush(pending.checkoutRequestId);
  expect(simPush).toBeDefined();
  pending.token = simPush!.callbackUrl.split('/').pop()!;
  expect(pending.token).toMatch(/^[0-9a-f]{64}$/);

  // ORD-PAID: paid in full by a completed payment.
  const paid = await http()
    .post('/payments/stk-push')
    .set('Authorization', auth)
    .send({ phoneNumber: SUCCESS_PHONE, amount: 10, orderId: 'ORD-PAID' });
  expect(paid.status).toBe(201);
  await t.sim.waitForCallbacks(fullCheckoutRequestId(t.sim, paid.body), 1, 5000);
  await waitFor(async () => {
    const r = await http().get('/orders/ORD-PAID').set('Authorization', auth);
    return r.body.status === 'paid' && r.body.paidAt !== null;
  });
}

export async function expectFixturesUntouched(t: TestApp, auth: string): Promise<void> {
  const pend = await t.http().get('/orders/ORD-PENDING').set('Authorization', auth);
  expect(pend.body).toMatchObject({
    id: 'ORD-PENDING',
    total: 50,
    paid: 0,
    outstanding: 50,
    status: 'unpaid',
    paidAt: null,
  });
  const payment = await t.http().get(`/payments/${pending.paymentId}`).set('Authorization', auth);
  expect(payment.body).toMatchObject({ paymentId: pending.paymentId, status: 'pending', mpesaReceiptNumber: null });
  const bad = await t.http().get('/orders/ORD-BAD').set('Authorization', auth);
  expect(bad.body).toMatchObject({
    id: 'ORD-BAD',
    total: 100,
    paid: 0,
    outstanding: 100,
    status: 'unpaid',
    paidAt: null,
  });
  const paid = await t.http().get('/orders/ORD-PAID').set('Authorization', auth);
  expect(paid.body).toMatchObject({ id: 'ORD-PAID', total: 10, paid: 10, outstanding: 0, status: 'paid' });
}

// ---------------------------------------------------------------------------- the check

const ERROR_KEYS = new Set(['statusCode', 'code', 'message', 'details', 'requestId']);

async function unprocessedCallbacks(t: TestApp): Promise<number> {
  const res = await t.db.execute(sql`select count(*)::int as n from callback_inbox where processed_at is null`);
  const rows = (res as unknown as { rows?: { n: number }[] }).rows ?? (res as unknown as { n: number }[]);
  return rows[0].n;
}

async function lastCallbackOutcome(t: TestApp): Promise<string | null> {
  const res = await t.db.execute(sql`select outcome from callback_inbox order by id desc limit 1`);
  const rows =
    (res as unknown as { rows?: { outcome: string | null }[] }).rows ??
    (res as unknown as { outcome: string | null }[]);
  return rows[0]?.outcome ?? null;
}

/** Sends one case and checks the whole contract (status, error shape, message, nothing changed). */
export async function checkCase(t: TestApp, auth: string, c: Case): Promise<void> {
  const before = await tableCounts(t.db);
  const res = await c.req(t.http, auth);
  if (c.ack) {
    // The ack comes before the background confirmation: wait until the inbox row is processed.
    await waitFor(async () => (await unprocessedCallbacks(t)) === 0, 5000, 20);
  } else {
    // Give anything the request may have started in the background a moment to land.
    await new Promise((r) => setTimeout(r, 30));
  }
  const after = await tableCounts(t.db);

  // Status: the exact one, never a 5xx.
  expect(`${res.status} ${JSON.stringify(res.body)}`).toMatch(new RegExp(`^${c.status} `));
  expect(res.status).toBeLessThan(500);
  expect(res.headers['content-type']).toMatch(/^application\/json/);

  if (c.ack) {
    expect(c.callback).toBe(true);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(CALLBACK_ACK);
    expect(await lastCallbackOutcome(t)).toBe('unknown_payment');
  } else {
    expect(res.status).toBeGreaterThanOrEqual(400);
    // Shape: {statusCode, code, message, details?, requestId} as JSON.
    const body = res.body as Record<string, unknown>;
    expect(Object.keys(body).filter((k) => !ERROR_KEYS.has(k))).toEqual([]);
    expect(body.statusCode).toBe(res.status);
    expect(body.code).toEqual(expect.stringMatching(/^[A-Z][A-Z0-9_]+$/));
    if (c.code) expect(body.code).toBe(c.code);
    expect(typeof body.message).toBe('string');
    if (body.details !== undefined) {
      expect(typeof body.details).toBe('object');
      expect(body.details).not.toBeNull();
      expect(Array.isArray(body.details)).toBe(false);
    }
    // requestId: present on every error and the same as the X-Request-Id response header.
    expect(body).toEqual(expect.objectContaining({ requestId: expect.stringMatching(/^[A-Za-z0-9._-]{1,64}$/) }));
    expect({ 'x-request-id': res.headers['x-request-id'] }).toEqual({ 'x-request-id': body.requestId });

    // A useful message: specific, no internals leaking.
    const message = body.message as string;
    expect(message.length).toBeGreaterThanOrEqual(10);
    expect(message).not.toMatch(
      /undefined|\[object Object\]|Cannot read|TypeError|stack|Internal server error|Something went wrong/i,
    );
    for (const fragment of c.messageIncludes === undefined ? [] : ([] as string[]).concat(c.messageIncludes)) {
      expect(message.toLowerCase()).toContain(fragment.toLowerCase());
    }
  }

  // Nothing changed (callbacks: the audit inbox may hold one more row, nothing else may change).
  if (c.callback) {
    const { callback_inbox: inboxBefore, ...restBefore } = before;
    const { callback_inbox: inboxAfter, ...restAfter } = after;
    expect(restAfter).toEqual(restBefore);
    expect(inboxAfter - inboxBefore).toBeGreaterThanOrEqual(c.ack ? 1 : 0);
    expect(inboxAfter - inboxBefore).toBeLessThanOrEqual(1);
  } else {
    expect(after).toEqual(before);
  }
}
