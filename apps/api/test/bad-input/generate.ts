/**
 * The generated bad-input corpus: every field of every request body is broken in every systematic
 * way (missing, null, wrong type, empty, huge/odd numbers, unicode, control characters, very long,
 * SQL- and path-like text, arrays/objects for scalars), plus duplicated JSON keys, malformed JSON,
 * wrong content types, bad query and path parameters, bad JWTs on every authenticated endpoint, and
 * STK callbacks of every wrong shape and type. Each case states the exact status (and error code) the
 * API must answer; harness.ts checks the rest of the contract (error shape, message, no change).
 *
 * Expectations are written from the API's documented rules (DTO messages, phone formats, the callback
 * parser's contract), never computed by calling the code under test.
 */
import type { Test } from 'supertest';
import {
  b64url,
  bearer,
  Case,
  claims,
  hs256,
  Http,
  jwt,
  manager,
  nowSeconds,
  pending,
  push,
  stk,
  tokenFor,
  UNKNOWN_UUID,
} from './harness';
import { TEST_JWT_SECRET } from '../helpers/test-app';

// ---------------------------------------------------------------------------- values

/** A JSON value written as JSON text, so literals JS cannot hold (2^63, -0, 1e999) reach the server as sent. */
interface Val {
  label: string;
  json: string;
}
const v = (label: string, value: unknown): Val => ({ label, json: JSON.stringify(value) });
const raw = (label: string, json: string): Val => ({ label, json });

/** Wrong JSON types for a field that must be a string. */
const NOT_A_STRING: Val[] = [
  v('null', null),
  v('true', true),
  v('false', false),
  v('the number 0', 0),
  v('a number', 712345678),
  v('a float', 1.5),
  v('an empty array', []),
  v('an array of strings', ['x']),
  v('an empty object', {}),
  v('an operator object {"$gt":""}', { $gt: '' }),
];

/** Wrong JSON types for a numeric field. */
const NOT_A_NUMBER: Val[] = [
  v('null', null),
  v('true', true),
  v('a numeric string', '100'),
  v('an empty string', ''),
  v('a blank string', ' '),
  v('the string NaN', 'NaN'),
  v('the string Infinity', 'Infinity'),
  v('the string -0', '-0'),
  v('the string 1e308', '1e308'),
  v('a hex string', '0x64'),
  v('an empty array', []),
  v('an array holding a number', [100]),
  v('an empty object', {}),
  v('an operator object {"$gt":0}', { $gt: 0 }),
];

/** Numbers no amount may be (each is out of range, fractional, or not finite once parsed). */
const BAD_NUMBERS: Val[] = [
  raw('1e308', '1e308'),
  raw('-1e308', '-1e308'),
  raw('2^63', '9223372036854775808'),
  raw('2^64', '18446744073709551616'),
  raw('-(2^63)-1', '-9223372036854775809'),
  raw('1e999 (Infinity once parsed)', '1e999'),
  raw('-1e999 (-Infinity once parsed)', '-1e999'),
  raw('-0', '-0'),
  raw('0', '0'),
  raw('-1', '-1'),
  raw('5e-324 (smallest double)', '5e-324'),
  raw('1e-7', '1e-7'),
  raw('0.001', '0.001'),
  raw('0.1+0.2 (0.30000000000000004)', '0.30000000000000004'),
];

/** Strings that break an id-like field (letters, digits, '.', '_' or '-' only, 1-64 characters). */
const BAD_ID_TEXT: Val[] = [
  v('empty', ''),
  v('a space', ' '),
  v('whitespace only', ' \t '),
  v('a NUL character', '\u0000'),
  v('an embedded NUL', 'ORD\u0000BAD'),
  v('an RTL override', 'ORD-\u202eDAB'),
  v('a zero-width space', 'ORD\u200bBAD'),
  v('a right-to-left mark', 'ORD-\u200fX'),
  v('an emoji', 'ORD-💳'),
  v('fullwidth letters', 'ＯＲＤ-１'),
  v('an accented letter', 'ORD-é'),
  v('Arabic text', 'طلب-١'),
  v('a lone surrogate', 'ORD-\ud800'),
  v('10,000 characters', 'O'.repeat(10_000)),
  v('65 characters', 'O'.repeat(65)),
  v("SQL: ' OR '1'='1", "' OR '1'='1"),
  v('SQL: 1; DROP TABLE payments;--', '1; DROP TABLE payments;--'),
  v('a path: ../../etc/passwd', '../../etc/passwd'),
  v('a Windows path', '..\\..\\windows\\win.ini'),
  v('percent-encoded text', '%2e%2e%2f'),
  v('markup', '<script>alert(1)</script>'),
  v('a JNDI lookup', '${jndi:ldap://x/a}'),
  v('a template expression', '{{7*7}}'),
  v('a trailing newline', 'ORD-BAD\n'),
  v('a CRLF header injection', 'ORD\r\nX-Injected: 1'),
];

/** Inputs that are not a Kenyan mobile number in any accepted format (none is valid after removing spaces, dashes, parentheses). */
const BAD_PHONES: Val[] = [
  v('empty', ''),
  v('a NUL character', '\u0000'),
  v('a zero-width space inside', '0712\u200b345678'),
  v('a right-to-left mark first', '\u200f0712345678'),
  v('an RTL override inside', '0712\u202e345678'),
  v('fullwidth digits', '０７１２３４５６７８'),
  v('Arabic-Indic digits', '٠٧١٢٣٤٥٦٧٨'),
  v('an emoji', '07123456📱'),
  v('11 digits', '07123456789'),
  v('8 digits', '07123456'),
  v('+254 then 8 (not 7/1)', '+254812345678'),
  v('254 then 0', '254012345678'),
  v('a US number', '+1 202 555 0100'),
  v('a Ugandan number', '+256712345678'),
  v('+ inside', '0712+345678'),
  v('an extension', '0712345678 ext 9'),
  v('a decimal point', '0712345678.0'),
  v('exponent notation', '7.12345678e8'),
  v('SQL', "0712345678' OR '1'='1"),
  v('a path', '../../0712345678'),
  v('letters', 'zero seven one two'),
  v('33 characters', '0'.repeat(33)),
  v('10,000 characters', '7'.repeat(10_000)),
];

const BAD_EMAILS: Val[] = [
  v('empty', ''),
  v('no @', 'ops.duka.co.ke'),
  v('no domain', 'ops@'),
  v('no local part', '@duka.co.ke'),
  v('two @', 'ops@@duka.co.ke'),
  v('a space', 'ops @duka.co.ke'),
  v('a NUL character', 'ops\u0000@duka.co.ke'),
  v('markup', '<script>@duka.co.ke'),
  v('SQL after the domain', "ops@duka.co.ke' OR '1'='1"),
  v('300 characters', `${'o'.repeat(290)}@duka.co.ke`),
];

/**
 * accountReference: what cannot be made to fit M-Pesa's 1-12 letters/digits (issue 8.11: anything else
 * is fitted, not refused: no letter or digit left, or more than 100 characters). The values this list
 * used to hold that now fit (13 characters, a space, a dash, an emoji, an accented letter, fullwidth
 * digits, a NUL, SQL) are sent fitted: test/daraja-behaviour.e2e.ts checks what Daraja receives.
 */
const NO_LETTER_OR_DIGIT = 'accountReference must contain at least one letter or digit';
const BAD_ACCOUNT_REFERENCES: [Val, string][] = [
  [v('empty', ''), NO_LETTER_OR_DIGIT],
  [v('only spaces', '   '), NO_LETTER_OR_DIGIT],
  [v('only punctuation', '--#--'), NO_LETTER_OR_DIGIT],
  [v('only SQL punctuation', "'--;"), NO_LETTER_OR_DIGIT],
  [v('only an emoji', '💳'), NO_LETTER_OR_DIGIT],
  [v('only a NUL character', '\u0000'), NO_LETTER_OR_DIGIT],
  [v('only a zero-width space', '\u200b'), NO_LETTER_OR_DIGIT],
  [v('only non-Latin letters', 'مرحبا'), NO_LETTER_OR_DIGIT],
  [v('101 characters', 'A'.repeat(101)), 'accountReference must be at most 100 characters'],
  [v('10,000 characters', 'A'.repeat(10_000)), 'accountReference must be at most 100 characters'],
];

/**
 * transactionDesc: what cannot be made to fit (nothing left of letters, digits, spaces and . , _ -, or
 * more than 100 characters). Longer, accented, multi-line or marked-up text is fitted (daraja-behaviour.e2e.ts).
 */
const NOTHING_LEFT = 'transactionDesc must contain at least one letter, digit or . , _ -';
const BAD_TRANSACTION_DESCS: [Val, string][] = [
  [v('empty', ''), NOTHING_LEFT],
  [v('only spaces', '   '), NOTHING_LEFT],
  [v('only a newline', '\n'), NOTHING_LEFT],
  [v('only an emoji', '💳'), NOTHING_LEFT],
  [v('only a NUL character', '\u0000'), NOTHING_LEFT],
  [v('only an RTL override', '\u202e'), NOTHING_LEFT],
  [v('only markup brackets', '<>'), NOTHING_LEFT],
  [v('101 characters', 'D'.repeat(101)), 'transactionDesc must be at most 100 characters'],
  [v('10,000 characters', 'D'.repeat(10_000)), 'transactionDesc must be at most 100 characters'],
];

const BAD_CURRENCIES: Val[] = [
  v('empty', ''),
  v('lower case', 'kes'),
  v('a trailing space', 'KES '),
  v('KSH', 'KSH'),
  v('USD', 'USD'),
  v('a NUL inside', 'K\u0000ES'),
  v('fullwidth letters', 'ＫＥＳ'),
  v('a zero-width space', 'KES\u200b'),
  v('an array', ['KES']),
  v('a number', 404),
  v('true', true),
];

// ---------------------------------------------------------------------------- bodies

const j = (value: unknown) => JSON.stringify(value);

/** `base` as JSON text with `field` replaced by `val` (or removed). Key order is kept. */
function bodyWith(base: Record<string, unknown>, field: string, val: Val | 'missing'): string {
  const entries = Object.entries(base).filter(([k]) => !(k === field && val === 'missing'));
  if (!Object.prototype.hasOwnProperty.call(base, field) && val !== 'missing') entries.push([field, undefined]);
  return `{${entries.map(([k, x]) => `${j(k)}:${k === field ? (val as Val).json : j(x)}`).join(',')}}`;
}

const postJson =
  (path: string, auth: (a: string) => string | undefined, body: string) =>
  (h: Http, a: string): Test => {
    const req = h().post(path).set('Content-Type', 'application/json');
    const value = auth(a);
    if (value !== undefined) req.set('Authorization', value);
    return req.send(body);
  };
const asCaller = (a: string) => a;
const noAuth = () => undefined;

const ORDER_BASE = { id: 'ORD-GEN-1', total: 10 };
const ORDER_ID_RE = /^[A-Za-z0-9._-]{1,64}$/;

// ---------------------------------------------------------------------------- POST /orders

