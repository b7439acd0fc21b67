import type { IncomingMessage, ServerResponse } from 'node:http';
import { assignRequestId, redactUrl } from './logging';

describe('redactUrl', () => {
  it.each([
    ['/payments/callback/3f2c9a4e-8b1d-4c6e-9f0a-7d5e2b1c4a98/' + 'ab'.repeat(32), '/payments/callback/3f2c9a4e-8b1d-4c6e-9f0a-7d5e2b1c4a98/[redacted]'],
    ['/payments/callback/p1/tok?x=1', '/payments/callback/p1/[redacted]?x=1'],
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
  ])('%s → %s', (url, expected) => {
    expect(redactUrl(url)).toBe(expected);
  });

  it.each([
    ['/orders/ORD-1001'],
    ['/payments/3f2c9a4e-8b1d-4c6e-9f0a-7d5e2b1c4a98'],
    ['/payments/stk-status?checkoutRequestId=ws_CO_07122026104500123456789012'],
    ['/payments/stk-status?checkoutRequestId=ws_CO_1&merchantRequestId=29115-34620561-1'],
    ['/reconciliation/statements?window=all'],
    ['/orders/20261126104500'],
    ['/orders/1795690859969'],
    ['/payments/callback'],
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

  it('keeps a sane incoming id', () => {
    expect(assign('pos-42.req_7')).toBe('pos-42.req_7');
  });

  it.each([[undefined], [''], ['has space'], ['x'.repeat(65)], ['0712345678'], ['sale-254712345678']])('replaces %p with a UUID (never logs a phone number as the id)', (incoming) => {
    expect(assign(incoming)).toMatch(UUID);
  });
});
