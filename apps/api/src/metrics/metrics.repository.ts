import { Inject, Injectable } from '@nestjs/common';
import { sql } from 'drizzle-orm';
import { DB } from '../database/database.module';
import { resultRows, type Db } from '../database/database';

export interface MetricsSnapshot {
  open: { provider: string; status: string; n: number }[];
  review: { reason: string; n: number }[];
  /** open payments whose next reconciler look is due (next_check_at passed, or never set) */
  due: number;
}

/** The scrape-time read of GET /metrics: one query over the open (partial index) and review payments of every shop. */
@Injectable()
export class MetricsRepository {
  constructor(@Inject(DB) private readonly db: Db) {}

  async snapshot(): Promise<MetricsSnapshot> {
    const res = await this.db.execute(sql`
      select 'open' as kind, provider, status, null as reason, count(*)::int as n,
             count(*) filter (where next_check_at is null or next_check_at <= now())::int as due
        from payments where status in ('initiated', 'pending', 'unresolved') group by provider, status
      union all
      select 'review', null, null, coalesce(status_reason, 'none'), count(*)::int, 0
        from payments where status = 'review' and resolution is null group by status_reason
    `);
    const rows = resultRows<{ kind: string; provider: string; status: string; reason: string; n: number; due: number }>(
      res,
    );
    return {
      open: rows
        .filter((r) => r.kind === 'open')
        .map((r) => ({ provider: r.provider, status: r.status, n: Number(r.n) })),
      review: rows.filter((r) => r.kind === 'review').map((r) => ({ reason: r.reason, n: Number(r.n) })),
      due: rows.reduce((s, r) => s + Number(r.due), 0),
    };
  }
}
