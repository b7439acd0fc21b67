/**
 * Per-shop merchant accounts (issue 10): STK push through the API with every shop on its OWN
 * M-Pesa account (its own Daraja app, consumer key/secret, shortcode and passkey, sealed at rest)
 * against every shop on ONE shared (platform) account, side by side in one run, same load:
 * 64 connections, each push a different order, shop and phone, with an Idempotency-Key.
 *
 * Per phase: a fresh database, simulator and API. A warm-up sends one push per shop (so each own
 * account has fetched its OAuth token and been decrypted once: the steady state a real deployment
 * is in for the token's hour), then the measured run. Reported per phase: pushes/s, p50/p99, API
 * CPU ms per push, database commits per push, OAuth calls (warm-up: 1 shared, one per consumer
 * key own; measured run: 0). Target: own within 10 % of shared on pushes/s and CPU per push.
 *
 *   pnpm --filter @smartduka/api run bench:accounts
 *   BENCH_SMOKE=1 ...     200 shops, 300 pushes per phase
 *   BENCH_DURATION=10 BENCH_ROUNDS=2
 */
import { createHash, randomUUID } from 'node:crypto';
import { mintToken } from '../apps/api/src/auth/token';
import { SecretBox } from '../apps/api/src/common/secret-box';
import { sealContext } from '../apps/api/src/payments/merchant-accounts.service';
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
  BENCH_CREDENTIALS_KEY,
  BENCH_JWT_SECRET,
  SANDBOX_PASSKEY,
  SHORTCODE,
  SIM_KEY,
  SIM_SECRET,
  startApi,
  startSimulator,
} from './lib/servers';

const CONNECTIONS = envInt('BENCH_CONNECTIONS', 64, 1);
const DURATION = envInt('BENCH_DURATION', 10, 1);
const ROUNDS = SMOKE ? 1 : envInt('BENCH_ROUNDS', 2, 1);
const SMOKE_REQUESTS = 300;
const SHOPS = SMOKE ? 200 : envInt('BENCH_SHOPS', 2_000, 1);
const ORDERS = SMOKE ? 2_000 : envInt('BENCH_PUSH_ORDERS', 60_000, 1);
const AMOUNT = 10;
const CALLBACK_DELAY_MS = 600_000;

const shopOf = (i: number): string => `acct-shop-${i % SHOPS}`;
const orderOf = (i: number): string => `AP-${i}`;
const phoneOf = (i: number): string => `25471${String(i).padStart(7, '0')}`;
/** Shop i's own paybill (300000 + i), Daraja app and passkey. */
const shortcodeOf = (i: number): string => String(300_000 + i);
const appKeyOf = (i: number): string => `bench-app-key-${i}`;
const appSecretOf = (i: number): string => `bench-app-secret-${i}`;
const passkeyOf = (i: number): string => createHash('sha256').update(`bench-passkey-${i}`).digest('hex');

type Mode = 'shared' | 'own';

async function seedOrders(db: BenchDatabase): Promise<void> {
  await db.handle.db.execute(sql`
    insert into orders (shop_id, id, total_minor, currency)
    select 'acct-shop-' || (i % ${SHOPS}), 'AP-' || i, ${AMOUNT * 100}, 'KES' from generate_series(0, ${ORDERS - 1}) as i`);
  await db.handle.db.execute(sql`analyze orders`);
}

