/**
 * The "practical limit" for callback ingestion: a bare node:http + pg handler, no framework, for
 * POST /payments/callback/<paymentId>/<token>. Benchmark child process (see callbacks.bench.ts).
 *
 * BENCH_BARE_MODE=ingest (default) — the durable write only, i.e. the minimum any correct
 *   receiver must do before acknowledging: read the body (64 KB limit, like the API), parse the
 *   JSON, check the capability token (HMAC), INSERT the same callback_inbox row the API stores
 *   (provider, url payment id, verified, CheckoutRequestID, source IP, raw body; autocommit,
 *   synchronous_commit as configured on the server), answer Daraja's ack JSON.
 * BENCH_BARE_MODE=apply — ingest, then the same statements the API's processing runs, in the
 *   same order (hand-written SQL mirroring PaymentsService.receiveCallback/applyOutcome at the
 *   time of writing): BEGIN; SELECT … FOR UPDATE; [receipt lookup; UPDATE payment]; INSERT
 *   event; COMMIT; [mark order paid]; UPDATE callback_inbox processed. Only the success and
 *   duplicate paths the benchmark sends are mirrored; anything else is a 500 (never silently ok).
 *   The gap between this and the API is framework/ORM/logging overhead, not database work.
 * BENCH_BARE_MODE=lean — a proposal, measured: the same outcome with fewer round trips and
 *   commits. A duplicate (payment already final with its receipt) is recognised in the INSERT
 *   itself and stored as processed (1 statement, 1 commit, the inbox row is the audit record);
 *   a new outcome is applied in ONE transaction that also marks the order paid and the inbox row
 *   processed, the receipt's uniqueness left to its unique index (8 statements counting
 *   BEGIN/COMMIT, 2 commits, vs 9 and 4). Opt-in target `bare-lean` of callbacks.bench.ts.
 *
 * Env: DATABASE_URL, PORT, CALLBACK_SIGNING_SECRET, BENCH_DB_POOL_SIZE (default 10, the API's default).
 */
import http from 'node:http';
import { verifyCallbackToken } from '../../apps/api/src/payments/providers/mpesa/callback-token';
import { pg } from './deps';
import { memorySnapshot, serveParent } from './procs';

const MODE =
  process.env.BENCH_BARE_MODE === 'apply' || process.env.BENCH_BARE_MODE === 'lean'
    ? process.env.BENCH_BARE_MODE
    : 'ingest';
const SECRET = process.env.CALLBACK_SIGNING_SECRET ?? '';
const LIMIT = 64 * 1024;
const ACK = JSON.stringify({ ResultCode: 0, ResultDesc: 'Accepted' });
const ROUTE = /^\/payments\/callback\/([^/?#]+)\/([^/?#]+)$/;

const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL,
  max: Number(process.env.BENCH_DB_POOL_SIZE ?? 10),
});
pool.on('error', () => undefined);

interface Stk {
  MerchantRequestID?: unknown;
  CheckoutRequestID?: unknown;
  ResultCode?: unknown;
  ResultDesc?: unknown;
  CallbackMetadata?: { Item?: { Name?: unknown; Value?: unknown }[] };
}

function send(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const m = req.method === 'POST' ? ROUTE.exec(req.url ?? '') : null;
  if (!m) return send(res, 404, JSON.stringify({ statusCode: 404, message: 'Not found' }));
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > LIMIT) return send(res, 413, JSON.stringify({ statusCode: 413, message: 'Body too large' }));
    chunks.push(chunk as Buffer);
  }
  const raw = Buffer.concat(chunks).toString('utf8');
  let body: { Body?: { stkCallback?: Stk } };
  try {
    body = JSON.parse(raw) as typeof body;
  } catch {
    return send(res, 400, JSON.stringify({ statusCode: 400, message: 'Body is not valid JSON' }));
  }
  const paymentId = decodeURIComponent(m[1]);
  const stk = body?.Body?.stkCallback;
  const checkout = typeof stk?.CheckoutRequestID === 'string' ? stk.CheckoutRequestID : null;
  const verified = verifyCallbackToken(SECRET, paymentId, m[2]);
  if (MODE === 'lean') {
    if (!verified || !stk) throw new Error('bare lean mode handles verified STK callbacks only');
    await lean(paymentId, stk, checkout, raw, req.socket.remoteAddress ?? null);
    return send(res, 200, ACK);
  }
  const inserted = await pool.query<{ id: string }>(
    'insert into callback_inbox (provider, url_payment_id, verified, checkout_request_id, source_ip, raw_body) values ($1, $2, $3, $4, $5, $6) returning id',
    ['mpesa', paymentId.length <= 64 ? paymentId : null, verified, checkout, req.socket.remoteAddress ?? null, raw],
  );
  if (MODE === 'apply') {
    if (!verified || !stk) throw new Error('bare apply mode handles verified STK callbacks only');
    const outcome = await apply(paymentId, stk);
    await pool.query('update callback_inbox set processed_at = now(), outcome = $2 where id = $1', [
      inserted.rows[0].id,
      outcome,
    ]);
  }
  send(res, 200, ACK);
}