function ordersCases(): Case[] {
  const cases: Case[] = [];
  const add = (what: string, body: string, status: number, code: string, messageIncludes: string) =>
    cases.push({
      name: `POST /orders: ${what}`,
      req: postJson('/orders', asCaller, body),
      status,
      code,
      messageIncludes,
    });

  add('id missing', bodyWith(ORDER_BASE, 'id', 'missing'), 400, 'VALIDATION_FAILED', 'id must be');
  add('total missing', bodyWith(ORDER_BASE, 'total', 'missing'), 400, 'VALIDATION_FAILED', 'total must be');
  for (const val of NOT_A_STRING)
    add(`id is ${val.label}`, bodyWith(ORDER_BASE, 'id', val), 400, 'VALIDATION_FAILED', 'id must be');
  for (const val of BAD_ID_TEXT)
    add(`id is ${val.label}`, bodyWith(ORDER_BASE, 'id', val), 400, 'VALIDATION_FAILED', 'id must be 1-64 characters');
  for (const val of NOT_A_NUMBER)
    add(`total is ${val.label}`, bodyWith(ORDER_BASE, 'total', val), 400, 'VALIDATION_FAILED', 'total must be');
  for (const val of BAD_NUMBERS)
    add(`total is ${val.label}`, bodyWith(ORDER_BASE, 'total', val), 400, 'VALIDATION_FAILED', 'total must be');
  add(
    'total is 100000000.01 (above the maximum)',
    bodyWith(ORDER_BASE, 'total', raw('', '100000000.01')),
    400,
    'VALIDATION_FAILED',
    'total must be at most',
  );
  add(
    'total has 3 decimals (99.999)',
    bodyWith(ORDER_BASE, 'total', raw('', '99.999')),
    400,
    'VALIDATION_FAILED',
    'at most 2 decimal places',
  );
  for (const val of BAD_CURRENCIES)
    add(
      `currency is ${val.label}`,
      bodyWith(ORDER_BASE, 'currency', val),
      400,
      'VALIDATION_FAILED',
      'currency must be one of KES',
    );
  for (const [field, val] of [
    ['__proto__', { admin: true }],
    ['constructor', { prototype: { admin: true } }],
    ['paid', 10],
    ['shopId', 'shop-2'],
    ['status', 'paid'],
  ] as const) {
    add(
      `extra field ${field}`,
      bodyWith(ORDER_BASE, field, v('', val)),
      400,
      'VALIDATION_FAILED',
      `property ${field} should not exist`,
    );
  }
  return cases;
}

// ---------------------------------------------------------------------------- POST /payments/stk-push

function stkPushCases(): Case[] {
  const cases: Case[] = [];
  const base = push();
  const add = (what: string, body: string, status: number, code: string, messageIncludes: string | string[]) =>
    cases.push({
      name: `stk-push: ${what}`,
      req: postJson('/payments/stk-push', asCaller, body),
      status,
      code,
      messageIncludes,
    });

  for (const field of ['phoneNumber', 'amount', 'orderId'])
    add(`${field} missing`, bodyWith(base, field, 'missing'), 400, 'VALIDATION_FAILED', `${field} must be`);

  for (const val of NOT_A_STRING)
    add(
      `phoneNumber is ${val.label}`,
      bodyWith(base, 'phoneNumber', val),
      400,
      'VALIDATION_FAILED',
      'phoneNumber must be a string',
    );
  for (const val of BAD_PHONES) {
    const tooLong = (JSON.parse(val.json) as string).length > 32;
    add(
      `phoneNumber is ${val.label}`,
      bodyWith(base, 'phoneNumber', val),
      400,
      tooLong ? 'VALIDATION_FAILED' : 'INVALID_PHONE_NUMBER',
      tooLong ? 'phoneNumber is too long' : 'Kenyan mobile number',
    );
  }

  for (const val of NOT_A_NUMBER)
    add(`amount is ${val.label}`, bodyWith(base, 'amount', val), 400, 'VALIDATION_FAILED', 'amount must be');
  for (const val of BAD_NUMBERS)
    add(`amount is ${val.label}`, bodyWith(base, 'amount', val), 400, 'VALIDATION_FAILED', 'amount must be');
  add(
    'amount is a float (99.5)',
    bodyWith(base, 'amount', raw('', '99.5')),
    400,
    'VALIDATION_FAILED',
    'whole number of shillings',
  );
  add(
    'amount is 250001 shillings',
    bodyWith(base, 'amount', raw('', '250001')),
    400,
    'VALIDATION_FAILED',
    'at most 250000',
  );

  for (const val of NOT_A_STRING)
    add(
      `orderId is ${val.label}`,
      bodyWith(base, 'orderId', val),
      400,
      'VALIDATION_FAILED',
      'orderId must be a string',
    );
  for (const val of BAD_ID_TEXT)
    add(
      `orderId is ${val.label}`,
      bodyWith(base, 'orderId', val),
      400,
      'VALIDATION_FAILED',
      'orderId must be 1-64 characters',
    );
  // Well-formed ids of orders that do not exist (a phone number typed into the order field included).
  for (const id of ['null', 'undefined', '__proto__', '..', '0712345678', 'ORD-bad']) {
    if (!ORDER_ID_RE.test(id)) throw new Error(`generator: ${id} is not a well-formed order id`);
    add(
      `orderId "${id}" (well-formed, no such order)`,
      bodyWith(base, 'orderId', v('', id)),
      404,
      'NOT_FOUND',
      'Order not found',
    );
  }

  // Optional fields: null means "not given" (class-validator @IsOptional), so it is not a bad value.
  const optional: [string, [Val, string][]][] = [
    ['accountReference', BAD_ACCOUNT_REFERENCES],
    ['transactionDesc', BAD_TRANSACTION_DESCS],
    ['customerEmail', BAD_EMAILS.map((val): [Val, string] => [val, 'customerEmail must be'])],
  ];
  for (const [field, texts] of optional) {
    for (const val of NOT_A_STRING.filter((x) => x.label !== 'null'))
      add(`${field} is ${val.label}`, bodyWith(base, field, val), 400, 'VALIDATION_FAILED', field);
    for (const [val, message] of texts)
      add(`${field} is ${val.label}`, bodyWith(base, field, val), 400, 'VALIDATION_FAILED', message);
  }

  for (const [field, val] of [
    ['__proto__', { isAdmin: true }],
    ['constructor', { prototype: {} }],
    ['shopId', 'shop-2'],
    ['status', 'completed'],
    ['callbackUrl', 'http://evil.example/cb'],
    ['paymentId', UNKNOWN_UUID],
  ] as const) {
    add(
      `extra field ${field}`,
      bodyWith(base, field, v('', val)),
      400,
      'VALIDATION_FAILED',
      `property ${field} should not exist`,
    );
  }
  return cases;
}

// ---------------------------------------------------------------------------- transport (every JSON endpoint)

interface JsonEndpoint {
  name: string;
  path: () => string;
  auth: (a: string) => string | undefined;
  /** a valid body: the raw-body cases below break it */
  valid: () => Record<string, unknown>;
  callback?: boolean;
}

const JSON_ENDPOINTS: JsonEndpoint[] = [
  { name: 'POST /orders', path: () => '/orders', auth: asCaller, valid: () => ({ id: 'ORD-GEN-2', total: 10 }) },
  { name: 'stk-push', path: () => '/payments/stk-push', auth: asCaller, valid: () => push() },
  { name: 'callback', path: () => '/payments/callback', auth: noAuth, valid: () => stk({}), callback: true },
  {
    name: 'callback URL (valid token)',
    path: () => `/payments/callback/${pending.paymentId}/${pending.token}`,
    auth: noAuth,
    valid: () => stk({ MerchantRequestID: pending.merchantRequestId, CheckoutRequestID: pending.checkoutRequestId }),
    callback: true,
  },
  {
    name: 'release',
    path: () => `/payments/${pending.paymentId}/release`,
    auth: () => manager(),
    valid: () => ({ reason: 'customer shows no SMS' }),
  },
  {
    name: 'stream ticket',
    path: () => '/payments/events/ticket',
    auth: asCaller,
    valid: () => ({ paymentId: pending.paymentId }),
  },
];

function transportCases(): Case[] {
  const cases: Case[] = [];
  for (const ep of JSON_ENDPOINTS) {
    const add = (
      what: string,
      make: (h: Http, a: string) => Test,
      status: number,
      code?: string,
      messageIncludes?: string,
    ) => cases.push({ name: `${ep.name}: ${what}`, req: make, status, code, messageIncludes, callback: ep.callback });
    const send =
      (contentType: string | undefined, body: string | Buffer, headers: Record<string, string> = {}) =>
      (h: Http, a: string): Test => {
        const req = h().post(ep.path());
        const auth = ep.auth(a);
        if (auth !== undefined) req.set('Authorization', auth);
        if (contentType !== undefined) req.set('Content-Type', contentType);
        for (const [k, val] of Object.entries(headers)) req.set(k, val);
        return req.send(body);
      };
    const validJson = () => JSON.stringify(ep.valid());

    // Malformed JSON.
    const malformed: [string, string][] = [
      ['truncated JSON', '{"a": '],
      ['a trailing comma', '{"a": 1,}'],
      ['single quotes', "{'a': 1}"],
      ['unquoted keys', '{a: 1}'],
      ['a NaN literal', '{"a": NaN}'],
      ['an Infinity literal', '{"a": Infinity}'],
      ['a comment', '{"a": 1 /* c */}'],
      ['two objects', '{"a":1}{"a":2}'],
      ['a raw control character in a string', '{"a": "x\u0001y"}'],
      ['an invalid escape', '{"a": "\\x41"}'],
    ];
    for (const [what, body] of malformed)
      add(
        `malformed JSON (${what})`,
        (h, a) => send('application/json', body)(h, a),
        400,
        'INVALID_JSON',
        'not valid JSON',
      );
    // A JSON document that is not an object or array (strict JSON bodies only).
    for (const [what, body] of [
      ['a string', '"hello"'],
      ['a number', '42'],
      ['true', 'true'],
      ['null', 'null'],
    ]) {
      add(
        `JSON body is ${what}`,
        (h, a) => send('application/json', body)(h, a),
        400,
        'INVALID_JSON',
        'not valid JSON',
      );
    }
    // Content types other than JSON.
    for (const [what, type] of [
      ['text/plain', 'text/plain'],
      ['form-urlencoded', 'application/x-www-form-urlencoded'],
      ['multipart/form-data', 'multipart/form-data; boundary=x'],
      ['application/xml', 'application/xml'],
      ['text/csv', 'text/csv'],
      ['application/octet-stream', 'application/octet-stream'],
      ['application/json with a latin1 charset', 'application/json; charset=latin1'],
    ]) {
      add(`Content-Type ${what}`, (h, a) => send(type, validJson())(h, a), 415, 'UNSUPPORTED_MEDIA_TYPE');
    }
    // UTF-8 bytes declared as UTF-16 decode to garbage: not JSON.
    add(
      'Content-Type application/json with a UTF-16 charset (body is UTF-8)',
      (h, a) => send('application/json; charset=utf-16', validJson())(h, a),
      400,
      'INVALID_JSON',
      'not valid JSON',
    );
    // Encodings that do not match the body.
    add(
      'Content-Encoding deflate, body not deflated',
      (h, a) => send('application/json', validJson(), { 'Content-Encoding': 'deflate' })(h, a),
      400,
    );
    add(
      'Content-Encoding br, body not brotli',
      (h, a) => send('application/json', validJson(), { 'Content-Encoding': 'br' })(h, a),
      400,
    );
    add(
      'Content-Encoding identity, gzip (a list)',
      (h, a) => send('application/json', validJson(), { 'Content-Encoding': 'identity, gzip' })(h, a),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      'Content-Encoding',
    );
    add(
      'Content-Encoding x-unknown',
      (h, a) => send('application/json', validJson(), { 'Content-Encoding': 'x-unknown' })(h, a),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      'Content-Encoding',
    );
    // Bytes that are not UTF-8.
    add(
      'JSON with invalid UTF-8 bytes in a string',
      (h, a) =>
        send(
          'application/json',
          Buffer.concat([Buffer.from('{"x":"'), Buffer.from([0xff, 0xfe, 0xc0, 0xaf]), Buffer.from('"}')]),
        )(h, a),
      400,
    );
  }
  return cases;
}

// ---------------------------------------------------------------------------- duplicated JSON keys

