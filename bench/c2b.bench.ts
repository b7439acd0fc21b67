/**
 * C2B confirmation ingestion: the API's POST /payments/c2b/<accountId>/confirmation/<token> against a
 * bare node:http + pg handler doing the same durable write (bench/lib/bare-c2b-server.ts), at 64
 * concurrent connections, on a fresh Postgres database per server, the same confirmations to each.
 *
 * Servers (each in its own process; the load generator is this process):
 *   bare        the durable write only: parse, check the token, ONE INSERT … ON CONFLICT (account,
 *               TransID) of the c2b_transactions row, Daraja's {"ResultCode":0,"ResultDesc":"Success"}
 *   api         the real API (Nest + Express + drizzle + pino at LOG_LEVEL=info to a file), which
 *               stores AND matches in one commit before it answers
 * Scenarios (two shops: one on a till account, one on a paybill account with seeded open orders):
 *   duplicate   the same till confirmation again and again (already stored and matched): Daraja's and
 *               proxies' repeats; each is counted on its row
 *   till        a new till payment per request (Buy Goods, no BillRefNumber): stored, matched (STK-twin
 *               check, no reference) and put in the shop's feed of unclaimed payments
 *   paybill     a new paybill payment per request whose BillRefNumber names an open order of the shop:
 *               stored, and applied to that order through the payment core (order paid)
 * Per scenario and server: req/s, latency, server CPU per confirmation (/proc), SQL statements and
 * commits per confirmation (apps/api/test/helpers/sql-count.ts in the server process), and, for the
 * API, how long after it was stored a confirmation was applied (payments.completed_at − received_at,
 * in its own transaction: it is applied before the answer, so the answer's latency bounds it).
 *
 *   pnpm bench:c2b                  (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test)
 *   BENCH_SMOKE=1 pnpm bench:c2b    300 requests per phase, no warm-up, one repeat, no targets
 *   BENCH_DURATION=10 BENCH_WARMUP=3 BENCH_CONNECTIONS=64 BENCH_REPEAT=3 BENCH_TARGETS=bare,api
 *   BENCH_C2B_ORDERS=60000          open orders seeded for the paybill scenario (one per confirmation)
 *   BENCH_C2B_MSISDN=sha256         the MSISDN's form: sha256 (C2B v2), plain (adds the unknown-push lookup), masked
 *   BENCH_TRACE_QUERIES=0           do not count SQL (on by default: a counter update per statement, both servers)
 *   BENCH_DB_POOL_SIZE=n, BENCH_LOG_LEVEL=warn, BENCH_CPU_PROF=1 as for callbacks.bench.ts
 */
import { resolve } from 'node:path';
import { mintToken } from '../apps/api/src/auth/token';
import { scopedCallbackToken } from '../apps/api/src/payments/providers/mpesa/callback-token';
import {
  check,
  envInt,
  freshPostgres,
  log,
  machineInfo,
  median,
  pct,
  rows,
  run,
  serverDatabaseUrl,
  sleep,
  SMOKE,
  table,
  verdictTable,
  writeResult,
  type BenchDatabase,
  type TargetVerdict,
} from './lib/common';
import { sql, type AutocannonRequest } from './lib/deps';
import { assertClean, load, type LoadSummary } from './lib/load';
import { freePort, procCpuMs, procRss, removeLog, startChild, type ChildHandle } from './lib/procs';
import {
  BENCH_CALLBACK_SECRET,
  BENCH_JWT_SECRET,
  CPU_PROF_DIR,
  SANDBOX_PASSKEY,
  SHORTCODE,
  SIM_KEY,
  SIM_SECRET,
  startApi,
} from './lib/servers';

