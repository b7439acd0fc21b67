/**
 * Issue 8, findings 8, 9 and 10, over real HTTP: tokens must expire (and not in ten years), errors
 * Node raises before Express sees the request get the API's error shape, and a crafted review cursor
 * is a 400, never a 500 from the database.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { sql } from 'drizzle-orm';
import { decode, sign } from 'jsonwebtoken';
import { MAX_TOKEN_LIFETIME_SECONDS, mintToken } from '../src/auth/token';
import { b64url, bearer, claims, hs256, jwt, nowSeconds } from './bad-input/harness';
import { startTestApp, tableCounts, TEST_JWT_SECRET, TestApp } from './helpers/test-app';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t?.close();
});

/** One raw HTTP/1.1 exchange: whatever bytes the server sends until it closes the connection. */
function rawExchange(
  port: number,
  request: string | Buffer,
): Promise<{ status: number; headers: Record<string, string>; body: string; raw: string }> {
  return new Promise((resolvePromise, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.setTimeout(15_000, () => socket.destroy(new Error('no answer within 15 s')));
    socket.on('connect', () => socket.write(request));
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', (err) => (chunks.length ? undefined : reject(err)));
    socket.on('close', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const [head, ...rest] = raw.split('\r\n\r\n');
      const [statusLine, ...headerLines] = (head ?? '').split('\r\n');
      const headers = Object.fromEntries(
        headerLines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
      );
      resolvePromise({
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0),
        headers,
        body: rest.join('\r\n\r\n'),
        raw,
      });
    });
  });
}

const port = () => Number(new URL(t.baseUrl).port);

describe('issue 8.8: a JWT must expire, within the maximum lifetime', () => {
  const get = (token: string) => t.http().get('/payments/review').set('Authorization', bearer(token));
  const manager = (overrides: Record<string, unknown> = {}) =>
    claims({ sub: 'manager-1', role: 'manager', ...overrides });
  const withoutExp = (c: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(c).filter(([k, v]) => k !== 'exp' && v !== undefined));

  it('issue 8.8: a token without exp is refused (it would be valid forever)', async () => {
    for (const token of [
      jwt(withoutExp(manager())),
      jwt(withoutExp(manager({ iat: undefined }))),
      hs256({ alg: 'HS256', typ: 'JWT' }, withoutExp(manager())),
    ]) {
      const res = await get(token);
      expect({ status: res.status, code: res.body.code }).toEqual({ status: 401, code: 'UNAUTHORIZED' });
      expect(res.body.message).toContain('"exp"');
    }
  });

  it('issue 8.8: a token that lives longer than the maximum lifetime is refused', async () => {
    const now = nowSeconds();
    for (const c of [
      manager({ iat: now, exp: now + 10 * 365 * 86400 }), // ten years
      manager({ iat: now, exp: now + MAX_TOKEN_LIFETIME_SECONDS + 120 }), // just over the maximum
      manager({ iat: undefined, exp: now + MAX_TOKEN_LIFETIME_SECONDS + 3600 }), // no iat: counted from now
      manager({ iat: now + 5 * 365 * 86400, exp: now + 5 * 365 * 86400 + 60 }), // an iat in the future does not help
    ]) {
      const res = await get(jwt(Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined))));
      expect({ status: res.status, code: res.body.code }).toEqual({ status: 401, code: 'UNAUTHORIZED' });
      expect(res.body.message).toContain('lifetime');
    }
  });

  it('issue 8.8: tokens within the maximum lifetime are accepted (an hour; a full day issued an hour ago)', async () => {
    const now = nowSeconds();
    expect((await get(jwt(manager()))).status).toBe(200);
    expect((await get(jwt(manager({ iat: now - 3600, exp: now - 3600 + MAX_TOKEN_LIFETIME_SECONDS })))).status).toBe(
      200,
    );
    expect(
      (await get(mintToken(TEST_JWT_SECRET, { sub: 'manager-1', shopId: 'shop-1', role: 'manager' }))).status,
    ).toBe(200);
  });

  it('issue 8.8: tokens we mint always expire, and never later than the maximum lifetime', () => {
    const minted = decode(mintToken(TEST_JWT_SECRET, { sub: 'c', shopId: 'shop-1', role: 'cashier' })) as {
      iat: number;
      exp: number;
    };
    expect(minted.exp - minted.iat).toBe(12 * 3600);
    expect(() =>
      mintToken(
        TEST_JWT_SECRET,
        { sub: 'c', shopId: 'shop-1', role: 'cashier' },
        { expiresInSeconds: MAX_TOKEN_LIFETIME_SECONDS + 1 },
      ),
    ).toThrow(/at most/);
    expect(() =>
      mintToken(TEST_JWT_SECRET, { sub: 'c', shopId: 'shop-1', role: 'cashier' }, { expiresInSeconds: 0 }),
    ).toThrow();
    expect(MAX_TOKEN_LIFETIME_SECONDS).toBe(24 * 3600);
  });

  it('issue 8.8: the token command refuses --expires beyond the maximum and mints within it', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'token-cli-'));
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, ['-r', '@swc-node/register', resolve(__dirname, '../src/cli/token.ts'), ...args], {
        cwd: resolve(__dirname, '..'),
        encoding: 'utf8',
        env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', JWT_SECRET: TEST_JWT_SECRET, DATA_DIR: dataDir },
        timeout: 60_000,
      });
    const tooLong = cli('--expires', String(MAX_TOKEN_LIFETIME_SECONDS + 1));
    expect(tooLong.status).toBe(2);
    expect(tooLong.stderr).toContain('--expires must be at most 86400');
    const ok = cli('--expires', '3600', '--role', 'manager');
    expect(ok.status).toBe(0);
    const c = decode(ok.stdout.trim()) as { iat: number; exp: number; role: string };
    expect({ lifetime: c.exp - c.iat, role: c.role }).toEqual({ lifetime: 3600, role: 'manager' });
    rmSync(dataDir, { recursive: true, force: true });
  }, 90_000);

  it('still tells an expired token apart (TOKEN_EXPIRED)', async () => {
    const res = await get(
      sign(manager({ iat: nowSeconds() - 7200, exp: nowSeconds() - 3600 }), TEST_JWT_SECRET, { algorithm: 'HS256' }),
    );
    expect({ status: res.status, code: res.body.code }).toEqual({ status: 401, code: 'TOKEN_EXPIRED' });
  });
});

