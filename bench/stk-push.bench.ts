/**
 * STK push: POST /payments/stk-push through the API against calling the Daraja simulator's
 * processrequest endpoint directly (a client that already holds an OAuth token), at 64 concurrent
 * connections, on a fresh Postgres database; plus the number of OAuth calls the API makes.
 *
 * Each process is separate: this one (autocannon), the API, the simulator. Every push is for a
 * different order, shop (of 2,000) and phone number, with an Idempotency-Key, under the API's
 * production rate limits — like many tills, not one till hammering. The simulator answers the
 * push at once (or after BENCH_DARAJA_LATENCY_MS) and would call back only after 10 minutes, so
 * no callback traffic mixes in. Phases:
 *   latency L (for each L in BENCH_DARAJA_LATENCY_MS, default "0,300"): direct, then the API
 *     (fresh simulator, API and database per L: the API starts without a token and must fetch
 *     exactly one, however many requests arrive at once)
 *   token rotation: the simulator issues tokens that live BENCH_TOKEN_TTL s (default 8; the API
 *     refreshes at half the lifetime when it is shorter than its 300 s margin); over
 *     BENCH_ROTATION_DURATION s the API must make at most one OAuth call per refresh interval (+1).
 *
 *   pnpm bench:stk-push
 *   BENCH_SMOKE=1 pnpm bench:stk-push      300 pushes per phase, latency 0 only
 *   BENCH_DURATION=10 BENCH_WARMUP=3 BENCH_CONNECTIONS=64 BENCH_DARAJA_LATENCY_MS=0,300
 *   BENCH_PUSH_SHOPS=2000                  shops the pushes are spread over (production limits: 120 pushes/min each)
 *   BENCH_TRACE_QUERIES=1                  also SQL statements and commits per push (and by statement)
 */
import { mintToken } from '../apps/api/src/auth/token';
import { formatNairobiTimestamp, stkPassword } from '../packages/daraja-simulator/src';
import {
  check,
  envInt,
  freshPostgres,
  log,
  machineInfo,
  pct,
  rows,
  run,
  SMOKE,
  table,
  verdictTable,
  writeResult,
  type BenchDatabase,
  type TargetVerdict,
} from './lib/common';
import { sql, type AutocannonRequest } from './lib/deps';
import { assertClean, load, type LoadSummary } from './lib/load';
import { procCpuMs, removeLog, type ChildHandle } from './lib/procs';
import {
  BENCH_JWT_SECRET,
  CPU_PROF_DIR,
  SANDBOX_PASSKEY,
  SHORTCODE,
  SIM_KEY,
  SIM_SECRET,
  startApi,
  startSimulator,
} from './lib/servers';

const CONNECTIONS = envInt('BENCH_CONNECTIONS', 64, 1);
const DURATION = envInt('BENCH_DURATION', 10, 1);
const WARMUP = SMOKE ? 0 : envInt('BENCH_WARMUP', 3);
const SMOKE_REQUESTS = 300;
const LATENCIES = SMOKE
  ? [0]
  : (process.env.BENCH_DARAJA_LATENCY_MS ?? '0,300').split(',').map((s) => Number(s.trim()));
const TOKEN_TTL = envInt('BENCH_TOKEN_TTL', 8, 1);
const ROTATION_DURATION = SMOKE ? 6 : envInt('BENCH_ROTATION_DURATION', 20, 1);
const ORDERS = SMOKE ? 2_000 : envInt('BENCH_PUSH_ORDERS', 60_000, 1);
/** BENCH_PUSH_SHOPS: fewer shops reach the steady state (each shop's account cached after its first push) in a short run */
const SHOPS = envInt('BENCH_PUSH_SHOPS', 2_000, 1);
const AMOUNT = 10; // KES
/** the simulated customer answers after 10 minutes: no callbacks during a run */
const CALLBACK_DELAY_MS = 600_000;
/** BENCH_TRACE_QUERIES=1: the API counts its SQL; each phase reports statements and commits per push. */
const TRACE = process.env.BENCH_TRACE_QUERIES === '1';

interface SqlCost {
  statements: number;
  commits: number;
  byText: Record<string, number>;
}

const shopOf = (i: number): string => `bench-shop-${i % SHOPS}`;
const orderOf = (i: number): string => `SP-${i}`;
// 2547 1xxxxxxx: never one of the simulator's magic numbers (254700000001-8)
const phoneOf = (i: number): string => `25471${String(i).padStart(7, '0')}`;

