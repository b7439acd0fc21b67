/**
 * Test-only fake Daraja built on node:http (no dependency on packages/daraja-simulator).
 * Each route has a replaceable handler; every request is recorded.
 */
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Logger } from '@nestjs/common';
import type { ProviderErrorKind } from '../provider-errors';
import type { DarajaAccount } from './daraja.types';
import { DarajaService, DarajaServiceOptions } from './daraja.service';

export interface RecordedRequest {
  method: string;
  path: string;
  url: string;
  headers: IncomingMessage['headers'];
  rawBody: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read whatever JSON the client sent, field by field
  json: any;
  /** The client's port: a new one per connection. */
  remotePort?: number;
}

export interface FakeReply {
  status: number;
  /** Objects are sent as JSON; strings verbatim; undefined = empty body. */
  body?: unknown;
  headers?: Record<string, string>;
  delayMs?: number;
}

/** 'hang' = never answer; 'destroy' = drop the connection (ECONNRESET / socket hang up). */
export type FakeHandler = (req: RecordedRequest, nth: number) => FakeReply | 'hang' | 'destroy';

export const OAUTH_PATH = '/oauth/v1/generate';
export const PUSH_PATH = '/mpesa/stkpush/v1/processrequest';
export const QUERY_PATH = '/mpesa/stkpushquery/v1/query';
export const REVERSAL_PATH = '/mpesa/reversal/v1/request';
export const STATUS_PATH = '/mpesa/transactionstatus/v1/query';

/** Daraja's synchronous acceptance of a Reversal / Transaction Status request. */
export const okAsync = (n = 1): FakeReply => ({
  status: 200,
  body: {
    OriginatorConversationID: `f1e2-4b95-a71d-b30d3cdbb7a77352${n}`,
    ConversationID: `AG_20210706_20106e9209f64bebd05${n}`,
    ResponseCode: '0',
    ResponseDescription: 'Accept the service request successfully.',
  },
});

export const okPush = (): FakeReply => ({
  status: 200,
  body: {
    MerchantRequestID: '2654-4b64-97ff-b827b542881d3130',
    CheckoutRequestID: 'ws_CO_1007202409152617172396192',
    ResponseCode: '0',
    ResponseDescription: 'Success. Request accepted for processing',
    CustomerMessage: 'Success. Request accepted for processing',
  },
});

/** Matches the ProviderError('mpesa', kind, ...) a failed Daraja call becomes. */
export const mpesaError = (kind: ProviderErrorKind) =>
  expect.objectContaining({ name: 'ProviderError', provider: 'mpesa', kind });

export const darajaError = (status: number, errorCode: string, errorMessage: string): FakeReply => ({
  status,
  body: { requestId: '1c5b-4ba8-815c-ac45c57a3db01495926', errorCode, errorMessage },
});

export class FakeDaraja {
  readonly requests: RecordedRequest[] = [];
  private issued = 0;
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  private readonly hanging = new Set<ServerResponse>();
  baseUrl = '';

  oauth: FakeHandler = () => ({ status: 200, body: { access_token: this.nextToken(), expires_in: '3599' } });
  push: FakeHandler = () => okPush();
  query: FakeHandler = () => ({
    status: 500,
    body: { requestId: 'ws_CO_1', errorCode: '500.001.1001', errorMessage: 'The transaction is being processed' },
  });
  reversal: FakeHandler = (_r, n) => okAsync(n);
  status: FakeHandler = (_r, n) => okAsync(n);
  /** Any other product path (Dynamic QR, Pull Transactions), by path. */
  products: Record<string, FakeHandler> = {};

  nextToken(): string {
    this.issued += 1;
    return `tok-${this.issued}`;
  }

  count(path: string): number {
    return this.requests.filter((r) => r.path === path).length;
  }