const CONNECTIONS = envInt('BENCH_CONNECTIONS', 64, 1);
const DURATION = envInt('BENCH_DURATION', 10, 1);
const WARMUP = SMOKE ? 0 : envInt('BENCH_WARMUP', 3);
const REPEAT = SMOKE ? 1 : envInt('BENCH_REPEAT', 3, 1);
const SMOKE_REQUESTS = 300;
const ORDERS = SMOKE ? SMOKE_REQUESTS + CONNECTIONS : envInt('BENCH_C2B_ORDERS', 60_000, 1);
const POOL_SIZE = process.env.BENCH_DB_POOL_SIZE ? Number(process.env.BENCH_DB_POOL_SIZE) : undefined;
const TRACE = process.env.BENCH_TRACE_QUERIES !== '0';
const MSISDN_FORM = (process.env.BENCH_C2B_MSISDN ?? 'sha256') as 'sha256' | 'plain' | 'masked';
const TARGETS = (process.env.BENCH_TARGETS ?? 'bare,api').split(',').map((s) => s.trim()) as Target[];
const TILL_SHOP = 'bench-till';
const PAYBILL_SHOP = 'bench-paybill';
const AMOUNT = 100; // KES
const HEADERS = { 'content-type': 'application/json' };
/** Daraja's exact acknowledgement of a confirmation (daraja.md §7.3) */
const ACK = '{"ResultCode":0,"ResultDesc":"Success"}';

type Target = 'bare' | 'api';
type Scenario = 'duplicate' | 'till' | 'paybill';
const SCENARIOS: Scenario[] = ['duplicate', 'till', 'paybill'];
const LABEL: Record<Target, string> = { bare: 'bare handler (store only)', api: 'API' };

interface SqlCost {
  statements: number;
  commits: number;
  byText: Record<string, number>;
}

if (!['sha256', 'plain', 'masked'].includes(MSISDN_FORM))
  throw new Error(`BENCH_C2B_MSISDN must be sha256, plain or masked (got ${MSISDN_FORM})`);
const MSISDN = { sha256: 'a'.repeat(64), plain: '254708374149', masked: '2547****149' }[MSISDN_FORM];

function body(transId: string, billRef: string | null): string {
  return JSON.stringify({
    TransactionType: billRef ? 'Pay Bill' : 'Buy Goods',
    TransID: transId,
    TransTime: '20261203101500',
    TransAmount: `${AMOUNT}.00`,
    BusinessShortCode: SHORTCODE,
    BillRefNumber: billRef ?? '',
    InvoiceNumber: '',
    OrgAccountBalance: '41880264.80',
    ThirdPartyTransID: '',
    MSISDN,
    FirstName: 'John',
    MiddleName: '',
    LastName: 'Doe',
  });
}

const orderId = (i: number): string => `PB-${i}`;
const DUP_TRANS_ID = 'BDUPLICATE';

/**
 * The confirmations of one server's run, the same sequence for every server (each on its own
 * database): TransIDs T…/P… counting up, paybill orders taken one by one (wrapping only matters
 * to a server that applies them: checked).
 */
class Stream {
  private n = 0;
  private order = 0;
  exhausted = false;
  transId(scenario: 'till' | 'paybill'): string {
    return `${scenario === 'till' ? 'T' : 'P'}${(this.n++).toString(36).toUpperCase().padStart(9, '0')}`;
  }
  nextOrder(): string {
    if (this.order >= ORDERS) {
      this.exhausted = true;
      this.order = 0;
    }
    return orderId(this.order++);
  }
}

interface Accounts {
  till: string;
  paybill: string;
}

const pathFor = (accountId: string): string =>
  `/payments/c2b/${accountId}/confirmation/${scopedCallbackToken(BENCH_CALLBACK_SECRET, 'c2b-confirmation', accountId)}`;

