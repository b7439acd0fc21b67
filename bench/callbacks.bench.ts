/**
 * Callback ingestion: the API's POST /payments/callback/<paymentId>/<token> against a bare
 * node:http + pg handler doing the same durable write (bench/lib/bare-callback-server.ts), at 64
 * concurrent connections, on a fresh Postgres database per server.
 *
 * Servers (each in its own process; the load generator is this process):
 *   bare        the durable write only: parse, check the token, INSERT the callback_inbox row, ack
 *   bare-apply  bare + the API's processing statements, hand-written (same SQL, no framework)
 *   api         the real API (Nest + Express + drizzle + pino at LOG_LEVEL=info to a file)
 *   bare-lean   (opt-in) a proposal: the same outcome in fewer statements and commits (see the file)
 *   express     (opt-in) the store-only write behind plain Express (what the HTTP layer alone costs)
 * Scenarios:
 *   duplicate   every request is the same success callback for one (already completed) payment:
 *               the retry storm Daraja and proxies produce; the API stores and ignores each one
 *   distinct    every request completes a different pending payment (stored, applied, order paid)
 *
 *   pnpm bench:callbacks                 (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test)
 *   BENCH_SMOKE=1 pnpm bench:callbacks   300 requests per phase, no warm-up, no targets
 *   BENCH_DURATION=10 BENCH_WARMUP=3 BENCH_CONNECTIONS=64 BENCH_REPEAT=3 BENCH_TARGETS=bare,bare-apply,api (opt-in: bare-lean, express)
 *   BENCH_DB_POOL_SIZE=n   pool size for the API and the bare handlers (default: the API's default, 10)
 *   BENCH_CPU_PROF=1       the API writes a .cpuprofile (path printed at the end; bench/profile-summary.ts reads it)
 *   BENCH_LOG_LEVEL=warn   the API's log level (default info, as production)
 *   BENCH_PG_OPTIONS="-c synchronous_commit=off"   diagnostics: what commit latency costs (never for money)
 */
import { callbackToken } from '../apps/api/src/payments/providers/mpesa/callback-token';
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
import { procCpuMs, procRss, removeLog, startChild, freePort, type ChildHandle } from './lib/procs';
import { BENCH_CALLBACK_SECRET, CPU_PROF_DIR, startApi } from './lib/servers';
import { resolve } from 'node:path';

const CONNECTIONS = envInt('BENCH_CONNECTIONS', 64, 1);
const DURATION = envInt('BENCH_DURATION', 10, 1);
const WARMUP = SMOKE ? 0 : envInt('BENCH_WARMUP', 3);
const REPEAT = SMOKE ? 1 : envInt('BENCH_REPEAT', 3, 1);
const SMOKE_REQUESTS = 300;
/** pending payments seeded for the distinct scenario (one per request; must outlast the run) */
const PAYMENTS = SMOKE ? SMOKE_REQUESTS : envInt('BENCH_CALLBACK_PAYMENTS', 100_000, 1);
const WARM_PAYMENTS = WARMUP ? 5_000 : 0;
const POOL_SIZE = process.env.BENCH_DB_POOL_SIZE ? Number(process.env.BENCH_DB_POOL_SIZE) : undefined;
const TARGETS = (process.env.BENCH_TARGETS ?? 'bare,bare-apply,api').split(',').map((s) => s.trim()) as Target[];
const SHOP = 'bench-shop';
const AMOUNT = 100; // KES

type Target = 'bare' | 'bare-apply' | 'bare-lean' | 'express' | 'api';
type Scenario = 'duplicate' | 'distinct';
const LABEL: Record<Target, string> = {
  bare: 'bare handler (store only)',
  'bare-apply': 'bare handler (store + apply)',
  'bare-lean': 'bare handler (proposed lean SQL)',
  express: 'Express + pg (store only)',
  api: 'API',
};

interface Seeded {
  dup: { id: string; checkout: string };
  /** [warm-up slice..., measured slice...] */
  payments: { id: string; checkout: string }[];
}

