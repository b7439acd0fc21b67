/**
 * Test-only fake HTTP server on node:http for the provider specs (no nock, no axios mocks, no
 * dependency on packages/card-simulators). Routes are "METHOD /path" (query excluded) with a
 * replaceable handler; every request is recorded.
 */
import { Logger } from '@nestjs/common';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  url: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  rawBody: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read whatever JSON the adapter sent, field by field
  json: any;
}

export interface FakeReply {
  status: number;
  /** Objects/arrays are sent as JSON; strings verbatim; undefined = empty body. */
  body?: unknown;
  headers?: Record<string, string>;
}

/** 'hang' = never answer; 'destroy' = drop the connection after reading the request. */
export type FakeHandler = (
  req: RecordedRequest,
  nth: number,
) => FakeReply | 'hang' | 'destroy' | Promise<FakeReply | 'hang' | 'destroy'>;

export class FakeProviderServer {
  readonly requests: RecordedRequest[] = [];
  readonly routes = new Map<string, FakeHandler>();
  baseUrl = '';
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  private readonly hanging = new Set<ServerResponse>();

  on(method: 'GET' | 'POST', path: string, handler: FakeHandler): this {
    this.routes.set(`${method} ${path}`, handler);
    return this;
  }

  of(method: string, path: string): RecordedRequest[] {
    return this.requests.filter((r) => r.method === method && r.path === path);
  }

  count(method: string, path: string): number {
    return this.of(method, path).length;
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
      void this.respond(req, res, Buffer.concat(chunks).toString('utf8'));
    });
  }

  private async respond(req: IncomingMessage, res: ServerResponse, rawBody: string): Promise<void> {
    let json: unknown;
    try {
      json = rawBody ? JSON.parse(rawBody) : undefined;
    } catch {
      json = undefined;
    }
    const url = req.url ?? '/';
    const parsed = new URL(url, 'http://fake.local');
    const rec: RecordedRequest = {
      method: req.method ?? '',
      path: parsed.pathname,
      url,
      query: parsed.searchParams,
      headers: req.headers,
      rawBody,
      json,
    };
    this.requests.push(rec);
    const handler = this.routes.get(`${rec.method} ${rec.path}`);
    const nth = this.count(rec.method, rec.path);
    const reply = handler ? await handler(rec, nth) : { status: 404, body: '<html>Not Found</html>' };
    if (reply === 'hang') {
      this.hanging.add(res);
      return;
    }
    if (reply === 'destroy') {
      req.socket.destroy();
      return;
    }
    const body =
      reply.body === undefined ? '' : typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
    const headers: Record<string, string> = { ...(reply.headers ?? {}) };
    if (typeof reply.body === 'object' && reply.body !== null && !headers['content-type'])
      headers['content-type'] = 'application/json';
    res.writeHead(reply.status, headers);
    res.end(body);
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

/** Resolves with the rejection of `p` (fails the test if it resolves). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests assert on the thrown error's fields
export async function rejectionOf(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject');
}