/** Every shop's own account, sealed as the API seals it (the API's CREDENTIALS_KEYS). */
async function seedAccounts(db: BenchDatabase): Promise<void> {
  const box = new SecretBox([{ id: 'bench', key: BENCH_CREDENTIALS_KEY }]);
  for (let start = 0; start < SHOPS; start += 500) {
    const values = [];
    for (let i = start; i < Math.min(SHOPS, start + 500); i++) {
      const id = randomUUID();
      const shopId = shopOf(i);
      const secrets = { consumerKey: appKeyOf(i), consumerSecret: appSecretOf(i), passkey: passkeyOf(i) };
      const settings = { type: 'paybill', shortcode: shortcodeOf(i) };
      const sealed = box.seal(
        JSON.stringify(secrets),
        sealContext({ id, provider: 'mpesa', shopId, environment: 'sandbox', settings }),
      );
      const fingerprints = Object.fromEntries(Object.entries(secrets).map(([k, v]) => [k, box.fingerprint(v)]));
      values.push(
        sql`(${id}, ${shopId}, 'mpesa', 'sandbox', ${JSON.stringify(settings)}::jsonb, ${sealed.sealed}, ${sealed.keyId}, ${JSON.stringify(fingerprints)}::jsonb, 'bench')`,
      );
    }
    await db.handle.db.execute(
      sql`insert into merchant_accounts (id, shop_id, provider, environment, settings, secrets, key_id, fingerprints, created_by) values ${sql.join(values, sql`, `)}`,
    );
  }
}

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
        cursor.exhausted = true;
        cursor.next = 0;
      }
      const n = cursor.next++;
      return {
        ...req,
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${tokenFor(shopOf(n))}`,
          'idempotency-key': `acct-${n}`,
        },
        body: JSON.stringify({ phoneNumber: phoneOf(n), amount: AMOUNT, orderId: orderOf(n) }),
      };
    },
  };
}

interface SimStats {
  oauthRequests: number;
  pushRequests: number;
}

async function commits(db: BenchDatabase): Promise<number> {
  // Backends report their counters when idle (at most once a second): give them the time.
  await new Promise((r) => setTimeout(r, 1_200));
  return rows<{ n: string }>(
    await db.handle.db.execute(
      sql`select xact_commit::text as n from pg_stat_database where datname = current_database()`,
    ),
  ).map((r) => Number(r.n))[0];
}

interface PhaseResult {
  mode: Mode;
  round: number;
  api: LoadSummary;
  cpuMsPerPush?: number;
  commitsPerPush: number;
  warmupOauthCalls: number;
  measuredOauthCalls: number;
}

async function phase(mode: Mode, round: number): Promise<PhaseResult> {
  const db = await freshPostgres(`acct_${mode}_${round}`);
  let sim: (ChildHandle & { url: string }) | undefined;
  let api: ChildHandle | undefined;
  try {
    await seedOrders(db);
    if (mode === 'own') await seedAccounts(db);
    const own = Array.from({ length: SHOPS }, (_, i) => i);
    sim = await startSimulator(`acct-sim-${mode}`, {
      callbackDelayMs: CALLBACK_DELAY_MS,
      accounts: [
        { shortcode: SHORTCODE, passkey: SANDBOX_PASSKEY, tillNumbers: ['174380'] },
        ...(mode === 'own' ? own.map((i) => ({ shortcode: shortcodeOf(i), passkey: passkeyOf(i) })) : []),
      ],
      apps: [
        { consumerKey: SIM_KEY, consumerSecret: SIM_SECRET },
        ...(mode === 'own'
          ? own.map((i) => ({ consumerKey: appKeyOf(i), consumerSecret: appSecretOf(i), shortcodes: [shortcodeOf(i)] }))
          : []),
      ],
    });
    api = await startApi(`acct-api-${mode}`, { databaseUrl: db.url, darajaUrl: sim.url });
    const url = `http://127.0.0.1:${api.ready.port}`;
    const cursor: { next: number; exhausted?: boolean } = { next: 0 };

    // Warm-up: one push per shop (the first SHOPS orders are one per shop).
    const w0 = await sim.request<SimStats>('stats');
    const warm = await load(`${mode}: warm-up, one push per shop`, {
      url,
      connections: CONNECTIONS,
      amount: SHOPS,
      requests: [apiRequest(cursor)],
    });
    assertClean(warm, SHOPS);
    const w1 = await sim.request<SimStats>('stats');
    const warmupOauthCalls = w1.oauthRequests - w0.oauthRequests;
    check(
      warmupOauthCalls === (mode === 'own' ? SHOPS : 1),
      `${mode}: ${warmupOauthCalls} OAuth calls for ${SHOPS} shops (want one per consumer key: ${mode === 'own' ? SHOPS : 1})`,
    );

    const c0 = await commits(db);
    const cpu0 = procCpuMs(api.pid);
    const p0 = await sim.request<SimStats>('stats');
    const measured = await load(`${mode}: measured`, {
      url,
      connections: CONNECTIONS,
      ...(SMOKE ? { amount: SMOKE_REQUESTS } : { duration: DURATION }),
      requests: [apiRequest(cursor)],
    });
    const cpu1 = procCpuMs(api.pid);
    const p1 = await sim.request<SimStats>('stats');
    const c1 = await commits(db);
    check(!cursor.exhausted, `ran out of seeded orders; raise BENCH_PUSH_ORDERS above ${ORDERS}`);
    assertClean(measured, SMOKE ? SMOKE_REQUESTS : CONNECTIONS);
    check(
      p1.pushRequests - p0.pushRequests >= measured.ok,
      `${mode}: ${measured.ok} pushes answered 201 but the simulator counted ${p1.pushRequests - p0.pushRequests}`,
    );
    if (mode === 'own') {
      const wrong = rows<{ n: number }>(
        await db.handle.db.execute(
          sql`select count(*)::int as n from payments where merchant_account_id is null or merchant_account_id not in (select id from merchant_accounts m where m.shop_id = payments.shop_id)`,
        ),
      )[0].n;
      check(wrong === 0, `own: ${wrong} payments made with another shop's account or the platform's`);
    }
    const cpuMsPerPush =
      cpu0 !== undefined && cpu1 !== undefined
        ? Math.round(((cpu1 - cpu0) / measured.requests) * 100) / 100
        : undefined;
    const commitsPerPush = Math.round(((c1 - c0) / measured.requests) * 100) / 100;
    const measuredOauthCalls = p1.oauthRequests - p0.oauthRequests;
    log(
      `  ${mode.padEnd(6)} round ${round}: ${String(measured.rps).padStart(6)} pushes/s  p50 ${measured.latencyMs.p50} ms  p99 ${measured.latencyMs.p99} ms  CPU ${cpuMsPerPush ?? '?'} ms/push  ${commitsPerPush} commits/push  OAuth warm-up ${warmupOauthCalls}, measured ${measuredOauthCalls}`,
    );
    return { mode, round, api: measured, cpuMsPerPush, commitsPerPush, warmupOauthCalls, measuredOauthCalls };
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
    `Per-shop accounts: ${SHOPS} shops, ${CONNECTIONS} connections, ${SMOKE ? `${SMOKE_REQUESTS} pushes per phase (smoke)` : `${DURATION} s per phase, ${ROUNDS} round(s)`}`,
  );
  const phases: PhaseResult[] = [];
  for (let r = 1; r <= ROUNDS; r++) {
    // Alternate the order each round so drift on a busy machine does not favour one mode.
    const order: Mode[] = r % 2 === 1 ? ['shared', 'own'] : ['own', 'shared'];
    for (const m of order) phases.push(await phase(m, r));
  }
  const of = (m: Mode) => phases.filter((p) => p.mode === m);
  const rps = (m: Mode) => median(of(m).map((p) => p.api.rps));
  const cpu = (m: Mode) => median(of(m).map((p) => p.cpuMsPerPush ?? NaN));
  const rpsRatio = rps('own') / rps('shared');
  const cpuRatio = cpu('own') / cpu('shared');
  const verdicts: TargetVerdict[] = [];
  if (!SMOKE) {
    verdicts.push({
      name: 'pushes/s, own accounts / one shared account',
      target: '>= 0.90',
      value: rpsRatio.toFixed(2),
      met: rpsRatio >= 0.9,
      miss: rpsRatio < 0.9 ? `${pct(1 - rpsRatio / 0.9)} short` : undefined,
    });
    verdicts.push({
      name: 'API CPU per push, own accounts / one shared account',
      target: '<= 1.10',
      value: Number.isFinite(cpuRatio) ? cpuRatio.toFixed(2) : '?',
      met: Number.isFinite(cpuRatio) && cpuRatio <= 1.1,
      miss: cpuRatio > 1.1 ? `${pct(cpuRatio / 1.1 - 1)} over` : undefined,
    });
  }
  const body = phases.map((p) => [
    p.mode,
    p.round,
    p.api.rps,
    `${p.api.latencyMs.p50} / ${p.api.latencyMs.p99}`,
    p.cpuMsPerPush ?? '-',
    p.commitsPerPush,
    `${p.warmupOauthCalls} / ${p.measuredOauthCalls}`,
  ]);
  const pgDb = await freshPostgres('acct_version', 1);
  const pgVersion = pgDb.serverVersion;
  await pgDb.dispose();
  const file = writeResult('accounts', {
    benchmark: 'accounts',
    date: new Date().toISOString(),
    smoke: SMOKE,
    settings: { shops: SHOPS, connections: CONNECTIONS, durationSeconds: SMOKE ? undefined : DURATION, rounds: ROUNDS },
    phases,
    ratios: { pushesPerSecond: rpsRatio, cpuPerPush: cpuRatio },
    targets: verdicts,
    machine: machineInfo(pgVersion),
  });
  process.stdout.write(
    `\n${table(['accounts', 'round', 'pushes/s', 'p50/p99 ms', 'API CPU ms/push', 'commits/push', 'OAuth warm-up / measured'], body)}\n`,
  );
  process.stdout.write(
    `\nown / shared: pushes/s ${rpsRatio.toFixed(2)}, CPU per push ${Number.isFinite(cpuRatio) ? cpuRatio.toFixed(2) : '?'}\n`,
  );
  if (verdicts.length) process.stdout.write(`\n${verdictTable(verdicts)}\n`);
  process.stdout.write(`\n-> ${file}\n`);
}

run(main);
