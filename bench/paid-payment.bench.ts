/**
 * A paid payment end to end (issue 13): the cashier's STK push, Daraja's success callback, and one
 * status read, through the real API (its own process) against the Daraja simulator (its own
 * process, answering and calling back as Daraja does). What it costs the API per payment: SQL
 * statements (BEGIN/COMMIT included), commits (transactions that wrote: COMMITs plus autocommitted
 * writes), and CPU (/proc). Target: <= 4 commits and <= 3 ms of API CPU per paid payment.
 *
 * The reconciler is off so that only the payment's own work is counted (with it on, each tick adds
 * a claim per instance, whatever the traffic). Orders are created before the measured part (the
 * POS's, not the payment's). Each worker waits for its payment to complete (watched from the
 * benchmark's own connection, not through the API) before the one status read.
 *
 *   pnpm bench:paid-payment           BENCH_PAYMENTS (default 2,000), BENCH_CONNECTIONS (default 16)
 *   BENCH_SMOKE=1 pnpm bench:paid-payment   200 payments
 */
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
  verdictTable,
  writeResult,
  type TargetVerdict,
} from './lib/common';
import { sql } from './lib/deps';
import { procCpuMs, removeLog, type ChildHandle } from './lib/procs';
import { BENCH_JWT_SECRET, startApi, startSimulator } from './lib/servers';

const PAYMENTS = SMOKE ? 200 : envInt('BENCH_PAYMENTS', 2_000, 1);
const WARMUP_PAYMENTS = SMOKE ? 0 : 200;
const CONNECTIONS = envInt('BENCH_CONNECTIONS', 16, 1);
/** many tills, each well within the production per-shop rate limits (as in stk-push.bench.ts) */
const SHOPS = 2_000;
const shopOf = (i: number): string => `bench-paid-shop-${i % SHOPS}`;
const AMOUNT = 10; // KES
// 2547 1xxxxxxx: never one of the simulator's magic numbers; the simulated customer pays.
const phoneOf = (i: number): string => `25471${String(i).padStart(7, '0')}`;

interface SqlCost {
  statements: number;
  commits: number;
  byText: Record<string, number>;
}

/** Statements by their first word (begin, select, insert, update, with, commit, ...). */
function byKind(byText: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [text, n] of Object.entries(byText)) {
    const kind = text.trim().toLowerCase().split(/\s/)[0] || '?';
    out[kind] = (out[kind] ?? 0) + n;
  }
  return out;
}

