import type { IncomingMessage, ServerResponse } from 'node:http';
import { assignRequestId, redactUrl, safeError, safeMessage, prettyDestination } from './logging';

describe('redactUrl', () => {
  it.each([
    [
      '/payments/callback/3f2c9a4e-8b1d-4c6e-9f0a-7d5e2b1c4a98/' + 'ab'.repeat(32),
      '/payments/callback/3f2c9a4e-8b1d-4c6e-9f0a-7d5e2b1c4a98/[redacted]',
    ],
    ['/payments/callback/p1/tok?x=1', '/payments/callback/p1/[redacted]?x=1'],
    // M-Pesa's result URLs (reversal result, queue timeout, transaction status): the token is last
    [
      '/payments/callback/refunds/c3b24ebb-7ec3-40ec-b2c5-feb043738891/result/' + 'cd'.repeat(32),
      '/payments/callback/refunds/c3b24ebb-7ec3-40ec-b2c5-feb043738891/result/[redacted]',
    ],
    ['/payments/callback/refunds/r1/timeout/' + 'cd'.repeat(32), '/payments/callback/refunds/r1/timeout/[redacted]'],
    ['/payments/callback/refunds/r1/status/tok?x=1', '/payments/callback/refunds/r1/status/[redacted]?x=1'],
    ['/payments/callback/payments/p1/status/' + 'cd'.repeat(32), '/payments/callback/payments/p1/status/[redacted]'],
    // C2B: a merchant account's confirmation and validation URLs
    [
      '/payments/c2b/3f2c9a4e-8b1d-4c6e-9f0a-7d5e2b1c4a98/confirmation/' + 'ef'.repeat(32),
      '/payments/c2b/3f2c9a4e-8b1d-4c6e-9f0a-7d5e2b1c4a98/confirmation/[redacted]',
    ],
    ['/payments/c2b/a1/validation/tok/more?x=1', '/payments/c2b/a1/validation/[redacted]?x=1'],
    // a path longer than any route: nothing after the payment id reaches the log
    ['/payments/callback/p1/tok/more', '/payments/callback/p1/[redacted]'],
    ['/payments/callback/p1?token=' + 'ab'.repeat(32), '/payments/callback/p1?token=[redacted]'],
    ['/orders?access_token=abc.def.ghi&x=1', '/orders?access_token=[redacted]&x=1'],
    ['/orders?x=1&PASSWORD=hunter2#frag', '/orders?x=1&PASSWORD=[redacted]#frag'],
    ['/orders/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl', '/orders/[redacted]'],
    ['/orders/0712345678', '/orders/07******78'],
    ['/x?phone=254712345678', '/x?phone=2547******78'],
    ['/x?phone=%2B254112345678', '/x?phone=+2541******78'],
    ['/x?phone=+254712345678&y=2', '/x?phone=+2547******78&y=2'],
    ['/x?phone=%200712345678', '/x?phone=%2007******78'],
    ['/orders/ORD-%E2%80%AE0712345678', '/orders/ORD-%E2%80%AE07******78'],
    // issue 8.7: a CheckoutRequestID ends with the payer's national number; bare national numbers count too
    [
      '/payments/stk-status?checkoutRequestId=ws_CO_13102022154520280706803305',
      '/payments/stk-status?checkoutRequestId=ws_CO_13102022154520280*******05',
    ],
    [
      '/payments/stk-status?checkoutRequestId=ws_CO_07122026104500123456789012',
      '/payments/stk-status?checkoutRequestId=ws_CO_07122026104500123*******12',
    ],
    [
      '/payments/stk-status?checkoutRequestId=ws_CO_170820261428262708374149&merchantRequestId=1-2-3',
      '/payments/stk-status?checkoutRequestId=ws_CO_170820261428262*******49&merchantRequestId=1-2-3',
    ],
    ['/x?phone=712345678', '/x?phone=71*****78'],
    ['/orders/ORD-112345678', '/orders/ORD-11*****78'],
    // review: a phone number touching a letter, `_` or `.`
    ['/orders/ord_0712345678', '/orders/ord_07******78'],
    ['/orders/ORD.254712345678', '/orders/ORD.2547******78'],
    ['/orders/INV712345678', '/orders/INV71*****78'],
    ['/orders/0712345678x?phone=%2b254712345678', '/orders/07******78x?phone=+2547******78'],
    ['/orders/x%2F712345678', '/orders/x%2F71*****78'],
    // review: the query parser decodes a parameter's name, so the redaction does too
    ['/payments/events?%74icket=abc.def&x=1', '/payments/events?%74icket=[redacted]&x=1'],
    ['/payments/events?%54%49%43%4B%45%54=abc', '/payments/events?%54%49%43%4B%45%54=[redacted]'],
    ['/orders?x=1&to%6Ben=abc', '/orders?x=1&to%6Ben=[redacted]'],
    ['/orders?%E0%A4%A=1&ticket=abc', '/orders?%E0%A4%A=1&ticket=[redacted]'],
  ])('%s → %s', (url, expected) => {
    expect(redactUrl(url)).toBe(expected);
  });

  it.each([
    ['/orders/ORD-1001'],
    ['/payments/3f2c9a4e-8b1d-4c6e-9f0a-7d5e2b1c4a98'],
    ['/payments/stk-status?checkoutRequestId=ws_CO_1&merchantRequestId=12345-171234567-1'],
    ['/payments/stk-status?checkoutRequestId=ws_CO_1&merchantRequestId=29115-34620561-1'],
    ['/reconciliation/statements?window=all'],
    ['/orders/20261126104500'],
    ['/orders/1795690859969'],
    ['/payments/callback'],
    ['/payments/3f2c9a4e-8b1d-4c6e-9f0a-712345678abc'],
    ['/orders/4bf92f3577b34da6a3ce9171234567ab'],
    ['/payments/stk-status?checkoutRequestId=ws_CO_02122026034130999*******78'],
  ])('leaves %s as it is', (url) => {
    expect(redactUrl(url)).toBe(url);
  });

  it('passes undefined through', () => {
    expect(redactUrl(undefined)).toBeUndefined();
  });
});