function duplicateKeyCases(): Case[] {
  // JSON.parse keeps the LAST duplicate: each case's last value is invalid, so it must be refused
  // whatever the first one says (a proxy reading the first value must not get a different answer).
  const cases: Case[] = [];
  const dup = (json: string, key: string, lastValue: string) => `${json.slice(0, -1)},${j(key)}:${lastValue}}`;
  const orders = j({ id: 'ORD-GEN-3', total: 10 });
  const pushBody = j(push());
  const add = (
    name: string,
    path: string,
    body: string,
    status: number,
    code: string,
    messageIncludes: string,
    auth: (a: string) => string | undefined = asCaller,
    callback?: boolean,
  ) =>
    cases.push({
      name: `duplicated key: ${name}`,
      req: postJson(path, auth, body),
      status,
      code,
      messageIncludes,
      callback,
    });

  add(
    'POST /orders total 10 then "10"',
    '/orders',
    dup(orders, 'total', '"10"'),
    400,
    'VALIDATION_FAILED',
    'total must be',
  );
  add(
    'POST /orders total 10 then -10',
    '/orders',
    dup(orders, 'total', '-10'),
    400,
    'VALIDATION_FAILED',
    'total must be at least',
  );
  add('POST /orders id then null', '/orders', dup(orders, 'id', 'null'), 400, 'VALIDATION_FAILED', 'id must be');
  add(
    'POST /orders currency KES then USD',
    '/orders',
    dup(j({ id: 'ORD-GEN-3', total: 10, currency: 'KES' }), 'currency', '"USD"'),
    400,
    'VALIDATION_FAILED',
    'currency must be one of KES',
  );
  add(
    'stk-push amount 100 then "100"',
    '/payments/stk-push',
    dup(pushBody, 'amount', '"100"'),
    400,
    'VALIDATION_FAILED',
    'amount must be',
  );
  add(
    'stk-push amount 100 then 1e308',
    '/payments/stk-push',
    dup(pushBody, 'amount', '1e308'),
    400,
    'VALIDATION_FAILED',
    'amount must be at most',
  );
  add(
    'stk-push amount 100 then 100.5',
    '/payments/stk-push',
    dup(pushBody, 'amount', '100.5'),
    400,
    'VALIDATION_FAILED',
    'whole number',
  );
  add(
    'stk-push phoneNumber then 12345',
    '/payments/stk-push',
    dup(pushBody, 'phoneNumber', '12345'),
    400,
    'VALIDATION_FAILED',
    'phoneNumber must be a string',
  );
  add(
    'stk-push phoneNumber then a foreign number',
    '/payments/stk-push',
    dup(pushBody, 'phoneNumber', '"+256712345678"'),
    400,
    'INVALID_PHONE_NUMBER',
    'Kenyan mobile number',
  );
  add(
    'stk-push orderId then ["ORD-BAD"]',
    '/payments/stk-push',
    dup(pushBody, 'orderId', '["ORD-BAD"]'),
    400,
    'VALIDATION_FAILED',
    'orderId must be a string',
  );

  const cb = (fields: Record<string, unknown>) => j(stk(fields));
  const inner = (json: string, key: string, lastValue: string) => json.replace(/\}\}\}$/, `,${j(key)}:${lastValue}}}}`);
  add(
    'callback ResultCode 0 then "abc"',
    '/payments/callback',
    inner(cb({ ResultCode: 0 }), 'ResultCode', '"abc"'),
    400,
    'INVALID_CALLBACK',
    'ResultCode must be a number',
    noAuth,
    true,
  );
  add(
    'callback ResultCode 0 then 1.5',
    '/payments/callback',
    inner(cb({ ResultCode: 0 }), 'ResultCode', '1.5'),
    400,
    'INVALID_CALLBACK',
    'ResultCode must be an integer',
    noAuth,
    true,
  );
  add(
    'callback CheckoutRequestID then 42',
    '/payments/callback',
    inner(cb({}), 'CheckoutRequestID', '42'),
    400,
    'INVALID_CALLBACK',
    'CheckoutRequestID must be a string',
    noAuth,
    true,
  );
  add(
    'callback Body then []',
    '/payments/callback',
    dup(cb({}), 'Body', '[]'),
    400,
    'INVALID_CALLBACK',
    'Body must be an object',
    noAuth,
    true,
  );
  cases.push({
    name: 'duplicated key: callback URL (valid token) ResultCode 0 then {}',
    req: (h) =>
      h()
        .post(`/payments/callback/${pending.paymentId}/${pending.token}`)
        .set('Content-Type', 'application/json')
        .send(
          inner(
            cb({
              MerchantRequestID: pending.merchantRequestId,
              CheckoutRequestID: pending.checkoutRequestId,
              ResultCode: 0,
              ResultDesc: 'ok',
            }),
            'ResultCode',
            '{}',
          ),
        ),
    status: 400,
    code: 'INVALID_CALLBACK',
    messageIncludes: 'ResultCode must be a number',
    callback: true,
  });
  return cases;
}

// ---------------------------------------------------------------------------- path and query parameters

function parameterCases(): Case[] {
  const cases: Case[] = [];
  const get = (path: string) => (h: Http, a: string) => h().get(path).set('Authorization', a);
  const ids: [string, string][] = [
    ['65 characters', 'O'.repeat(65)],
    ['5,000 characters', 'O'.repeat(5000)],
    ['a space', 'ORD%20BAD'],
    ['an encoded NUL', 'ORD%00BAD'],
    ['an encoded slash', 'ORD%2FBAD'],
    ['an encoded path traversal', '..%2F..%2Fetc%2Fpasswd'],
    ['an encoded RTL override', 'ORD-%E2%80%AEDAB'],
    ['an encoded zero-width space', 'ORD%E2%80%8BBAD'],
    ['an encoded emoji', 'ORD-%F0%9F%92%B3'],
    ["encoded SQL ' OR '1'='1", "ORD'%20OR%20'1'%3D'1"],
    ['an encoded newline', 'ORD%0ABAD'],
    ['a semicolon', 'ORD;1'],
    ['an asterisk', 'ORD*'],
    ['a colon', 'ORD:1'],
  ];
  for (const [what, id] of ids)
    cases.push({
      name: `GET /orders/:id: ${what}`,
      req: get(`/orders/${id}`),
      status: 400,
      code: 'VALIDATION_FAILED',
      messageIncludes: 'id must be 1-64 characters',
    });
  for (const [what, id] of [
    ['a lone %', '%'],
    ['%ZZ', '%ZZ'],
    ['an overlong UTF-8 slash %C0%AF', '%C0%AF'],
    ['a truncated UTF-8 sequence', 'ORD%E2%82'],
  ]) {
    cases.push({
      name: `GET /orders/:id: malformed percent-encoding (${what})`,
      req: get(`/orders/${id}`),
      status: 400,
      messageIncludes: 'decode',
    });
  }
  for (const [what, id] of [
    ['a phone number typed as the order id', '0712345678'],
    ['a UUID', UNKNOWN_UUID],
    ['dots only', '...'],
  ]) {
    cases.push({
      name: `GET /orders/:id: ${what} (well-formed, no such order)`,
      req: get(`/orders/${id}`),
      status: 404,
      code: 'NOT_FOUND',
      messageIncludes: 'Order not found',
    });
  }

  const notUuids: [string, string][] = [
    ['a UUID without dashes', UNKNOWN_UUID.replace(/-/g, '')],
    ['a UUID in braces', `%7B${UNKNOWN_UUID}%7D`],
    ['a UUID with a trailing character', `${UNKNOWN_UUID}0`],
    ['a UUID missing a character', UNKNOWN_UUID.slice(0, -1)],
    ['a UUID with a non-hex letter', UNKNOWN_UUID.replace(/^3/, 'g')],
    ['a URN UUID', `urn:uuid:${UNKNOWN_UUID}`],
    ['a number', '12345'],
    ['a negative number', '-1'],
    ['a float', '1.5'],
    ['an encoded NUL after a UUID', `${UNKNOWN_UUID}%00`],
    ["encoded SQL ' OR 1=1", "'%20OR%201%3D1"],
    ['an encoded path traversal', '..%2F..%2Fetc%2Fpasswd'],
    ['an encoded emoji', '%F0%9F%92%B3'],
    ['5,000 characters', 'a'.repeat(5000)],
    ['a phone number', '0712345678'],
  ];
  for (const [what, id] of notUuids)
    cases.push({
      name: `GET /payments/:id: ${what}`,
      req: get(`/payments/${id}`),
      status: 400,
      code: 'VALIDATION_FAILED',
      messageIncludes: 'id must be a payment id (UUID)',
    });
  for (const [what, id] of [
    ['the nil UUID', '00000000-0000-0000-0000-000000000000'],
    ['an upper-case unknown UUID', UNKNOWN_UUID.toUpperCase()],
    ['the max UUID', 'ffffffff-ffff-ffff-ffff-ffffffffffff'],
  ]) {
    cases.push({
      name: `GET /payments/:id: ${what} (no such payment)`,
      req: get(`/payments/${id}`),
      status: 404,
      code: 'NOT_FOUND',
      messageIncludes: 'Payment not found',
    });
  }

  const status = (query: string) => (h: Http, a: string) =>
    h().get(`/payments/stk-status?${query}`).set('Authorization', a);
  const badCheckoutIds: [string, string][] = [
    ['101 characters', 'w'.repeat(101)],
    ['5,000 characters', 'w'.repeat(5000)],
    ['a space', 'ws_CO%201'],
    ['an encoded NUL', 'ws_CO_1%00'],
    ['an encoded RTL override', 'ws_CO_%E2%80%AE1'],
    ['an encoded emoji', 'ws_CO_%F0%9F%92%B3'],
    ["SQL ' OR 1=1", "ws_CO_1'%20OR%201%3D1"],
    ['a path', '..%2F..%2Fetc%2Fpasswd'],
    ['a dot', 'ws_CO.1'],
    ['an undecodable %FF', 'ws_CO_%FF'],
    // The masked form as answered is ws_CO_…*******78: 7 stars, then the number's last 2 digits.
    ['6 stars in the masked form', 'ws_CO_13102022154520280******78'],
    ['1 digit after the stars', 'ws_CO_13102022154520280*******7'],
    ['stars inside the id', 'ws_CO_1310*******2022154520280'],
    ['nothing before the stars', '*******78'],
  ];
  for (const [what, id] of badCheckoutIds)
    cases.push({
      name: `stk-status: checkoutRequestId with ${what}`,
      req: status(`checkoutRequestId=${id}`),
      status: 400,
      code: 'VALIDATION_FAILED',
      messageIncludes: 'checkoutRequestId must be the CheckoutRequestID',
    });
  cases.push({
    name: 'stk-status: an unknown checkoutRequestId in the masked form',
    req: status('checkoutRequestId=ws_CO_13102022154520280*******78'),
    status: 404,
    code: 'NOT_FOUND',
    messageIncludes: 'Payment not found',
  });
  cases.push({
    name: 'stk-status: checkoutRequestId[] (bracket syntax)',
    req: status('checkoutRequestId[]=ws_CO_1'),
    status: 400,
    code: 'VALIDATION_FAILED',
    messageIncludes: 'checkoutRequestId',
  });
  cases.push({
    name: 'stk-status: checkoutRequestId[a] (nested syntax)',
    req: status('checkoutRequestId[a]=ws_CO_1'),
    status: 400,
    code: 'VALIDATION_FAILED',
    messageIncludes: 'checkoutRequestId',
  });
  cases.push({
    name: 'stk-status: checkoutRequestId three times',
    req: status('checkoutRequestId=a&checkoutRequestId=b&checkoutRequestId=c'),
    status: 400,
    code: 'VALIDATION_FAILED',
    messageIncludes: 'checkoutRequestId',
  });
  cases.push({
    name: 'stk-status: checkoutRequestId without a value',
    req: status('checkoutRequestId'),
    status: 400,
    code: 'VALIDATION_FAILED',
    messageIncludes: 'checkoutRequestId',
  });
  for (const [what, id] of [
    ['101 characters', 'm'.repeat(101)],
    ['an encoded NUL', '29115%00'],
    ['a space', '29115%201'],
    ['given twice', '1&merchantRequestId=2'],
  ]) {
    cases.push({
      name: `stk-status: merchantRequestId with ${what}`,
      req: status(`checkoutRequestId=ws_CO_DOESNOTEXIST&merchantRequestId=${id}`),
      status: 400,
      code: 'VALIDATION_FAILED',
      messageIncludes: 'merchantRequestId',
    });
  }
  cases.push({
    name: 'stk-status: an access_token query parameter (token in the URL)',
    req: (h, a) =>
      h()
        .get(`/payments/stk-status?checkoutRequestId=ws_CO_DOESNOTEXIST&access_token=${a.slice('Bearer '.length)}`)
        .set('Authorization', a),
    status: 400,
    code: 'VALIDATION_FAILED',
    messageIncludes: 'property access_token should not exist',
  });
  cases.push({
    name: 'stk-status: a phone query parameter',
    req: status('checkoutRequestId=ws_CO_DOESNOTEXIST&phone=254712345678'),
    status: 400,
    code: 'VALIDATION_FAILED',
    messageIncludes: 'property phone should not exist',
  });
  // History, receipts and the daily summary (issue 12).
  const history: [string, string, string, string][] = [
    ['limit 0', '/payments?limit=0', 'VALIDATION_FAILED', 'limit must be between 1 and 100'],
    ['limit 101', '/payments?limit=101', 'VALIDATION_FAILED', 'limit must be between 1 and 100'],
    ['limit 1.5', '/payments?limit=1.5', 'VALIDATION_FAILED', 'limit must be a whole number'],
    ['an unknown status', '/payments?status=paid', 'VALIDATION_FAILED', 'status must be one of'],
    ['an unknown provider', '/payments?provider=visa', 'VALIDATION_FAILED', 'provider must be one of'],
    ['a date without a time', '/payments?from=2026-12-01', 'VALIDATION_FAILED', 'from must be an ISO-8601 instant'],
    ['Feb 30', '/payments?to=2026-02-30T00:00:00Z', 'VALIDATION_FAILED', 'to must be a real date'],
    ['a cursor with a space', '/payments?cursor=a%20b', 'VALIDATION_FAILED', 'cursor must be the nextCursor'],
    [
      'a cursor that decodes to nonsense',
      `/payments?cursor=${Buffer.from('2026|x').toString('base64url')}`,
      'INVALID_CURSOR',
      'cursor is not a value this endpoint returned',
    ],
    ['an orderId of 65 characters', `/payments?orderId=${'O'.repeat(65)}`, 'VALIDATION_FAILED', 'orderId must be'],
    [
      'a receipt width of 70',
      `/payments/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}/receipt/print?width=70`,
      'VALIDATION_FAILED',
      'width must be 58 or 80',
    ],
    ['a daily report without to', '/reports/daily?from=2026-12-01', 'VALIDATION_FAILED', 'to must be a date'],
    [
      'a daily report on Feb 30',
      '/reports/daily?from=2026-02-30&to=2026-03-01',
      'VALIDATION_FAILED',
      'from must be a real date',
    ],
    ['a daily report over 92 days', '/reports/daily?from=2026-01-01&to=2026-06-01', 'INVALID_RANGE', 'at most 92 days'],
  ];
  for (const [what, path, code, message] of history)
    cases.push({ name: `history: ${what}`, req: get(path), status: 400, code, messageIncludes: message });
  return cases;
}

