/**
 * Bad requests, table-driven, end to end: the real app over HTTP (supertest), a real database
 * (Postgres via DATABASE_URL, else PGlite) and the Daraja simulator.
 *
 * Every case must get a 4xx (never a 5xx) with the one public error shape
 * `{statusCode, code, message, details?, requestId}` and a message that tells the caller what to
 * fix, and must leave the database exactly as it was (row counts plus payment/order states from
 * tableCounts). Structurally invalid callbacks are stored in callback_inbox for audit, so for
 * callback cases callback_inbox may grow by at most one row; nothing else may change.
 *
 * Fixtures (beforeAll):
 *   ORD-BAD      total 100, unpaid, no payments         (amount / outstanding cases)
 *   ORD-PENDING  total 50, one payment left `pending`  (simulator "never answers" number)
 *   ORD-PAID     total 10, paid by a completed payment
 *
 * Cases assert the CORRECT behaviour. Known product bugs these catch (at the time of writing):
 *   - a callback with no body at all is a 500 (raw_body NOT NULL: JSON.stringify(undefined));
 *   - a JSON body nested ~2000+ levels deep is a 500 (stack overflow in the ValidationPipe);
 *   - a body with Content-Encoding: gzip that is not gzip is a 500 (body-parser 400 without a `type`).
 */
import { Algorithm, sign } from 'jsonwebtoken';
import type { Test } from 'supertest';
import { startTestApp, tableCounts, TEST_JWT_SECRET, TestApp, waitFor } from './helpers/test-app';

type Http = TestApp['http'];

interface Case {
  name: string;
  req: (http: Http, auth: string) => Test;
  status: number;
  code?: string;
  /** Every fragment must appear in the error message (case-insensitive). */
  messageIncludes?: string | string[];
  /** Callback endpoints store structurally invalid bodies: callback_inbox may grow by one. */
  callback?: boolean;
}

// ---------------------------------------------------------------------------- fixtures

/** Simulator magic number: push accepted, the customer never answers (payment stays pending). */
const NEVER_ANSWERS_PHONE = '0700000007';
const SUCCESS_PHONE = '0712345678';
const SETUP_IDEMPOTENCY_KEY = 'bad-requests-setup-key-1';
const UNKNOWN_UUID = '3f2c9a4e-8b1d-4c6e-9f0a-7d5e2b1c4a98';

let t: TestApp;
const pending = { paymentId: '', checkoutRequestId: '', merchantRequestId: '', token: '' };

/** A valid push for ORD-BAD (total 100): each case breaks exactly one thing. Uses the "never answers"
 * number so that, if the API wrongly accepted a case, no callback would settle anything behind our back. */
const push = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({ phoneNumber: NEVER_ANSWERS_PHONE, amount: 100, orderId: 'ORD-BAD', ...overrides });
const without = (field: string): Record<string, unknown> => {
  const b = push();
  delete b[field];
  return b;
};

// ---------------------------------------------------------------------------- tokens

const nowSeconds = (): number => Math.floor(Date.now() / 1000);
const b64url = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
const claims = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({ sub: 'cashier-1', shopId: 'shop-1', role: 'cashier', iat: nowSeconds(), exp: nowSeconds() + 3600, ...overrides });
const jwt = (payload: Record<string, unknown>, secret = TEST_JWT_SECRET, algorithm: Algorithm = 'HS256'): string => sign(payload, secret, { algorithm });
const bearer = (token: string): string => `Bearer ${token}`;
const otherShop = (): string => bearer(t.token('shop-2', 'cashier', 'cashier-2'));

// ---------------------------------------------------------------------------- callbacks

const stk = (fields: Record<string, unknown>): Record<string, unknown> => ({
  Body: { stkCallback: { MerchantRequestID: '29115-34620561-1', CheckoutRequestID: 'ws_CO_DOESNOTEXIST0001', ResultCode: 1032, ResultDesc: 'Request cancelled by user', ...fields } },
});
const callbackUrl = (): string => `/payments/callback/${pending.paymentId}/${pending.token}`;

const BIG_PAD = 'x'.repeat(70 * 1024); // > the 64 KB body limit

// ---------------------------------------------------------------------------- the table

