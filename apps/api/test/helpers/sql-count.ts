/**
 * Counts the SQL statements and the durable commits a process sends through node-postgres, by
 * wrapping pg's Client.prototype.query (pool.query and drizzle both end there). Used by the
 * statement-count test (stk-push-cost.e2e.ts) and by the benchmarks (bench/lib/api-server.ts,
 * BENCH_TRACE_QUERIES=1), so both count the same way:
 *
 * - statements: every query sent, BEGIN and COMMIT included;
 * - commits: every COMMIT, plus every statement outside a transaction that writes or takes a row
 *   lock (INSERT / UPDATE / DELETE, a data-modifying WITH, SELECT … FOR UPDATE/SHARE): each of
 *   those is a transaction of its own that waits for its commit record on disk. A plain SELECT
 *   outside a transaction is not counted (no xid, no WAL flush).
 */
import { Client } from 'pg';

export interface SqlCount {
  statements: number;
  commits: number;
  /** statements by their SQL text */
  byText: Map<string, number>;
}

const WRITE = /^\s*(insert|update|delete|merge)\b/i;
const LOCKING = /\bfor\s+(update|no\s+key\s+update|share|key\s+share)\b/i;
const MODIFYING_CTE = /^\s*with\b[\s\S]*\b(insert\s+into|update\s+\S+\s+set|delete\s+from)\b/i;

/** What one statement is: transaction control, a write (commits when outside a transaction), or a read. */
export function classify(text: string): 'begin' | 'commit' | 'rollback' | 'write' | 'read' {
  const t = text.trim().toLowerCase();
  if (t === 'begin' || t.startsWith('begin ') || t.startsWith('start transaction')) return 'begin';
  if (t === 'commit' || t === 'end') return 'commit';
  if (t === 'rollback' || t.startsWith('rollback ')) return 'rollback';
  if (WRITE.test(t) || MODIFYING_CTE.test(t) || LOCKING.test(t)) return 'write';
  return 'read';
}

type Query = (...args: unknown[]) => unknown;

/** The change feed's own connections (LISTEN, and its heartbeat every few seconds): not a request's SQL. */
export function isListenConnection(client: object): boolean {
  const name = (client as { connectionParameters?: { application_name?: string } }).connectionParameters
    ?.application_name;
  return typeof name === 'string' && name.startsWith('smartduka-listen');
}

/**
 * Starts counting in this process; `stop()` puts pg back. Counts the statements of every client,
 * pooled or not, except those `skip` says (e.g. isListenConnection).
 */
export function countSql(skip?: (client: object) => boolean): SqlCount & { reset(): void; stop(): void } {
  const proto = Client.prototype as unknown as { query: Query };
  const original = proto.query;
  const inTx = new WeakSet<object>();
  const count = {
    statements: 0,
    commits: 0,
    byText: new Map<string, number>(),
    reset() {
      count.statements = 0;
      count.commits = 0;
      count.byText.clear();
    },
    stop() {
      proto.query = original;
    },
  };
  proto.query = function (this: object, ...args: unknown[]) {
    if (skip?.(this)) return original.apply(this, args);
    const q = args[0];
    const text = typeof q === 'string' ? q : ((q as { text?: string } | undefined)?.text ?? '?');
    count.statements++;
    count.byText.set(text, (count.byText.get(text) ?? 0) + 1);
    switch (classify(text)) {
      case 'begin':
        inTx.add(this);
        break;
      case 'commit':
        if (inTx.delete(this)) count.commits++;
        break;
      case 'rollback':
        inTx.delete(this);
        break;
      case 'write':
        if (!inTx.has(this)) count.commits++;
        break;
      default:
    }
    return original.apply(this, args);
  };
  return count;
}