describe('assignRequestId', () => {
  const assign = (incoming?: string) => {
    const headers: Record<string, string> = {};
    const req = { headers: incoming === undefined ? {} : { 'x-request-id': incoming } } as unknown as IncomingMessage;
    const res = { setHeader: (k: string, v: string) => (headers[k] = v) } as unknown as ServerResponse;
    const id = assignRequestId(req, res);
    expect(headers['X-Request-Id']).toBe(id);
    return id;
  };
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

  it.each([
    ['pos-42.req_7'],
    ['3f2c9a4e-8b1d-4c6e-9f0a-7d5e2b1c4a98'],
    ['29115-34620561-1'],
    ['4bf92f3577b34da6a3ce929d0e0e4736'],
  ])('keeps a sane incoming id %p', (id) => {
    expect(assign(id)).toBe(id);
  });

  it.each([
    [undefined],
    [''],
    ['has space'],
    ['x'.repeat(65)],
    ['0712345678'],
    ['sale-254712345678'],
    ['254712345678_1'],
    ['0712345678x'],
    ['pos.0712345678'],
    ['0712-345-678'],
    ['ws_CO_02122026034130999712345678'],
    ['abc123456789'],
  ])('replaces %p with a UUID (never logs a phone number as the id)', (incoming) => {
    expect(assign(incoming)).toMatch(UUID);
  });
});

