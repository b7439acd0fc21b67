/**
 * The bare handler's durable write (bench/lib/bare-callback-server.ts, mode ingest) behind plain
 * Express 5 with its JSON body parser — no Nest, no logging, no ORM — to see what the HTTP layer
 * alone costs. Opt-in target `express` of callbacks.bench.ts.
 * Env: DATABASE_URL, PORT, CALLBACK_SIGNING_SECRET, BENCH_DB_POOL_SIZE (default 10).
 */
import type { Request, Response } from 'express';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { verifyCallbackToken } from '../../apps/api/src/payments/providers/mpesa/callback-token';
import { pg } from './deps';
import { memorySnapshot, serveParent } from './procs';

const express = createRequire(resolve(__dirname, '../../apps/api/package.json'))(
  'express',
) as typeof import('../../apps/api/node_modules/@types/express');
const SECRET = process.env.CALLBACK_SIGNING_SECRET ?? '';
const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL,
  max: Number(process.env.BENCH_DB_POOL_SIZE ?? 10),
});
pool.on('error', () => undefined);

const app = express();
app.disable('x-powered-by');
app.use(
  express.json({ limit: '64kb', verify: (req, _res, buf) => ((req as Request & { rawBody?: Buffer }).rawBody = buf) }),
);
app.post('/payments/callback/:paymentId/:token', (req: Request, res: Response) => {
  const paymentId = String(req.params.paymentId);
  const stk = (req.body as { Body?: { stkCallback?: { CheckoutRequestID?: unknown } } })?.Body?.stkCallback;
  const checkout = typeof stk?.CheckoutRequestID === 'string' ? stk.CheckoutRequestID : null;
  const verified = verifyCallbackToken(SECRET, paymentId, String(req.params.token));
  pool
    .query(
      'insert into callback_inbox (provider, url_payment_id, verified, checkout_request_id, source_ip, raw_body) values ($1, $2, $3, $4, $5, $6) returning id',
      [
        'mpesa',
        paymentId.length <= 64 ? paymentId : null,
        verified,
        checkout,
        req.socket.remoteAddress ?? null,
        (req as Request & { rawBody?: Buffer }).rawBody?.toString('utf8') ?? '',
      ],
    )
    .then(
      () => res.status(200).json({ ResultCode: 0, ResultDesc: 'Accepted' }),
      () => res.status(500).json({ statusCode: 500, message: 'Internal error' }),
    );
});

const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  serveParent(
    { port: (server.address() as { port: number }).port, mode: 'express' },
    { mem: () => memorySnapshot() },
    async () => {
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await closed;
      await pool.end();
    },
  );
});
