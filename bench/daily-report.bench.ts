/**
 * End-of-day summary (GET /reports/daily, ReportsRepository.daily) over a year of payments: about
 * 1,000,000 payments over 365 days and several shops, every provider and final status (and a few
 * still open or in review), plus refunds, seeded set-based (generate_series) into the bench's own
 * database. Then the real query (the repository's own SQL, through the app's driver) for one shop
 * over 1, 7, 31 and 92 days: median of N warm runs, and EXPLAIN (ANALYZE, BUFFERS) of each.
 *
 * Side by side, on the same data in the same run:
 *   without   the migrations' indexes, minus the report's own two
 *   plain     + payments(shop_id, completed_at) where completed, payments(shop_id, created_at),
 *               refunds(shop_id, completed_at) where succeeded  (plain column indexes)
 *   report    + the report's indexes (migration 0011), on exactly what the query filters on:
 *               payments(shop_id, case when status = 'completed' then completed_at else created_at
 *               end) where status is final; refunds(shop_id, coalesce(completed_at, updated_at))
 *               where succeeded
 * Each variant's indexes are built (timed, sized), analyzed, measured, then dropped.
 * A sanity check compares every report with totals computed by a plain independent query.
 *
 *   pnpm bench:daily-report                   (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test)
 *   BENCH_SMOKE=1 pnpm bench:daily-report     20,000 payments, 2 runs per range, sanity checks only
 *   BENCH_REPORT_PAYMENTS=1000000 BENCH_REPORT_SHOPS=8 BENCH_REPORT_RUNS=7
 */
import { ReportsRepository, type DailyRow } from '../apps/api/src/payments/reports.repository';
import type { Db } from '../apps/api/src/database/database';
import {
  check,
  envInt,
  freshPostgres,
  log,
  machineInfo,
  median,
  rows,
  run,
  SMOKE,
  table,
  verdictTable,
  writeResult,
  type BenchDatabase,
  type TargetVerdict,
} from './lib/common';
import { sql } from './lib/deps';

const PAYMENTS = SMOKE ? 20_000 : envInt('BENCH_REPORT_PAYMENTS', 1_000_000, 1000);
const SHOPS = SMOKE ? 4 : envInt('BENCH_REPORT_SHOPS', 8, 1);
const RUNS = SMOKE ? 2 : envInt('BENCH_REPORT_RUNS', 7, 1);
const RANGES = [1, 7, 31, 92];
/** The year seeded: 2026-01-01 .. 2026-12-31, Nairobi days. */
const YEAR_START = '2026-01-01';
const LAST_DAY = '2026-12-31';
const SHOP = 'report-shop-0';

type Variant = 'without' | 'plain' | 'report';
/** The report's own indexes (migration 0011); the bench creates them by this definition when the migrations do not. */
const REPORT_INDEXES = [
  {
    name: 'payments_report_idx',
    ddl: `create index payments_report_idx on payments (shop_id, (case when status = 'completed' then completed_at else created_at end)) where status in ('completed', 'failed', 'cancelled', 'expired')`,
  },
  {
    name: 'refunds_report_idx',
    ddl: `create index refunds_report_idx on refunds (shop_id, (coalesce(completed_at, updated_at))) where status = 'succeeded'`,
  },
];
const VARIANT_INDEXES: Record<Variant, { name: string; ddl: string }[]> = {
  without: [],
  plain: [
    {
      name: 'bench_payments_shop_completed_idx',
      ddl: `create index bench_payments_shop_completed_idx on payments (shop_id, completed_at) where status = 'completed'`,
    },
    {
      name: 'bench_payments_shop_created_idx',
      ddl: `create index bench_payments_shop_created_idx on payments (shop_id, created_at)`,
    },
    {
      name: 'bench_refunds_shop_completed_idx',
      ddl: `create index bench_refunds_shop_completed_idx on refunds (shop_id, completed_at) where status = 'succeeded'`,
    },
  ],
  report: REPORT_INDEXES,
};