async function seedOrders(db: BenchDatabase): Promise<void> {
  await db.handle.db.execute(sql`
    insert into orders (shop_id, id, total_minor, currency)
    select 'bench-shop-' || (i % ${SHOPS}), 'SP-' || i, ${AMOUNT * 100}, 'KES' from generate_series(0, ${ORDERS - 1}) as i`);
  await db.handle.db.execute(sql`analyze orders`);
}

/** Nairobi timestamp + password, recomputed once a second (Daraja checks it is within minutes of now). */
function darajaCredentials(): () => { Timestamp: string; Password: string } {
  let second = -1;
  let cached = { Timestamp: '', Password: '' };
  return () => {
    const now = Math.floor(Date.now() / 1000);
    if (now !== second) {
      second = now;
      const Timestamp = formatNairobiTimestamp(new Date(now * 1000));
      cached = { Timestamp, Password: stkPassword(SHORTCODE, SANDBOX_PASSKEY, Timestamp) };
    }
    return cached;
  };
}

async function oauth(simUrl: string): Promise<string> {
  const res = await fetch(`${simUrl}/oauth/v1/generate?grant_type=client_credentials`, {
    headers: { Authorization: `Basic ${Buffer.from(`${SIM_KEY}:${SIM_SECRET}`).toString('base64')}` },
  });
  const body = (await res.json()) as { access_token?: string };
  check(res.status === 200 && body.access_token, `simulator OAuth answered ${res.status}`);
  return body.access_token;
}

interface SimStats {
  oauthRequests: number;
  pushRequests: number;
}

/** Autocannon straight at the simulator's push endpoint. */
function directRequest(token: string): AutocannonRequest {
  const creds = darajaCredentials();
  let i = 0;
  return {
    method: 'POST',
    path: '/mpesa/stkpush/v1/processrequest',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    setupRequest: (req: AutocannonRequest) => {
      const n = i++;
      const phone = phoneOf(n);
      return {
        ...req,
        body: JSON.stringify({
          BusinessShortCode: SHORTCODE,
          ...creds(),
          TransactionType: 'CustomerPayBillOnline',
          Amount: AMOUNT,
          PartyA: phone,
          PartyB: SHORTCODE,
          PhoneNumber: phone,
          CallBackURL: 'http://127.0.0.1:9/payments/callback/direct',
          AccountReference: `SP${n}`,
          TransactionDesc: 'POS payment',
        }),
      };
    },
  };
}