function request(scenario: Scenario, accounts: Accounts, stream: Stream): AutocannonRequest {
  if (scenario === 'duplicate')
    return { method: 'POST', path: pathFor(accounts.till), headers: HEADERS, body: body(DUP_TRANS_ID, null) };
  const path = pathFor(scenario === 'till' ? accounts.till : accounts.paybill);
  return {
    method: 'POST',
    path,
    headers: HEADERS,
    setupRequest: (req: AutocannonRequest) => ({
      ...req,
      body: body(stream.transId(scenario), scenario === 'paybill' ? stream.nextOrder() : null),
    }),
  };
}

async function seedOrders(db: BenchDatabase): Promise<void> {
  await db.handle.db.execute(sql`
    insert into orders (shop_id, id, total_minor, currency)
    select ${PAYBILL_SHOP}, 'PB-' || i, ${AMOUNT * 100}, 'KES' from generate_series(0, ${ORDERS - 1}) as i`);
  await db.handle.db.execute(sql`analyze`);
}

/** The two shops' M-Pesa accounts through the API's own route (what a manager does). */
async function apiAccounts(url: string): Promise<Accounts> {
  const put = async (shop: string, settings: Record<string, string>): Promise<string> => {
    const manager = mintToken(BENCH_JWT_SECRET, { sub: 'bench-mgr', shopId: shop, role: 'manager' });
    const res = await fetch(`${url}/shops/${shop}/merchant-accounts/mpesa`, {
      method: 'PUT',
      headers: { ...HEADERS, authorization: `Bearer ${manager}` },
      body: JSON.stringify({
        environment: 'sandbox',
        shortcode: SHORTCODE,
        consumerKey: SIM_KEY,
        consumerSecret: SIM_SECRET,
        passkey: SANDBOX_PASSKEY,
        ...settings,
      }),
    });
    if (res.status !== 200) throw new Error(`setting ${shop}'s account: HTTP ${res.status} ${await res.text()}`);
    return ((await res.json()) as { accountId: string }).accountId;
  };
  return {
    till: await put(TILL_SHOP, { type: 'till', tillNumber: '174380' }),
    paybill: await put(PAYBILL_SHOP, { type: 'paybill' }),
  };
}

/** The bare handler reads only the account's id, provider and shop: rows with just those (sealed secrets unused). */
async function bareAccounts(db: BenchDatabase): Promise<Accounts> {
  const add = async (shop: string, type: string): Promise<string> =>
    rows<{ id: string }>(
      await db.handle.db.execute(sql`
        insert into merchant_accounts (id, shop_id, provider, environment, settings, secrets, key_id, fingerprints, created_by)
        values (gen_random_uuid(), ${shop}, 'mpesa', 'sandbox', ${JSON.stringify({ type, shortcode: SHORTCODE })}::jsonb, 'unused', 'bench', '{}'::jsonb, 'bench')
        returning id`),
    )[0].id;
  return { till: await add(TILL_SHOP, 'till'), paybill: await add(PAYBILL_SHOP, 'paybill') };
}

async function startTarget(target: Target, db: BenchDatabase): Promise<ChildHandle> {
  const url = serverDatabaseUrl(db.url);
  const trace = TRACE ? '1' : '0';
  if (target === 'api')
    return startApi('c2b-api', {
      databaseUrl: url,
      poolSize: POOL_SIZE,
      // The retry pass and reconciler would add their own statements to the count.
      env: { RECONCILER_ENABLED: 'false', BENCH_TRACE_QUERIES: trace },
    });
  return startChild('c2b-bare', resolve(__dirname, 'lib/bare-c2b-server.ts'), {
    env: {
      DATABASE_URL: url,
      PORT: String(await freePort()),
      CALLBACK_SIGNING_SECRET: BENCH_CALLBACK_SECRET,
      BENCH_DB_POOL_SIZE: POOL_SIZE ? String(POOL_SIZE) : undefined,
      BENCH_TRACE_QUERIES: trace,
    },
  });
}

interface Stats {
  rows: number;
  deliveries: number;
  received: number;
  unclaimed: number;
  applied: number;
  completed: number;
  paidOrders: number;
}