async function indexesOn(db: BenchDatabase, tableName: string): Promise<{ name: string; def: string }[]> {
  return rows<{ indexname: string; indexdef: string }>(
    await db.handle.db.execute(
      sql`select indexname, indexdef from pg_indexes where schemaname = 'public' and tablename = ${tableName} order by indexname`,
    ),
  ).map((r) => ({ name: r.indexname, def: r.indexdef }));
}

async function seed(db: BenchDatabase): Promise<{ seconds: number; payments: number; refunds: number }> {
  const t0 = performance.now();
  const x = (q: ReturnType<typeof sql>) => db.handle.db.execute(q);
  // The status-event trigger (migration 0010) is for live changes, not a year's backfill.
  await x(sql`alter table payments disable trigger payments_status_event_insert`);
  // i-th payment: a shop, a provider, a status and a time in the year from a few hashes of i.
  await x(sql`
    insert into payments (id, shop_id, order_id, amount_minor, currency, provider, status, status_reason, created_by, created_at, updated_at, completed_at)
    select gen_random_uuid(), 'report-shop-' || (i % ${SHOPS}), 'R-' || i,
           (100 + (h % 500000)) * 100,
           case when prov <> 'mpesa' and h % 10 = 0 then 'USD' else 'KES' end,
           prov, st,
           case st when 'failed' then 'FAILED' when 'cancelled' then 'CANCELLED_BY_USER' when 'expired' then 'TIMEOUT' when 'completed' then 'PAID' end,
           'bench', created, created, case when st = 'completed' then created + ((5 + h % 115) * interval '1 second') end
    from (
      select i, h,
             case when h % 100 < 70 then 'mpesa' when h % 100 < 90 then 'flutterwave' else 'pesapal' end as prov,
             case when (h / 100) % 100 < 80 then 'completed' when (h / 100) % 100 < 88 then 'failed'
                  when (h / 100) % 100 < 94 then 'cancelled' when (h / 100) % 100 < 98 then 'expired'
                  when (h / 100) % 100 < 99 then 'review' else 'failed' end as st,
             (${YEAR_START}::date::timestamp at time zone 'Africa/Nairobi') + (i::float8 / ${PAYMENTS}) * interval '365 days' as created
      from (select i, abs(hashint4(i))::bigint as h from generate_series(0, ${PAYMENTS - 1}) as i) s
    ) t`);
  await x(sql`alter table payments enable trigger payments_status_event_insert`);
  // Refunds: about 2 % of completed payments, most succeeded, settled a day or two later.
  await x(sql`
    insert into refunds (id, payment_id, shop_id, order_id, provider, amount_minor, currency, status, reason, source, requested_by, created_at, updated_at, completed_at)
    select gen_random_uuid(), p.id, p.shop_id, p.order_id, p.provider,
           case when abs(hashtext(p.order_id)) % 100 < 70 then p.amount_minor else greatest(100, p.amount_minor / 2) end,
           p.currency, case when abs(hashtext(p.order_id)) % 10 < 9 then 'succeeded' else 'failed' end,
           'bench refund', 'request', 'user:bench', p.completed_at + interval '1 day', p.completed_at + interval '1 day',
           case when abs(hashtext(p.order_id)) % 10 < 9 then p.completed_at + interval '1 day' + (abs(hashtext(p.order_id)) % 86400) * interval '1 second' end
    from payments p where p.status = 'completed' and abs(hashtext(p.order_id)) % 50 = 0`);
  await x(sql`vacuum analyze payments`);
  await x(sql`vacuum analyze refunds`);
  const counts = rows<{ p: number; r: number }>(
    await x(sql`select (select count(*) from payments)::int as p, (select count(*) from refunds)::int as r`),
  )[0];
  return { seconds: Math.round((performance.now() - t0) / 100) / 10, payments: counts.p, refunds: counts.r };
}