async function seed(db: BenchDatabase): Promise<Seeded> {
  const n = PAYMENTS + WARM_PAYMENTS + 1;
  await db.handle.db.execute(sql`
    insert into orders (shop_id, id, total_minor, currency)
    select ${SHOP}, 'CB-' || i, ${AMOUNT * 100}, 'KES' from generate_series(0, ${n - 1}) as i`);
  await db.handle.db.execute(sql`
    insert into payments (id, shop_id, order_id, amount_minor, currency, provider, status, created_by, phone_masked, merchant_request_id, checkout_request_id)
    select gen_random_uuid(), ${SHOP}, 'CB-' || i, ${AMOUNT * 100}, 'KES', 'mpesa', 'pending', 'bench', '2547******78', 'bench-' || i, 'ws_CO_BENCH' || lpad(i::text, 8, '0')
    from generate_series(0, ${n - 1}) as i`);
  await db.handle.db.execute(sql`analyze`);
  const all = rows<{ id: string; checkout_request_id: string }>(
    await db.handle.db.execute(sql`select id, checkout_request_id from payments order by checkout_request_id`),
  ).map((r) => ({ id: r.id, checkout: r.checkout_request_id }));
  return { dup: all[0], payments: all.slice(1) };
}

function callbackBody(p: { checkout: string }, i: number): string {
  return JSON.stringify({
    Body: {
      stkCallback: {
        MerchantRequestID: `bench-${i}`,
        CheckoutRequestID: p.checkout,
        ResultCode: 0,
        ResultDesc: 'The service request is processed successfully.',
        CallbackMetadata: {
          Item: [
            { Name: 'Amount', Value: AMOUNT },
            { Name: 'MpesaReceiptNumber', Value: `BC${i.toString(36).toUpperCase().padStart(8, '0')}` },
            { Name: 'Balance' },
            { Name: 'TransactionDate', Value: 20261126101500 },
            { Name: 'PhoneNumber', Value: 254712345678 },
          ],
        },
      },
    },
  });
}

const pathFor = (id: string): string => `/payments/callback/${id}/${callbackToken(BENCH_CALLBACK_SECRET, id)}`;
const HEADERS = { 'content-type': 'application/json' };

async function startTarget(target: Target, db: BenchDatabase): Promise<ChildHandle> {
  const url = serverDatabaseUrl(db.url);
  if (target === 'api') return startApi('callbacks-api', { databaseUrl: url, poolSize: POOL_SIZE });
  return startChild(
    `callbacks-${target}`,
    resolve(__dirname, target === 'express' ? 'lib/express-callback-server.ts' : 'lib/bare-callback-server.ts'),
    {
      env: {
        DATABASE_URL: url,
        PORT: String(await freePort()),
        CALLBACK_SIGNING_SECRET: BENCH_CALLBACK_SECRET,
        BENCH_BARE_MODE: target === 'bare-apply' ? 'apply' : target === 'bare-lean' ? 'lean' : 'ingest',
        BENCH_DB_POOL_SIZE: POOL_SIZE ? String(POOL_SIZE) : undefined,
      },
    },
  );
}

/** Runs one phase; `distinct` walks through `slice`, one payment per request. */
async function phase(
  label: string,
  url: string,
  scenario: Scenario,
  seeded: Seeded,
  slice: [number, number],
  measure: { duration?: number; amount?: number; connections?: number },
): Promise<LoadSummary & { exhausted: boolean }> {
  let exhausted = false;
  let request: AutocannonRequest;
  if (scenario === 'duplicate') {
    request = { method: 'POST', path: pathFor(seeded.dup.id), headers: HEADERS, body: callbackBody(seeded.dup, 0) };
  } else {
    let next = slice[0];
    request = {
      method: 'POST',
      headers: HEADERS,
      setupRequest: (req: AutocannonRequest) => {
        if (next >= slice[1]) {
          exhausted = true;
          next = slice[0];
        }
        const i = next++;
        const p = seeded.payments[i];
        return { ...req, path: pathFor(p.id), body: callbackBody(p, i + 1) };
      },
    };
  }
  const s = await load(label, {
    url,
    connections: measure.connections ?? CONNECTIONS,
    ...(measure.amount ? { amount: measure.amount } : { duration: measure.duration }),
    requests: [request],
  });
  return { ...s, exhausted };
}

interface Row {
  target: Target;
  scenario: Scenario;
  repeat: number;
  load: LoadSummary;
  outcomes: Record<string, number>;
  serverPeakRssMb?: number;
  /** CPU time the server process used per request (user + system) */
  serverCpuMsPerRequest?: number;
  loadGeneratorCpuMsPerRequest: number;
  /** received_at -> processed_at of the phase's rows (0 for one stored already processed) */
  applyDelayMs?: { p50: number; p99: number; max: number };
}