const cases: Case[] = [
  // ------------------------------------------------------------ POST /orders
  { name: 'POST /orders: empty object', req: (h, a) => h().post('/orders').set('Authorization', a).send({}), status: 400, code: 'VALIDATION_FAILED', messageIncludes: ['id must be', 'total must be'] },
  { name: 'POST /orders: missing total', req: (h, a) => h().post('/orders').set('Authorization', a).send({ id: 'ORD-X1' }), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'total must be a number' },
  { name: 'POST /orders: missing id', req: (h, a) => h().post('/orders').set('Authorization', a).send({ total: 10 }), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'id must be' },
  { name: 'POST /orders: extra (non-whitelisted) field', req: (h, a) => h().post('/orders').set('Authorization', a).send({ id: 'ORD-X2', total: 10, discount: 5 }), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'property discount should not exist' },
  { name: 'POST /orders: total as a string', req: (h, a) => h().post('/orders').set('Authorization', a).send({ id: 'ORD-X3', total: '100' }), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'total must be a number' },
  { name: 'POST /orders: total null', req: (h, a) => h().post('/orders').set('Authorization', a).send({ id: 'ORD-X4', total: null }), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'total must be' },
  { name: 'POST /orders: total with 3 decimals', req: (h, a) => h().post('/orders').set('Authorization', a).send({ id: 'ORD-X5', total: 100.123 }), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'at most 2 decimal places' },
  { name: 'POST /orders: total 0', req: (h, a) => h().post('/orders').set('Authorization', a).send({ id: 'ORD-X6', total: 0 }), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'total must be at least 0.01' },
  { name: 'POST /orders: negative total', req: (h, a) => h().post('/orders').set('Authorization', a).send({ id: 'ORD-X7', total: -5 }), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'total must be at least 0.01' },
  { name: 'POST /orders: huge total', req: (h, a) => h().post('/orders').set('Authorization', a).send({ id: 'ORD-X8', total: 1e20 }), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'total must be at most' },
  { name: 'POST /orders: id with spaces', req: (h, a) => h().post('/orders').set('Authorization', a).send({ id: 'ORD BAD 2', total: 10 }), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'id must be 1-64 characters' },
  { name: 'POST /orders: id of 65 characters', req: (h, a) => h().post('/orders').set('Authorization', a).send({ id: 'O'.repeat(65), total: 10 }), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'id must be 1-64 characters' },
  { name: 'POST /orders: empty id', req: (h, a) => h().post('/orders').set('Authorization', a).send({ id: '', total: 10 }), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'id must be 1-64 characters' },
  { name: 'POST /orders: id as a number', req: (h, a) => h().post('/orders').set('Authorization', a).send({ id: 12345, total: 10 }), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'id must be' },
  { name: 'POST /orders: unsupported currency USD', req: (h, a) => h().post('/orders').set('Authorization', a).send({ id: 'ORD-X9', total: 10, currency: 'USD' }), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'currency must be one of KES' },
  { name: 'POST /orders: lower-case currency', req: (h, a) => h().post('/orders').set('Authorization', a).send({ id: 'ORD-X10', total: 10, currency: 'kes' }), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'currency must be one of KES' },
  { name: 'POST /orders: JSON array body', req: (h, a) => h().post('/orders').set('Authorization', a).send([]), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'id must be' },
  { name: 'POST /orders: no body at all', req: (h, a) => h().post('/orders').set('Authorization', a), status: 400, code: 'VALIDATION_FAILED', messageIncludes: ['id must be', 'total must be'] },
  { name: 'POST /orders: existing order with a different total', req: (h, a) => h().post('/orders').set('Authorization', a).send({ id: 'ORD-BAD', total: 200 }), status: 409, code: 'ORDER_EXISTS', messageIncludes: 'already exists with a different total' },
  { name: 'POST /orders: malformed JSON', req: (h, a) => h().post('/orders').set('Authorization', a).set('Content-Type', 'application/json').send('{"id": "ORD-X11", "total": '), status: 400, code: 'INVALID_JSON', messageIncludes: 'not valid JSON' },
  { name: 'POST /orders: text/plain body', req: (h, a) => h().post('/orders').set('Authorization', a).set('Content-Type', 'text/plain').send('id=ORD-X12&total=10'), status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', messageIncludes: 'application/json' },
  { name: 'POST /orders: form-urlencoded body', req: (h, a) => h().post('/orders').set('Authorization', a).type('form').send({ id: 'ORD-X13', total: '10' }), status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', messageIncludes: 'application/json' },
  { name: 'POST /orders: unsupported JSON charset', req: (h, a) => h().post('/orders').set('Authorization', a).set('Content-Type', 'application/json; charset=latin1').send(JSON.stringify({ id: 'ORD-X14', total: 10 })), status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', messageIncludes: 'charset' },
  { name: 'POST /orders: body larger than 64 KB', req: (h, a) => h().post('/orders').set('Authorization', a).set('Content-Type', 'application/json').send(JSON.stringify({ id: 'ORD-X15', total: 10, pad: BIG_PAD })), status: 413, code: 'PAYLOAD_TOO_LARGE', messageIncludes: 'too large' },
  { name: 'POST /orders: deeply nested JSON value (2500 levels, ~15 KB)', req: (h, a) => h().post('/orders').set('Authorization', a).set('Content-Type', 'application/json').send(`{"id":"ORD-X17","total":${'{"a":'.repeat(2500)}1${'}'.repeat(2500)}}`), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'nested more than 32 levels' },
  { name: 'POST /orders: no JWT', req: (h) => h().post('/orders').send({ id: 'ORD-X16', total: 10 }), status: 401, code: 'UNAUTHORIZED', messageIncludes: 'Authorization' },

  // ------------------------------------------------------------ GET /orders/:id
  { name: 'GET /orders/:id: unknown order', req: (h, a) => h().get('/orders/ORD-NOPE').set('Authorization', a), status: 404, code: 'NOT_FOUND', messageIncludes: 'Order not found' },
  { name: "GET /orders/:id: another shop's order", req: (h) => h().get('/orders/ORD-BAD').set('Authorization', otherShop()), status: 404, code: 'NOT_FOUND', messageIncludes: 'Order not found' },
  { name: 'GET /orders/:id: id of 65 characters', req: (h, a) => h().get(`/orders/${'O'.repeat(65)}`).set('Authorization', a), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'id must be 1-64 characters' },
  { name: 'GET /orders/:id: id with a space', req: (h, a) => h().get('/orders/ORD%20BAD').set('Authorization', a), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'id must be 1-64 characters' },
  { name: 'GET /orders/:id: malformed percent-encoding', req: (h, a) => h().get('/orders/%FF').set('Authorization', a), status: 400, messageIncludes: 'decode' },
  { name: 'GET /orders/:id: no JWT', req: (h) => h().get('/orders/ORD-BAD'), status: 401, code: 'UNAUTHORIZED', messageIncludes: 'Authorization' },

  // ------------------------------------------------------------ POST /payments/stk-push: body shape
  { name: 'stk-push: empty object', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send({}), status: 400, code: 'VALIDATION_FAILED', messageIncludes: ['phoneNumber', 'amount', 'orderId'] },
  { name: 'stk-push: missing phoneNumber', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(without('phoneNumber')), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'phoneNumber must be a string' },
  { name: 'stk-push: missing amount', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(without('amount')), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'amount must be a whole number' },
  { name: 'stk-push: missing orderId', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(without('orderId')), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'orderId must be a string' },
  { name: 'stk-push: extra (non-whitelisted) field', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ tip: 5 })), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'property tip should not exist' },
  { name: 'stk-push: JSON array body', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send([push()]), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'phoneNumber' },
  { name: 'stk-push: no body at all', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a), status: 400, code: 'VALIDATION_FAILED', messageIncludes: ['phoneNumber', 'amount', 'orderId'] },
  { name: 'stk-push: amount as a string', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ amount: '100' })), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'amount must be a whole number' },
  { name: 'stk-push: amount null', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ amount: null })), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'amount' },
  { name: 'stk-push: phoneNumber as a number', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ phoneNumber: 712345678 })), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'phoneNumber must be a string' },
  { name: 'stk-push: orderId as an array', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ orderId: ['ORD-BAD'] })), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'orderId must be a string' },
  { name: 'stk-push: orderId as an object', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ orderId: { id: 'ORD-BAD' } })), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'orderId must be a string' },

  // ------------------------------------------------------------ stk-push: amount
  { name: 'stk-push: fractional amount 100.5', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ amount: 100.5 })), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'whole number of shillings' },
  { name: 'stk-push: amount 0', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ amount: 0 })), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'amount must be at least 1 shilling' },
  { name: 'stk-push: negative amount', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ amount: -100 })), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'amount must be at least 1 shilling' },
  { name: 'stk-push: amount 250001 (above the M-Pesa limit)', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ amount: 250001 })), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'amount must be at most 250000' },
  { name: 'stk-push: amount 1e20', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ amount: 1e20 })), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'amount must be at most 250000' },
  { name: 'stk-push: amount above the order outstanding', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ amount: 101 })), status: 400, code: 'AMOUNT_EXCEEDS_OUTSTANDING', messageIncludes: ['101', '100 KES still owed', 'ORD-BAD'] },

  // ------------------------------------------------------------ stk-push: phone
  { name: 'stk-push: phone 0812345678 (not 07/01)', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ phoneNumber: '0812345678' })), status: 400, code: 'INVALID_PHONE_NUMBER', messageIncludes: 'Kenyan mobile number' },
  { name: 'stk-push: Tanzanian phone +255712345678', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ phoneNumber: '+255712345678' })), status: 400, code: 'INVALID_PHONE_NUMBER', messageIncludes: 'Kenyan mobile number' },
  { name: 'stk-push: phone with letters', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ phoneNumber: '07l2345678' })), status: 400, code: 'INVALID_PHONE_NUMBER', messageIncludes: 'Kenyan mobile number' },
  { name: 'stk-push: phone too short 07123', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ phoneNumber: '07123' })), status: 400, code: 'INVALID_PHONE_NUMBER', messageIncludes: 'Kenyan mobile number' },
  { name: 'stk-push: empty phone', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ phoneNumber: '' })), status: 400, code: 'INVALID_PHONE_NUMBER', messageIncludes: 'Kenyan mobile number' },
  { name: 'stk-push: phone of 40 characters', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ phoneNumber: '0'.repeat(40) })), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'phoneNumber is too long' },

  // ------------------------------------------------------------ stk-push: optional fields
  { name: 'stk-push: accountReference of 13 characters', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ accountReference: 'ABCDEFGHIJKLM' })), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'accountReference must be 1-12 letters or digits' },
  { name: 'stk-push: accountReference with special characters', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ accountReference: 'ORD-BAD#1' })), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'accountReference must be 1-12 letters or digits' },
  { name: 'stk-push: empty accountReference', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ accountReference: '' })), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'accountReference must be 1-12 letters or digits' },
  { name: 'stk-push: transactionDesc of 14 characters', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ transactionDesc: 'Payment for 14' })), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'transactionDesc must be 1-13 characters' },
  { name: 'stk-push: transactionDesc with markup', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ transactionDesc: 'Pay <b>now' })), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'transactionDesc may contain' },
  { name: 'stk-push: bad customerEmail', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ customerEmail: 'not-an-email' })), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'customerEmail must be an email address' },

  // ------------------------------------------------------------ stk-push: order
  { name: 'stk-push: orderId with spaces', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ orderId: 'ORD BAD' })), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'orderId must be 1-64 characters' },
  { name: 'stk-push: orderId of 65 characters', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ orderId: 'O'.repeat(65) })), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'orderId must be 1-64 characters' },
  { name: 'stk-push: unknown order', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ orderId: 'ORD-NOPE' })), status: 404, code: 'NOT_FOUND', messageIncludes: 'Order not found' },
  { name: "stk-push: another shop's order", req: (h) => h().post('/payments/stk-push').set('Authorization', otherShop()).send(push()), status: 404, code: 'NOT_FOUND', messageIncludes: 'Order not found' },
  { name: 'stk-push: order with a payment already in flight', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ orderId: 'ORD-PENDING', amount: 50 })), status: 409, code: 'PAYMENT_IN_PROGRESS', messageIncludes: 'already has a payment waiting' },
  { name: 'stk-push: order already fully paid', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).send(push({ orderId: 'ORD-PAID', amount: 10 })), status: 409, code: 'ORDER_ALREADY_PAID', messageIncludes: 'already fully paid' },

  // ------------------------------------------------------------ stk-push: Idempotency-Key
  { name: 'stk-push: Idempotency-Key of 300 characters', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).set('Idempotency-Key', 'k'.repeat(300)).send(push()), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'Idempotency-Key must be 1-255 visible ASCII characters' },
  { name: 'stk-push: non-ASCII Idempotency-Key', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).set('Idempotency-Key', 'clé-de-paiement').send(push()), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'Idempotency-Key must be 1-255 visible ASCII characters' },
  { name: 'stk-push: Idempotency-Key with a space', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).set('Idempotency-Key', 'my key').send(push()), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'Idempotency-Key must be 1-255 visible ASCII characters' },
  { name: 'stk-push: empty Idempotency-Key', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).set('Idempotency-Key', '').send(push()), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'Idempotency-Key must be 1-255 visible ASCII characters' },
  { name: 'stk-push: Idempotency-Key reused with a different body', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).set('Idempotency-Key', SETUP_IDEMPOTENCY_KEY).send(push({ amount: 10 })), status: 409, code: 'IDEMPOTENCY_KEY_REUSED', messageIncludes: 'different request body' },

  // ------------------------------------------------------------ stk-push: transport
  { name: 'stk-push: malformed JSON', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).set('Content-Type', 'application/json').send('{"phoneNumber": "0712345678", amount: 100}'), status: 400, code: 'INVALID_JSON', messageIncludes: 'not valid JSON' },
  { name: 'stk-push: JSON null body', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).set('Content-Type', 'application/json').send('null'), status: 400, code: 'INVALID_JSON', messageIncludes: 'not valid JSON' },
  { name: 'stk-push: text/plain body', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).set('Content-Type', 'text/plain').send(JSON.stringify(push())), status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', messageIncludes: 'application/json' },
  { name: 'stk-push: body larger than 64 KB', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).set('Content-Type', 'application/json').send(JSON.stringify(push({ transactionDesc: BIG_PAD }))), status: 413, code: 'PAYLOAD_TOO_LARGE', messageIncludes: 'too large' },
  { name: 'stk-push: deeply nested JSON value (5000 levels, ~10 KB)', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).set('Content-Type', 'application/json').send(`{"phoneNumber":"0700000007","amount":100,"orderId":${'['.repeat(5000)}${']'.repeat(5000)}}`), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'nested more than 32 levels' },
  { name: 'stk-push: unsupported Content-Encoding', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).set('Content-Type', 'application/json').set('Content-Encoding', 'compress').send(JSON.stringify(push())), status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', messageIncludes: 'encoding' },
  { name: 'stk-push: gzip Content-Encoding with a body that is not gzip', req: (h, a) => h().post('/payments/stk-push').set('Authorization', a).set('Content-Type', 'application/json').set('Content-Encoding', 'gzip').send(JSON.stringify(push())), status: 400 },

  // ------------------------------------------------------------ stk-push: authentication
  { name: 'stk-push: no JWT', req: (h) => h().post('/payments/stk-push').send(push()), status: 401, code: 'UNAUTHORIZED', messageIncludes: 'Missing Authorization' },
  { name: 'stk-push: Basic auth instead of Bearer', req: (h) => h().post('/payments/stk-push').set('Authorization', 'Basic dXNlcjpwYXNz').send(push()), status: 401, code: 'UNAUTHORIZED', messageIncludes: 'Missing Authorization' },
  { name: 'stk-push: malformed JWT', req: (h) => h().post('/payments/stk-push').set('Authorization', 'Bearer not.a.jwt').send(push()), status: 401, code: 'UNAUTHORIZED', messageIncludes: 'Invalid token' },
  { name: 'stk-push: expired JWT (beyond the 30 s tolerance)', req: (h) => h().post('/payments/stk-push').set('Authorization', bearer(jwt(claims({ iat: nowSeconds() - 3600, exp: nowSeconds() - 120 })))).send(push()), status: 401, code: 'TOKEN_EXPIRED', messageIncludes: 'expired' },
  { name: 'stk-push: JWT signed with the wrong secret', req: (h) => h().post('/payments/stk-push').set('Authorization', bearer(jwt(claims(), 'not-the-secret-0123456789abcdefghijklmno'))).send(push()), status: 401, code: 'UNAUTHORIZED', messageIncludes: 'Invalid token' },
  { name: 'stk-push: JWT with alg none', req: (h) => h().post('/payments/stk-push').set('Authorization', bearer(`${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims())}.`)).send(push()), status: 401, code: 'UNAUTHORIZED', messageIncludes: 'Invalid token' },
  { name: 'stk-push: JWT with alg HS512 (only HS256 accepted)', req: (h) => h().post('/payments/stk-push').set('Authorization', bearer(jwt(claims(), TEST_JWT_SECRET, 'HS512'))).send(push()), status: 401, code: 'UNAUTHORIZED', messageIncludes: 'Invalid token' },
  { name: 'stk-push: JWT missing the shopId claim', req: (h) => h().post('/payments/stk-push').set('Authorization', bearer(jwt(claims({ shopId: undefined })))).send(push()), status: 401, code: 'UNAUTHORIZED', messageIncludes: 'shopId' },
  { name: 'stk-push: JWT with a malformed shopId', req: (h) => h().post('/payments/stk-push').set('Authorization', bearer(jwt(claims({ shopId: 'shop 1; drop' })))).send(push()), status: 401, code: 'UNAUTHORIZED', messageIncludes: 'shopId' },
  { name: 'stk-push: JWT missing the sub claim', req: (h) => h().post('/payments/stk-push').set('Authorization', bearer(jwt(claims({ sub: undefined })))).send(push()), status: 401, code: 'UNAUTHORIZED', messageIncludes: 'sub' },
  { name: "stk-push: JWT with role 'owner'", req: (h) => h().post('/payments/stk-push').set('Authorization', bearer(jwt(claims({ role: 'owner' })))).send(push()), status: 401, code: 'UNAUTHORIZED', messageIncludes: 'role' },

  // ------------------------------------------------------------ GET /payments/stk-status
  { name: 'stk-status: no checkoutRequestId', req: (h, a) => h().get('/payments/stk-status').set('Authorization', a), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'checkoutRequestId must be the CheckoutRequestID' },
  { name: 'stk-status: empty checkoutRequestId', req: (h, a) => h().get('/payments/stk-status').query({ checkoutRequestId: '' }).set('Authorization', a), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'checkoutRequestId must be the CheckoutRequestID' },
  { name: 'stk-status: checkoutRequestId with illegal characters', req: (h, a) => h().get('/payments/stk-status').query({ checkoutRequestId: "ws_CO_1' or 1=1" }).set('Authorization', a), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'checkoutRequestId must be the CheckoutRequestID' },
  { name: 'stk-status: checkoutRequestId given twice', req: (h, a) => h().get('/payments/stk-status?checkoutRequestId=ws_CO_1&checkoutRequestId=ws_CO_2').set('Authorization', a), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'checkoutRequestId' },
  { name: 'stk-status: unknown query parameter', req: (h, a) => h().get('/payments/stk-status').query({ checkoutRequestId: 'ws_CO_DOESNOTEXIST', verbose: '1' }).set('Authorization', a), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'property verbose should not exist' },
  { name: 'stk-status: unknown checkoutRequestId', req: (h, a) => h().get('/payments/stk-status').query({ checkoutRequestId: 'ws_CO_DOESNOTEXIST' }).set('Authorization', a), status: 404, code: 'NOT_FOUND', messageIncludes: 'Payment not found' },
  { name: 'stk-status: known checkoutRequestId, wrong merchantRequestId', req: (h, a) => h().get('/payments/stk-status').query({ checkoutRequestId: pending.checkoutRequestId, merchantRequestId: 'wrong-merchant-1' }).set('Authorization', a), status: 404, code: 'NOT_FOUND', messageIncludes: 'Payment not found' },
  { name: "stk-status: another shop's checkoutRequestId", req: (h) => h().get('/payments/stk-status').query({ checkoutRequestId: pending.checkoutRequestId }).set('Authorization', otherShop()), status: 404, code: 'NOT_FOUND', messageIncludes: 'Payment not found' },
  { name: 'stk-status: no JWT', req: (h) => h().get('/payments/stk-status').query({ checkoutRequestId: pending.checkoutRequestId }), status: 401, code: 'UNAUTHORIZED', messageIncludes: 'Authorization' },

  // ------------------------------------------------------------ GET /payments/:id
  { name: 'GET /payments/:id: not a UUID', req: (h, a) => h().get('/payments/not-a-uuid').set('Authorization', a), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'id must be a payment id (UUID)' },
  { name: 'GET /payments/:id: unknown UUID', req: (h, a) => h().get(`/payments/${UNKNOWN_UUID}`).set('Authorization', a), status: 404, code: 'NOT_FOUND', messageIncludes: 'Payment not found' },
  { name: "GET /payments/:id: another shop's payment", req: (h) => h().get(`/payments/${pending.paymentId}`).set('Authorization', otherShop()), status: 404, code: 'NOT_FOUND', messageIncludes: 'Payment not found' },
  { name: 'GET /payments/:id: no JWT', req: (h) => h().get(`/payments/${pending.paymentId}`), status: 401, code: 'UNAUTHORIZED', messageIncludes: 'Authorization' },

  // ------------------------------------------------------------ POST /payments/callback (bare URL)
  { name: 'callback: body []', req: (h) => h().post('/payments/callback').send([]), status: 400, code: 'INVALID_CALLBACK', messageIncludes: 'body must be a JSON object', callback: true },
  { name: 'callback: body {}', req: (h) => h().post('/payments/callback').send({}), status: 400, code: 'INVALID_CALLBACK', messageIncludes: 'Body must be an object', callback: true },
  { name: 'callback: no body at all', req: (h) => h().post('/payments/callback'), status: 400, code: 'INVALID_CALLBACK', messageIncludes: 'body must be a JSON object', callback: true },
  { name: 'callback: stkCallback not an object', req: (h) => h().post('/payments/callback').send({ Body: { stkCallback: 'ok' } }), status: 400, code: 'INVALID_CALLBACK', messageIncludes: 'Body.stkCallback must be an object', callback: true },
  { name: 'callback: ResultCode as an object', req: (h) => h().post('/payments/callback').send(stk({ ResultCode: { code: 0 } })), status: 400, code: 'INVALID_CALLBACK', messageIncludes: 'ResultCode must be a number', callback: true },
  { name: 'callback: fractional ResultCode', req: (h) => h().post('/payments/callback').send(stk({ ResultCode: 1.5 })), status: 400, code: 'INVALID_CALLBACK', messageIncludes: 'ResultCode must be an integer', callback: true },
  { name: 'callback: ResultCode missing', req: (h) => h().post('/payments/callback').send(stk({ ResultCode: undefined })), status: 400, code: 'INVALID_CALLBACK', messageIncludes: 'ResultCode is missing', callback: true },
  { name: 'callback: missing CheckoutRequestID', req: (h) => h().post('/payments/callback').send(stk({ CheckoutRequestID: undefined })), status: 400, code: 'INVALID_CALLBACK', messageIncludes: 'CheckoutRequestID must be a string', callback: true },
  { name: 'callback: ResultDesc as a number', req: (h) => h().post('/payments/callback').send(stk({ ResultDesc: 1032 })), status: 400, code: 'INVALID_CALLBACK', messageIncludes: 'ResultDesc must be a string', callback: true },
  { name: 'callback: CallbackMetadata.Item not an array', req: (h) => h().post('/payments/callback').send(stk({ ResultCode: 0, ResultDesc: 'ok', CallbackMetadata: { Item: { Name: 'Amount', Value: 1 } } })), status: 400, code: 'INVALID_CALLBACK', messageIncludes: 'Item must be an array', callback: true },
  { name: 'callback: negative Amount in metadata', req: (h) => h().post('/payments/callback').send(stk({ ResultCode: 0, ResultDesc: 'ok', CallbackMetadata: { Item: [{ Name: 'Amount', Value: -50 }] } })), status: 400, code: 'INVALID_CALLBACK', messageIncludes: 'Amount must be a non-negative number', callback: true },
  { name: 'callback: 51 metadata items', req: (h) => h().post('/payments/callback').send(stk({ ResultCode: 0, ResultDesc: 'ok', CallbackMetadata: { Item: Array.from({ length: 51 }, (_, i) => ({ Name: `X${i}`, Value: i })) } })), status: 400, code: 'INVALID_CALLBACK', messageIncludes: 'more than 50 entries', callback: true },
  { name: 'callback: malformed TransactionDate', req: (h) => h().post('/payments/callback').send(stk({ ResultCode: 0, ResultDesc: 'ok', CallbackMetadata: { Item: [{ Name: 'TransactionDate', Value: '2024-01-01' }] } })), status: 400, code: 'INVALID_CALLBACK', messageIncludes: 'TransactionDate must be a 14-digit', callback: true },
  { name: 'callback: CheckoutRequestID containing a NUL character', req: (h) => h().post('/payments/callback').send(stk({ CheckoutRequestID: 'ws_CO_\u0000evil' })), status: 400, code: 'INVALID_CALLBACK', messageIncludes: 'CheckoutRequestID', callback: true },
  { name: 'callback: malformed JSON', req: (h) => h().post('/payments/callback').set('Content-Type', 'application/json').send('{"Body": {"stkCallback": '), status: 400, code: 'INVALID_JSON', messageIncludes: 'not valid JSON', callback: true },
  { name: 'callback: text/plain body', req: (h) => h().post('/payments/callback').set('Content-Type', 'text/plain').send(JSON.stringify(stk({}))), status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', messageIncludes: 'application/json', callback: true },
  { name: 'callback: body larger than 64 KB', req: (h) => h().post('/payments/callback').set('Content-Type', 'application/json').send(JSON.stringify(stk({ ResultDesc: BIG_PAD }))), status: 413, code: 'PAYLOAD_TOO_LARGE', messageIncludes: 'too large', callback: true },
  { name: 'callback: deeply nested JSON (20000 levels)', req: (h) => h().post('/payments/callback').set('Content-Type', 'application/json').send(`{"Body":{"stkCallback":${'['.repeat(20000)}${']'.repeat(20000)}}}`), status: 400, code: 'VALIDATION_FAILED', messageIncludes: 'nested more than 32 levels', callback: true },

  // ------------------------------------------------------------ POST /payments/callback/:paymentId/:token
  { name: 'callback URL (valid token, pending payment): Item not an array', req: (h) => h().post(callbackUrl()).send(stk({ MerchantRequestID: pending.merchantRequestId, CheckoutRequestID: pending.checkoutRequestId, ResultCode: 0, ResultDesc: 'ok', CallbackMetadata: { Item: 'Amount=50' } })), status: 400, code: 'INVALID_CALLBACK', messageIncludes: 'Item must be an array', callback: true },
  { name: 'callback URL (valid token, pending payment): ResultCode as an object', req: (h) => h().post(callbackUrl()).send(stk({ MerchantRequestID: pending.merchantRequestId, CheckoutRequestID: pending.checkoutRequestId, ResultCode: { value: 1032 } })), status: 400, code: 'INVALID_CALLBACK', messageIncludes: 'ResultCode must be a number', callback: true },
  { name: 'callback URL (valid token, pending payment): duplicate Amount items', req: (h) => h().post(callbackUrl()).send(stk({ MerchantRequestID: pending.merchantRequestId, CheckoutRequestID: pending.checkoutRequestId, ResultCode: 0, ResultDesc: 'ok', CallbackMetadata: { Item: [{ Name: 'Amount', Value: 50 }, { Name: 'Amount', Value: 1 }] } })), status: 400, code: 'INVALID_CALLBACK', messageIncludes: 'more than once', callback: true },
  { name: 'callback URL (valid token, pending payment): body []', req: (h) => h().post(callbackUrl()).send([]), status: 400, code: 'INVALID_CALLBACK', messageIncludes: 'body must be a JSON object', callback: true },
  { name: 'callback URL (valid token, pending payment): no body at all', req: (h) => h().post(callbackUrl()), status: 400, code: 'INVALID_CALLBACK', messageIncludes: 'body must be a JSON object', callback: true },
  { name: 'callback URL (wrong token): body {}', req: (h) => h().post(`/payments/callback/${pending.paymentId}/${'a'.repeat(64)}`).send({}), status: 400, code: 'INVALID_CALLBACK', messageIncludes: 'Body must be an object', callback: true },
  { name: 'callback URL: paymentId containing a NUL character', req: (h) => h().post('/payments/callback/abc%00def/some-token').send({}), status: 400, callback: true },
  { name: 'callback URL: malformed JSON', req: (h) => h().post(callbackUrl()).set('Content-Type', 'application/json').send('{"Body": ['), status: 400, code: 'INVALID_JSON', messageIncludes: 'not valid JSON', callback: true },
];