async function stats(db: BenchDatabase): Promise<Stats> {
  return rows<Stats>(
    await db.handle.db.execute(sql`
      select (select count(*) from c2b_transactions)::int as rows,
        (select coalesce(sum(deliveries), 0) from c2b_transactions)::int as deliveries,
        (select count(*) from c2b_transactions where status = 'received')::int as received,
        (select count(*) from c2b_transactions where status = 'unclaimed')::int as unclaimed,
        (select count(*) from c2b_transactions where status = 'applied')::int as applied,
        (select count(*) from payments where status = 'completed')::int as completed,
        (select count(*) from orders where paid_at is not null)::int as "paidOrders"`),
  )[0];
}

/** Once the requests still in flight when the load generator stopped are stored (up to 30 s). */
async function settled(db: BenchDatabase): Promise<Stats> {
  let prev = await stats(db);
  let still = 0;
  for (let i = 0; i < 300 && still < 3; i++) {
    await sleep(100);
    const cur = await stats(db);
    still = cur.deliveries === prev.deliveries && cur.rows === prev.rows ? still + 1 : 0;
    prev = cur;
  }
  return prev;
}

/** Stored (received_at, its transaction's start) → applied (completed_at, set in the same transaction), ms. */
async function applyDelays(db: BenchDatabase, since: string): Promise<{ p50: number; p99: number; max: number }> {
  const r = rows<{ p50: number | null; p99: number | null; max: number | null }>(
    await db.handle.db.execute(sql`
      select percentile_cont(0.5) within group (order by d) as p50, percentile_cont(0.99) within group (order by d) as p99, max(d) as max
      from (select extract(epoch from p.completed_at - c.received_at) * 1000 as d
            from c2b_transactions c join payments p on p.id = c.payment_id
            where c.received_at >= ${since}::timestamptz and c.status = 'applied') x`),
  )[0];
  const round = (v: number | null) => Math.round((v ?? 0) * 10) / 10;
  return { p50: round(r.p50), p99: round(r.p99), max: round(r.max) };
}

interface Row {
  target: Target;
  scenario: Scenario;
  repeat: number;
  load: LoadSummary;
  /** confirmations the server ingested in the window (sum of deliveries: in-flight ones included) */
  confirmations: number;
  serverCpuMsPerConfirmation?: number;
  loadGeneratorCpuMsPerRequest: number;
  statementsPerConfirmation?: number;
  commitsPerConfirmation?: number;
  statementsByText?: Record<string, number>;
  /** API, paybill: stored → applied inside the confirmation's own transaction */
  applyDelayMs?: { p50: number; p99: number; max: number };
  serverPeakRssMb?: number;
}

/** A statement's text, short: column lists elided, so that statements differing only in their WHERE stay apart. */
function statementLabel(text: string): string {
  return text
    .replace(/\s+/g, ' ')
    .replace(/^select (?!1\b)(.+?) from /i, 'select … from ')
    .replace(
      /^insert into ("?\w+"?) \([^)]*\) (values|select) .*?( on conflict| returning|$)/i,
      'insert into $1 (…) $2 …$3',
    )
    .slice(0, 240);
}

const per = (n: number, d: number, digits = 2): number =>
  Math.round((n / Math.max(1, d)) * 10 ** digits) / 10 ** digits;

