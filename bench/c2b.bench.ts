/**
 * C2B confirmation ingestion: the API's POST /payments/c2b/<accountId>/confirmation/<token> at 64
 * concurrent connections, on a fresh Postgres database, in its own process (the load generator is
 * this process). Scenarios:
 *   duplicate   every request is the same confirmation (already stored and matched): Daraja's and
 *               proxies' repeats; the API counts each on the row (one INSERT … ON CONFLICT) and acks
 *   distinct    every request is a new till payment (no reference): stored, matched (STK twin check,
 *               unknown-push check, no order) and put in the shop's feed
 * Not yet: the bare node:http + pg handler next to it (as callbacks.bench.ts has for STK callbacks).
 *
 *   pnpm bench:c2b                  (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test)
 *   BENCH_SMOKE=1 pnpm bench:c2b    300 requests per phase, no warm-up
 *   BENCH_DURATION=10 BENCH_WARMUP=3 BENCH_CONNECTIONS=64 BENCH_LOG_LEVEL=warn
 */
import { mintToken } from '../apps/api/src/auth/token';
import { scopedCallbackToken } from '../apps/api/src/payments/providers/mpesa/callback-token';
import { envInt, freshPostgres, log, machineInfo, rows, run, SMOKE, table, writeResult } from './lib/common';
import { sql, type AutocannonRequest } from './lib/deps';
import { assertClean, load, type LoadSummary } from './lib/load';
import { procCpuMs, procRss } from './lib/procs';
import {
  BENCH_CALLBACK_SECRET,
  BENCH_JWT_SECRET,
  SANDBOX_PASSKEY,
  SHORTCODE,
  SIM_KEY,
  SIM_SECRET,
  startApi,
} from './lib/servers';

const CONNECTIONS = envInt('BENCH_CONNECTIONS', 64, 1);
const DURATION = envInt('BENCH_DURATION', 10, 1);
const WARMUP = SMOKE ? 0 : envInt('BENCH_WARMUP', 3);
const SMOKE_REQUESTS = 300;
const SHOP = 'bench-shop';
const HEADERS = { 'content-type': 'application/json' };

type Scenario = 'duplicate' | 'distinct';

let seq = 0;
function body(transId: string): string {
  return JSON.stringify({
    TransactionType: 'Buy Goods',
    TransID: transId,
    TransTime: '20261203101500',
    TransAmount: '100.00',
    BusinessShortCode: SHORTCODE,
    BillRefNumber: '',
    InvoiceNumber: '',
    OrgAccountBalance: '41880264.80',
    ThirdPartyTransID: '',
    MSISDN: 'a'.repeat(64),
    FirstName: 'John',
    MiddleName: '',
    LastName: 'Doe',
  });
}
const nextTransId = () => `B${(seq++).toString(36).toUpperCase().padStart(9, '0')}`;

async function phase(url: string, path: string, scenario: Scenario, measure: { duration?: number; amount?: number }) {
  const dup = body('BDUPLICATE');
  const request: AutocannonRequest =
    scenario === 'duplicate'
      ? { method: 'POST', path, headers: HEADERS, body: dup }
      : {
          method: 'POST',
          path,
          headers: HEADERS,
          setupRequest: (req: AutocannonRequest) => ({ ...req, body: body(nextTransId()) }),
        };
  return load(`c2b ${scenario}`, { url, connections: CONNECTIONS, ...measure, requests: [request] });
}

interface Row {
  scenario: Scenario;
  load: LoadSummary;
  serverCpuMsPerRequest?: number;
  serverPeakRssMb?: number;
  c2bRows: number;
  deliveries: number;
}

async function main(): Promise<void> {
  log(
    `C2B confirmation ingestion: ${CONNECTIONS} connections, ${SMOKE ? `${SMOKE_REQUESTS} requests per phase (smoke)` : `${DURATION} s per phase after ${WARMUP} s warm-up`}`,
  );
  const results: Row[] = [];
  for (const scenario of ['duplicate', 'distinct'] as Scenario[]) {
    const db = await freshPostgres(`c2b_${scenario}`);
    const api = await startApi(`c2b-api-${scenario}`, { databaseUrl: db.url, env: { RECONCILER_ENABLED: 'false' } });
    try {
      const url = `http://127.0.0.1:${api.ready.port}`;
      const manager = mintToken(BENCH_JWT_SECRET, { sub: 'bench-mgr', shopId: SHOP, role: 'manager' });
      const put = await fetch(`${url}/shops/${SHOP}/merchant-accounts/mpesa`, {
        method: 'PUT',
        headers: { ...HEADERS, authorization: `Bearer ${manager}` },
        body: JSON.stringify({
          environment: 'sandbox',
          type: 'till',
          shortcode: SHORTCODE,
          tillNumber: '174380',
          consumerKey: SIM_KEY,
          consumerSecret: SIM_SECRET,
          passkey: SANDBOX_PASSKEY,
        }),
      });
      if (put.status !== 200) throw new Error(`setting the bench shop's account: HTTP ${put.status}`);
      const accountId = ((await put.json()) as { accountId: string }).accountId;
      const path = `/payments/c2b/${accountId}/confirmation/${scopedCallbackToken(BENCH_CALLBACK_SECRET, 'c2b-confirmation', accountId)}`;
      // The duplicate scenario's confirmation is stored and matched before the run.
      const first = await fetch(`${url}${path}`, { method: 'POST', headers: HEADERS, body: body('BDUPLICATE') });
      if (first.status !== 200) throw new Error(`first confirmation: HTTP ${first.status}`);
      if (WARMUP) await phase(url, path, scenario, { duration: WARMUP });
      const cpu0 = procCpuMs(api.pid);
      const s = await phase(url, path, scenario, SMOKE ? { amount: SMOKE_REQUESTS } : { duration: DURATION });
      const cpu1 = procCpuMs(api.pid);
      assertClean(s, SMOKE ? SMOKE_REQUESTS : CONNECTIONS);
      const r = rows<{ n: number; d: number }>(
        await db.handle.db.execute(
          sql`select count(*)::int as n, coalesce(sum(deliveries), 0)::int as d from c2b_transactions`,
        ),
      )[0];
      results.push({
        scenario,
        load: s,
        serverCpuMsPerRequest:
          cpu0 !== undefined && cpu1 !== undefined ? Math.round(((cpu1 - cpu0) / s.requests) * 100) / 100 : undefined,
        serverPeakRssMb: procRss(api.pid)?.peakRssMb,
        c2bRows: r.n,
        deliveries: r.d,
      });
    } finally {
      await api.stop();
      await db.dispose();
    }
  }
  log(
    table(
      ['scenario', 'req/s', 'p50 ms', 'p99 ms', 'CPU ms/req', 'rows', 'deliveries'],
      results.map((r) => [
        r.scenario,
        String(r.load.rps),
        String(r.load.latencyMs.p50),
        String(r.load.latencyMs.p99),
        String(r.serverCpuMsPerRequest ?? '?'),
        String(r.c2bRows),
        String(r.deliveries),
      ]),
    ),
  );
  // Integrity: the duplicate run is one row whatever the deliveries; the distinct one a row per request.
  const dup = results.find((r) => r.scenario === 'duplicate')!;
  if (dup.c2bRows !== 1) throw new Error(`duplicate scenario left ${dup.c2bRows} rows, not 1`);
  const file = writeResult('c2b', {
    smoke: SMOKE,
    machine: machineInfo(),
    config: { connections: CONNECTIONS, durationSeconds: SMOKE ? undefined : DURATION, warmupSeconds: WARMUP },
    results,
  });
  log(`results: ${file}`);
}

run(main);