/** Autocannon at the API; `cursor` walks through the seeded orders (one order per push). */
function apiRequest(cursor: { next: number; exhausted?: boolean }): AutocannonRequest {
  const tokens = new Map<string, string>();
  const tokenFor = (shop: string): string => {
    let t = tokens.get(shop);
    if (!t) tokens.set(shop, (t = mintToken(BENCH_JWT_SECRET, { sub: `till-${shop}`, shopId: shop, role: 'cashier' })));
    return t;
  };
  return {
    method: 'POST',
    path: '/payments/stk-push',
    setupRequest: (req: AutocannonRequest) => {
      if (cursor.next >= ORDERS) {
        cursor.exhausted = true; // the requests now fail with 409 and the run reports it
        cursor.next = 0;
      }
      const n = cursor.next++;
      return {
        ...req,
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${tokenFor(shopOf(n))}`,
          'idempotency-key': `bench-${n}`,
        },
        body: JSON.stringify({ phoneNumber: phoneOf(n), amount: AMOUNT, orderId: orderOf(n) }),
      };
    },
  };
}

interface PhaseResult {
  phase: string;
  latencyMs: number;
  direct?: LoadSummary;
  api: LoadSummary;
  apiCpuMsPerRequest?: number;
  /** BENCH_TRACE_QUERIES=1: SQL statements (BEGIN/COMMIT included) and durable commits per push */
  statementsPerPush?: number;
  commitsPerPush?: number;
  /** the statements of the measured phase, per push, by SQL text (first 160 characters) */
  statementsByText?: Record<string, number>;
  oauthCalls: number;
  /** rotation phase: how many OAuth calls one per refresh interval allows */
  oauthAllowed?: number;
}

const measure = SMOKE ? { amount: SMOKE_REQUESTS } : { duration: DURATION };

async function latencyPhase(latency: number): Promise<PhaseResult> {
  const db = await freshPostgres(`push_${latency}`);
  let sim: (ChildHandle & { url: string }) | undefined;
  let api: ChildHandle | undefined;
  try {
    await seedOrders(db);
    sim = await startSimulator('push-sim', { callbackDelayMs: CALLBACK_DELAY_MS });
    await sim.request('faults', { faults: latency ? { latencyMs: { push: latency } } : {} });
    const simUrl = sim.url;

    // direct
    const token = await oauth(simUrl);
    if (WARMUP)
      assertClean(
        await load('direct warm-up', {
          url: simUrl,
          connections: CONNECTIONS,
          duration: WARMUP,
          requests: [directRequest(token)],
        }),
      );
    const s0 = await sim.request<SimStats>('stats');
    const direct = await load(`direct, latency ${latency} ms`, {
      url: simUrl,
      connections: CONNECTIONS,
      ...measure,
      requests: [directRequest(token)],
    });
    const s1 = await sim.request<SimStats>('stats');
    assertClean(direct, SMOKE ? SMOKE_REQUESTS : CONNECTIONS);
    check(
      s1.pushRequests - s0.pushRequests >= direct.ok,
      `direct: ${direct.ok} pushes answered but the simulator counted ${s1.pushRequests - s0.pushRequests}`,
    );
    log(
      `  latency ${latency} ms  direct ${String(direct.rps).padStart(6)} pushes/s  p50 ${direct.latencyMs.p50} ms  p99 ${direct.latencyMs.p99} ms`,
    );

    // through the API (starts without a token; the direct client's token is a different one)
    api = await startApi('push-api', { databaseUrl: db.url, darajaUrl: simUrl });
    const cursor: { next: number; exhausted?: boolean } = { next: 0 };
    const o0 = await sim.request<SimStats>('stats');
    if (WARMUP)
      assertClean(
        await load('API warm-up', {
          url: `http://127.0.0.1:${api.ready.port}`,
          connections: CONNECTIONS,
          duration: WARMUP,
          requests: [apiRequest(cursor)],
        }),
      );
    if (TRACE) await api.request('sqlCost');
    const cpu0 = procCpuMs(api.pid);
    const p0 = await sim.request<SimStats>('stats');
    const viaApi = await load(`API, latency ${latency} ms`, {
      url: `http://127.0.0.1:${api.ready.port}`,
      connections: CONNECTIONS,
      ...measure,
      requests: [apiRequest(cursor)],
    });
    const cpu1 = procCpuMs(api.pid);
    const sqlCost = TRACE ? await api.request<SqlCost>('sqlCost') : undefined;
    const p1 = await sim.request<SimStats>('stats');
    check(!cursor.exhausted, `ran out of seeded orders; raise BENCH_PUSH_ORDERS above ${ORDERS}`);
    assertClean(viaApi, SMOKE ? SMOKE_REQUESTS : CONNECTIONS);
    check(
      p1.pushRequests - p0.pushRequests >= viaApi.ok,
      `API: ${viaApi.ok} pushes answered 201 but the simulator counted ${p1.pushRequests - p0.pushRequests}`,
    );
    const pending = rows<{ n: number }>(
      await db.handle.db.execute(sql`select count(*)::int as n from payments where status = 'pending'`),
    )[0].n;
    check(pending >= viaApi.ok, `API: ${viaApi.ok} pushes accepted but only ${pending} pending payments recorded`);
    const oauthCalls = p1.oauthRequests - o0.oauthRequests;
    check(oauthCalls === 1, `API made ${oauthCalls} OAuth calls in one token lifetime (want 1)`);
    const apiCpuMsPerRequest =
      cpu0 !== undefined && cpu1 !== undefined ? Math.round(((cpu1 - cpu0) / viaApi.requests) * 100) / 100 : undefined;
    // Per push that reached Daraja in the window (the simulator's count): the SQL of the warm-up's
    // last requests, which finish in the window, is counted with the pushes they make there.
    const pushes = Math.max(1, p1.pushRequests - p0.pushRequests);
    const perPush = (n: number) => Math.round((n / pushes) * 100) / 100;
    const sqlFigures = sqlCost
      ? {
          statementsPerPush: perPush(sqlCost.statements),
          commitsPerPush: perPush(sqlCost.commits),
          statementsByText: Object.fromEntries(
            Object.entries(sqlCost.byText)
              .sort((a, b) => b[1] - a[1])
              .map(([text, n]) => [text.replace(/\s+/g, ' ').slice(0, 160), perPush(n)]),
          ),
        }
      : {};
    log(
      `  latency ${latency} ms  API    ${String(viaApi.rps).padStart(6)} pushes/s  p50 ${viaApi.latencyMs.p50} ms  p99 ${viaApi.latencyMs.p99} ms  API CPU ${apiCpuMsPerRequest ?? '?'} ms/push  OAuth calls ${oauthCalls}` +
        (sqlCost
          ? `  SQL ${sqlFigures.statementsPerPush} statements, ${sqlFigures.commitsPerPush} commits per push`
          : ''),
    );
    if (sqlCost)
      for (const [text, n] of Object.entries(sqlFigures.statementsByText ?? {}))
        log(`      ${String(n).padStart(5)}  ${text}`);
    return {
      phase: `latency ${latency} ms`,
      latencyMs: latency,
      direct,
      api: viaApi,
      apiCpuMsPerRequest,
      ...sqlFigures,
      oauthCalls,
    };
  } finally {
    if (api) {
      await api.stop();
      removeLog(api.logFile);
    }
    if (sim) {
      await sim.stop();
      removeLog(sim.logFile);
    }
    await db.dispose();
  }
}