describe('safeError (issue 8.7: every part of a logged error is scrubbed)', () => {
  const body =
    '{"Body":{"stkCallback":{"CheckoutRequestID":"ws_CO_13102022154520280706803305","CallbackMetadata":{"Item":[{"Name":"PhoneNumber","Value":254706803305}]}}}}';
  /** What drizzle throws for a failed insert: the params in the message (and so in the stack's first lines), the pg error as cause. */
  function drizzleError(): Error {
    const pg = Object.assign(new Error('new row for relation "callback_inbox" violates check constraint "c1"'), {
      name: 'error',
      code: '23514',
      table: 'callback_inbox',
      constraint: 'c1',
      detail: `Failing row contains (42, mpesa, t, ws_CO_13102022154520280706803305, ${body}).`,
    });
    const err = new Error(`Failed query: insert into "callback_inbox" ("raw_body") values ($1)\nparams: ${body}`, {
      cause: pg,
    });
    err.name = 'DrizzleQueryError';
    return err;
  }

  it('issue 8.7: keeps type, SQLSTATE, names and frames; drops params from message and stack, values from detail', () => {
    const safe = safeError(drizzleError());
    const text = JSON.stringify(safe);
    for (const leak of ['254706803305', '706803305', 'PhoneNumber', 'params:']) expect(text).not.toContain(leak);
    expect(safe).toMatchObject({
      type: 'DrizzleQueryError',
      message: 'Failed query: insert into "callback_inbox" ("raw_body") values ($1)',
      cause: {
        type: 'error',
        code: '23514',
        table: 'callback_inbox',
        constraint: 'c1',
        detail: 'Failing row contains (…).',
        message: expect.stringContaining('violates check constraint'),
      },
    });
    expect(safe.stack).toMatch(/^\s+at /);
  });

  it('issue 8.7: keeps the column names of a unique violation, not the value', () => {
    const err = Object.assign(new Error('duplicate key value violates unique constraint "payments_checkout_uq"'), {
      code: '23505',
      detail: 'Key (checkout_request_id)=(ws_CO_13102022154520280706803305) already exists.',
    });
    expect(safeError(err)).toMatchObject({ code: '23505', detail: 'Key (checkout_request_id)=(…) already exists.' });
  });

  it('issue 8.7: masks phone numbers and CheckoutRequestID tails in messages and in every cause', () => {
    const inner = new Error('M-Pesa says ws_CO_13102022154520280706803305 for 0712345678 / 712345678');
    const outer = new Error('query failed for +254712345678', { cause: new Error('wrapped', { cause: inner }) });
    const safe = safeError(outer);
    expect(JSON.stringify(safe)).not.toMatch(/706803305|712345678/);
    expect((safe.cause as { cause: { message: string } }).cause.message).toBe(
      'M-Pesa says ws_CO_13102022154520280*******05 for 07******78 / 71*****78',
    );
    expect(safeMessage(outer)).toBe('query failed for +2547******78');
    expect(safeMessage(drizzleError())).not.toContain('params');
  });

  it('issue 8.7: follows at most 3 causes (a cyclic chain ends)', () => {
    const a = new Error('a') as Error & { cause?: unknown };
    const b = new Error('b', { cause: a });
    a.cause = b;
    let depth = 0;
    for (let c: unknown = safeError(a); c; c = (c as { cause?: unknown }).cause) depth++;
    expect(depth).toBe(4);
  });

  it('non-errors become a scrubbed message', () => {
    expect(safeError('failed for 254712345678')).toEqual({ message: 'failed for 2547******78' });
  });
});

describe('prettyDestination (development logs)', () => {
  const lines = (input: object[]) => {
    const out: string[] = [];
    const d = prettyDestination({ write: (s: string) => out.push(s) });
    for (const o of input) d.write(`${JSON.stringify(o)}\n`);
    return out;
  };

  it('one readable line per entry, context first; Nest boot lines below warn left out', () => {
    const out = lines([
      { level: 30, time: 0, context: 'RouterExplorer', msg: 'Mapped {/orders, POST} route' },
      { level: 30, time: 0, context: 'InstanceLoader', msg: 'AppModule dependencies initialized' },
      { level: 40, time: 0, context: 'RoutesResolver', msg: 'a warning still shows' },
      { level: 30, time: 0, context: 'PaymentsService', msg: 'push sent', pid: 1, hostname: 'vm' },
    ]);
    expect(out).toHaveLength(2);
    expect(out[0]).toMatch(/WARN: \[RoutesResolver\] a warning still shows\n$/);
    expect(out[1]).toMatch(/^\[\d\d:\d\d:\d\d\] INFO: \[PaymentsService\] push sent\n$/);
    expect(out[1]).not.toContain('hostname');
  });

  it('a request is its message: the req/res objects are not printed', () => {
    const [line] = lines([
      {
        level: 30,
        time: 0,
        req: { id: 'r1', method: 'GET', url: '/orders/X', headers: { authorization: '[redacted]' } },
        res: { statusCode: 200 },
        responseTime: 3,
        msg: 'GET /orders/X → 200 in 3 ms',
      },
    ]);
    expect(line).toMatch(/INFO: GET \/orders\/X → 200 in 3 ms\n$/);
    expect(line).not.toContain('authorization');
  });
});