async function runTarget(target: Target, repeat: number): Promise<Row[]> {
  const db = await freshPostgres(`c2b_${target}`);
  const out: Row[] = [];
  let server: ChildHandle | undefined;
  try {
    await seedOrders(db);
    const bareAcc = target === 'bare' ? await bareAccounts(db) : undefined;
    server = await startTarget(target, db);
    const url = `http://127.0.0.1:${server.ready.port}`;
    const accounts = bareAcc ?? (await apiAccounts(url));
    log(`  ${LABEL[target]} (pid ${server.pid}, log ${server.logFile})`);
    const stream = new Stream();
    // Daraja's exact reply, and the duplicate scenario's confirmation stored (and matched) first.
    const first = await fetch(`${url}${pathFor(accounts.till)}`, {
      method: 'POST',
      headers: HEADERS,
      body: body(DUP_TRANS_ID, null),
    });
    const reply = await first.text();
    check(first.status === 200 && reply === ACK, `${target}: first confirmation answered ${first.status} ${reply}`);

    for (const scenario of SCENARIOS) {
      const req = request(scenario, accounts, stream);
      if (WARMUP)
        assertClean(
          await load(`${target} warm-up ${scenario}`, {
            url,
            connections: CONNECTIONS,
            duration: WARMUP,
            requests: [req],
          }),
        );
      const before = await settled(db);
      const since = rows<{ now: string }>(await db.handle.db.execute(sql`select now()::text as now`))[0].now;
      if (TRACE) await server.request('sqlCost');
      const cpu0 = procCpuMs(server.pid);
      const ownCpu0 = process.cpuUsage();
      const s = await load(`${target} ${scenario}`, {
        url,
        connections: CONNECTIONS,
        ...(SMOKE ? { amount: SMOKE_REQUESTS } : { duration: DURATION }),
        requests: [req],
      });
      const ownCpu = process.cpuUsage(ownCpu0);
      const after = await settled(db);
      const cpu1 = procCpuMs(server.pid);
      const cost = TRACE ? await server.request<SqlCost>('sqlCost') : undefined;
      assertClean(s, SMOKE ? SMOKE_REQUESTS : CONNECTIONS);

      // Every acknowledged confirmation is stored (a duration run stops with up to one per connection in flight).
      const confirmations = after.deliveries - before.deliveries;
      const newRows = after.rows - before.rows;
      check(
        confirmations >= s.ok && confirmations <= s.ok + CONNECTIONS,
        `${target} ${scenario}: ${s.ok} confirmations acknowledged but ${confirmations} deliveries counted`,
      );
      if (scenario === 'duplicate') check(newRows === 0, `${target} duplicate: ${newRows} new rows for one TransID`);
      else
        check(newRows === confirmations, `${target} ${scenario}: ${confirmations} new TransIDs made ${newRows} rows`);
      if (target === 'api') {
        // Matched before the answer: nothing left `received`; a till payment in the feed, a paybill one applied.
        check(after.received === 0, `api ${scenario}: ${after.received} confirmations stored but not matched`);
        if (scenario === 'till')
          check(
            after.unclaimed - before.unclaimed === newRows,
            `api till: ${newRows} rows, ${after.unclaimed - before.unclaimed} in the feed`,
          );
        if (scenario === 'paybill') {
          check(!stream.exhausted, `api: ran out of seeded orders; raise BENCH_C2B_ORDERS above ${ORDERS}`);
          check(
            after.applied - before.applied === newRows &&
              after.completed - before.completed === newRows &&
              after.paidOrders - before.paidOrders === newRows,
            `api paybill: ${newRows} rows but ${after.applied - before.applied} applied, ${after.completed - before.completed} payments completed, ${after.paidOrders - before.paidOrders} orders paid`,
          );
        }
        if (scenario === 'duplicate')
          check(after.completed === before.completed, 'api duplicate: a repeated confirmation changed a payment');
      } else {
        check(after.received - before.received === newRows, `bare ${scenario}: rows not stored as received`);
      }

      const applyDelayMs = target === 'api' && scenario === 'paybill' ? await applyDelays(db, since) : undefined;
      const row: Row = {
        target,
        scenario,
        repeat,
        load: s,
        confirmations,
        serverCpuMsPerConfirmation:
          cpu0 !== undefined && cpu1 !== undefined
            ? Math.round(((cpu1 - cpu0) / confirmations) * 1000) / 1000
            : undefined,
        loadGeneratorCpuMsPerRequest: per((ownCpu.user + ownCpu.system) / 1000, s.requests, 3),
        applyDelayMs,
      };
      if (cost) {
        row.statementsPerConfirmation = per(cost.statements, confirmations);
        row.commitsPerConfirmation = per(cost.commits, confirmations);
        const byLabel = new Map<string, number>();
        for (const [text, n] of Object.entries(cost.byText))
          byLabel.set(statementLabel(text), (byLabel.get(statementLabel(text)) ?? 0) + n);
        row.statementsByText = Object.fromEntries(
          [...byLabel].sort((a, b) => b[1] - a[1]).map(([label, n]) => [label, per(n, confirmations)]),
        );
      }
      out.push(row);
      log(
        `    ${scenario.padEnd(9)} ${String(s.rps).padStart(6)} req/s  p50 ${s.latencyMs.p50} ms  p99 ${s.latencyMs.p99} ms  server CPU ${row.serverCpuMsPerConfirmation ?? '?'} ms/conf` +
          (cost
            ? `  SQL ${row.statementsPerConfirmation} statements, ${row.commitsPerConfirmation} commits/conf`
            : '') +
          (applyDelayMs
            ? `  stored→applied p50/p99 ${applyDelayMs.p50}/${applyDelayMs.p99} ms (before the answer)`
            : ''),
      );
      if (cost && (SMOKE || repeat === 0))
        for (const [text, n] of Object.entries(row.statementsByText ?? {}))
          log(`      ${String(n).padStart(5)}  ${text}`);
    }
    const rss = procRss(server.pid);
    for (const r of out) r.serverPeakRssMb = rss?.peakRssMb;
  } finally {
    if (server) {
      await server.stop();
      removeLog(server.logFile);
    }
    await db.dispose();
  }
  return out;
}