async function inboxStats(
  db: BenchDatabase,
): Promise<{ total: number; unprocessed: number; completed: number; outcomes: Record<string, number> }> {
  const r = rows<{ total: number; unprocessed: number; completed: number }>(
    await db.handle.db.execute(
      sql`select (select count(*) from callback_inbox)::int as total, (select count(*) from callback_inbox where processed_at is null)::int as unprocessed, (select count(*) from payments where status = 'completed')::int as completed`,
    ),
  )[0];
  const o = rows<{ outcome: string | null; n: number }>(
    await db.handle.db.execute(sql`select outcome, count(*)::int as n from callback_inbox group by outcome`),
  );
  return { ...r, outcomes: Object.fromEntries(o.map((x) => [x.outcome ?? '(none)', x.n])) };
}

/**
 * Stats once the requests still in flight when the load generator stopped have finished, and (where
 * the server processes) every stored callback is processed: the API applies after acknowledging,
 * so its backlog is worked off here, and the CPU it takes is counted (up to 120 s).
 */
async function settled(db: BenchDatabase, processes: boolean): Promise<Awaited<ReturnType<typeof inboxStats>>> {
  let prev = await inboxStats(db);
  let stalled = 0;
  for (let i = 0; i < 1200; i++) {
    await sleep(100);
    const cur = await inboxStats(db);
    if (cur.total === prev.total && (!processes || cur.unprocessed === 0) && cur.completed === prev.completed)
      return cur;
    if (cur.unprocessed < prev.unprocessed || cur.total !== prev.total) stalled = 0;
    else if (++stalled >= 50) return cur; // 5 s without progress: the checks say what is left
    prev = cur;
  }
  return prev;
}

/** Acknowledgement (received_at) to outcome committed (processed_at) of the rows stored after `afterId`, ms. */
async function applyDelays(db: BenchDatabase, afterId: string): Promise<{ p50: number; p99: number; max: number }> {
  const r = rows<{ p50: number | null; p99: number | null; max: number | null }>(
    await db.handle.db.execute(sql`
      select percentile_cont(0.5) within group (order by d) as p50, percentile_cont(0.99) within group (order by d) as p99, max(d) as max
      from (select extract(epoch from processed_at - received_at) * 1000 as d from callback_inbox where id > ${afterId}::bigint) x`),
  )[0];
  const round = (v: number | null) => Math.round((v ?? 0) * 10) / 10;
  return { p50: round(r.p50), p99: round(r.p99), max: round(r.max) };
}

async function lastInboxId(db: BenchDatabase): Promise<string> {
  return rows<{ id: string }>(
    await db.handle.db.execute(sql`select coalesce(max(id), 0)::text as id from callback_inbox`),
  )[0].id;
}

const diff = (a: Record<string, number>, b: Record<string, number>): Record<string, number> =>
  Object.fromEntries(
    Object.entries(b)
      .map(([k, v]) => [k, v - (a[k] ?? 0)])
      .filter(([, v]) => v !== 0),
  );