/** Short-lived tokens: OAuth calls must stay at one per refresh interval under 64 concurrent pushes. */
async function rotationPhase(): Promise<PhaseResult> {
  const db = await freshPostgres('push_rotation');
  let sim: (ChildHandle & { url: string }) | undefined;
  let api: ChildHandle | undefined;
  try {
    await seedOrders(db);
    sim = await startSimulator('push-sim-rotation', { callbackDelayMs: CALLBACK_DELAY_MS, tokenTtlSeconds: TOKEN_TTL });
    api = await startApi('push-api-rotation', { databaseUrl: db.url, darajaUrl: sim.url });
    const s0 = await sim.request<SimStats>('stats');
    const started = Date.now();
    const cursor: { next: number; exhausted?: boolean } = { next: 0 };
    const s = await load(`API, token TTL ${TOKEN_TTL} s`, {
      url: `http://127.0.0.1:${api.ready.port}`,
      connections: CONNECTIONS,
      duration: ROTATION_DURATION,
      requests: [apiRequest(cursor)],
    });
    check(!cursor.exhausted, `ran out of seeded orders; raise BENCH_PUSH_ORDERS above ${ORDERS}`);
    const seconds = (Date.now() - started) / 1000;
    const s1 = await sim.request<SimStats>('stats');
    assertClean(s, CONNECTIONS);
    // DarajaService: a lifetime at or under its 300 s margin is used for half its length.
    const refreshEvery = TOKEN_TTL > 300 ? TOKEN_TTL - 300 : TOKEN_TTL / 2;
    const allowed = Math.ceil(seconds / refreshEvery) + 1;
    const oauthCalls = s1.oauthRequests - s0.oauthRequests;
    check(
      oauthCalls >= 1 && oauthCalls <= allowed,
      `token rotation: ${oauthCalls} OAuth calls in ${seconds.toFixed(1)} s with a token refreshed every ${refreshEvery} s (allowed ${allowed})`,
    );
    log(
      `  token TTL ${TOKEN_TTL} s: ${s.ok} pushes in ${seconds.toFixed(1)} s, ${oauthCalls} OAuth calls (at most ${allowed} allowed: one per ${refreshEvery} s refresh interval, +1)`,
    );
    return { phase: `token rotation (TTL ${TOKEN_TTL} s)`, latencyMs: 0, api: s, oauthCalls, oauthAllowed: allowed };
  } finally {
    if (api) {
      await api.stop();
      removeLog(api.logFile);
    }
    if (sim) {
      await sim.stop();
      removeLog(sim.logFile);
    }
    await db.dispose();
  }
}

