import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import type { Payment } from '../src/payment';
import { watchPayment, type WatchError, type WatchMode } from '../src/watch';

const ID = '3f2c9a4e-8b1d-4c6e-9f0a-7d5e2b1c4a98';

function payment(status: Payment['status'], extra: Partial<Payment> = {}): Payment {
  return {
    paymentId: ID,
    orderId: 'ORD-1',
    status,
    amount: 100,
    currency: 'KES',
    provider: 'mpesa',
    createdAt: '2026-12-03T06:00:00.000Z',
    updatedAt: `2026-12-03T06:00:0${['pending', 'completed', 'cancelled'].indexOf(status) + 1}.000Z`,
    ...extra,
  };
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function serve(handler: Handler): Promise<{ url: string; requests: IncomingMessage[]; close(): Promise<void> }> {
  const requests: IncomingMessage[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req);
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const sse = (res: ServerResponse) =>
  res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store' });
const event = (id: number, p: Payment) => `id: ${id}\nevent: payment\ndata: ${JSON.stringify(p)}\n\n`;
const json = (res: ServerResponse, status: number, body: unknown) =>
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));

describe('watchPayment', () => {
  it('follows the stream, reconnects with Last-Event-ID after a drop and ignores a replayed event', async () => {
    let connection = 0;
    const srv = await serve((req, res) => {
      if (req.url !== `/payments/${ID}/events`) return json(res, 500, { code: 'UNEXPECTED' });
      connection++;
      sse(res);
      if (connection === 1) {
        res.write('retry: 20\n: ping\n\n' + event(1, payment('pending')));
        setTimeout(() => res.destroy(), 30); // the connection drops mid-payment
      } else {
        // At-least-once: the server replays event 1 (changed here, to show it is dropped by its id), then the news.
        res.write(
          event(1, payment('pending', { resultDesc: 'replayed' })) +
            event(2, payment('completed', { mpesaReceiptNumber: 'RCPT1' })),
        );
        res.end('event: end\ndata: {"status":"completed"}\n\n');
      }
    });
    try {
      const updates: Payment[] = [];
      const modes: WatchMode[] = [];
      const watch = watchPayment({ baseUrl: srv.url, token: 'tok-1' }, ID, {
        onUpdate: (p) => updates.push(p),
        onModeChange: (m) => modes.push(m),
      });
      const result = await watch.done;
      expect(result.reason).toBe('final');
      expect(result.payment).toMatchObject({ status: 'completed', mpesaReceiptNumber: 'RCPT1' });
      expect(updates.map((u) => u.status)).toEqual(['pending', 'completed']);
      expect(modes).toEqual(['stream']);
      expect(srv.requests).toHaveLength(2);
      expect(srv.requests[0].headers.authorization).toBe('Bearer tok-1');
      expect(srv.requests[0].headers['last-event-id']).toBeUndefined();
      expect(srv.requests[1].headers['last-event-id']).toBe('1');
      expect(srv.requests[1].headers.accept).toBe('text/event-stream');
    } finally {
      await srv.close();
    }
  });

  it('a stream that goes silent (no ping) is dropped and resumed from the last event id', async () => {
    let connection = 0;
    const srv = await serve((_req, res) => {
      connection++;
      sse(res);
      if (connection === 1)
        res.write(event(1, payment('pending'))); // ...and then nothing, connection open
      else res.end(event(2, payment('completed')) + 'event: end\ndata: {"status":"completed"}\n\n');
    });
    try {
      const errors: string[] = [];
      const result = await watchPayment({ baseUrl: srv.url }, ID, {
        onUpdate: () => undefined,
        onError: (e) => errors.push(e.message),
        streamIdleTimeoutMs: 150,
        reconnectDelayMs: 5,
      }).done;
      expect(result).toMatchObject({ reason: 'final', payment: { status: 'completed' } });
      expect(srv.requests[1].headers['last-event-id']).toBe('1');
      expect(errors).toEqual(['Event stream lost (silent too long)']);
    } finally {
      await srv.close();
    }
  });

  it('after `end`, fetches the payment once when the last event seen was not final', async () => {
    const srv = await serve((req, res) => {
      if (req.url === `/payments/${ID}/events`) {
        sse(res);
        return res.end(event(4, payment('pending')) + 'event: end\ndata: {"status":"cancelled"}\n\n');
      }
      if (req.url === `/payments/${ID}`) return json(res, 200, payment('cancelled'));
      json(res, 404, { code: 'NOT_FOUND' });
    });
    try {
      const updates: string[] = [];
      const result = await watchPayment({ baseUrl: srv.url }, ID, { onUpdate: (p) => updates.push(p.status) }).done;
      expect(result).toMatchObject({ reason: 'final', payment: { status: 'cancelled' } });
      expect(updates).toEqual(['pending', 'cancelled']);
    } finally {
      await srv.close();
    }
  });

  it.each([
    ['404 (an API without the stream)', (res: ServerResponse) => json(res, 404, { code: 'NOT_FOUND' })],
    ['405', (res: ServerResponse) => json(res, 405, { code: 'METHOD_NOT_ALLOWED' })],
    ['200 that is not an event stream', (res: ServerResponse) => json(res, 200, { hello: 'world' })],
  ])('falls back to polling GET /payments/:id when the stream answers %s', async (_name, streamAnswer) => {
    let polls = 0;
    const srv = await serve((req, res) => {
      if (req.url === `/payments/${ID}/events`) return streamAnswer(res);
      if (req.url === `/payments/${ID}`) {
        polls++;
        return json(res, 200, payment(polls < 3 ? 'pending' : 'completed'));
      }
      json(res, 500, {});
    });
    try {
      const updates: string[] = [];
      const modes: WatchMode[] = [];
      const watch = watchPayment({ baseUrl: srv.url, token: () => 'tok-2' }, ID, {
        onUpdate: (p) => updates.push(p.status),
        onModeChange: (m) => modes.push(m),
        pollIntervalMs: 10,
      });
      const result = await watch.done;
      expect(result).toMatchObject({ reason: 'final', payment: { status: 'completed' } });
      expect(updates).toEqual(['pending', 'completed']); // unchanged polls are not repeated
      expect(modes).toEqual(['stream', 'polling']);
      expect(watch.mode).toBe('polling');
      expect(polls).toBe(3);
      expect(srv.requests.filter((r) => r.url === `/payments/${ID}/events`)).toHaveLength(1);
      expect(srv.requests.every((r) => r.headers.authorization === 'Bearer tok-2')).toBe(true);
    } finally {
      await srv.close();
    }
  });

  it('falls back to polling after repeated stream failures (5xx), not on the first one', async () => {
    const srv = await serve((req, res) => {
      if (req.url === `/payments/${ID}/events`) return json(res, 503, { code: 'DATABASE_UNAVAILABLE' });
      json(res, 200, payment('expired'));
    });
    try {
      const errors: WatchError[] = [];
      const result = await watchPayment({ baseUrl: srv.url }, ID, {
        onUpdate: () => undefined,
        onError: (e) => errors.push(e),
        reconnectDelayMs: 5,
        maxStreamFailures: 3,
      }).done;
      expect(result).toMatchObject({ reason: 'final', payment: { status: 'expired' } });
      expect(srv.requests.filter((r) => r.url?.endsWith('/events'))).toHaveLength(3);
      expect(errors.map((e) => [e.fatal, e.status])).toEqual([
        [false, 503],
        [false, 503],
        [false, 503],
      ]);
    } finally {
      await srv.close();
    }
  });

  it('stops with a fatal error when the payment cannot be read (404 NOT_FOUND)', async () => {
    const srv = await serve((_req, res) =>
      json(res, 404, { statusCode: 404, code: 'NOT_FOUND', message: 'Payment not found' }),
    );
    try {
      const ended = jest.fn();
      const result = await watchPayment({ baseUrl: srv.url }, ID, { onUpdate: () => undefined, onEnd: ended }).done;
      expect(result).toMatchObject({
        reason: 'error',
        error: { fatal: true, status: 404, code: 'NOT_FOUND', message: 'Payment not found' },
      });
      expect(ended).toHaveBeenCalledTimes(1);
    } finally {
      await srv.close();
    }
  });

  it('an abort ends an open stream at once', async () => {
    const srv = await serve((_req, res) => {
      sse(res);
      res.write(event(1, payment('pending')));
    });
    try {
      const ac = new AbortController();
      const updates: string[] = [];
      const watch = watchPayment({ baseUrl: srv.url }, ID, {
        onUpdate: (p) => {
          updates.push(p.status);
          ac.abort();
        },
        signal: ac.signal,
      });
      expect(await watch.done).toMatchObject({ reason: 'aborted', payment: { status: 'pending' } });
      expect(updates).toEqual(['pending']);
    } finally {
      await srv.close();
    }
  });
});