// ---------------------------------------------------------------------------- JWTs on every authenticated endpoint

interface AuthEndpoint {
  name: string;
  send: (h: Http, authorization: string | undefined, query?: string) => Test;
}

const CSV_BODY = 'Receipt No.,Paid In\nRCM0000001,100.00\n';

const AUTH_ENDPOINTS: AuthEndpoint[] = [
  {
    name: 'POST /orders',
    send: (h, auth, q = '') => withAuth(h().post(`/orders${q}`), auth).send({ id: 'ORD-GEN-4', total: 10 }),
  },
  { name: 'GET /orders/:id', send: (h, auth, q = '') => withAuth(h().get(`/orders/ORD-BAD${q}`), auth) },
  { name: 'stk-push', send: (h, auth, q = '') => withAuth(h().post(`/payments/stk-push${q}`), auth).send(push()) },
  {
    name: 'stk-status',
    send: (h, auth, q = '') =>
      withAuth(
        h().get(`/payments/stk-status?checkoutRequestId=${pending.checkoutRequestId}${q.replace('?', '&')}`),
        auth,
      ),
  },
  {
    name: 'GET /payments/:id',
    send: (h, auth, q = '') => withAuth(h().get(`/payments/${pending.paymentId}${q}`), auth),
  },
  {
    name: 'statements',
    send: (h, auth, q = '') =>
      withAuth(h().post(`/reconciliation/statements${q}`), auth)
        .set('Content-Type', 'text/csv')
        .send(CSV_BODY),
  },
  {
    name: 'release',
    send: (h, auth, q = '') =>
      withAuth(h().post(`/payments/${pending.paymentId}/release${q}`), auth).send({ reason: 'customer shows no SMS' }),
  },
  {
    name: 'PUT merchant account',
    send: (h, auth, q = '') => withAuth(h().put(`/shops/shop-1/merchant-accounts/mpesa${q}`), auth).send(MPESA_ACCOUNT),
  },
  {
    name: 'GET merchant accounts',
    send: (h, auth, q = '') => withAuth(h().get(`/shops/shop-1/merchant-accounts${q}`), auth),
  },
  {
    name: 'stream ticket',
    send: (h, auth, q = '') =>
      withAuth(h().post(`/payments/events/ticket${q}`), auth).send({ paymentId: pending.paymentId }),
  },
];

function withAuth(req: Test, authorization: string | undefined): Test {
  return authorization === undefined ? req : req.set('Authorization', authorization);
}

function jwtCases(): Case[] {
  const role = (name: string) => (name === 'statements' || name === 'release' ? 'manager' : 'cashier');
  const good = (name: string) => jwt(claims({ role: role(name) }));
  const sig = (token: string) => token.split('.')[2];
  const bad: { what: string; authorization: (ep: string) => string | undefined; code?: string; message: string }[] = [
    { what: 'no Authorization header', authorization: () => undefined, message: 'Missing Authorization' },
    { what: 'an empty Authorization header', authorization: () => '', message: 'Missing Authorization' },
    { what: '"Bearer" without a token', authorization: () => 'Bearer', message: 'Missing Authorization' },
    {
      what: 'a Token scheme instead of Bearer',
      authorization: (ep) => `Token ${good(ep)}`,
      message: 'Missing Authorization',
    },
    {
      what: 'Basic credentials',
      authorization: () => `Basic ${Buffer.from('cashier:secret').toString('base64')}`,
      message: 'Missing Authorization',
    },
    {
      what: 'an invalid token followed by a valid one',
      authorization: (ep) => `Bearer not-a-token ${good(ep)}`,
      message: 'Invalid token',
    },
    {
      what: 'a valid token followed by junk',
      authorization: (ep) => `Bearer ${good(ep)} junk`,
      message: 'Invalid token',
    },
    { what: 'a token that is not a JWT', authorization: () => 'Bearer abc', message: 'Invalid token' },
    {
      what: 'a token with a non-JSON payload',
      authorization: () => `Bearer ${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url('not json')}.${b64url('sig')}`,
      message: 'Invalid token',
    },
    {
      what: 'alg none',
      authorization: (ep) => bearer(`${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims({ role: role(ep) }))}.`),
      message: 'Invalid token',
    },
    {
      what: 'alg NONE (upper case)',
      authorization: (ep) => bearer(`${b64url({ alg: 'NONE', typ: 'JWT' })}.${b64url(claims({ role: role(ep) }))}.`),
      message: 'Invalid token',
    },
    {
      what: 'alg HS384',
      authorization: (ep) => bearer(jwt(claims({ role: role(ep) }), TEST_JWT_SECRET, 'HS384')),
      message: 'Invalid token',
    },
    {
      what: 'alg HS512',
      authorization: (ep) => bearer(jwt(claims({ role: role(ep) }), TEST_JWT_SECRET, 'HS512')),
      message: 'Invalid token',
    },
    {
      what: 'an RS256 header on an HMAC signature',
      authorization: (ep) => {
        const t = good(ep);
        return bearer(`${b64url({ alg: 'RS256', typ: 'JWT' })}.${t.split('.')[1]}.${sig(t)}`);
      },
      message: 'Invalid token',
    },
    {
      what: 'the wrong secret',
      authorization: (ep) => bearer(jwt(claims({ role: role(ep) }), 'not-the-secret-0123456789abcdefghijklmno')),
      message: 'Invalid token',
    },
    {
      what: 'a tampered payload (shop-2) with the original signature',
      authorization: (ep) => {
        const t = good(ep);
        return bearer(`${t.split('.')[0]}.${b64url(claims({ role: role(ep), shopId: 'shop-2' }))}.${sig(t)}`);
      },
      message: 'Invalid token',
    },
    { what: 'a truncated signature', authorization: (ep) => bearer(good(ep).slice(0, -5)), message: 'Invalid token' },
    {
      what: 'expired beyond the clock tolerance',
      authorization: (ep) =>
        bearer(jwt(claims({ role: role(ep), iat: nowSeconds() - 7200, exp: nowSeconds() - 3600 }))),
      code: 'TOKEN_EXPIRED',
      message: 'expired',
    },
    {
      what: 'no exp claim (issue 8.8)',
      authorization: (ep) =>
        bearer(
          hs256(
            { alg: 'HS256', typ: 'JWT' },
            Object.fromEntries(Object.entries(claims({ role: role(ep) })).filter(([k]) => k !== 'exp')),
          ),
        ),
      message: '"exp"',
    },
    {
      what: 'exp ten years ahead (issue 8.8)',
      authorization: (ep) => bearer(jwt(claims({ role: role(ep), exp: nowSeconds() + 10 * 365 * 86400 }))),
      message: 'lifetime',
    },
    {
      what: 'not valid before an hour from now',
      authorization: (ep) => bearer(jwt(claims({ role: role(ep), nbf: nowSeconds() + 3600 }))),
      message: 'Invalid token',
    },
    {
      what: 'exp as a string',
      authorization: (ep) =>
        bearer(hs256({ alg: 'HS256', typ: 'JWT' }, claims({ role: role(ep), exp: String(nowSeconds() + 3600) }))),
      message: 'Invalid token',
    },
    {
      what: 'exp 1e308 written as a string',
      authorization: (ep) => bearer(hs256({ alg: 'HS256', typ: 'JWT' }, claims({ role: role(ep), exp: '1e308' }))),
      message: 'Invalid token',
    },
    {
      what: 'a duplicated alg header (none last)',
      authorization: (ep) => bearer(hs256('{"alg":"HS256","typ":"JWT","alg":"none"}', claims({ role: role(ep) }))),
      message: 'Invalid token',
    },
    {
      what: 'no sub claim',
      authorization: (ep) => bearer(jwt(claims({ role: role(ep), sub: undefined }))),
      message: 'sub',
    },
    {
      what: 'sub of 65 characters',
      authorization: (ep) => bearer(jwt(claims({ role: role(ep), sub: 's'.repeat(65) }))),
      message: 'sub',
    },
    {
      what: 'shopId as a number',
      authorization: (ep) => bearer(jwt(claims({ role: role(ep), shopId: 1 }))),
      message: 'shopId',
    },
    {
      what: 'shopId with unicode',
      authorization: (ep) => bearer(jwt(claims({ role: role(ep), shopId: 'shop-①' }))),
      message: 'shopId',
    },
    {
      what: 'shopId with SQL',
      authorization: (ep) => bearer(jwt(claims({ role: role(ep), shopId: "shop-1' OR '1'='1" }))),
      message: 'shopId',
    },
    { what: 'role as an array', authorization: () => bearer(jwt(claims({ role: ['admin'] }))), message: 'role' },
    { what: "role 'superuser'", authorization: () => bearer(jwt(claims({ role: 'superuser' }))), message: 'role' },
    {
      what: 'a latin-1 character in the token',
      authorization: (ep) => `Bearer ${good(ep)}é`,
      message: 'Invalid token',
    },
    {
      what: 'an 8 KB token',
      authorization: (ep) =>
        bearer(jwt(claims({ role: role(ep), pad: 'p'.repeat(6000) }), 'not-the-secret-0123456789abcdefghijklmno')),
      message: 'Invalid token',
    },
  ];
  const cases: Case[] = [];
  for (const ep of AUTH_ENDPOINTS) {
    for (const b of bad) {
      cases.push({
        name: `JWT on ${ep.name}: ${b.what}`,
        req: (h) => ep.send(h, b.authorization(ep.name)),
        status: 401,
        code: b.code ?? 'UNAUTHORIZED',
        messageIncludes: b.message,
      });
    }
    // The token in the URL instead of the header is not accepted (and must not end up in the logs).
    cases.push({
      name: `JWT on ${ep.name}: the token in an access_token query parameter`,
      req: (h) => ep.send(h, undefined, `?access_token=${good(ep.name)}`),
      status: 401,
      code: 'UNAUTHORIZED',
      messageIncludes: 'Missing Authorization',
    });
  }
  cases.push({
    name: 'JWT on statements: a cashier (manager or admin only)',
    req: (h) => AUTH_ENDPOINTS[5].send(h, tokenFor('shop-1', 'cashier')),
    status: 403,
    code: 'FORBIDDEN',
    messageIncludes: 'manager, admin',
  });
  cases.push({
    name: 'JWT on release: a cashier (manager or admin only)',
    req: (h) => AUTH_ENDPOINTS[6].send(h, tokenFor('shop-1', 'cashier')),
    status: 403,
    code: 'FORBIDDEN',
    messageIncludes: 'manager, admin',
  });
  return cases;
}