async function main(): Promise<void> {
  log(
    `STK push: ${CONNECTIONS} connections, ${SMOKE ? `${SMOKE_REQUESTS} pushes per phase (smoke)` : `${DURATION} s per phase after ${WARMUP} s warm-up`}, simulated Daraja latency ${LATENCIES.join(' / ')} ms`,
  );
  const phases: PhaseResult[] = [];
  for (const l of LATENCIES) phases.push(await latencyPhase(l));
  phases.push(await rotationPhase());
  const pgDb = await freshPostgres('push_version', 1);
  const pgVersion = pgDb.serverVersion;
  await pgDb.dispose();

  const verdicts: TargetVerdict[] = [];
  const body = phases.map((p) => {
    const ratio = p.direct ? p.api.rps / p.direct.rps : undefined;
    if (ratio !== undefined && !SMOKE) {
      // issue 13: at a 300 ms Daraja (the realistic case) >= 0.9; other latencies keep the old 0.7
      const want = p.latencyMs >= 300 ? 0.9 : 0.7;
      verdicts.push({
        name: `STK push via API / direct, Daraja latency ${p.latencyMs} ms`,
        target: `>= ${want.toFixed(2)}`,
        value: ratio.toFixed(2),
        met: ratio >= want,
        miss: ratio < want ? `${pct(1 - ratio / want)} short` : undefined,
      });
    }
    if (p.direct && !SMOKE && p.apiCpuMsPerRequest !== undefined)
      verdicts.push({
        name: `STK push API CPU per push, Daraja latency ${p.latencyMs} ms (issue 13)`,
        target: '<= 1.5 ms',
        value: `${p.apiCpuMsPerRequest} ms`,
        met: p.apiCpuMsPerRequest <= 1.5,
        miss: p.apiCpuMsPerRequest > 1.5 ? `${(p.apiCpuMsPerRequest / 1.5).toFixed(1)}x` : undefined,
      });
    if (p.statementsPerPush !== undefined && p.commitsPerPush !== undefined && !SMOKE)
      verdicts.push({
        name: `STK push SQL statements / commits per push, Daraja latency ${p.latencyMs} ms (issue 13)`,
        // the window also holds the reconciler's ticks (a few statements per 5 s): 0.05 of slack per push
        target: '<= 6 / <= 3',
        value: `${p.statementsPerPush} / ${p.commitsPerPush}`,
        met: p.statementsPerPush <= 6.05 && p.commitsPerPush <= 3.05,
      });
    return [
      p.phase,
      p.direct ? p.direct.rps : '-',
      p.direct ? `${p.direct.latencyMs.p50} / ${p.direct.latencyMs.p99}` : '-',
      p.api.rps,
      `${p.api.latencyMs.p50} / ${p.api.latencyMs.p99}`,
      ratio !== undefined ? ratio.toFixed(2) : '-',
      p.apiCpuMsPerRequest ?? '-',
      p.oauthAllowed ? `${p.oauthCalls} (<= ${p.oauthAllowed})` : String(p.oauthCalls),
    ];
  });
  const rotation = phases.find((p) => p.oauthAllowed !== undefined);
  if (!SMOKE) {
    const oauthOk = phases.every((p) => (p.oauthAllowed ? p.oauthCalls <= p.oauthAllowed : p.oauthCalls === 1));
    verdicts.push({
      name: 'OAuth calls per token lifetime',
      target: '1',
      value:
        phases.map((p) => p.oauthCalls).join(', ') +
        (rotation ? ` (rotation: <= ${rotation.oauthAllowed} allowed)` : ''),
      met: oauthOk,
    });
  }
  const result = {
    benchmark: 'stk-push',
    date: new Date().toISOString(),
    smoke: SMOKE,
    settings: {
      connections: CONNECTIONS,
      durationSeconds: SMOKE ? undefined : DURATION,
      requestsPerPhase: SMOKE ? SMOKE_REQUESTS : undefined,
      warmupSeconds: WARMUP,
      darajaLatencyMs: LATENCIES,
      tokenTtlSeconds: TOKEN_TTL,
      rotationSeconds: ROTATION_DURATION,
      shops: SHOPS,
      logLevel: process.env.BENCH_LOG_LEVEL ?? 'info',
      rateLimits: 'API production defaults',
    },
    phases,
    targets: verdicts,
    machine: machineInfo(pgVersion),
  };
  const file = writeResult('stk-push', result);
  process.stdout.write(
    `\n${table(['phase', 'direct/s', 'direct p50/p99 ms', 'API/s', 'API p50/p99 ms', 'ratio', 'API CPU ms/push', 'OAuth calls'], body)}\n`,
  );
  if (verdicts.length) process.stdout.write(`\n${verdictTable(verdicts)}\n`);
  if (process.env.BENCH_CPU_PROF === '1') process.stdout.write(`\nCPU profiles: ${CPU_PROF_DIR}\n`);
  process.stdout.write(`\n-> ${file}\n`);
}

run(main);
