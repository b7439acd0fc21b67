/**
 * Resident memory of the API under sustained load. 64 connections play tills for
 * BENCH_SOAK_SECONDS (default 60): each sale is POST /orders, POST /payments/stk-push, GET
 * /payments/stk-status; the simulator (own process) answers the push and calls back 200 ms later,
 * so callbacks flow in the whole time, and the reconciler ticks as in production. The API's
 * memory is sampled every second (RSS from the kernel, V8 heap over IPC); before and after the
 * load the heap is measured after a full GC, so growth that survives GC (a leak) shows.
 * Runs on Postgres (production) and on the embedded PGlite database (development), each fresh.
 *
 *   pnpm bench:memory
 *   BENCH_SMOKE=1 pnpm bench:memory        5 s per database
 *   BENCH_SOAK_SECONDS=60 BENCH_CONNECTIONS=64 BENCH_DB=postgres,pglite
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { mintToken } from '../apps/api/src/auth/token';
import {
  check,
  envInt,
  freshPostgres,
  log,
  machineInfo,
  rows,
  run,
  sleep,
  SMOKE,
  table,
  writeResult,
  type BenchDatabase,
} from './lib/common';
import { sql, type AutocannonRequest } from './lib/deps';
import { load, type LoadSummary } from './lib/load';
import { procRss, removeLog, type ChildHandle } from './lib/procs';
import { BENCH_JWT_SECRET, startApi, startSimulator } from './lib/servers';

const CONNECTIONS = envInt('BENCH_CONNECTIONS', 64, 1);
const SECONDS = SMOKE ? 5 : envInt('BENCH_SOAK_SECONDS', 60, 1);
const DBS = (process.env.BENCH_DB ?? 'postgres,pglite').split(',').map((s) => s.trim()) as ('postgres' | 'pglite')[];
const SHOPS = 2_000;
const AMOUNT = 10;

interface Sample {
  t: number;
  rssMb: number;
  heapUsedMb: number;
}

interface Mem {
  rssMb: number;
  heapUsedMb: number;
  heapTotalMb: number;
  externalMb: number;
  arrayBuffersMb: number;
}

function saleRequests(tokens: Map<string, string>): AutocannonRequest[] {
  let sale = 0;
  const tokenFor = (shop: string): string => {
    let t = tokens.get(shop);
    if (!t) tokens.set(shop, (t = mintToken(BENCH_JWT_SECRET, { sub: `till-${shop}`, shopId: shop, role: 'cashier' })));
    return t;
  };
  type Ctx = { n?: number; shop?: string; checkout?: string };
  return [
    {
      method: 'POST',
      path: '/orders',
      setupRequest: (req: AutocannonRequest, context: object) => {
        const ctx = context as Ctx;
        const n = sale++;
        ctx.n = n;
        ctx.shop = `soak-shop-${n % SHOPS}`;
        ctx.checkout = undefined;
        return {
          ...req,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${tokenFor(ctx.shop)}` },
          body: JSON.stringify({ id: `SO-${n}`, total: AMOUNT }),
        };
      },
    },
    {
      method: 'POST',
      path: '/payments/stk-push',
      setupRequest: (req: AutocannonRequest, context: object) => {
        const ctx = context as Ctx;
        return {
          ...req,
          headers: {
            'content-type': 'application/json',
            authorization: `Bearer ${tokenFor(ctx.shop!)}`,
            'idempotency-key': `soak-${ctx.n}`,
          },
          body: JSON.stringify({
            phoneNumber: `25471${String(ctx.n).padStart(7, '0')}`,
            amount: AMOUNT,
            orderId: `SO-${ctx.n}`,
          }),
        };
      },
      onResponse: (status: number, body: string, context: object) => {
        if (status === 201)
          (context as Ctx).checkout = (JSON.parse(body) as { checkoutRequestId?: string }).checkoutRequestId;
      },
    },
    {
      method: 'GET',
      setupRequest: (req: AutocannonRequest, context: object) => {
        const ctx = context as Ctx;
        return {
          ...req,
          headers: { authorization: `Bearer ${tokenFor(ctx.shop!)}` },
          path: `/payments/stk-status?checkoutRequestId=${encodeURIComponent(ctx.checkout ?? 'missing')}`,
        };
      },
    },
  ];
}

async function soak(kind: 'postgres' | 'pglite'): Promise<Record<string, unknown>> {
  let db: BenchDatabase | undefined;
  let pgliteDir: string | undefined;
  let sim: (ChildHandle & { url: string }) | undefined;
  let api: ChildHandle | undefined;
  try {
    if (kind === 'postgres') db = await freshPostgres('soak');
    else pgliteDir = mkdtempSync(join(os.tmpdir(), 'smartduka-soak-pglite-'));
    sim = await startSimulator('soak-sim', { callbackDelayMs: 200 });
    api = await startApi(`soak-api-${kind}`, {
      databaseUrl: db?.url,
      pgliteDir,
      darajaUrl: sim.url,
      nodeArgs: ['--expose-gc'],
    });
    const url = `http://127.0.0.1:${api.ready.port}`;
    const boot = await api.request<Mem>('gc');
    const bootRss = procRss(api.pid);

    const samples: Sample[] = [];
    const started = Date.now();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        try {
          const m = await api!.request<Mem>('mem', {}, 5000);
          samples.push({
            t: Math.round((Date.now() - started) / 100) / 10,
            rssMb: procRss(api!.pid)?.rssMb ?? m.rssMb,
            heapUsedMb: m.heapUsedMb,
          });
        } catch {
          // a missed sample under load is not an error
        }
        await sleep(1000);
      }
    })();
    const s: LoadSummary = await load(`sustained load (${kind})`, {
      url,
      connections: CONNECTIONS,
      duration: SECONDS,
      requests: saleRequests(new Map()),
    });
    sampling = false;
    await sampler;

    // let the last callbacks land, then measure what survives a full GC
    await sleep(2000);
    const after = await api.request<Mem>('gc');
    const peak = procRss(api.pid);
    const stats =
      kind === 'postgres' && db
        ? rows<{ completed: number; payments: number }>(
            await db.handle.db.execute(
              sql`select count(*) filter (where status = 'completed')::int as completed, count(*)::int as payments from payments`,
            ),
          )[0]
        : undefined;
    const simStats = await sim.request<{ pushRequests: number; callbacksSent: number }>('stats');

    check(s.requests > 0 && s.ok > 0, `no successful requests under sustained load (${kind})`);
    check(
      s.non2xx === 0 && s.errors === 0,
      `sustained load (${kind}): ${s.non2xx} non-2xx ${JSON.stringify(s.statusCodes)}, ${s.errors} errors`,
    );
    check(samples.length >= Math.min(3, SECONDS), `only ${samples.length} memory samples`);
    const second = samples.filter((x) => x.t >= SECONDS / 2);
    const slope =
      second.length >= 2
        ? ((second[second.length - 1].rssMb - second[0].rssMb) / (second[second.length - 1].t - second[0].t)) * 60
        : NaN;
    const sales = Math.floor(s.ok / 3);
    const out = {
      database: kind,
      seconds: SECONDS,
      requests: s.requests,
      requestsPerSecond: s.rps,
      salesPerSecond: Math.round(sales / s.seconds),
      latencyMs: s.latencyMs,
      pushesAnsweredBySimulator: simStats.pushRequests,
      callbacksSent: simStats.callbacksSent,
      paymentsCompleted: stats?.completed,
      rssMb: {
        idleAfterBoot: bootRss?.rssMb ?? boot.rssMb,
        peak: peak?.peakRssMb ?? Math.max(...samples.map((x) => x.rssMb)),
        end: samples[samples.length - 1]?.rssMb,
        afterLoadAndGc: after.rssMb,
        slopeSecondHalfMbPerMin: Math.round(slope * 10) / 10,
      },
      heapUsedAfterGcMb: {
        beforeLoad: boot.heapUsedMb,
        afterLoad: after.heapUsedMb,
        growth: Math.round((after.heapUsedMb - boot.heapUsedMb) * 10) / 10,
      },
      externalAfterGcMb: { beforeLoad: boot.externalMb, afterLoad: after.externalMb },
      samples,
    };
    log(
      `  ${kind}: ${s.rps} req/s (${out.salesPerSecond} sales/s), RSS idle ${out.rssMb.idleAfterBoot} MB -> peak ${out.rssMb.peak} MB, end ${out.rssMb.end} MB, slope ${out.rssMb.slopeSecondHalfMbPerMin} MB/min; heap after GC ${boot.heapUsedMb} -> ${after.heapUsedMb} MB`,
    );
    return out;
  } finally {
    if (api) {
      await api.stop();
      removeLog(api.logFile);
    }
    if (sim) {
      await sim.stop();
      removeLog(sim.logFile);
    }
    if (db) await db.dispose();
    if (pgliteDir) rmSync(pgliteDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  log(`memory under sustained load: ${CONNECTIONS} connections for ${SECONDS} s on ${DBS.join(', ')}`);
  const results: Record<string, unknown>[] = [];
  for (const kind of DBS) {
    if (kind !== 'postgres' && kind !== 'pglite') throw new Error(`BENCH_DB: unknown database ${kind}`);
    results.push(await soak(kind));
  }
  let pgVersion: string | undefined;
  if (DBS.includes('postgres')) {
    const db = await freshPostgres('soak_version', 1, { migrate: false });
    pgVersion = db.serverVersion;
    await db.dispose();
  }
  const result = {
    benchmark: 'memory',
    date: new Date().toISOString(),
    smoke: SMOKE,
    settings: {
      connections: CONNECTIONS,
      seconds: SECONDS,
      logLevel: process.env.BENCH_LOG_LEVEL ?? 'info',
      flow: 'POST /orders, POST /payments/stk-push, GET /payments/stk-status; simulator callbacks after 200 ms',
    },
    results,
    machine: machineInfo(pgVersion),
  };
  const file = writeResult('memory', result);
  type R = {
    database: string;
    requestsPerSecond: number;
    salesPerSecond: number;
    rssMb: Record<string, number>;
    heapUsedAfterGcMb: Record<string, number>;
  };
  process.stdout.write(
    `\n${table(
      [
        'database',
        'req/s',
        'sales/s',
        'RSS idle MB',
        'RSS peak MB',
        'RSS end MB',
        'RSS slope MB/min (2nd half)',
        'heap after GC MB (before -> after)',
      ],
      (results as unknown as R[]).map((r) => [
        r.database,
        r.requestsPerSecond,
        r.salesPerSecond,
        r.rssMb.idleAfterBoot,
        r.rssMb.peak,
        r.rssMb.end,
        r.rssMb.slopeSecondHalfMbPerMin,
        `${r.heapUsedAfterGcMb.beforeLoad} -> ${r.heapUsedAfterGcMb.afterLoad}`,
      ]),
    )}\n`,
  );
  process.stdout.write(`\n-> ${file}\n`);
}

run(main);