/** from..to (inclusive), `days` Nairobi days ending LAST_DAY. */
function range(days: number): { from: string; to: string } {
  const to = new Date(`${LAST_DAY}T00:00:00Z`);
  const from = new Date(to.getTime() - (days - 1) * 86_400_000);
  return { from: from.toISOString().slice(0, 10), to: LAST_DAY };
}

/** Totals by provider/currency from a plain query (no CASE, two simple scans): what every report must add up to. */
async function expectedTotals(db: BenchDatabase, from: string, to: string): Promise<Map<string, string>> {
  const r = rows<{ k: string; v: string }>(
    await db.handle.db.execute(sql`
      with b as (select (${from}::date::timestamp at time zone 'Africa/Nairobi') as t0, ((${to}::date + 1)::timestamp at time zone 'Africa/Nairobi') as t1)
      select provider || '/' || currency || '/completed' as k, count(*) || ':' || sum(amount_minor) as v
        from payments, b where shop_id = ${SHOP} and status = 'completed' and completed_at >= t0 and completed_at < t1 group by 1
      union all
      select provider || '/' || currency || '/' || status, count(*)::text
        from payments, b where shop_id = ${SHOP} and status in ('failed', 'cancelled', 'expired') and created_at >= t0 and created_at < t1 group by 1
      union all
      select provider || '/' || currency || '/refund', count(*) || ':' || sum(amount_minor)
        from refunds, b where shop_id = ${SHOP} and status = 'succeeded' and coalesce(completed_at, updated_at) >= t0 and coalesce(completed_at, updated_at) < t1 group by 1`),
  );
  return new Map(r.map((x) => [x.k, x.v]));
}

function totalsOf(report: DailyRow[]): Map<string, string> {
  const acc = new Map<string, [number, bigint]>();
  const add = (k: string, n: number, minor?: bigint) => {
    if (!n) return;
    const cur = acc.get(k) ?? [0, 0n];
    acc.set(k, [cur[0] + n, cur[1] + (minor ?? 0n)]);
  };
  for (const r of report) {
    const p = `${r.provider}/${r.currency}`;
    add(`${p}/completed`, r.completedCount, r.completedMinor);
    add(`${p}/failed`, r.failed);
    add(`${p}/cancelled`, r.cancelled);
    add(`${p}/expired`, r.expired);
    add(`${p}/refund`, r.refundCount, r.refundMinor);
  }
  return new Map(
    [...acc].map(([k, [n, m]]) => [k, /\/(completed|refund)$/.test(k) ? `${n}:${m}` : String(n)] as [string, string]),
  );
}

interface PlanFigures {
  executionMs: number;
  planningMs: number;
  sharedHit: number;
  sharedRead: number;
  /** rows the scans of payments / refunds returned, and how they scanned */
  payments: { rows: number; removed: number; scan: string };
  refunds: { rows: number; removed: number; scan: string };
}

type PlanNode = Record<string, unknown> & { Plans?: PlanNode[] };

function scansOf(node: PlanNode, table: string, out: PlanNode[] = []): PlanNode[] {
  if (node['Relation Name'] === table) out.push(node);
  for (const c of node.Plans ?? []) scansOf(c, table, out);
  return out;
}

function indexNames(node: PlanNode, out: string[] = []): string[] {
  if (typeof node['Index Name'] === 'string') out.push(node['Index Name']);
  for (const c of node.Plans ?? []) indexNames(c, out);
  return out;
}