// ---------------------------------------------------------------------------- POST /reconciliation/statements

function statementCases(): Case[] {
  const cases: Case[] = [];
  const upload =
    (body: string | Buffer, query = '', type = 'text/csv') =>
    (h: Http) =>
      h()
        .post(`/reconciliation/statements${query}`)
        .set('Authorization', manager())
        .set('Content-Type', type)
        .send(body);
  for (const [what, query] of [
    ['unknown', '?window=month'],
    ['empty', '?window='],
    ['upper case', '?window=ALL'],
    ['given twice', '?window=all&window=statement'],
    ['bracket syntax', '?window[]=all'],
    ['an encoded NUL', '?window=all%00'],
    ['an emoji', '?window=%F0%9F%92%B3'],
  ]) {
    cases.push({
      name: `statements: window ${what}`,
      req: upload(CSV_BODY, query),
      status: 400,
      code: 'VALIDATION_FAILED',
      messageIncludes: 'window',
    });
  }
  cases.push({
    name: 'statements: an unknown query parameter',
    req: upload(CSV_BODY, '?shopId=shop-2'),
    status: 400,
    code: 'VALIDATION_FAILED',
    messageIncludes: 'property shopId should not exist',
  });
  for (const [what, type] of [
    ['JSON', 'application/json'],
    ['text/plain', 'text/plain'],
    ['an Excel file type', 'application/vnd.ms-excel'],
    ['multipart/form-data', 'multipart/form-data; boundary=x'],
  ]) {
    const body = type === 'application/json' ? JSON.stringify({ csv: CSV_BODY }) : CSV_BODY;
    cases.push({
      name: `statements: Content-Type ${what}`,
      req: upload(body, '', type),
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
      messageIncludes: 'text/csv',
    });
  }
  const invalid: [string, string | Buffer][] = [
    ['only a header row without the required columns', 'Date,Description,Amount Out\n'],
    ['required columns missing', 'Completion Time,Details\n2026-11-01 10:00:00,x\n'],
    ['eleven title lines and no header', Array.from({ length: 11 }, (_, i) => `M-PESA STATEMENT line ${i}`).join('\n')],
    [
      'binary (PNG) bytes',
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52]),
    ],
    ['NUL bytes only', Buffer.alloc(64)],
    ['UTF-16 encoded text', Buffer.from('\ufeffReceipt No.,Paid In\nRCM0000001,100.00\n', 'utf16le')],
    ['a JSON document', JSON.stringify({ receipt: 'RCM0000001', amount: 100 })],
    ['header names with zero-width spaces', 'Receipt\u200b No.,Paid\u200b In\nRCM0000001,100.00\n'],
    [
      'one record of 2,000,000 characters (the limit is 1,000,000)',
      `Receipt No.,Paid In\n"${'x'.repeat(2_000_000)}",1\n`,
    ],
  ];
  for (const [what, body] of invalid) {
    cases.push({
      name: `statements: ${what}`,
      req: upload(body),
      status: 400,
      code: 'INVALID_STATEMENT',
      messageIncludes: what.startsWith('one record') ? 'longer than 1000000 characters' : 'statement',
    });
  }
  return cases;
}

// ---------------------------------------------------------------------------- STK callbacks

interface CallbackShape {
  what: string;
  /** replaces Body.stkCallback fields (undefined removes the field) */
  fields?: Record<string, unknown>;
  /** the whole body instead */
  body?: unknown;
  /** raw JSON text instead */
  raw?: string;
  /** 400 + this message fragment; omitted: well-formed, acknowledged and changing nothing */
  invalid?: string;
}

const success = (items: unknown[]) => ({
  ResultCode: 0,
  ResultDesc: 'The service request is processed successfully.',
  CallbackMetadata: { Item: items },
});
const OK_ITEMS = [
  { Name: 'Amount', Value: 50 },
  { Name: 'MpesaReceiptNumber', Value: 'NLJ7RT61SV' },
  { Name: 'Balance' },
  { Name: 'TransactionDate', Value: 20261126104500 },
  { Name: 'PhoneNumber', Value: 254700000007 },
];
const withItem = (name: string, value: unknown) =>
  success(OK_ITEMS.map((i) => (i.Name === name ? { Name: name, Value: value } : i)));
const withoutItemValue = (name: string) => success(OK_ITEMS.map((i) => (i.Name === name ? { Name: name } : i)));

