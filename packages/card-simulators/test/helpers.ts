/** Test helpers: fetch wrappers, a merchant-side receiver (webhooks / IPNs / browser redirects), request builders. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export const FLW_KEY = 'FLWSECK_TEST-smartduka-sim-X';
export const FLW_HASH = 'smartduka-sim-secret-hash';
export const PESAPAL_KEY = 'smartduka-pesapal-sim-key';
export const PESAPAL_SECRET = 'smartduka-pesapal-sim-secret';
export const PHONE = '254712345678';

export interface Res {
  status: number;
  headers: Headers;
  text: string;
  // Answers are read field by field in assertions (`res.json.data.link`), as supertest's res.body.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

export async function call(url: string, init: RequestInit = {}): Promise<Res> {
  const res = await fetch(url, { redirect: 'manual', ...init });
  const text = await res.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

export function jsonInit(method: string, body: unknown, headers: Record<string, string> = {}): RequestInit {
  return {
    method,
    headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...headers },
    body: JSON.stringify(body),
  };
}

/** Flutterwave API call with the Bearer secret key (pass key=null for none). */
export function flw(
  baseUrl: string,
  path: string,
  opts: { method?: string; body?: unknown; key?: string | null } = {},
): Promise<Res> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  const key = opts.key === undefined ? FLW_KEY : opts.key;
  if (key !== null) headers['Authorization'] = `Bearer ${key}`;
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  return call(`${baseUrl}${path}`, {
    method: opts.method ?? (opts.body === undefined ? 'GET' : 'POST'),
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
}

export function paymentBody(txRef: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    tx_ref: txRef,
    amount: 2450,
    currency: 'KES',
    redirect_url: 'https://pos.example.co.ke/payments/flutterwave/return',
    payment_options: 'card, mpesa',
    customer: { email: 'walkin+0712345678@pos.example.co.ke', phonenumber: PHONE, name: 'Walk-in customer' },
    customizations: { title: 'Duka POS', description: 'Receipt NBI01-000123' },
    meta: { order_id: 'NBI01-000123', till_id: 'NBI01-T2' },
    ...overrides,
  };
}

let counter = 0;
export function uniqueRef(prefix = 'POS'): string {
  counter += 1;
  return `${prefix}-${Date.now().toString(36)}-${counter}`;
}

/** Creates a Standard link and returns {link, linkPath}. */
export async function createLink(
  baseUrl: string,
  txRef: string,
  overrides: Record<string, unknown> = {},
): Promise<{ link: string; path: string }> {
  const res = await flw(baseUrl, '/v3/payments', { body: paymentBody(txRef, overrides) });
  if (res.status !== 200) throw new Error(`create link failed: ${res.status} ${res.text}`);
  const link = res.json.data.link as string;
  return { link, path: new URL(link).pathname };
}

/** Submits a checkout form like a browser would; returns the raw (unfollowed) answer. */
export function submitForm(url: string, fields: Record<string, string>): Promise<Res> {
  return call(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
}

export async function pesapalToken(baseUrl: string): Promise<string> {
  const res = await call(
    `${baseUrl}/api/Auth/RequestToken`,
    jsonInit('POST', { consumer_key: PESAPAL_KEY, consumer_secret: PESAPAL_SECRET }),
  );
  if (res.json?.status !== '200') throw new Error(`token failed: ${res.text}`);
  return res.json.token as string;
}

export function pesapal(baseUrl: string, token: string | null, path: string, body?: unknown): Promise<Res> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (token !== null) headers['Authorization'] = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  return call(`${baseUrl}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

export function orderBody(
  id: string,
  notificationId: string,
  callbackUrl: string,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    id,
    currency: 'KES',
    amount: 2450.0,
    description: 'Duka POS receipt NBI01-000123',
    callback_url: callbackUrl,
    notification_id: notificationId,
    branch: 'Nairobi CBD',
    billing_address: {
      email_address: '',
      phone_number: '0712345678',
      country_code: 'KE',
      first_name: 'Walk-in',
      middle_name: '',
      last_name: 'Customer',
      line_1: '',
      line_2: '',
      city: 'Nairobi',
      state: '',
      postal_code: '',
      zip_code: '',
    },
    ...overrides,
  };
}

export interface Received {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  raw: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- as Res.json: read field by field in assertions
  json: any;
}

export interface Answer {
  status: number;
  body?: string;
  headers?: Record<string, string>;
}

export interface Receiver {
  url: string;
  received: Received[];
  /** Sets how the receiver answers request number `index` (0-based, all paths). */
  answer: (fn: (r: Received, index: number) => Answer) => void;
  /** Resolves once `count` requests matching `filter` (default: all) have arrived; returns the matching ones. */
  waitFor(count: number, filter?: (r: Received) => boolean, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

export function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  const waiters: Array<{ count: number; filter: (r: Received) => boolean; resolve: (r: Received[]) => void }> = [];
  let responder: (r: Received, index: number) => Answer = () => ({
    status: 200,
    body: '{}',
    headers: { 'Content-Type': 'application/json' },
  });
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const url = new URL(req.url ?? '/', 'http://receiver.local');
      let json: unknown;
      try {
        json = raw === '' ? undefined : JSON.parse(raw);
      } catch {
        json = undefined;
      }
      const record: Received = {
        method: req.method ?? '',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        raw,
        json,
      };
      const index = received.length;
      received.push(record);
      const a = responder(record, index);
      res.writeHead(a.status, a.headers ?? { 'Content-Type': 'application/json' });
      res.end(a.body ?? '');
      for (const w of [...waiters]) {
        const matching = received.filter(w.filter);
        if (matching.length >= w.count) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(matching);
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
        answer: (fn) => {
          responder = fn;
        },
        waitFor(count, filter = () => true, timeoutMs = 4000) {
          const matching = received.filter(filter);
          if (matching.length >= count) return Promise.resolve(matching);
          return new Promise<Received[]>((res, rej) => {
            const timer = setTimeout(
              () => rej(new Error(`receiver got ${received.filter(filter).length}/${count} matching requests`)),
              timeoutMs,
            );
            waiters.push({
              count,
              filter,
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

/** A Pesapal-conformant IPN acknowledgement for whatever was received (GET query or POST body). */
export function pesapalAck(r: Received, status: number | string = 200): Answer {
  const src = r.method === 'GET' ? Object.fromEntries(r.query) : (r.json as Record<string, string>);
  return {
    status: 200,
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      orderNotificationType: src['OrderNotificationType'],
      orderTrackingId: src['OrderTrackingId'],
      orderMerchantReference: src['OrderMerchantReference'],
      status,
    }),
  };
}

/** Polls `check` until it returns a value (for state that changes after an aborted request). */
export async function eventually<T>(check: () => T | undefined, timeoutMs = 4000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() - started > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A settable clock for token / link expiry tests. */
export function manualClock(start = new Date('2026-10-02T09:00:00.000Z')): {
  now: () => Date;
  advance: (ms: number) => void;
} {
  let t = start.getTime();
  return { now: () => new Date(t), advance: (ms) => (t += ms) };
}

/** Receiver filter: requests whose raw body or query mentions `ref` (tx_ref, OrderTrackingId…). */
export function about(ref: string): (r: Received) => boolean {
  return (r) => r.raw.includes(ref) || [...r.query.values()].includes(ref);
}