// ---------------------------------------------------------------------------- the test

const ERROR_KEYS = new Set(['statusCode', 'code', 'message', 'details', 'requestId']);

describe('bad requests: 4xx with the stable error shape, and no database change', () => {
  let auth: string;

  beforeAll(async () => {
    t = await startTestApp();
    auth = bearer(t.token());
    const http = t.http;

    for (const [id, total] of [['ORD-BAD', 100], ['ORD-PENDING', 50], ['ORD-PAID', 10]] as const) {
      const r = await http().post('/orders').set('Authorization', auth).send({ id, total });
      expect(r.status).toBe(201);
    }

    // ORD-PENDING: a payment the simulated customer never answers (stays pending), pushed with an Idempotency-Key.
    const p = await http().post('/payments/stk-push').set('Authorization', auth).set('Idempotency-Key', SETUP_IDEMPOTENCY_KEY).send({ phoneNumber: NEVER_ANSWERS_PHONE, amount: 50, orderId: 'ORD-PENDING' });
    expect(p.status).toBe(201);
    expect(p.body.status).toBe('pending');
    pending.paymentId = p.body.paymentId;
    pending.checkoutRequestId = p.body.checkoutRequestId;
    pending.merchantRequestId = p.body.merchantRequestId;
    const simPush = t.sim.getPush(pending.checkoutRequestId);
    expect(simPush).toBeDefined();
    pending.token = simPush!.callbackUrl.split('/').pop()!;
    expect(pending.token).toMatch(/^[0-9a-f]{64}$/);

    // ORD-PAID: paid in full by a completed payment.
    const paid = await http().post('/payments/stk-push').set('Authorization', auth).send({ phoneNumber: SUCCESS_PHONE, amount: 10, orderId: 'ORD-PAID' });
    expect(paid.status).toBe(201);
    await t.sim.waitForCallbacks(paid.body.checkoutRequestId, 1, 5000);
    await waitFor(async () => {
      const r = await http().get('/orders/ORD-PAID').set('Authorization', auth);
      return r.body.status === 'paid' && r.body.paidAt !== null;
    });
  });

  afterAll(async () => {
    await t?.close();
  });

  it('has a meaningful table', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  });

  test.each(cases)('$name → $status', async (c) => {
    const before = await tableCounts(t.db);
    const res = await c.req(t.http, auth);
    // Give anything the request may have started in the background a moment to land.
    await new Promise((r) => setTimeout(r, 30));
    const after = await tableCounts(t.db);

    // Status: the exact 4xx, never a 5xx.
    expect(`${res.status} ${JSON.stringify(res.body)}`).toMatch(new RegExp(`^${c.status} `));
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);

    // Shape: {statusCode, code, message, details?, requestId} as JSON.
    expect(res.headers['content-type']).toMatch(/^application\/json/);
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
    expect(message).not.toMatch(/undefined|\[object Object\]|Cannot read|TypeError|stack|Internal server error|Something went wrong/i);
    for (const fragment of c.messageIncludes === undefined ? [] : ([] as string[]).concat(c.messageIncludes)) {
      expect(message.toLowerCase()).toContain(fragment.toLowerCase());
    }

    // Nothing changed (callbacks: the audit inbox may hold one more row, nothing else may change).
    if (c.callback) {
      const { callback_inbox: inboxBefore, ...restBefore } = before;
      const { callback_inbox: inboxAfter, ...restAfter } = after;
      expect(restAfter).toEqual(restBefore);
      expect(inboxAfter - inboxBefore).toBeGreaterThanOrEqual(0);
      expect(inboxAfter - inboxBefore).toBeLessThanOrEqual(1);
    } else {
      expect(after).toEqual(before);
    }
  });

  it('left the fixtures as they were', async () => {
    const pend = await t.http().get('/orders/ORD-PENDING').set('Authorization', auth);
    expect(pend.body).toMatchObject({ id: 'ORD-PENDING', total: 50, paid: 0, outstanding: 50, status: 'unpaid', paidAt: null });
    const bad = await t.http().get('/orders/ORD-BAD').set('Authorization', auth);
    expect(bad.body).toMatchObject({ id: 'ORD-BAD', total: 100, paid: 0, outstanding: 100, status: 'unpaid', paidAt: null });
    const paid = await t.http().get('/orders/ORD-PAID').set('Authorization', auth);
    expect(paid.body).toMatchObject({ id: 'ORD-PAID', total: 10, paid: 10, outstanding: 0, status: 'paid' });
  });
});