  of(path: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => this.handle(req, res));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    this.baseUrl = `http://127.0.0.1:${port}`;
    return this.baseUrl;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const res of this.hanging) res.destroy();
    this.hanging.clear();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = rawBody ? JSON.parse(rawBody) : undefined;
      } catch {
        json = undefined;
      }
      const url = req.url ?? '/';
      const path = url.split('?')[0];
      const rec: RecordedRequest = {
        method: req.method ?? '',
        path,
        url,
        headers: req.headers,
        rawBody,
        json,
        remotePort: req.socket.remotePort,
      };
      this.requests.push(rec);
      const handler =
        path === OAUTH_PATH
          ? this.oauth
          : path === PUSH_PATH
            ? this.push
            : path === QUERY_PATH
              ? this.query
              : path === REVERSAL_PATH
                ? this.reversal
                : path === STATUS_PATH
                  ? this.status
                  : this.products[path];
      const nth = this.count(path);
      const reply = handler ? handler(rec, nth) : darajaError(404, '404.001.01', 'Resource not found');
      if (reply === 'hang') {
        this.hanging.add(res);
        return;
      }
      if (reply === 'destroy') {
        req.socket.destroy();
        return;
      }
      const send = () => {
        const body =
          reply.body === undefined ? '' : typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
        const headers: Record<string, string> = { ...(reply.headers ?? {}) };
        if (typeof reply.body === 'object' && reply.body !== null) headers['content-type'] = 'application/json';
        res.writeHead(reply.status, headers);
        res.end(body);
      };
      if (reply.delayMs) setTimeout(send, reply.delayMs);
      else send();
    });
  }
}

/** A port on which nothing listens (connection refused). */
export async function deadBaseUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

// ---------------------------------------------------------------------------------------
// Service factory shared by the DarajaService specs.
// ---------------------------------------------------------------------------------------

export const SANDBOX_PASSKEY = 'bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919';
export const CONSUMER_KEY = 'ck_SECRET_consumer_key_123';
export const CONSUMER_SECRET = 'cs_SECRET_consumer_secret_456';
export const SIGNING_SECRET = 'callback-signing-secret-0123456789abcdef';

export function makeAccount(baseUrl: string, patch: Partial<DarajaAccount> = {}): DarajaAccount {
  return {
    id: 'default',
    baseUrl,
    consumerKey: CONSUMER_KEY,
    consumerSecret: CONSUMER_SECRET,
    shortcode: '174379',
    passkey: SANDBOX_PASSKEY,
    transactionType: 'paybill',
    ...patch,
  };
}

export function makeServiceOptions(
  baseUrl = 'http://127.0.0.1:9',
  patch: Partial<DarajaServiceOptions> = {},
  accountPatch: Partial<DarajaAccount> = {},
): DarajaServiceOptions {
  return {
    defaultAccount: makeAccount(baseUrl, accountPatch),
    timeoutMs: 2000,
    tokenRefreshMarginSeconds: 300,
    callbackBaseUrl: 'https://pay.example.com/payments/callback',
    callbackSigningSecret: SIGNING_SECRET,
    queryRetry: { retries: 2, baseDelayMs: 1, maxDelayMs: 5 },
    ...patch,
  };
}

export function makeService(
  baseUrl: string,
  patch: Partial<DarajaServiceOptions> = {},
  accountPatch: Partial<DarajaAccount> = {},
) {
  return new DarajaService(makeServiceOptions(baseUrl, patch, accountPatch));
}

/** Silences Nest's Logger and records every line it would have printed. */
export function captureLogs(): { lines: string[]; restore: () => void } {
  const lines: string[] = [];
  const spies = (['log', 'warn', 'error', 'debug', 'verbose', 'fatal'] as const).map((level) =>
    jest.spyOn(Logger.prototype, level).mockImplementation((...args: unknown[]) => {
      lines.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
    }),
  );
  return { lines, restore: () => spies.forEach((s) => s.mockRestore()) };
}

export const validPush = (patch: Record<string, unknown> = {}) => ({
  phoneNumber: '254708374149',
  amount: 10,
  accountReference: 'INV10023',
  transactionDesc: 'Order 10023',
  callbackUrl: 'https://pay.example.com/payments/callback/pay_1/tok',
  ...patch,
});

/**
 * A fresh FakeDaraja (started) and captured logs around every test of the calling describe block,
 * handed to `use` before each test; afterwards the logs are restored, spies undone and the fake closed.
 */
export function withFakeDaraja(use: (fake: FakeDaraja, logs: ReturnType<typeof captureLogs>) => void): void {
  let fake: FakeDaraja;
  let logs: ReturnType<typeof captureLogs>;
  beforeEach(async () => {
    logs = captureLogs();
    fake = new FakeDaraja();
    await fake.start();
    use(fake, logs);
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    logs.restore();
    await fake.close();
  });
}