async function runTarget(target: Target, repeat: number): Promise<Row[]> {
  const db = await freshPostgres(`cb_${target}`);
  const out: Row[] = [];
  let server: ChildHandle | undefined;
  try {
    const seeded = await seed(db);
    server = await startTarget(target, db);
    const url = `http://127.0.0.1:${server.ready.port}`;
    const processes = target !== 'bare' && target !== 'express';
    log(`  ${LABEL[target]} (pid ${server.pid}, log ${server.logFile})`);

    if (WARMUP) {
      assertClean(await phase(`${target} warm-up duplicate`, url, 'duplicate', seeded, [0, 0], { duration: WARMUP }));
      assertClean(
        await phase(`${target} warm-up distinct`, url, 'distinct', seeded, [0, WARM_PAYMENTS], {
          amount: WARM_PAYMENTS,
        }),
      );
      // The API applies after acknowledging: the warm-up's backlog is not the measured phase's.
      await settled(db, processes);
    } else {
      // the duplicate scenario measures duplicates: complete the payment first
      assertClean(
        await phase(`${target} first callback`, url, 'duplicate', seeded, [0, 0], { amount: 1, connections: 1 }),
      );
    }

    for (const scenario of ['duplicate', 'distinct'] as Scenario[]) {
      const before = await inboxStats(db);
      const firstId = await lastInboxId(db);
      const cpu0 = procCpuMs(server.pid);
      const ownCpu0 = process.cpuUsage();
      const s = await phase(
        `${target} ${scenario}`,
        url,
        scenario,
        seeded,
        [WARM_PAYMENTS, WARM_PAYMENTS + PAYMENTS],
        SMOKE ? { amount: SMOKE_REQUESTS } : { duration: DURATION },
      );
      const ownCpu = process.cpuUsage(ownCpu0);
      const after = await settled(db, processes);
      // After the backlog: what applying took after the answers is the server's work too.
      const cpu1 = procCpuMs(server.pid);
      const applyDelayMs = processes ? await applyDelays(db, firstId) : undefined;
      assertClean(s, SMOKE ? SMOKE_REQUESTS : CONNECTIONS);
      // Every acknowledged callback is durably stored (and, where the server processes, processed).
      // A duration run stops with up to one request per connection in flight: those are stored too.
      const stored = after.total - before.total;
      check(
        stored >= s.ok && stored <= s.ok + CONNECTIONS,
        `${target} ${scenario}: ${s.ok} callbacks acknowledged but ${stored} stored`,
      );
      const outcomes = diff(before.outcomes, after.outcomes);
      if (processes) {
        check(after.unprocessed === 0, `${target} ${scenario}: ${after.unprocessed} stored callbacks left unprocessed`);
        if (scenario === 'distinct') {
          check(!s.exhausted, `${target}: ran out of seeded payments; raise BENCH_CALLBACK_PAYMENTS above ${PAYMENTS}`);
          check(
            after.completed - before.completed === stored,
            `${target} distinct: ${stored} success callbacks stored but ${after.completed - before.completed} payments completed`,
          );
        } else {
          check(after.completed === before.completed, `${target} duplicate: a duplicate callback changed a payment`);
        }
      }
      const serverCpuMsPerRequest =
        cpu0 !== undefined && cpu1 !== undefined ? Math.round(((cpu1 - cpu0) / s.requests) * 1000) / 1000 : undefined;
      const loadGeneratorCpuMsPerRequest =
        Math.round(((ownCpu.user + ownCpu.system) / 1000 / s.requests) * 1000) / 1000;
      out.push({
        target,
        scenario,
        repeat,
        load: s,
        outcomes,
        serverCpuMsPerRequest,
        loadGeneratorCpuMsPerRequest,
        applyDelayMs,
      });
      log(
        `    ${scenario.padEnd(9)} ${String(s.rps).padStart(6)} req/s  p50 ${s.latencyMs.p50} ms  p99 ${s.latencyMs.p99} ms  server CPU ${serverCpuMsPerRequest ?? '?'} ms/req  (${s.ok} acknowledged${processes ? `, outcomes ${JSON.stringify(outcomes)}, applied p50/p99 ${applyDelayMs?.p50}/${applyDelayMs?.p99} ms after the answer` : ''})`,
      );
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
  log(
    `callback ingestion: ${CONNECTIONS} connections, ${SMOKE ? `${SMOKE_REQUESTS} requests per phase (smoke)` : `${DURATION} s per phase after ${WARMUP} s warm-up, ${REPEAT} repeat(s)`}, servers ${TARGETS.join(', ')}`,
  );
  const all: Row[] = [];
  let pgVersion: string | undefined;
  for (let r = 0; r < REPEAT; r++) {
    for (const t of TARGETS) {
      if (!LABEL[t]) throw new Error(`unknown target ${t} in BENCH_TARGETS`);
      all.push(...(await runTarget(t, r)));
    }
  }
  {
    const db = await freshPostgres('cb_version', 1);
    pgVersion = db.serverVersion;
    await db.dispose();
  }

  // median over repeats
  const summary = (['duplicate', 'distinct'] as Scenario[]).flatMap((scenario) =>
    TARGETS.map((target) => {
      const rs = all.filter((x) => x.target === target && x.scenario === scenario);
      return {
        scenario,
        target,
        rps: median(rs.map((x) => x.load.rps)),
        p50: median(rs.map((x) => x.load.latencyMs.p50)),
        p99: median(rs.map((x) => x.load.latencyMs.p99)),
        serverPeakRssMb: median(rs.map((x) => x.serverPeakRssMb ?? NaN)),
        serverCpuMsPerRequest: median(rs.map((x) => x.serverCpuMsPerRequest ?? NaN)),
        applyP99Ms: median(rs.map((x) => x.applyDelayMs?.p99 ?? NaN)),
        runs: rs.map((x) => x.load.rps),
      };
    }),
  );
  const get = (scenario: Scenario, target: Target) =>
    summary.find((s) => s.scenario === scenario && s.target === target);

  const body = summary.map((s) => {
    const bare = get(s.scenario, 'bare');
    return [
      s.scenario,
      LABEL[s.target],
      s.rps,
      s.p50,
      s.p99,
      bare ? (s.rps / bare.rps).toFixed(2) : '-',
      Number.isNaN(s.serverCpuMsPerRequest) ? '-' : s.serverCpuMsPerRequest.toFixed(2),
      Number.isNaN(s.applyP99Ms) ? '-' : s.applyP99Ms,
      Number.isNaN(s.serverPeakRssMb) ? '-' : s.serverPeakRssMb,
    ];
  });
  const verdicts: TargetVerdict[] = [];
  for (const scenario of ['duplicate', 'distinct'] as Scenario[]) {
    const api = get(scenario, 'api');
    const bare = get(scenario, 'bare');
    if (!api || !bare || SMOKE) continue;
    // Issue 13: acknowledged after one durable write at >= 0.5x the bare store-only handler, <= 0.5 ms
    // of API CPU per callback (applying included), applied within 50 ms p99 of the acknowledgement.
    const ratio = api.rps / bare.rps;
    verdicts.push({
      name: `callback ingestion, ${scenario}: API / bare handler (store only)`,
      target: '>= 0.50',
      value: ratio.toFixed(2),
      met: ratio >= 0.5,
      miss: ratio < 0.5 ? `${pct(1 - ratio / 0.5)} short` : undefined,
    });
    if (!Number.isNaN(api.serverCpuMsPerRequest))
      verdicts.push({
        name: `callback ingestion, ${scenario}: API CPU per callback, applying included`,
        target: '<= 0.50 ms',
        value: `${api.serverCpuMsPerRequest.toFixed(2)} ms`,
        met: api.serverCpuMsPerRequest <= 0.5,
        miss: api.serverCpuMsPerRequest > 0.5 ? `+${(api.serverCpuMsPerRequest - 0.5).toFixed(2)} ms` : undefined,
      });
    if (!Number.isNaN(api.applyP99Ms))
      verdicts.push({
        name: `callback ingestion, ${scenario}: applied after the acknowledgement, p99`,
        target: '<= 50 ms',
        value: `${api.applyP99Ms} ms`,
        met: api.applyP99Ms <= 50,
        miss: api.applyP99Ms > 50 ? `+${Math.round(api.applyP99Ms - 50)} ms` : undefined,
      });
  }
  const notes: string[] = [];
  for (const scenario of ['duplicate', 'distinct'] as Scenario[]) {
    const api = get(scenario, 'api');
    const bare = get(scenario, 'bare');
    const apply = get(scenario, 'bare-apply');
    if (bare && apply)
      notes.push(
        `${scenario}: processing (the API's statements, hand-written) costs ${pct(1 - apply.rps / bare.rps)} of bare throughput`,
      );
    if (api && apply)
      notes.push(
        `${scenario}: API / bare-apply = ${(api.rps / apply.rps).toFixed(2)} (framework, ORM and logging overhead for the same SQL)`,
      );
  }

  const result = {
    benchmark: 'callback-ingestion',
    date: new Date().toISOString(),
    smoke: SMOKE,
    settings: {
      pgOptions: process.env.BENCH_PG_OPTIONS,
      connections: CONNECTIONS,
      durationSeconds: SMOKE ? undefined : DURATION,
      requestsPerPhase: SMOKE ? SMOKE_REQUESTS : undefined,
      warmupSeconds: WARMUP,
      repeats: REPEAT,
      poolSize: POOL_SIZE ?? 'API default (10)',
      logLevel: process.env.BENCH_LOG_LEVEL ?? 'info',
      seededPayments: PAYMENTS,
    },
    summary,
    runs: all,
    targets: verdicts,
    notes,
    machine: machineInfo(pgVersion),
  };
  const file = writeResult('callbacks', result);
  process.stdout.write(
    `\n${table(['scenario', 'server', 'req/s', 'p50 ms', 'p99 ms', 'vs bare', 'server CPU ms/req', 'applied p99 ms', 'peak RSS MB'], body)}\n`,
  );
  if (verdicts.length) process.stdout.write(`\n${verdictTable(verdicts)}\n`);
  for (const n of notes) process.stdout.write(`  ${n}\n`);
  if (process.env.BENCH_CPU_PROF === '1') process.stdout.write(`\nCPU profiles: ${CPU_PROF_DIR}\n`);
  process.stdout.write(`\n-> ${file}\n`);
}

run(main);