const CALLBACK_SHAPES: CallbackShape[] = [
  // the envelope
  { what: 'Body missing', body: { stkCallback: stk({}).Body }, invalid: 'Body must be an object' },
  { what: 'Body null', body: { Body: null }, invalid: 'Body must be an object' },
  { what: 'Body an array', body: { Body: [stk({}).Body] }, invalid: 'Body must be an object' },
  { what: 'Body a string', body: { Body: '{"stkCallback":{}}' }, invalid: 'Body must be an object' },
  { what: 'Body a number', body: { Body: 1 }, invalid: 'Body must be an object' },
  {
    what: 'body key in lower case',
    body: { body: (stk({}) as { Body: unknown }).Body },
    invalid: 'Body must be an object',
  },
  { what: 'stkCallback missing', body: { Body: {} }, invalid: 'Body.stkCallback must be an object' },
  { what: 'stkCallback null', body: { Body: { stkCallback: null } }, invalid: 'Body.stkCallback must be an object' },
  { what: 'stkCallback an array', body: { Body: { stkCallback: [] } }, invalid: 'Body.stkCallback must be an object' },
  { what: 'stkCallback true', body: { Body: { stkCallback: true } }, invalid: 'Body.stkCallback must be an object' },
  {
    what: 'stkCallback nested one level deeper',
    body: { Body: { stkCallback: { stkCallback: (stk({}) as { Body: { stkCallback: unknown } }).Body.stkCallback } } },
    invalid: 'MerchantRequestID must be a string',
  },
  // ids
  ...(['MerchantRequestID', 'CheckoutRequestID'] as const).flatMap((f): CallbackShape[] => [
    { what: `${f} missing`, fields: { [f]: undefined }, invalid: `${f} must be a string` },
    { what: `${f} null`, fields: { [f]: null }, invalid: `${f} must be a string` },
    { what: `${f} a number`, fields: { [f]: 12345 }, invalid: `${f} must be a string` },
    { what: `${f} an array`, fields: { [f]: ['ws_CO_1'] }, invalid: `${f} must be a string` },
    { what: `${f} an object`, fields: { [f]: { id: 'ws_CO_1' } }, invalid: `${f} must be a string` },
    { what: `${f} empty`, fields: { [f]: '' }, invalid: `${f} must not be empty` },
    { what: `${f} blank`, fields: { [f]: '   ' }, invalid: `${f} must not be empty` },
    { what: `${f} of 201 characters`, fields: { [f]: 'w'.repeat(201) }, invalid: `${f} is longer than 200` },
    { what: `${f} with an emoji`, fields: { [f]: 'ws_CO_💳' }, invalid: `${f} must contain only visible ASCII` },
    {
      what: `${f} with an RTL override`,
      fields: { [f]: 'ws_CO_\u202e1' },
      invalid: `${f} must contain only visible ASCII`,
    },
    {
      what: `${f} with a zero-width space`,
      fields: { [f]: 'ws_CO_\u200b1' },
      invalid: `${f} must contain only visible ASCII`,
    },
    { what: `${f} with an inner space`, fields: { [f]: 'ws_CO 1' }, invalid: `${f} must contain only visible ASCII` },
  ]),
  // ResultCode
  { what: 'ResultCode null', fields: { ResultCode: null }, invalid: 'ResultCode must be a number or a numeric string' },
  { what: 'ResultCode true', fields: { ResultCode: true }, invalid: 'ResultCode must be a number or a numeric string' },
  {
    what: 'ResultCode an array',
    fields: { ResultCode: [0] },
    invalid: 'ResultCode must be a number or a numeric string',
  },
  {
    what: 'ResultCode a word',
    fields: { ResultCode: 'success' },
    invalid: 'ResultCode must be a number or a numeric string',
  },
  {
    what: 'ResultCode an empty string',
    fields: { ResultCode: '' },
    invalid: 'ResultCode must be a number or a numeric string',
  },
  {
    what: 'ResultCode the string "1.5"',
    fields: { ResultCode: '1.5' },
    invalid: 'ResultCode must be a number or a numeric string',
  },
  {
    what: 'ResultCode the string "1e3"',
    fields: { ResultCode: '1e3' },
    invalid: 'ResultCode must be a number or a numeric string',
  },
  {
    what: 'ResultCode the string "NaN"',
    fields: { ResultCode: 'NaN' },
    invalid: 'ResultCode must be a number or a numeric string',
  },
  {
    what: 'ResultCode the string "0x10"',
    fields: { ResultCode: '0x10' },
    invalid: 'ResultCode must be a number or a numeric string',
  },
  {
    what: 'ResultCode a 16-digit string',
    fields: { ResultCode: '1234567890123456' },
    invalid: 'ResultCode must be a number or a numeric string',
  },
  { what: 'ResultCode the float 0.5', fields: { ResultCode: 0.5 }, invalid: 'ResultCode must be an integer' },
  { what: 'ResultCode 1e308', raw: '1e308', invalid: 'ResultCode must be an integer' },
  { what: 'ResultCode 2^63', raw: '9223372036854775808', invalid: 'ResultCode must be an integer' },
  { what: 'ResultCode 1e999 (Infinity)', raw: '1e999', invalid: 'ResultCode must be an integer' },
  // ResultDesc
  { what: 'ResultDesc missing', fields: { ResultDesc: undefined }, invalid: 'ResultDesc must be a string' },
  { what: 'ResultDesc null', fields: { ResultDesc: null }, invalid: 'ResultDesc must be a string' },
  { what: 'ResultDesc an object', fields: { ResultDesc: { text: 'x' } }, invalid: 'ResultDesc must be a string' },
  {
    what: 'ResultDesc of 1,001 characters',
    fields: { ResultDesc: 'd'.repeat(1001) },
    invalid: 'ResultDesc is longer than 1000',
  },
  // CallbackMetadata
  {
    what: 'CallbackMetadata a string',
    fields: { ...success([]), CallbackMetadata: 'Amount=50' },
    invalid: 'CallbackMetadata must be an object',
  },
  {
    what: 'CallbackMetadata an array',
    fields: { ...success([]), CallbackMetadata: OK_ITEMS },
    invalid: 'CallbackMetadata must be an object',
  },
  {
    what: 'CallbackMetadata a number',
    fields: { ...success([]), CallbackMetadata: 50 },
    invalid: 'CallbackMetadata must be an object',
  },
  {
    what: 'CallbackMetadata.Item missing',
    fields: { ...success([]), CallbackMetadata: {} },
    invalid: 'Item must be an array',
  },
  {
    what: 'CallbackMetadata.Item null',
    fields: { ...success([]), CallbackMetadata: { Item: null } },
    invalid: 'Item must be an array',
  },
  {
    what: 'CallbackMetadata.Item an object',
    fields: { ...success([]), CallbackMetadata: { Item: OK_ITEMS[0] } },
    invalid: 'Item must be an array',
  },
  {
    what: 'CallbackMetadata.Item a string',
    fields: { ...success([]), CallbackMetadata: { Item: 'Amount' } },
    invalid: 'Item must be an array',
  },
  { what: 'an Item that is null', fields: success([...OK_ITEMS, null]), invalid: 'Item[5] must be an object' },
  { what: 'an Item that is a string', fields: success(['Amount', ...OK_ITEMS]), invalid: 'Item[0] must be an object' },
  { what: 'an Item that is an array', fields: success([['Amount', 50]]), invalid: 'Item[0] must be an object' },
  {
    what: 'an Item without a Name',
    fields: success([{ Value: 50 }]),
    invalid: 'Item[0].Name must be a non-empty string',
  },
  {
    what: 'an Item whose Name is a number',
    fields: success([{ Name: 1, Value: 50 }]),
    invalid: 'Item[0].Name must be a non-empty string',
  },
  {
    what: 'an Item whose Name is empty',
    fields: success([{ Name: '', Value: 50 }]),
    invalid: 'Item[0].Name must be a non-empty string',
  },
  {
    what: 'an Item whose Name has 201 characters',
    fields: success([{ Name: 'N'.repeat(201), Value: 50 }]),
    invalid: 'Item[0].Name must be a non-empty string',
  },
  // Amount
  { what: 'Amount a word', fields: withItem('Amount', 'fifty'), invalid: 'Amount must be a non-negative number' },
  { what: 'Amount negative', fields: withItem('Amount', -1), invalid: 'Amount must be a non-negative number' },
  { what: 'Amount true', fields: withItem('Amount', true), invalid: 'Amount must be a non-negative number' },
  {
    what: 'Amount an object',
    fields: withItem('Amount', { value: 50 }),
    invalid: 'Amount must be a non-negative number',
  },
  {
    what: 'Amount nested five levels deep',
    fields: withItem('Amount', { a: { b: { c: { d: 50 } } } }),
    invalid: 'Amount must be a non-negative number',
  },
  { what: 'Amount an array', fields: withItem('Amount', [50]), invalid: 'Amount must be a non-negative number' },
  {
    what: 'Amount the string "1e5"',
    fields: withItem('Amount', '1e5'),
    invalid: 'Amount must be a non-negative number',
  },
  {
    what: 'Amount the string "NaN"',
    fields: withItem('Amount', 'NaN'),
    invalid: 'Amount must be a non-negative number',
  },
  {
    what: 'Amount with 5 decimals as a string',
    fields: withItem('Amount', '50.12345'),
    invalid: 'Amount must be a non-negative number',
  },
  {
    what: 'Amount a 13-digit string',
    fields: withItem('Amount', '1234567890123'),
    invalid: 'Amount must be a non-negative number',
  },
  { what: 'Amount -1e999 (-Infinity)', raw: '__AMOUNT__-1e999', invalid: 'Amount must be a non-negative number' },
  {
    what: 'Amount given twice',
    fields: success([...OK_ITEMS, { Name: 'Amount', Value: 1 }]),
    invalid: 'Amount more than once',
  },
  // MpesaReceiptNumber
  {
    what: 'MpesaReceiptNumber a number',
    fields: withItem('MpesaReceiptNumber', 1234567890),
    invalid: 'MpesaReceiptNumber must be a string',
  },
  {
    what: 'MpesaReceiptNumber empty',
    fields: withItem('MpesaReceiptNumber', ''),
    invalid: 'MpesaReceiptNumber has an invalid length',
  },
  {
    what: 'MpesaReceiptNumber of 201 characters',
    fields: withItem('MpesaReceiptNumber', 'R'.repeat(201)),
    invalid: 'MpesaReceiptNumber has an invalid length',
  },
  {
    what: 'MpesaReceiptNumber with a NUL',
    fields: withItem('MpesaReceiptNumber', 'NLJ7RT\u000061SV'),
    invalid: 'MpesaReceiptNumber must contain only visible ASCII',
  },
  {
    what: 'MpesaReceiptNumber with an emoji',
    fields: withItem('MpesaReceiptNumber', 'NLJ7RT💳'),
    invalid: 'MpesaReceiptNumber must contain only visible ASCII',
  },
  {
    what: 'MpesaReceiptNumber given twice',
    fields: success([...OK_ITEMS, { Name: 'MpesaReceiptNumber', Value: 'XXX' }]),
    invalid: 'MpesaReceiptNumber more than once',
  },
  // TransactionDate
  {
    what: 'TransactionDate of 13 digits',
    fields: withItem('TransactionDate', 2026112610450),
    invalid: 'TransactionDate must be a 14-digit',
  },
  {
    what: 'TransactionDate of 15 digits',
    fields: withItem('TransactionDate', 202611261045001),
    invalid: 'TransactionDate must be a 14-digit',
  },
  {
    what: 'TransactionDate an ISO string',
    fields: withItem('TransactionDate', '2026-11-26T10:45:00Z'),
    invalid: 'TransactionDate must be a 14-digit',
  },
  {
    what: 'TransactionDate a float',
    fields: withItem('TransactionDate', 20261126104500.5),
    invalid: 'TransactionDate must be a 14-digit',
  },
  {
    what: 'TransactionDate negative',
    fields: withItem('TransactionDate', -20261126104500),
    invalid: 'TransactionDate must be a 14-digit',
  },
  {
    what: 'TransactionDate 1e308',
    fields: withItem('TransactionDate', 1e308),
    invalid: 'TransactionDate must be a 14-digit',
  },
  {
    what: 'TransactionDate an object',
    fields: withItem('TransactionDate', { date: 20261126104500 }),
    invalid: 'TransactionDate must be a 14-digit',
  },
  // PhoneNumber
  { what: 'PhoneNumber 0', fields: withItem('PhoneNumber', 0), invalid: 'PhoneNumber must be a positive integer' },
  {
    what: 'PhoneNumber negative',
    fields: withItem('PhoneNumber', -254700000007),
    invalid: 'PhoneNumber must be a positive integer',
  },
  {
    what: 'PhoneNumber a float',
    fields: withItem('PhoneNumber', 254700000007.5),
    invalid: 'PhoneNumber must be a positive integer',
  },
  {
    what: 'PhoneNumber 1e308',
    fields: withItem('PhoneNumber', 1e308),
    invalid: 'PhoneNumber must be a positive integer',
  },
  {
    what: 'PhoneNumber true',
    fields: withItem('PhoneNumber', true),
    invalid: 'PhoneNumber must be a number or a string',
  },
  {
    what: 'PhoneNumber an object',
    fields: withItem('PhoneNumber', { msisdn: 254700000007 }),
    invalid: 'PhoneNumber must be a number or a string',
  },
  {
    what: 'PhoneNumber an empty string',
    fields: withItem('PhoneNumber', ''),
    invalid: 'PhoneNumber has an invalid length',
  },
  {
    what: 'PhoneNumber of 201 characters',
    fields: withItem('PhoneNumber', '2'.repeat(201)),
    invalid: 'PhoneNumber has an invalid length',
  },
  // Well-formed but odd: acknowledged (Daraja would retry a 4xx), nothing of ours changes.
  { what: 'ResultCode as a numeric string "1032"', fields: { ResultCode: '1032' } },
  { what: 'ResultCode -0', raw: '-0' },
  { what: 'ResultCode -1', fields: { ResultCode: -1 } },
  { what: 'ResultCode a Daraja-style code "SFC_IC0003"', fields: { ResultCode: 'SFC_IC0003' } },
  { what: 'a success with Amount 1e308', fields: withItem('Amount', 1e308) },
  { what: 'a success with Amount 0', fields: withItem('Amount', 0) },
  { what: 'a success with Amount as a string "50.00"', fields: withItem('Amount', '50.00') },
  { what: 'a success without CallbackMetadata', fields: { ResultCode: 0, ResultDesc: 'ok' } },
  { what: 'a success with an empty Item list', fields: success([]) },
  { what: 'items present without Value', fields: withoutItemValue('Amount') },
  {
    what: 'Balance with a weird value',
    fields: success([
      ...OK_ITEMS.filter((i) => i.Name !== 'Balance'),
      { Name: 'Balance', Value: '{Amount={BasicAmount=46.00, MinimumAmount=4600, CurrencyCode=KES}}' },
    ]),
  },
  { what: 'unknown Item names', fields: success([...OK_ITEMS, { Name: 'Evil', Value: { $gt: '' } }]) },
  {
    what: 'unknown extra fields everywhere',
    body: {
      Body: {
        stkCallback: { ...(stk({}) as { Body: { stkCallback: object } }).Body.stkCallback, Extra: { deep: [1, 2, 3] } },
        More: 1,
      },
      Top: 'x',
    },
  },
  {
    what: 'ResultDesc with a NUL and an RTL override',
    fields: { ResultDesc: 'Request\u0000 cancelled \u202eresu yb' },
  },
  { what: 'ResultDesc with a lone surrogate', fields: { ResultDesc: 'cancelled \ud800' } },
  { what: 'ResultDesc of 1,000 characters of emoji', fields: { ResultDesc: '💳'.repeat(500) } },
  { what: 'PhoneNumber as a masked string', fields: withItem('PhoneNumber', '2547******07') },
  {
    what: 'PhoneNumber as a hash',
    fields: withItem('PhoneNumber', 'b0e5ac5b3f7c3b3c9f1e2d4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8'),
  },
];

function callbackJson(shape: CallbackShape, ids: { merchant: string; checkout: string }): string {
  const base = {
    MerchantRequestID: ids.merchant,
    CheckoutRequestID: ids.checkout,
    ResultCode: 1032,
    ResultDesc: 'Request cancelled by user',
  };
  if (shape.body !== undefined) return JSON.stringify(shape.body);
  if (shape.raw !== undefined) {
    if (shape.raw.startsWith('__AMOUNT__')) {
      const marker = '"__AMOUNT__"';
      return JSON.stringify({ Body: { stkCallback: { ...base, ...withItem('Amount', '__AMOUNT__') } } }).replace(
        marker,
        shape.raw.slice('__AMOUNT__'.length),
      );
    }
    return JSON.stringify({ Body: { stkCallback: { ...base, ResultCode: '__RC__' } } }).replace('"__RC__"', shape.raw);
  }
  const fields: Record<string, unknown> = { ...base, ...shape.fields };
  for (const [k, val] of Object.entries(shape.fields ?? {})) if (val === undefined) delete fields[k];
  return JSON.stringify({ Body: { stkCallback: fields } });
}