async function main(): Promise<void> {
  for (const t of TARGETS) if (!LABEL[t]) throw new Error(`unknown target ${t} in BENCH_TARGETS`);
  log(
    `C2B confirmation ingestion: ${CONNECTIONS} connections, ${SMOKE ? `${SMOKE_REQUESTS} requests per phase (smoke)` : `${DURATION} s per phase after ${WARMUP} s warm-up, ${REPEAT} repeat(s)`}, servers ${TARGETS.join(', ')}, MSISDN ${MSISDN_FORM}`,
  );
  const all: Row[] = [];
  for (let r = 0; r < REPEAT; r++) for (const t of TARGETS) all.push(...(await runTarget(t, r)));
  let pgVersion: string | undefined;
  {
    const db = await freshPostgres('c2b_version', 1, { migrate: false });
    pgVersion = db.serverVersion;
    await db.dispose();
  }

  const nan = (v: number | undefined) => v ?? NaN;
  const summary = SCENARIOS.flatMap((scenario) =>
    TARGETS.map((target) => {
      const rs = all.filter((x) => x.target === target && x.scenario === scenario);
      return {
        scenario,
        target,
        rps: median(rs.map((x) => x.load.rps)),
        p50: median(rs.map((x) => x.load.latencyMs.p50)),
        p99: median(rs.map((x) => x.load.latencyMs.p99)),
        serverCpuMsPerConfirmation: median(rs.map((x) => nan(x.serverCpuMsPerConfirmation))),
        statementsPerConfirmation: median(rs.map((x) => nan(x.statementsPerConfirmation))),
        commitsPerConfirmation: median(rs.map((x) => nan(x.commitsPerConfirmation))),
        applyP50Ms: median(rs.map((x) => nan(x.applyDelayMs?.p50))),
        applyP99Ms: median(rs.map((x) => nan(x.applyDelayMs?.p99))),
        serverPeakRssMb: median(rs.map((x) => nan(x.serverPeakRssMb))),
        runs: rs.map((x) => x.load.rps),
      };
    }),
  );
  const get = (scenario: Scenario, target: Target) =>
    summary.find((s) => s.scenario === scenario && s.target === target);
  const fmt = (v: number, d = 2) => (Number.isNaN(v) ? '-' : v.toFixed(d));
  const applied = (s: (typeof summary)[number]): string => {
    if (s.target === 'bare') return '-';
    if (s.scenario === 'paybill') return `${fmt(s.applyP50Ms, 1)} / ${fmt(s.applyP99Ms, 1)}`;
    return s.scenario === 'till' ? 'in the feed at the answer' : 'nothing to apply';
  };
  const body = summary.map((s) => {
    const bare = get(s.scenario, 'bare');
    return [
      s.scenario,
      LABEL[s.target],
      s.rps,
      s.p50,
      s.p99,
      bare ? (s.rps / bare.rps).toFixed(2) : '-',
      fmt(s.serverCpuMsPerConfirmation),
      fmt(s.statementsPerConfirmation),
      fmt(s.commitsPerConfirmation),
      applied(s),
      Number.isNaN(s.serverPeakRssMb) ? '-' : s.serverPeakRssMb,
    ];
  });

  // Issue 14 asks for the STK callbacks' comparison; their targets (issue 13) are the yardstick.
  const verdicts: TargetVerdict[] = [];
  for (const scenario of SCENARIOS) {
    const api = get(scenario, 'api');
    const bare = get(scenario, 'bare');
    if (!api || !bare || SMOKE) continue;
    const ratio = api.rps / bare.rps;
    verdicts.push({
      name: `C2B confirmations, ${scenario}: API / bare handler (store only), as for STK callbacks`,
      target: '>= 0.50',
      value: ratio.toFixed(2),
      met: ratio >= 0.5,
      miss: ratio < 0.5 ? `${pct(1 - ratio / 0.5)} short` : undefined,
    });
    if (!Number.isNaN(api.serverCpuMsPerConfirmation))
      verdicts.push({
        name: `C2B confirmations, ${scenario}: API CPU per confirmation, matching included, as for STK callbacks`,
        target: '<= 0.50 ms',
        value: `${api.serverCpuMsPerConfirmation.toFixed(2)} ms`,
        met: api.serverCpuMsPerConfirmation <= 0.5,
        miss:
          api.serverCpuMsPerConfirmation > 0.5 ? `+${(api.serverCpuMsPerConfirmation - 0.5).toFixed(2)} ms` : undefined,
      });
  }

  const result = {
    benchmark: 'c2b-confirmation-ingestion',
    date: new Date().toISOString(),
    smoke: SMOKE,
    settings: {
      pgOptions: process.env.BENCH_PG_OPTIONS,
      connections: CONNECTIONS,
      durationSeconds: SMOKE ? undefined : DURATION,
      requestsPerPhase: SMOKE ? SMOKE_REQUESTS : undefined,
      warmupSeconds: WARMUP,
      repeats: REPEAT,
      poolSize: POOL_SIZE ?? 'API default',
      logLevel: process.env.BENCH_LOG_LEVEL ?? 'info',
      seededOrders: ORDERS,
      msisdn: MSISDN_FORM,
      sqlCounted: TRACE,
    },
    summary,
    runs: all,
    targets: verdicts,
    machine: machineInfo(pgVersion),
  };
  const file = writeResult('c2b', result);
  process.stdout.write(
    `\n${table(['scenario', 'server', 'req/s', 'p50 ms', 'p99 ms', 'vs bare', 'server CPU ms/conf', 'statements/conf', 'commits/conf', 'stored→applied p50 / p99 ms', 'peak RSS MB'], body)}\n`,
  );
  if (verdicts.length) process.stdout.write(`\n${verdictTable(verdicts)}\n`);
  if (process.env.BENCH_CPU_PROF === '1') process.stdout.write(`\nCPU profiles: ${CPU_PROF_DIR}\n`);
  process.stdout.write(`\n-> ${file}\n`);
}

run(main);