describe("issue 8.9: errors Node raises before routing are answered in the API's error shape", () => {
  it('issue 8.9: headers over 16 kB → 431 with a JSON error body, and the server keeps serving', async () => {
    const res = await rawExchange(
      port(),
      `GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`,
    );
    expect(res.status).toBe(431);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers.connection).toBe('close');
    expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(res.body));
    const body = JSON.parse(res.body);
    expect(body).toEqual({
      statusCode: 431,
      code: 'REQUEST_HEADER_FIELDS_TOO_LARGE',
      message: expect.stringContaining('16 KB'),
      requestId: expect.any(String),
    });
    expect(res.headers['x-request-id']).toBe(body.requestId);
    expect((await t.http().get('/health')).status).toBe(200);
  });

  it('issue 8.9: a big cookie through an ordinary client gets the same 431 body', async () => {
    const res = await t
      .http()
      .get('/orders/ORD-1')
      .set('Authorization', bearer(t.token()))
      .set('Cookie', `session=${'x'.repeat(20_000)}`);
    expect(res.status).toBe(431);
    expect(res.body).toMatchObject({ statusCode: 431, code: 'REQUEST_HEADER_FIELDS_TOO_LARGE' });
  });

  it.each([
    ['a header line without a colon', 'GET /health HTTP/1.1\r\nHost: x\r\nThis is not a header\r\n\r\n'],
    ['an invalid method token', 'G@T /health HTTP/1.1\r\nHost: x\r\n\r\n'],
    [
      'both Content-Length and Transfer-Encoding',
      'POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}',
    ],
  ])('issue 8.9: malformed HTTP (%s) → 400 with a JSON error body', async (_what, req) => {
    const res = await rawExchange(port(), req);
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(res.body)).toEqual({
      statusCode: 400,
      code: 'BAD_REQUEST',
      message: expect.stringContaining('not valid HTTP'),
      requestId: expect.any(String),
    });
    expect((await t.http().get('/health')).status).toBe(200);
  });
});