/** The API's applyOutcome for a callback, statement for statement (success and duplicate paths). */
async function apply(paymentId: string, stk: Stk): Promise<string> {
  const items = new Map((stk.CallbackMetadata?.Item ?? []).map((i) => [String(i.Name), i.Value]));
  const resultCode = String(stk.ResultCode);
  const resultDesc = String(stk.ResultDesc ?? '');
  const amount = Number(items.get('Amount'));
  const receipt = String(items.get('MpesaReceiptNumber') ?? '');
  const transactionDate = String(items.get('TransactionDate') ?? '');
  const summary = {
    source: 'callback',
    resultCode,
    resultDesc,
    checkoutRequestId: stk.CheckoutRequestID,
    receipt,
    amount,
  };
  const client = await pool.connect();
  let completed: { shop_id: string; order_id: string } | undefined;
  let outcome: string;
  try {
    await client.query('begin');
    const p = (
      await client.query<{
        id: string;
        status: string;
        amount_minor: string;
        checkout_request_id: string | null;
        shop_id: string;
        order_id: string;
      }>('select * from payments where id = $1 for update', [paymentId])
    ).rows[0];
    if (!p) outcome = 'unknown_payment';
    else if (['completed', 'failed', 'cancelled', 'expired'].includes(p.status)) {
      await client.query(
        'insert into payment_events (payment_id, type, from_status, actor, data) values ($1, $2, $3, $4, $5)',
        [paymentId, 'duplicate_ignored', p.status, 'daraja:callback', { ...summary, reportedOutcome: 'completed' }],
      );
      outcome = 'duplicate';
    } else {
      if (
        resultCode !== '0' ||
        BigInt(amount) * 100n !== BigInt(p.amount_minor) ||
        (p.checkout_request_id && p.checkout_request_id !== stk.CheckoutRequestID)
      )
        throw new Error('bare apply mode mirrors the matching-success path only');
      const dup = await client.query('select * from payments where mpesa_receipt_number = $1', [receipt]);
      if (dup.rows.length) throw new Error('bare apply mode: duplicate receipt');
      await client.query(
        "update payments set status = 'completed', status_reason = 'PAID', result_code = $2, result_desc = $3, checkout_request_id = coalesce(checkout_request_id, $4), merchant_request_id = coalesce(merchant_request_id, $5), mpesa_receipt_number = $6, transaction_date = $7, completed_at = $8, updated_at = now() where id = $1",
        [
          paymentId,
          resultCode,
          resultDesc.slice(0, 500),
          stk.CheckoutRequestID,
          stk.MerchantRequestID,
          receipt,
          transactionDate,
          new Date(),
        ],
      );
      await client.query(
        'insert into payment_events (payment_id, type, from_status, to_status, actor, data) values ($1, $2, $3, $4, $5, $6)',
        [paymentId, 'status_changed', p.status, 'completed', 'daraja:callback', summary],
      );
      completed = p;
      outcome = 'applied';
    }
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
  if (completed) {
    await pool.query(
      "update orders set paid_at = now() where shop_id = $1 and id = $2 and paid_at is null and total_minor <= (select coalesce(sum(p.amount_minor), 0) from payments p where p.shop_id = $1 and p.order_id = $2 and p.status = 'completed') returning id",
      [completed.shop_id, completed.order_id],
    );
  }
  return outcome;
}

const TERMINAL = "('completed','failed','cancelled','expired')";

/** The proposal: duplicates in one statement; a new outcome in one transaction with everything it implies. */
async function lean(
  paymentId: string,
  stk: Stk,
  checkout: string | null,
  raw: string,
  ip: string | null,
): Promise<void> {
  const stored = await pool.query<{ id: string; outcome: string | null }>(
    `insert into callback_inbox (provider, url_payment_id, verified, checkout_request_id, source_ip, raw_body, processed_at, outcome)
     select 'mpesa', $1, true, $2, $3, $4, case when d.dup then now() end, case when d.dup then 'duplicate' end
     from (select exists (select 1 from payments where id = $5 and status in ${TERMINAL} and (status <> 'completed' or mpesa_receipt_number is not null)) as dup) d
     returning id, outcome`,
    [paymentId.length <= 64 ? paymentId : null, checkout, ip, raw, paymentId],
  );
  if (stored.rows[0].outcome === 'duplicate') return;
  const items = new Map((stk.CallbackMetadata?.Item ?? []).map((i) => [String(i.Name), i.Value]));
  const resultCode = String(stk.ResultCode);
  const resultDesc = String(stk.ResultDesc ?? '');
  const amount = Number(items.get('Amount'));
  const receipt = String(items.get('MpesaReceiptNumber') ?? '');
  const summary = {
    source: 'callback',
    resultCode,
    resultDesc,
    checkoutRequestId: stk.CheckoutRequestID,
    receipt,
    amount,
  };
  const client = await pool.connect();
  try {
    await client.query('begin');
    const p = (
      await client.query<{
        status: string;
        amount_minor: string;
        checkout_request_id: string | null;
        shop_id: string;
        order_id: string;
      }>('select * from payments where id = $1 for update', [paymentId])
    ).rows[0];
    let outcome = 'unknown_payment';
    if (p && ['completed', 'failed', 'cancelled', 'expired'].includes(p.status)) {
      outcome = 'duplicate'; // lost a race with a concurrent copy
    } else if (p) {
      if (
        resultCode !== '0' ||
        BigInt(amount) * 100n !== BigInt(p.amount_minor) ||
        (p.checkout_request_id && p.checkout_request_id !== stk.CheckoutRequestID)
      )
        throw new Error('bare lean mode mirrors the matching-success path only');
      await client.query(
        "update payments set status = 'completed', status_reason = 'PAID', result_code = $2, result_desc = $3, checkout_request_id = coalesce(checkout_request_id, $4), merchant_request_id = coalesce(merchant_request_id, $5), mpesa_receipt_number = $6, transaction_date = $7, completed_at = $8, updated_at = now() where id = $1",
        [
          paymentId,
          resultCode,
          resultDesc.slice(0, 500),
          stk.CheckoutRequestID,
          stk.MerchantRequestID,
          receipt,
          String(items.get('TransactionDate') ?? ''),
          new Date(),
        ],
      );
      await client.query(
        'insert into payment_events (payment_id, type, from_status, to_status, actor, data) values ($1, $2, $3, $4, $5, $6)',
        [paymentId, 'status_changed', p.status, 'completed', 'daraja:callback', summary],
      );
      await client.query(
        "update orders set paid_at = now() where shop_id = $1 and id = $2 and paid_at is null and total_minor <= (select coalesce(sum(p.amount_minor), 0) from payments p where p.shop_id = $1 and p.order_id = $2 and p.status = 'completed')",
        [p.shop_id, p.order_id],
      );
      outcome = 'applied';
    }
    await client.query('update callback_inbox set processed_at = now(), outcome = $2 where id = $1', [
      stored.rows[0].id,
      outcome,
    ]);
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err: unknown) => {
    process.stderr.write(`bare handler error: ${err instanceof Error ? err.message : String(err)}\n`);
    if (!res.headersSent) send(res, 500, JSON.stringify({ statusCode: 500, message: 'Internal error' }));
  });
});
// Same keep-alive behaviour as the API (Node's defaults; Nest does not change them).
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  serveParent(
    { port: (server.address() as { port: number }).port, mode: MODE },
    { mem: () => memorySnapshot() },
    async () => {
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await closed;
      await pool.end();
    },
  );
});
