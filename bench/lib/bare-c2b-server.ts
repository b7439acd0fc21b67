/**
 * The "practical limit" for C2B confirmation ingestion: a bare node:http + pg handler, no framework,
 * for POST /payments/c2b/<accountId>/confirmation/<token>. Benchmark child process (see c2b.bench.ts).
 *
 * The durable write only, i.e. the minimum any correct receiver must do before acknowledging: read
 * the body (64 KB limit), parse the JSON, check the capability token (HMAC, scope c2b-confirmation),
 * read the 13 fields as the API does (the API's own parseC2bPayload and phone hash: the same row),
 * then ONE autocommit statement: INSERT the c2b_transactions row (status `received`), its shop taken
 * from the merchant account in the same statement (no account: no row, 404), ON CONFLICT on
 * (account, TransID) counting the repeat on the row; then Daraja's exact reply
 * {"ResultCode":0,"ResultDesc":"Success"}. Nothing is matched: that is what the API does on top.
 *
 * Env: DATABASE_URL, PORT, CALLBACK_SIGNING_SECRET, BENCH_DB_POOL_SIZE (default 10, the API's),
 * BENCH_TRACE_QUERIES=1 (count statements and commits as the API's child does; IPC 'sqlCost').
 */
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { parseC2bPayload } from '../../apps/api/src/payments/providers/mpesa/c2b-payload';
import { verifyScopedCallbackToken } from '../../apps/api/src/payments/providers/mpesa/callback-token';
import { phoneHash } from '../../apps/api/src/payments/phone-hash';
import { countSql } from '../../apps/api/test/helpers/sql-count';
import { pg } from './deps';
import { memorySnapshot, serveParent } from './procs';

const SECRET = process.env.CALLBACK_SIGNING_SECRET ?? '';
const LIMIT = 64 * 1024;
const ACK = '{"ResultCode":0,"ResultDesc":"Success"}';
const ROUTE = /^\/payments\/c2b\/([^/?#]+)\/confirmation\/([^/?#]+)$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const INSERT = `insert into c2b_transactions (id, merchant_account_id, shop_id, trans_id, transaction_type, trans_time,
    amount_minor, business_shortcode, bill_ref_number, invoice_number, third_party_trans_id, msisdn_form, phone_hash,
    msisdn_sha256, phone_masked, customer_name, status, status_reason)
  select $1, a.id, a.shop_id, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17
  from merchant_accounts a where a.id = $2 and a.provider = 'mpesa'
  on conflict (merchant_account_id, trans_id) do update
    set deliveries = c2b_transactions.deliveries + 1, last_received_at = now()
  returning id`;

const sqlCount = process.env.BENCH_TRACE_QUERIES === '1' ? countSql() : undefined;
const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL,
  max: Number(process.env.BENCH_DB_POOL_SIZE ?? 10),
});
pool.on('error', () => undefined);

function send(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

const notFound = JSON.stringify({ statusCode: 404, message: 'Not found' });

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const m = req.method === 'POST' ? ROUTE.exec(req.url ?? '') : null;
  if (!m) return send(res, 404, notFound);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > LIMIT) return send(res, 413, JSON.stringify({ statusCode: 413, message: 'Body too large' }));
    chunks.push(chunk as Buffer);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return send(res, 400, JSON.stringify({ statusCode: 400, message: 'Body is not valid JSON' }));
  }
  const accountId = m[1];
  if (!UUID.test(accountId) || !verifyScopedCallbackToken(SECRET, 'c2b-confirmation', accountId, m[2]))
    return send(res, 404, notFound);
  const c = parseC2bPayload(body);
  const msisdn = c.msisdn;
  const stored = await pool.query<{ id: string }>(INSERT, [
    randomUUID(),
    accountId,
    c.transId,
    c.transactionType,
    c.transTime,
    c.amountMinor === null ? null : c.amountMinor.toString(),
    c.businessShortcode,
    c.billRefNumber,
    c.invoiceNumber,
    c.thirdPartyTransId,
    msisdn.form,
    msisdn.form === 'plain' ? phoneHash(SECRET, msisdn.plain) : null,
    msisdn.form === 'sha256' ? msisdn.sha256 : null,
    msisdn.form === 'masked' ? msisdn.masked : null,
    c.customerName,
    c.problem ? 'invalid' : 'received',
    c.problem,
  ]);
  if (!stored.rows.length) return send(res, 404, notFound);
  send(res, 200, ACK);
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err: unknown) => {
    process.stderr.write(`bare C2B handler error: ${err instanceof Error ? err.message : String(err)}\n`);
    if (!res.headersSent) send(res, 500, JSON.stringify({ statusCode: 500, message: 'Internal error' }));
  });
});
// Same keep-alive behaviour as the API (Node's defaults).
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  serveParent(
    { port: (server.address() as { port: number }).port },
    {
      mem: () => memorySnapshot(),
      sqlCost: () => {
        const out = {
          statements: sqlCount?.statements ?? 0,
          commits: sqlCount?.commits ?? 0,
          byText: Object.fromEntries(sqlCount?.byText ?? []),
        };
        sqlCount?.reset();
        return out;
      },
    },
    async () => {
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await closed;
      await pool.end();
    },
  );
});