describe("review: an HTTP/1.1 request without a Host header gets a 400 in the API's error shape", () => {
  it('review: GET without Host → 400 MISSING_HOST_HEADER with a JSON body and the X-Request-Id it names, connection closed; the server keeps serving', async () => {
    const res = await rawExchange(port(), 'GET /health HTTP/1.1\r\nX-Request-Id: review-no-host-1\r\n\r\n');
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers.connection).toBe('close');
    expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(res.body));
    expect(JSON.parse(res.body)).toEqual({
      statusCode: 400,
      code: 'MISSING_HOST_HEADER',
      message: expect.stringContaining('Host header'),
      requestId: 'review-no-host-1',
    });
    expect(res.headers['x-request-id']).toBe('review-no-host-1');
    expect((await t.http().get('/health')).status).toBe(200);
  });

  it('review: a callback without Host is refused before routing: 400, nothing stored', async () => {
    const before = await tableCounts(t.db);
    const body = JSON.stringify({
      Body: {
        stkCallback: {
          MerchantRequestID: '1-2-3',
          CheckoutRequestID: 'ws_CO_1',
          ResultCode: 1032,
          ResultDesc: 'Request cancelled by user',
        },
      },
    });
    const res = await rawExchange(
      port(),
      `POST /payments/callback HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    expect({ status: res.status, code: JSON.parse(res.body).code }).toEqual({
      status: 400,
      code: 'MISSING_HOST_HEADER',
    });
    expect(await tableCounts(t.db)).toEqual(before);
  });

  it('review: HTTP/1.0 needs no Host (as in Node) and an empty Host is a Host', async () => {
    expect((await rawExchange(port(), 'GET /health HTTP/1.0\r\n\r\n')).status).toBe(200);
    expect((await rawExchange(port(), 'GET /health HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n')).status).toBe(200);
  });
});

describe('issue 8.10: a crafted review cursor is a 400 INVALID_CURSOR, never a 500', () => {
  const manager = () => bearer(t.token('shop-1', 'manager', 'manager-1'));
  const list = (cursor: string) => t.http().get('/payments/review').query({ cursor }).set('Authorization', manager());
  const id = randomUUID();

  it.each([
    ['the largest JS date (+275760)', `+275760-09-13T00:00:00.000Z|${id}`],
    ['year 0', `0000-01-01T00:00:00.000Z|${id}`],
    ['a negative year', `-000001-01-01T00:00:00.000Z|${id}`],
    ['a year before any payment (1900)', `1900-01-01T00:00:00.000Z|${id}`],
    ['a date that is not the ISO form this endpoint writes', `2026-11-26|${id}`],
    ['a time zone offset instead of Z', `2026-11-26T10:00:00.000+03:00|${id}`],
    ['an impossible calendar date', `2026-02-30T10:00:00.000Z|${id}`],
    ['36 dashes as the id', `2026-11-26T10:00:00.000Z|${'-'.repeat(36)}`],
    ['an id that is no UUID', `2026-11-26T10:00:00.000Z|${'g'.repeat(8)}-aaaa-aaaa-aaaa-${'a'.repeat(12)}`],
    ['a third part', `2026-11-26T10:00:00.000Z|${id}|x`],
  ])('issue 8.10: %s', async (_what, decoded) => {
    const res = await list(b64url(decoded));
    expect({ status: res.status, code: res.body.code, message: res.body.message }).toEqual({
      status: 400,
      code: 'INVALID_CURSOR',
      message: 'cursor is not a value this endpoint returned',
    });
  });

  it('issue 8.10: a well-formed cursor still pages (empty page)', async () => {
    const res = await list(b64url(`2026-11-26T10:00:00.123Z|${id}`));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ items: [], nextCursor: null });
  });
});

describe('the Idempotency-Key request hash cannot be reversed to the customer phone', () => {
  it('stores a keyed hash of the request, not a plain SHA-256 of a body holding the phone; replays still match', async () => {
    const auth = bearer(t.token('shop-hash', 'cashier', 'cashier-1'));
    const orderId = `ORD-HASH-${randomUUID().slice(0, 8)}`;
    expect((await t.http().post('/orders').set('Authorization', auth).send({ id: orderId, total: 50 })).status).toBe(
      201,
    );
    const body = { orderId, amount: 50, phoneNumber: '0712345678' };
    const key = `hash-${randomUUID()}`;
    const first = await t
      .http()
      .post('/payments/stk-push')
      .set('Authorization', auth)
      .set('Idempotency-Key', key)
      .send(body);
    expect(first.status).toBe(201);

    const res = await t.db.execute(
      sql`select request_hash from idempotency_keys where shop_id = 'shop-hash' and key = ${key}`,
    );
    const rows =
      (res as unknown as { rows?: { request_hash: string }[] }).rows ?? (res as unknown as { request_hash: string }[]);
    const stored = rows[0].request_hash;
    // What anyone with the table could recompute for each candidate phone before: sha256(route \n canonical body).
    const canonical = JSON.stringify(Object.fromEntries(Object.entries(body).sort(([a], [b]) => a.localeCompare(b))));
    const plain = createHash('sha256').update(`POST /payments/stk-push\n${canonical}`).digest('hex');
    expect(stored).toMatch(/^[0-9a-f]{64}$/);
    expect(stored).not.toBe(plain);

    // Same key + same body in another key order replays; another phone under the same key is refused.
    const replay = await t
      .http()
      .post('/payments/stk-push')
      .set('Authorization', auth)
      .set('Idempotency-Key', key)
      .send({ phoneNumber: '0712345678', amount: 50, orderId });
    expect({
      status: replay.status,
      replayed: replay.headers['idempotent-replayed'],
      paymentId: replay.body.paymentId,
    }).toEqual({ status: 201, replayed: 'true', paymentId: first.body.paymentId });
    const other = await t
      .http()
      .post('/payments/stk-push')
      .set('Authorization', auth)
      .set('Idempotency-Key', key)
      .send({ ...body, phoneNumber: '0712345679' });
    expect({ status: other.status, code: other.body.code }).toEqual({ status: 409, code: 'IDEMPOTENCY_KEY_REUSED' });
  });
});