async function main(): Promise<void> {
  log(
    `paid payment end to end: ${PAYMENTS} payments${WARMUP_PAYMENTS ? ` after ${WARMUP_PAYMENTS} warm-up` : ''}, ${CONNECTIONS} at a time`,
  );
  const db = await freshPostgres('paid');
  let sim: (ChildHandle & { url: string }) | undefined;
  let api: ChildHandle | undefined;
  try {
    const total = WARMUP_PAYMENTS + PAYMENTS;
    await db.handle.db.execute(sql`
      insert into orders (shop_id, id, total_minor, currency)
      select 'bench-paid-shop-' || (i % ${SHOPS}), 'PP-' || i, ${AMOUNT * 100}, 'KES' from generate_series(0, ${total - 1}) as i`);
    sim = await startSimulator('paid-sim', { callbackDelayMs: 20 });
    api = await startApi('paid-api', {
      databaseUrl: db.url,
      darajaUrl: sim.url,
      env: { BENCH_TRACE_QUERIES: '1', RECONCILER_ENABLED: 'false' },
    });
    const base = `http://127.0.0.1:${api.ready.port}`;
    const tokens = new Map<string, string>();
    const authOf = (i: number): string => {
      const shopId = shopOf(i);
      let t = tokens.get(shopId);
      if (!t)
        tokens.set(
          shopId,
          (t = `Bearer ${mintToken(BENCH_JWT_SECRET, { sub: 'bench-cashier', shopId, role: 'cashier' })}`),
        );
      return t;
    };
    // The benchmark's own connection watches for the completion: not counted in the API's statements.
    const status = (id: string) => db.handle.db.execute(sql`select status from payments where id = ${id}`);

    const onePayment = async (i: number): Promise<void> => {
      const res = await fetch(`${base}/payments/stk-push`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: authOf(i), 'idempotency-key': `pp-${i}` },
        body: JSON.stringify({ phoneNumber: phoneOf(i), amount: AMOUNT, orderId: `PP-${i}` }),
      });
      const body = (await res.json()) as { paymentId?: string; status?: string };
      check(res.status === 201 && body.paymentId, `push ${i}: ${res.status} ${JSON.stringify(body)}`);
      const deadline = Date.now() + 30_000;
      for (;;) {
        const s = rows<{ status: string }>(await status(body.paymentId))[0]?.status;
        if (s === 'completed') break;
        check(s === 'pending' || s === 'initiated', `payment ${i} ended ${s}`);
        check(Date.now() < deadline, `payment ${i} not completed within 30 s`);
        await sleep(10);
      }
      const read = await fetch(`${base}/payments/${body.paymentId}`, { headers: { authorization: authOf(i) } });
      const seen = (await read.json()) as { status?: string };
      check(read.status === 200 && seen.status === 'completed', `status read ${i}: ${read.status} ${seen.status}`);
    };
    const runAll = async (from: number, to: number) => {
      let next = from;
      await Promise.all(
        Array.from({ length: CONNECTIONS }, async () => {
          while (next < to) await onePayment(next++);
        }),
      );
    };

    if (WARMUP_PAYMENTS) await runAll(0, WARMUP_PAYMENTS);
    await sleep(200);
    await api.request('sqlCost'); // reset the API's statement counts
    const commits0 = await xactCommits(db.handle.db);
    const cpu0 = procCpuMs(api.pid);
    const started = Date.now();
    await runAll(WARMUP_PAYMENTS, total);
    const seconds = (Date.now() - started) / 1000;
    await sleep(200); // the last callbacks' apply and after-commit work
    const cpu1 = procCpuMs(api.pid);
    const cost = await api.request<SqlCost>('sqlCost');
    const counts = cost.byText;
    const commits1 = await xactCommits(db.handle.db);
    // Counted as the statement-count tests count (apps/api/test/helpers/sql-count.ts): a COMMIT, or a
    // write or locking statement outside a transaction, is a commit.
    const c = { statements: cost.statements, commits: cost.commits, byKind: byKind(counts) };
    const apiWrites = Object.entries(counts)
      .filter(([t]) => /^\s*(insert|update|delete|with)\b/i.test(t))
      .reduce((x, [, n]) => x + n, 0);
    const perPayment = {
      statements: Math.round((c.statements / PAYMENTS) * 100) / 100,
      commits: Math.round((c.commits / PAYMENTS) * 100) / 100,
      writeStatements: Math.round((apiWrites / PAYMENTS) * 100) / 100,
      cpuMs: cpu0 !== undefined && cpu1 !== undefined ? Math.round(((cpu1 - cpu0) / PAYMENTS) * 1000) / 1000 : NaN,
      byKind: Object.fromEntries(Object.entries(c.byKind).map(([k, n]) => [k, Math.round((n / PAYMENTS) * 100) / 100])),
    };
    log(
      `  ${PAYMENTS} paid payments in ${seconds.toFixed(1)} s: per payment ${perPayment.statements} statements, ${perPayment.commits} commits, ${perPayment.writeStatements} writes, API CPU ${perPayment.cpuMs} ms; by kind ${JSON.stringify(perPayment.byKind)} (Postgres counted ${commits1 - commits0} transactions in all, the benchmark's polling reads included)`,
    );
    const statementsByText = Object.entries(counts)
      .map(([text, n]) => ({
        perPayment: Math.round((n / PAYMENTS) * 100) / 100,
        text: text.replace(/\s+/g, ' ').slice(0, 160),
      }))
      .sort((a, b) => b.perPayment - a.perPayment);

    const verdicts: TargetVerdict[] = [];
    if (!SMOKE) {
      verdicts.push({
        name: 'paid payment end to end: commits',
        target: '<= 4',
        value: String(perPayment.commits),
        met: perPayment.commits <= 4,
        miss: perPayment.commits > 4 ? `+${(perPayment.commits - 4).toFixed(2)}` : undefined,
      });
      verdicts.push({
        name: 'paid payment end to end: API CPU',
        target: '<= 3 ms',
        value: `${perPayment.cpuMs} ms`,
        met: perPayment.cpuMs <= 3,
        miss: perPayment.cpuMs > 3 ? `+${(perPayment.cpuMs - 3).toFixed(2)} ms` : undefined,
      });
    }
    const file = writeResult('paid-payment', {
      name: 'paid-payment',
      config: { payments: PAYMENTS, warmup: WARMUP_PAYMENTS, connections: CONNECTIONS, reconciler: 'off' },
      seconds,
      perPayment,
      statementsByText,
      targets: verdicts,
      machine: machineInfo(db.serverVersion),
    });
    process.stdout.write(
      `\n${table(
        ['statements', 'what'],
        statementsByText.map((s) => [s.perPayment, s.text]),
      )}\n`,
    );
    if (verdicts.length) process.stdout.write(`\n${verdictTable(verdicts)}\n`);
    process.stdout.write(`\n-> ${file}\n`);
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

async function xactCommits(handle: BenchDbHandle): Promise<number> {
  return Number(
    rows<{ n: string }>(
      await handle.execute(sql`select xact_commit::text as n from pg_stat_database where datname = current_database()`),
    )[0].n,
  );
}
type BenchDbHandle = Awaited<ReturnType<typeof freshPostgres>>['handle']['db'];

run(main);