function planFigures(json: unknown): PlanFigures {
  const top = (Array.isArray(json) ? json[0] : json) as {
    Plan: PlanNode;
    'Execution Time': number;
    'Planning Time': number;
  };
  const scan = (t: string) => {
    const nodes = scansOf(top.Plan, t);
    return {
      rows: nodes.reduce((a, n) => a + Number(n['Actual Rows'] ?? 0) * Number(n['Actual Loops'] ?? 1), 0),
      removed: nodes.reduce(
        (a, n) => a + Number(n['Rows Removed by Filter'] ?? 0) + Number(n['Rows Removed by Index Recheck'] ?? 0),
        0,
      ),
      scan: nodes
        .map((n) => `${n['Node Type']}${indexNames(n).length ? ` (${indexNames(n).join(', ')})` : ''}`)
        .join(' + '),
    };
  };
  return {
    executionMs: Math.round(top['Execution Time'] * 100) / 100,
    planningMs: Math.round(top['Planning Time'] * 100) / 100,
    sharedHit: Number(top.Plan['Shared Hit Blocks'] ?? 0),
    sharedRead: Number(top.Plan['Shared Read Blocks'] ?? 0),
    payments: scan('payments'),
    refunds: scan('refunds'),
  };
}

interface Measured {
  variant: Variant;
  days: number;
  medianMs: number;
  runsMs: number[];
  reportRows: number;
  plan: PlanFigures;
}

async function measure(db: BenchDatabase, variant: Variant): Promise<Measured[]> {
  const repo = new ReportsRepository(db.handle.db);
  // The repository's own SQL, wrapped: what EXPLAIN sees is exactly what the endpoint runs.
  let explained: unknown;
  const explaining = new ReportsRepository({
    execute: async (q: ReturnType<typeof sql>) => {
      const r = rows<{ 'QUERY PLAN': unknown }>(
        await db.handle.db.execute(sql`explain (analyze, buffers, format json) ${q}`),
      );
      explained = r[0]['QUERY PLAN'];
      return { rows: [] };
    },
  } as unknown as Db);
  const out: Measured[] = [];
  for (const days of RANGES) {
    const { from, to } = range(days);
    const report = await repo.daily(SHOP, from, to); // warm-up, and the sanity check
    const expected = await expectedTotals(db, from, to);
    const got = totalsOf(report);
    check(
      got.size === expected.size && [...expected].every(([k, v]) => got.get(k) === v),
      `${variant} ${days} days: report totals ${JSON.stringify([...got])} differ from ${JSON.stringify([...expected])}`,
    );
    check(
      report.every((r) => r.day >= from && r.day <= to),
      `${variant} ${days} days: a row outside ${from}..${to}`,
    );
    check(report.length > 0, `${variant} ${days} days: an empty report`);
    const runsMs: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      await repo.daily(SHOP, from, to);
      runsMs.push(Math.round((performance.now() - t0) * 100) / 100);
    }
    await explaining.daily(SHOP, from, to);
    const plan = planFigures(explained);
    const m: Measured = {
      variant,
      days,
      medianMs: Math.round(median(runsMs) * 100) / 100,
      runsMs,
      reportRows: report.length,
      plan,
    };
    log(
      `  ${variant.padEnd(8)} ${String(days).padStart(3)} days: median ${m.medianMs} ms; payments ${plan.payments.scan} ${plan.payments.rows} rows (${plan.payments.removed} filtered out); buffers hit ${plan.sharedHit} read ${plan.sharedRead}`,
    );
    out.push(m);
  }
  return out;
}