function callbackCases(): Case[] {
  const cases: Case[] = [];
  const unknownIds = { merchant: '29115-34620561-1', checkout: 'ws_CO_DOESNOTEXIST0002' };
  const post = (path: () => string, body: () => string) => (h: Http) =>
    h().post(path()).set('Content-Type', 'application/json').send(body());

  for (const shape of CALLBACK_SHAPES) {
    // Bare URL, ids of no payment: invalid shapes are refused, well-formed ones acknowledged.
    cases.push({
      name: `callback: ${shape.what}`,
      req: post(
        () => '/payments/callback',
        () => callbackJson(shape, unknownIds),
      ),
      ...(shape.invalid
        ? { status: 400, code: 'INVALID_CALLBACK', messageIncludes: shape.invalid }
        : { status: 200, ack: true }),
      callback: true,
    });
    if (!shape.invalid) continue;
    // The pending payment's own URL with a VALID token and its real ids: if any of these were
    // accepted it would settle the payment, so the refusal is what keeps it pending.
    cases.push({
      name: `callback URL (valid token, pending payment): ${shape.what}`,
      req: post(
        () => `/payments/callback/${pending.paymentId}/${pending.token}`,
        () => callbackJson(shape, { merchant: pending.merchantRequestId, checkout: pending.checkoutRequestId }),
      ),
      status: 400,
      code: 'INVALID_CALLBACK',
      messageIncludes: shape.invalid,
      callback: true,
    });
  }

  // The capability URL itself.
  const valid = () => callbackJson({ what: '' }, unknownIds);
  const urls: [string, () => string][] = [
    ['wrong token', () => `/payments/callback/${pending.paymentId}/${'0'.repeat(64)}`],
    ['token of 63 characters', () => `/payments/callback/${pending.paymentId}/${pending.token.slice(1)}`],
    ['token in upper case', () => `/payments/callback/${pending.paymentId}/${pending.token.toUpperCase()}`],
    ["another payment's id with this token", () => `/payments/callback/${UNKNOWN_UUID}/${pending.token}`],
    ['paymentId of 5,000 characters', () => `/payments/callback/${'p'.repeat(5000)}/${pending.token}`],
    ['paymentId with an encoded emoji', () => `/payments/callback/%F0%9F%92%B3/${pending.token}`],
    ['paymentId with encoded SQL', () => `/payments/callback/'%20OR%201%3D1/${pending.token}`],
    ['token with an encoded NUL', () => `/payments/callback/${pending.paymentId}/${pending.token}%00`],
  ];
  for (const [what, url] of urls)
    cases.push({
      name: `callback URL (${what}): well-formed body for no payment`,
      req: post(url, valid),
      status: 200,
      ack: true,
      callback: true,
    });
  cases.push({
    name: 'callback URL: the token in the query string instead of the path',
    req: post(() => `/payments/callback/${pending.paymentId}?token=${pending.token}`, valid),
    status: 404,
    code: 'NOT_FOUND',
    callback: true,
  });
  cases.push({
    name: 'callback URL: an extra path segment',
    req: post(() => `/payments/callback/${pending.paymentId}/${pending.token}/extra`, valid),
    status: 404,
    code: 'NOT_FOUND',
    callback: true,
  });
  cases.push({
    name: 'callback URL: malformed percent-encoding in the paymentId',
    req: post(() => `/payments/callback/%E0%A4%A/${pending.token}`, valid),
    status: 400,
    messageIncludes: 'decode',
    callback: true,
  });
  return cases;
}

// ---------------------------------------------------------------------------- refunds and review resolution (issue 11)

function refundCases(): Case[] {
  const cases: Case[] = [];
  const add = (
    what: string,
    path: () => string,
    body: string,
    status: number,
    code: string,
    messageIncludes: string,
    authorization: () => string = manager,
  ) =>
    cases.push({
      name: what,
      req: (h) =>
        h().post(path()).set('Authorization', authorization()).set('Content-Type', 'application/json').send(body),
      status,
      code,
      messageIncludes,
    });
  const refunds = () => `/payments/${pending.paymentId}/refunds`;
  const resolve = () => `/payments/${pending.paymentId}/resolve`;
  const base = { amount: 10, reason: 'customer returned the goods' };
  const note = { action: 'refund', note: 'customer charged twice' };
  add(
    'refund: reason missing',
    refunds,
    bodyWith(base, 'reason', 'missing'),
    400,
    'VALIDATION_FAILED',
    'reason must be',
  );
  for (const val of NOT_A_STRING)
    add(
      `refund: reason is ${val.label}`,
      refunds,
      bodyWith(base, 'reason', val),
      400,
      'VALIDATION_FAILED',
      'reason must be',
    );
  for (const val of [v('two characters', 'ab'), v('a newline', 'no\nthing'), v('501 characters', 'r'.repeat(501))])
    add(
      `refund: reason is ${val.label}`,
      refunds,
      bodyWith(base, 'reason', val),
      400,
      'VALIDATION_FAILED',
      'reason must be 3-500',
    );
  for (const val of NOT_A_NUMBER)
    add(
      `refund: amount is ${val.label}`,
      refunds,
      bodyWith(base, 'amount', val),
      400,
      'VALIDATION_FAILED',
      'amount must',
    );
  for (const val of BAD_NUMBERS)
    add(
      `refund: amount is ${val.label}`,
      refunds,
      bodyWith(base, 'amount', val),
      400,
      'VALIDATION_FAILED',
      'amount must',
    );
  for (const val of [v('lower case', 'kes'), v('a number', 404), v('four letters', 'KESH'), v('empty', '')])
    add(
      `refund: currency is ${val.label}`,
      refunds,
      bodyWith(base, 'currency', val),
      400,
      'VALIDATION_FAILED',
      'currency must',
    );
  for (const [field, val] of [
    ['status', 'succeeded'],
    ['amountMinor', 1000],
    ['paymentId', UNKNOWN_UUID],
    ['__proto__', { admin: true }],
  ] as const)
    add(
      `refund: extra field ${field}`,
      refunds,
      bodyWith(base, field, v('', val)),
      400,
      'VALIDATION_FAILED',
      `property ${field} should not exist`,
    );
  add(
    'refund: payment id is not a UUID',
    () => '/payments/12345/refunds',
    j(base),
    400,
    'VALIDATION_FAILED',
    'id must be a payment id (UUID)',
  );
  add(
    'refund: an unknown payment',
    () => `/payments/${UNKNOWN_UUID}/refunds`,
    j(base),
    404,
    'NOT_FOUND',
    'Payment not found',
  );
  add("refund: another shop's manager", refunds, j(base), 404, 'NOT_FOUND', 'Payment not found', () =>
    tokenFor('shop-2', 'manager', 'manager-2'),
  );
  add('refund: a cashier', refunds, j(base), 403, 'FORBIDDEN', 'manager, admin', () =>
    tokenFor('shop-1', 'cashier', 'cashier-9'),
  );
  // The fixture payment is still waiting for the customer: nothing to refund, nothing changes.
  add(
    'refund: a payment that is not completed',
    refunds,
    j(base),
    409,
    'PAYMENT_NOT_REFUNDABLE',
    'Only a completed payment',
  );
  add(
    'refund: a currency mismatch on a payment that is not completed',
    refunds,
    j({ ...base, currency: 'USD' }),
    409,
    'PAYMENT_NOT_REFUNDABLE',
    'Only a completed payment',
  );

  add(
    'resolve: action missing',
    resolve,
    bodyWith(note, 'action', 'missing'),
    400,
    'VALIDATION_FAILED',
    'action must be one of',
  );
  for (const val of [v('unknown', 'refund-all'), v('upper case', 'REFUND'), v('a number', 1), v('null', null)])
    add(
      `resolve: action is ${val.label}`,
      resolve,
      bodyWith(note, 'action', val),
      400,
      'VALIDATION_FAILED',
      'action must be one of',
    );
  add('resolve: note missing', resolve, bodyWith(note, 'note', 'missing'), 400, 'VALIDATION_FAILED', 'note must be');
  for (const val of [v('two characters', 'ab'), v('blanks only', '    '), v('a NUL character', 'a\u0000bc')])
    add(
      `resolve: note is ${val.label}`,
      resolve,
      bodyWith(note, 'note', val),
      400,
      'VALIDATION_FAILED',
      'note must be 3-500',
    );
  for (const val of BAD_ID_TEXT)
    add(
      `resolve: orderId is ${val.label}`,
      resolve,
      bodyWith({ ...note, action: 'accept' }, 'orderId', val),
      400,
      'VALIDATION_FAILED',
      'orderId must',
    );
  add(
    'resolve: extra field amount',
    resolve,
    bodyWith(note, 'amount', v('', 10)),
    400,
    'VALIDATION_FAILED',
    'property amount should not exist',
  );
  add("resolve: another shop's manager", resolve, j(note), 404, 'NOT_FOUND', 'Payment not found', () =>
    tokenFor('shop-2', 'manager', 'manager-2'),
  );
  add('resolve: a cashier', resolve, j(note), 403, 'FORBIDDEN', 'manager, admin', () =>
    tokenFor('shop-1', 'cashier', 'cashier-9'),
  );
  const settle = () => `/refunds/${UNKNOWN_UUID}/settle`;
  const settleBody = { outcome: 'succeeded', note: 'portal shows it reversed' };
  for (const val of [v('unknown', 'maybe'), v('upper case', 'SUCCEEDED'), v('null', null), v('a number', 1)])
    add(
      `settle: outcome is ${val.label}`,
      settle,
      bodyWith(settleBody, 'outcome', val),
      400,
      'VALIDATION_FAILED',
      'outcome must be',
    );
  add(
    'settle: note missing',
    settle,
    bodyWith(settleBody, 'note', 'missing'),
    400,
    'VALIDATION_FAILED',
    'note must be',
  );
  add(
    'settle: refund id is not a UUID',
    () => '/refunds/12345/settle',
    j(settleBody),
    400,
    'VALIDATION_FAILED',
    'refundId must be a refund id (UUID)',
  );
  add('settle: an unknown refund', settle, j(settleBody), 404, 'NOT_FOUND', 'Refund not found');
  add('settle: a cashier', settle, j(settleBody), 403, 'FORBIDDEN', 'manager, admin', () =>
    tokenFor('shop-1', 'cashier', 'cashier-9'),
  );
  for (const action of ['refund', 'accept', 'release'])
    add(
      `resolve: ${action} a payment not in review`,
      resolve,
      j({ ...note, action }),
      409,
      'PAYMENT_NOT_IN_REVIEW',
      'Only a payment in review',
    );
  return cases;
}

// ---------------------------------------------------------------------------- POST /payments/:id/release (issue 8.2)

