/** Test helpers: a raw node:http client, a callback receiver, and Daraja request builders written independently of src/. */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export const KEY = 'smartduka-sim-key';
export const SECRET = 'smartduka-sim-secret';
export const SHORTCODE = '174379';
export const PASSKEY = 'bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919';
export const TILL = '174380';
export const PHONE = '254708374149';

export interface HttpResult {
  status: number;
  statusMessage: string;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: unknown;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** client-side timeout: the request is aborted and rejects with "client timeout" */
  timeoutMs?: number;
}

/** Plain node:http request (no keep-alive, nothing added implicitly). */
export function request(url: string, opts: RequestOptions = {}): Promise<HttpResult> {
  return new Promise<HttpResult>((resolve, reject) => {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(opts.body));
    const req = http.request(url, { method: opts.method ?? 'GET', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text === '' ? undefined : (JSON.parse(text) as unknown);
        } catch {
          json = undefined;
        }
        resolve({
          status: res.statusCode ?? 0,
          statusMessage: res.statusMessage ?? '',
          headers: res.headers,
          text,
          json,
        });
      });
      res.on('error', reject);
    });
    if (opts.timeoutMs !== undefined) req.setTimeout(opts.timeoutMs, () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

export function basic(key: string, secret: string): string {
  return `Basic ${Buffer.from(`${key}:${secret}`).toString('base64')}`;
}

export function oauth(
  baseUrl: string,
  authorization = basic(KEY, SECRET),
  grantType = 'client_credentials',
): Promise<HttpResult> {
  return request(`${baseUrl}/oauth/v1/generate?grant_type=${grantType}`, { headers: { Authorization: authorization } });
}

export async function token(baseUrl: string): Promise<string> {
  const res = await oauth(baseUrl);
  if (res.status !== 200) throw new Error(`oauth failed: ${res.status} ${res.text}`);
  return (res.json as { access_token: string }).access_token;
}

/** Nairobi yyyyMMddHHmmss via Intl (independent of the simulator's offset arithmetic). */
export function nairobiTimestamp(at: Date = new Date()): string {
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone: 'Africa/Nairobi',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(at);
  const get = (type: Intl.DateTimeFormatPartTypes): string => parts.find((p) => p.type === type)?.value ?? '';
  return `${get('year')}${get('month')}${get('day')}${get('hour')}${get('minute')}${get('second')}`;
}

export function password(shortcode: string, passkey: string, timestamp: string): string {
  return Buffer.from(shortcode + passkey + timestamp).toString('base64');
}

export function pushBody(callbackUrl: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const ts = nairobiTimestamp();
  return {
    BusinessShortCode: 174379,
    Password: password(SHORTCODE, PASSKEY, ts),
    Timestamp: ts,
    TransactionType: 'CustomerPayBillOnline',
    Amount: 1,
    PartyA: 254708374149,
    PartyB: 174379,
    PhoneNumber: 254708374149,
    CallBackURL: callbackUrl,
    AccountReference: 'INV10023',
    TransactionDesc: 'Order 10023',
    ...overrides,
  };
}

export function queryBody(checkoutRequestId: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const ts = nairobiTimestamp();
  return {
    BusinessShortCode: '174379',
    Password: password(SHORTCODE, PASSKEY, ts),
    Timestamp: ts,
    CheckoutRequestID: checkoutRequestId,
    ...overrides,
  };
}

export function postJson(
  url: string,
  accessToken: string | undefined,
  body: unknown,
  headers: Record<string, string> = {},
  timeoutMs?: number,
): Promise<HttpResult> {
  const h: Record<string, string> = { 'Content-Type': 'application/json', ...headers };
  if (accessToken !== undefined) h['Authorization'] = `Bearer ${accessToken}`;
  return request(url, { method: 'POST', headers: h, body: JSON.stringify(body), timeoutMs });
}

/** What a client saw: the HTTP answer, or the network failure (client timeout, connection dropped). */
export type CallOutcome = { kind: 'answer'; res: HttpResult } | { kind: 'no_answer'; error: string };

export async function outcomeOf(call: Promise<HttpResult>): Promise<CallOutcome> {
  try {
    return { kind: 'answer', res: await call };
  } catch (err: unknown) {
    return { kind: 'no_answer', error: err instanceof Error ? err.message : String(err) };
  }
}

export function stkPush(baseUrl: string, accessToken: string, body: unknown): Promise<HttpResult> {
  return postJson(`${baseUrl}/mpesa/stkpush/v1/processrequest`, accessToken, body);
}

export function stkQuery(baseUrl: string, accessToken: string, body: unknown): Promise<HttpResult> {
  return postJson(`${baseUrl}/mpesa/stkpushquery/v1/query`, accessToken, body);
}

export interface ReceivedCallback {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  raw: string;
  at: number;
}

export interface Receiver {
  /** Base URL; append a lowercase path without forbidden words, e.g. `${r.url}/hooks/daraja/stk/abc`. */
  url: string;
  received: ReceivedCallback[];
  /** Resolves once `count` callbacks have arrived in total. */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedCallback[]>;
  close(): Promise<void>;
}

export function startReceiver(status = 200): Promise<Receiver> {
  const received: ReceivedCallback[] = [];
  const waiters: Array<{ count: number; resolve: (r: ReceivedCallback[]) => void }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        raw: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      });
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ ResultCode: 0, ResultDesc: 'Accepted' }));
      for (const w of [...waiters]) {
        if (received.length >= w.count) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve([...received]);
        }
      }
    });
  });
  return new Promise<Receiver>((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        received,
        waitFor(count, timeoutMs = 3000) {
          if (received.length >= count) return Promise.resolve([...received]);
          return new Promise<ReceivedCallback[]>((res, rej) => {
            const timer = setTimeout(
              () => rej(new Error(`receiver got ${received.length}/${count} callbacks`)),
              timeoutMs,
            );
            waiters.push({
              count,
              resolve: (r) => {
                clearTimeout(timer);
                res(r);
              },
            });
          });
        },
        close() {
          return new Promise<void>((res) => {
            server.close(() => res());
            server.closeAllConnections();
          });
        },
      });
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Unique lowercase path segment so receivers can tell pushes apart. */
export function uniquePath(label: string): string {
  return `/hooks/daraja/stk/${label}-${createHash('sha1').update(`${label}${Math.random()}`).digest('hex').slice(0, 8)}`;
}

/** Every SimStats counter at zero (spelled out here, independently of src/). */
export const ZERO_STATS = Object.freeze({
  oauthRequests: 0,
  pushRequests: 0,
  queryRequests: 0,
  callbacksSent: 0,
  promptsSent: 0,
  pushErrorsInjected: 0,
  pushSpikeArrests: 0,
  pushTimeouts: 0,
  pushTimeoutsProcessed: 0,
  queryErrorsInjected: 0,
  querySpikeArrests: 0,
  queryTimeouts: 0,
  callbacksDropped: 0,
  callbacksDuplicated: 0,
  callbacksDelayed: 0,
  tokensInvalidated: 0,
});

export type Envelope = { requestId: string; errorCode: string; errorMessage: string };

export function expectEnvelope(res: HttpResult, status: number, errorCode: string, errorMessage: string): void {
  expect(res.status).toBe(status);
  const body = res.json as Envelope;
  expect(Object.keys(body).sort()).toEqual(['errorCode', 'errorMessage', 'requestId']);
  expect(typeof body.requestId).toBe('string');
  expect(body.requestId.length).toBeGreaterThan(0);
  expect(body.errorCode).toBe(errorCode);
  expect(body.errorMessage).toBe(errorMessage);
}