async function main(): Promise<void> {
  log(
    `daily report: ${PAYMENTS.toLocaleString('en-US')} payments over a year, ${SHOPS} shops; ${RUNS} runs per range${SMOKE ? ' (smoke)' : ''}`,
  );
  const db = await freshPostgres('report', 2);
  try {
    const seeded = await seed(db);
    check(seeded.payments === PAYMENTS, `seeded ${seeded.payments} payments, wanted ${PAYMENTS}`);
    check(seeded.refunds > 0, 'no refunds seeded');
    log(`  seeded ${seeded.payments} payments and ${seeded.refunds} refunds in ${seeded.seconds} s`);
    const migrationIndexes = { payments: await indexesOn(db, 'payments'), refunds: await indexesOn(db, 'refunds') };
    // "without": the migrations' indexes minus the report's own (when a migration made them, they are
    // dropped here and rebuilt by their migration's definition for the "report" variant).
    for (const ix of REPORT_INDEXES) {
      const made = [...migrationIndexes.payments, ...migrationIndexes.refunds].find((m) => m.name === ix.name);
      if (made) {
        ix.ddl = made.def;
        await db.handle.db.execute(sql.raw(`drop index ${ix.name}`));
      }
    }
    const all: Measured[] = [];
    const built: Record<string, { seconds: number; sizeMb: number }> = {};
    for (const variant of ['without', 'plain', 'report'] as Variant[]) {
      for (const ix of VARIANT_INDEXES[variant]) {
        const t0 = performance.now();
        await db.handle.db.execute(sql.raw(ix.ddl));
        const size = rows<{ b: string }>(
          await db.handle.db.execute(sql`select pg_relation_size(${ix.name}::regclass)::text as b`),
        )[0].b;
        built[ix.name] = {
          seconds: Math.round((performance.now() - t0) / 10) / 100,
          sizeMb: Math.round((Number(size) / 1024 / 1024) * 10) / 10,
        };
      }
      await db.handle.db.execute(sql`analyze payments`);
      await db.handle.db.execute(sql`analyze refunds`);
      all.push(...(await measure(db, variant)));
      for (const ix of VARIANT_INDEXES[variant]) await db.handle.db.execute(sql.raw(`drop index ${ix.name}`));
    }

    const get = (v: Variant, d: number) => all.find((m) => m.variant === v && m.days === d)!;
    const body = all.map((m) => [
      m.variant,
      m.days,
      m.medianMs,
      m.plan.executionMs,
      m.plan.payments.scan,
      m.plan.payments.rows,
      m.plan.payments.removed,
      m.plan.sharedHit + m.plan.sharedRead,
      (get('without', m.days).medianMs / m.medianMs).toFixed(1),
    ]);
    const verdicts: TargetVerdict[] = [];
    if (!SMOKE) {
      for (const d of RANGES) {
        const ratio = get('report', d).medianMs / get('without', d).medianMs;
        verdicts.push({
          name: `daily report, ${d} day(s), 1M payments: with the report index / without`,
          target: '<= 0.50',
          value: ratio.toFixed(3),
          met: ratio <= 0.5,
          miss: ratio > 0.5 ? `${(ratio / 0.5).toFixed(1)}x the target` : undefined,
        });
      }
    }
    const result = {
      benchmark: 'daily-report',
      date: new Date().toISOString(),
      smoke: SMOKE,
      settings: { payments: PAYMENTS, shops: SHOPS, runsPerRange: RUNS, ranges: RANGES, shop: SHOP, lastDay: LAST_DAY },
      seeded,
      migrationIndexes,
      variantIndexes: Object.fromEntries(
        Object.entries(VARIANT_INDEXES).map(([v, ixs]) => [v, ixs.map((ix) => ({ ...ix, ...built[ix.name] }))]),
      ),
      measured: all,
      targets: verdicts,
      machine: machineInfo(db.serverVersion),
    };
    const file = writeResult('daily-report', result);
    process.stdout.write(
      `\npayments indexes from the migrations: ${migrationIndexes.payments.length} (${migrationIndexes.payments.map((i) => i.name).join(', ')})\n`,
    );
    for (const [name, b] of Object.entries(built))
      process.stdout.write(`  built ${name}: ${b.seconds} s, ${b.sizeMb} MB\n`);
    process.stdout.write(
      `\n${table(['indexes', 'days', 'median ms', 'EXPLAIN ms', 'payments scan', 'payments rows read', 'filtered out', 'buffers', 'speed-up'], body)}\n`,
    );
    if (verdicts.length) process.stdout.write(`\n${verdictTable(verdicts)}\n`);
    process.stdout.write(`\n-> ${file}\n`);
  } finally {
    await db.dispose();
  }
}

run(main);