function releaseCases(): Case[] {
  const cases: Case[] = [];
  const base = { reason: 'customer shows no SMS' };
  const add = (what: string, path: () => string, body: string, status: number, code: string, messageIncludes: string) =>
    cases.push({
      name: `release: ${what}`,
      req: (h) => h().post(path()).set('Authorization', manager()).set('Content-Type', 'application/json').send(body),
      status,
      code,
      messageIncludes,
    });
  const own = () => `/payments/${pending.paymentId}/release`;
  add('reason missing', own, bodyWith(base, 'reason', 'missing'), 400, 'VALIDATION_FAILED', 'reason must be');
  for (const val of NOT_A_STRING)
    add(`reason is ${val.label}`, own, bodyWith(base, 'reason', val), 400, 'VALIDATION_FAILED', 'reason must be');
  for (const val of [
    v('empty', ''),
    v('two characters', 'ab'),
    v('blanks only', '    '),
    v('501 characters', 'r'.repeat(501)),
    v('10,000 characters', 'r'.repeat(10_000)),
    v('a NUL character', 'no\u0000sms'),
    v('a newline', 'no\nsms'),
    v('an escape sequence', 'no \u001b[31m sms'),
    raw('a lone surrogate', '"abc\\ud800def"'),
    raw('a reversed surrogate pair', '"abc\\udc00\\ud800def"'),
    v('two characters padded with blanks', '   ab   '),
    v('zero-width characters only', '\u200b\u200b\u200b'),
    v('two visible characters among zero-width ones', 'a\u200bb\ufeff'),
    v('two characters padded with no-break spaces', '\u00a0ab\u3000'),
  ]) {
    add(
      `reason is ${val.label}`,
      own,
      bodyWith(base, 'reason', val),
      400,
      'VALIDATION_FAILED',
      'reason must be 3-500 characters',
    );
  }
  for (const [field, val] of [
    ['status', 'completed'],
    ['releasedAt', '2026-01-01T00:00:00Z'],
    ['orderId', 'ORD-PAID'],
    ['__proto__', { admin: true }],
  ] as const) {
    add(
      `extra field ${field}`,
      own,
      bodyWith(base, field, v('', val)),
      400,
      'VALIDATION_FAILED',
      `property ${field} should not exist`,
    );
  }
  for (const [what, id] of [
    ['a number', '12345'],
    ['a UUID without dashes', UNKNOWN_UUID.replace(/-/g, '')],
    ["encoded SQL ' OR 1=1", "'%20OR%201%3D1"],
  ]) {
    add(
      `payment id is ${what}`,
      () => `/payments/${id}/release`,
      j(base),
      400,
      'VALIDATION_FAILED',
      'id must be a payment id (UUID)',
    );
  }
  add('an unknown payment', () => `/payments/${UNKNOWN_UUID}/release`, j(base), 404, 'NOT_FOUND', 'Payment not found');
  add("another shop's manager", own, j(base), 404, 'NOT_FOUND', 'Payment not found');
  cases[cases.length - 1].req = (h) =>
    h()
      .post(own())
      .set('Authorization', tokenFor('shop-2', 'manager', 'manager-2'))
      .send(base);
  // The fixture payment is still waiting for the customer: not releasable, and nothing changes.
  add('a payment still in flight', own, j(base), 409, 'PAYMENT_NOT_RELEASABLE', 'still waiting');
  return cases;
}

// ---------------------------------------------------------------------------- PUT /shops/:shopId/merchant-accounts/mpesa (issue 10)

const MPESA_ACCOUNT = {
  environment: 'simulator',
  type: 'till',
  shortcode: '600222',
  tillNumber: '5123456',
  consumerKey: 'gen-consumer-key',
  consumerSecret: 'gen-consumer-secret',
  passkey: 'ab'.repeat(32),
};

function merchantAccountCases(): Case[] {
  const cases: Case[] = [];
  const path = '/shops/shop-1/merchant-accounts/mpesa';
  const add = (what: string, body: string, status: number, code: string, messageIncludes: string, auth = manager) =>
    cases.push({
      name: `merchant account: ${what}`,
      req: (h) => h().put(path).set('Authorization', auth()).set('Content-Type', 'application/json').send(body),
      status,
      code,
      messageIncludes,
    });
  const field = (name: string, vals: Val[], message: string) => {
    add(`${name} missing`, bodyWith(MPESA_ACCOUNT, name, 'missing'), 400, 'VALIDATION_FAILED', message);
    for (const val of vals)
      add(`${name} is ${val.label}`, bodyWith(MPESA_ACCOUNT, name, val), 400, 'VALIDATION_FAILED', message);
  };
  const notAString = NOT_A_STRING.filter((x) => x.label !== 'a number' && x.label !== 'the number 0');
  field(
    'environment',
    [...NOT_A_STRING, v('staging', 'staging'), v('upper case', 'PRODUCTION')],
    'environment must be one of',
  );
  field(
    'type',
    [...NOT_A_STRING, v('buygoods', 'buygoods'), v('upper case', 'TILL')],
    'type must be "paybill" or "till"',
  );
  for (const [what, val] of [
    ['4 digits', '6002'],
    ['8 digits', '60022200'],
    ['letters', '60O222'],
    ['Arabic-Indic digits', '\u0666\u0660\u0660\u0662\u0662\u0662'],
    ['a leading space', ' 600222'],
    ['a negative number', -600222],
    ['a float', 600222.5],
  ] as const) {
    add(
      `shortcode is ${what}`,
      bodyWith(MPESA_ACCOUNT, 'shortcode', v('', val)),
      400,
      'VALIDATION_FAILED',
      'shortcode',
    );
    add(
      `tillNumber is ${what}`,
      bodyWith(MPESA_ACCOUNT, 'tillNumber', v('', val)),
      400,
      'VALIDATION_FAILED',
      'tillNumber',
    );
  }
  add(
    'shortcode missing',
    bodyWith(MPESA_ACCOUNT, 'shortcode', 'missing'),
    400,
    'VALIDATION_FAILED',
    'shortcode is required',
  );
  add(
    'a till without tillNumber',
    bodyWith(MPESA_ACCOUNT, 'tillNumber', 'missing'),
    400,
    'VALIDATION_FAILED',
    'till number',
  );
  for (const name of ['consumerKey', 'consumerSecret'] as const) {
    add(`${name} missing`, bodyWith(MPESA_ACCOUNT, name, 'missing'), 400, 'VALIDATION_FAILED', `${name} is required`);
    for (const val of notAString)
      add(
        `${name} is ${val.label}`,
        bodyWith(MPESA_ACCOUNT, name, val),
        400,
        'VALIDATION_FAILED',
        `${name} is required`,
      );
    for (const val of [
      v('with a space', 'a b'),
      v('with a newline', 'a\nb'),
      v('201 characters', 'k'.repeat(201)),
      v('a NUL', 'a\u0000b'),
    ])
      add(`${name} is ${val.label}`, bodyWith(MPESA_ACCOUNT, name, val), 400, 'VALIDATION_FAILED', 'no spaces');
  }
  add(
    'passkey missing',
    bodyWith(MPESA_ACCOUNT, 'passkey', 'missing'),
    400,
    'VALIDATION_FAILED',
    'passkey is required',
  );
  for (const val of [
    v('63 hex', 'a'.repeat(63)),
    v('65 hex', 'a'.repeat(65)),
    v('64 non-hex', 'g'.repeat(64)),
    v('the truncated sandbox passkey', 'bfb279f9aa9bdbcf158e97dd1a503b6e'),
  ])
    add(
      `passkey is ${val.label}`,
      bodyWith(MPESA_ACCOUNT, 'passkey', val),
      400,
      'VALIDATION_FAILED',
      '64 hexadecimal characters',
    );
  for (const val of notAString)
    add(
      `passkey is ${val.label}`,
      bodyWith(MPESA_ACCOUNT, 'passkey', val),
      400,
      'VALIDATION_FAILED',
      'passkey is required',
    );
  for (const [name, val] of [
    ['__proto__', { admin: true }],
    ['constructor', { prototype: { admin: true } }],
  ] as const)
    add(
      `extra field ${name}`,
      bodyWith(MPESA_ACCOUNT, name, v('', val)),
      400,
      'VALIDATION_FAILED',
      `property ${name} should not exist`,
    );
  for (const [name, val] of [
    ['shopId', 'shop-2'],
    ['secrets', 'x'],
    ['keyId', 'k9'],
  ] as const)
    add(
      `extra field ${name}`,
      bodyWith(MPESA_ACCOUNT, name, v('', val)),
      400,
      'VALIDATION_FAILED',
      `Unknown field "${name}"`,
    );
  add(
    'initiatorName without initiatorPassword',
    bodyWith(MPESA_ACCOUNT, 'initiatorName', v('', 'api-op')),
    400,
    'VALIDATION_FAILED',
    'initiatorPassword is required',
  );
  add('the body is an array', '[1,2]', 400, 'VALIDATION_FAILED', '');
  add('a cashier', j(MPESA_ACCOUNT), 403, 'FORBIDDEN', 'roles: manager, admin, operator', () =>
    tokenFor('shop-1', 'cashier', 'cashier-1'),
  );
  add("another shop's manager", j(MPESA_ACCOUNT), 403, 'FORBIDDEN', 'your own shop', () =>
    tokenFor('shop-2', 'manager', 'manager-2'),
  );
  add(
    'a manager linking to another shop',
    j({ environment: 'simulator', type: 'till', tillNumber: '5123456', credentialsFromShopId: 'shop-2' }),
    403,
    'FORBIDDEN',
    'platform operator',
  );
  cases.push({
    name: 'merchant account: an unknown provider',
    req: (h) => h().put('/shops/shop-1/merchant-accounts/paypal').set('Authorization', manager()).send(MPESA_ACCOUNT),
    status: 400,
    code: 'VALIDATION_FAILED',
    messageIncludes: 'provider must be one of',
  });
  cases.push({
    name: 'merchant account: a shop id with a slash-like character',
    req: (h) => h().put('/shops/shop%2F1/merchant-accounts/mpesa').set('Authorization', manager()).send(MPESA_ACCOUNT),
    status: 400,
    code: 'VALIDATION_FAILED',
    messageIncludes: 'shopId must be a shop id',
  });
  return cases;
}

// ---------------------------------------------------------------------------- methods and routes

function routeCases(): Case[] {
  const route = (what: string, make: (h: Http, a: string) => Test, status = 404): Case => ({
    name: `route: ${what}`,
    req: make,
    status,
    code: status === 404 ? 'NOT_FOUND' : undefined,
  });
  return [
    route('PUT /orders/:id', (h, a) => h().put('/orders/ORD-BAD').set('Authorization', a).send({ total: 1 })),
    route('DELETE /orders/:id', (h, a) => h().delete('/orders/ORD-BAD').set('Authorization', a)),
    route('PATCH /payments/:id', (h, a) =>
      h().patch(`/payments/${pending.paymentId}`).set('Authorization', a).send({ status: 'completed' }),
    ),
    route('DELETE /payments/:id', (h, a) => h().delete(`/payments/${pending.paymentId}`).set('Authorization', a)),
    route('GET /orders (no list endpoint)', (h, a) => h().get('/orders').set('Authorization', a)),
    route('PUT /payments/callback', (h) => h().put('/payments/callback').send(stk({}))),
    route('GET /reconciliation/statements', (h, a) => h().get('/reconciliation/statements').set('Authorization', a)),
    route('POST /payments/stk-push/extra', (h, a) =>
      h().post('/payments/stk-push/extra').set('Authorization', a).send(push()),
    ),
    route('GET /payments/:id/release', (h) =>
      h().get(`/payments/${pending.paymentId}/release`).set('Authorization', manager()),
    ),
  ];
}

// ---------------------------------------------------------------------------- the corpus

export function generatedCases(): Case[] {
  const cases = [
    ...ordersCases(),
    ...stkPushCases(),
    ...transportCases(),
    ...duplicateKeyCases(),
    ...parameterCases(),
    ...jwtCases(),
    ...statementCases(),
    ...callbackCases(),
    ...releaseCases(),
    ...refundCases(),
    ...merchantAccountCases(),
    ...routeCases(),
  ];
  const seen = new Set<string>();
  for (const c of cases) {
    if (seen.has(c.name)) throw new Error(`generator: duplicate case name "${c.name}"`);
    seen.add(c.name);
  }
  return cases;
}
